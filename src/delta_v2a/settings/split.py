"""Settings of the file split that Phases 1 and 3 read (``phase3.split``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SplitSettings:
    fractions: dict[str, float]  # val and test shares of audio files; the rest trains
    seed: int


def split_settings(config: Mapping[str, Any]) -> SplitSettings:
    return SplitSettings(fractions=dict(config["phase3"]["split"]), seed=config["seed"])
