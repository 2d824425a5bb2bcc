"""Phase 3 validation on spectrograms: log-mel of renders and their distance."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- spectrograms


@dataclass(frozen=True)
class MelSettings:
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    amin: float = 1e-10  # power floor before the log
    top_db: float = 80.0  # dB below the clip's own peak where the spectrogram is floored


def log_mel(audio: np.ndarray, sr: int, mel: MelSettings) -> np.ndarray:
    """(n_mels, frames) log-mel power spectrogram in dB relative to the clip's own peak,
    floored at ``-top_db``: bins far below the peak (near silence, the rolled-off top of a
    low-passed clip) would otherwise dominate the distance (docs/methods.md section 6.6)."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32),
        sr=sr,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        n_mels=mel.n_mels,
        power=2.0,
    )
    return to_db(power, mel.amin, mel.top_db)


def to_db(power: np.ndarray, amin: float, top_db: float) -> np.ndarray:
    """Power -> dB re the peak (0 dB at the peak), clipped below at ``-top_db``."""
    db = 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), amin))
    db = db - db.max()
    return np.maximum(db, -float(top_db))


def spectral_distance(a_db: np.ndarray, b_db: np.ndarray) -> float:
    """Mean absolute difference of two log-mel spectrograms, in dB."""
    if a_db.shape != b_db.shape:
        raise ValueError(f"spectrogram shapes differ: {a_db.shape} vs {b_db.shape}")
    return float(np.mean(np.abs(a_db - b_db)))
