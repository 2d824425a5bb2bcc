"""The user's signal in and out of ``apply`` and ``transfer``: read the song at its own rate and
channels, render the predicted chain on every channel at that rate, write the format the output
name asks for (docs/methods.md §7).

Why not the model's rate: the decoder reads its mono 48 kHz windows (the CLAP input) to predict
the parameters, but the parameters are physical (Hz, dB, drive, room size), so the same chain can
run on the user's own signal; rendering the 48 kHz mono copy would hand back a different file
(mono, resampled, float) than the one the user gave. Light at import (numpy only): the command
line checks its arguments (delta_v2a.audio_out) before torch or transformers load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.audio_out import OUT_FORMATS, check_out_name


@dataclass(frozen=True)
class Signal:
    """A whole file as (frames, channels) float32 at its own rate."""

    data: np.ndarray
    rate: int


def read_signal(path: str | Path) -> Signal:
    """The file as it is: every channel at its own rate (libsndfile; librosa for the rest)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):  # formats libsndfile cannot decode
        import librosa

        y, rate = librosa.load(str(path), sr=None, mono=False)
        data = np.atleast_2d(y).T.astype(np.float32)
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no audio frames")
    return Signal(np.ascontiguousarray(data), int(rate))


def render_signal(
    physical: Mapping[str, Mapping[str, float] | None], order: Sequence[str], signal: Signal
) -> tuple[np.ndarray, list[str]]:
    """The chain of ``physical`` parameters (None: bypassed) over every channel at the signal's
    rate, in ``order``; with a note per effect that cannot act at this rate.

    A low-pass whose cutoff is at or above the file's Nyquist frequency removes nothing that the
    file holds, so it is bypassed and said so (the filter design would refuse it).
    """
    from delta_v2a.effects import apply_audio_effect

    notes, active = [], []
    for effect in order:
        params = physical.get(effect)
        if params is None:
            continue
        if effect == "lpf" and params["cutoff_hz"] >= signal.rate / 2:
            notes.append(
                f"lpf: cutoff {params['cutoff_hz']:.0f} Hz is at or above this file's Nyquist "
                f"frequency ({signal.rate / 2:.0f} Hz): nothing to remove, bypassed"
            )
            continue
        active.append((effect, params))
    channels = []
    for c in range(signal.data.shape[1]):
        y = signal.data[:, c]
        for effect, params in active:
            y = apply_audio_effect(effect, y, signal.rate, params)
        channels.append(np.asarray(y, dtype=np.float32))
    return np.stack(channels, axis=1), notes


def write_signal(path: str | Path, data: np.ndarray, rate: int) -> list[str]:
    """Write ``data`` in the format ``path``'s extension names (atomically); a note when a fixed-
    point or lossy format clips samples beyond full scale (WAV stays float and never clips)."""
    import soundfile as sf

    from delta_v2a.storage import atomic_path

    check_out_name(path)
    fmt, subtype = OUT_FORMATS[Path(path).suffix.lower()]
    notes = []
    over = int(np.count_nonzero(np.abs(data) > 1.0))
    if over and subtype != "FLOAT":
        notes.append(
            f"{over} sample(s) beyond full scale (peak {float(np.abs(data).max()):.3f}) are "
            f"clipped in {fmt}; write .wav for float samples"
        )
        data = np.clip(data, -1.0, 1.0)
    with atomic_path(Path(path), Path(path).suffix) as tmp:
        sf.write(str(tmp), data, rate, subtype=subtype, format=fmt)
    return notes


def render_file(
    physical: Mapping[str, Mapping[str, float] | None],
    order: Sequence[str],
    audio: str | Path,
    out: str | Path,
) -> dict[str, Any]:
    """Read ``audio``, render the chain at its own rate and channels, write ``out``; what was
    written (rate, channels, format, notes) for the command's report."""
    signal = read_signal(audio)
    rendered, notes = render_signal(physical, order, signal)
    notes += write_signal(out, rendered, signal.rate)
    return {
        "sample_rate": signal.rate,
        "channels": int(signal.data.shape[1]),
        "format": OUT_FORMATS[Path(out).suffix.lower()][0],
        "notes": notes,
    }
