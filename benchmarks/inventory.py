"""Benchmark: the parse-time cost of the content-addressed inventory at 10^5 files.

    .venv/bin/python benchmarks/inventory.py                 # 10^5 files of 64 bytes
    .venv/bin/python benchmarks/inventory.py --files 2000    # a quick look

Every Snakemake start (and every SLURM job, which re-parses the Snakefile) walks the data roots
and writes the inventory (docs/methods.md §2.1). Measured in one process on synthetic tiny
files in a temporary folder: (1) the plain walk (``media.discover``), the floor any parse pays;
(2) cold: walk + hashing every file + writing the hash cache (the first parse, or a lost
cache); (3) warm: walk + one stat per file + reading the cache (every later parse). Each is
given as seconds and as a ratio to the plain walk measured in the same run. "Cold" means the
hash cache is empty, not the disk: the files were just written, so their bytes are in the page
cache; on a real data set hashing cold also reads every byte once (SHA-256 runs at
~0.5-1 GB/s per core), which the warm parse never does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from delta_v2a.inventory import content_hashes, inventory_digest, media_inventory  # noqa: E402
from delta_v2a.media import discover  # noqa: E402


def make_files(root: Path, n: int, size: int) -> None:
    """``n`` files of ``size`` bytes in 10 category folders, each with distinct bytes."""
    for c in range(10):
        (root / f"cat{c}").mkdir(parents=True)
    pad = b"\0" * max(0, size - 8)
    for i in range(n):
        with open(root / f"cat{i % 10}" / f"photo_{i:06d}.png", "wb") as fh:
            fh.write(i.to_bytes(8, "little") + pad)


def parse(root: Path, cache: Path | None) -> tuple[float, int]:
    """One parse's inventory work: walk, hashes (through the cache), text and digest."""
    t0 = time.perf_counter()
    files = discover(root, "image")
    hashed = 0
    if cache is not None:
        states, hashed = content_hashes([f.path for f in files], cache)
        inventory_digest(media_inventory(files, states))
    return time.perf_counter() - t0, hashed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int, default=100_000, help="number of data files")
    p.add_argument("--size", type=int, default=64, help="bytes per file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "images", Path(tmp) / "hashes.tsv"
        t0 = time.perf_counter()
        make_files(root, args.files, args.size)
        print(f"wrote {args.files} files of {args.size} B in {time.perf_counter() - t0:.1f} s")
        parse(root, None)  # warm the directory entries for every variant alike
        walk, _ = parse(root, None)
        cold, n_cold = parse(root, cache)
        warm, n_warm = parse(root, cache)
        touched = next(iter(sorted((root / "cat0").iterdir())))
        os.utime(touched)
        one, n_one = parse(root, cache)
    print(f"\n{args.files} files ({args.size} B each), cache {cache.name}:")
    print("| parse | wall | files hashed | vs plain walk |")
    print("| --- | --- | --- | --- |")
    for label, t, n in (
        ("plain walk (discover)", walk, 0),
        ("cold: walk + hash all + write cache", cold, n_cold),
        ("warm: walk + stat + cache hits", warm, n_warm),
        ("warm, one file touched", one, n_one),
    ):
        print(f"| {label} | {t:.2f} s | {n} | {t / walk:.2f} |")


if __name__ == "__main__":
    main()
