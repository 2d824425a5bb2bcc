"""Benchmark: does every model job keep its accelerator fed? Ratios measured in one run.

    .venv/bin/python benchmarks/extraction.py            # everything, human-readable
    .venv/bin/python benchmarks/extraction.py --json     # ... and one JSON line last
    .venv/bin/python benchmarks/extraction.py --skip-workflow   # (i), (iii) and (iv) only

(i) preparation throughput (decode + effect + the model's preprocessing + a tiny model's
    forward pass, i.e. the CPU pipeline of a model job) with 1 worker and with ``--threads``
    workers, on generated 12 MP JPEGs and 5-minute MP3s; also threads against processes for
    decode + effect alone;
(ii) the whole extraction (manifests, 2 + 24 model jobs, deltas) through the real Snakemake on
    the demo data, against the single-process bound (one process, each model loaded once, the
    same vetting, rendering, embedding, gathering and JSON), in one run at
    ``extract.group: variant`` (GPU slots off, ``--resources gpu=1``, and on, ``gpu=2``), at
    ``modality`` (2 model jobs) and at ``modality`` with ``--shards`` file shards (compared bit
    for bit with ``variant``); each model job's start -> first batch from its log;
(iii) seed JSON records/s for 768-d records (wall clock and CPU time);
(iv) ``snakemake --dry-run`` over ``--plan-files`` synthetic inventory entries per modality
    (no media; common.smk reads them via delta_v2a.config.plan_inventory), shards off and
    ``--plan-shards``: wall time and peak RSS.

Figures are ratios of runs made side by side (best of ``--repeat``), because this machine is
shared and absolute times swing 2-10x. Cost model and figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from delta_v2a.config import effect_names, effect_params, load_config  # noqa: E402
from delta_v2a.extract import Decoding, embed_variant, gather, render, vet  # noqa: E402
from delta_v2a.jobs.common import prefer_item_parallelism, quiet_hugging_face  # noqa: E402
from delta_v2a.media import MediaFile, discover  # noqa: E402
from delta_v2a.models import load_embedder  # noqa: E402
from delta_v2a.prefetch import prefetched_batches  # noqa: E402
from delta_v2a.storage import DeltaStore, EmbeddingTable, write_deltas_json  # noqa: E402

PY = str(Path(sys.executable))
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


# --------------------------------------------------------------------------- inputs


def make_jpegs(folder: Path, n: int) -> list[MediaFile]:
    """12 MP (4000 x 3000) photo-like JPEGs: smooth colour fields with grain, quality 90."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC))
        img = np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
        path = folder / "photos" / f"photo_{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, quality=90)
        files.append(MediaFile(str(path), "photos", "image"))
    return files


def make_mp3s(folder: Path, n: int, seconds: float = 300.0, sr: int = 44_100) -> list[MediaFile]:
    """5-minute stereo MP3s at 44.1 kHz: harmonic tones with noise (libsndfile's encoder)."""
    rng = np.random.default_rng(1)
    files = []
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        x = 0.2 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)
        path = folder / "music" / f"track_{i:03d}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.stack([x, x[::-1]], axis=1).astype(np.float32), sr, format="MP3")
        files.append(MediaFile(str(path), "music", "audio"))
    return files


def ensure_models_and_demo(work: Path, models: Path | None, demo: Path | None) -> tuple[Path, Path]:
    """Use the given tiny models / demo media, or write fresh ones (offline, seeded)."""
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    if models is None or not (models / "tiny-clip").is_dir():
        models = work / "models"
        subprocess.run([PY, "-m", "delta_v2a.tiny_models", str(models)], check=True, env=env)
    if demo is None or not (demo / "images").is_dir():
        demo = work / "demo"
        subprocess.run([PY, "-m", "delta_v2a.demo", str(demo)], check=True, env=env)
    return models, demo


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------- (i) preparation


def prep_scaling(embedder, files, decoding, effect, params, batch, threads, repeat) -> dict:
    """Throughput of the job's CPU pipeline with 1 worker vs ``threads``; threads vs processes."""
    one_job = partial(embed_variant, embedder, files, decoding, effect, params, batch, 1)
    many_job = partial(embed_variant, embedder, files, decoding, effect, params, batch, threads)
    cv_default = cv2.getNumThreads()

    def one() -> None:  # what a job did before: one worker, OpenCV on every core
        cv2.setNumThreads(cv_default)
        one_job()

    def many() -> None:  # what a job does now (jobs.common.prefer_item_parallelism)
        prefer_item_parallelism(threads)
        many_job()
        cv2.setNumThreads(cv_default)

    render_one = partial(render, decoding=decoding, effect=effect, params=params)

    def pool(kind: str, workers: int = threads) -> None:
        prefer_item_parallelism(workers)  # as a job does
        for _ in prefetched_batches(files, render_one, batch, workers, kind=kind):
            pass
        cv2.setNumThreads(cv_default)

    t1, tn, r1, tt, tp = (float("inf"),) * 5
    for _ in range(repeat):  # interleaved, so load swings hit all alike
        t1 = min(t1, best(one, 1))
        tn = min(tn, best(many, 1))
        r1 = min(r1, best(lambda: pool("thread", 1), 1))
        tt = min(tt, best(lambda: pool("thread"), 1))
        tp = min(tp, best(lambda: pool("process"), 1))
    n = len(files)
    return {
        "files": n,
        "one_worker_files_per_s": n / t1,
        "workers_files_per_s": n / tn,
        "scaling": t1 / tn,
        "render_one_worker_files_per_s": n / r1,
        "render_scaling": r1 / tt,
        "render_threads_files_per_s": n / tt,
        "render_processes_files_per_s": n / tp,
        "threads_over_processes": tp / tt,
    }


# --------------------------------------------------------------------------- (ii) workflow


def subset(n_effects: int, n_intensities: int, batch: int) -> dict:
    """The default config cut to the first effects / intensities (for a loaded machine), with
    CPU batches of ``batch`` files (several batches per job, so file shards split)."""
    cfg = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
    cfg["intensities"] = cfg["intensities"][:n_intensities]
    cfg["models"]["batch_size"]["cpu"] = {"image": batch, "audio": batch}
    for m in ("image", "audio"):
        cfg["run_effects"][m] = effect_names(cfg, m)[:n_effects]
    return cfg


def workflow_config(
    demo: Path, models: Path, out: Path, cut: dict, extract: dict | None = None
) -> Path:
    """The benchmark's config overlay; ``extract``: the job granularity keys (extract.group,
    extract.shard_files). Batch sizes come from ``cut`` (the bound uses the same)."""
    cfg = {
        "intensities": cut["intensities"],
        "run_effects": cut["run_effects"],
        "data": {"images": str(demo / "images"), "audio": str(demo / "audio")},
        "models": {
            "image": str(models / "tiny-clip"),
            "audio": str(models / "tiny-clap"),
            "device": "cpu",
            "health": {"allow_unhealthy": True},
            "batch_size": {"cpu": cut["models"]["batch_size"]["cpu"]},
        },
        "cache": {"enabled": False},
        "extract": extract or {"group": "variant", "shard_files": 0},
    }
    out.write_text(yaml.safe_dump(cfg))
    return out


def run_workflow(config: Path, work: Path, cores: int, slots: int) -> float:
    """Wall time of the extraction through the real Snakemake in a fresh directory (kept
    afterwards: its logs and stores are read by :func:`first_batch_delays` and compared)."""
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    cmd = [SNAKEMAKE, "results/image_deltas.json", "results/audio_deltas.json"]
    cmd += ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)]
    cmd += ["--cores", str(cores), "--resources", f"gpu={slots}", "--configfile", str(config)]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def single_process_bound(demo: Path, models: Path, threads: int, cfg: dict) -> float:
    """The same work in one process, each model loaded once: the floor a workflow can reach."""
    intensities = list(cfg["intensities"])
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    for modality, root, name in (
        ("image", demo / "images", "tiny-clip"),
        ("audio", demo / "audio", "tiny-clap"),
    ):
        files = discover(str(root), modality)
        vet_dec = Decoding(modality, preroll=48_000)
        good, _, _ = vet(files, vet_dec, workers=threads)
        embedder = load_embedder(modality, str(models / name), device="cpu", dtype="fp32")
        if modality == "image":
            dec = Decoding("image", image_size=embedder.input_size)
        else:
            sr = embedder.sampling_rate
            dec = Decoding("audio", sampling_rate=sr, window=embedder.window_samples, preroll=sr)
        batch = cfg["models"]["batch_size"]["cpu"][modality]
        orig = embed_variant(embedder, good, dec, None, {}, batch, threads)
        paths = np.array([f.path for f in good])
        cats = np.array([f.category for f in good])
        table = EmbeddingTable(paths, cats, orig)
        effects = effect_names(cfg, modality)
        variants = [
            (e, i, EmbeddingTable(paths, cats, embed_variant(
                embedder, good, dec, e, effect_params(cfg, modality, e, i), batch, threads
            )))
            for e in effects
            for i in intensities
        ]  # fmt: skip
        store, aug = gather(modality, table, variants, effects, intensities, {})
        write_deltas_json(io.BytesIO(), store, aug)
    return time.perf_counter() - t0


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def first_batch_delays(work: Path) -> dict:
    """Per model job (its log under logs/embed/): seconds from the job's process start (the
    first line's time minus its ``process up`` figure) and from its first log line to its first
    embedded batch. The median over jobs, and each job's figures."""
    jobs = {}
    for log in sorted((work / "logs/embed").rglob("*.log")):
        lines = log.read_text(encoding="utf-8").splitlines()
        first = next((x for x in lines if "process up" in x), None)
        batch = next((x for x in lines if "] embedded " in x), None)
        if first is None or batch is None:
            continue
        t0, t1 = (_stamp(x) for x in (first, batch))
        up = float(re.search(r"process up ([\d.]+) s", first).group(1))
        name = log.relative_to(work / "logs/embed").with_suffix("").as_posix()
        jobs[name] = {"from_process_start": t1 - t0 + up, "from_first_log_line": t1 - t0}
    if not jobs:
        raise SystemExit(f"no model job logs with a first batch under {work}/logs/embed")
    return {
        "median_from_process_start": float(
            np.median([j["from_process_start"] for j in jobs.values()])
        ),
        "median_from_first_log_line": float(
            np.median([j["from_first_log_line"] for j in jobs.values()])
        ),
        "jobs": jobs,
    }


def _stamp(line: str) -> float:
    text = STAMP.match(line).group(1)
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def same_deltas(a: Path, b: Path) -> bool:
    """Two runs' delta stores, seed JSON and meta: the same bytes, modality by modality."""
    for m in ("image", "audio"):
        x = DeltaStore.load(a / f"results/{m}_deltas.npz")
        y = DeltaStore.load(b / f"results/{m}_deltas.npz")
        names = ("delta", "original", "file_index", "effect_code", "intensity_code", "files")
        if any(not np.array_equal(getattr(x, n), getattr(y, n)) for n in names):
            return False
        if x.delta.tobytes() != y.delta.tobytes() or x.meta != y.meta:
            return False
        for ext in ("json", "meta.json"):
            if (a / f"results/{m}_deltas.{ext}").read_bytes() != (
                b / f"results/{m}_deltas.{ext}"
            ).read_bytes():
                return False
    return True


# --------------------------------------------------------------------------- (iv) 10^6-file plan


def plan_inventories(folder: Path, n_files: int) -> None:
    """Inventories of ``n_files`` synthetic entries per modality (path, size, a made-up
    SHA-256; no media exist), in the format of the walk's (inventory.media_inventory), 100
    categories."""
    from delta_v2a.inventory import INVENTORY_HEADER

    folder.mkdir(parents=True, exist_ok=True)
    for modality, root, ext in (("image", "images", "jpg"), ("audio", "audio", "mp3")):
        lines = [INVENTORY_HEADER]
        lines += [
            f"data/{root}/cat{i % 100:02d}/{modality}_{i:07d}.{ext}\t{100_000 + i}\t{i:064x}"
            for i in range(n_files)
        ]
        (folder / f"{modality}.inventory.tsv").write_text("\n".join(lines) + "\n")


def plan_run(work: Path, models: Path, inventories: Path, shards: int) -> dict:
    """``snakemake --dry-run`` of every target with ``extract.shard_files: shards``, in a fresh
    folder whose data roots hold one file each (the prepared inventories replace the walk's,
    and the parse-time data-size check counts their rows):
    wall time, peak RSS (of the largest process: Snakemake itself), and the jobs planned."""
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    for sub in ("data/images/cat00", "data/audio/cat00"):
        (work / sub).mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(work / "data/images/cat00/one.png")
    sf.write(work / "data/audio/cat00/one.wav", np.zeros(4800, np.float32), 48_000)
    cfg = {
        "data": {"images": "data/images", "audio": "data/audio"},
        "models": {"image": str(models / "tiny-clip"), "audio": str(models / "tiny-clap")},
        "extract": {"group": "variant", "shard_files": shards},
    }
    (work / "plan.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)]
    cmd += ["--configfile", str(work / "plan.yaml"), "--dry-run", "--quiet", "rules"]
    peak = "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
    peak += "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    peak += "sys.exit(p.returncode)"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "DELTA_V2A_PLAN_INVENTORY": str(inventories)}
    t0 = time.perf_counter()
    proc = subprocess.run([PY, "-c", peak, *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = proc.stdout + proc.stderr
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    peak_kb = jobs.pop("PEAK")  # the largest process's peak RSS (Snakemake's own; no jobs run)
    return {"s": wall, "peak_mb": peak_kb / 1024, "jobs": jobs}


# --------------------------------------------------------------------------- (iii) JSON


def json_rate(n_files: int = 200, dim: int = 768) -> tuple[float, float]:
    """Seed JSON records/s (wall, CPU) for 12 variants x ``n_files`` records of ``dim``-d."""
    rng = np.random.default_rng(0)
    n = n_files * 12
    store = DeltaStore(
        modality="image",
        delta=rng.standard_normal((n, dim)).astype(np.float32) * 0.01,
        file_index=np.tile(np.arange(n_files), 12),
        effect_code=np.repeat(np.arange(4), 3 * n_files).astype(np.int16),
        intensity_code=np.tile(np.repeat(np.arange(3), n_files), 4).astype(np.int16),
        files=np.array([f"data/images/cat/photo_{i:05d}.jpg" for i in range(n_files)]),
        file_category=np.array(["cat"] * n_files),
        original=rng.standard_normal((n_files, dim)).astype(np.float32) * 0.036,
        effects=np.array(["blur", "brightness", "saturation", "contrast"]),
        intensities=np.array(["low", "mid", "high"]),
    )
    aug = store.original[store.file_index] + store.delta
    with open(os.devnull, "wb") as fh:
        c0, t0 = time.process_time(), time.perf_counter()
        write_deltas_json(fh, store, aug)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, n / cpu


# --------------------------------------------------------------------------- main


def workflow_figures(args: argparse.Namespace, work: Path, models: Path, demo: Path) -> dict:
    """(ii): the bound, then the workflow at each granularity, all in this one run."""
    cut = subset(args.wf_effects, args.wf_intensities, args.wf_batch)
    runs = {
        "variant": {"group": "variant", "shard_files": 0},
        "modality": {"group": "modality", "shard_files": 0},
        "shards": {"group": "modality", "shard_files": args.shards},
    }
    configs = {
        k: workflow_config(demo, models, work / f"{k}.yaml", cut, e) for k, e in runs.items()
    }
    bound = single_process_bound(demo, models, args.threads, cut)
    wall = {k: run_workflow(configs[k], work / f"wf_{k}", args.cores, 1) for k in runs}
    if not args.skip_slots:
        wall["slots"] = run_workflow(configs["variant"], work / "wf_slots", args.cores, 2)
    bound = min(bound, single_process_bound(demo, models, args.threads, cut))
    n_jobs = 2 * (1 + len(cut["intensities"]) * len(cut["run_effects"]["image"]))
    delays = {k: first_batch_delays(work / f"wf_{k}") for k in ("variant", "modality")}
    out = {"bound_s": bound, "workflow_s": wall["variant"], "workflow_model_jobs": n_jobs}
    out |= {"workflow_grouped_s": wall["modality"], "workflow_shards_s": wall["shards"]}
    out |= {"workflow_over_bound": wall["variant"] / bound}
    out |= {"workflow_over_bound_grouped": wall["modality"] / bound}
    out |= {"workflow_over_bound_shards": wall["shards"] / bound}
    if "slots" in wall:
        out |= {
            "workflow_slots_s": wall["slots"],
            "workflow_over_bound_slots": wall["slots"] / bound,
        }
    out["job_start_to_first_batch_s"] = {
        k: {m: v for m, v in d.items() if m != "jobs"} | {"n_jobs": len(d["jobs"])}
        for k, d in delays.items()
    }
    out["job_start_to_first_batch_jobs"] = {k: d["jobs"] for k, d in delays.items()}
    out["shards_identical"] = same_deltas(work / "wf_variant", work / "wf_shards")
    start = out["job_start_to_first_batch_s"]
    print(
        f"(ii) extraction on the demo data ({n_jobs} model jobs at extract.group: variant): "
        f"single-process bound {bound:.1f} s; Snakemake gpu=1: variant {wall['variant']:.1f} s "
        f"(x{wall['variant'] / bound:.2f}), modality {wall['modality']:.1f} s "
        f"(x{wall['modality'] / bound:.2f}), modality x {args.shards} shards "
        f"{wall['shards']:.1f} s (x{wall['shards'] / bound:.2f}; identical to variant: "
        f"{out['shards_identical']})"
        + (f", gpu=2 slots {wall['slots']:.1f} s" if "slots" in wall else "")
    )
    print(
        "    job start -> first batch, median per job: variant "
        f"{start['variant']['median_from_process_start']:.2f} s "
        f"({start['variant']['median_from_first_log_line']:.2f} s after its first log line), "
        f"modality {start['modality']['median_from_process_start']:.2f} s"
    )
    return out


def plan_figures(args: argparse.Namespace, work: Path, models: Path) -> dict:
    """(iv): dry runs over ``--plan-files`` synthetic entries per modality, shards off and on."""
    inventories = work / "plan_inventories"
    t0 = time.perf_counter()
    plan_inventories(inventories, args.plan_files)
    made = time.perf_counter() - t0
    plans = {n: plan_run(work / f"plan_{n}", models, inventories, n) for n in (0, args.plan_shards)}
    on = plans[args.plan_shards]
    for n, r in plans.items():
        print(
            f"(iv) dry run, {args.plan_files:,} files per modality, shard_files {n}: "
            f"{r['s']:.1f} s, peak RSS {r['peak_mb']:.0f} MB, {r['jobs'].get('total', 0)} jobs "
            f"(inventories written in {made:.1f} s)"
        )
    return {
        "plan_files_per_modality": args.plan_files,
        "plan_shards": args.plan_shards,
        "plan_1e6_s": on["s"],
        "plan_1e6_peak_mb": on["peak_mb"],
        "plan_1e6_jobs": on["jobs"].get("total"),
        "plan_unsharded_s": plans[0]["s"],
        "plan_unsharded_peak_mb": plans[0]["peak_mb"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", type=Path, default=ROOT / "resources/models")
    p.add_argument("--demo", type=Path, default=ROOT / "resources/demo")
    p.add_argument("--threads", type=int, default=2, help="workers of a job (rule threads)")
    p.add_argument("--jpegs", type=int, default=16)
    p.add_argument("--mp3s", type=int, default=4)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--skip-workflow", action="store_true")
    p.add_argument("--wf-effects", type=int, default=4, help="effects per modality in (ii)")
    p.add_argument("--wf-intensities", type=int, default=3, help="intensities in (ii)")
    p.add_argument("--wf-batch", type=int, default=4, help="CPU batch size in (ii)")
    p.add_argument("--shards", type=int, default=3, help="extract.shard_files of (ii)'s shard run")
    p.add_argument("--skip-slots", action="store_true", help="(ii) without the gpu=2 run")
    p.add_argument("--skip-plan", action="store_true", help="without (iv), the 10^6-file plan")
    p.add_argument("--plan-files", type=int, default=10**6, help="entries per modality in (iv)")
    p.add_argument("--plan-shards", type=int, default=64, help="extract.shard_files in (iv)")
    p.add_argument("--json", action="store_true", help="print one JSON line last")
    args = p.parse_args()
    out: dict = {"threads": args.threads, "cpu_count": os.cpu_count()}
    quiet_hugging_face()
    out["load_average_start"] = os.getloadavg()[0]  # a shared machine: say how busy it was
    with tempfile.TemporaryDirectory(prefix="delta_v2a_bench_") as tmp:
        work = Path(tmp)
        models, demo = ensure_models_and_demo(work, args.models, args.demo)
        torch.set_num_threads(args.threads)
        clip = load_embedder("image", str(models / "tiny-clip"), device="cpu")
        clap = load_embedder("audio", str(models / "tiny-clap"), device="cpu")
        t0 = time.perf_counter()
        jpegs = make_jpegs(work / "media", args.jpegs)
        mp3s = make_mp3s(work / "media", args.mp3s)
        print(f"generated {len(jpegs)} JPEGs, {len(mp3s)} MP3s in {time.perf_counter() - t0:.0f} s")
        img = prep_scaling(  # each file 3x, batches of 8: several batches, so the pool overlaps
            clip, jpegs * 3, Decoding("image", image_size=clip.input_size), "blur",
            {"sigma": 2.0}, 8, args.threads, args.repeat,
        )  # fmt: skip
        sr = clap.sampling_rate
        aud_dec = Decoding("audio", sampling_rate=sr, window=clap.window_samples, preroll=sr)
        aud = prep_scaling(
            clap, mp3s * 2, aud_dec, "lpf", {"cutoff_hz": 2000.0, "order": 4},
            8, args.threads, args.repeat,
        )  # fmt: skip
        for name, r in (("image (12 MP JPEG)", img), ("audio (5 min MP3)", aud)):
            print(
                f"(i) {name}: 1 worker {r['one_worker_files_per_s']:.1f} files/s, "
                f"{args.threads} workers {r['workers_files_per_s']:.1f} files/s -> "
                f"x{r['scaling']:.2f}; decode+effect alone x{r['render_scaling']:.2f} "
                f"({r['render_one_worker_files_per_s']:.1f} files/s with 1 worker), "
                f"threads {r['render_threads_files_per_s']:.1f}"
                f" vs processes {r['render_processes_files_per_s']:.1f} files/s "
                f"(threads/processes speed x{r['threads_over_processes']:.2f})"
            )
        out |= {"prep_scaling_image": img["scaling"], "prep_scaling_audio": aud["scaling"]}
        out |= {"prep_image": img, "prep_audio": aud}
        if not args.skip_workflow:
            out |= workflow_figures(args, work, models, demo)
        if not args.skip_plan:
            out |= plan_figures(args, work, models)
        wall_rate, cpu_rate = max(json_rate() for _ in range(args.repeat))
        out |= {"json_records_per_s": wall_rate, "json_records_per_cpu_s": cpu_rate}
        print(f"(iii) seed JSON, 768-d: {wall_rate:,.0f} records/s wall, {cpu_rate:,.0f} per CPU s")
    out["load_average_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
