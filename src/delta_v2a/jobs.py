"""One function per workflow job, called by the thin scripts in workflow/scripts/.

They take plain values (paths, dicts), so tests can run a job without Snakemake, and they own
logging, provenance and the error messages a user sees.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a import phase0, plots
from delta_v2a.extract import (
    Decoding,
    degenerate_rows,
    embed_variant,
    gather,
    read_manifest,
    vet,
    write_manifest,
    write_skipped,
)
from delta_v2a.media import discover
from delta_v2a.provenance import merge_model_meta
from delta_v2a.storage import DeltaStore, EmbeddingTable, atomic_path, read_json, write_json

log = logging.getLogger("delta_v2a")


class PipelineError(RuntimeError):
    """A job cannot go on; the message says what to change."""


def setup_logging(logfile: str | Path | None) -> None:
    """Log to the rule's log file and to stderr (Snakemake shows stderr of failed jobs)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


def run_job(logfile: str | Path | None, job, /, **kwargs: Any) -> None:
    """Run one job with logging; a failure is logged (message first) and re-raised."""
    setup_logging(logfile)
    try:
        job(**kwargs)
    except Exception as err:
        log.error("%s failed: %s", job.__name__, err)
        raise


def default_decoding(modality: str, preroll_s: float) -> Decoding:
    """Decoding used to vet files before a model is loaded (CLIP 224 px, CLAP 48 kHz × 10 s)."""
    return Decoding(modality=modality, preroll=int(round(preroll_s * 48_000)))


def run_manifest(
    *,
    modality: str,
    root: str,
    key: str,
    on_bad_file: str,
    preroll_s: float,
    manifest_out: str,
    skipped_out: str,
    threads: int = 2,
) -> None:
    if not Path(root).is_dir():
        raise PipelineError(f"{key}: data root '{root}' does not exist or is not a folder")
    files = discover(root, modality)
    good, bad = vet(files, default_decoding(modality, preroll_s), workers=threads)
    for f, reason in bad:
        log.warning("bad %s file %s: %s", modality, f.path, reason)
    if bad and on_bad_file == "error":
        listing = "\n".join(f"  {f.path}: {reason}" for f, reason in bad)
        raise PipelineError(
            f"{len(bad)} unusable {modality} file(s) under {key} '{root}' (on_bad_file: error; "
            f"set on_bad_file: skip to leave them out and list them in "
            f"results/skipped_files.tsv):\n{listing}"
        )
    if not good:
        raise PipelineError(
            f"{key} '{root}': no usable {modality} files (expected {root}/<category>/**/*"
            f"{'.{jpg,jpeg,png}' if modality == 'image' else '.{wav,mp3,flac}'}; "
            f"{len(bad)} bad file(s) skipped)"
        )
    per_cat = pd.Series([f.category for f in good]).value_counts().sort_index()
    log.info(
        "%d usable %s files in %d categories: %s",
        len(good),
        modality,
        len(per_cat),
        per_cat.to_dict(),
    )
    write_skipped(skipped_out, bad)
    write_manifest(manifest_out, good)


def run_skipped(inputs: Sequence[str], output: str) -> None:
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in inputs]
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if len(table):
        log.warning("%d file(s) skipped; see %s", len(table), output)


def _load_embedder(modality: str, model: Mapping[str, Any], threads: int):
    import torch

    from delta_v2a.models import load_embedder

    torch.set_num_threads(max(1, threads))
    return load_embedder(
        modality,
        model["name_or_path"],
        device=model["device"],
        dtype=model["dtype"],
        normalize=model["normalize"],
    )


def run_embed(
    *,
    modality: str,
    manifest: str,
    output: str,
    model: Mapping[str, Any],
    effect: str | None,
    intensity: str | None,
    effect_params: Mapping[str, float],
    preroll_s: float,
    threads: int = 1,
) -> None:
    files = read_manifest(manifest)
    embedder = _load_embedder(modality, model, threads)
    if modality == "image":
        decoding = Decoding("image", image_size=embedder.input_size)
    else:
        sr = embedder.sampling_rate
        decoding = Decoding(
            "audio",
            sampling_rate=sr,
            window=embedder.window_samples,
            preroll=int(round(preroll_s * sr)),
        )
    log.info(
        "%s %s/%s: %d files, model %s",
        modality,
        effect or "original",
        intensity or "-",
        len(files),
        embedder.info.name_or_path,
    )
    emb = embed_variant(
        embedder,
        files,
        decoding,
        effect,
        effect_params,
        batch_size=model["batch_size"],
        workers=1,
    )
    meta = {
        "modality": modality,
        "effect": effect,
        "intensity": intensity,
        "effect_params": dict(effect_params),
        "decoding": decoding.as_dict(),
        "model": embedder.info.to_dict(),
    }
    EmbeddingTable(
        paths=np.array([f.path for f in files], dtype=str),
        categories=np.array([f.category for f in files], dtype=str),
        embeddings=emb,
        meta=meta,
    ).save(output)


def run_deltas(
    *,
    modality: str,
    original: str,
    variants: Sequence[str],
    effects: Sequence[str],
    intensities: Sequence[str],
    json_out: str,
    store_out: str,
    meta_out: str,
) -> None:
    orig = EmbeddingTable.load(original)
    tables = []
    for path in variants:
        table = EmbeddingTable.load(path)
        tables.append((table.meta["effect"], table.meta["intensity"], table))
    meta = {
        "model": orig.meta["model"],
        "decoding": orig.meta["decoding"],
        "effect_params": {f"{e}/{i}": t.meta["effect_params"] for e, i, t in tables},
    } | merge_model_meta([orig.meta])
    store, augmented = gather(modality, orig, tables, effects, intensities, meta)
    bad = degenerate_rows(store)
    for row in bad:
        log.warning(
            "degenerate delta: %s %s/%s: %s",
            row["path"],
            row["effect_type"],
            row["intensity"],
            row["problem"],
        )
    store.meta["degenerate"] = bad
    store.save(store_out)
    with atomic_path(json_out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        n = _write_json_records(fh, store, augmented)
    write_json(meta_out, store.meta | {"n_records": n})
    log.info(
        "%s: %d delta records (%d files × %d effects × %d intensities)",
        modality,
        n,
        len(store.files),
        len(effects),
        len(intensities),
    )


def _write_json_records(fh, store: DeltaStore, augmented: np.ndarray) -> int:
    from delta_v2a.storage import write_deltas_json

    return write_deltas_json(fh, store, augmented)


def contrasting_clips(sr: int, window: int) -> list[np.ndarray]:
    """Deterministic clips that any working audio tower should tell apart."""
    t = np.arange(window, dtype=np.float64) / sr
    rng = np.random.default_rng(0)
    clips = [
        0.3 * np.sin(2 * np.pi * 440 * t),  # a pure tone
        0.1 * rng.standard_normal(window),  # white noise
        0.5 * (np.arange(window) % (sr // 4) < 40),  # a click train
        sum(0.1 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0)),  # a low chord
        0.3 * np.sign(np.sin(2 * np.pi * 3000 * t)),  # a bright square wave
    ]
    return [c.astype(np.float32) for c in clips]


def run_health(
    *, modality: str, model: Mapping[str, Any], limit: float, output: str, threads: int = 1
) -> None:
    from delta_v2a.models import health_check

    embedder = _load_embedder(modality, model, threads)
    clips = (
        contrasting_clips(embedder.sampling_rate, embedder.window_samples)
        if modality == "audio"
        else None
    )
    report = health_check(embedder, clips=clips, limit=limit)
    report["modality"] = modality
    write_json(output, report)
    (log.info if report["passed"] else log.warning)("health %s: %s", modality, report["message"])


def _gate_health(health_paths: Sequence[str], allow_unhealthy: bool, part: str) -> list[dict]:
    """Stop before science on a collapsed tower (``part``: 'media' or 'text')."""
    docs = [read_json(p) for p in health_paths]
    key = "audio_mean_pairwise_cosine" if part == "media" else "text_mean_pairwise_cosine"
    for doc in docs:
        value = doc.get(key)
        if value is not None and value > doc["limit"]:
            msg = (
                f"model health check failed for {doc['model']['name_or_path']}: mean pairwise "
                f"cosine of {'contrasting clips' if part == 'media' else 'unrelated prompts'} is "
                f"{value:.4f} > models.health.limit {doc['limit']} (a collapsed tower; its "
                f"deltas would be noise). Figures: {doc.get('modality')} health JSON."
            )
            if not allow_unhealthy:
                raise PipelineError(msg + " Set models.health.allow_unhealthy: true to go on.")
            log.warning("%s (allowed by models.health.allow_unhealthy)", msg)
    return docs


def _phase_meta(stores: Sequence[DeltaStore], health: Sequence[dict]) -> dict:
    meta = merge_model_meta({"modality": s.modality, **s.meta} for s in stores)
    meta["health"] = {d.get("modality", "?"): d for d in health}
    meta["degenerate_deltas"] = {s.modality: s.meta.get("degenerate", []) for s in stores}
    return meta


def _norms_frame(stores: Sequence[DeltaStore]) -> pd.DataFrame:
    frames = []
    for s in stores:
        frames.append(
            pd.DataFrame(
                {
                    "modality": s.modality,
                    "effect_type": s.effect,
                    "intensity": s.intensity,
                    "norm": np.linalg.norm(s.delta.astype(np.float64), axis=1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_sensitivity(
    *,
    stores: Sequence[str],
    health: Sequence[str],
    min_distance: float,
    allow_unhealthy: bool,
    json_out: str,
    figure_out: str,
) -> None:
    docs = _gate_health(health, allow_unhealthy, "media")
    loaded = [DeltaStore.load(p) for p in stores]
    rows = phase0.sensitivity_table(loaded, min_distance)
    for r in rows:
        if r["sensitive"] is False:
            log.warning(
                "INSENSITIVE: %s %s/%s mean ||Δe|| = %.4g <= min_distance %g",
                r["modality"],
                r["effect_type"],
                r["intensity"],
                r["mean"],
                min_distance,
            )
    meta = _phase_meta(loaded, docs)
    write_json(json_out, {"meta": meta, "min_distance": min_distance, "results": rows})
    plots.norms_figure(_norms_frame(loaded), min_distance, figure_out, meta["note"])


def run_linearity(
    *,
    stores: Sequence[str],
    health: Sequence[str],
    min_cosine: float,
    max_cv: float,
    max_variance: float,
    allow_unhealthy: bool,
    json_out: str,
    cross_out: str,
    figure_out: str,
) -> None:
    docs = _gate_health(health, allow_unhealthy, "media")
    loaded = [DeltaStore.load(p) for p in stores]
    within = phase0.within_category_table(loaded, min_cosine, max_cv)
    cross = phase0.cross_category_table(loaded, max_variance)
    summary = phase0.summarise_consistency(within)
    meta = _phase_meta(loaded, docs)
    thresholds = {"min_cosine": min_cosine, "max_cv": max_cv, "max_variance": max_variance}
    for s in summary:
        if s["consistent"] is False:
            log.warning(
                "INCONSISTENT: %s %s/%s: %d of %d categories consistent",
                s["modality"],
                s["effect_type"],
                s["intensity"],
                s["n_consistent"],
                s["n_categories"] - s["n_undetermined"],
            )
    for c in cross:
        if c["invariant"] is False:
            log.warning(
                "NOT INVARIANT: %s %s/%s: variance %.4g >= %g (mean cosine %.3f)",
                c["modality"],
                c["effect_type"],
                c["intensity"],
                c["variance"],
                max_variance,
                c["mean_cosine"],
            )
    write_json(
        json_out,
        {
            "meta": meta,
            "thresholds": thresholds,
            "within_category": within,
            "summary": summary,
            "across_intensities": phase0.across_intensity_table(loaded),
        },
    )
    write_json(cross_out, {"meta": meta, "thresholds": thresholds, "results": cross})
    plots.consistency_figure(pd.DataFrame(within), min_cosine, figure_out, meta["note"])
