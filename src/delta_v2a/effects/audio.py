"""Audio effects: 1-D float32 mono at sample rate ``sr`` in, the same out, never clipped
(a loudness change or overshoot is part of the effect). Each takes ``preroll``: the effect runs
over the whole array (filters and the reverb reach steady state, a reverb tail from before the
window flows into it) and only ``audio[preroll:]`` is returned. Each effect is three things
here: its parameter rule (``check_<effect>``, used by the effect itself AND by the start-up
config check), the function, and its row in :data:`AUDIO_EFFECTS`."""

from __future__ import annotations

import math

import numpy as np

from delta_v2a.effects.base import (
    NOMINAL_SR,
    EffectSpec,
    FloatArray,
    ParamSpec,
    at_least,
    audio_input,
    effect_table,
    finite_number,
)

# --------------------------------------------------------------------------------------
# Parameter rules: each returns the parameters as floats; a bad one raises naming it.
# --------------------------------------------------------------------------------------


def check_lpf(sr: int, *, cutoff_hz: float, order: float = 4) -> dict[str, float]:
    """cutoff in (0, sr/2] (sr/2 is bypass); order a whole number >= 1 (Butterworth)."""
    c = finite_number("cutoff_hz", cutoff_hz)
    n = finite_number("order", order)
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
    g = finite_number("gain_db", gain_db)
    c = finite_number("cutoff_hz", cutoff_hz)
    if not 0 < c < sr / 2:
        raise ValueError(
            f"highshelf: cutoff_hz={c} Hz must be in (0, {sr / 2}) Hz (Nyquist for sr={sr})"
        )
    return {"gain_db": g, "cutoff_hz": c, "q": at_least("highshelf", "q", q, 0.0, strict=True)}


def check_audio_saturation(sr: int, *, drive_db: float) -> dict[str, float]:
    return {"drive_db": finite_number("drive_db", drive_db)}


def check_reverb(
    sr: int, *, room_size: float, wet_level: float, damping: float, dry_level: float, width: float
) -> dict[str, float]:
    """room_size, wet_level, damping and width in [0, 1] (pedalboard's ranges); dry >= 0.
    Every parameter is required: the defaults live in :func:`reverb` and the registry."""
    vals = {
        "room_size": finite_number("room_size", room_size),
        "wet_level": finite_number("wet_level", wet_level),
        "damping": finite_number("damping", damping),
        "width": finite_number("width", width),
    }
    for key, v in vals.items():
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"reverb: {key} must be in [0, 1], got {v}")
    vals["dry_level"] = at_least("reverb", "dry_level", dry_level, 0.0)
    return vals


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
    x = audio_input(audio, sr, preroll)
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
    x = audio_input(audio, sr, preroll)
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
    x = audio_input(audio, sr, preroll)
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
    x = audio_input(audio, sr, preroll)
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
# Registry rows
# --------------------------------------------------------------------------------------


_P = ParamSpec
AUDIO_EFFECTS: dict[str, EffectSpec] = effect_table(
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
