"""Rule ``phase3_windows``: the CLAP embeddings of each file's window sequence, the decoder's
audio input (docs/methods.md §6.3). Depends on the manifest and the model, not on Phase 1, so
a new pair threshold never re-embeds audio."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.extract import MediaFile, manifest_hashes, read_manifest
from delta_v2a.jobs.common import Paths, job_batch_size, load_embedder_for_job, log
from delta_v2a.phase3.windows import WindowSpec, centre_reusable, embed_windows
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


def _shard(settings: WindowsSettings) -> Path | None:
    """The cache file of this model's window sequences; None when the cache is off."""
    from delta_v2a.models import resolve_device

    if not settings.cache_dir:
        return None
    model = settings.model
    key = _windows_key(model, resolve_device(model.device).type, settings.count, settings.hop_s)
    return Path(settings.cache_dir) / "embeddings" / "audio_windows" / f"{key}.npz"


class _WindowEmbedder:
    """``embed_missing`` of :func:`delta_v2a.cache.fill`: loads the model, reuses extraction's
    centred windows where they are this model's at this window, embeds the rest; counts the
    reused ones (``n_reused``)."""

    def __init__(
        self, paths: Sequence[str], original: str, settings: WindowsSettings, threads: int
    ) -> None:
        self.paths, self.original, self.settings, self.threads = paths, original, settings, threads
        self.n_reused = 0

    def __call__(self, misses: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        st = self.settings
        log.info("window sequences: %d of %d files to embed", len(misses), len(self.paths))
        embedder = load_embedder_for_job(st.model, self.threads)
        sr, window = embedder.sampling_rate, embedder.window_samples
        spec = WindowSpec(st.count, max(1, round(st.hop_s * sr)), window, sr)
        table = EmbeddingTable.load(self.original)
        model = embedder.info.to_dict()
        last = None
        if centre_reusable(table.meta, table.paths, self.paths, sr, window, model):
            last, self.n_reused = table.embeddings[misses], len(misses)
        else:
            log.info("original.npz differs in files, model or window: every window is embedded")
        new = embed_windows(
            embedder,
            [self.paths[i] for i in misses],
            spec,
            last=last,
            batch_size=job_batch_size(st.batch, embedder),
        )
        return new.reshape(len(misses), -1), {"model": model, "windows": spec.to_dict()}


def _save_windows(
    output: str, files: Sequence[MediaFile], emb: np.ndarray, meta: dict, n_reused: int
) -> None:
    EmbeddingTable.of_files(files, emb, meta).save(output)
    log.info(
        "wrote %s: %d files × %d windows × %d (%d cached; centre window reused from "
        "extraction for %d)",
        output,
        len(files),
        emb.shape[1],
        emb.shape[2],
        meta["n_cached"],
        n_reused,
    )


def run_windows(*, inputs: Paths, outputs: Paths, settings: WindowsSettings, threads: int) -> None:
    """(F, count, D) CLAP embeddings of each file's window sequence, each file embedded once:
    the centred window comes from extraction's ``original.npz``, the others from the cache or
    the model (one cache cycle with extraction's: :func:`delta_v2a.cache.fill`)."""
    from delta_v2a.cache import fill

    files = read_manifest(inputs.manifest)
    embed = _WindowEmbedder([f.path for f in files], inputs.original, settings, threads)
    filled = fill(_shard(settings), manifest_hashes(inputs.manifest), embed)
    meta = {
        "modality": "audio",
        **{k: filled.meta[k] for k in ("model", "windows")},
        "hop_s": float(settings.hop_s),
        "normalize": bool(settings.model.normalize),
        "n_cached": int(filled.hit.sum()),
        "n_centre_reused": embed.n_reused,
    }
    emb = filled.embeddings.reshape(len(files), settings.count, -1)
    _save_windows(outputs.windows, files, emb, meta, embed.n_reused)
