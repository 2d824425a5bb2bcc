"""Phase 3 inference over test files: the exact sign-flip test, Holm's correction, BCa
intervals and the verdict (docs/methods.md §6.5).

Why not the bootstrap criterion it replaces: with n test files a percentile bootstrap of the
mean has at most a handful of distinct values, and its one-sided "lower bound above 0" rule
passed a true difference of 0 far more often than its nominal 2.5 % (27.7 % at 2 files,
12.6 % at 3, 6.6 % at 6). The sign-flip test is exact for any n when each file's difference is
symmetric about 0 under the null (files independent, scales free to differ), and its smallest
p is 2^-n, so a small test split *cannot* pass rather than passing by chance. The bootstrap
remains, BCa, as a description of the size of the effect only. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

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
    "sign_flip_pvalues",
    "sign_flip_test",
    "sign_matrix",
]

#: One-sided level of each gate (before Holm).
DEFAULT_ALPHA = 0.05
#: Fewest test files for a verdict; below it the verdict is "inconclusive".
DEFAULT_MIN_TEST_FILES = 10
#: ``min_test_files`` may not go below this: at 6 files the smallest sign-flip p is 1/64, the
#: only level at which two Holm-corrected gates at alpha = 0.05 can both still pass.
MIN_TEST_FILES_FLOOR = 6
#: The comparisons that gate the verdict (baseline − decoder, positive = decoder better).
GATES = ("text_only", "shuffled_audio")
#: Above this many files the flips are sampled rather than enumerated.
MAX_EXACT_FILES = 16


@lru_cache(maxsize=32)
def sign_matrix(n: int, n_random: int = 20_000, seed: int = 0) -> tuple[np.ndarray, bool]:
    """(K, n) ±1 sign vectors (read-only, cached: simulations reuse them) and whether they are
    all 2^n of them. Exact up to ``MAX_EXACT_FILES`` files, row 0 the identity; above, the
    identity then ``n_random`` seeded random flips (the identity counted once, so the p is a
    valid Monte Carlo p, never 0)."""
    if n < 1:
        raise ValueError("the sign-flip test needs at least one file")
    if n <= MAX_EXACT_FILES:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return _frozen(1.0 - 2.0 * bits), True
    if n_random < 10_000:
        raise ValueError(f"sampled sign flips need at least 10^4 draws, got {n_random}")
    rng = np.random.default_rng([seed, 606])
    rand = rng.choice(np.array([1.0, -1.0]), size=(n_random, n))
    return _frozen(np.vstack([np.ones((1, n)), rand])), False


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def sign_flip_pvalues(diffs: np.ndarray, n_random: int = 20_000, seed: int = 0) -> np.ndarray:
    """One-sided sign-flip p of ``mean > 0`` along the last axis, vectorised over the leading
    ones (one sign matrix shared by every row, so simulations cost one matrix product).

    p = share of sign vectors (identity included) whose flipped sum is at least the observed
    one; ties are counted with a relative tolerance so that exact-zero differences give p = 1.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError("sign-flip differences must be finite (drop files without a value)")
    signs, _ = sign_matrix(d.shape[-1], n_random, seed)
    observed = d.sum(axis=-1)
    flipped = d @ signs.T  # (..., K)
    tol = 1e-9 * np.abs(d).sum(axis=-1)
    return ((flipped >= (observed - tol)[..., None]).sum(axis=-1)) / signs.shape[0]


def sign_flip_test(diffs_per_file: Sequence[float] | np.ndarray, seed: int = 0) -> float:
    """Exact one-sided sign-flip permutation p of "mean over files > 0" (files, not samples,
    are the independent units). All 2^n flips for n <= 16, else 2 * 10^4 random ones."""
    return float(sign_flip_pvalues(np.asarray(diffs_per_file, dtype=np.float64), seed=seed))


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
    """Bias-corrected and accelerated bootstrap interval of the mean over files (acceleration
    from the jackknife). A description of the effect's size only, never a test: with few files
    every bootstrap interval is too narrow (see the module docstring)."""
    x = np.asarray(per_file_values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    if n == 1 or np.ptp(x) == 0:
        return float(x.mean()), float(x.mean())
    rng = np.random.default_rng(0) if rng is None else rng
    boots = x[rng.integers(n, size=(n_boot, n))].mean(axis=1)
    theta = x.mean()
    z0 = ndtri(((boots < theta).sum() + (boots <= theta).sum()) / (2.0 * n_boot))
    jack = (x.sum() - x) / (n - 1)
    dev = jack.mean() - jack
    accel = (dev**3).sum() / (6.0 * ((dev**2).sum()) ** 1.5)
    z = ndtri(np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0]))
    shifted = ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.quantile(boots, np.clip(shifted, 0.0, 1.0))
    return float(low), float(high)


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
    mean: float  # mean over files of the per-file difference
    p: float  # one-sided sign-flip p of mean > 0
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
        return Comparison(name, gating, 0, nan, nan, nan, nan, nan, None)
    low, high = bca_interval(d, level, n_boot, np.random.default_rng([seed, 707]))
    p = sign_flip_test(d, seed=seed)
    return Comparison(name, gating, len(d), float(d.mean()), p, p, low, high, None)


def _seed_result(
    seed: int,
    diffs: Mapping[str, np.ndarray],
    gates: Sequence[str],
    alpha: float,
    level: float,
    n_boot: int,
) -> SeedResult:
    """Every comparison of one seed; Holm over its gates; the seed passes when every gate
    has Holm p <= alpha and a positive mean."""
    comps = {k: _compare(k, v, k in gates, level, n_boot, seed) for k, v in diffs.items()}
    adj = holm([comps[g].p for g in gates])
    for g, q in zip(gates, adj, strict=True):
        c = comps[g]
        ok = bool(np.isfinite(q) and q <= alpha and c.mean > 0)
        comps[g] = Comparison(**{**asdict(c), "p_holm": float(q), "passed": ok})
    passed = all(comps[g].passed for g in gates)
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
    a one-sided sign-flip test over files, Holm-corrected within the seed (conservative: an
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
            "a verdict needs (the smallest sign-flip p with n files is 2^-n): add audio files "
            "or raise the test share"
        )
        return Phase3Verdict("inconclusive", why, *args)
    if all(r.passed for r in seeds):
        why = f"every seed: each gate's Holm p <= {alpha:g} and mean difference > 0"
        return Phase3Verdict("pass", why, *args)
    failed = [
        f"seed {r.seed}: {c.name} (mean {c.mean:.3g}, Holm p {c.p_holm:.3g})"
        for r in seeds
        for c in r.comparisons
        if c.gating and not c.passed
    ]
    return Phase3Verdict("fail", "gates not passed: " + "; ".join(failed), *args)
