"""Phase 0's typed results for tests that need them (delta_v2a.artifacts.phase0): rows with
plausible defaults, each overridable, so a test names only the fields it is about."""

from __future__ import annotations

from typing import Any

from delta_v2a.artifacts.phase0 import (
    AcrossIntensityRow,
    ConsistencyRow,
    ConsistencySummary,
    CrossCategoryRow,
    CrossCategoryVariance,
    LinearityResults,
    SensitivityResults,
    SensitivityRow,
)

VARIANT = {"modality": "image", "effect_type": "blur", "intensity": "low"}


def sens_row(**kw: Any) -> SensitivityRow:
    stats = {"n": 4, "n_zero_norm": 0, "n_nonfinite": 0, "mean": 0.1, "std": 0.01}
    stats |= {"min": 0.05, "max": 0.2, "sensitive": True, "reason": None}
    return SensitivityRow(**(VARIANT | stats | kw))


def within_row(**kw: Any) -> ConsistencyRow:
    stats = {"category": "c", "n": 4, "n_zero_norm": 0, "n_nonfinite": 0}
    stats |= {"mean_cosine": 0.9, "cv": 0.1, "consistent": True, "reason": None}
    return ConsistencyRow(**(VARIANT | stats | kw))


def summary_row(**kw: Any) -> ConsistencySummary:
    stats = {"n_categories": 2, "n_consistent": 2, "n_undetermined": 0, "consistent": True}
    return ConsistencySummary(**(VARIANT | stats | kw))


def across_row(**kw: Any) -> AcrossIntensityRow:
    stats = {"intensities": ["low", "high"], "mean_norm": [0.1, 0.2], "norm_increasing": True}
    stats |= {"cosine_lowest_highest_prototype": 0.8}
    return AcrossIntensityRow(**({"modality": "image", "effect_type": "blur"} | stats | kw))


def cross_row(**kw: Any) -> CrossCategoryRow:
    pairs = [{"a": "a", "b": "b", "cosine": 0.9}, {"a": "a", "b": "c", "cosine": 0.8}]
    stats = {"categories": ["a", "b", "c"], "categories_skipped": {}, "pairs": pairs}
    stats |= {"mean_cosine": 0.85, "variance": 0.01, "invariant": True, "reason": None}
    return CrossCategoryRow(**(VARIANT | stats | kw))


THRESHOLDS = {"min_cosine": 0.3, "max_cv": 1.0, "max_variance": 0.05}


def sensitivity(rows=(), meta=None, min_distance=0.01) -> SensitivityResults:
    return SensitivityResults(meta=meta or {}, min_distance=min_distance, results=list(rows))


def linearity(summary=(), within=(), across=(), meta=None) -> LinearityResults:
    return LinearityResults(
        meta=meta or {},
        thresholds=dict(THRESHOLDS),
        within_category=list(within),
        summary=list(summary),
        across_intensities=list(across),
    )


def cross(rows=(), meta=None) -> CrossCategoryVariance:
    return CrossCategoryVariance(meta=meta or {}, thresholds=dict(THRESHOLDS), results=list(rows))
