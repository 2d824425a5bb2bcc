"""Audio decoding: the centred window (and lead-in) of any supported file, resampled."""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from delta_v2a.media.files import (
    BadMediaError,
    FileChangedError,
    _checked_file,
    _expect,
    content_hash,
    shown_path,
)

log = logging.getLogger(__name__)

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
        handle = sf.SoundFile(
            os.fsencode(path_s)
        )  # bytes: any name (soundfile encodes str strictly)
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
                    shown_path(path_s),
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
