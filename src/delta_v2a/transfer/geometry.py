"""Delta transfer: which study effects explain an image delta, how strong each one is, and which
audio effect at which level follows from it (docs/methods.md §7).

Pure functions on arrays and plain values; the use case (:mod:`delta_v2a.transfer.usecase`) and the
job (:mod:`delta_v2a.transfer.payload`, reading the study's files) do the I/O.

Decisions:

* **Decomposition.** The image delta ``d`` is fitted by non-negative least squares onto the
  study's *unit* image-effect prototypes ``p̂_i`` (rows of ``P``): ``d ≈ Σ s_i p̂_i``, ``s ≥ 0``.
  ``s_i`` is effect i's strength in embedding units (the length of its component). Non-negative,
  because an effect undone is not the effect (an un-blurred photo is not "negative blur").
* **Shares.** ``share_i = s_i ⟨p̂_i, d⟩ / ‖d‖²``. At the NNLS optimum the residual is orthogonal
  to every active prototype, so the shares sum exactly to the explained share
  ``R² = 1 − ‖r‖²/‖d‖²`` (= the squared cosine of the explained part with ``d``). With
  correlated prototypes one share can be negative; it is reported as it is.
* **Refusal.** A delta of (numerically) zero length is "no edit found"; a delta whose explained
  share is below the model's threshold "matches no known effect". The threshold is calibrated on
  the study's own image deltas (a low quantile of their explained shares: the share that most
  known edits reach), and never below the 95th percentile of what a random direction reaches.
* **Strength → level.** ``m_i(θ)`` is the image strength curve: the mean image delta norm of
  effect i at θ, linear between the points (θ = 0, 0) and one point per configured intensity
  (Phase 0's mean ‖Δe‖). Its inverse is monotone: a curve that dips is replaced by its running
  maximum, and a strength beyond the strongest level clips to θ = 1 (reported as clipped).
* **Chain order.** Several paired audio effects are rendered in the order of the audio effects
  in the configuration (``lpf, highshelf, saturation, reverb`` by default), which is also the
  order of the decoder's parameter space (:class:`delta_v2a.phase3.paramspace.ParamSpace`): filters
  and shelves before the non-linearity, reverb last, as a mixing engineer would chain them.
  Two image effects paired with one audio effect use the stronger of their two levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

__all__ = [
    "PAYLOAD_VERSION",
    "ZERO_DELTA",
    "Decomposition",
    "StrengthCurve",
    "build_payload",
    "chain_order",
    "decompose",
    "explained_shares",
    "kappa",
    "null_share",
    "recognise",
    "refusal",
    "solve_monotone",
    "unit_prototypes",
]

PAYLOAD_VERSION = 1
ZERO_DELTA = 1e-7  # ‖d‖ below this (unit-norm embeddings: 1e-7 of their length) is no edit


# --------------------------------------------------------------------------- decomposition


def unit_prototypes(pooled: np.ndarray, effects: Sequence[str]) -> np.ndarray:
    """Rows scaled to length 1; a prototype without a direction (zero or NaN) is an error."""
    p = np.asarray(pooled, dtype=np.float64)
    norms = np.linalg.norm(p, axis=1)
    bad = [e for e, n in zip(effects, norms, strict=True) if not np.isfinite(n) or n <= 1e-12]
    if bad:
        raise ValueError(f"image prototypes of {bad} have no direction (no usable deltas)")
    return p / norms[:, None]


@dataclass(frozen=True)
class Decomposition:
    """``d ≈ Σ strengths_i · p̂_i`` (non-negative), with how much of ``d`` that explains."""

    effects: tuple[str, ...]
    strengths: np.ndarray  # (E,) s_i >= 0, embedding units
    shares: np.ndarray  # (E,) s_i <p̂_i, d> / |d|^2, summing to `explained`
    explained: float  # 1 - |r|^2 / |d|^2 (0 for a zero delta)
    residual: float  # |r|
    cosine: float  # cos(Σ s_i p̂_i, d); NaN when nothing is explained
    delta_norm: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_norm": self.delta_norm,
            "explained_share": self.explained,
            "residual_norm": self.residual,
            "cosine_explained": None if not np.isfinite(self.cosine) else self.cosine,
            "effects": {
                e: {"strength": float(s), "share": float(h)}
                for e, s, h in zip(self.effects, self.strengths, self.shares, strict=True)
            },
        }


def decompose(delta: np.ndarray, units: np.ndarray, effects: Sequence[str]) -> Decomposition:
    """NNLS of ``delta`` (D,) onto the unit prototypes ``units`` (E, D)."""
    d = np.asarray(delta, dtype=np.float64).reshape(-1)
    p = np.asarray(units, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != d.size:
        raise ValueError(f"delta has {d.size} dimensions, the prototypes {p.shape}")
    if not np.isfinite(d).all():
        raise ValueError("the image delta has NaN or inf values")
    norm = float(np.linalg.norm(d))
    if norm <= ZERO_DELTA:
        zeros = np.zeros(len(effects))
        return Decomposition(tuple(effects), zeros, zeros, 0.0, norm, float("nan"), norm)
    s, _ = nnls(p.T, d)
    fit = p.T @ s
    r = d - fit
    shares = s * (p @ d) / norm**2
    fit_norm = float(np.linalg.norm(fit))
    cos = float(fit @ d / (fit_norm * norm)) if fit_norm > 0 else float("nan")
    explained = 1.0 - float(r @ r) / norm**2
    return Decomposition(tuple(effects), s, shares, explained, float(np.linalg.norm(r)), cos, norm)


def explained_shares(deltas: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Explained share of each row of ``deltas`` (zero rows: 0): the calibration data."""
    names = [str(i) for i in range(len(units))]
    return np.array([decompose(d, units, names).explained for d in np.asarray(deltas)])


def null_share(units: np.ndarray, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Explained shares of random isotropic directions: what chance alone reaches."""
    rng = np.random.default_rng(seed)
    return explained_shares(rng.standard_normal((n, np.asarray(units).shape[1])), units)


def refusal(dec: Decomposition, threshold: float) -> str | None:
    """Why this delta is no transferable edit, or None."""
    if dec.delta_norm <= ZERO_DELTA:
        return f"no edit found: the two photos give the same embedding (|Δ| = {dec.delta_norm:.2g})"
    if dec.explained < threshold:
        return (
            f"the edit matches no known effect: the study's effects explain "
            f"{100 * dec.explained:.1f} % of the image delta, below the model's threshold "
            f"{100 * threshold:.1f} %"
        )
    return None


def recognise(dec: Decomposition, min_component: float) -> list[str]:
    """Effects whose share is at least ``min_component`` of the explained part, strongest first."""
    if dec.explained <= 0:
        return []
    keep = [
        (float(h), e)
        for e, s, h in zip(dec.effects, dec.strengths, dec.shares, strict=True)
        if s > 0 and h >= min_component * dec.explained
    ]
    return [e for _, e in sorted(keep, reverse=True)]


# --------------------------------------------------------------------------- strength curves


def solve_monotone(x: Sequence[float], y: Sequence[float], target: float) -> tuple[float, bool]:
    """``x`` where the (made monotone) curve ``y(x)`` reaches ``target``; (x, reachable).

    The curve is replaced by its running maximum, so dips never make the inverse ambiguous;
    on a flat stretch the smallest ``x`` is taken. Targets beyond the curve clip to its ends.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.maximum.accumulate(np.asarray(y, dtype=np.float64))
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 2 or np.any(np.diff(xs) <= 0):
        raise ValueError("a strength curve needs >= 2 points with increasing x")
    t = float(target)
    if t <= ys[0]:
        return float(xs[0]), t >= ys[0]
    if t > ys[-1]:
        return float(xs[-1]), False
    k = int(np.searchsorted(ys, t, side="left"))  # first point with ys[k] >= t, k >= 1
    lo, hi = ys[k - 1], ys[k]
    frac = 0.0 if hi == lo else (t - lo) / (hi - lo)
    return float(xs[k - 1] + frac * (xs[k] - xs[k - 1])), True


@dataclass(frozen=True)
class StrengthCurve:
    """``m_i(θ)``: image delta norm of one effect against its level θ ∈ [0, 1]."""

    theta: tuple[float, ...]
    norm: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.theta[0] != 0.0 or self.norm[0] != 0.0 or self.theta[-1] != 1.0:
            raise ValueError("a strength curve starts at (0, 0) and ends at θ = 1")
        solve_monotone(self.theta, self.norm, 0.0)  # validates the shape

    @classmethod
    def from_levels(
        cls, level_norms: Sequence[float], thetas: Sequence[float] | None = None
    ) -> StrengthCurve:
        """From the mean norm at each configured intensity (weakest first). By default the k-th
        of K intensities sits at θ = k/K (equal steps, the strongest at 1)."""
        k = len(level_norms)
        th = [(i + 1) / k for i in range(k)] if thetas is None else list(thetas)
        return cls((0.0, *map(float, th)), (0.0, *map(float, level_norms)))

    def at(self, theta: float) -> float:
        return float(np.interp(np.clip(theta, 0.0, 1.0), self.theta, self.norm))

    def level(self, strength: float) -> tuple[float, bool]:
        """θ whose curve value is ``strength`` (monotone inverse); (θ, within the curve)."""
        return solve_monotone(self.theta, self.norm, strength)

    def to_dict(self) -> dict[str, list[float]]:
        return {"theta": list(self.theta), "norm": list(self.norm)}


def kappa(image_top: float, audio_top: float) -> float:
    """κ_ij: maps the strongest image level's mean norm onto the audio effect's median norm at
    its strongest level, so image strength × κ is an audio delta norm."""
    if not image_top > 0 or not np.isfinite(audio_top):
        raise ValueError(f"κ needs a positive image norm and a finite audio norm ({image_top})")
    return float(audio_top / image_top)


def chain_order(active: Sequence[str], order: Sequence[str]) -> list[str]:
    """The active audio effects in the fixed chain order (the configured order)."""
    unknown = [e for e in active if e not in order]
    if unknown:
        raise ValueError(f"audio effects {unknown} are not in the chain {list(order)}")
    return [e for e in order if e in set(active)]


# --------------------------------------------------------------------------- payload


def build_payload(
    *,
    effects: Sequence[str],
    units: np.ndarray,
    curves: Mapping[str, StrengthCurve],
    pairs: Sequence[Mapping[str, Any]],
    image_model: Mapping[str, Any],
    calibration: np.ndarray,
    null: np.ndarray,
    quantile: float = 0.05,
    min_component: float = 0.1,
    alpha: float | None = None,
    chain: Sequence[str] = (),
    u_grid: int = 11,
) -> dict[str, Any]:
    """The ``transfer`` entry of ``decoder_model.pt``: plain lists and floats only.

    ``calibration``: explained shares of the study's own image deltas; ``null``: the shares of
    random directions. The threshold is the larger of the known edits' ``quantile`` (that share
    of known edits would be refused) and the null's 95th percentile (at most 5 % of random
    directions pass).
    """
    cal = np.asarray(calibration, dtype=np.float64)
    cal = cal[np.isfinite(cal)]
    if cal.size == 0:
        raise ValueError("no image delta to calibrate the explained-share threshold on")
    nul = np.asarray(null, dtype=np.float64)
    known = float(np.quantile(cal, quantile))
    null_q95 = float(np.quantile(nul, 0.95)) if nul.size else 0.0
    threshold = max(known, null_q95)
    return {
        "version": PAYLOAD_VERSION,
        "image_model": dict(image_model),
        "effects": list(effects),
        "prototypes": np.asarray(units, dtype=np.float64).tolist(),
        "curves": {e: curves[e].to_dict() for e in effects},
        "pairs": [dict(p) for p in pairs],
        "alpha": None if alpha is None else float(alpha),
        "chain_order": list(chain),
        "u_grid": int(u_grid),
        "thresholds": {
            "explained_share_min": threshold,
            "component_share_min": float(min_component),
            "zero_delta": ZERO_DELTA,
            "calibration": {
                "quantile": float(quantile),
                "n_deltas": int(cal.size),
                "known_edit_share_quantile": known,
                "median_known_edit_share": float(np.median(cal)),
                "null_share_mean": float(nul.mean()) if nul.size else None,
                "null_share_q95": null_q95 if nul.size else None,
                "set_by": "known edits" if known >= null_q95 else "null",
            },
        },
    }
