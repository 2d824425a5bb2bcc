"""Phase 3 data set: pairs from the discovery matrix, descriptions, the sample list."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.phase3.paramspace import ParamSpace

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


# --------------------------------------------------------------------------- pairs


def choose_pairs(
    matrix: np.ndarray,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
    threshold: float,
) -> list[dict[str, Any]]:
    """One row per image effect: its best audio effect, its score, and whether it passes.

    A pair passes when its score is strictly above ``threshold``. NaN scores (no usable
    prototype) never win. Two image effects may pick the same audio effect.
    """
    score = np.asarray(matrix, dtype=np.float64)
    if score.shape != (len(image_effects), len(audio_effects)):
        raise ValueError(
            f"discovery matrix has shape {score.shape}, labels say "
            f"{len(image_effects)} image × {len(audio_effects)} audio effects"
        )
    rows = []
    for i, image_effect in enumerate(image_effects):
        finite = np.isfinite(score[i])
        if not finite.any():
            rows.append(
                {
                    "image_effect": image_effect,
                    "audio_effect": None,
                    "score": None,
                    "chosen": False,
                    "reason": "no finite score in its row",
                }
            )
            continue
        j = int(np.argmax(np.where(finite, score[i], -np.inf)))
        best = float(score[i, j])
        chosen = best > threshold
        rows.append(
            {
                "image_effect": image_effect,
                "audio_effect": str(audio_effects[j]),
                "score": best,
                "chosen": chosen,
                "reason": None if chosen else f"best score {best:.4g} <= threshold {threshold:g}",
            }
        )
    return rows


# --------------------------------------------------------------------------- descriptions


def level_word(level: float, words: Sequence[str]) -> str:
    """The word for a level in [0, 1]: equal bins, weakest word first."""
    n = len(words)
    return words[min(int(level * n), n - 1)]


def describe(template: str, word: str) -> str:
    """Fill ``{level}``; "a" before a vowel becomes "an" ("an extremely blurry photo")."""
    text = template.format(level=word)
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


# --------------------------------------------------------------------------- data set


def split_files(n_files: int, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation files: ``round(val_fraction * n)`` of them, at least one on
    each side, chosen by a seeded permutation."""
    if n_files < 2:
        raise ValueError(
            f"Phase 3 needs at least 2 audio files to hold one out for validation, got {n_files}"
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = min(max(1, round(val_fraction * n_files)), n_files - 1)
    perm = np.random.default_rng([seed, 101]).permutation(n_files)
    is_val = np.zeros(n_files, dtype=bool)
    is_val[perm[:n_val]] = True
    return is_val


def build_samples(
    paths: Sequence[str],
    categories: Sequence[str],
    pairs: Sequence[Mapping[str, Any]],
    *,
    levels_per_pair: int,
    level_words: Sequence[str],
    templates: Mapping[str, str],
    val_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """The sample list: file × pair × ``levels_per_pair`` levels.

    Levels are stratified: the k-th level of a (file, pair) is uniform in
    ``[k / n, (k + 1) / n)``, so every level word is drawn equally often for every file.
    """
    is_val = split_files(len(paths), val_fraction, seed)
    rng = np.random.default_rng([seed, 202])
    rows = []
    for f, (path, category) in enumerate(zip(paths, categories, strict=True)):
        for pair in pairs:
            levels = (np.arange(levels_per_pair) + rng.uniform(size=levels_per_pair)) / (
                levels_per_pair
            )
            for u in levels:
                word = level_word(float(u), level_words)
                rows.append(
                    {
                        "sample": len(rows),
                        "file_index": f,
                        "path": str(path),
                        "category": str(category),
                        "split": "val" if is_val[f] else "train",
                        "image_effect": pair["image_effect"],
                        "audio_effect": pair["audio_effect"],
                        "level": float(u),
                        "level_word": word,
                        "description": describe(templates[pair["image_effect"]], word),
                    }
                )
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))


def targets_for(samples: pd.DataFrame, space: ParamSpace) -> np.ndarray:
    """(N, dim) normalised target vectors of the sample list."""
    out = np.zeros((len(samples), space.dim), dtype=np.float32)
    for i, (effect, level) in enumerate(
        zip(samples["audio_effect"], samples["level"], strict=True)
    ):
        out[i] = space.target(effect, float(level))
    return out
