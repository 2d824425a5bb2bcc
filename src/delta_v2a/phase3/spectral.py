"""Phase 3 validation on spectrograms: log-mel of renders and their distance."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "delta_v2a.decoder"
FORMAT_VERSION = 1
KINDS = ("attention", "concat")
SAMPLE_COLUMNS = (
    "sample",
    "file_index",
    "path",
    "category",
    "split",
    "image_effect",
    "audio_effect",
    "level",
    "level_word",
    "description",
)


# --------------------------------------------------------------------------- spectrograms


@dataclass(frozen=True)
class MelSettings:
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    amin: float = 1e-10  # power floor before the log (librosa's default: -100 dB)


def log_mel(audio: np.ndarray, sr: int, mel: MelSettings) -> np.ndarray:
    """(n_mels, frames) log-mel power spectrogram in dB (absolute: ref = 1.0)."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32),
        sr=sr,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        n_mels=mel.n_mels,
        power=2.0,
    )
    return 10.0 * np.log10(np.maximum(power, mel.amin))


def spectral_distance(a_db: np.ndarray, b_db: np.ndarray) -> float:
    """Mean absolute difference of two log-mel spectrograms, in dB."""
    if a_db.shape != b_db.shape:
        raise ValueError(f"spectrogram shapes differ: {a_db.shape} vs {b_db.shape}")
    return float(np.mean(np.abs(a_db - b_db)))
