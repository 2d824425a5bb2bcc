"""Discovery and decoding of the input media: the one place where files become arrays.

Every model-facing array comes from :func:`load_image` or :func:`load_audio`, so the decisions
that change what a model sees (orientation, alpha, resampling, padding) are made once, here,
and :func:`probe` can vet every file with exactly the code that will later feed the models.

Decisions a maintainer should know:

* Transparent images are composited onto **white** (not black, and alpha is not dropped): a
  viewer on a white page shows them that way, and dropping alpha would let the arbitrary
  colours hidden under fully transparent pixels into the embedding.
* Images are resampled in float32 with PIL's antialiased **bicubic** filter (the filter CLIP's
  own preprocessing uses), short side to ``size`` and centre-cropped in one step
  (``resize(box=...)``), so 16-bit sources keep their precision and nothing is quantised twice.
* Images smaller than :data:`MIN_IMAGE_SIDE` on a side are rejected; larger small images are
  upscaled.
* Audio is treated as **periodic**: files shorter than the requested span are tiled end to start,
  and a preroll that reaches before the start of the file takes the file's own end. Zeros would
  add silence, which a model embeds as "silence", and change the level of short clips.
* Audio shorter than :data:`MIN_AUDIO_SECONDS` is rejected; NaN/inf and silence checks look at the
  decoded span (the only part that is used), so a 2-hour file is never read in full. Vetting
  decodes the longest span any later phase reads (docs/methods.md section 8).
* Every decode is tied to the bytes it read: images are decoded from one in-memory read whose
  SHA-256 is the cache key; audio is hashed before and after its decode. A file that no longer
  matches the manifest raises :class:`FileChangedError` instead of feeding another file's
  pixels into a content-addressed cache.
* Truncated data is an error in every format (PIL's ``LOAD_TRUNCATED_IMAGES`` stays off, and a
  PNG's image data is checked to hold every row); the memory a decode needs is estimated from
  the declared size before decoding and refused above the budget (default
  :data:`MAX_DECODE_BYTES`, raised by the config key :data:`BUDGET_KEY`).
* Embedded ICC profiles are honoured (converted to sRGB with littleCMS); animations are refused.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac")
MODALITY_EXTENSIONS = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}
# The config key that names each data root, quoted in errors so users know what to fix.
ROOT_KEYS = {"image": "data.images", "audio": "data.audio"}

#: Smallest image side accepted: below this there is no content worth embedding.
MIN_IMAGE_SIDE = 8
#: Largest image accepted (w*h). PIL's default (89 MP) rejects real 108/200 MP phone photos;
#: JPEGs that large decode at 1/8 scale in draft mode, so memory stays small.
MAX_IMAGE_PIXELS = 2**28
# PIL raises its own DecompressionBombError at twice this; we reject above it ourselves.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
#: Most memory one image decode may need (bytes), estimated from the declared size BEFORE any
#: pixel is decoded. The manifest rule vets `threads: 2` files at once within `mem_mb=2000`
#: (docs/methods.md section 8 has the measured RSS), so 2 x 640 MiB + the interpreter fit.
MAX_DECODE_BYTES = 640 * 2**20
#: The config key that sets the budget (in MiB), named in the refusal so users know what to raise.
BUDGET_KEY = "preprocessing.image.decode_budget_mib"
# Truncated data must be an error, never grey or black pixels: keep PIL's switch off.
ImageFile.LOAD_TRUNCATED_IMAGES = False
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Formats PIL may try: the common raster formats only, so odd parsers never see our files.
Image.init()
_PIL_FORMATS = tuple(
    f for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF") if f in Image.OPEN
)

#: Shortest audio accepted, in seconds: less is a click, not music.
MIN_AUDIO_SECONDS = 0.1
#: soxr quality: "VHQ" is deterministic; a decoded span matches a whole-file resample to ~1e-7.
RESAMPLE_QUALITY = "VHQ"
# Context decoded on both sides of the span so the resampler's edges fall outside it
# (output samples; measured: 1024 suffice for 8 kHz -> 48 kHz at VHQ).
_RESAMPLE_MARGIN_OUT = 4096
_RESAMPLE_MARGIN_IN = 512
# libmpg123 is not sample-exact right after a seek (the bit reservoir and the MDCT overlap
# need earlier frames; 4-10 frames measured), so MP3 reads start this many samples earlier and
# drop them. libmpg123 may log "part2_3_length ... too large" for those discarded frames.
_MP3_PRIME_FRAMES = 24 * 1152
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class MediaFile:
    """One discovered input file."""

    path: str  # as found (relative to cwd if root was relative), POSIX string
    category: str  # first folder under the root
    modality: str  # "image" | "audio"
    sha256: str | None = None  # the vetted bytes' hash, once in a manifest (None: not vetted)

    @property
    def shown(self) -> str:
        """The path as printable UTF-8 text (undecodable bytes as ``\\xNN``), for logs/tables."""
        return shown_path(self.path)


def shown_path(path: str) -> str:
    """A file-system name as text: names need not be UTF-8, logs and TSV files must be."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def name_problem(path: str) -> str | None:
    """Why a name cannot go into the UTF-8 manifest (None if it can): names are data."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename it)"
    return None


def _trackable(path: str) -> bool:
    # Snakemake reads any "{name}" in an input path as a wildcard and has no escape for it.
    return "{" not in path and "}" not in path and name_problem(path) is None


def tracked_inputs(paths: Sequence[str]) -> list[str]:
    """The discovered paths Snakemake can track as rule inputs.

    Snakemake reads ``{...}`` in an input path as a wildcard (there is no escape), and stats
    and reads every input for its metadata, so names with braces, names that are not UTF-8
    and files it cannot read are left out here; :func:`untracked_stamps` makes a change to
    them rerun the rule all the same, and vetting still decodes (or reports) each of them.
    """
    return [p for p in paths if _trackable(p) and os.access(p, os.R_OK)]


def untracked_stamps(paths: Sequence[str]) -> list[str]:
    """``name|size|mtime`` of each path :func:`tracked_inputs` leaves out, for a rule's params:
    Snakemake reruns a rule whose params change, so those files still trigger a new vetting."""
    out = []
    for path in paths:
        if _trackable(path) and os.access(path, os.R_OK):
            continue
        try:
            st = os.stat(path)
            out.append(f"{shown_path(path)}|{st.st_size}|{st.st_mtime_ns}")
        except OSError as exc:
            out.append(f"{shown_path(path)}|{exc.strerror}")
    return out


class BadMediaError(ValueError):
    """A file that cannot be used, with a reason a human can act on."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path).as_posix() if isinstance(path, Path) else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[BadMediaError], tuple[str, str]]:
        # Survives pickling (process pools) with both fields intact.
        return (type(self), (self.path, self.reason))


class FileChangedError(RuntimeError):
    """A file's bytes are not the ones vetted (edited, replaced or still being written).

    Not a bad file: the manifest is stale, so the job stops instead of caching an embedding of
    other bytes under the vetted file's content hash.
    """

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{path}: file changed while the workflow ran (vetted sha256 {expected[:12]}…, "
            f"now {actual[:12]}…); rerun the workflow once the folder is no longer being "
            "written (Snakemake re-vets changed files)"
        )

    def __reduce__(self) -> tuple[type[FileChangedError], tuple[str, str, str]]:
        return (type(self), (self.path, self.expected, self.actual))


# --------------------------------------------------------------------------------------------
# discovery


def discover(root: str | Path, modality: str) -> list[MediaFile]:
    """Find ``root/<category>/**/*.<ext>`` files, sorted by (category, path).

    Extensions match case-insensitively; hidden files and folders (leading ".") and files
    directly in ``root`` (no category) are skipped. Symlinks are followed; a link back to one of
    its own ancestors is skipped so the walk always ends. Directories are walked in sorted
    order so the result is the same on every filesystem. Unreadable folders raise OSError
    rather than silently shrinking the data set.
    """
    if modality not in MODALITY_EXTENSIONS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_EXTENSIONS)}, not {modality!r}")
    root_path = Path(root)
    if not root_path.is_dir():
        what = "is not a directory" if root_path.exists() else "does not exist"
        raise FileNotFoundError(f"{ROOT_KEYS[modality]} root '{root}' {what}")
    extensions = MODALITY_EXTENSIONS[modality]
    found: list[MediaFile] = []
    at_root: list[str] = []
    for path, parts in _walk(root_path, (), frozenset({_dir_key(root_path)})):
        if not path.name.lower().endswith(extensions):
            continue
        if len(parts) == 1:
            at_root.append(path.name)
            continue
        found.append(MediaFile(path.as_posix(), parts[0], modality))
    if at_root:
        log.warning(
            "%s: ignoring %d file(s) directly in the root (no category folder): %s",
            root,
            len(at_root),
            ", ".join(sorted(at_root)[:5]) + (" ..." if len(at_root) > 5 else ""),
        )
    found.sort(key=lambda f: (f.category, f.path))
    return found


def _dir_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino)


def _walk(
    directory: Path, parts: tuple[str, ...], ancestors: frozenset[tuple[int, int]]
) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Yield (file path, path parts below the root) depth-first in sorted name order."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or exc
        raise OSError(
            exc.errno,
            f"cannot list folder '{shown_path(directory.as_posix())}': {why}; give the "
            "workflow's user read and execute permission on it, or move it out of the data root",
        ) from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = directory / entry.name
        try:
            st = os.stat(path)  # follows symlinks
        except OSError:
            log.warning("skipping broken link or unreadable entry: %s", shown_path(str(path)))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                log.warning("skipping symlink loop: %s", path.as_posix())
                continue
            yield from _walk(path, (*parts, entry.name), ancestors | {key})
        elif stat.S_ISREG(st.st_mode):
            yield path, (*parts, entry.name)


# --------------------------------------------------------------------------------------------
# shared helpers


def _checked_file(path: str | Path) -> str:
    """Return ``path`` as a string; missing files raise OSError, empty ones BadMediaError."""
    path_s = str(path)
    problem = name_problem(path_s)
    if problem:
        raise BadMediaError(shown_path(path_s), problem)
    if os.stat(path_s).st_size == 0:
        raise BadMediaError(path_s, "empty file (0 bytes)")
    return path_s


def content_hash(path: str | Path) -> str:
    """SHA-256 hex digest of the file's bytes, streamed, for content-addressed caches."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _expect(path: str, expected: str | None, actual: str) -> str:
    if expected is not None and expected != actual:
        raise FileChangedError(path, expected, actual)
    return actual


def probe(file: MediaFile, **decoding: Any) -> str | None:
    """Decode ``file`` exactly as the models will (``decoding``: :func:`vet_file`'s keywords);
    None if it is usable, else the reason."""
    return vet_file(file, **decoding)[0]


def vet_file(
    file: MediaFile,
    *,
    image_size: int,
    sr: int,
    window: int,
    preroll: int,
    budget: int | None = None,
) -> tuple[str | None, str]:
    """Decode ``file`` exactly as the models will: (None, sha256) if usable, else (reason, "").

    The SHA-256 is that of the very bytes decoded (see :func:`load_image_hashed`), so the
    manifest's cache key always matches what was vetted.
    """
    try:
        if file.modality == "image":
            _, sha = load_image_hashed(file.path, image_size, budget=budget)
        elif file.modality == "audio":
            _, sha = load_audio_hashed(file.path, sr, window, preroll)
        else:
            raise ValueError(f"unknown modality {file.modality!r} for {file.path}")
    except BadMediaError as exc:
        return exc.reason, ""
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}", ""
    return None, sha


# --------------------------------------------------------------------------------------------
# images


def load_image(
    path: str | Path, size: int, *, sha256: str | None = None, budget: int | None = None
) -> np.ndarray:
    """Decode to float32 RGB in [0, 1], short side resized to ``size``, centre-cropped square.

    Returns an array of shape (size, size, 3). Given ``sha256`` (the manifest's), bytes that
    differ raise :class:`FileChangedError`. ``budget``: the most bytes the decode may need (the
    config's ``preprocessing.image.decode_budget_mib``; None: :data:`MAX_DECODE_BYTES`).
    """
    arr, actual = load_image_hashed(path, size, budget=budget)
    _expect(str(path), sha256, actual)
    return arr


def load_image_hashed(
    path: str | Path, size: int, *, budget: int | None = None
) -> tuple[np.ndarray, str]:
    """:func:`load_image` and the SHA-256 of the one in-memory read it decoded."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    path_s = _checked_file(path)
    with open(path_s, "rb") as fh:  # outside the decoder's try: PermissionError is not "corrupt"
        data = fh.read()
    sha = hashlib.sha256(data).hexdigest()
    rgb = _decode_image(path_s, size, data, budget)
    return _resize_crop(rgb, size), sha


def _decode_image(
    path: str | Path, size: int, data: bytes | None = None, budget: int | None = None
) -> np.ndarray:
    """Decode, orient, colour-manage and flatten alpha: float32 (h, w, 1 or 3) in [0, 1].

    Large JPEGs decode reduced (draft mode) and other large images are box-reduced in the
    integer domain first, keeping the short side >= 2*size; the memory the decode needs is
    checked against ``budget`` (bytes) before any pixel is decoded.
    """
    path_s = str(path)
    if data is None:
        with open(_checked_file(path_s), "rb") as fh:
            data = fh.read()
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: truncated images would decode as grey"
        )
    fmt = "image"
    try:
        with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as im:
            fmt = im.format or fmt
            _check_declared(path_s, im)
            # A file whose data ends early is named as truncated, never refused for the size
            # its header promises (docs/methods.md §2): the end checks come before the budget.
            _check_complete(path_s, im.format, data)
            if _is_16bit_colour_png(im):  # must be asked before load(), which drops the tiles
                _check_budget(path_s, im, _decode_bytes(im, 0), budget)
                arr = _decode_16bit_colour_png(data, size)
            else:
                # JPEG only: decode at 1/2, 1/4 or 1/8 scale while both sides stay >= 2*size.
                im.draft("RGB", (2 * size, 2 * size))
                _check_budget(path_s, im, _decode_bytes(im, size), budget)
                im.load()
                arr = _pil_to_float(_to_srgb(path_s, im), size)
            orientation = _exif_orientation(im)
    except BadMediaError:
        raise
    except UnidentifiedImageError as exc:
        raise BadMediaError(path_s, "not an image file (cannot identify)") from exc
    except Image.DecompressionBombError as exc:
        raise BadMediaError(path_s, f"decompression-bomb guard: {exc}") from exc
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        IndexError,
        zlib.error,
    ) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncat" in msg.lower():
            raise BadMediaError(path_s, f"truncated {fmt} ({msg})") from exc
        raise BadMediaError(path_s, f"corrupt {fmt} data ({msg})") from exc
    return _orient(arr, orientation)


def _check_declared(path_s: str, im: Image.Image) -> None:
    """Size and frame count from the header alone, before anything is decoded."""
    w, h = im.size
    if min(w, h) < MIN_IMAGE_SIDE:
        raise BadMediaError(
            path_s, f"image is {w}×{h} px; needs at least {MIN_IMAGE_SIDE} px on each side"
        )
    if w * h > MAX_IMAGE_PIXELS:
        raise BadMediaError(
            path_s,
            f"image is {w}×{h} px, over the {MAX_IMAGE_PIXELS:,} px limit "
            "(decompression-bomb guard)",
        )
    # MPO (camera JPEGs with a depth or preview frame) has frame 0 as the photo itself.
    frames = getattr(im, "n_frames", 1) if im.format != "MPO" else 1
    if frames > 1:
        raise BadMediaError(
            path_s,
            f"animated {im.format} ({frames} frames): which frame is the picture is "
            "ambiguous; save the frame you mean as a still image",
        )


# Bytes per pixel of PIL's decoded buffer, by mode (anything else: 4).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "I;16": 2, "RGB": 4, "RGBA": 4, "CMYK": 4}


def _decode_bytes(im: Image.Image, size: int) -> int:
    """Peak bytes our decode of ``im`` needs, from its (draft-reduced) declared size.

    PIL's buffer, plus the full-size copies :func:`_pil_to_float` and :func:`_to_srgb` make
    (alpha: RGBA then premultiplied RGBa, 4 + 4 B/px; grey: 1 or 4; colour: 4; an ICC
    transform: 4 more); the float arrays after the integer reduction are small. For 16-bit
    colour PNGs (``size == 0``): twice OpenCV's uint16 buffer (measured: imdecode holds two
    while it decodes) plus one 32 MiB float stripe. Measured RSS: docs/methods.md section 8.
    """
    w, h = im.size
    if size == 0:
        return 2 * w * h * len(im.getbands()) * 2 + (32 << 20)
    alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if alpha:
        copies = 8
    elif im.mode in ("1", "L"):
        copies = 1
    else:
        copies = 4
    if im.info.get("icc_profile"):
        copies += 4
    factor = max(1, min(w, h) // (2 * size))
    small = (w // factor) * (h // factor) * 3 * 4 * 3
    return w * h * (_MODE_BYTES.get(im.mode, 4) + copies) + small


def _check_budget(path_s: str, im: Image.Image, need: int, budget: int | None) -> None:
    """Refuse a decode needing more than ``budget`` bytes. ``None``: the default budget with no
    config in play (the CLI), so the hint is to downscale; a configured budget names its key."""
    limit = MAX_DECODE_BYTES if budget is None else budget
    if need > limit:
        w, h = im.size
        fix = "downscale it"
        if budget is not None:
            fix = f"raise {BUDGET_KEY} to at least {math.ceil(need / 2**20)}, or downscale it"
        raise BadMediaError(
            path_s,
            f"decoding this {im.format} ({w}×{h} px, mode {im.mode}) needs about "
            f"{need / 2**20:,.0f} MiB, over the {limit / 2**20:,.0f} MiB per-file memory "
            f"budget; {fix}",
        )


def _check_complete(path_s: str, fmt: str | None, data: bytes) -> None:
    """A PNG must reach its IEND chunk and inflate to every declared row; a JPEG must end
    (EOI marker) after its last scan starts (entropy-coded data never holds 0xFFD9, and an
    EXIF thumbnail's EOI comes before the main image's scans)."""
    if fmt == "PNG":
        _check_png_rows(path_s, data)
    elif fmt in ("JPEG", "MPO") and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise BadMediaError(
            path_s,
            f"truncated JPEG: the file ends ({len(data):,} bytes) inside its image data, "
            "before the end-of-image marker (the missing part would decode as grey)",
        )


def _check_png_rows(path_s: str, data: bytes) -> None:
    """A PNG's image data must inflate to every row its header declares.

    PIL (any LOAD_TRUNCATED_IMAGES setting) accepts a complete zlib stream that holds fewer
    rows than the header declares and leaves the rest black; this inflates the IDAT stream
    in bounded chunks and counts the bytes. APNG frames are refused before this runs.
    """
    pos, need, seen, ended = 8, None, 0, False
    inflater = zlib.decompressobj()
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR" and len(body) >= 13:
            need = _png_raw_bytes(*struct.unpack(">IIBBBBB", body[:13]))
        elif kind == b"IDAT":
            while body and not inflater.eof:
                seen += len(inflater.decompress(body, 1 << 20))
                body = inflater.unconsumed_tail
        elif kind == b"IEND":
            ended = True
            break
    if need is not None and not ended and (seen < need or not inflater.eof):
        raise BadMediaError(
            path_s,
            f"truncated PNG: the file ends ({len(data):,} bytes) before its IEND chunk, its "
            f"image data holding {seen:,} of the {need:,} bytes the header declares",
        )
    if need is not None and (seen < need or not inflater.eof):
        raise BadMediaError(
            path_s,
            f"truncated PNG: its image data holds {seen:,} of the {need:,} bytes the header "
            "declares (the missing rows would decode as black)",
        )


def _png_raw_bytes(w: int, h: int, depth: int, colour: int, _c: int, _f: int, interlace: int):
    """Inflated size of a PNG's image data: one filter byte per row of each (Adam7) pass."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    bits = depth * channels
    if not interlace:
        return h * (1 + (w * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4)) + (
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ):
        pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if pw and ph:
            total += ph * (1 + (pw * bits + 7) // 8)
    return total


def _to_srgb(path_s: str, im: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK print files, Display P3/Adobe RGB photos) -> sRGB.

    Without it a CMYK JPEG's colours are a naive inversion and wide-gamut photos look dull.
    A profile littleCMS cannot use is reported (the file is still decoded without it).
    """
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(im, src, _SRGB, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.warning("%s: embedded ICC profile unusable (%s); colours not managed", path_s, exc)
        return im


def _exif_orientation(im: Image.Image) -> int:
    """EXIF orientation tag (1-8); 1 when absent or unreadable (a bad EXIF is not a bad image)."""
    try:
        value = int(im.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # any EXIF parser failure just means "no orientation"
        return 1
    return value if 1 <= value <= 8 else 1


_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    # Same mapping as PIL.ImageOps.exif_transpose, applied to (h, w, c) arrays.
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(_ORIENT[orientation](arr))


def _is_16bit_colour_png(im: Image.Image) -> bool:
    # PIL reads 16-bit RGB(A) PNGs as 8-bit RGB(A); its tile rawmode still says ";16".
    if im.format != "PNG" or im.mode not in ("RGB", "RGBA"):
        return False
    return any(";16" in str(tile.args) for tile in getattr(im, "tile", []) or [])


def _decode_16bit_colour_png(data: bytes, size: int) -> np.ndarray:
    """Full-precision decode of a 16-bit RGB(A) PNG via OpenCV (PIL would drop 8 bits).

    Only OpenCV's uint16 buffer is full size: it is box-reduced (alpha premultiplied, like
    the 8-bit path) in row stripes of bounded size before the float result is assembled.
    """
    import cv2  # rare path; keeps `import delta_v2a.media` (and workflow parsing) light

    raw = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 3:
        raise ValueError("OpenCV could not decode the 16-bit PNG")
    h, w, c = raw.shape
    factor = max(1, min(h, w) // (2 * size))
    stripe = factor * max(1, (32 << 20) // (factor * w * c * 4))
    parts = []
    buffer = np.empty((min(stripe, h), w, c), dtype=np.float32)  # one stripe, reused
    for top in range(0, h, stripe):
        rows = raw[top : top + stripe]
        block = buffer[: len(rows)]
        np.divide(rows, 65535.0, out=block)
        if c == 4:
            block[..., :3] *= block[..., 3:4]  # premultiply in place
        parts.append(_box_reduce(block, factor))
    del raw
    out = np.concatenate(parts)
    rgb = out[..., 2::-1]  # BGR(A) -> RGB, on the reduced image
    if c == 4:
        rgb = rgb + (1.0 - out[..., 3:4])  # premultiplied over white
    return np.ascontiguousarray(rgb, dtype=np.float32)


def _box_reduce(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f×f blocks (the last row/column blocks may be partial), as PIL's reduce()."""
    if f < 2:
        return a
    h, w = a.shape[:2]
    rows, cols = np.arange(0, h, f), np.arange(0, w, f)
    sums = np.add.reduceat(np.add.reduceat(a, rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))
    return (sums / counts[..., None]).astype(np.float32)


def _pil_to_float(im: Image.Image, size: int) -> np.ndarray:
    """Any PIL mode -> float32 (h, w, 1 or 3) in [0, 1], alpha composited over white."""
    mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        # Premultiplied, so the optional integer reduce averages colour weighted by alpha.
        im = im.convert("RGBA").convert("RGBa")
    elif mode.startswith("I;16") or mode == "I":
        im = im.convert("I")
    elif mode == "F":
        pass
    elif mode in ("1", "L"):
        im = im.convert("L")
    else:  # RGB, P, CMYK (PIL undoes Adobe's inversion), YCbCr, LAB, HSV
        im = im.convert("RGB")
    factor = min(im.size) // (2 * size)
    if factor >= 2:
        im = im.reduce(factor)
    arr = np.asarray(im)
    if has_alpha:
        premul = arr.astype(np.float32) / 255.0
        return premul[..., :3] + (1.0 - premul[..., 3:4])
    if im.mode == "I":
        return (np.clip(arr, 0, 65535).astype(np.float32) / 65535.0)[..., None]
    if im.mode == "F":
        return np.clip(arr.astype(np.float32), 0.0, 1.0)[..., None]
    out = arr.astype(np.float32) / 255.0
    return out[..., None] if out.ndim == 2 else out


def _resize_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """Short side -> ``size`` and centre crop, in one float32 bicubic resample per channel."""
    h, w = arr.shape[:2]
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    box = (left, top, left + side, top + side)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(arr[..., c], dtype=np.float32)).resize(
                (size, size), Image.Resampling.BICUBIC, box=box
            )
        )
        for c in range(arr.shape[2])
    ]
    out = np.stack(channels, axis=-1)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# audio


class _ShortRead(Exception):
    """The decoder delivered fewer frames than its header promised."""


class _Source:
    """Random access to decoded frames: (n, channels) float32 for any 0 <= a <= b <= frames."""

    frames: int
    samplerate: int

    def read(self, a: int, b: int) -> np.ndarray:
        raise NotImplementedError


class _FileSource(_Source):
    def __init__(self, handle: sf.SoundFile) -> None:
        self.handle = handle
        self.frames = handle.frames
        self.samplerate = handle.samplerate
        mpeg = handle.format == "MP3" or handle.subtype.startswith("MPEG")
        self.prime = _MP3_PRIME_FRAMES if mpeg else 0

    def read(self, a: int, b: int) -> np.ndarray:
        start = max(0, a - self.prime)
        self.handle.seek(start)
        data = self.handle.read(b - start, dtype="float32", always_2d=True)[a - start :]
        if len(data) < b - a:
            raise _ShortRead
        return data


class _ArraySource(_Source):
    def __init__(self, data: np.ndarray, samplerate: int) -> None:
        self.data = data
        self.frames = len(data)
        self.samplerate = samplerate

    def read(self, a: int, b: int) -> np.ndarray:
        return self.data[a:b]


def load_audio(
    path: str | Path, sr: int, window: int, preroll: int = 0, *, sha256: str | None = None
) -> np.ndarray:
    """:func:`decode_audio`; given ``sha256`` (the manifest's), other bytes raise
    :class:`FileChangedError`."""
    audio, actual = load_audio_hashed(path, sr, window, preroll)
    _expect(str(path), sha256, actual)
    return audio


def load_audio_hashed(
    path: str | Path, sr: int, window: int, preroll: int = 0
) -> tuple[np.ndarray, str]:
    """:func:`decode_audio` and the file's SHA-256, hashed before and after the decode.

    Audio is decoded from the file (a whole long file is never held in memory), so the two
    hashes bracket the decode: if they differ the file changed while it was read.
    """
    before = content_hash(_checked_file(path))
    audio = decode_audio(path, sr, window, preroll)
    after = content_hash(path)
    if after != before:
        raise FileChangedError(str(path), before, after)
    return audio, before


def decode_audio(path: str | Path, sr: int, window: int, preroll: int = 0) -> np.ndarray:
    """Float32 mono, ``preroll + window`` samples at ``sr``: the centred window and its lead-in.

    The window is the ``window`` samples centred in the file; the ``preroll`` samples before it
    are the audio just before the window (for effects that need to settle). Only that span, plus
    a little resampler context, is decoded. The file counts as periodic: shorter files are tiled,
    and a preroll reaching before the start takes the file's end. Channels are averaged;
    resampling is soxr "VHQ". Samples are not clipped.
    """
    if sr < 1 or window < 1 or preroll < 0:
        raise ValueError(f"need sr >= 1, window >= 1, preroll >= 0; got {sr}, {window}, {preroll}")
    path_s = _checked_file(path)
    try:
        handle = sf.SoundFile(path_s)
    except (sf.SoundFileError, TypeError) as exc:
        reason = _sf_reason(path_s, exc)
        source = _fallback_source(path_s, reason)
        return _load_span(path_s, source, sr, window, preroll)
    with handle:
        try:
            try:
                return _load_span(path_s, _FileSource(handle), sr, window, preroll)
            except _ShortRead:
                # The header over-promised (a truncated MP3, say): use what decodes, as for a
                # truncated WAV, where libsndfile does the same.
                handle.seek(0)
                data = handle.read(dtype="float32", always_2d=True)
                log.warning(
                    "%s: header promised %d frames, only %d decode; using those",
                    path_s,
                    handle.frames,
                    len(data),
                )
                source = _ArraySource(data, handle.samplerate)
                return _load_span(path_s, source, sr, window, preroll)
        except sf.SoundFileError as exc:
            reason = getattr(exc, "error_string", None) or str(exc)
            raise BadMediaError(path_s, f"cannot decode audio ({reason})") from exc


def _sf_reason(path: str, exc: Exception) -> str:
    """libsndfile's reason, corrected where it misleads.

    libsndfile answers "File does not exist or is not a regular file (possibly a pipe?)" for
    an existing regular file in which it finds no stream it can decode, e.g. an MP3 that is
    only an ID3 tag; the file was stat()ed already, so say what it really is.
    """
    reason = getattr(exc, "error_string", None) or str(exc)
    if "does not exist" not in reason and "not a regular file" not in reason:
        return reason
    if _id3_only(path):
        raise BadMediaError(path, "no audio frames: the file holds only an ID3 tag") from exc
    return "no audio stream libsndfile can decode"


def _id3_only(path: str) -> bool:
    """True when nothing but ID3v2 (header) and ID3v1 ("TAG", last 128 bytes) is in the file."""
    if os.stat(path).st_size > 1 << 22:
        return False  # a tag that big would be cover art; not worth proving, say "undecodable"
    with open(path, "rb") as fh:
        data = fh.read()
    size = len(data)
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        s = data[6:10]
        start = 10 + ((s[0] & 0x7F) << 21 | (s[1] & 0x7F) << 14 | (s[2] & 0x7F) << 7 | s[3] & 0x7F)
    end = size - 128 if size >= 128 and data[-128:-125] == b"TAG" else size
    if start == 0 and end == size:
        return False  # no tag at all: some other undecodable file
    if start >= end:
        return True
    body = data[start:end]
    # An MPEG audio frame starts with 11 set sync bits; padding zeros are not audio.
    return not any(body[i] == 0xFF and body[i + 1] & 0xE0 == 0xE0 for i in range(len(body) - 1))


def _fallback_source(path: str, sf_reason: str) -> _ArraySource:
    """Decode with librosa/audioread, used ONLY when libsndfile cannot open the file at all.

    libsndfile 1.2 reads WAV, FLAC and MP3 itself, so this is for exotic encodings; it decodes
    the whole file. If it fails too, the file is bad and the libsndfile reason is reported.
    """
    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    except Exception as exc:  # any fallback failure means "undecodable"
        raise BadMediaError(path, f"cannot decode audio ({sf_reason})") from exc
    data = np.atleast_2d(data).T  # librosa: (channels, n) -> (n, channels)
    return _ArraySource(np.ascontiguousarray(data, dtype=np.float32), int(rate))


def _load_span(path: str, src: _Source, sr: int, window: int, preroll: int) -> np.ndarray:
    n, rate = src.frames, src.samplerate
    if n < 2:
        raise BadMediaError(path, f"{n}-sample audio file")
    if n / rate < MIN_AUDIO_SECONDS:
        raise BadMediaError(
            path, f"audio is too short: {n / rate:.3f} s (needs at least {MIN_AUDIO_SECONDS} s)"
        )
    total = preroll + window
    # Positions live on the output grid of the whole file resampled to sr: output sample k is
    # source position k * step / up. Reading from a multiple of `step` keeps both grids aligned,
    # so the result equals resampling the whole file and slicing it.
    g = math.gcd(rate, sr)
    up, step = sr // g, rate // g
    n_out = n * sr // rate
    start = max((n_out - window) // 2, 0) - preroll  # first output sample wanted
    margin = 0 if rate == sr else _RESAMPLE_MARGIN_OUT + math.ceil(_RESAMPLE_MARGIN_IN * up / step)
    j0 = (start - margin) // up
    j1 = -(-(start + total + margin) // up)
    chunk = _read_periodic(src, j0 * step, j1 * step)
    if not np.isfinite(chunk).all():
        raise BadMediaError(path, "contains NaN/inf samples")
    partial = not (j0 * step <= 0 and j1 * step >= n)
    where = f" in the decoded span ({j0 * step / rate:.2f}-{j1 * step / rate:.2f} s)"
    if not chunk.any():
        raise BadMediaError(path, "digital silence: all samples are 0" + (where if partial else ""))
    mono = chunk.mean(axis=1, dtype=np.float32)
    if not mono.any():
        raise BadMediaError(path, "silent after downmix to mono: the channels cancel out")
    offset = start - j0 * up
    if rate != sr:
        mono = soxr.resample(mono, rate, sr, quality=RESAMPLE_QUALITY)
    out = mono[offset : offset + total]
    if len(out) != total:  # the arithmetic above guarantees this; fail loudly if it ever breaks
        raise RuntimeError(f"{path}: internal span error ({len(out)} != {total} samples)")
    return np.ascontiguousarray(out, dtype=np.float32)


def _read_periodic(src: _Source, a: int, b: int) -> np.ndarray:
    """Frames [a, b) of the file repeated end to start forever (a may be negative)."""
    n = src.frames
    if 0 <= a and b <= n:
        return src.read(a, b)
    if b - a >= n:  # needs the whole file at least once: decode it once and tile
        whole = src.read(0, n)
        return whole[np.arange(a, b) % n]
    pieces = []
    pos = a
    while pos < b:
        r = pos % n
        take = min(n - r, b - pos)
        pieces.append(src.read(r, r + take))
        pos += take
    return np.concatenate(pieces)
