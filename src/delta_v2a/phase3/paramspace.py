"""The decoder's parameter space: audio DSP parameters as one vector in [0, 1].

One place defines how a normalised value becomes a physical parameter, so the Phase 3 data set,
the decoder checkpoint and the ``delta-v2a apply`` command all render audio the same way, with
the very effect functions extraction uses (:func:`delta_v2a.effects.apply_audio_effect`).

Decisions:

* Each varying parameter of each selected audio effect is one axis. ``0`` is the effect's
  neutral value, ``1`` its strongest configured level (the last intensity in config): lpf
  cut-off from Nyquist down to e.g. 800 Hz on a log scale; shelf gain and drive in dB, reverb
  room size and wet level linearly. Values are clipped to ``[0, 1]`` before rendering.
* Neutral is the identity by construction: an effect whose normalised values are all at or
  below ``bypass_below`` is not called at all (bypass). For lpf, highshelf and reverb the
  neutral value is an exact identity anyway; audio ``saturation`` has none (tanh at 0 dB drive
  still bends peaks), so for it the bypass is the only identity, and its first non-bypassed
  value is a weak 0 dB-ish drive. The threshold also keeps a prediction of 0.003 for an
  inactive effect from switching it on.
* Active effects run in chain order (the order of the space's effects) over the whole array,
  pre-roll included, and the pre-roll is dropped by the last active one. With one active
  effect this is exactly extraction's rendering of that effect.
* Everything serialises to plain Python values (:meth:`ParamSpace.to_dict`), so a checkpoint
  that holds it loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from delta_v2a.effects import apply_audio_effect, effect_spec

__all__ = ["ParamAxis", "ParamSpace", "audio_space_from_config"]

Scale = Literal["linear", "log"]


@dataclass(frozen=True)
class ParamAxis:
    """One physical parameter mapped to ``[0, 1]``: 0 = neutral, 1 = strongest."""

    effect: str
    param: str
    unit: str
    neutral: float
    strongest: float
    scale: Scale = "linear"

    @property
    def name(self) -> str:
        return f"{self.effect}.{self.param}"

    def physical(self, value: float) -> float:
        """Normalised value (clipped to [0, 1]) -> physical parameter."""
        u = min(max(float(value), 0.0), 1.0)
        if self.scale == "log":
            # Exact at both ends: u = 0 gives the neutral value bit for bit (lpf bypass).
            if u == 0.0:
                return self.neutral
            if u == 1.0:
                return self.strongest
            return math.exp((1.0 - u) * math.log(self.neutral) + u * math.log(self.strongest))
        return self.neutral + u * (self.strongest - self.neutral)

    def normalised(self, value: float) -> float:
        """Physical parameter -> normalised value (not clipped: outside [0, 1] is beyond)."""
        v = float(value)
        if self.scale == "log":
            return math.log(v / self.neutral) / math.log(self.strongest / self.neutral)
        return (v - self.neutral) / (self.strongest - self.neutral)

    def to_dict(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "param": self.param,
            "unit": self.unit,
            "neutral": self.neutral,
            "strongest": self.strongest,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class ParamSpace:
    """The vector the decoder predicts, and how to render audio from it."""

    effects: tuple[str, ...]
    axes: tuple[ParamAxis, ...]
    fixed: Mapping[str, Mapping[str, float]]
    sample_rate: int
    bypass_below: float = 0.0

    def __post_init__(self) -> None:
        for effect in self.effects:
            effect_spec("audio", effect)  # fails naming the allowed effects
            if not self.axes_of(effect):
                raise ValueError(f"parameter space: effect {effect!r} has no axis")
        unknown = {a.effect for a in self.axes} - set(self.effects)
        if unknown:
            raise ValueError(f"parameter space: axes for unlisted effects {sorted(unknown)}")
        for axis in self.axes:
            if axis.strongest == axis.neutral:
                raise ValueError(f"parameter space: {axis.name} has strongest == neutral")
            if axis.scale == "log" and not (axis.neutral > 0 and axis.strongest > 0):
                raise ValueError(f"parameter space: {axis.name} needs positive values for log")
        if not 0.0 <= self.bypass_below < 1.0:
            raise ValueError(f"bypass_below must be in [0, 1), got {self.bypass_below}")

    # --- shape ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axes]

    def axes_of(self, effect: str) -> list[int]:
        return [i for i, a in enumerate(self.axes) if a.effect == effect]

    # --- vectors -------------------------------------------------------------------------

    def target(self, effect: str, level: float) -> np.ndarray:
        """The vector with ``effect`` at normalised ``level`` and every other effect neutral."""
        if effect not in self.effects:
            raise ValueError(f"{effect!r} is not in the parameter space {list(self.effects)}")
        vec = np.zeros(self.dim, dtype=np.float32)
        vec[self.axes_of(effect)] = level
        return vec

    def physical(self, vector: Sequence[float]) -> dict[str, dict[str, float] | None]:
        """Effect -> its full parameter dict (fixed values included), or None when bypassed."""
        vec = self._check(vector)
        out: dict[str, dict[str, float] | None] = {}
        for effect in self.effects:
            idx = self.axes_of(effect)
            if all(vec[i] <= self.bypass_below for i in idx):
                out[effect] = None
                continue
            params = dict(self.fixed.get(effect, {}))
            for i in idx:
                params[self.axes[i].param] = self.axes[i].physical(vec[i])
            out[effect] = params
        return out

    def render(
        self, audio: np.ndarray, sr: int, vector: Sequence[float], preroll: int = 0
    ) -> np.ndarray:
        """Run the chain over ``audio`` (pre-roll included) and return ``out[preroll:]``."""
        if sr != self.sample_rate:
            raise ValueError(
                f"audio at {sr} Hz, but the parameter space was built for {self.sample_rate} Hz"
            )
        active = [(e, p) for e, p in self.physical(vector).items() if p is not None]
        if not active:
            return np.array(audio[preroll:], dtype=np.float32, copy=True)
        y = audio
        for k, (effect, params) in enumerate(active):
            last = k == len(active) - 1
            y = apply_audio_effect(effect, y, sr, params, preroll=preroll if last else 0)
        return y

    def _check(self, vector: Sequence[float]) -> np.ndarray:
        vec = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vec.shape != (self.dim,):
            raise ValueError(
                f"expected a vector of {self.dim} values {self.names}, got {vec.shape}"
            )
        if not np.isfinite(vec).all():
            raise ValueError(f"parameter vector has NaN or inf: {vec.tolist()}")
        return np.clip(vec, 0.0, 1.0)

    # --- (de)serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (fit for a ``weights_only`` checkpoint and for JSON)."""
        return {
            "effects": list(self.effects),
            "axes": [a.to_dict() for a in self.axes],
            "fixed": {e: {k: float(v) for k, v in p.items()} for e, p in self.fixed.items()},
            "sample_rate": int(self.sample_rate),
            "bypass_below": float(self.bypass_below),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpace:
        return cls(
            effects=tuple(data["effects"]),
            axes=tuple(ParamAxis(**a) for a in data["axes"]),
            fixed={e: dict(p) for e, p in data["fixed"].items()},
            sample_rate=int(data["sample_rate"]),
            bypass_below=float(data["bypass_below"]),
        )


def audio_space_from_config(
    config: Mapping[str, Any],
    effects: Sequence[str],
    sample_rate: int,
    bypass_below: float = 0.0,
) -> ParamSpace:
    """The space of ``effects`` (in the order given) from the workflow config.

    Strongest = the effect's level at the last configured intensity; neutral = the registry's
    neutral value, except a cut-off, whose neutral is Nyquist at ``sample_rate``. Parameters in
    Hz use a log scale; everything else is linear.
    """
    strongest_intensity = list(config["intensities"])[-1]
    axes: list[ParamAxis] = []
    fixed: dict[str, dict[str, float]] = {}
    for effect in effects:
        spec = effect_spec("audio", effect)
        conf = config["effects"]["audio"][effect]
        level = {**spec.fixed_defaults, **conf.get("fixed", {})}
        level.update(conf["levels"][strongest_intensity])
        varying = set(spec.param_names)
        fixed[effect] = {k: float(v) for k, v in level.items() if k not in varying}
        for p in spec.params:
            hz = p.unit == "Hz"
            neutral = sample_rate / 2 if p.name == "cutoff_hz" else p.neutral
            axes.append(
                ParamAxis(
                    effect=effect,
                    param=p.name,
                    unit=p.unit,
                    neutral=float(neutral),
                    strongest=float(level[p.name]),
                    scale="log" if hz else "linear",
                )
            )
    return ParamSpace(tuple(effects), tuple(axes), fixed, int(sample_rate), float(bypass_below))
