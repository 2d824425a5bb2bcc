"""Embedding jobs (rules/embed_*.smk): each variant's table of embeddings, the cache asked
first and the model loaded at the first miss, and the originals' shards joined into one table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.cache import fill, variant_key
from delta_v2a.devices import device_kind
from delta_v2a.extract import (
    FileFailedError,
    embed_variant,
    job_decoding,
    read_manifest,
    shard_rows,
)
from delta_v2a.jobs.common import (
    Paths,
    PipelineError,
    Progress,
    job_batch_size,
    load_embedder_for_job,
    log,
    prefer_item_parallelism,
)
from delta_v2a.media import MediaFile
from delta_v2a.settings import EmbedGroupSettings, EmbedSettings, ModelSpec
from delta_v2a.storage import TABLE_META, EmbeddingTable

_FAILED_AFTER_VETTING = (
    "the file passed vetting, so the effect or the model failed on it; on_bad_file acts at "
    "vetting (every variant must hold the same files): move the file out of the data root to "
    "go on, and report the error"
)


def run_embed(*, inputs: Paths, outputs: Paths, settings: EmbedSettings, threads: int) -> None:
    """Embed every manifest file (or this job's shard of them) under one variant, embedding
    only what the cache lacks."""
    files = read_manifest(inputs.manifest)
    get_embedder = embedder_once(settings.model, threads)
    embed_one(files, settings, outputs.embeddings, get_embedder, threads)


def run_embed_group(
    *, inputs: Paths, outputs: Paths, settings: EmbedGroupSettings, threads: int
) -> None:
    """Embed several variants in one job, the model loaded once (at the first cache miss).

    Why: a model job's fixed price (process start, imports, model load) dominates a small run;
    grouping pays it once per group (docs/methods.md §2.2). Each variant is written to its own
    table, exactly as its own job would write it, so later rules cannot tell the difference.
    """
    variants, paths = settings.variants, list(outputs.embeddings)
    if len(variants) != len(paths):
        raise PipelineError(f"{len(variants)} variants for {len(paths)} outputs: {paths}")
    models = {v.model for v in variants}
    if len(models) != 1:
        raise PipelineError(f"one grouped job embeds with one model, not {len(models)}")
    files = read_manifest(inputs.manifest)
    get_embedder = embedder_once(variants[0].model, threads)
    for variant, path in zip(variants, paths, strict=True):
        embed_one(files, variant, path, get_embedder, threads)


def embedder_once(model: ModelSpec, threads: int) -> Callable[[], Any]:
    """The job's model, loaded on the first call only (a fully cached job never loads it)."""
    loaded: list[Any] = []

    def get() -> Any:
        if not loaded:
            loaded.append(load_embedder_for_job(model, threads))
        return loaded[0]

    return get


def embed_one(
    files: list[MediaFile],
    settings: EmbedSettings,
    output: str,
    get_embedder: Callable[[], Any],
    threads: int,
) -> None:
    """One variant's table: this job's shard of ``files``, the cache asked first."""
    model = settings.model
    device_type = device_kind(model.device)  # no torch import for an explicit device
    rows = shard_rows(
        len(files), settings.shards, settings.shard, settings.batch.for_device(device_type)
    )
    files = [files[i] for i in rows]
    hashes = [f.sha256 for f in files]  # the vetted bytes; render() refuses any others
    part = f" part {settings.shard + 1}/{settings.shards}" if settings.shards else ""
    label = f"{model.modality} {settings.effect or 'original'}/{settings.intensity or '-'}{part}"
    if files:
        embed_missing = _missing_embedder(files, settings, get_embedder, threads, label)
        filled = fill(_variant_cache(settings, device_type), hashes, embed_missing)
        emb, hit, meta_model = filled.embeddings, filled.hit, filled.meta
    else:  # a trailing shard with no batch left: an empty table, no model
        emb, hit = np.zeros((0, model.dim), np.float32), np.zeros(0, bool)
        meta_model = {"model": None, "decoding": None}
    log.info("%s: %d of %d files from the cache", label, int(hit.sum()), len(files))
    meta = {
        "modality": model.modality,
        "effect": settings.effect,
        "intensity": settings.intensity,
        "effect_params": dict(settings.effect_params),
        "n_cached": int(hit.sum()),
        **{k: meta_model[k] for k in ("model", "decoding")},
    }
    if settings.shards:
        meta |= {"shard": settings.shard, "shards": settings.shards}
    EmbeddingTable.of_files(files, emb, meta).save(output)


def _variant_cache(settings: EmbedSettings, device_type: str) -> Path | None:
    """Where this variant's (shard's) embeddings are cached; None without a cache."""
    if not settings.cache_dir:
        return None
    model = settings.model
    key = variant_key(
        modality=model.modality,
        model=model,
        device_type=device_type,
        effect=settings.effect,
        effect_params=settings.effect_params,
        preroll_s=settings.preroll_s,
    )
    suffix = f".part{settings.shard}of{settings.shards}" if settings.shards else ""
    return Path(settings.cache_dir) / "embeddings" / model.modality / f"{key}{suffix}.npz"


def _missing_embedder(
    files: list[MediaFile],
    settings: EmbedSettings,
    get_embedder: Callable[[], Any],
    threads: int,
    label: str,
) -> Callable[[np.ndarray], tuple[np.ndarray, dict]]:
    """What the cache calls for the rows it lacks: the model loads here, at the first miss."""
    modality = settings.model.modality

    def embed_missing(missing: np.ndarray) -> tuple[np.ndarray, dict]:
        misses = [files[i] for i in missing]
        log.info("%s: %d files, %d to embed", label, len(files), len(misses))
        embedder = get_embedder()
        decoding = job_decoding(modality, embedder, settings.preroll_s, settings.decode_budget_mib)
        prefer_item_parallelism(threads)
        try:
            new = embed_variant(
                embedder,
                misses,
                decoding,
                settings.effect,
                settings.effect_params,
                job_batch_size(settings.batch, embedder),
                workers=threads,
                progress=Progress("embedded"),
            )
        except FileFailedError as err:  # one line naming the file and its variant
            raise PipelineError(f"{err}; {_FAILED_AFTER_VETTING}") from err
        return new, {"model": embedder.info.to_dict(), "decoding": decoding.as_dict()}

    return embed_missing


def run_merge_original(*, inputs: Paths, outputs: Paths) -> None:
    """The originals' shards as one table (what Phase 3 and the deltas job read), with the
    same bits and meta as an unsharded job's (memory: twice the originals' table)."""
    tables = [EmbeddingTable.load(p, TABLE_META) for p in inputs.parts]
    metas = [t.meta for t in tables if t.meta["model"] is not None]  # empty trailing shards
    if not metas:
        raise PipelineError(f"{inputs.parts[0]}: every shard of the originals is empty")
    cached = sum(int(t.meta["n_cached"]) for t in tables)
    meta = {k: v for k, v in metas[0].items() if k not in ("shard", "shards")}
    EmbeddingTable(
        paths=np.concatenate([t.paths for t in tables]),
        categories=np.concatenate([t.categories for t in tables]),
        embeddings=np.concatenate([t.embeddings for t in tables]),
        meta=meta | {"n_cached": cached},
    ).save(outputs.embeddings)
