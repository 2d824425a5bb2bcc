"""Phase 3 validation on spectrograms: log-mel of renders, their distance, and which test
samples are rendered and listened to (docs/methods.md §6.5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- spectrograms


@dataclass(frozen=True)
class MelSettings:
    """The log-mel's settings (``phase3.validation.mel``; defaults in the schema only)."""

    n_fft: int
    hop_length: int
    n_mels: int
    top_db: float  # dB below the clip's own peak where the spectrogram is floored
    floor_db: float  # the gain-aware scale's absolute floor, dB re power 1 (full scale)
    amin: float = 1e-10  # power floor before the log (a numerical guard, not a setting)


def mel_power(audio: np.ndarray, sr: int, mel: MelSettings) -> np.ndarray:
    """(n_mels, frames) mel power spectrogram, the one both dB scales start from."""
    import librosa

    return librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32),
        sr=sr,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        n_mels=mel.n_mels,
        power=2.0,
    )


def log_mel(audio: np.ndarray, sr: int, mel: MelSettings) -> np.ndarray:
    """(n_mels, frames) log-mel power spectrogram in dB relative to the clip's own peak,
    floored at ``-top_db``: bins far below the peak (near silence, the rolled-off top of a
    low-passed clip) would otherwise dominate the distance (docs/methods.md section 6.6)."""
    return to_db(mel_power(audio, sr, mel), mel.amin, mel.top_db)


def to_db(power: np.ndarray, amin: float, top_db: float) -> np.ndarray:
    """Power -> dB re the peak (0 dB at the peak), clipped below at ``-top_db``."""
    db = 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), amin))
    db = db - db.max()
    return np.maximum(db, -float(top_db))


def to_db_reference(
    power: np.ndarray, amin: float, floor_db: float, ref: float = 1.0
) -> np.ndarray:
    """Power -> dB re a fixed reference ``ref`` (the same for every clip), floored at
    ``floor_db``. Unlike :func:`to_db` nothing is taken relative to the clip's own peak, so a
    render that is right in shape but 6 dB too quiet is 6 dB away: the gain-aware distance.
    The floor (an absolute level, e.g. -100 dB re full scale) keeps near-silent bins from
    dominating, as ``top_db`` does for the peak-relative one."""
    db = 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), amin) / float(ref))
    return np.maximum(db, float(floor_db))


def log_mel_reference(
    audio: np.ndarray, sr: int, mel: MelSettings, floor_db: float = -100.0, ref: float = 1.0
) -> np.ndarray:
    """(n_mels, frames) log-mel power in dB re ``ref`` (:func:`to_db_reference`): the
    gain-aware spectrogram, beside the peak-relative :func:`log_mel`."""
    return to_db_reference(mel_power(audio, sr, mel), mel.amin, floor_db, ref)


def both_log_mels(audio: np.ndarray, sr: int, mel: MelSettings) -> tuple[np.ndarray, np.ndarray]:
    """The peak-relative (:func:`log_mel`) and gain-aware (:func:`log_mel_reference`, re power
    1 floored at ``mel.floor_db``) spectrograms from one mel power spectrogram."""
    power = mel_power(audio, sr, mel)
    return to_db(power, mel.amin, mel.top_db), to_db_reference(power, mel.amin, mel.floor_db)


def spectral_distance(a_db: np.ndarray, b_db: np.ndarray) -> float:
    """Mean absolute difference of two log-mel spectrograms, in dB (peak-relative from
    :func:`log_mel`, or gain-aware from :func:`log_mel_reference`)."""
    if a_db.shape != b_db.shape:
        raise ValueError(f"spectrogram shapes differ: {a_db.shape} vs {b_db.shape}")
    return float(np.mean(np.abs(a_db - b_db)))


# --------------------------------------------------------------------------- which samples


def rendered_subset(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Sorted positions of the at most ``max_samples`` test samples that are rendered (a
    seeded subset; sorted keeps one file's samples together)."""
    return np.sort(np.random.default_rng([seed, 303]).permutation(n)[: min(n, max_samples)])


def example_order(frame: pd.DataFrame, pick: np.ndarray, examples: int) -> list[int]:
    """The rendered samples written as WAV examples: round robin over (image, audio) pairs,
    strongest level first within each pair (the most audible examples)."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i in pick:
        key = (frame.at[i, "image_effect"], frame.at[i, "audio_effect"])
        by_pair.setdefault(key, []).append(int(i))
    for lst in by_pair.values():
        lst.sort(key=lambda i: -float(frame.at[i, "level"]))
    chosen: list[int] = []
    while len(chosen) < min(examples, len(pick)):
        for lst in by_pair.values():
            if lst and len(chosen) < examples:
                chosen.append(lst.pop(0))
    return chosen
