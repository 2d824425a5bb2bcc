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

# cv2, scipy.signal and pedalboard are imported inside the effects that use them: this package
# is also imported by the Snakefile (config checks), where a 1-2 s import would slow every
# `snakemake --dry-run`.
#
# The package's parts: base (input checks, ParamSpec/EffectSpec), image and audio (each
# effect's rule, function and registry row: adding an effect touches one of these) and
# registry (lookup, apply, the config's level checks).

from delta_v2a.effects.audio import (
    AUDIO_EFFECTS,
    audio_saturation,
    check_audio_saturation,
    check_highshelf,
    check_lpf,
    check_reverb,
    highshelf,
    lpf,
    reverb,
)
from delta_v2a.effects.base import (
    DEFAULT_INTENSITIES,
    LUMA_WEIGHTS,
    NOMINAL_SR,
    EffectSpec,
    ParamSpec,
)
from delta_v2a.effects.image import (
    IMAGE_EFFECTS,
    blur,
    brightness,
    check_blur,
    check_brightness,
    check_contrast,
    check_image_saturation,
    contrast,
    image_saturation,
)
from delta_v2a.effects.registry import (
    REGISTRY,
    apply_audio_effect,
    apply_image_effect,
    check_levels,
    effect_spec,
)

__all__ = [
    "AUDIO_EFFECTS",
    "DEFAULT_INTENSITIES",
    "IMAGE_EFFECTS",
    "LUMA_WEIGHTS",
    "NOMINAL_SR",
    "REGISTRY",
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
