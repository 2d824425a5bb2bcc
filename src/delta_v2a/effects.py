"""Image and audio effects whose strength we can dial, plus the registry that names them.

Every effect is a pure, deterministic function: float32 in, float32 out, bit-identical on
repeat, input never modified. The study compares how far CLIP/CLAP embeddings move under
effects of graded strength, so each effect must be reproducible exactly and must reach the
identity at a known "neutral" parameter value (see ``ParamSpec.neutral``).

Representations
---------------
* Image: ``(H, W, 3)`` float32, RGB, gamma-encoded values in ``[0, 1]``, already at the
  model's input size. Every image effect clips its result to ``[0, 1]``, as a photo editor
  would, so the model never sees values a real image could not have.
* Audio: 1-D float32 mono at sample rate ``sr``. Audio is never clipped: a loudness change
  or overshoot is part of what the effect does and must not be hidden by a limiter.

Audio effects take ``preroll``: the effect runs over the whole array (so filters and the
reverb reach steady state and a reverb tail from before the window flows into it) and only
``audio[preroll:]`` is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from delta_v2a.constants import SAMPLE_RATE

# cv2, scipy.signal and pedalboard are imported inside the effects that use them: this module
# is also imported by the Snakefile (config checks), where a 1-2 s import would slow every
# `snakemake --dry-run`.

__all__ = [
    "AUDIO_EFFECTS",
    "DEFAULT_INTENSITIES",
    "IMAGE_EFFECTS",
    "LUMA_WEIGHTS",
    "NOMINAL_SR",
    "EffectSpec",
    "ParamSpec",
    "apply_audio_effect",
    "apply_image_effect",
    "audio_saturation",
    "blur",
    "brightness",
    "check_audio_saturation",
    "check_blur",
    "check_brightness",
    "check_contrast",
    "check_highshelf",
    "check_image_saturation",
    "check_levels",
    "check_lpf",
    "check_reverb",
    "contrast",
    "effect_spec",
    "highshelf",
    "image_saturation",
    "lpf",
    "reverb",
]

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


def _finite(name: str, value: float) -> float:
    """Parameters must be real, finite numbers: a NaN would silently poison every embedding."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"parameter {name!r} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"parameter {name!r} must be finite, got {out!r}")
    return out


def _check_image(image: np.ndarray) -> FloatArray:
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


def _check_audio(audio: np.ndarray, sr: int, preroll: int) -> FloatArray:
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


def _clip01(x: np.ndarray) -> FloatArray:
    """Clip to the displayable range and hand back float32 (computations may run in float64)."""
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _luma(image: FloatArray) -> NDArray[np.float64]:
    """Per-pixel BT.601 luma, (H, W, 1), in float64 so the weights are not rounded."""
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float64)
    return (image.astype(np.float64) @ w)[..., np.newaxis]


# --------------------------------------------------------------------------------------
# Parameter rules: one function per effect, used by the effect itself AND by the start-up
# config check (check_levels), so a value the effect would refuse is refused before any job.
# Each returns the parameters as floats; a bad one raises ValueError/TypeError naming it.
# --------------------------------------------------------------------------------------


def _at_least(effect: str, name: str, value: float, low: float, *, strict: bool = False) -> float:
    v = _finite(name, value)
    if v < low or (strict and v == low):
        raise ValueError(f"{effect}: {name} must be {'>' if strict else '>='} {low}, got {v}")
    return v


def check_blur(*, sigma: float) -> dict[str, float]:
    return {"sigma": _at_least("blur", "sigma", sigma, 0.0)}


def check_brightness(*, factor: float) -> dict[str, float]:
    return {"factor": _at_least("brightness", "factor", factor, 0.0)}


def check_contrast(*, factor: float) -> dict[str, float]:
    return {"factor": _at_least("contrast", "factor", factor, 0.0)}


def check_image_saturation(*, factor: float) -> dict[str, float]:
    return {"factor": _at_least("saturation", "factor", factor, 0.0)}


def check_lpf(sr: int, *, cutoff_hz: float, order: float = 4) -> dict[str, float]:
    """cutoff in (0, sr/2] (sr/2 is bypass); order a whole number >= 1 (Butterworth)."""
    c = _finite("cutoff_hz", cutoff_hz)
    n = _finite("order", order)
    nyquist = sr / 2
    if c > nyquist:
        raise ValueError(
            f"lpf: cutoff_hz={c} Hz is above the Nyquist frequency {nyquist} Hz (sr={sr}); "
            f"use a cutoff below it (exactly {nyquist} Hz means bypass)"
        )
    if c <= 0:
        raise ValueError(f"lpf: cutoff_hz must be > 0 Hz, got {c}")
    if n != int(n) or n < 1:
        raise ValueError(f"lpf: order must be a positive whole number, got {order!r}")
    return {"cutoff_hz": c, "order": n}


def check_highshelf(
    sr: int, *, gain_db: float, cutoff_hz: float = 4000.0, q: float = 0.707
) -> dict[str, float]:
    g = _finite("gain_db", gain_db)
    c = _finite("cutoff_hz", cutoff_hz)
    if not 0 < c < sr / 2:
        raise ValueError(
            f"highshelf: cutoff_hz={c} Hz must be in (0, {sr / 2}) Hz (Nyquist for sr={sr})"
        )
    return {"gain_db": g, "cutoff_hz": c, "q": _at_least("highshelf", "q", q, 0.0, strict=True)}


def check_audio_saturation(sr: int, *, drive_db: float) -> dict[str, float]:
    return {"drive_db": _finite("drive_db", drive_db)}


def check_reverb(
    sr: int, *, room_size: float, wet_level: float, damping: float, dry_level: float, width: float
) -> dict[str, float]:
    """room_size, wet_level, damping and width in [0, 1] (pedalboard's ranges); dry >= 0.
    Every parameter is required: the defaults live in :func:`reverb` and the registry."""
    vals = {
        "room_size": _finite("room_size", room_size),
        "wet_level": _finite("wet_level", wet_level),
        "damping": _finite("damping", damping),
        "width": _finite("width", width),
    }
    for key, v in vals.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"reverb: {key} must be in [0, 1], got {v}")
    vals["dry_level"] = _at_least("reverb", "dry_level", dry_level, 0.0)
    return vals


# --------------------------------------------------------------------------------------
# Image effects
# --------------------------------------------------------------------------------------


def blur(image: np.ndarray, *, sigma: float) -> FloatArray:
    """Gaussian blur with an explicit kernel and border, so results do not depend on
    OpenCV's automatic choices.

    Kernel size is ``2 * ceil(3 * sigma) + 1`` (radius 3 sigma: the weights dropped beyond it
    sum to about 0.3 %, and the kernel is renormalised). Borders use reflect-101
    (``d c b | a b c d | c b a``), which adds no edge of its own. ``sigma == 0`` is the
    identity and returns a copy.
    """
    x = _check_image(image)
    s = check_blur(sigma=sigma)["sigma"]
    if s == 0:
        return x.copy()
    k = 2 * math.ceil(3 * s) + 1
    import cv2

    out = cv2.GaussianBlur(
        np.ascontiguousarray(x), (k, k), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT_101
    )
    return _clip01(out)


def brightness(image: np.ndarray, *, factor: float) -> FloatArray:
    """Scale towards/away from black: ``f * img`` (PIL ``ImageEnhance.Brightness`` and
    torchvision ``adjust_brightness``, minus their 8-bit rounding)."""
    x = _check_image(image)
    f = check_brightness(factor=factor)["factor"]
    return _clip01(f * x.astype(np.float64))


def contrast(image: np.ndarray, *, factor: float) -> FloatArray:
    """Blend with a flat grey at the image's mean luma: ``m + f * (img - m)``.

    As PIL ``ImageEnhance.Contrast``, except that PIL rounds the mean to an integer level
    (``int(mean + 0.5)`` of its rounded 8-bit luma); we keep the float mean, so the grey
    differs from PIL's by at most half a level.
    """
    x = _check_image(image)
    f = check_contrast(factor=factor)["factor"]
    x64 = x.astype(np.float64)
    mean = float(_luma(x).mean()) if x.size else 0.0
    return _clip01(mean + f * (x64 - mean))


def image_saturation(image: np.ndarray, *, factor: float) -> FloatArray:
    """Blend with the pixel's own grey (BT.601 luma): ``l + f * (img - l)``.

    As PIL ``ImageEnhance.Color`` / torchvision ``adjust_saturation``, without their 8-bit
    rounding of the grey image.
    """
    x = _check_image(image)
    f = check_image_saturation(factor=factor)["factor"]
    luma = _luma(x)
    return _clip01(luma + f * (x.astype(np.float64) - luma))


# --------------------------------------------------------------------------------------
# Audio effects
# --------------------------------------------------------------------------------------


def lpf(
    audio: np.ndarray, sr: int, *, cutoff_hz: float, order: float = 4, preroll: int = 0
) -> FloatArray:
    """Butterworth low-pass, exactly what audiomentations' ``LowPassFilter`` runs
    (``butter(order, cutoff, fs=sr, output="sos")`` + ``sosfilt``; ``order`` 4 = 24 dB/oct).

    The filter state starts at ``sosfilt_zi(sos) * audio[0]``, i.e. as if the first sample
    had been held forever, so there is no start-up click. ``cutoff_hz == sr / 2`` is treated
    as bypass (a low-pass at Nyquist removes nothing) and returns a copy; above Nyquist
    raises. Computed in float64, returned as float32.
    """
    x = _check_audio(audio, sr, preroll)
    checked = check_lpf(sr, cutoff_hz=cutoff_hz, order=order)
    c, n = checked["cutoff_hz"], checked["order"]
    if c == sr / 2:
        return x[preroll:].copy()
    from scipy import signal

    sos = signal.butter(int(n), c, btype="low", fs=sr, output="sos")
    y, _ = signal.sosfilt(sos, x.astype(np.float64), zi=signal.sosfilt_zi(sos) * float(x[0]))
    return y[preroll:].astype(np.float32)


def highshelf(
    audio: np.ndarray,
    sr: int,
    *,
    gain_db: float,
    cutoff_hz: float = 4000.0,
    q: float = 0.707,
    preroll: int = 0,
) -> FloatArray:
    """High-shelf biquad (RBJ cookbook, via pedalboard/JUCE): brightens or darkens the top
    of the spectrum without touching the lows. ``gain_db == 0`` is short-circuited to a copy
    (pedalboard is an exact identity there too, but the copy makes it a guarantee)."""
    x = _check_audio(audio, sr, preroll)
    checked = check_highshelf(sr, gain_db=gain_db, cutoff_hz=cutoff_hz, q=q)
    g, c, qq = checked["gain_db"], checked["cutoff_hz"], checked["q"]
    if g == 0:
        return x[preroll:].copy()
    from pedalboard import HighShelfFilter

    board = HighShelfFilter(cutoff_frequency_hz=c, gain_db=g, q=qq)
    y = board(x, sr)
    return np.asarray(y[preroll:], dtype=np.float32).copy()


def audio_saturation(
    audio: np.ndarray, sr: int, *, drive_db: float, preroll: int = 0
) -> FloatArray:
    """Soft clipping ``tanh(10**(drive_db/20) * x)`` (what pedalboard's ``Distortion``
    computes), rescaled so the kept part's RMS equals the input's: the effect is timbre,
    not loudness.

    Memoryless, so running it on the kept part only is the same as on the whole array.
    ``drive_db == 0`` is NOT the identity (tanh still bends peaks near +-1); the identity is
    the limit ``drive_db -> -inf``. Silent input returns zeros. ``sr`` is unused (uniform
    signature).
    """
    x = _check_audio(audio, sr, preroll)
    d = check_audio_saturation(sr, drive_db=drive_db)["drive_db"]
    kept = x[preroll:].astype(np.float64)
    y = np.tanh(10.0 ** (d / 20.0) * kept)
    rms_in = math.sqrt(float(np.mean(kept * kept)))
    rms_out = math.sqrt(float(np.mean(y * y)))
    if rms_in == 0.0 or rms_out == 0.0:
        return np.zeros(kept.shape, dtype=np.float32)
    return (y * (rms_in / rms_out)).astype(np.float32)


def reverb(
    audio: np.ndarray,
    sr: int,
    *,
    room_size: float,
    wet_level: float,
    damping: float = 0.5,
    dry_level: float = 1.0,
    width: float = 1.0,
    preroll: int = 0,
) -> FloatArray:
    """Freeverb (pedalboard ``Reverb``; deterministic, no randomness): adds a room.

    ``room_size``, ``damping``, ``wet_level`` and ``width`` mean what they mean in pedalboard.
    ``dry_level`` does NOT: here it is the plain linear gain of the dry signal (1.0 = the
    input unchanged), whereas pedalboard/JUCE multiply its ``dry_level`` by 2. We render the
    wet signal alone (pedalboard ``dry_level=0``) and add ``dry_level * x`` ourselves, so
    ``wet_level == 0`` gives back exactly ``dry_level * x``. For mono input JUCE scales the
    wet signal by ``(1 + width) / 2``.
    """
    x = _check_audio(audio, sr, preroll)
    vals = check_reverb(
        sr,
        room_size=room_size,
        wet_level=wet_level,
        damping=damping,
        dry_level=dry_level,
        width=width,
    )
    dry = vals["dry_level"]
    from pedalboard import Reverb

    board = Reverb(
        room_size=vals["room_size"],
        damping=vals["damping"],
        wet_level=vals["wet_level"],
        dry_level=0.0,
        width=vals["width"],
        freeze_mode=0.0,
    )
    wet = np.asarray(board(x, sr), dtype=np.float32)
    out = wet + np.float32(dry) * x
    return out[preroll:].copy()


# --------------------------------------------------------------------------------------
# Registry
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


def _registry(modality: str, *rows: tuple) -> dict[str, EffectSpec]:
    """name -> EffectSpec from rows of (name, varying params, fn, fixed defaults, check)."""
    return {
        name: EffectSpec(name, modality, params, MappingProxyType(dict(fixed)), fn, check)
        for name, params, fn, fixed, check in rows
    }


_P = ParamSpec
IMAGE_EFFECTS: dict[str, EffectSpec] = _registry(
    "image",
    ("blur", (_P("sigma", "px", 0.0, 0.0, 64.0, True),), blur, {}, check_blur),
    ("brightness", (_P("factor", "x", 1.0, 0.0, 10.0, True),), brightness, {}, check_brightness),
    # Stronger = flatter: the factor goes down from 1 towards a uniform grey at 0.
    ("contrast", (_P("factor", "x", 1.0, 0.0, 10.0, False),), contrast, {}, check_contrast),
    ("saturation", (_P("factor", "x", 1.0, 0.0, 20.0, True),), image_saturation, {},
     check_image_saturation),
)  # fmt: skip

AUDIO_EFFECTS: dict[str, EffectSpec] = _registry(
    "audio",
    # Neutral = Nyquist at NOMINAL_SR (bypass there); at another rate it is sr / 2, which
    # check_levels enforces when given sr. The maximum allows up to 192 kHz material.
    ("lpf", (_P("cutoff_hz", "Hz", NOMINAL_SR / 2, 20.0, 96_000.0, False),), lpf,
     {"order": 4}, check_lpf),
    # Boost only: check_levels requires gain > 0 (increasing away from 0 dB). A cut shelf
    # (negative gain) runs fine in highshelf() but would be a separate effect with
    # increasing=False.
    ("highshelf", (_P("gain_db", "dB", 0.0, -24.0, 24.0, True),), highshelf,
     {"cutoff_hz": 4000.0, "q": 0.707}, check_highshelf),
    # 0 dB is the anchor, not an identity: see audio_saturation().
    ("saturation", (_P("drive_db", "dB", 0.0, 0.0, 48.0, True),), audio_saturation, {},
     check_audio_saturation),
    # The identity is wet_level = 0; room_size 0 is only the smallest room (RT60 ~0.5 s).
    ("reverb", (_P("room_size", "", 0.0, 0.0, 1.0, True),
                _P("wet_level", "", 0.0, 0.0, 1.0, True, strict=False)), reverb,
     {"damping": 0.5, "dry_level": 1.0, "width": 1.0}, check_reverb),
)  # fmt: skip

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
            _finite(key, value)
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
