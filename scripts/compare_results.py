"""Compare two results/ trees: JSON (minus time, provenance and path fields), .npy and .npz
contents. A refactor must change none: `python scripts/compare_results.py OLD/results NEW/results`.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

#: Keys that legitimately differ between two runs: clocks, hosts, absolute paths. Matched by
#: exact name or by suffix, never by substring (a substring such as "_s" would also drop
#: science fields: n_samples, difference_shuffled_minus_decoder, text2fx_search).
VOLATILE_NAMES = {"time", "created", "host", "hostname", "elapsed", "resolved_path"}
VOLATILE_SUFFIXES = ("seconds", "seconds_per_clip", "seconds_per_sample", "epochs_per_s")


def volatile(key: str) -> bool:
    return key in VOLATILE_NAMES or key.endswith(VOLATILE_SUFFIXES)


def clean(x):
    """Drop the fields that legitimately differ between two runs (clocks, hosts, paths)."""
    if isinstance(x, dict):
        return {k: clean(x[k]) for k in sorted(x) if not volatile(k)}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def digest(p: Path) -> str:
    h = hashlib.sha256()
    if p.suffix == ".json":
        h.update(json.dumps(clean(json.loads(p.read_text())), sort_keys=True).encode())
        return h.hexdigest()[:16]
    data = np.load(p, allow_pickle=False)
    arrays = {"": data} if isinstance(data, np.ndarray) else {k: data[k] for k in data.files}
    for k in sorted(arrays):
        a = arrays[k]
        if a.dtype.kind in "US" and a.ndim == 0:  # a JSON meta string
            try:
                a = np.array(json.dumps(clean(json.loads(str(a))), sort_keys=True))
            except ValueError:
                pass
        h.update(k.encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def main(old: Path, new: Path) -> int:
    files = sorted(
        p.relative_to(old)
        for p in old.rglob("*")
        if p.suffix in (".json", ".npy", ".npz") and not {"cache", "benchmarks"} & set(p.parts)
    )
    bad = 0
    for rel in files:
        da = digest(old / rel)
        db = digest(new / rel) if (new / rel).exists() else "MISSING"
        bad += da != db
        print(f"{'same' if da == db else 'DIFF'}  {da}  {db}  {rel}")
    print(f"{len(files)} files, {bad} differ")
    return int(bad > 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the reference results/ folder")
    parser.add_argument("new", type=Path, help="the results/ folder to compare with it")
    args = parser.parse_args()
    for folder in (args.old, args.new):
        if not folder.is_dir():
            parser.error(f"{folder}: not a folder")
    sys.exit(main(args.old, args.new))
