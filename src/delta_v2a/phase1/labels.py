"""Phase 1's decision: corrections across the matrix, the intersection-union cell p, the
bridge combination, and the one rule for a significant pair (docs/methods.md §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# --------------------------------------------------------------------------- summary


def best_matches(
    score: np.ndarray, image_effects: Sequence[str], audio_effects: Sequence[str]
) -> list[dict]:
    """For each image effect: its best audio effect, the score, and the margin over the runner-up.

    NaN cells are ignored; ``tie`` is true when the runner-up scores the same (e.g. every cell
    clipped to 0), so the "best" one is then arbitrary.
    """
    rows = []
    for i, name in enumerate(image_effects):
        row = np.asarray(score[i], dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.argsort(-row[finite], kind="stable")]
        rec: dict = {"image_effect": name, "best": None, "score": None}
        rec |= {"runner_up": None, "runner_up_score": None, "margin": None, "tie": None}
        if order.size:
            rec |= {"best": audio_effects[order[0]], "score": float(row[order[0]])}
        if order.size > 1:
            second = float(row[order[1]])
            rec |= {
                "runner_up": audio_effects[order[1]],
                "runner_up_score": second,
                "margin": float(row[order[0]]) - second,
                "tie": bool(row[order[0]] == second),
            }
        rows.append(rec)
    return rows


CORRECTIONS = ("holm", "bh")


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values
    over every finite entry of ``p`` (the whole matrix is one family); NaN stays NaN.

    Kept here rather than statsmodels' ``multipletests`` (same numbers): two lines of
    arithmetic, checked against a hand computation, do not justify a new dependency."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    p = np.asarray(p, dtype=np.float64)
    flat = p.ravel()
    idx = np.flatnonzero(np.isfinite(flat))
    out = np.full(flat.shape, np.nan)
    m = idx.size
    if m == 0:
        return out.reshape(p.shape)
    order = idx[np.argsort(flat[idx], kind="stable")]
    ps = flat[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ps)
    else:
        adj = np.minimum.accumulate((m / np.arange(1, m + 1) * ps)[::-1])[::-1]
    out[order] = np.minimum(adj, 1.0)
    return out.reshape(p.shape)


def intersection_union(*p: np.ndarray) -> np.ndarray:
    """p of "every one of these nulls is false" = the largest p (Berger 1982): a pair needs its
    image effect, its audio effect AND the bridge to be significant; no correction is needed
    among the three because the cell is rejected only when all three are."""
    return np.fmax.reduce(np.broadcast_arrays(*p)) if len(p) > 1 else np.asarray(p[0])


# --------------------------------------------------------------------------- pair choice


def choose_significant(
    score: np.ndarray,
    p_adjusted: np.ndarray,
    alpha: float,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
) -> list[dict]:
    """The ONE rule for "significant pair": per image effect, the best-scoring cell among the
    cells with ``p_adjusted ≤ alpha`` AND ``score > 0`` (docs/methods.md §5).

    A runner-up can be chosen when the row's best score is not significant: the test, not the
    ranking, is the evidence, and the highest score may rest on one noisy factor. ``≤ alpha``
    (not <) everywhere, so a p of exactly alpha counts as in the level-alpha test. Each pair
    records ``rank_in_row`` (1 = best score in the row) and a short ``reason``.
    """
    out = []
    for i, name in enumerate(image_effects):
        row = np.asarray(score[i], dtype=np.float64)
        p_row = np.asarray(p_adjusted[i], dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.argsort(-row[finite], kind="stable")]
        ok = [j for j in order if row[j] > 0 and np.isfinite(p_row[j]) and p_row[j] <= alpha]
        if not ok:
            continue
        j = int(ok[0])
        rank = int(np.flatnonzero(order == j)[0]) + 1
        best = int(order[0])
        reason = f"best score in row, p_adjusted {p_row[j]:.3g} <= alpha {alpha:g}"
        if rank > 1:
            reason = (
                f"rank {rank} in row: higher-scoring {audio_effects[best]} "
                f"(score {row[best]:.3g}) has p_adjusted {p_row[best]:.3g} > alpha {alpha:g}; "
                f"this cell's p_adjusted {p_row[j]:.3g} <= alpha"
            )
        out.append(
            {
                "image_effect": name,
                "audio_effect": audio_effects[j],
                "score": float(row[j]),
                "p_adjusted": float(p_row[j]),
                "rank_in_row": rank,
                "reason": reason,
            }
        )
    return out


def bridge_value(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """sim3 of the configured bridge; for ``both`` the smaller of the two cosines.

    Why the minimum: the score is an AND of agreements, and ``both`` claims that BOTH text
    towers put the two lists close; the minimum is positive only when both cosines are. It is
    a plain cosine (no seed, no null inside), unlike the mean of z-scores it replaces."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmin(per_bridge["audio"], per_bridge["image"])


def bridge_pvalue(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """p of sim3 for the configured bridge; for ``both`` the larger of the two bridges' p
    (intersection-union: both must reject). Each is a rank among the SAME foil draws, so the
    combination moves with the seed only as much as one Monte-Carlo p does."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmax(per_bridge["audio"], per_bridge["image"])
