"""The audio formats ``apply`` and ``transfer`` write, by the output name's extension.

Standard library only, on purpose: the command line checks ``--out`` with
:func:`check_out_name` before numpy, scipy, torch or transformers load, so a bad name is refused
at once (delta_v2a.transfer.render writes the file).
"""

from __future__ import annotations

from pathlib import Path

#: soundfile format and subtype per extension. WAV keeps float32 (no clipping); FLAC has no
#: float subtype (24-bit); OGG is Vorbis.
OUT_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
}


def check_out_name(path: str | Path, flag: str = "--out") -> None:
    """A one-line ValueError unless the output name ends in a format these commands write."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUT_FORMATS:
        allowed = ", ".join(OUT_FORMATS)
        got = f"'{suffix}'" if suffix else "no extension"
        raise ValueError(f"{flag} {path}: {got} is not an output format; use one of {allowed}")
