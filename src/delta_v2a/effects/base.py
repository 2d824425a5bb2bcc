"""What every effect module builds on: the representations' input checks, the parameter
helpers, and the spec types an effect registers itself with (docs/methods.md §3)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from delta_v2a.constants import SAMPLE_RATE

FloatArray = NDArray[np.float32]

#: ITU-R BT.601 luma weights, the ones PIL's ``convert("L")`` and torchvision use.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: The workflow's audio rate (CLAP's). Only used for the lpf's ``neutral`` value, which is
#: really ``sr / 2`` and so depends on the rate the effect is applied at.
NOMINAL_SR = SAMPLE_RATE

#: Intensity names, weakest first, as the schema's default levels use them.
DEFAULT_INTENSITIES: tuple[str, ...] = ("low", "mid", "high")


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def finite_number(name: str, value: float) -> float:
    """Parameters must be real, finite numbers: a NaN would silently poison every embedding."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"parameter {name!r} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"parameter {name!r} must be finite, got {out!r}")
    return out


def image_input(image: np.ndarray) -> FloatArray:
    """Reject anything that is not the agreed representation rather than guess a scaling."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.float32:
        raise TypeError(f"image must be float32 in [0, 1], got dtype {image.dtype}")
    if image.size and not (np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1):
        raise ValueError(
            f"image values must be finite and in [0, 1], got range "
            f"[{float(np.nanmin(image))}, {float(np.nanmax(image))}]"
        )
    return image


def audio_input(audio: np.ndarray, sr: int, preroll: int) -> FloatArray:
    """Reject anything that is not 1-D float32 mono, and a preroll that leaves nothing."""
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"audio must be a numpy array, got {type(audio).__name__}")
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D mono, got shape {audio.shape}")
    if audio.dtype != np.float32:
        raise TypeError(f"audio must be float32, got dtype {audio.dtype}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer, got {sr!r}")
    if isinstance(preroll, bool) or not isinstance(preroll, (int, np.integer)):
        raise TypeError(f"preroll must be an integer, got {preroll!r}")
    if not 0 <= preroll < audio.shape[0]:
        raise ValueError(
            f"preroll must be in [0, len(audio)) = [0, {audio.shape[0]}), got {preroll}"
        )
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf")
    return audio


def clip01(x: np.ndarray) -> FloatArray:
    """Clip to the displayable range and hand back float32 (computations may run in float64)."""
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def bt601_luma(image: FloatArray) -> NDArray[np.float64]:
    """Per-pixel BT.601 luma, (H, W, 1), in float64 so the weights are not rounded."""
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float64)
    return (image.astype(np.float64) @ w)[..., np.newaxis]


def at_least(effect: str, name: str, value: float, low: float, *, strict: bool = False) -> float:
    v = finite_number(name, value)
    if v < low or (strict and v == low):
        raise ValueError(f"{effect}: {name} must be {'>' if strict else '>='} {low}, got {v}")
    return v


# --------------------------------------------------------------------------------------
# Spec types: what each effect module's table registers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One parameter that varies with intensity.

    ``neutral`` is the value at which the effect is the identity (or, where no finite value
    is, the anchor for "no effect": audio saturation 0 dB, reverb room_size 0, lpf Nyquist at
    ``NOMINAL_SR``). ``increasing`` says whether a larger value is a stronger effect.
    ``strict``: levels must change strictly between intensities (else non-decreasing in
    strength is enough, which lets e.g. a reverb keep its wet level fixed).
    """

    name: str
    unit: str
    neutral: float
    minimum: float
    maximum: float
    increasing: bool
    strict: bool = True


@dataclass(frozen=True)
class EffectSpec:
    """An effect: its varying parameters, its fixed defaults and the function that runs it."""

    name: str
    modality: str
    params: tuple[ParamSpec, ...]
    fixed_defaults: Mapping[str, float] = field(hash=False)
    fn: Callable[..., np.ndarray]
    #: The effect's parameter rule (``check_<effect>``): ``check(**params)`` for images,
    #: ``check(sr, **params)`` for audio; the effect calls the same function.
    check: Callable[..., dict[str, float]] = field(hash=False)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def allowed_params(self) -> tuple[str, ...]:
        return self.param_names + tuple(k for k in self.fixed_defaults if k not in self.param_names)


def effect_table(modality: str, *rows: tuple) -> dict[str, EffectSpec]:
    """name -> EffectSpec from rows of (name, varying params, fn, fixed defaults, check)."""
    return {
        name: EffectSpec(name, modality, params, MappingProxyType(dict(fixed)), fn, check)
        for name, params, fn, fixed, check in rows
    }
