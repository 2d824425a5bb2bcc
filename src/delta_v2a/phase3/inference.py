"""Phase 3 inference over test files: the exact sign test, Holm's correction, BCa intervals
and the verdict (docs/methods.md §6.5).

What is claimed: on a new song (of the genres studied), the decoder's error is below the
baseline's with probability above 1/2, for both gates (text-only, shuffled audio), in every
training seed. The exact one-sided sign test over test files tests exactly that: it reads only
which side of 0 each file's difference falls, so it needs no symmetry, no bound and no
distribution; its smallest p is 2^-n, so a small test split *cannot* pass rather than passing by
chance. The sign-flip test it replaces claimed the mean and was exact only for differences
symmetric about 0: with equal means and skewed per-file gains (a decoder that wins a little on
most songs and loses badly on a few) it passed in about 10 % of runs. No test of the mean is
valid at 10 files under arbitrary skew (a rare large loss is unseen in most samples), so the
mean is described (BCa interval), not claimed. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import binom, bootstrap

from delta_v2a.phase1 import adjust

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_TEST_FILES",
    "GATES",
    "MIN_TEST_FILES_FLOOR",
    "Comparison",
    "Phase3Verdict",
    "SeedResult",
    "bca_interval",
    "file_mean_differences",
    "holm",
    "phase3_verdict",
    "gates_pass",
    "sign_test",
    "sign_test_pvalues",
    "smallest_p",
]

#: One-sided level of each gate (before Holm).
DEFAULT_ALPHA = 0.05
#: Fewest test files for a verdict; below it the verdict is "inconclusive".
DEFAULT_MIN_TEST_FILES = 10
#: ``min_test_files`` may not go below this: the exact sign test's smallest p with n files is
#: 2^-n, and Holm over two gates needs the smaller p <= alpha / 2 = 0.025; 2^-5 = 0.031 cannot,
#: 2^-6 = 0.016 can (docs/methods.md §6.5).
MIN_TEST_FILES_FLOOR = 6
#: The comparisons that gate the verdict (baseline − decoder, positive = decoder better).
GATES = ("text_only", "shuffled_audio")


def sign_test_pvalues(diffs: np.ndarray) -> np.ndarray:
    """Exact one-sided sign-test p of "P(difference > 0) > 1/2" along the last axis,
    vectorised over the leading ones (simulations pass thousands of runs at once).

    p = P(Binomial(n, 1/2) >= wins), with wins the files whose difference is above 0 (a tie,
    0, is not a win: "beats" is strict, so ties count against the claim). Exact for any
    distribution of the differences, symmetric or skewed, heavy-tailed or heteroscedastic,
    as long as the files are independent: it reads only the signs.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError("sign-test differences must be finite (drop files without a value)")
    n = d.shape[-1]
    if n < 1:
        raise ValueError("the sign test needs at least one file")
    wins = (d > 0).sum(axis=-1)
    return binom.sf(wins - 1, n, 0.5)


def sign_test(diffs_per_file: Sequence[float] | np.ndarray) -> float:
    """Exact one-sided sign-test p of "the decoder beats the baseline on a new file with
    probability above 1/2" (files, not samples, are the independent units)."""
    return float(sign_test_pvalues(np.asarray(diffs_per_file, dtype=np.float64)))


def smallest_p(n_files: int) -> float:
    """The smallest p the sign test can give with ``n_files`` files: every file a win."""
    return 0.5**n_files


def gates_pass(p: np.ndarray, mean: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Whether every gate passes, along the last axis (the gates), vectorised over the
    leading ones: Holm's step-down over the gates (sorted p, the k-th smallest against
    alpha / (G - k)) and a positive mean difference in each (a decoder worse on average is
    never called a success, whatever its signs). The verdict and the simulations in
    tests/unit/phase3_inference_test.py both decide with this one function."""
    p = np.asarray(p, np.float64)
    g = p.shape[-1]
    ps = np.sort(p, axis=-1)
    holm_ok = (ps <= alpha / (g - np.arange(g))).all(axis=-1)
    return holm_ok & (np.asarray(mean) > 0).all(axis=-1) & np.isfinite(p).all(axis=-1)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p (family-wise error), NaN kept: Phase 1's own
    :func:`delta_v2a.phase1.adjust`, so both phases correct the same way."""
    return adjust(np.asarray(pvalues, dtype=np.float64), "holm")


def bca_interval(
    per_file_values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    n_boot: int = 10_000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval of the mean over files (scipy's BCa,
    acceleration from the jackknife). A description of the effect's size only, never a test:
    with few files every bootstrap interval is too narrow. One value, or all equal, gives that
    value twice (scipy's BCa is undefined there)."""
    x = np.asarray(per_file_values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    if n == 1 or np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    rng = np.random.default_rng(0) if rng is None else rng
    res = bootstrap(
        (x,), np.mean, n_resamples=n_boot, confidence_level=level, method="BCa", rng=rng
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def file_mean_differences(
    baseline: np.ndarray, decoder: np.ndarray, files: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct files, per-file mean of baseline − decoder) over the samples where both are
    finite: the unit the tests work on (one file's samples share its audio)."""
    d = np.asarray(baseline, np.float64) - np.asarray(decoder, np.float64)
    files = np.asarray(files)
    ok = np.isfinite(d)
    uniq, inv = np.unique(files[ok], return_inverse=True)
    sums = np.bincount(inv, weights=d[ok], minlength=len(uniq))
    return uniq, sums / np.bincount(inv, minlength=len(uniq))


@dataclass(frozen=True)
class Comparison:
    """One baseline − decoder difference (positive: the decoder is better) for one seed."""

    name: str
    gating: bool
    n_files: int
    mean: float  # mean over files of the per-file difference (described, not claimed)
    wins: int  # files where the decoder's error is below the baseline's (difference > 0)
    p: float  # exact one-sided sign-test p of P(win) > 1/2
    p_holm: float  # Holm over this seed's gates; a reported comparison keeps its raw p
    low: float  # BCa interval of the mean (description, not a test)
    high: float
    passed: bool | None  # gates: p_holm <= alpha and mean > 0; reported ones: None


@dataclass(frozen=True)
class SeedResult:
    seed: int
    passed: bool
    comparisons: tuple[Comparison, ...]


@dataclass(frozen=True)
class Phase3Verdict:
    status: Literal["pass", "fail", "inconclusive"]
    reason: str
    alpha: float
    min_test_files: int
    n_test_files: int
    gates: tuple[str, ...]
    seeds: tuple[SeedResult, ...]

    @property
    def uses_audio(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the training log (JSON)."""
        return {**asdict(self), "uses_audio": self.uses_audio}


def _compare(
    name: str, d: np.ndarray, gating: bool, level: float, n_boot: int, seed: int
) -> Comparison:
    """One seed's comparison before Holm (p_holm and passed filled in by the caller)."""
    d = d[np.isfinite(d)]
    if len(d) == 0:
        nan = float("nan")
        return Comparison(name, gating, 0, nan, 0, nan, nan, nan, nan, None)
    low, high = bca_interval(d, level, n_boot, np.random.default_rng([seed, 707]))
    p = sign_test(d)
    wins = int((d > 0).sum())
    return Comparison(name, gating, len(d), float(d.mean()), wins, p, p, low, high, None)


def _seed_result(
    seed: int,
    diffs: Mapping[str, np.ndarray],
    gates: Sequence[str],
    alpha: float,
    level: float,
    n_boot: int,
) -> SeedResult:
    """Every comparison of one seed; Holm over its gates; the seed passes when every gate
    has Holm p <= alpha and a positive mean (:func:`gates_pass`, the simulations' rule)."""
    comps = {k: _compare(k, v, k in gates, level, n_boot, seed) for k, v in diffs.items()}
    adj = holm([comps[g].p for g in gates])
    for g, q in zip(gates, adj, strict=True):
        c = comps[g]
        ok = bool(np.isfinite(q) and q <= alpha and c.mean > 0)
        comps[g] = Comparison(**{**asdict(c), "p_holm": float(q), "passed": ok})
    passed = bool(
        gates_pass(
            np.array([comps[g].p for g in gates]), np.array([comps[g].mean for g in gates]), alpha
        )
    )
    return SeedResult(seed, passed, tuple(comps.values()))


def phase3_verdict(
    differences: Mapping[str, np.ndarray],
    *,
    gates: Sequence[str] = GATES,
    alpha: float = DEFAULT_ALPHA,
    min_test_files: int = DEFAULT_MIN_TEST_FILES,
    level: float = 0.95,
    n_boot: int = 10_000,
    seed_labels: Sequence[int] | None = None,
) -> Phase3Verdict:
    """ "The decoder uses the audio", decided over test files.

    ``differences[name]`` is (n_seeds, n_files) (or (n_files,) for one seed): per training
    seed and test file, the mean over that file's samples of baseline − decoder test error
    (NaN: file without a value). The gates are text-only − decoder (the audio helps beyond
    the description) and shuffled − decoder (it is *this* clip's audio that helps); each is
    an exact one-sided sign test over files, Holm-corrected within the seed (conservative: an
    intersection-union rule would need no correction). Every other entry, notably
    curve_inversion − decoder, is reported and never gates: curve inversion reads the clip's
    own strength curve, which defines the target, so it is the ceiling of any method reading
    that curve; the decoder is expected *not* to beat it, and how far it stays below says how
    much of the audio's information it captures, not whether it uses the audio.

    "pass" needs every seed to pass (a lucky seed must not carry the verdict). Fewer than
    ``min_test_files`` files with a value in every gate gives "inconclusive", never "pass".
    ``seed_labels`` names the rows (the training seeds; default 0, 1, …) in the results and
    the reason, and seeds each row's bootstrap.
    """
    if min_test_files < MIN_TEST_FILES_FLOOR:
        raise ValueError(f"min_test_files must be >= {MIN_TEST_FILES_FLOOR}, got {min_test_files}")
    if missing := [g for g in gates if g not in differences]:
        raise ValueError(f"no differences for the gate(s) {missing}")
    arrays = {k: np.atleast_2d(np.asarray(v, np.float64)) for k, v in differences.items()}
    n_seeds = {a.shape[0] for a in arrays.values()}
    if len(n_seeds) != 1:
        raise ValueError(f"every comparison needs the same seeds, got {sorted(n_seeds)}")
    n_rows = n_seeds.pop()
    labels = list(range(n_rows)) if seed_labels is None else [int(x) for x in seed_labels]
    if len(labels) != n_rows:
        raise ValueError(f"{len(labels)} seed labels for {n_rows} rows of differences")
    seeds = tuple(
        _seed_result(lab, {k: a[s] for k, a in arrays.items()}, gates, alpha, level, n_boot)
        for s, lab in enumerate(labels)
    )
    n = min(c.n_files for r in seeds for c in r.comparisons if c.gating)
    args = (alpha, min_test_files, n, tuple(gates), seeds)
    if n < min_test_files:
        why = (
            f"only {n} test files with a value in every gate, fewer than the {min_test_files} "
            "a verdict needs (the smallest sign-test p with n files is 2^-n): add audio files "
            "or raise the test share"
        )
        return Phase3Verdict("inconclusive", why, *args)
    if all(r.passed for r in seeds):
        why = (
            f"every seed: the decoder beats each gate's baseline on more test files than chance "
            f"allows (exact sign test, Holm p <= {alpha:g}) and by a positive mean difference"
        )
        return Phase3Verdict("pass", why, *args)
    failed = [
        f"seed {r.seed}: {c.name} (wins {c.wins}/{c.n_files}, mean {c.mean:.3g}, "
        f"Holm p {c.p_holm:.3g})"
        for r in seeds
        for c in r.comparisons
        if c.gating and not c.passed
    ]
    return Phase3Verdict("fail", "gates not passed: " + "; ".join(failed), *args)
