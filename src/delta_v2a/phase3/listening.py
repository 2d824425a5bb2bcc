"""The listening test's arithmetic (docs/methods.md §6.5-6.6): render the target and every
candidate's prediction from one file's A_raw, their two log-mel distances, the example clips,
and the predictions table. Arrays in, arrays out: the phase3 job loads the audio and writes
the WAVs and predictions.tsv."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.spectral import MelSettings, both_log_mels, spectral_distance

#: The two log-mel distances (docs/methods.md §6.6): peak-relative with top_db, and gain-aware.
SPECTRAL_METRICS = ("logmel_db", "logmel_gain_db")


class FileRenders:
    """One file's renders: each distinct effective parameter set is rendered and turned into
    its log-mels once (the mean-parameter and no-effect baselines once per file, a
    description's prediction once per file)."""

    def __init__(
        self, raw: np.ndarray, sr: int, preroll: int, space: ParamSpace, mel: MelSettings
    ) -> None:
        self.raw, self.sr, self.preroll, self.space, self.mel = raw, sr, preroll, space, mel
        self._mels: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def render(self, vec: np.ndarray) -> np.ndarray:
        """The clip rendered at the normalised parameters ``vec`` (preroll cut)."""
        return self.space.render(self.raw, self.sr, vec, self.preroll)

    def log_mels(self, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = json.dumps(self.space.physical(vec), sort_keys=True)
        if key not in self._mels:
            self._mels[key] = both_log_mels(self.render(vec), self.sr, self.mel)
        return self._mels[key]

    def distances(self, truth: np.ndarray, candidates: Mapping[str, np.ndarray]) -> dict:
        """candidate -> metric -> its distance to the target's render, for one sample
        (``truth`` and each candidate's vector)."""
        target = self.log_mels(truth)
        return {
            name: {
                metric: spectral_distance(self.log_mels(vec)[k], target[k])
                for k, metric in enumerate(SPECTRAL_METRICS)
            }
            for name, vec in candidates.items()
        }

    def example(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
        """The example WAVs of one sample: A_raw, the target's render, the decoder's."""
        return {
            "raw": self.raw[self.preroll :],
            "target": self.render(truth),
            "predicted": self.render(predicted),
        }


def example_label(k: int, row: Mapping[str, str]) -> str:
    """The k-th example's file-name stem: its file, its pair and its level word."""
    return (
        f"{k:02d}_{Path(row['path']).stem}_"
        f"{row['image_effect']}-{row['audio_effect']}_{row['level_word']}"
    )


def _phys(space: ParamSpace, vec: np.ndarray, j: int) -> float:
    axis = space.axes[j]
    params = space.physical(vec)[axis.effect]
    return axis.neutral if params is None else float(params[axis.param])


def predictions_table(
    test_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spectral: Mapping[str, Mapping[str, np.ndarray]],
    mse: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Every test sample with each candidate's prediction and, in ``param_mse:<name>``, the
    per-sample error the figures and the verdict use: for ``shuffled_audio`` the mean over
    all derangements (its ``pred_`` columns show the first, the one rendered), with their SD
    across derangements in ``param_mse_sd:shuffled_audio``, so the table and the summary
    agree."""
    cols = ["sample", "path", "category", "image_effect", "audio_effect", "level", "level_word"]
    cols += ["split", "held_out", "template", "description", "target_strength", "u_star"]
    out = test_frame[cols + ["unreachable"]].copy()
    for j, axis in enumerate(space.axes):
        out[f"true:{axis.name}"] = truth[:, j]
        for name, pred in candidates.items():
            if name != "oracle":
                out[f"pred_{name}:{axis.name}"] = pred[:, j]
    for j, axis in enumerate(space.axes):
        # Physical values as rendered (a bypassed effect shows its neutral value).
        out[f"true_value:{axis.name}"] = [_phys(space, v, j) for v in truth]
        out[f"pred_value:{axis.name}"] = [_phys(space, v, j) for v in candidates["decoder"]]
    for name, values in (mse or {}).items():
        out[f"param_mse:{name}" if not name.endswith("_sd") else f"param_mse_sd:{name[:-3]}"] = (
            values
        )
    for metric in SPECTRAL_METRICS:
        for name, d in spectral.items():
            out[f"{metric}:{name}"] = d[metric]
    return out
