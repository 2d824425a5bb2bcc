"""The transfer payload as typed values: what ``decoder_model.pt``'s ``transfer`` entry holds
(docs/methods.md §7).

Built by :func:`delta_v2a.transfer.payload.build_transfer_payload`, written as
:meth:`TransferPayload.to_dict` (plain lists and floats, so the model file stays
``weights_only``-loadable, the same dict :func:`geometry.build_payload` makes) and read back once
by :func:`delta_v2a.phase3.artifact.load_decoder` with :meth:`TransferPayload.from_dict`, which
refuses another version or a missing key with a ValueError naming it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from delta_v2a.transfer.geometry import PAYLOAD_VERSION, StrengthCurve

__all__ = ["Calibration", "Thresholds", "TransferPair", "TransferPayload"]


def _need(doc: Any, keys: tuple[str, ...], where: str) -> Mapping[str, Any]:
    """``doc`` as a mapping holding every key of ``keys`` (else a ValueError naming them)."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"transfer payload: {where} is a {type(doc).__name__}, not a mapping")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ValueError(f"transfer payload: {where} lacks {', '.join(missing)}")
    return doc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Calibration:
    """How the explained-share threshold was set: the known edits' quantile against the
    random directions' 95th percentile (``set_by`` names the larger)."""

    quantile: float
    n_deltas: int
    known_edit_share_quantile: float
    median_known_edit_share: float
    null_share_mean: float | None
    null_share_q95: float | None
    set_by: str

    KEYS = (
        "quantile",
        "n_deltas",
        "known_edit_share_quantile",
        "median_known_edit_share",
        "null_share_mean",
        "null_share_q95",
        "set_by",
    )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_dict(cls, doc: Any) -> Calibration:
        d = _need(doc, cls.KEYS, "thresholds.calibration")
        return cls(
            quantile=float(d["quantile"]),
            n_deltas=int(d["n_deltas"]),
            known_edit_share_quantile=float(d["known_edit_share_quantile"]),
            median_known_edit_share=float(d["median_known_edit_share"]),
            null_share_mean=_opt_float(d["null_share_mean"]),
            null_share_q95=_opt_float(d["null_share_q95"]),
            set_by=str(d["set_by"]),
        )


@dataclass(frozen=True)
class Thresholds:
    """What recognition accepts: the explained share of the whole delta, each component's
    share, and the norm under which a delta is no edit."""

    explained_share_min: float
    component_share_min: float
    zero_delta: float
    calibration: Calibration

    def to_dict(self) -> dict[str, Any]:
        return {
            "explained_share_min": self.explained_share_min,
            "component_share_min": self.component_share_min,
            "zero_delta": self.zero_delta,
            "calibration": self.calibration.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Thresholds:
        keys = ("explained_share_min", "component_share_min", "zero_delta", "calibration")
        d = _need(doc, keys, "thresholds")
        return cls(
            explained_share_min=float(d["explained_share_min"]),
            component_share_min=float(d["component_share_min"]),
            zero_delta=float(d["zero_delta"]),
            calibration=Calibration.from_dict(d["calibration"]),
        )


@dataclass(frozen=True)
class TransferPair:
    """One (image effect, audio effect) pair: Phase 1's significance, copied, and κ (image
    strength × κ is an audio delta norm)."""

    image_effect: str
    audio_effect: str
    score: float
    p_value: float | None
    p_adjusted: float | None
    alpha: float | None
    significant: bool
    audio_norm_strongest: float
    kappa: float

    KEYS = (
        "image_effect",
        "audio_effect",
        "score",
        "p_value",
        "p_adjusted",
        "alpha",
        "significant",
        "audio_norm_strongest",
        "kappa",
    )

    def to_dict(self) -> dict[str, Any]:
        """The plain dict (the model file's entry, and what a transfer report shows)."""
        return {k: getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_dict(cls, doc: Any, where: str = "pair") -> TransferPair:
        d = _need(doc, cls.KEYS, where)
        return cls(
            image_effect=str(d["image_effect"]),
            audio_effect=str(d["audio_effect"]),
            score=float(d["score"]),
            p_value=_opt_float(d["p_value"]),
            p_adjusted=_opt_float(d["p_adjusted"]),
            alpha=_opt_float(d["alpha"]),
            significant=bool(d["significant"]),
            audio_norm_strongest=float(d["audio_norm_strongest"]),
            kappa=float(d["kappa"]),
        )


@dataclass(frozen=True)
class TransferPayload:
    """What ``delta-v2a transfer`` reads from the model file: the image model to embed photos
    with, one unit prototype and strength curve per image effect, the pairs, the audio chain's
    order, the exact route's grid size and the recognition thresholds."""

    image_model: dict[str, Any]  # name_or_path, revision, dtype, normalize, ... (resolve_model)
    effects: tuple[str, ...]
    prototypes: tuple[tuple[float, ...], ...]  # (E, D) unit rows, in ``effects`` order
    curves: dict[str, StrengthCurve]
    pairs: tuple[TransferPair, ...]
    alpha: float | None
    chain_order: tuple[str, ...]
    u_grid: int
    thresholds: Thresholds
    version: int = PAYLOAD_VERSION

    KEYS = (
        "version",
        "image_model",
        "effects",
        "prototypes",
        "curves",
        "pairs",
        "alpha",
        "chain_order",
        "u_grid",
        "thresholds",
    )

    @property
    def units(self) -> np.ndarray:
        """The prototypes as an (E, D) float64 array."""
        return np.asarray(self.prototypes, dtype=np.float64)

    @property
    def dim(self) -> int:
        """The image embedding's dimension (0 without prototypes)."""
        return len(self.prototypes[0]) if self.prototypes else 0

    def pair_of(self, image_effect: str) -> TransferPair | None:
        """The pair whose image side is ``image_effect`` (the last one if several)."""
        found = None
        for p in self.pairs:
            if p.image_effect == image_effect:
                found = p
        return found

    def to_dict(self) -> dict[str, Any]:
        """The model file's plain ``transfer`` entry (as :func:`geometry.build_payload`)."""
        return {
            "version": self.version,
            "image_model": dict(self.image_model),
            "effects": list(self.effects),
            "prototypes": [list(row) for row in self.prototypes],
            "curves": {e: c.to_dict() for e, c in self.curves.items()},
            "pairs": [p.to_dict() for p in self.pairs],
            "alpha": self.alpha,
            "chain_order": list(self.chain_order),
            "u_grid": self.u_grid,
            "thresholds": self.thresholds.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> TransferPayload:
        """Read a ``transfer`` entry; another version or a missing key is a ValueError."""
        if isinstance(doc, Mapping) and doc.get("version") != PAYLOAD_VERSION:
            raise ValueError(
                f"transfer payload version {doc.get('version')!r}; this delta-v2a reads "
                f"version {PAYLOAD_VERSION}: rerun phase3 to write it again"
            )
        d = _need(doc, cls.KEYS, "the entry")
        effects = tuple(map(str, d["effects"]))
        curves = _need(d["curves"], effects, "curves")
        try:
            return cls(
                version=int(d["version"]),
                image_model=dict(_need(d["image_model"], ("name_or_path",), "image_model")),
                effects=effects,
                prototypes=tuple(tuple(map(float, row)) for row in d["prototypes"]),
                curves={
                    e: StrengthCurve(tuple(curves[e]["theta"]), tuple(curves[e]["norm"]))
                    for e in effects
                },
                pairs=tuple(
                    TransferPair.from_dict(p, f"pairs[{k}]") for k, p in enumerate(d["pairs"])
                ),
                alpha=_opt_float(d["alpha"]),
                chain_order=tuple(map(str, d["chain_order"])),
                u_grid=int(d["u_grid"]),
                thresholds=Thresholds.from_dict(d["thresholds"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"transfer payload: malformed entry ({type(err).__name__}: {err})"
            ) from err
