"""Phase 3 evaluation on the test split: baselines, bootstrap intervals over test files and
the verdict (docs/methods.md sections 6.4-6.6). Pure functions on arrays, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "bootstrap_mean",
    "bootstrap_difference",
    "derangement",
    "per_sample_mse",
    "strength_error",
    "text_lookup",
    "text2fx_search",
    "verdict",
]


def per_sample_mse(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) mean squared error over the parameter axes of each sample."""
    return ((np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2).mean(axis=1)


def _file_means(values: np.ndarray, files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-file means of the finite values (files with none are left out)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    uniq = np.unique(np.asarray(files)[ok])
    means = np.array([values[ok][np.asarray(files)[ok] == f].mean() for f in uniq])
    return uniq, means


def bootstrap_mean(
    values: np.ndarray, files: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, Any]:
    """Mean over files of the per-file mean, with a percentile bootstrap interval that
    resamples test files (samples of one file are not independent: same audio)."""
    _, means = _file_means(values, files)
    if len(means) == 0:
        return {"mean": None, "low": None, "high": None, "n_files": 0}
    rng = np.random.default_rng([seed, 404])
    boots = means[rng.integers(len(means), size=(n_boot, len(means)))].mean(axis=1)
    q = (1.0 - level) / 2.0
    return {
        "mean": float(means.mean()),
        "low": float(np.quantile(boots, q)),
        "high": float(np.quantile(boots, 1.0 - q)),
        "n_files": int(len(means)),
    }


def bootstrap_difference(
    a: np.ndarray, b: np.ndarray, files: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    """``a − b`` per sample, then :func:`bootstrap_mean` over files (paired by sample)."""
    return bootstrap_mean(np.asarray(a) - np.asarray(b), files, n_boot, seed)


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


def strength_error(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``|‖Δ_audio(P̂)‖ − target| / target`` per sample (NaN where the target is 0)."""
    target = np.asarray(target, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(target > 0, np.abs(np.asarray(achieved) - target) / target, np.nan)


def verdict(
    figures: Mapping[str, Mapping[str, Any]],
    diff_text: Mapping[str, Any],
    diff_shuffled: Mapping[str, Any],
    text_name: str,
    metric: str = "param_mse",
) -> dict[str, Any]:
    """ "The decoder uses the audio" only when it beats the best text-only baseline on test
    with the interval of the difference (text-only − decoder) above 0 AND shuffling the test
    audio makes it worse (interval of shuffled − decoder above 0). Lists which baselines the
    decoder beats on ``metric`` (point estimates; lower is better) and which it does not."""
    beats_text = diff_text["low"] is not None and diff_text["low"] > 0
    shuffle_hurts = diff_shuffled["low"] is not None and diff_shuffled["low"] > 0
    mine = figures["decoder"][metric]["mean"]
    beaten, not_beaten = [], []
    for name, fig in figures.items():
        other = fig.get(metric, {}).get("mean")
        if name == "decoder" or other is None or mine is None:
            continue
        (beaten if mine < other else not_beaten).append(name)
    uses = bool(beats_text and shuffle_hurts)
    return {
        "uses_audio": uses,
        "beats_text_only": bool(beats_text),
        "shuffled_audio_hurts": bool(shuffle_hurts),
        "text_only_baseline": text_name,
        "metric": metric,
        "difference_text_only_minus_decoder": dict(diff_text),
        "difference_shuffled_minus_decoder": dict(diff_shuffled),
        "beats": beaten,
        "does_not_beat": not_beaten,
        "message": (
            "the decoder USES THE AUDIO: it beats text-only on test (interval above 0) and "
            "shuffling the audio hurts it"
            if uses
            else "NO EVIDENCE THAT THE DECODER USES THE AUDIO: "
            + ("it does not beat text-only on test" if not beats_text else "")
            + (" and " if not beats_text and not shuffle_hurts else "")
            + ("shuffling the audio does not hurt it" if not shuffle_hurts else "")
        ),
    }
