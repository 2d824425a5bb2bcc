"""The registry: every effect by modality, looked up by name, run with its fixed defaults
merged in, and each config's intensity levels checked before any job runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from delta_v2a.effects.audio import AUDIO_EFFECTS
from delta_v2a.effects.base import NOMINAL_SR, EffectSpec, FloatArray, ParamSpec, finite_number
from delta_v2a.effects.image import IMAGE_EFFECTS

#: Every effect by modality; the levels the workflow uses by default are the schema's
#: (workflow/schemas/config.schema.yaml, ``effects.default``), written only there.
REGISTRY: dict[str, dict[str, EffectSpec]] = {"image": IMAGE_EFFECTS, "audio": AUDIO_EFFECTS}


def effect_spec(modality: str, name: str) -> EffectSpec:
    """Look an effect up, failing with the list of what exists."""
    if modality not in REGISTRY:
        raise ValueError(f"unknown modality {modality!r}; allowed: {sorted(REGISTRY)}")
    effects = REGISTRY[modality]
    if name not in effects:
        raise ValueError(f"unknown {modality} effect {name!r}; allowed: {sorted(effects)}")
    return effects[name]


def _merge_params(spec: EffectSpec, params: Mapping[str, float]) -> dict[str, float]:
    """Fixed defaults, overridden by ``params``; unknown or missing names fail loudly so a
    config typo cannot silently fall back to a default."""
    allowed = spec.allowed_params
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise ValueError(
            f"{spec.modality} effect {spec.name!r}: unknown parameter(s) {unknown}; "
            f"allowed: {list(allowed)}"
        )
    missing = [p for p in spec.param_names if p not in params]
    if missing:
        raise ValueError(
            f"{spec.modality} effect {spec.name!r}: missing parameter(s) {missing}; "
            f"required: {list(spec.param_names)}"
        )
    return {**spec.fixed_defaults, **params}


def apply_image_effect(name: str, image: np.ndarray, params: Mapping[str, float]) -> FloatArray:
    """Run image effect ``name`` with ``params`` (merged over its fixed defaults)."""
    spec = effect_spec("image", name)
    return spec.fn(image, **_merge_params(spec, params))


def apply_audio_effect(
    name: str, audio: np.ndarray, sr: int, params: Mapping[str, float], preroll: int = 0
) -> FloatArray:
    """Run audio effect ``name`` over all of ``audio`` and return ``out[preroll:]``."""
    spec = effect_spec("audio", name)
    return spec.fn(audio, sr, preroll=preroll, **_merge_params(spec, params))


def check_levels(
    modality: str,
    name: str,
    levels: Mapping[str, Mapping[str, float]],
    order: Sequence[str],
    sr: int | None = None,
) -> None:
    """Validate one effect's intensity levels before any job runs.

    For intensities in ``order`` (weakest first), every varying parameter must be a finite
    number within ``[minimum, maximum]`` and move monotonically away from ``neutral`` in the
    stronger direction: strictly (or non-decreasing for ``strict=False`` params, though the
    first level must still differ from neutral). Fixed parameters may also appear in a level
    and override the defaults. Given ``sr``, any ``cutoff_hz`` must be below ``sr / 2``.
    Raises ValueError naming ``effects.<modality>.<name>.<intensity>[.<param>]``.
    """
    spec = effect_spec(modality, name)
    base = f"effects.{modality}.{name}"
    if len(order) == 0 or len(set(order)) != len(order):
        raise ValueError(f"{base}: intensity order must be non-empty and unique, got {order}")
    missing = [i for i in order if i not in levels]
    extra = [i for i in levels if i not in order]
    if missing or extra:
        raise ValueError(
            f"{base}: intensities must be exactly {list(order)}; missing {missing}, "
            f"unexpected {extra}"
        )
    for intensity in order:
        _check_level_keys(spec, f"{base}.{intensity}", levels[intensity])
    for p in spec.params:
        _check_monotone(spec, p, base, levels, order)
    for intensity in order:
        _check_effect_rule(spec, f"{base}.{intensity}", levels[intensity], sr)


def _check_level_keys(spec: EffectSpec, where: str, level: Mapping[str, float]) -> None:
    """Only known parameters, every varying one present, each a finite number."""
    allowed = spec.allowed_params
    for key in level:
        if key not in allowed:
            raise ValueError(
                f"{where}.{key}: unknown parameter for {spec.modality} effect "
                f"{spec.name!r}; allowed: {list(allowed)}"
            )
    for p in spec.param_names:
        if p not in level:
            raise ValueError(f"{where}.{p}: missing (required: {spec.param_names})")
    for key, value in level.items():
        try:
            finite_number(key, value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{key}: must be a finite number, got {value!r}") from None


def _check_monotone(
    spec: EffectSpec,
    p: ParamSpec,
    base: str,
    levels: Mapping[str, Mapping[str, float]],
    order: Sequence[str],
) -> None:
    """One varying parameter: in range, and stronger at each level than at the one before
    (the first level stronger than neutral)."""
    prev_value, prev_name = p.neutral, "neutral value, where the effect is the identity"
    for i, intensity in enumerate(order):
        key = f"{base}.{intensity}.{p.name}"
        v = float(levels[intensity][p.name])
        if not p.minimum <= v <= p.maximum:
            raise ValueError(f"{key} = {v} is outside the allowed range [{p.minimum}, {p.maximum}]")
        step = v - prev_value if p.increasing else prev_value - v
        strict = p.strict or i == 0
        if step < 0 or (strict and step == 0):
            op = (">" if p.increasing else "<") + ("" if strict else "=")
            raise ValueError(
                f"{key} = {v} must be {op} {prev_value} ({prev_name}): "
                f"{spec.name}.{p.name} gets stronger as it {'in' if p.increasing else 'de'}creases"
            )
        prev_value, prev_name = v, f"value at {intensity!r}"


def _check_effect_rule(
    spec: EffectSpec, where: str, level: Mapping[str, float], sr: int | None
) -> None:
    """The Nyquist limit on any cutoff (given ``sr``), then the effect's own rule, on what
    the effect will be given (the level merged over the fixed defaults)."""
    merged = {**spec.fixed_defaults, **level}
    if sr is not None and spec.modality == "audio":
        if "cutoff_hz" in merged and not float(merged["cutoff_hz"]) < sr / 2:
            raise ValueError(
                f"{where}.cutoff_hz = {float(merged['cutoff_hz'])} must be below "
                f"the Nyquist frequency {sr / 2} Hz (sr={sr})"
            )
    try:
        if spec.modality == "audio":
            spec.check(sr if sr is not None else NOMINAL_SR, **merged)
        else:
            spec.check(**merged)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
