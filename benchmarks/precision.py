"""Benchmark: what bf16 does to the deltas (and to every Phase 0 verdict) against fp32.

    .venv/bin/python -m delta_v2a.tiny_models resources/models --full-size   # once, 2.3 GB
    .venv/bin/python benchmarks/precision.py                                 # demo media

For each modality, the originals and every default variant of the demo media are embedded
once in fp32 and once in bf16 (same model, same inputs, same process), and per record we
report the relative delta error ‖Δ_bf16 − Δ_fp32‖ / ‖Δ_fp32‖ beside ‖Δ_fp32‖ itself and
the sensitivity threshold, then count the Phase 0 verdicts that flip. Full-size models with
random weights cost what the real ones cost but do not move like them: read the errors
relative to the deltas they produce, and re-run with real checkpoints (--image-model /
--audio-model) where they are available.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from delta_v2a import phase0
from delta_v2a.config import effect_params, load_config
from delta_v2a.extract import embed_variant, gather, job_decoding
from delta_v2a.media import discover
from delta_v2a.models import load_embedder
from delta_v2a.storage import EmbeddingTable

ROOT = Path(__file__).resolve().parents[1]


def stores_for(modality: str, model: str, root: str, dtype: str, config: dict, batch: int):
    emb = load_embedder(modality, model, device="cpu", dtype=dtype)
    files = discover(root, modality)
    dec = job_decoding(modality, emb, preroll_s=1.0, budget_mib=640)  # the workflow's defaults
    paths = np.array([f.path for f in files])
    cats = np.array([f.category for f in files])
    t0 = time.perf_counter()
    orig = EmbeddingTable(paths, cats, embed_variant(emb, files, dec, None, {}, batch))
    effects = list(config["effects"][modality])
    variants = []
    for e in effects:
        for i in config["intensities"]:
            params = effect_params(config, modality, e, i)
            variants.append(
                (
                    e,
                    i,
                    EmbeddingTable(paths, cats, embed_variant(emb, files, dec, e, params, batch)),
                )
            )
    seconds = time.perf_counter() - t0
    store, _ = gather(modality, orig, variants, effects, config["intensities"], {})
    return store, seconds, len(files) * (1 + len(variants))


def verdicts(store, config) -> dict:
    sens = phase0.sensitivity_table([store], config["sensitivity"]["min_distance"])
    lin = config["linearity"]
    within = phase0.within_category_table([store], lin["min_cosine"], lin["max_cv"])
    cross = phase0.cross_category_table([store], lin["max_variance"])
    out = {("sens", r["effect_type"], r["intensity"]): r["sensitive"] for r in sens}
    out |= {
        ("cons", r["effect_type"], r["intensity"], r["category"]): r["consistent"] for r in within
    }
    out |= {("inv", r["effect_type"], r["intensity"]): r["invariant"] for r in cross}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--image-model", default="resources/models/random-clip-vit-l14")
    p.add_argument("--audio-model", default="resources/models/random-clap-htsat-base")
    p.add_argument("--images", default="resources/demo/images")
    p.add_argument("--audio", default="resources/demo/audio")
    p.add_argument("--low", default="bf16", choices=["bf16", "fp16"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
    for modality, model, root, batch in (
        ("image", args.image_model, args.images, 16),
        ("audio", args.audio_model, args.audio, 8),
    ):
        if not Path(model).exists():
            raise SystemExit(
                f"{model} missing: python -m delta_v2a.tiny_models resources/models --full-size"
            )
        ref, t_ref, n = stores_for(modality, model, root, "fp32", config, batch)
        low, t_low, _ = stores_for(modality, model, root, args.low, config, batch)
        d_ref, d_low = ref.delta.astype(np.float64), low.delta.astype(np.float64)
        norm = np.linalg.norm(d_ref, axis=1)
        rel = np.linalg.norm(d_low - d_ref, axis=1) / np.maximum(norm, 1e-12)
        emb_cos = np.sum(ref.original * low.original, axis=1)
        print(f"\n{modality}: {model}, {n} forward passes per dtype")
        print(
            f"  time fp32 {t_ref:.1f} s, {args.low} {t_low:.1f} s: {args.low} is "
            f"{t_ref / t_low:.2f}x faster"
        )
        print(f"  embedding cosine {args.low} vs fp32: min {emb_cos.min():.6f}")
        print(
            f"  ||Δ_fp32||: median {np.median(norm):.4g} (threshold "
            f"{config['sensitivity']['min_distance']})"
        )
        print(
            f"  relative delta error: median {np.median(rel):.3g}, p95 "
            f"{np.percentile(rel, 95):.3g}, max {rel.max():.3g}"
        )
        for e in ref.effects:
            m = ref.effect == e
            print(
                f"    {e:12s} median rel. error {np.median(rel[m]):.3g}  "
                f"(median ||Δ|| {np.median(norm[m]):.3g})"
            )
        v_ref, v_low = verdicts(ref, config), verdicts(low, config)
        flips = [k for k in v_ref if v_ref[k] != v_low[k]]
        print(
            f"  Phase 0 verdicts that flip: {len(flips)} of {len(v_ref)}"
            + (f": {flips}" if flips else "")
        )


if __name__ == "__main__":
    main()
