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
  decoded span (the only part that is used), so a 2-hour file is never read in full.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from PIL import ExifTags, Image, UnidentifiedImageError

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


class BadMediaError(ValueError):
    """A file that cannot be used, with a reason a human can act on."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path).as_posix() if isinstance(path, Path) else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[BadMediaError], tuple[str, str]]:
        # Survives pickling (process pools) with both fields intact.
        return (type(self), (self.path, self.reason))


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
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = directory / entry.name
        try:
            st = os.stat(path)  # follows symlinks
        except OSError:
            log.warning("skipping broken link or unreadable entry: %s", path.as_posix())
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


def probe(file: MediaFile, *, image_size: int, sr: int, window: int, preroll: int) -> str | None:
    """Decode ``file`` exactly as the models will; None if it is usable, else the reason."""
    try:
        if file.modality == "image":
            load_image(file.path, image_size)
        elif file.modality == "audio":
            load_audio(file.path, sr, window, preroll)
        else:
            raise ValueError(f"unknown modality {file.modality!r} for {file.path}")
    except BadMediaError as exc:
        return exc.reason
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    return None


# --------------------------------------------------------------------------------------------
# images


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Decode to float32 RGB in [0, 1], short side resized to ``size``, centre-cropped square.

    Returns an array of shape (size, size, 3).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    rgb = _decode_image(path, size)
    return _resize_crop(rgb, size)


def _decode_image(path: str | Path, size: int) -> np.ndarray:
    """Decode, orient and flatten alpha: float32 (h, w, 1 or 3) in [0, 1], not yet resized.

    Large JPEGs decode reduced (draft mode) and other large images are box-reduced in the
    integer domain first, keeping the short side >= 2*size, so memory stays bounded.
    """
    path_s = _checked_file(path)
    fmt = "image"
    try:
        with Image.open(path_s, formats=_PIL_FORMATS) as im:
            fmt = im.format or fmt
            w, h = im.size
            if min(w, h) < MIN_IMAGE_SIDE:
                raise BadMediaError(
                    path_s,
                    f"image is {w}×{h} px; needs at least {MIN_IMAGE_SIDE} px on each side",
                )
            if w * h > MAX_IMAGE_PIXELS:
                raise BadMediaError(
                    path_s,
                    f"image is {w}×{h} px, over the {MAX_IMAGE_PIXELS:,} px limit "
                    "(decompression-bomb guard)",
                )
            if _is_16bit_colour_png(im):  # must be asked before load(), which drops the tiles
                arr = _decode_16bit_colour_png(path_s)
            else:
                # JPEG only: decode at 1/2, 1/4 or 1/8 scale while both sides stay >= 2*size.
                im.draft("RGB", (2 * size, 2 * size))
                im.load()
                arr = _pil_to_float(im, size)
            orientation = _exif_orientation(im)
    except BadMediaError:
        raise
    except UnidentifiedImageError as exc:
        raise BadMediaError(path_s, "not an image file (cannot identify)") from exc
    except Image.DecompressionBombError as exc:
        raise BadMediaError(path_s, f"decompression-bomb guard: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncat" in msg.lower():
            raise BadMediaError(path_s, f"truncated {fmt} ({msg})") from exc
        raise BadMediaError(path_s, f"corrupt {fmt} data ({msg})") from exc
    return _orient(arr, orientation)


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


def _decode_16bit_colour_png(path: str) -> np.ndarray:
    """Full-precision decode of a 16-bit RGB(A) PNG via OpenCV (PIL would drop 8 bits)."""
    import cv2  # rare path; keeps `import delta_v2a.media` (and workflow parsing) light

    data = np.fromfile(path, dtype=np.uint8)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 3:
        raise ValueError("OpenCV could not decode the 16-bit PNG")
    arr = raw.astype(np.float32) / 65535.0
    rgb = arr[..., 2::-1]  # BGR(A) -> RGB
    if raw.shape[2] == 4:
        alpha = arr[..., 3:4]
        rgb = rgb * alpha + (1.0 - alpha)  # straight alpha over white
    return np.ascontiguousarray(rgb, dtype=np.float32)


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


def load_audio(path: str | Path, sr: int, window: int, preroll: int = 0) -> np.ndarray:
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
        reason = getattr(exc, "error_string", None) or str(exc)
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
