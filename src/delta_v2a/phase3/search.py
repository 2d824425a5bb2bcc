"""A continuous Text2FX-style per-clip search: maximise a score of u on [lo, hi] (in the job
layer, the CLAP cosine between the clip rendered at u and the description's text embedding)
within a budget of evaluations (docs/methods.md §6.4).

Why not the grid argmax: the grid version only ever answers one of the grid's values, so its
error has a floor of half a grid step that has nothing to do with the method; Text2FX itself
optimises the parameters continuously. Golden-section search needs no gradient (a render and
a CLAP call per evaluation) and, for a unimodal score, shrinks the bracket by 0.618 per call.
A score that is not unimodal is still searched sensibly: the best point evaluated is returned.
Pure apart from the calls to ``f``; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ClipSearch", "SearchResult", "golden_section_max", "search_clips"]

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...


@dataclass(frozen=True)
class SearchResult:
    u: float  # the best u evaluated
    value: float  # f(u)
    n_calls: int  # calls to f made by this search (points given in ``known`` are free)
    points: tuple[tuple[float, float], ...]  # every (u, f(u)) known at the end, sorted by u


def _bracket(cache: Mapping[float, float], lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi], or with three or more known points inside it the interval between the
    neighbours of the best one (for a unimodal score the maximum lies there)."""
    pts = sorted(u for u in cache if lo <= u <= hi)
    if len(pts) < 3:
        return lo, hi
    k = max(range(len(pts)), key=lambda i: cache[pts[i]])
    return (pts[max(k - 1, 0)], pts[min(k + 1, len(pts) - 1)])


def golden_section_max(
    f: Callable[[float], float],
    lo: float = 0.0,
    hi: float = 1.0,
    *,
    budget: int = 12,
    tol: float = 1e-3,
    ends: bool = True,
    known: Mapping[float, float] | None = None,
) -> SearchResult:
    """Maximise ``f`` on [lo, hi] with at most ``budget`` calls.

    With ``ends`` the two end points are evaluated first (a score often peaks at u = 0 or 1,
    which interior probes only approach). Then golden-section on the bracket until it is
    narrower than ``tol`` or the budget is spent. Every evaluation is cached, so no u is
    rendered twice; ``known`` seeds the cache with values already paid for (the strength
    job's grid), which cost no call, and the bracket starts between the neighbours of the best
    known point. Returns the best point seen, not the last bracket's midpoint.

    Kept, not ``scipy.optimize.minimize_scalar(method="bounded")``: the budget counts CLAP
    calls (the Text2FX comparison's currency), and Brent's method bounds iterations, never
    evaluates the ends and cannot start from values already paid for (``known``).
    """
    if not hi > lo:
        raise ValueError(f"need lo < hi, got [{lo}, {hi}]")
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    cache: dict[float, float] = {float(u): float(v) for u, v in (known or {}).items()}
    calls = 0

    def value(u: float) -> float | None:
        nonlocal calls
        if u not in cache:
            if calls >= budget:
                return None
            cache[u] = float(f(u))
            calls += 1
        return cache[u]

    if ends:
        value(float(lo))
        value(float(hi))
    a, b = _bracket(cache, float(lo), float(hi))
    c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
    fc, fd = value(c), value(d)
    while fc is not None and fd is not None and b - a > tol:
        if fc >= fd:  # the maximum is in [a, d]
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = value(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = value(d)
    inside = {u: v for u, v in cache.items() if lo <= u <= hi}
    best = max(inside, key=lambda u: (inside[u], -abs(u - (a + b) / 2)))
    return SearchResult(best, inside[best], calls, tuple(sorted(cache.items())))


@dataclass(frozen=True)
class ClipSearch:
    u: np.ndarray  # (N,) each sample's best u
    similarity: np.ndarray  # (N,) its audio-text cosine
    calls: np.ndarray  # (N,) score evaluations of each sample's search beyond the free grid
    embedded: int  # distinct (file, effect, u) rendered and embedded: the CLAP calls made


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / max(float(np.linalg.norm(x)), 1e-12)


def search_clips(
    embed: Callable[[int, str, float], np.ndarray],
    files: Sequence[int],
    effects: Sequence[str],
    text: np.ndarray,
    grid: np.ndarray,
    known: np.ndarray,
    *,
    budget: int,
    tol: float = 1e-3,
) -> ClipSearch:
    """The Text2FX-style competitor on every test sample: maximise the cosine between the
    CLAP embedding of the sample's clip rendered by its audio effect at u and the CLAP text
    embedding of its description (``text[n]``), by :func:`golden_section_max` within
    ``budget`` evaluations (docs/methods.md §6.4).

    ``embed(file, effect, u)`` renders and embeds one clip; it is called once per distinct
    (file, effect, u) over all samples (a cache shared by the searches: two descriptions of
    one clip ask for the same renders), so ``embedded`` counts the CLAP calls made while
    ``calls`` counts what each sample's search asked for, what a standalone Text2FX run on
    that clip would pay. ``known[n]`` (G, D) are the strength job's embeddings of the same
    clip at ``grid``: free, and they place the first bracket. Budget 0 is the grid argmax.
    Samples are searched grouped by file (stable order), so ``embed`` may hold one file's
    audio at a time.
    """
    text, known, grid = np.asarray(text), np.asarray(known), np.asarray(grid, dtype=np.float64)
    n = len(files)
    if not (len(effects) == n == len(text) == len(known)):
        raise ValueError("files, effects, text and known embeddings need one row per sample")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    cache: dict[tuple[int, str, float], np.ndarray] = {}
    u, sim, calls = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for i in np.argsort(np.asarray(files), kind="stable"):
        f, e, t = int(files[i]), str(effects[i]), _unit(text[i])
        grid_sims = {float(g): float(_unit(k) @ t) for g, k in zip(grid, known[i], strict=True)}
        if budget == 0:
            best = max(grid_sims, key=grid_sims.__getitem__)
            u[i], sim[i] = best, grid_sims[best]
            continue

        def score(x: float, f: int = f, e: str = e, t: np.ndarray = t) -> float:
            if (f, e, x) not in cache:
                cache[(f, e, x)] = _unit(embed(f, e, x))
            return float(cache[(f, e, x)] @ t)

        r = golden_section_max(score, budget=budget, tol=tol, known=grid_sims)
        u[i], sim[i], calls[i] = r.u, r.value, r.n_calls
    return ClipSearch(u, sim, calls, len(cache))
