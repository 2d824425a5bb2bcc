"""Settings of the transfer examples (the report's edited photos and their audio)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from delta_v2a.config import effect_names, effect_params


@dataclass(frozen=True)
class ExamplesSettings:
    edit_levels: dict[str, dict[str, dict[str, float]]]  # image effect -> intensity -> params
    n_examples: int
    device: str


#: Transfer examples in the report: two held-out songs keep the page light.
N_TRANSFER_EXAMPLES = 2


def examples_settings(config: Mapping[str, Any]) -> ExamplesSettings:
    return ExamplesSettings(
        edit_levels={
            e: {i: effect_params(config, "image", e, i) for i in config["intensities"]}
            for e in effect_names(config, "image")
        },
        n_examples=N_TRANSFER_EXAMPLES,
        device=config["models"]["device"],
    )
