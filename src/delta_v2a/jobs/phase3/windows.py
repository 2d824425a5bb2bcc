"""Rule ``phase3_windows``: the CLAP embeddings of each file's window sequence, the decoder's
audio input (docs/methods.md §6.3). Depends on the manifest and the model, not on Phase 1, so
a new pair threshold never re-embeds audio."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.extract import manifest_hashes, read_manifest
from delta_v2a.jobs.common import Paths, job_batch_size, load_embedder_for_job, log
from delta_v2a.phase3.windows import WindowSpec, embed_windows
from delta_v2a.settings import ModelSpec, WindowsSettings
from delta_v2a.storage import EmbeddingTable

WINDOWS_VERSION = 1


def _windows_key(model: ModelSpec, device_type: str, count: int, hop_s: float) -> str:
    """The cache shard of window sequences (one mechanism with extraction's: cache.shard_key,
    so a pinned model revision is part of the key here too)."""
    from delta_v2a.cache import shard_key

    return shard_key(
        model,
        device_type,
        kind="phase3-windows",
        windows_version=WINDOWS_VERSION,
        count=int(count),
        hop_s=float(hop_s),
    )


def _reusable_centre(original: EmbeddingTable, paths: Sequence[str], embedder: Any) -> bool:
    """Extraction's originals are the centred windows when made by this model at this window."""
    meta = original.meta
    dec, mod = meta.get("decoding", {}), meta.get("model", {})
    same = (
        [str(p) for p in original.paths] == list(paths)
        and dec.get("sampling_rate") == embedder.sampling_rate
        and dec.get("window") == embedder.window_samples
        and mod.get("name_or_path") == embedder.info.name_or_path
        and mod.get("dtype") == embedder.info.dtype
    )
    if not same:
        log.info("original.npz differs in files, model or window: every window is embedded")
    return same


def run_windows(*, inputs: Paths, outputs: Paths, settings: WindowsSettings, threads: int) -> None:
    """(F, count, D) CLAP embeddings of each file's window sequence, each file embedded once:
    the centred window comes from extraction's ``original.npz``, the others from the cache or
    the model (one cache cycle with extraction's: :func:`delta_v2a.cache.fill`)."""
    model, count, hop_s = settings.model, settings.count, settings.hop_s
    manifest, original, output = inputs.manifest, inputs.original, outputs.windows
    from delta_v2a.cache import fill
    from delta_v2a.models import resolve_device

    files = read_manifest(manifest)
    paths = [f.path for f in files]
    shard = None
    if settings.cache_dir:
        key = _windows_key(model, resolve_device(model.device).type, count, hop_s)
        shard = Path(settings.cache_dir) / "embeddings" / "audio_windows" / f"{key}.npz"
    reused = {"n": 0}

    def embed_missing(misses: np.ndarray) -> tuple[np.ndarray, dict]:
        log.info("window sequences: %d of %d files to embed", len(misses), len(files))
        embedder = load_embedder_for_job(model, threads)
        sr = embedder.sampling_rate
        spec = WindowSpec(count, max(1, round(hop_s * sr)), embedder.window_samples, sr)
        table = EmbeddingTable.load(original)
        last = None
        if _reusable_centre(table, paths, embedder):
            last, reused["n"] = table.embeddings[misses], len(misses)
        new = embed_windows(
            embedder,
            [paths[i] for i in misses],
            spec,
            last=last,
            batch_size=job_batch_size(settings.batch, embedder),
        )
        return new.reshape(len(misses), -1), {
            "model": embedder.info.to_dict(),
            "windows": spec.to_dict(),
        }

    filled = fill(shard, manifest_hashes(manifest), embed_missing)
    n_cached = int(filled.hit.sum())
    emb = filled.embeddings.reshape(len(files), count, -1)
    EmbeddingTable(
        paths=np.array(paths, dtype=str),
        categories=np.array([f.category for f in files], dtype=str),
        embeddings=emb,
        meta={
            "modality": "audio",
            **{k: filled.meta[k] for k in ("model", "windows")},
            "hop_s": float(hop_s),
            "normalize": bool(model.normalize),
            "n_cached": n_cached,
            "n_centre_reused": reused["n"],
        },
    ).save(output)
    log.info(
        "wrote %s: %d files × %d windows × %d (%d cached; centre window reused from "
        "extraction for %d)",
        output,
        len(files),
        count,
        emb.shape[2],
        n_cached,
        reused["n"],
    )
