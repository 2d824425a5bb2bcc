"""Phase 3 baselines: what a decoder must beat, each lacking one ingredient
(docs/methods.md §6.5). Text-only ones lack the audio, shuffled audio lacks the right audio,
the per-clip search lacks training (it is
:mod:`delta_v2a.phase3.search`), the oracle bounds what any predictor can reach on the
grid. Pure functions on arrays, no I/O; the trained ones are fit in
:mod:`delta_v2a.phase3.train`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from delta_v2a.phase3.strength import solve_u

__all__ = [
    "BASELINES",
    "TRAINED_KINDS",
    "ShuffledError",
    "curve_inversion",
    "derangement",
    "derangements",
    "reference_predictions",
    "shuffled_error",
    "shuffled_files",
    "shuffled_files_many",
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
    "shuffled_audio": "the trained decoder with the audio windows permuted across test files "
    "(averaged over many derangements)",
    "oracle": "per-clip oracle: the target u* itself (floor of the grid and renders)",
    "text2fx_search": "Text2FX-style per-clip search: golden-section over u in [0, 1] for the "
    "highest cosine between the CLAP embedding of the clip rendered at u and the CLAP text "
    "embedding of E_cond, within phase3.text2fx_budget renders per clip (the u grid free)",
    "curve_inversion": "per-clip ceiling: the clip's own strength curve inverted at the target "
    "strength of the description's level word (mean u over the word's bin)",
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


def curve_inversion(grid: np.ndarray, curves: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per clip, its own strength curve inverted at the description's target strength.

    curves (N, G) on grid (G,): each sample's clip under its audio effect (the curves of the
    strength job); targets (N,) or (N, K): the target strength κ m(θ) of the description's
    level word, at one θ (the bin centre) or at K θ spread over the word's bin. With K the
    prediction is the mean of the K solutions, which is the MSE-optimal u when θ is uniform
    in the bin: the description gives the word, never θ. As u* is itself this inversion at
    the sample's true θ, no method that reads the clip's curve and the description can do
    better on parameter MSE (up to the K-point quadrature): this is the ceiling, paid for
    with the whole grid rendered and embedded per clip. Returns (N,) u in [0, 1].
    """
    curves = np.asarray(curves, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    t2 = t[:, None] if t.ndim == 1 else t
    k = t2.shape[1]
    solved = solve_u(grid, np.repeat(curves, k, axis=0), t2.reshape(-1)).u
    return solved.reshape(len(t2), k).mean(axis=1)


def _n_derangements(n: int) -> int:
    """!n, the number of permutations of n with no fixed point."""
    d = [1, 0]
    for k in range(2, n + 1):
        d.append((k - 1) * (d[-1] + d[-2]))
    return d[n]


def derangements(n: int, count: int = 200, seed: int = 0) -> np.ndarray:
    """(K, n) permutations of range(n) without a fixed point: every one of them when there
    are at most ``count`` (n <= 5 at the default), else ``count`` distinct seeded random ones.

    Why many: with one derangement the shuffled-audio baseline depends on which file happens
    to get which other file's audio; averaging over many (all, where few) measures the
    decoder on wrong audio, not on one lucky or unlucky pairing.
    """
    if n < 2:
        raise ValueError("shuffling the audio needs at least 2 test files")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if _n_derangements(n) <= count:
        perms = np.array(list(itertools.permutations(range(n))))
        return perms[~(perms == np.arange(n)).any(axis=1)]
    rng = np.random.default_rng([seed, 505, n])
    found: dict[tuple[int, ...], None] = {}
    while len(found) < count:
        cand = np.argsort(rng.random((4 * count, n)), axis=1)
        for row in cand[~(cand == np.arange(n)).any(axis=1)]:
            found.setdefault(tuple(int(v) for v in row), None)
            if len(found) == count:
                break
    return np.array(list(found))


def shuffled_files_many(files: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(K, N): each sample's file index under each derangement of the distinct test files
    (``perms`` from :func:`derangements`)."""
    files = np.asarray(files)
    distinct = np.unique(files)
    return distinct[np.asarray(perms)][:, np.searchsorted(distinct, files)]


@dataclass(frozen=True)
class ShuffledError:
    per_sample: np.ndarray  # (N,) each sample's error averaged over the derangements
    per_derangement: np.ndarray  # (K,) mean over files of the per-file mean, per derangement
    mean: float  # mean of per_derangement
    sd: float  # its SD across derangements: how much one derangement could have moved it
    low: float  # 2.5 % and 97.5 % of per_derangement
    high: float


def shuffled_error(errors: np.ndarray, files: np.ndarray) -> ShuffledError:
    """The shuffled-audio baseline's error over many derangements.

    errors (K, N): the decoder's error on each test sample with the audio of derangement k;
    files (N,) the samples' own test files (the unit the figures average over). The verdict
    uses ``per_sample`` (paired with the decoder sample by sample); the spread says how much
    the old one-derangement figure depended on the draw.
    """
    errors = np.atleast_2d(np.asarray(errors, dtype=np.float64))
    _, inv = np.unique(np.asarray(files), return_inverse=True)
    counts = np.bincount(inv)
    per_file = np.stack([np.bincount(inv, weights=e) / counts for e in errors])
    per_k = per_file.mean(axis=1)
    low, high = np.quantile(per_k, [0.025, 0.975])
    sd = float(per_k.std(ddof=1)) if len(per_k) > 1 else 0.0
    return ShuffledError(errors.mean(axis=0), per_k, float(per_k.mean()), sd, low, high)
