"""Phase 1's foil nulls with the concept as the unit (docs/methods.md §5).

sim1 / sim2: "this prototype points along its words no more than along the words of an
unrelated concept"; sim3: "these two synonym lists are no closer than two unrelated concepts".
A foil set is size-matched (as many words as the synonym list), from ONE one-sided concept
(a WordNet adjective cluster), and coherence-matched (its words about as tight as the list's).
The p-value counts concepts, not draws: the draws inside one concept are not independent
evidence, and under the null the real list is one more concept among K, so
``p = (1 + Σ_c share of concept c's sets at least as extreme) / (K + 1) ≥ 1/(K + 1)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from delta_v2a import metrics
from delta_v2a.phase1.foils import (
    Draws,
    FoilBank,
    coherence_band,
    concept_draws,
    list_coherence,
    set_coherence,
    set_sq_norm,
)


@dataclass(frozen=True)
class ConceptNull:
    """Null values of one statistic and the concept each value came from."""

    values: np.ndarray  # (n,)
    concept: np.ndarray  # (n,)

    def pvalue(self, observed: float) -> tuple[float, int]:
        """(p, K): ``(1 + Σ_c share of c's values ≥ observed) / (K + 1)`` over the K concepts
        with a finite value; NaN where nothing is defined."""
        return concept_pvalue(observed, self.values, self.concept)


def concept_pvalue(observed: float, values: np.ndarray, concept: np.ndarray) -> tuple[float, int]:
    """Each concept contributes the share of its sets at least as extreme as the observed
    value (its own null summary), so p is the expected rank of the real list among K + 1
    exchangeable concepts, and the smallest p is 1/(K + 1) however many sets were drawn.

    Why a share and not a concept's mean statistic: one set, not a mean over sets, is what the
    real list is; a mean over sets is narrower than one set and would make the null too
    narrow."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if not np.isfinite(observed) or not ok.any():
        return float("nan"), 0
    codes, inv = np.unique(np.asarray(concept)[ok], return_inverse=True)
    ge = (v[ok] >= observed - 1e-12).astype(np.float64)
    share = np.bincount(inv, weights=ge) / np.bincount(inv)
    return float((1.0 + share.sum()) / (codes.size + 1)), int(codes.size)


def _offset(raw: np.ndarray, e: int, centred: bool, dim: int) -> np.ndarray | None:
    """What centring subtracts from effect e's anchor, up to a positive factor: the mean of the
    OTHER defined anchors (with the foil in e's place, centred foil = (E−1)/E · (foil − that)).
    Zero without centring; None where centring leaves nothing (no other effect)."""
    if not centred:
        return np.zeros(dim)
    others = np.isfinite(raw).all(axis=1)
    others[e] = False
    return raw[others].mean(axis=0) if others.any() else None


def _div(num: np.ndarray, sq: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sq > metrics.ZERO_NORM**2, num / np.sqrt(np.maximum(sq, 0)), np.nan)


@dataclass(frozen=True)
class Band:
    """Coherence matching: foil sets within ``width_sd`` SDs of the list's coherence, widened
    until ``min_concepts`` concepts are in the band (foils.coherence_band)."""

    width_sd: float
    min_concepts: int


def matched_draws(
    banks: Sequence[FoilBank],
    lists: Sequence[np.ndarray],
    n_draws: int,
    rng: np.random.Generator,
    band: Band,
) -> Draws:
    """Size- and coherence-matched foil sets for one synonym list. ``banks`` / ``lists``: the
    list's vectors in each text space the test uses (the coherence is their mean over spaces);
    all banks hold the same words and clusters, so one draw means the same words in each."""
    d = concept_draws(banks[0], lists[0].shape[0], n_draws, rng)
    coh = np.mean([set_coherence(b, d) for b in banks], axis=0)
    obs = float(np.mean([list_coherence(b, v) for b, v in zip(banks, lists, strict=True)]))
    return d.take(coherence_band(coh, d.concept, obs, band.width_sd, band.min_concepts))


def foil_anchor_null(
    proto: np.ndarray,
    synonym_sets: Sequence[np.ndarray],
    bank: FoilBank,
    n_draws: int,
    rng: np.random.Generator,
    band: Band,
    centred: bool = True,
) -> list[ConceptNull | None]:
    """Per effect e, null values of cos(prototype_e, anchor_e): a matched foil set is put in
    e's place among the raw anchors and centred as the real one (None where undefined).

    Computed from projections and the bank's within-cluster Gram blocks: a set costs O(S²),
    not O(D)."""
    raw = np.stack([v.mean(axis=0) if v.shape[0] else np.full(proto.shape[1], np.nan)
                    for v in synonym_sets])  # fmt: skip
    out: list[ConceptNull | None] = []
    for e, syn in enumerate(synonym_sets):
        p, o = proto[e], _offset(raw, e, centred, proto.shape[1])
        if syn.shape[0] < 1 or o is None or not np.isfinite(p).all():
            out.append(None)
            continue
        d = matched_draws([bank], [syn], n_draws, rng, band)
        vp, vo = bank.vectors @ p, bank.vectors @ o
        num = (vp[d.idx].mean(axis=1) - float(p @ o)) / np.linalg.norm(p)
        sq = set_sq_norm(bank, d) - 2.0 * vo[d.idx].mean(axis=1) + float(o @ o)
        out.append(ConceptNull(_div(num, sq), d.concept))
    return out


def _set_means(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(n, D) mean vector of each set, as one sparse product (no (n, S, D) gather)."""
    n, s = idx.shape
    w = sparse.csr_matrix(
        (np.full(n * s, 1.0 / s), idx.ravel(), np.arange(0, n * s + 1, s)),
        shape=(n, vectors.shape[0]),
    )
    return np.asarray(w @ vectors)


def _centred_units(bank: FoilBank, d: Draws, offset: np.ndarray) -> np.ndarray:
    """Unit (set mean − offset) per set: the direction of the centred foil anchor."""
    x = _set_means(bank.vectors, d.idx) - offset
    n = np.linalg.norm(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > metrics.ZERO_NORM, x / n, np.nan).astype(np.float32)


def foil_sim3_null(
    bridge_sets: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    banks: Mapping[str, tuple[FoilBank, FoilBank]],
    n_draws: int,
    rng: np.random.Generator,
    band: Band,
    centred: bool = True,
) -> dict[str, dict[tuple[int, int], ConceptNull]]:
    """Per bridge, per cell (i, j): null values of sim3 with matched foil sets in image effect
    i's and audio effect j's places (each side centred with its foil among its real anchors).

    Each image set is paired with a random audio set of ANOTHER concept; the same sets and
    pairs serve every bridge (the bridges' nulls are matched draw by draw), and the coherence
    that matches them is the mean over the bridges. The unit of the p-value is the image-side
    concept."""
    names = list(bridge_sets)
    for b in names:
        if b not in banks:
            raise ValueError(f"no foil banks for the {b} bridge")
    sides = []
    for side in (0, 1):
        sets = [bridge_sets[b][side] for b in names]
        draws = []
        for e in range(len(sets[0])):
            lists = [s[e] for s in sets]
            ok = lists[0].shape[0] >= 1
            draws.append(matched_draws([banks[b][side] for b in names], lists, n_draws, rng, band)
                         if ok else None)  # fmt: skip
        sides.append(draws)
    pairs = {}
    for i, di in enumerate(sides[0]):
        for j, dj in enumerate(sides[1]):
            if di is None or dj is None:
                continue
            pick = rng.integers(dj.concept.size, size=di.concept.size)
            keep = dj.concept[pick] != di.concept  # two different concepts
            pairs[(i, j)] = (np.flatnonzero(keep), pick[keep])
    out: dict[str, dict[tuple[int, int], ConceptNull]] = {}
    for b in names:
        raw = [np.stack([v.mean(axis=0) if v.shape[0] else np.full(v.shape[1], np.nan)
                         for v in bridge_sets[b][side]]) for side in (0, 1)]  # fmt: skip
        dim = raw[0].shape[1]
        units = [
            [
                None
                if d is None or (o := _offset(raw[side], e, centred, dim)) is None
                else _centred_units(banks[b][side], d, o)
                for e, d in enumerate(sides[side])
            ]
            for side in (0, 1)
        ]
        out[b] = {}
        for (i, j), (ri, rj) in pairs.items():
            ui, uj = units[0][i], units[1][j]
            if ui is None or uj is None:
                continue
            vals = np.einsum("nd,nd->n", ui[ri], uj[rj]).astype(np.float64)
            out[b][(i, j)] = ConceptNull(vals, sides[0][i].concept[ri])
    return out


def pvalues(
    observed: np.ndarray, nulls: Sequence[ConceptNull | None] | Mapping
) -> tuple[np.ndarray, np.ndarray]:
    """(p, K) arrays of the observed statistic's shape from per-entry nulls (a list over
    effects, or a dict over cells); NaN / 0 where a null is missing."""
    obs = np.asarray(observed, dtype=np.float64)
    p, k = np.full(obs.shape, np.nan), np.zeros(obs.shape, dtype=np.int64)
    items = nulls.items() if isinstance(nulls, Mapping) else enumerate(nulls)
    for key, null in items:
        if null is not None:
            p[key], k[key] = null.pvalue(float(obs[key]))
    return p, k
