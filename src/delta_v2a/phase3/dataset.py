"""Phase 3 data set: pairs from the discovery matrix, descriptions, the split, the samples
(docs/methods.md sections 6.1 and 6.3)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.phase3.paramspace import ParamSpace

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: Descriptions of nothing an image effect does: unrelated controls of ``apply``'s gate
#: (docs/methods.md §6.7), which must refuse every one, so that a text tower that cannot tell
#: descriptions apart refuses paraphrases rather than accepting anything.
CONTROL_DESCRIPTIONS = (
    "a cat playing piano",
    "a bowl of soup on a wooden table",
    "a crowded train station at rush hour",
    "an old map of a harbour town",
    "two dogs running on a beach",
    "a spreadsheet of quarterly sales figures",
    "a red bicycle leaning on a wall",
    "a plate of sushi",
)
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
    "template",
    "held_out",
    "description",
)


# --------------------------------------------------------------------------- pairs


def choose_pairs(
    matrix: np.ndarray,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
    threshold: float,
    phase1_chosen: Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """One row per image effect: the audio effect Phase 3 would learn, and whether it does.

    Phase 1 alone decides which pairs are significant (its ``chosen_pairs``, with why); Phase 3
    only applies its own floor on top: a used pair's score must be strictly above
    ``threshold``. ``phase1_chosen=None`` is the score-only exercise mode
    (phase3.require_significant_pairs: false): each row's best finite score, never evidence.
    """
    score = np.asarray(matrix, dtype=np.float64)
    shape = (len(image_effects), len(audio_effects))
    if score.shape != shape:
        raise ValueError(
            f"discovery matrix has shape {score.shape}, labels say "
            f"{len(image_effects)} image × {len(audio_effects)} audio effects"
        )
    picked = None if phase1_chosen is None else {c["image_effect"]: c for c in phase1_chosen}
    rows = []
    for i, image_effect in enumerate(image_effects):
        row: dict[str, Any] = {"image_effect": image_effect, "audio_effect": None, "score": None}
        row["p_adjusted"] = None
        finite = np.isfinite(score[i])
        if picked is not None and image_effect not in picked:
            rows.append({**row, "chosen": False, "reason": "Phase 1 chose no pair for it"})
            continue
        if picked is None and not finite.any():
            rows.append({**row, "chosen": False, "reason": "no finite score in its row"})
            continue
        if picked is None:
            j, p = int(np.argmax(np.where(finite, score[i], -np.inf))), None
        else:
            j, p = list(audio_effects).index(picked[image_effect]["audio_effect"]), None
            p = picked[image_effect].get("p_adjusted")
        best = float(score[i, j])
        chosen = best > threshold
        reason = None if chosen else f"score {best:.4g} <= phase3.pair_threshold {threshold:g}"
        rows.append(
            {
                **row,
                "audio_effect": str(audio_effects[j]),
                "score": best,
                "p_adjusted": p,
                "chosen": chosen,
                "reason": reason,
            }
        )
    return rows


def pair_significance(
    rows: list[dict[str, Any]],
    audio_effects: Sequence[str],
    p_adjusted: Sequence[Sequence[float | None]] | None,
    alpha: float,
    required: bool,
) -> dict[str, Any]:
    """What significance the chosen pairs rest on (docs/methods.md §6.1), said in every
    output. Where it was not required, each row with an audio effect gets its p-value back
    so that the log shows how far from significant the score-only pair is."""
    if p_adjusted is None:
        return {
            "available": False,
            "alpha": alpha,
            "note": "discovery_labels.json has no p_adjusted: pairs chosen on score alone, "
            "WITHOUT a significance test",
        }
    if required:
        return {"available": True, "required": True, "alpha": alpha, "note": "p_adjusted <= alpha"}
    audio = list(audio_effects)
    for i, r in enumerate(rows):
        if r["audio_effect"] is not None:
            r["p_adjusted"] = p_adjusted[i][audio.index(r["audio_effect"])]
    return {
        "available": True,
        "required": False,
        "alpha": alpha,
        "note": "NOT REQUIRED (phase3.require_significant_pairs: false): pairs chosen on "
        "score alone; they are not evidence of a correspondence, whatever the decoder does",
    }


def no_pairs_message(
    threshold: float, significance: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> str:
    """Why Phase 3 trains nothing, with the best score that was eligible."""
    best = max((r["score"] for r in rows if r["score"] is not None), default=None)
    required = significance.get("required", significance["available"])
    return (
        f"NO PAIR passes phase3.pair_threshold = {threshold:g}"
        + (f" with p_adjusted <= {significance['alpha']:g}" if required else "")
        + f" (best eligible score {'none' if best is None else f'{best:.4g}'}): Phase 3 has "
        "nothing to learn and trains no decoder. Lower the threshold knowingly, or check Phase 1."
    )


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


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """How many of ``n`` audio files each split gets (the rule :func:`split_files` applies):
    ``round(fraction * n)`` validation and test files, at least one each, the rest (at least
    one) train. The workflow reads it at parse time to say how many test files a data folder
    gives before any job runs (delta_v2a.config.check_data_size)."""
    if n < 3:
        raise ValueError(f"Phase 3 needs at least 3 audio files (train, val, test), got {n}")
    n_test = min(max(1, round(fractions["test"] * n)), n - 2)
    n_val = min(max(1, round(fractions["val"] * n)), n - 1 - n_test)
    return {"train": n - n_test - n_val, "val": n_val, "test": n_test}


def split_files(categories: Sequence[str], fractions: Mapping[str, float], seed: int) -> np.ndarray:
    """Each file's split ("train" / "val" / "test"), by file, seeded, stratified by genre.

    Counts: ``round(fraction * n)`` validation and test files, at least one each, the rest
    (at least one) train. Stratification: each genre's files are shuffled, then the genres are
    interleaved (first file of every genre, then the second, ...) and the sequence is cut into
    test, validation, train, so every split draws from as many genres as its size allows.
    """
    n = len(categories)
    counts = split_counts(n, fractions)
    n_test, n_val = counts["test"], counts["val"]
    rng = np.random.default_rng([seed, 101])
    by_genre: dict[str, list[int]] = {}
    for f, c in enumerate(categories):
        by_genre.setdefault(str(c), []).append(f)
    genres = sorted(by_genre)
    queues = [list(rng.permutation(by_genre[g])) for g in rng.permutation(genres)]
    order: list[int] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(int(q.pop(0)))
    split = np.full(n, "train", dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_val]] = "val"
    return split.astype(str)


def build_samples(
    paths: Sequence[str],
    categories: Sequence[str],
    pairs: Sequence[Mapping[str, Any]],
    *,
    levels_per_pair: int,
    level_words: Sequence[str],
    templates: Mapping[str, Sequence[str]],
    heldout_templates: int,
    validation_templates: int,
    split: Sequence[str],
    seed: int,
) -> pd.DataFrame:
    """The sample list: file × pair × ``levels_per_pair`` image levels θ.

    Levels are stratified: the k-th θ of a (file, pair) is uniform in ``[k / n, (k + 1) / n)``.
    The last ``heldout_templates`` templates of each image effect are held out: every sample
    gets one of the templates before them at random, and each test sample is repeated once
    with a held-out template (same θ, ``held_out`` True) so paraphrases are scored on test only.
    The ``validation_templates`` before those reach no sample: they are apply's validation
    paraphrases (delta_v2a.phase3.calibrate), so no sample trains on them.
    ``split`` is each file's split (delta_v2a.split: decided once for Phases 1 and 3).
    """
    rng = np.random.default_rng([seed, 202])
    rows: list[dict[str, Any]] = []
    for f, (path, category) in enumerate(zip(paths, categories, strict=True)):
        for pair in pairs:
            effect = pair["image_effect"]
            tpl = list(templates[effect])
            n_seen = len(tpl) - heldout_templates - validation_templates
            if n_seen < 1:
                raise ValueError(
                    f"image effect {effect!r} has {len(tpl)} template(s): {heldout_templates} "
                    f"held out for test and {validation_templates} for validation leave none "
                    "to train on"
                )
            thetas = (np.arange(levels_per_pair) + rng.uniform(size=levels_per_pair)) / (
                levels_per_pair
            )
            for theta in thetas:
                word = level_word(float(theta), level_words)
                seen = int(rng.integers(n_seen))
                choices = [(seen, False)]
                if split[f] == "test" and heldout_templates:
                    first_held = len(tpl) - heldout_templates
                    choices.append((first_held + int(rng.integers(heldout_templates)), True))
                for t, held in choices:
                    rows.append(
                        {
                            "sample": len(rows),
                            "file_index": f,
                            "path": str(path),
                            "category": str(category),
                            "split": str(split[f]),
                            "image_effect": effect,
                            "audio_effect": pair["audio_effect"],
                            "level": float(theta),
                            "level_word": word,
                            "template": t,
                            "held_out": held,
                            "description": describe(tpl[t], word),
                        }
                    )
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))


def targets_for(samples: pd.DataFrame, space: ParamSpace, column: str = "level") -> np.ndarray:
    """(N, dim) normalised target vectors: each sample's audio effect at ``samples[column]``
    (``level`` = θ itself for ``target: level``; ``u_star`` for ``target: matched``)."""
    out = np.zeros((len(samples), space.dim), dtype=np.float32)
    for i, (effect, u) in enumerate(zip(samples["audio_effect"], samples[column], strict=True)):
        out[i] = space.target(effect, float(u))
    return out
