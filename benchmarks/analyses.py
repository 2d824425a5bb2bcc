"""Benchmark: do gather and the analyses stay linear in the number of delta records?

    .venv/bin/python benchmarks/analyses.py                  # 10^3, 10^4, 10^5 records/modality
    .venv/bin/python benchmarks/analyses.py --sizes 1000 10000 --json-up-to 10000

Synthetic stores (768-d image, 512-d audio; 4 effects × 3 intensities, 10 categories) are
built from per-variant embedding tables exactly as the `deltas` rule does, then each phase
runs on them. Each size runs in a fresh child process so its peak RSS is its own. The seed's
JSON (three float vectors per record) is by far the largest cost of gather; it is timed up to
--json-up-to records and otherwise reported as skipped.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time

import numpy as np

EFFECTS = ["a", "b", "c", "d"]
INTENSITIES = ["low", "mid", "high"]


def one(n_records: int, with_json: bool) -> dict:
    from delta_v2a import phase0
    from delta_v2a.extract import gather
    from delta_v2a.storage import EmbeddingTable, write_deltas_json

    out: dict = {"records_per_modality": n_records}
    rng = np.random.default_rng(0)
    stores = []
    for modality, dim in (("image", 768), ("audio", 512)):
        n_files = max(1, n_records // (len(EFFECTS) * len(INTENSITIES)))
        paths = np.array([f"f{i}.x" for i in range(n_files)])
        cats = np.array([f"c{i % 10}" for i in range(n_files)])
        orig = rng.standard_normal((n_files, dim)).astype(np.float32)
        orig /= np.linalg.norm(orig, axis=1, keepdims=True)
        variants = []
        for e in EFFECTS:
            direction = rng.standard_normal(dim).astype(np.float32) * 0.05
            for k, i in enumerate(INTENSITIES):
                noise = rng.standard_normal((n_files, dim)).astype(np.float32) * 0.01
                variants.append(
                    (e, i, EmbeddingTable(paths, cats, orig + (k + 1) * direction + noise))
                )
        t0 = time.perf_counter()
        store, aug = gather(
            modality, EmbeddingTable(paths, cats, orig), variants, EFFECTS, INTENSITIES, {}
        )
        out[f"gather_{modality}_s"] = time.perf_counter() - t0
        if with_json:
            t0 = time.perf_counter()
            buf = io.BytesIO()
            write_deltas_json(buf, store, aug)
            out[f"json_{modality}_s"] = time.perf_counter() - t0
            out[f"json_{modality}_MB"] = len(buf.getvalue()) / 1e6
            del buf
        del aug, variants
        stores.append(store)
    t0 = time.perf_counter()
    phase0.sensitivity_table(stores, 0.01)
    out["sensitivity_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    phase0.within_category_table(stores, 0.8, 0.3)
    phase0.cross_category_table(stores, 0.05)
    phase0.across_intensity_table(stores)
    out["linearity_s"] = time.perf_counter() - t0
    from delta_v2a import (
        phase1,
    )  # Phase 1's per-record part: prototypes (the nulls: phase1_null.py)

    t0 = time.perf_counter()
    for store in stores:
        phase1.prototypes(
            store.delta, store.effect_code, store.intensity_code, EFFECTS, INTENSITIES
        )
    out["phase1_prototypes_s"] = time.perf_counter() - t0
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    p.add_argument("--json-up-to", type=int, default=10_000)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.json)))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n)] + (["--json"] * (n <= args.json_up_to))
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    cols = [
        "gather_image_s",
        "gather_audio_s",
        "json_image_s",
        "sensitivity_s",
        "linearity_s",
        "phase1_prototypes_s",
        "peak_rss_MB",
    ]
    print("\nrecords/modality " + " ".join(f"{c:>20s}" for c in cols))
    for r in rows:
        cells = [f"{r[c]:20.3f}" if c in r else f"{'skipped':>20s}" for c in cols]
        print(f"{r['records_per_modality']:16d} " + " ".join(cells))
    base = rows[0]
    for r in rows[1:]:
        scale = r["records_per_modality"] / base["records_per_modality"]
        analyses = r["sensitivity_s"] + r["linearity_s"]
        ratio = analyses / max(base["sensitivity_s"] + base["linearity_s"], 1e-9)
        print(f"x{scale:.0f} records -> analyses x{ratio:.1f} time (linear would be x{scale:.0f})")


if __name__ == "__main__":
    main()
