"""PNG structure: truncated image data is an error (never black rows), and a PNG too large
for the decode budget is read in row strips."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


# --------------------------------------------------------------------------------------------
# Decoding in row strips (an image larger than the decode budget, reduced while it is read)

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class PngLayout:
    """What a PNG's chunks say, read without inflating its image data."""

    width: int
    height: int
    depth: int
    colour: int
    interlace: int
    head: bytes  # every chunk between IHDR and the first IDAT, verbatim (PLTE, tRNS, iCCP...)
    idat: tuple[memoryview, ...]  # the IDAT bodies, in order
    exif: bytes | None  # the eXIf chunk's body, wherever it stands

    @property
    def row_bytes(self) -> int:
        """Bytes of one unfiltered row (without its filter byte)."""
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(self.colour, 1)
        return (self.width * self.depth * channels + 7) // 8


def png_layout(data: bytes) -> PngLayout:
    """The chunk layout of a PNG held in memory (the file passed :func:`_check_png_rows`)."""
    view = memoryview(data)
    pos, head, idat, exif, ihdr = 8, bytearray(), [], None, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = view[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", bytes(body[:13]))
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"eXIf":
            exif = bytes(body)
        elif kind == b"IEND":
            break
        if not idat and kind not in (b"IHDR", b"IDAT", b"acTL", b"fcTL"):
            head += view[pos : pos + 12 + length]
        pos += 12 + length
    if ihdr is None:
        raise ValueError("PNG without an IHDR chunk")
    w, h, depth, colour, _, _, interlace = ihdr
    return PngLayout(w, h, depth, colour, interlace, bytes(head), tuple(idat), exif)


def png_strips(
    layout: PngLayout,
    rows: int,
    decode: Callable[[bytes], Any],
    last_row: Callable[[Any], bytes],
) -> Iterator[Any]:
    """Decode a non-interlaced PNG ``rows`` rows at a time, never the whole image at once.

    Why this is exact: a PNG row's filter refers only to the row above it. Each strip is made
    a small PNG of its own (the same header, ancillary chunks and filtered rows), led by the
    previous strip's last row, unfiltered (filter type 0), so its first row's filter sees the
    very bytes it saw in the whole file; ``decode`` (the same decoder as a whole-file decode)
    reads it. Yields ``(decoded strip, rows that lead it)``: 0 for the first strip, else 1, which
    the caller drops. ``last_row(decoded)`` gives that strip's last row back as the PNG's raw
    bytes. Memory: one strip's filtered bytes (twice: inflated and re-wrapped)
    and its decoded pixels.
    """
    stride = 1 + layout.row_bytes
    inflater, chunks, tail = zlib.decompressobj(), iter(layout.idat), b""

    def inflate(limit: int) -> bytes:
        nonlocal tail
        out = bytearray()
        while len(out) < limit:
            if not tail:
                tail = next(chunks, b"")
                if not tail:
                    out += inflater.decompress(b"", limit - len(out))
                    break
            out += inflater.decompress(tail, limit - len(out))
            tail = inflater.unconsumed_tail
        return bytes(out)

    prior: bytes | None = None
    for top in range(0, layout.height, rows):
        n = min(rows, layout.height - top)
        filtered = inflate(n * stride)
        if len(filtered) != n * stride:
            raise ValueError(f"PNG image data ends at row {top + len(filtered) // stride}")
        lead = b"" if prior is None else b"\x00" + prior
        ihdr = struct.pack(
            ">IIBBBBB",
            layout.width,
            n + (prior is not None),
            layout.depth,
            layout.colour,
            0,
            0,
            0,
        )
        strip = b"".join(
            (
                _SIGNATURE,
                _chunk(b"IHDR", ihdr),
                layout.head,
                _chunk(b"IDAT", zlib.compress(lead + filtered, 0)),
                _chunk(b"IEND", b""),
            )
        )
        del filtered
        result = decode(strip)
        led = prior is not None
        prior = last_row(result)
        yield result, int(led)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
