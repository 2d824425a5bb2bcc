"""Phase 0's results: ``sensitivity_results.json``, ``linearity_results.json`` and
``cross_category_variance.json`` (docs/methods.md §4).

Written by the ``phase0_sensitivity`` and ``phase0_linearity`` jobs; read by the summary, the
tables, Phase 3's strength job (the mean image ‖Δe‖ per level) and the transfer payload. Each
row is a frozen dataclass whose fields are the row's keys in the file's order, so the file is the
seed's, key for key, with ``artifact`` and ``format_version`` added at the top. ``meta`` (the
models' provenance, health, degenerate deltas, the run's note) stays a dict: it is provenance
copied from the stores, and readers only look up ``note``, ``not_science`` and
``degenerate_deltas`` in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact


class _Row:
    """A row built from (and written as) a dict with exactly its fields, in field order."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**data)  # type: ignore[call-arg]  # unknown or missing keys: TypeError

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @property
    def variant(self) -> str:
        """``modality effect/intensity``, as log lines and verdicts name a variant."""
        return f"{self.modality} {self.effect_type}/{self.intensity}"  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class SensitivityRow(_Row):
    """One variant's statistics of ‖Δe‖ (population std; None where no delta is finite) and
    the gate's verdict (``sensitive``: mean > min_distance; None with a ``reason``)."""

    modality: str
    effect_type: str
    intensity: str
    n: int
    n_zero_norm: int
    n_nonfinite: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    sensitive: bool | None
    reason: str | None


@dataclasses.dataclass(frozen=True)
class ConsistencyRow(_Row):
    """One variant within one category: mean pairwise cosine of the delta directions, CV of
    their norms and the within-category gate's verdict (None with a ``reason``)."""

    modality: str
    effect_type: str
    intensity: str
    category: str
    n: int
    n_zero_norm: int
    n_nonfinite: int
    mean_cosine: float | None
    cv: float | None
    consistent: bool | None
    reason: str | None


@dataclasses.dataclass(frozen=True)
class ConsistencySummary(_Row):
    """One variant: how many categories passed the within-category gate (``consistent``: all
    decided ones did; None where none was decided)."""

    modality: str
    effect_type: str
    intensity: str
    n_categories: int
    n_consistent: int
    n_undetermined: int
    consistent: bool | None


@dataclasses.dataclass(frozen=True)
class AcrossIntensityRow(_Row):
    """One effect across its intensities (reported, not a gate): mean norms per level, whether
    they grow, and the cosine of the lowest and highest level's prototypes."""

    modality: str
    effect_type: str
    intensities: list[str]
    mean_norm: list[float | None]
    norm_increasing: bool | None
    cosine_lowest_highest_prototype: float | None


@dataclasses.dataclass(frozen=True)
class CrossCategoryRow(_Row):
    """One variant across categories: the categories used and skipped, the prototypes'
    pairwise cosines (``pairs``: rows ``a``, ``b``, ``cosine``), their mean and variance and the
    invariance gate's verdict (None with a ``reason``)."""

    modality: str
    effect_type: str
    intensity: str
    categories: list[str]
    categories_skipped: dict[str, str]
    pairs: list[dict[str, Any]]
    mean_cosine: float | None
    variance: float | None
    invariant: bool | None
    reason: str | None


def _rows(cls: type, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [cls.from_json(r) for r in rows]


def _dicts(rows: Sequence[_Row]) -> list[dict[str, Any]]:
    return [r.to_json() for r in rows]


@dataclasses.dataclass(frozen=True)
class SensitivityResults(JsonArtifact):
    """Phase 0-a (``sensitivity_results.json``): one :class:`SensitivityRow` per variant, the
    gate's ``min_distance`` and the models' provenance (``meta``)."""

    KIND: ClassVar[str] = "phase0_sensitivity"
    VERSION: ClassVar[int] = 1

    meta: dict[str, Any]
    min_distance: float
    results: list[SensitivityRow]

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "min_distance": self.min_distance} | {
            "results": _dicts(self.results)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        rows = _rows(SensitivityRow, data["results"])
        return cls(meta=dict(data["meta"]), min_distance=data["min_distance"], results=rows)

    def image_means(self) -> dict[tuple[str, str], float | None]:
        """(effect, intensity) -> the mean image ‖Δe‖ (None where no delta was finite)."""
        return {(r.effect_type, r.intensity): r.mean for r in self.results if r.modality == "image"}


@dataclasses.dataclass(frozen=True)
class LinearityResults(JsonArtifact):
    """Phase 0-b (``linearity_results.json``): the within-category rows, their per-variant
    ``summary``, the across-intensity rows, the gates' ``thresholds`` (min_cosine, max_cv,
    max_variance) and ``meta``."""

    KIND: ClassVar[str] = "phase0_linearity"
    VERSION: ClassVar[int] = 1

    meta: dict[str, Any]
    thresholds: dict[str, float]
    within_category: list[ConsistencyRow]
    summary: list[ConsistencySummary]
    across_intensities: list[AcrossIntensityRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "thresholds": self.thresholds,
            "within_category": _dicts(self.within_category),
            "summary": _dicts(self.summary),
            "across_intensities": _dicts(self.across_intensities),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            meta=dict(data["meta"]),
            thresholds=dict(data["thresholds"]),
            within_category=_rows(ConsistencyRow, data["within_category"]),
            summary=_rows(ConsistencySummary, data["summary"]),
            across_intensities=_rows(AcrossIntensityRow, data["across_intensities"]),
        )


@dataclasses.dataclass(frozen=True)
class CrossCategoryVariance(JsonArtifact):
    """Phase 0-b's invariance gate (``cross_category_variance.json``): one
    :class:`CrossCategoryRow` per variant, the ``thresholds`` and ``meta``."""

    KIND: ClassVar[str] = "phase0_cross_category"
    VERSION: ClassVar[int] = 1

    meta: dict[str, Any]
    thresholds: dict[str, float]
    results: list[CrossCategoryRow]

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "thresholds": self.thresholds} | {
            "results": _dicts(self.results)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        rows = _rows(CrossCategoryRow, data["results"])
        return cls(meta=dict(data["meta"]), thresholds=dict(data["thresholds"]), results=rows)
