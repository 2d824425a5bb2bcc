"""Settings of Phase 1 (discovery): text towers, templates, synonyms and the statistics'
choices (:class:`delta_v2a.phase1.discovery.Options`, the science's own type)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from delta_v2a.config import MODALITIES, effect_names
from delta_v2a.phase1.discovery import Options
from delta_v2a.settings.models import ModelSpec, model_spec


@dataclass(frozen=True)
class Phase1Settings:
    models: dict[str, ModelSpec]  # text towers only: a media batch size does not rerun it
    templates: dict[str, dict[str, str]]
    synonyms: dict[str, dict[str, tuple[str, ...]]]
    options: Options  # the statistics' choices: phase1.Options, one type
    allow_unhealthy: bool
    text_batch_size: int
    stability_seeds: int  # the pair choice rerun over this many seeds (discovery_labels.json)


#: Prompts per text forward pass: text is cheap and short, so one size serves every device.
TEXT_BATCH_SIZE = 64


def phase1_settings(config: Mapping[str, Any]) -> Phase1Settings:
    p1 = config["phase1"]
    return Phase1Settings(
        models={m: model_spec(config, m) for m in MODALITIES},
        templates={m: dict(p1["templates"][m]) for m in MODALITIES},
        synonyms={
            m: {e: tuple(p1["synonyms"][m][e]) for e in effect_names(config, m)} for m in MODALITIES
        },
        options=Options.from_config(p1),
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
        text_batch_size=TEXT_BATCH_SIZE,
        stability_seeds=p1["stability_seeds"],
    )
