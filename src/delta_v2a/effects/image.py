"""Image effects: ``(H, W, 3)`` float32 RGB in ``[0, 1]`` in, the same out, clipped to
``[0, 1]``. Each effect is three things here: its parameter rule (``check_<effect>``, used by
the effect itself AND by the start-up config check, so a value the effect would refuse is
refused before any job), the function, and its row in :data:`IMAGE_EFFECTS`."""

from __future__ import annotations

import math

import numpy as np

from delta_v2a.effects.base import (
    EffectSpec,
    FloatArray,
    ParamSpec,
    at_least,
    bt601_luma,
    clip01,
    effect_table,
    image_input,
)

# --------------------------------------------------------------------------------------
# Parameter rules: each returns the parameters as floats; a bad one raises naming it.
# --------------------------------------------------------------------------------------


def check_blur(*, sigma: float) -> dict[str, float]:
    return {"sigma": at_least("blur", "sigma", sigma, 0.0)}


def check_brightness(*, factor: float) -> dict[str, float]:
    return {"factor": at_least("brightness", "factor", factor, 0.0)}


def check_contrast(*, factor: float) -> dict[str, float]:
    return {"factor": at_least("contrast", "factor", factor, 0.0)}


def check_image_saturation(*, factor: float) -> dict[str, float]:
    return {"factor": at_least("saturation", "factor", factor, 0.0)}


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
    x = image_input(image)
    s = check_blur(sigma=sigma)["sigma"]
    if s == 0:
        return x.copy()
    k = 2 * math.ceil(3 * s) + 1
    import cv2

    out = cv2.GaussianBlur(
        np.ascontiguousarray(x), (k, k), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT_101
    )
    return clip01(out)


def brightness(image: np.ndarray, *, factor: float) -> FloatArray:
    """Scale towards/away from black: ``f * img`` (PIL ``ImageEnhance.Brightness`` and
    torchvision ``adjust_brightness``, minus their 8-bit rounding)."""
    x = image_input(image)
    f = check_brightness(factor=factor)["factor"]
    return clip01(f * x.astype(np.float64))


def contrast(image: np.ndarray, *, factor: float) -> FloatArray:
    """Blend with a flat grey at the image's mean luma: ``m + f * (img - m)``.

    As PIL ``ImageEnhance.Contrast``, except that PIL rounds the mean to an integer level
    (``int(mean + 0.5)`` of its rounded 8-bit luma); we keep the float mean, so the grey
    differs from PIL's by at most half a level.
    """
    x = image_input(image)
    f = check_contrast(factor=factor)["factor"]
    x64 = x.astype(np.float64)
    mean = float(bt601_luma(x).mean()) if x.size else 0.0
    return clip01(mean + f * (x64 - mean))


def image_saturation(image: np.ndarray, *, factor: float) -> FloatArray:
    """Blend with the pixel's own grey (BT.601 luma): ``l + f * (img - l)``.

    As PIL ``ImageEnhance.Color`` / torchvision ``adjust_saturation``, without their 8-bit
    rounding of the grey image.
    """
    x = image_input(image)
    f = check_image_saturation(factor=factor)["factor"]
    luma = bt601_luma(x)
    return clip01(luma + f * (x.astype(np.float64) - luma))


# --------------------------------------------------------------------------------------
# Registry rows
# --------------------------------------------------------------------------------------


_P = ParamSpec
IMAGE_EFFECTS: dict[str, EffectSpec] = effect_table(
    "image",
    ("blur", (_P("sigma", "px", 0.0, 0.0, 64.0, True),), blur, {}, check_blur),
    ("brightness", (_P("factor", "x", 1.0, 0.0, 10.0, True),), brightness, {}, check_brightness),
    # Stronger = flatter: the factor goes down from 1 towards a uniform grey at 0.
    ("contrast", (_P("factor", "x", 1.0, 0.0, 10.0, False),), contrast, {}, check_contrast),
    ("saturation", (_P("factor", "x", 1.0, 0.0, 20.0, True),), image_saturation, {},
     check_image_saturation),
)  # fmt: skip
