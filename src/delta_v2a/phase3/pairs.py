"""What ``pairs.json`` holds, made without I/O (docs/methods.md §6.1, §6.3): the pair choice
from Phase 1's matrix and labels, and the data set record of the chosen pairs (templates,
gate texts, parameter space, split). The ``phase3_dataset`` job reads, calls these, writes.

A module of its own because the record needs both :mod:`.dataset` and :mod:`.calibrate`,
and :mod:`.calibrate` imports :mod:`.dataset`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import (
    ChosenPair,
    FileSplit,
    PairRow,
    Pairs,
    PairsData,
    Significance,
)
from delta_v2a.phase3.calibrate import gate_texts, template_roles
from delta_v2a.phase3.dataset import SPLITS, choose_pairs, no_pairs_message, pair_significance
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config


@dataclasses.dataclass(frozen=True)
class PairChoice:
    """One row per image effect and what significance the chosen ones rest on."""

    threshold: float
    significance: Significance
    rows: list[PairRow]

    @property
    def chosen(self) -> list[ChosenPair]:
        return [ChosenPair.of(r) for r in self.rows if r.chosen]


def pick_pairs(
    matrix: np.ndarray, labels: DiscoveryLabels, threshold: float, require_significant: bool
) -> PairChoice:
    """:func:`~.dataset.choose_pairs` and :func:`~.dataset.pair_significance` (section 6.1).

    Phase 1's ``chosen_pairs`` are the one decision of significance; ``require_significant:
    false`` (phase3.require_significant_pairs) chooses on score alone so that Phase 3 can be
    exercised where Phase 1 found nothing (the tiny demo models); each row keeps its p-value
    and every output says the pairs are not evidence."""
    rows = choose_pairs(
        matrix,
        labels.image_effects,
        labels.audio_effects,
        threshold,
        labels.chosen_pairs if require_significant else None,
    )
    significance = pair_significance(
        rows, labels.audio_effects, labels.p_adjusted, labels.alpha, require_significant
    )
    return PairChoice(
        threshold,
        Significance.from_json(significance),
        [PairRow.from_json(r) for r in rows],
    )


def no_pairs(
    choice: PairChoice, level_words: Sequence[str], seed: int, meta: Mapping[str, Any]
) -> Pairs:
    """pairs.json where nothing passed: the choice and why, no data set."""
    message = no_pairs_message(
        choice.threshold,
        choice.significance.to_json(),
        [dataclasses.asdict(r) for r in choice.rows],
    )
    return _pairs(choice, level_words, seed, message, meta, None)


def _pairs(
    choice: PairChoice,
    level_words: Sequence[str],
    seed: int,
    message: str,
    meta: Mapping[str, Any],
    data: PairsData | None,
) -> Pairs:
    return Pairs(
        threshold=choice.threshold,
        significance=choice.significance,
        rows=list(choice.rows),
        chosen=choice.chosen,
        level_words=list(level_words),
        seed=seed,
        message=message,
        meta=dict(meta),
        data=data,
    )


def validation_templates(templates: Sequence[str], heldout: int, validation: int) -> list[str]:
    """The templates that only calibrate apply's gate (neither trained on nor test)."""
    roles = template_roles(len(templates), heldout, validation)
    return [t for t, role in zip(templates, roles, strict=True) if role == "val"]


def pair_space(
    chosen: Sequence[ChosenPair],
    audio_effects: Mapping[str, Mapping[str, Any]],
    intensities: Sequence[str],
    sample_rate: int,
    bypass_below: float,
) -> ParamSpace:
    """The decoder's parameter space: the chosen audio effects, in the configured order."""
    selected = {c.audio_effect for c in chosen}
    order = [e for e in audio_effects if e in selected]
    config = {"intensities": list(intensities), "effects": {"audio": audio_effects}}
    return audio_space_from_config(config, order, sample_rate, bypass_below)


@dataclasses.dataclass(frozen=True)
class Descriptions:
    """The configured templates per image effect and how many of each are held out for test
    and set aside for apply's validation (the last ones, in that order)."""

    templates: Mapping[str, Sequence[str]]
    heldout: int
    validation: int
    level_words: Sequence[str]


def gate_for(chosen: Sequence[ChosenPair], desc: Descriptions) -> list[dict[str, Any]]:
    """apply's gate texts (docs/methods.md §6.7): references of the effects not trained on,
    validation and test paraphrases, near misses and unrelated controls."""
    used = sorted({c.image_effect for c in chosen})
    return gate_texts(desc.templates, used, desc.level_words, desc.heldout, desc.validation)


def distinct_texts(samples: pd.DataFrame, gate: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every description to embed, each once: the samples' then the gate's, first seen first."""
    return list(dict.fromkeys([*samples["description"], *(g["text"] for g in gate)]))


def files_by_split(samples: pd.DataFrame) -> dict[str, list[str]]:
    """The sorted audio files of each split, as the samples use them."""
    return {name: sorted(set(samples.loc[samples["split"] == name, "path"])) for name in SPLITS}


def dataset_pairs(
    choice: PairChoice,
    desc: Descriptions,
    seed: int,
    meta: Mapping[str, Any],
    *,
    samples: pd.DataFrame,
    gate: Sequence[Mapping[str, Any]],
    texts: Sequence[str],
    space: ParamSpace,
    fractions: Mapping[str, float],
    levels_per_pair: int,
) -> Pairs:
    """pairs.json of a built data set: the choice, and per trained image effect its templates,
    held-out and validation templates, with the gate texts, the embedded ``texts``
    (:func:`distinct_texts`), the parameter space and the split."""
    used = {c.image_effect for c in choice.chosen}
    tpl = {e: list(desc.templates[e]) for e in desc.templates if e in used}
    by_split = files_by_split(samples)
    data = PairsData(
        templates=tpl,
        heldout_templates={e: t[len(t) - desc.heldout :] for e, t in tpl.items()},
        validation_templates={
            e: validation_templates(t, desc.heldout, desc.validation) for e, t in tpl.items()
        },
        gate_texts=[dict(g) for g in gate],
        texts=list(texts),
        paramspace=space.to_dict(),
        split=FileSplit(dict(fractions), *(by_split[k] for k in SPLITS)),
        levels_per_pair=levels_per_pair,
    )
    message = f"{len(choice.chosen)} pair(s) chosen"
    return _pairs(choice, desc.level_words, seed, message, meta, data)
