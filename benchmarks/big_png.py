"""Measurement: peak memory of vetting one very large 16-bit PNG (issue 37.3).

    .venv/bin/python benchmarks/big_png.py                       # 14400 x 10000 (144 MP)
    .venv/bin/python benchmarks/big_png.py --width 4000 --height 3000   # a quick look

A PNG larger than the decode budget (``preprocessing.image.decode_budget_mib``, default 640) is
read in row strips and reduced while read (delta_v2a.media.images._decode_png_in_strips). This
writes a photo-like 16-bit RGB PNG (smooth gradients with noise in the low 6 bits, every row
Paeth-filtered, streamed so the writer never holds the image), then vets it in a fresh process
exactly as the manifest job does (``vet_file`` at 224 px, the default budget) and reports that
process's peak RSS, the RSS before the decode (interpreter, imports, the file's bytes, which the
decode reads from memory so they can be hashed) and the time. Not a test: minutes and a
gigabyte of disk at full size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from delta_v2a.media.png import _chunk  # noqa: E402


def write_photo_png(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A 16-bit RGB PNG, rows streamed through zlib (level 1), Paeth filter on every row."""
    rng = np.random.default_rng(seed)
    x = np.arange(width, dtype=np.int64)
    comp = zlib.compressobj(1)
    prior = np.zeros(width * 6, dtype=np.int16)
    with open(path, "wb") as fh:
        ihdr = np.array([width, height], ">u4").tobytes() + bytes([16, 2, 0, 0, 0])
        fh.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr))
        for y in range(height):
            base = np.stack([(x * 3 + y * 2 + k * 9000) for k in range(3)], axis=-1)
            row = (base * 4 + rng.integers(0, 64, (width, 3))) % 65536
            raw = np.frombuffer(row.astype(">u2").tobytes(), np.uint8).astype(np.int16)
            filtered = _paeth_filter(raw, prior, 6)
            prior = raw
            data = comp.compress(b"\x04" + filtered.tobytes())
            if data:
                fh.write(_chunk(b"IDAT", data))
        fh.write(_chunk(b"IDAT", comp.flush()) + _chunk(b"IEND", b""))


def _paeth_filter(raw: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    left = np.concatenate([np.zeros(bpp, np.int16), raw[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int16), prior[:-bpp]])
    p = left + prior - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - prior), np.abs(p - upleft)
    pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
    return ((raw - pred) % 256).astype(np.uint8)


VET = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
from delta_v2a.media import MediaFile, vet_file
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
path = {path!r}
data = open(path, "rb").read()  # what the decode holds anyway; counted in 'before'
before = rss()
del data
t = time.perf_counter()
reason, sha = vet_file(MediaFile(path, "c", "image"), image_size=224, sr=48000, window=1,
                       preroll=0, budget={budget})
print(json.dumps({{"reason": reason, "seconds": time.perf_counter() - t,
                  "rss_before_mib": before, "peak_rss_mib": rss()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=14400)
    parser.add_argument("--height", type=int, default=10000)
    parser.add_argument("--budget-mib", type=int, default=640)
    parser.add_argument("--keep", type=Path, help="write the PNG here (and reuse it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "big.png"
        if not path.exists():
            write_photo_png(path, args.width, args.height)
        code = VET.format(src=str(ROOT / "src"), path=str(path), budget=args.budget_mib << 20)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        result = json.loads(out.stdout)
        result |= {
            "pixels": args.width * args.height,
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "budget_mib": args.budget_mib,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
