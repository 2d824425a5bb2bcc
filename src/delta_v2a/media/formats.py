"""Which files are media: the extensions the installed decoders read, derived in one place.

Why derived: a hard-coded list ignored formats the decoders read (a folder of ``.ogg`` songs
looked empty), and goes stale when libsndfile or Pillow gain one. Images: the extensions Pillow
registers for the raster photo formats we let it parse (:data:`PIL_FORMATS`; odd parsers such as
EPS or FITS never see a data file). Audio: every major format libsndfile reports, by its own
extension and by its name (``.ogg``, ``.mp3``), plus ``.opus`` when it decodes Opus in Ogg;
header-less RAW is left out (it needs its rate and channels given).
"""

from __future__ import annotations

import soundfile as sf
from PIL import Image

#: Pillow formats a data file may be parsed as (those this Pillow build has).
Image.init()
PIL_FORMATS = tuple(
    f for f in ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF", "AVIF") if f in Image.OPEN
)


def image_extensions() -> tuple[str, ...]:
    """Every extension Pillow registers for one of :data:`PIL_FORMATS`, sorted (MPO, the
    multi-picture JPEG of stereo and depth cameras, is opened by the JPEG plugin)."""
    formats = {*PIL_FORMATS, "MPO"} if "JPEG" in PIL_FORMATS else set(PIL_FORMATS)
    return tuple(sorted(e for e, f in Image.registered_extensions().items() if f in formats))


def audio_extensions() -> tuple[str, ...]:
    """Every extension of a major format the installed libsndfile reads, sorted."""
    formats = sf.available_formats()
    names = {f".{name.lower()}" for name in formats if name != "RAW"}
    names |= {f".{ext}" for ext in _libsndfile_extensions()}
    if "OGG" in formats and "OPUS" in sf.available_subtypes("OGG"):
        names.add(".opus")
    if "AIFF" in formats:
        names.add(".aif")
    return tuple(sorted(names - {".raw"}))


def _libsndfile_extensions() -> list[str]:
    """libsndfile's own extension per major format (``oga``, ``m1a``...), asked through
    soundfile's cffi handle; empty if that private interface ever changes."""
    try:
        from soundfile import _ffi, _snd

        count = _ffi.new("int*")
        _snd.sf_command(_ffi.NULL, 0x1030, count, _ffi.sizeof("int"))  # FORMAT_MAJOR_COUNT
        out = []
        for i in range(count[0]):
            info = _ffi.new("SF_FORMAT_INFO*")
            info.format = i
            _snd.sf_command(_ffi.NULL, 0x1031, info, _ffi.sizeof("SF_FORMAT_INFO"))  # MAJOR
            out.append(_ffi.string(info.extension).decode("ascii").lower())
        return out
    except Exception:  # a private interface: the format names above still hold
        return []


IMAGE_EXTENSIONS = image_extensions()
AUDIO_EXTENSIONS = audio_extensions()
MODALITY_EXTENSIONS = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}
