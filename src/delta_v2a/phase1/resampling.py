"""Phase 1 resampling over files: the bootstrap intervals, the label permutations (a
secondary figure), the legacy synonym regrouping and the rank p-value (docs/methods.md §5)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from delta_v2a import metrics
from delta_v2a.phase1.anchors import batched_cosine_matrix, batched_rowwise_cosine, center

# --------------------------------------------------------------------------- bootstrap over files


@dataclass(frozen=True)
class FileSums:
    """Unit deltas summed per (file, effect), pooled over intensities (one modality).

    The bootstrap resamples files, so a resampled prototype is ``Σ_f c_f S[f, e] / Σ_f c_f
    n[f, e]`` with multinomial counts c: one matrix product per batch of draws, no re-screening.
    """

    sums: np.ndarray  # (F, E, D) float32
    counts: np.ndarray  # (F, E) float64


def usable_units(delta: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Unit deltas at every row (zeros where unusable) and the usable mask, by the same rule as
    ``metrics.screen`` (finite and norm > ZERO_NORM), keeping row positions for resampling."""
    d = np.asarray(delta)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", d, d, dtype=np.float64))
    ok = np.isfinite(norms) & (norms > metrics.ZERO_NORM)
    units = np.zeros(d.shape, dtype=dtype)
    units[ok] = d[ok] / norms[ok, None]
    return units, ok


def file_sums(
    delta: np.ndarray, file_index: np.ndarray, effect_code: np.ndarray, n_files: int, n_effects: int
) -> FileSums:
    units, ok = usable_units(delta)
    key = np.asarray(file_index) * n_effects + np.asarray(effect_code)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    sums = np.zeros((n_files * n_effects, delta.shape[1]), dtype=np.float64)
    if order.size:
        sums[ks[starts]] = np.add.reduceat(units[order], starts, axis=0)
    counts = np.bincount(key, weights=ok.astype(np.float64), minlength=n_files * n_effects)
    return FileSums(
        sums.reshape(n_files, n_effects, -1).astype(np.float32),
        counts.reshape(n_files, n_effects),
    )


def bootstrap_sim(
    fs: FileSums, anchors: np.ndarray, n_boot: int, rng: np.random.Generator, batch: int = 128
) -> np.ndarray:
    """(n_boot, E) draws of cos(prototype_e, anchor_e) with files resampled with replacement.

    Files, not deltas, are the unit: the deltas of one file share its content, so resampling
    deltas would understate the spread. A draw in which an effect has no delta gives NaN.
    """
    n_files, n_eff, dim = fs.sums.shape
    flat = fs.sums.reshape(n_files, n_eff * dim)
    out = np.empty((n_boot, n_eff))
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        c = rng.multinomial(n_files, np.full(n_files, 1.0 / n_files), size=b).astype(np.float32)
        tot = (c @ flat).reshape(b, n_eff, dim).astype(np.float64)
        n = c.astype(np.float64) @ fs.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n[..., None] > 0, tot / n[..., None], np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out


def percentile_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN draws; NaN where every draw is NaN."""
    q = (1 - level) / 2
    if np.isfinite(draws).all():  # the common case; nanquantile is a slow per-column loop
        return np.quantile(draws, q, axis=0), np.quantile(draws, 1 - q, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
        return np.nanquantile(draws, q, axis=0), np.nanquantile(draws, 1 - q, axis=0)


def basic_interval(
    estimate: np.ndarray,
    draws: np.ndarray,
    level: float,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[np.ndarray, np.ndarray]:
    """Basic (reverse-percentile) bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo], kept in ``bounds``.

    Why not the plain percentile interval: the cosine of a noisy mean is shrunk toward 0, and
    the bootstrap draws are shrunk once more, so percentile intervals sit on the wrong side of
    the truth (measured in tests/unit/phase1_stats_test.py: 81 % coverage for a nominal 90 %;
    basic: 88 %). The basic interval reflects the draws about the estimate, which removes that
    first-order bias.
    """
    q_lo, q_hi = percentile_interval(draws, level)
    lo, hi = 2 * estimate - q_hi, 2 * estimate - q_lo
    return np.clip(lo, *bounds), np.clip(hi, *bounds)


# --------------------------------------------------------------------------- permutation nulls


def strata_permutations(strata: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """(n_perm, N) index arrays, each a uniform random permutation WITHIN every stratum."""
    strata = np.asarray(strata)
    n = strata.size
    keys = rng.random((n_perm, n)) + strata[None, :].astype(np.float64) * 2.0
    order = np.argsort(keys, axis=1, kind="stable")  # rows sorted by stratum, random within
    base = np.argsort(strata, kind="stable")  # the stratum-sorted identity
    perm = np.empty((n_perm, n), dtype=np.int64)
    np.put_along_axis(perm, np.broadcast_to(base, (n_perm, n)).copy(), order, axis=1)
    return perm


def label_permutation_sim(
    delta: np.ndarray,
    effect_code: np.ndarray,
    strata: np.ndarray,
    anchors: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
    batch: int | None = None,
) -> np.ndarray:
    """(n_perm, E) null draws of cos(prototype_e, anchor_e) with effect labels permuted within
    strata (file × intensity): the null "the deltas do not depend on which effect made them".

    Prototypes of a permutation are one sparse-free matrix product of a one-hot label matrix
    with the unit deltas, batched so the deltas are read once per ``batch`` permutations.
    """
    units, ok = usable_units(delta, np.float32)
    ok = ok.astype(np.float32)
    codes = np.asarray(effect_code)
    n_eff = anchors.shape[0]
    out = np.empty((n_perm, n_eff))
    # ~64 MB of one-hot labels per batch: 40 permutations at 10^5 deltas × 4 effects
    batch = batch or int(np.clip(16_000_000 // max(codes.size * n_eff, 1), 1, n_perm))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        perm = strata_permutations(strata, b, rng)
        # (b·E, N) one-hot of each delta's new label (unusable deltas count nowhere)
        onehot = np.zeros((b, n_eff, codes.size), dtype=np.float32)
        rows = np.broadcast_to(np.arange(b)[:, None], perm.shape)
        cols = np.broadcast_to(np.arange(codes.size)[None, :], perm.shape)
        onehot[rows, codes[perm], cols] = ok[None, :]
        onehot = onehot.reshape(b * n_eff, -1)
        tot = (onehot @ units).reshape(b, n_eff, -1).astype(np.float64)
        n = onehot.sum(axis=1).reshape(b, n_eff, 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n > 0, tot / n, np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out


def regroup(
    synonym_vectors: Sequence[np.ndarray], n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_perm, E, D) anchors from the modality's synonyms shuffled across its effects (group
    sizes kept): the null "these words are not grouped by effect"."""
    pool = np.concatenate(synonym_vectors, axis=0)
    sizes = np.array([v.shape[0] for v in synonym_vectors])
    group = np.repeat(np.arange(len(sizes)), sizes)
    perm = np.argsort(rng.random((n_perm, pool.shape[0])), axis=1)
    weights = np.zeros((n_perm, len(sizes), pool.shape[0]))
    rows = np.arange(n_perm)[:, None]
    weights[rows, group[None, :], perm] = 1.0 / sizes[group][None, :]
    return weights @ pool


def synonym_shuffle_sim3(
    image_vectors: Mapping[str, Sequence[np.ndarray]],
    audio_vectors: Mapping[str, Sequence[np.ndarray]],
    n_perm: int,
    rng: np.random.Generator,
    centred: bool,
) -> dict[str, np.ndarray]:
    """Null draws of sim3 per bridge: (n_perm, I, J), both sides' synonyms regrouped.

    ``image_vectors[bridge]`` are the image synonyms' vectors in that bridge's text space. The
    SAME regrouping is used in every bridge (a draw is one relabelling of the words), so a
    combination of bridges has a null built from matched draws.
    """
    out = {}
    state = rng.bit_generator.state
    for bridge in image_vectors:
        rng.bit_generator.state = state  # same word relabelling in every bridge
        a = regroup(image_vectors[bridge], n_perm, rng)
        b = regroup(audio_vectors[bridge], n_perm, rng)
        if centred:
            a, b = center(a), center(b)
        out[bridge] = batched_cosine_matrix(a, b)
    return out


def standardise(obs: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(obs − null mean) / null SD per cell, for the observed value and every null draw."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell with no null: NaN
        mu = np.nanmean(null, axis=0)
        sd = np.nanstd(null, axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (obs - mu) / sd, (null - mu) / sd


def perm_pvalue(obs: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided permutation p-value (1 + #{null ≥ obs}) / (1 + R) per cell (never 0).

    The +1 counts the observed labelling as one of the permutations (it is one), which keeps
    the test exact at level alpha. NaN where obs is NaN.
    """
    obs = np.asarray(obs, dtype=np.float64)
    valid = np.isfinite(null)
    ge = (null >= obs[None] - 1e-12) & valid
    r = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1.0 + ge.sum(axis=0)) / (1.0 + r)
    return np.where(np.isfinite(obs) & (r > 0), p, np.nan)


def file_permutation_sim(
    fs: FileSums, anchors: np.ndarray, n_perm: int, rng: np.random.Generator, batch: int = 0
) -> np.ndarray:
    """(n_perm, E) draws of cos(prototype_e, anchor_e) with effect labels permuted within each
    file, a file's (effect) block moving whole across its intensities.

    The null "the deltas do not depend on which effect made them" (secondary figure
    ``p_sim*_label``). Permuting whole per-file blocks is a subgroup of the within-file ×
    intensity permutations, so it is exact under the same null, and it works on the per-file
    sums of the bootstrap: one (b·E, F·E) one-hot product per batch, no pass over the deltas.
    """
    n_files, n_eff, dim = fs.sums.shape
    flat = fs.sums.reshape(n_files * n_eff, dim)
    counts = fs.counts.reshape(-1).astype(np.float32)
    out = np.empty((n_perm, n_eff))
    # ~64 MB of float32 one-hot per batch
    batch = batch or int(np.clip(16_000_000 // max(n_files * n_eff * n_eff, 1), 1, n_perm))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        src = np.argsort(rng.random((b, n_files, n_eff)), axis=2)  # label e <- block src
        onehot = np.zeros((b, n_eff, n_files, n_eff), dtype=np.float32)
        bi, fi, ei = np.meshgrid(np.arange(b), np.arange(n_files), np.arange(n_eff), indexing="ij")
        onehot[bi, ei, fi, src] = 1.0
        onehot = onehot.reshape(b * n_eff, -1)
        tot = (onehot @ flat).reshape(b, n_eff, dim).astype(np.float64)
        n = (onehot @ counts).reshape(b, n_eff, 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n > 0, tot / n, np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out
