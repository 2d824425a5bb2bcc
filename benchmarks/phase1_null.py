"""Phase 1 statistics at scale: bootstrap over files and the permutation nulls.

Synthetic deltas (no model: Phase 1 never calls one inside a resampling) at the real widths
(CLIP ViT-L/14 768-d, CLAP 512-d), 4 effects × 3 intensities per modality, 7 synonyms per
effect; prints wall and CPU time and the peak memory of the process.

    .venv/bin/python benchmarks/phase1_null.py                    # 10^5 deltas, 1000 + 1000
    .venv/bin/python benchmarks/phase1_null.py --deltas 20000 --permutations 200
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from delta_v2a import phase1


def _side(rng, n_deltas: int, dim: int, n_eff: int = 4, n_int: int = 3) -> phase1.Side:
    n_files = max(n_deltas // (n_eff * n_int), 2)
    f, e, k = (
        a.ravel()
        for a in np.meshgrid(np.arange(n_files), np.arange(n_eff), np.arange(n_int), indexing="ij")
    )
    dirs = rng.standard_normal((n_eff, dim))
    delta = (dirs[e] + 3.0 * rng.standard_normal((f.size, dim))).astype(np.float32)
    names = [f"e{i}" for i in range(n_eff)]
    return phase1.Side(delta, e, k, f, n_files, names, ["low", "mid", "high"][:n_int])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deltas", type=int, default=100_000, help="per modality")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    image, audio = _side(rng, args.deltas, 768), _side(rng, args.deltas, 512)
    words = {d: [rng.standard_normal((7, d)) for _ in range(4)] for d in (768, 512)}
    bridges = {"clip": (words[768], words[768]), "clap": (words[512], words[512])}
    opts = phase1.Options(
        text_bridge="both", n_permutations=args.permutations, n_bootstrap=args.bootstrap
    )
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = phase1.discover(image, audio, words[768], words[512], bridges, opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inputs = (image.delta.nbytes + audio.delta.nbytes) / 2**20
    print(
        f"{len(image.delta)} image + {len(audio.delta)} audio deltas ({inputs:.0f} MiB float32), "
        f"{image.n_files} files per modality, {args.permutations} permutations, "
        f"{args.bootstrap} bootstrap draws, bridge both"
    )
    print(
        f"wall {wall:.1f} s, CPU {cpu:.1f} s (all threads); "
        f"peak traced numpy memory {peak / 2**20:.0f} MiB; "
        f"peak RSS {rss:.0f} MiB (inputs included)"
    )
    print(f"p_adjusted min {np.nanmin(out['p_adjusted']):.3g}")


if __name__ == "__main__":
    main()
