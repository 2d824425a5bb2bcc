"""Benchmark: what a rerun costs after adding files or changing one parameter, vs a full run.

    .venv/bin/python benchmarks/incremental.py            # tiny models, 3+3 categories

Runs the real workflow (Phase 0 targets) on a generated project three times and times each:
(1) a full run from nothing, (2) a rerun after adding one image per category, (3) a rerun
after changing one effect parameter of one intensity. Snakemake reruns the jobs whose inputs
changed; the embedding cache (results/cache) makes those jobs embed only the new files, and a
job whose files are all cached loads no model. Cost model: a rerun pays, per rerun job, the
process start and imports (~3-5 s here) plus one forward pass per *new* file, not per file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from workflow_utils import (  # noqa: E402
    planned_jobs,
    small_config,
    snakemake,
    write_audio,
    write_config,
    write_image,
)

TARGETS = ["results/sensitivity_results.json", "results/linearity_results.json"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="resources/models", help="holds tiny-clip, tiny-clap")
    p.add_argument("--files", type=int, default=6, help="files per category")
    p.add_argument("--effects", type=int, default=2, choices=(1, 2), help="effects per modality")
    args = p.parse_args()
    models = {"image": ROOT / args.models / "tiny-clip", "audio": ROOT / args.models / "tiny-clap"}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        seed = 0
        for cat in ("a", "b", "c"):
            for i in range(args.files):
                write_image(base / f"data/images/{cat}/{i}.png", seed)
                write_audio(base / f"data/audio/{cat}/{i}.wav", seed)
                seed += 1
        cfg = small_config(
            models, n_effects=args.effects, models={"health": {"allow_unhealthy": True}}
        )
        config = write_config(base, cfg)
        replace = "--replace-workflow-config"
        rows = []

        def timed(label: str, config_path: Path) -> None:
            jobs = planned_jobs(snakemake(base, replace, "--dry-run", *TARGETS, config=config_path))
            t0 = time.perf_counter()
            snakemake(base, replace, *TARGETS, config=config_path)
            rows.append((label, time.perf_counter() - t0, sum(jobs.values()) - jobs.get("all", 0)))

        timed("full run", config)
        for cat in ("a", "b", "c"):
            write_image(base / f"data/images/{cat}/new.png", 999 + ord(cat))
        timed("+1 image per category", config)
        levels = cfg["effects"]["image"]["blur"]["levels"]
        levels["high"]["sigma"] = float(levels["high"]["sigma"]) + 0.5
        timed("one parameter changed", write_config(base, cfg, "changed.yaml"))
    full = rows[0][1]
    print(f"\n{'run':28s} {'seconds':>8s} {'jobs':>5s} {'vs full':>8s}")
    for label, seconds, jobs in rows:
        print(f"{label:28s} {seconds:8.1f} {jobs:5d} {seconds / full:8.2f}")


if __name__ == "__main__":
    main()
