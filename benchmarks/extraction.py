"""Benchmark: batched vs naive (one file per forward pass) extraction, same run, same files.

    .venv/bin/python benchmarks/extraction.py                # demo media + tiny models
    .venv/bin/python benchmarks/extraction.py --rules        # also summarise results/benchmarks

Cost model: time = model load + files × (decode + effect + forward). Batching amortises the
per-call overhead of the forward pass; the decode/effect work is overlapped by a prefetch
thread. Figures are ratios measured side by side in one process, because this machine is
shared and absolute times swing 2-10x.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import time
from pathlib import Path

import torch

from delta_v2a.extract import Decoding, embed_variant, render
from delta_v2a.media import discover
from delta_v2a.models import load_embedder


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_modality(modality: str, model: str, root: str, batch: int, repeat: int) -> None:
    t0 = time.perf_counter()
    embedder = load_embedder(modality, model, device="cpu", dtype="fp32")
    load_s = time.perf_counter() - t0
    files = discover(root, modality)
    if modality == "image":
        dec = Decoding("image", image_size=embedder.input_size)
        effect, params = "blur", {"sigma": 2.0}
    else:
        sr = embedder.sampling_rate
        dec = Decoding("audio", sampling_rate=sr, window=embedder.window_samples, preroll=sr)
        effect, params = "lpf", {"cutoff_hz": 2000.0, "order": 4}
    inputs = [render(f, dec, effect, params) for f in files]
    embed = embedder.embed_images if modality == "image" else embedder.embed_audio

    def forward_only():
        embed(inputs, batch_size=batch)

    def project():
        embed_variant(embedder, files, dec, effect, params, batch_size=batch, workers=1)

    def naive():
        for f in files:
            embed([render(f, dec, effect, params)], batch_size=1)

    a = timed(forward_only, repeat)
    b = timed(project, repeat)
    c = timed(naive, repeat)
    n = len(files)
    print(
        f"\n{modality}: {n} files, model {model} (load {load_s:.2f} s), batch {batch}, "
        f"{torch.get_num_threads()} threads, best of {repeat}"
    )
    print(f"  (a) forward passes on pre-made tensors : {a:7.3f} s  {n / a:8.1f} files/s")
    print(f"  (b) project path (decode+effect+embed) : {b:7.3f} s  {n / b:8.1f} files/s")
    print(f"  (c) naive, one file per forward pass   : {c:7.3f} s  {n / c:8.1f} files/s")
    print(
        f"  ratios: (b)/(a) = {b / a:.2f}   (c)/(b) = {c / b:.2f}  (naive is "
        f"{c / b:.2f}x slower than the project path)"
    )


def rule_figures(root: str = "results/benchmarks") -> None:
    rows = []
    for path in sorted(glob.glob(f"{root}/**/*.tsv", recursive=True)):
        with open(path) as fh:
            rec = next(csv.DictReader(fh, delimiter="\t"))
        rows.append((os.path.relpath(path, root), float(rec["s"]), rec.get("max_rss", "NA")))
    if not rows:
        print(f"\nno Snakemake benchmark files under {root}: run `make demo` first")
        return
    print(f"\nper-job figures from Snakemake `benchmark:` files ({root}):")
    for name, s, rss in rows:
        print(f"  {name:45s} {s:8.2f} s   max_rss {rss} MB")
    print(f"  total job time {sum(r[1] for r in rows):.1f} s over {len(rows)} jobs")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", default="resources/demo/images")
    p.add_argument("--audio", default="resources/demo/audio")
    p.add_argument("--image-model", default="resources/models/tiny-clip")
    p.add_argument("--audio-model", default="resources/models/tiny-clap")
    p.add_argument("--image-batch", type=int, default=16)
    p.add_argument("--audio-batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rules", action="store_true", help="summarise results/benchmarks too")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for path in (args.images, args.audio, args.image_model, args.audio_model):
        if not Path(path).exists():
            raise SystemExit(f"{path} is missing: run `make demo` first")
    bench_modality("image", args.image_model, args.images, args.image_batch, args.repeat)
    bench_modality("audio", args.audio_model, args.audio, args.audio_batch, args.repeat)
    if args.rules:
        rule_figures()


if __name__ == "__main__":
    main()
