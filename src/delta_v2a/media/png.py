"""PNG structure checks: truncated image data is an error, never black rows."""

from __future__ import annotations

import struct
import zlib

from delta_v2a.media.files import BadMediaError


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
