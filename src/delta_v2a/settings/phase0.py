"""Settings of Phase 0's gates: sensitivity and linearity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SensitivitySettings:
    min_distance: float
    allow_unhealthy: bool


@dataclass(frozen=True)
class LinearitySettings:
    min_cosine: float
    max_cv: float
    max_variance: float
    allow_unhealthy: bool


def sensitivity_settings(config: Mapping[str, Any]) -> SensitivitySettings:
    return SensitivitySettings(
        min_distance=config["sensitivity"]["min_distance"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    )


def linearity_settings(config: Mapping[str, Any]) -> LinearitySettings:
    lin = config["linearity"]
    return LinearitySettings(
        min_cosine=lin["min_cosine"],
        max_cv=lin["max_cv"],
        max_variance=lin["max_variance"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    )
