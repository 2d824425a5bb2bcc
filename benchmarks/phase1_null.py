"""Phase 1 statistics at scale: bootstrap over files, the label permutation and the nulls.

Synthetic deltas (no model: Phase 1 never calls one inside a resampling) at the real widths
(CLIP ViT-L/14 768-d, CLAP 512-d), 4 effects × 3 intensities per modality, 7 synonyms per
effect, the package's foil vocabulary (its clusters of 7+ words, random vectors); prints wall and
CPU time and the peak traced numpy memory of each path. ``new``: the concept-level foil nulls
(10^4 size- and coherence-matched foil sets per effect and per side of sim3),
1000 file-block label permutations, 1000 bootstrap draws; ``old``: the legacy nulls
(``discover`` without foils). For the process's peak RSS run one path under /usr/bin/time -v.

    .venv/bin/python benchmarks/phase1_null.py                    # 10^5 deltas, both paths
    .venv/bin/python benchmarks/phase1_null.py --path new --deltas 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

from delta_v2a import phase1
from delta_v2a.config import load_config

ROOT = Path(__file__).resolve().parents[1]


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


def _foils(rng) -> phase1.Foils:
    foils = phase1.load_foils(min_words=7)
    words = [w for ws in foils.values() for w in ws]
    cluster = np.repeat(np.arange(len(foils)), [len(ws) for ws in foils.values()])

    def bank(dim):
        return phase1.FoilBank(words, cluster, rng.standard_normal((len(words), dim)))

    b = {d: (bank(d), bank(d)) for d in (768, 512)}
    return phase1.Foils(b[768][0], b[512][1], {"image": b[768], "audio": b[512]})


def _run(label: str, call) -> None:
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the legacy path says it is legacy
        out = call()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{label}: wall {wall:.1f} s, CPU {cpu:.1f} s (all threads), peak traced numpy memory "
        f"{peak / 2**20:.0f} MiB, p_adjusted min {np.nanmin(out['p_adjusted']):.3g}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deltas", type=int, default=100_000, help="per modality")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--foil-draws", type=int, default=10_000)
    ap.add_argument("--path", choices=("new", "old", "both"), default="both")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    image, audio = _side(rng, args.deltas, 768), _side(rng, args.deltas, 512)
    words = {d: [rng.standard_normal((7, d)) for _ in range(4)] for d in (768, 512)}
    bridges = {"image": (words[768], words[768]), "audio": (words[512], words[512])}
    foils = _foils(rng)
    defaults = load_config(ROOT / "workflow/schemas/config.schema.yaml")["phase1"]
    opts = dataclasses.replace(
        phase1.Options.from_config(defaults),
        text_bridge="both",
        n_permutations=args.permutations,
        n_bootstrap=args.bootstrap,
        n_foil_draws=args.foil_draws,
        shared_words="warn",
    )
    inputs = (image.delta.nbytes + audio.delta.nbytes) / 2**20
    print(
        f"{len(image.delta)} image + {len(audio.delta)} audio deltas ({inputs:.0f} MiB float32), "
        f"{image.n_files} files per modality, {args.permutations} permutations, "
        f"{args.bootstrap} bootstrap draws, {args.foil_draws} foil draws, bridge both"
    )
    base = phase1.Inputs(image, audio, words[768], words[512], bridges)
    if args.path in ("new", "both"):
        new = dataclasses.replace(base, foils=foils)
        _run("new (foil nulls)", lambda: phase1.discover(new, opts))
    if args.path in ("old", "both"):
        _run("old (legacy nulls)", lambda: phase1.discover(base, opts))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process {rss:.0f} MiB (inputs and every path run included)")


if __name__ == "__main__":
    main()
