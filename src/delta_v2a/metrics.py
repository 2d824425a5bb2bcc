"""Phase 0 statistics of embedding deltas: sensitivity, consistency, invariance.

Definitions: docs/methods.md §4. Everything is O(n · d): mean pairwise cosines use the closed form
for unit vectors, ``(‖Σu‖² − n) / (n(n − 1))``, never an n × n matrix. A delta with zero norm
has no direction and a non-finite one has no value: both are counted and reported, never divided
by or averaged in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

ZERO_NORM = 1e-12


@dataclass(frozen=True)
class Screened:
    """Deltas split into usable rows and the counts of those set aside."""

    norms: np.ndarray  # norms of finite rows (zero norms included: a zero delta is a real 0)
    units: np.ndarray  # unit vectors of finite, non-zero rows (float64)
    n: int
    n_zero: int
    n_nonfinite: int


def screen(deltas: np.ndarray) -> Screened:
    deltas = np.asarray(deltas, dtype=np.float64)
    finite = np.isfinite(deltas).all(axis=1)
    good = deltas[finite]
    norms = np.linalg.norm(good, axis=1)
    nonzero = norms > ZERO_NORM
    units = good[nonzero] / norms[nonzero, None]
    return Screened(
        norms=norms,
        units=units,
        n=int(deltas.shape[0]),
        n_zero=int((~nonzero).sum()),
        n_nonfinite=int((~finite).sum()),
    )


def mean_pairwise_cosine_units(units: np.ndarray) -> float:
    """Mean cosine over pairs i<j of unit vectors, in O(n·d)."""
    n = units.shape[0]
    if n < 2:
        raise ValueError("mean pairwise cosine needs at least 2 vectors")
    total = units.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def prototype(units: np.ndarray) -> np.ndarray:
    """p = mean(Δe/‖Δe‖): its length is itself a consistency measure (1 = all aligned)."""
    return units.mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na <= ZERO_NORM or nb <= ZERO_NORM:
        return float("nan")
    return float(a @ b / (na * nb))


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def sensitivity(deltas: np.ndarray, min_distance: float) -> dict:
    """n, mean, std, min, max of ‖Δe‖ (population std); sensitive = mean > min_distance."""
    s = screen(deltas)
    out: dict = {"n": s.n, "n_zero_norm": s.n_zero, "n_nonfinite": s.n_nonfinite}
    if s.norms.size == 0:
        return (
            out
            | dict.fromkeys(("mean", "std", "min", "max"), None)
            | {
                "sensitive": None,
                "reason": "no finite deltas",
            }
        )
    mean = float(s.norms.mean())
    return out | {
        "mean": mean,
        "std": float(s.norms.std()),
        "min": float(s.norms.min()),
        "max": float(s.norms.max()),
        "sensitive": mean > min_distance,
        "reason": None,
    }


def consistency(deltas: np.ndarray, min_cosine: float, max_cv: float) -> dict:
    """Within one category: mean pairwise cosine of directions and CV of magnitudes."""
    s = screen(deltas)
    out: dict = {"n": s.n, "n_zero_norm": s.n_zero, "n_nonfinite": s.n_nonfinite}
    if s.units.shape[0] < 2:
        return out | {
            "mean_cosine": None,
            "cv": None,
            "consistent": None,
            "reason": f"{s.units.shape[0]} usable delta(s): at least 2 are needed",
        }
    mean_cos = mean_pairwise_cosine_units(s.units)
    mean_norm = float(s.norms.mean())
    cv = float(s.norms.std() / mean_norm)
    return out | {
        "mean_cosine": mean_cos,
        "cv": cv,
        "consistent": bool(mean_cos > min_cosine and cv < max_cv),
        "reason": None,
    }


def cross_category(deltas_by_category: dict[str, np.ndarray], max_variance: float) -> dict:
    """Context invariance: cosines between category prototypes, their variance and mean.

    A low variance of uniformly low cosines is not agreement, so the mean is reported beside it.
    With two categories there is one cosine and its variance is 0 by construction: no verdict.
    """
    protos = {}
    skipped = {}
    for cat, deltas in deltas_by_category.items():
        s = screen(deltas)
        if s.units.shape[0] == 0:
            skipped[cat] = "no usable delta"
        else:
            protos[cat] = prototype(s.units)
    cats = sorted(protos)
    pairs = [
        {"a": a, "b": b, "cosine": _none_if_nan(cosine(protos[a], protos[b]))}
        for i, a in enumerate(cats)
        for b in cats[i + 1 :]
    ]
    out: dict = {"categories": cats, "categories_skipped": skipped, "pairs": pairs}
    values = np.array([p["cosine"] for p in pairs if p["cosine"] is not None], dtype=np.float64)
    if len(cats) < 2:
        reason = f"{len(cats)} category with usable deltas: at least 2 are needed"
        return out | {"mean_cosine": None, "variance": None, "invariant": None, "reason": reason}
    if values.size == 0:
        reason = "no category pair has a defined cosine (a prototype of zero length)"
        return out | {"mean_cosine": None, "variance": None, "invariant": None, "reason": reason}
    mean = float(values.mean())
    variance = float(values.var())
    if values.size < 2:
        reason = "one category pair: the variance of a single cosine is 0 by construction"
        return out | {
            "mean_cosine": mean,
            "variance": variance,
            "invariant": None,
            "reason": reason,
        }
    return out | {
        "mean_cosine": mean,
        "variance": variance,
        "invariant": bool(variance < max_variance),
        "reason": None,
    }


def across_intensities(deltas_by_intensity: Sequence[tuple[str, np.ndarray]]) -> dict:
    """Literal linearity of an effect (reported, not a gate): do norms grow with intensity,
    and does the direction stay put from the lowest to the highest level?"""
    names = [name for name, _ in deltas_by_intensity]
    screened = [screen(d) for _, d in deltas_by_intensity]
    means = [float(s.norms.mean()) if s.norms.size else None for s in screened]
    known = [m for m in means if m is not None]
    increasing = (
        bool(all(a < b for a, b in zip(known, known[1:], strict=False)))
        if len(known) == len(means) and len(known) >= 2
        else None
    )
    first, last = screened[0], screened[-1]
    cos = (
        _none_if_nan(cosine(prototype(first.units), prototype(last.units)))
        if first.units.size and last.units.size and len(screened) >= 2
        else None
    )
    return {
        "intensities": names,
        "mean_norm": means,
        "norm_increasing": increasing,
        "cosine_lowest_highest_prototype": cos,
    }


def group_indices(*keys: np.ndarray) -> Iterable[tuple[tuple, np.ndarray]]:
    """Row indices of each distinct key tuple, in sorted key order (one pass, no Python loop
    over rows)."""
    stacked = np.stack([np.asarray(k) for k in keys], axis=1) if len(keys) > 1 else None
    if stacked is None:
        uniq, inverse = np.unique(np.asarray(keys[0]), return_inverse=True)
        uniq = [(u,) for u in uniq]
    else:
        uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
        uniq = [tuple(row) for row in uniq]
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
    for i, key in enumerate(uniq):
        yield key, order[bounds[i] : bounds[i + 1]]
