"""Phase 3 baselines: what a decoder must beat, each lacking one ingredient
(docs/methods.md §6.5). Text-only ones lack the audio, shuffled audio lacks the right audio,
the per-clip search lacks training, the oracle bounds what any predictor can reach on the
grid. Pure functions on arrays, no I/O; the trained ones are fit in
:mod:`delta_v2a.phase3.train`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "BASELINES",
    "TRAINED_KINDS",
    "derangement",
    "reference_predictions",
    "shuffled_files",
    "text2fx_search",
    "text_lookup",
]

BASELINES = {
    "decoder": "the cross-attention decoder (text attends over the audio windows)",
    "concat": "ablation: same head, text and mean window embedding concatenated, no attention",
    "text_mlp": "text-only MLP: same head, the text embedding alone",
    "text_lookup": "text-only lookup: mean training target per description meaning "
    "(image effect, level word)",
    "global_mean": "the mean training target vector for every sample",
    "no_effect": "A_raw itself (all parameters neutral)",
    "shuffled_audio": "the trained decoder with the audio windows permuted across test files",
    "oracle": "per-clip oracle: the target u* itself (floor of the grid and renders)",
    "text2fx_search": "Text2FX-style per-clip search: the grid u whose rendered audio's CLAP "
    "embedding is closest (cosine) to the CLAP text embedding of E_cond",
}
#: The trained candidates and their network kind (:mod:`delta_v2a.phase3.model`).
TRAINED_KINDS = {"decoder": "attention", "concat": "concat", "text_mlp": "text"}


def text_lookup(
    train_keys: Sequence[Any], train_targets: np.ndarray, keys: Sequence[Any]
) -> tuple[np.ndarray, int]:
    """The best prediction without audio: the mean training target of each key (a
    description's meaning: image effect and level word). Unseen keys get the global training
    mean; their count is returned."""
    train_targets = np.asarray(train_targets, dtype=np.float64)
    table: dict[Any, list[int]] = {}
    for i, k in enumerate(train_keys):
        table.setdefault(k, []).append(i)
    means = {k: train_targets[v].mean(axis=0) for k, v in table.items()}
    glob = train_targets.mean(axis=0)
    out = np.array([means.get(k, glob) for k in keys], dtype=np.float64).reshape(
        len(keys), train_targets.shape[1]
    )
    return out, sum(k not in means for k in keys)


def text2fx_search(grid: np.ndarray, rendered: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Text2FX-style per-clip search on the u grid: for each sample, the u whose rendered
    audio's CLAP embedding has the highest cosine with the CLAP text embedding of ``E_cond``.

    rendered (N, G, D): each sample's clip rendered by its audio effect at every grid u;
    text (N, D). Returns (N,) u.
    """
    r = rendered / np.maximum(np.linalg.norm(rendered, axis=-1, keepdims=True), 1e-12)
    t = text / np.maximum(np.linalg.norm(text, axis=-1, keepdims=True), 1e-12)
    sims = np.einsum("ngd,nd->ng", r, t)
    return np.asarray(grid, dtype=np.float64)[np.argmax(sims, axis=1)]


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) with no fixed point (n >= 2): every test file gets
    another test file's audio."""
    if n < 2:
        raise ValueError("shuffling the audio needs at least 2 test files")
    rng = np.random.default_rng([seed, 505])
    while True:
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm


def shuffled_files(files: np.ndarray, seed: int) -> np.ndarray:
    """Each test sample's file index replaced by another test file's (one seeded
    derangement of the distinct test files): the decoder then hears the wrong audio."""
    files = np.asarray(files)
    distinct = np.unique(files)
    return distinct[derangement(len(distinct), seed)][np.searchsorted(distinct, files)]


def reference_predictions(
    train_keys: Sequence[Any],
    train_targets: np.ndarray,
    test_keys: Sequence[Any],
    test_targets: np.ndarray,
) -> tuple[dict[str, np.ndarray], int]:
    """The untrained baselines on the test samples: text lookup, the global training mean,
    no effect (all zeros = neutral) and the oracle; with the number of test keys the lookup
    never saw in training."""
    train_targets = np.asarray(train_targets)
    n, dim = len(test_keys), train_targets.shape[1]
    lookup, n_unseen = text_lookup(train_keys, train_targets, test_keys)
    return {
        "text_lookup": lookup,
        # The mean in the targets' own dtype (float32 from the job), as it has always been.
        "global_mean": np.broadcast_to(train_targets.mean(axis=0), (n, dim)),
        "no_effect": np.zeros((n, dim)),
        "oracle": np.asarray(test_targets, dtype=np.float64),
    }, n_unseen
