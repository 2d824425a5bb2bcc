"""Reading the validated workflow config: effect parameters, variants, start-up checks.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges; what a schema
cannot express (known effect names, every intensity present, monotone levels, Nyquist) is
checked here, before any job runs, with messages that name the config key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from delta_v2a.effects import AUDIO_EFFECTS, IMAGE_EFFECTS, check_levels

MODALITIES = ("image", "audio")
REGISTRY = {"image": IMAGE_EFFECTS, "audio": AUDIO_EFFECTS}
AUDIO_RATE_FOR_CHECKS = 48_000  # CLAP's rate; the loader resamples every file to it


class ConfigError(ValueError):
    """A config value the schema could not reject; the message names the key."""


def effect_names(config: Mapping[str, Any], modality: str) -> list[str]:
    return list(config["effects"][modality])


def effect_params(
    config: Mapping[str, Any], modality: str, effect: str, intensity: str
) -> dict[str, float]:
    """Physical parameters of one variant: the effect's fixed values, then the level's."""
    spec = config["effects"][modality][effect]
    return {**spec.get("fixed", {}), **spec["levels"][intensity]}


def variants(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every (modality, effect, intensity) job, in config order."""
    return [
        (m, e, i)
        for m in MODALITIES
        for e in effect_names(config, m)
        for i in config["intensities"]
    ]


def check_config(config: Mapping[str, Any]) -> None:
    """Reject what the schema cannot: unknown effects, missing or extra intensities,
    non-monotone or out-of-range levels. Raises ConfigError naming the key."""
    order = list(config["intensities"])
    for modality in MODALITIES:
        known = REGISTRY[modality]
        for name, spec in config["effects"][modality].items():
            key = f"effects.{modality}.{name}"
            if name not in known:
                raise ConfigError(
                    f"{key}: unknown {modality} effect {name!r}; allowed: {sorted(known)}"
                )
            levels = spec["levels"]
            missing = [i for i in order if i not in levels]
            extra = [i for i in levels if i not in order]
            if missing or extra:
                raise ConfigError(
                    f"{key}.levels: intensities must be exactly {order} (config key "
                    f"'intensities'); missing {missing}, unexpected {extra}"
                )
            allowed_fixed = set(known[name].fixed_defaults)
            bad_fixed = sorted(set(spec.get("fixed", {})) - allowed_fixed)
            if bad_fixed:
                raise ConfigError(
                    f"{key}.fixed: unknown parameter(s) {bad_fixed}; allowed: "
                    f"{sorted(allowed_fixed)}"
                )
            merged = {i: {**spec.get("fixed", {}), **levels[i]} for i in order}
            try:
                check_levels(
                    modality,
                    name,
                    merged,
                    order,
                    sr=AUDIO_RATE_FOR_CHECKS if modality == "audio" else None,
                )
            except ValueError as err:
                raise ConfigError(str(err)) from err
