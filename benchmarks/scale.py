"""Benchmark: every job after extraction inside the memory it declares, from 10^3 to 10^6 files.

    .venv/bin/python benchmarks/scale.py --sizes 10000,30000,100000 --phase1-max 10000 --json
    .venv/bin/python benchmarks/scale.py --sizes 300 --json          # the tiny `make benchmark` run

Synthetic embeddings of the real dimensions (768 image, 512 audio) for N files x 12 variants
(4 effects x 3 intensities, the default config) are written as the embedding jobs write them;
then each job after extraction runs as its own process, exactly the job function its rule
calls: ``deltas`` (image, audio), ``sensitivity``, ``linearity``, ``split`` and ``phase1``
(its text towers stubbed by seeded random vectors; its resampling counts cut, see
``PHASE1_OPTIONS``; everything else, the I/O included, real). Per job: its peak RSS (the
process's ``VmHWM``), the ``mem_mb`` its rule declares for those inputs
(``delta_v2a.resources``, what the rules call with ``input.size_files_mb``) and its wall time.
``--json`` prints one line per job (``rule``, ``n_files``, ``peak_mb``, ``declared_mb``,
``wall_s``) and a last line with the 10^6 extrapolation and the cost model's wall time on 1, 8
and 64 nodes. Figures and the cost model: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from delta_v2a import resources  # noqa: E402
from delta_v2a.artifacts.health import HealthReport  # noqa: E402
from delta_v2a.config import load_config  # noqa: E402
from delta_v2a.jobs.common import Paths  # noqa: E402
from delta_v2a.settings import (  # noqa: E402
    DeltasSettings,
    linearity_settings,
    phase1_settings,
    sensitivity_settings,
    split_settings,
)
from delta_v2a.storage import EmbeddingTable  # noqa: E402

DIMS = {"image": 768, "audio": 512}
N_CATEGORIES = 10
#: Phase 1's resampling counts here (the defaults are 1000 / 1000 / 10,000 / 5 seeds): they set
#: its time, not its memory (every draw is a batch over the same file sums).
PHASE1_OPTIONS = {"n_permutations": 100, "n_bootstrap": 100, "n_foil_draws": 500}
PHASE1_SEEDS = 1


def config() -> dict:
    return load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")


def labels(cfg: dict, modality: str) -> tuple[list[str], list[str]]:
    return list(cfg["run_effects"][modality]), list(cfg["intensities"])


# --------------------------------------------------------------------------- inputs


def make_inputs(folder: Path, n: int, cfg: dict) -> None:
    """The originals and every variant's table per modality, a manifest and health files.

    Each variant moves every file along its own direction (scaled by intensity) plus noise, one
    table in memory at a time (what an embedding job holds)."""
    rng = np.random.default_rng(0)
    for modality, dim in DIMS.items():
        effects, intensities = labels(cfg, modality)
        ext = "jpg" if modality == "image" else "wav"
        cats = np.array([f"cat{i % N_CATEGORIES}" for i in range(n)])
        paths = np.array([f"/data/{modality}/{c}/file_{i:07d}.{ext}" for i, c in enumerate(cats)])
        orig = rng.standard_normal((n, dim), dtype=np.float32)
        base = folder / "embeddings" / modality
        meta = {"model": {"name_or_path": f"synthetic-{modality}", "dim": dim}, "decoding": {}}
        meta |= {"effect": None, "intensity": None, "effect_params": {}, "n_cached": 0}
        EmbeddingTable(paths, cats, orig, meta).save(base / "original.npz")
        for effect in effects:
            direction = rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
            for k, intensity in enumerate(intensities):
                noise = 0.05 * rng.standard_normal((n, dim), dtype=np.float32)
                emb = orig + (k + 1) * 0.1 * direction + noise
                vmeta = meta | {"effect": effect, "intensity": intensity}
                EmbeddingTable(paths, cats, emb, vmeta).save(base / effect / f"{intensity}.npz")
                del emb, noise
        if modality == "audio":
            with open(folder / "audio.tsv", "w", encoding="utf-8") as fh:
                fh.write("path\tcategory\tmodality\tsha256\n")
                for p, c in zip(paths, cats, strict=True):
                    fh.write(f"{p}\t{c}\taudio\t{zlib.crc32(p.encode()):064x}\n")
        HealthReport(
            model={"name_or_path": f"synthetic-{modality}"},
            text_mean_pairwise_cosine=0.3,
            audio_mean_pairwise_cosine=None,
            limit=0.95,
            batch_max_cosine_distance={},
            batch_limit=1e-4,
            passed=True,
            message=f"synthetic-{modality}: synthetic health report",
            modality=modality,
        ).write(folder / f"health_{modality}.json")


def rule_inputs(folder: Path, rule: str, cfg: dict, modality: str = "image") -> list[str]:
    """A rule's inputs in its input order (what ``input.size_files_mb`` lists)."""
    health = [str(folder / f"health_{m}.json") for m in DIMS]
    stores = [str(folder / f"{m}_deltas.npz") for m in DIMS]
    if rule == "deltas":
        effects, intensities = labels(cfg, modality)
        base = folder / "embeddings" / modality
        variants = [str(base / e / f"{i}.npz") for e in effects for i in intensities]
        return [str(base / "original.npz"), *variants]
    if rule in ("sensitivity", "linearity"):
        return stores + health
    if rule == "split":
        return [str(folder / "audio.tsv")]
    return [*stores, str(folder / "split.json"), *health]


def declared_mb(folder: Path, rule: str, cfg: dict, modality: str = "image") -> int:
    sizes = [os.path.getsize(p) / 2**20 for p in rule_inputs(folder, rule, cfg, modality)]
    effects, intensities = labels(cfg, modality)
    return resources.mem_mb(rule, sizes, len(effects) * len(intensities), len(effects))


# --------------------------------------------------------------------------- one job (child)


class _Tower:
    """A text tower stand-in: a seeded random unit vector per text, of the real width."""

    def __init__(self, dim: int, name: str) -> None:
        self.dim, self.name = dim, name

    def embed_texts(self, texts, batch_size=64):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            out[r] = np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @property
    def info(self):
        name, dim = self.name, self.dim

        class Info:
            def to_dict(self):
                return {"name_or_path": name, "dim": dim, "synthetic": True}

        return Info()


def run_child(folder: Path, rule: str, modality: str, seed_json: str) -> None:
    """Run one job function in this process; print its peak RSS (MB) as one JSON line."""
    cfg = config()
    ins = rule_inputs(folder, rule, cfg, modality)
    out = folder / "out"
    if rule == "deltas":
        from delta_v2a.jobs.deltas import run_deltas

        effects, intensities = labels(cfg, modality)
        suffix = {"full": ".json", "gzip": ".json.gz", "none": None}[seed_json]
        outputs = {"store": str(folder / f"{modality}_deltas.npz")}
        outputs["meta"] = str(out / f"{modality}_deltas.meta.json")
        if suffix:
            outputs["json"] = str(out / f"{modality}_deltas{suffix}")
        settings = DeltasSettings(modality, tuple(effects), tuple(intensities), 0, seed_json)
        run_deltas(
            inputs=Paths(original=ins[0], variants=ins[1:]),
            outputs=Paths(**outputs),
            settings=settings,
        )
    elif rule in ("sensitivity", "linearity"):
        from delta_v2a.jobs import phase0

        inputs = Paths(stores=ins[:2], health=ins[2:])
        if rule == "sensitivity":
            outputs = Paths(json=str(out / "s.json"), figure=str(out / "s.png"))
            phase0.run_sensitivity(
                inputs=inputs, outputs=outputs, settings=sensitivity_settings(cfg)
            )
        else:
            outputs = Paths(
                json=str(out / "l.json"), cross=str(out / "c.json"), figure=str(out / "l.png")
            )
            phase0.run_linearity(inputs=inputs, outputs=outputs, settings=linearity_settings(cfg))
    elif rule == "split":
        from delta_v2a.jobs.split import run_split

        run_split(
            inputs=Paths(manifest=ins[0]),
            outputs=Paths(split=str(folder / "split.json")),
            settings=split_settings(cfg),
        )
    else:
        run_phase1_stubbed(folder, cfg, ins, out)
    print(json.dumps({"peak_mb": round(peak_rss_mb(), 1)}))


def peak_rss_mb() -> float:
    """This process's peak resident set (MB): ``VmHWM``, the high-water mark of its own
    address space. Not ``ru_maxrss``: Linux carries that across exec, so a job started by a
    large parent would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase1_stubbed(folder: Path, cfg: dict, ins: list[str], out: Path) -> None:
    import dataclasses

    from delta_v2a.jobs import phase1 as job

    towers = {"image": _Tower(768, "stub-clip"), "audio": _Tower(512, "stub-clap")}
    job.load_embedder_for_job = lambda model, threads: towers[model.modality]
    settings = phase1_settings(cfg)
    options = dataclasses.replace(settings.options, **PHASE1_OPTIONS)
    settings = dataclasses.replace(settings, options=options, stability_seeds=PHASE1_SEEDS)
    names = ("matrix", "labels", "components", "table", "heatmap", "panels", "intensity")
    ext = {"matrix": "npy", "labels": "json", "components": "npz", "table": "tsv"}
    outputs = Paths(**{k: str(out / f"p1_{k}.{ext.get(k, 'png')}") for k in names})
    inputs = Paths(image=ins[0], audio=ins[1], split=ins[2], health=ins[3:])
    job.run_phase1(inputs=inputs, outputs=outputs, settings=settings, threads=1)


# --------------------------------------------------------------------------- the run (parent)


JOBS = [
    ("deltas", "image"),
    ("deltas", "audio"),
    ("sensitivity", "-"),
    ("linearity", "-"),
    ("split", "-"),
    ("phase1", "-"),
]


def run_size(n: int, args, cfg: dict) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix=f"scale-{n}-", dir=args.tmp))
    rows = []
    try:
        t0 = time.perf_counter()
        make_inputs(folder, n, cfg)
        print(f"# {n} files: inputs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for rule, modality in JOBS:
            if (rule == "phase1" and n > args.phase1_max) or (args.only and rule not in args.only):
                continue
            seed_json = args.seed_json if n <= args.full_json_max else "none"
            cmd = [sys.executable, __file__, "--child", rule, "--dir", str(folder)]
            cmd += ["--modality", "image" if modality == "-" else modality]
            cmd += ["--seed-json", seed_json]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            if done.returncode:
                sys.exit(f"{rule} at {n} files failed:\n{done.stderr[-3000:]}")
            peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]
            m = modality if modality != "-" else "image"
            sizes = [os.path.getsize(p) / 2**20 for p in rule_inputs(folder, rule, cfg, m)]
            row = {
                "rule": rule if modality == "-" else f"{rule}:{modality}",
                "n_files": n,
                "peak_mb": peak,
                "declared_mb": declared_mb(folder, rule, cfg, m),
                "wall_s": round(wall, 2),
                "input_mb": round(sum(sizes), 1),
                "sizes_mb": [round(x, 3) for x in sizes],
            }
            if rule == "deltas":
                row["seed_json"] = seed_json
            rows.append(row)
            print(json.dumps(row) if args.json else _line(row), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _line(row: dict) -> str:
    ok = "ok" if row["peak_mb"] <= row["declared_mb"] else "OVER"
    return (
        f"{row['rule']:<14} {row['n_files']:>8} files: peak {row['peak_mb']:>8.0f} MB, "
        f"declared {row['declared_mb']:>7} MB ({ok}), {row['wall_s']:>7.1f} s"
    )


def extrapolate(rows: list[dict], target: int = 10**6) -> dict:
    """Per rule: input, peak and wall at ``target`` files, each by a least-squares line in the
    number of files through the three largest sizes measured (every job here is linear in its
    input; the smallest sizes are dominated by the process's fixed cost); the declaration is the
    cost model's for the inputs extrapolated file by file (a line through declarations would
    carry their 100 MB rounding and floor)."""
    out = {}
    for rule in dict.fromkeys(r["rule"] for r in rows):
        pts = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r["n_files"])[-3:]
        if len(pts) < 2:
            continue
        n = np.array([r["n_files"] for r in pts], dtype=float)
        fit = {}
        for key in ("peak_mb", "wall_s", "input_mb"):
            slope, icept = np.polyfit(n, [r[key] for r in pts], 1)
            fit[key] = round(float(slope * target + icept), 1)
        slopes, icepts = np.polyfit(n, np.array([r["sizes_mb"] for r in pts], dtype=float), 1)
        sizes = slopes * target + icepts
        fit["declared_mb"] = resources.mem_mb(rule.split(":")[0], sizes, 12, 4)
        out[rule] = fit | {"from_sizes": [int(x) for x in n]}
    return out


def nodes_prediction(fit: dict, slots_per_node: int = 1) -> dict:
    """Wall minutes of vetting + deltas + Phase 0 + split + Phase 1 at 10^6 files on 1, 8 and 64
    nodes, from the extrapolated per-job wall times (vetting: its shards)."""

    def minutes(rule):
        return fit.get(rule, {}).get("wall_s", 0.0) / 60

    vet_jobs, threads = 64, 16  # extract.shard_files 64, a 16-core node per vetting job
    vet_min = 10**6 / vet_jobs * 0.0275 / threads / 60  # 27.5 ms a decode, measured
    stages = [
        (2 * vet_jobs, vet_min),
        (2, max(minutes("deltas:image"), minutes("deltas:audio"))),
        (2, max(minutes("sensitivity"), minutes("linearity"))),
        (1, minutes("split")),
        (1, minutes("phase1")),
    ]
    return {
        str(k): round(resources.wall_on_nodes(stages, k, slots_per_node), 1) for k in (1, 8, 64)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3000,10000,30000")
    ap.add_argument("--phase1-max", type=int, default=10_000, help="largest N for Phase 1")
    ap.add_argument("--seed-json", default="full", choices=("full", "gzip", "none"))
    ap.add_argument("--full-json-max", type=int, default=10_000, help="larger N: no seed JSON")
    ap.add_argument("--tmp", default=None, help="where the inputs go (default: $TMPDIR)")
    ap.add_argument("--only", type=lambda t: t.split(","), default=None, help="rules to run")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--modality", default="image", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(Path(args.dir), args.child, args.modality, args.seed_json)
        return
    cfg = config()
    rows = [r for n in map(int, args.sizes.split(",")) for r in run_size(n, args, cfg)]
    fit = extrapolate(rows)
    summary = {"extrapolated_1e6": fit, "nodes_wall_min_1e6": nodes_prediction(fit)}
    summary["over"] = [r for r in rows if r["peak_mb"] > r["declared_mb"]]
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))
    if summary["over"]:
        sys.exit(f"{len(summary['over'])} job(s) exceeded their declared memory")


if __name__ == "__main__":
    main()
