"""Phase 3 audio side: CLAP embeddings of each file's consecutive windows."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.media import load_audio

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- audio windows


@dataclass(frozen=True)
class WindowSpec:
    """``count`` windows of ``window`` samples, each ``hop`` samples after the previous; the
    last one is the centred window extraction embeds (the file is periodic before its start,
    as for the pre-roll)."""

    count: int
    hop: int
    window: int
    sample_rate: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.hop < 1 or self.window < 1 or self.sample_rate < 1:
            raise ValueError(f"invalid window spec {self}")

    @property
    def lead(self) -> int:
        """Samples before the centred window that the sequence needs."""
        return (self.count - 1) * self.hop

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def window_clips(path: str | Path, spec: WindowSpec) -> list[np.ndarray]:
    """The ``count`` clips of one file, oldest first; the last is extraction's window."""
    span = load_audio(path, spec.sample_rate, spec.window, preroll=spec.lead)
    return [span[k * spec.hop : k * spec.hop + spec.window] for k in range(spec.count)]


def embed_windows(
    embedder: Any,
    paths: Sequence[str],
    spec: WindowSpec,
    *,
    last: np.ndarray | None = None,
    batch_size: int = 8,
) -> np.ndarray:
    """(F, count, D) window embeddings. ``last`` (F, D), when given, are the centred windows'
    embeddings already made by extraction: those windows are not embedded again."""
    from delta_v2a.extract import prefetched_batches

    k_new = spec.count - (1 if last is not None else 0)
    out = np.zeros((len(paths), spec.count, embedder.dim), dtype=np.float32)
    if last is not None:
        out[:, -1] = last
    if k_new == 0:
        return out
    per_batch = max(1, batch_size // k_new)
    done = 0
    for batch in prefetched_batches(
        list(paths), lambda p: window_clips(p, spec)[:k_new], per_batch, workers=1
    ):
        clips = [c for file_clips in batch for c in file_clips]
        emb = embedder.embed_audio(clips, batch_size=batch_size)
        out[done : done + len(batch), :k_new] = emb.reshape(len(batch), k_new, -1)
        done += len(batch)
        log.info("embedded windows of %d/%d files", done, len(paths))
    return out


def centre_reusable(
    original_meta: Mapping[str, Any],
    original_paths: Sequence[str],
    paths: Sequence[str],
    sampling_rate: int,
    window: int,
    model: Mapping[str, Any],
) -> bool:
    """Whether extraction's originals (``original_meta``, ``original_paths``) are the centred
    windows of ``paths`` as this model (``model``: its info, ``name_or_path`` and ``dtype``)
    embeds them at this sampling rate and window, so that they need not be embedded again."""
    dec, mod = original_meta.get("decoding", {}), original_meta.get("model", {})
    return (
        [str(p) for p in original_paths] == list(paths)
        and dec.get("sampling_rate") == sampling_rate
        and dec.get("window") == window
        and mod.get("name_or_path") == model.get("name_or_path")
        and mod.get("dtype") == model.get("dtype")
    )
