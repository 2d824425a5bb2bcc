"""``pairs.json``: the pairs Phase 3 learns and the data set it built for them
(docs/methods.md §6.1, §6.3).

Written by the ``phase3_dataset`` job; read by ``phase3_strength``, ``phase3`` (training, the
model file, the training log) and ``transfer_examples``. The head (the choice and what it rests
on) is always there; the data set (:class:`PairsData`: templates, gate texts, the parameter
space, the split) only where a pair was chosen (``status: ok``). The file is flat: the data
set's fields sit beside the head's, under the names users already see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact

if TYPE_CHECKING:
    from delta_v2a.phase3.paramspace import ParamSpace


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: data[f.name] for f in dataclasses.fields(cls)}


@dataclasses.dataclass(frozen=True)
class PairRow:
    """One image effect's candidate pair: its best audio effect (None where it has none),
    the score and adjusted p-value, whether Phase 3 uses it, and why not (None if used)."""

    image_effect: str
    audio_effect: str | None
    score: float | None
    p_adjusted: float | None
    chosen: bool
    reason: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_fields(cls, data))


@dataclasses.dataclass(frozen=True)
class ChosenPair:
    """A pair Phase 3 trains on (a chosen :class:`PairRow` without the choice)."""

    image_effect: str
    audio_effect: str
    score: float
    p_adjusted: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_fields(cls, data))

    @classmethod
    def of(cls, row: PairRow) -> Self:
        if row.audio_effect is None or row.score is None:
            raise ValueError(f"{row.image_effect}: a chosen pair needs an audio effect and score")
        return cls(row.image_effect, row.audio_effect, row.score, row.p_adjusted)


@dataclasses.dataclass(frozen=True)
class Significance:
    """What significance the chosen pairs rest on: ``available`` (Phase 1 had p-values),
    ``required`` (None where not available: the file then has no such key), ``alpha``, and a
    note every output repeats."""

    available: bool
    alpha: float
    note: str
    required: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"available": self.available}
        if self.required is not None:
            out["required"] = self.required
        return out | {"alpha": self.alpha, "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(data["available"], data["alpha"], data["note"], data.get("required"))


@dataclasses.dataclass(frozen=True)
class FileSplit:
    """The audio files of each split (as the samples use them) and the configured fractions."""

    fractions: dict[str, float]
    train_files: list[str]
    val_files: list[str]
    test_files: list[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_fields(cls, data))


@dataclasses.dataclass(frozen=True)
class PairsData:
    """The data set built for the chosen pairs: per trained image effect its templates, the
    held-out (test) and validation templates, apply's gate texts (rows of
    :func:`delta_v2a.phase3.calibrate.gate_texts`), every embedded description, the audio
    parameter space (:meth:`ParamSpace.to_dict`), the split and the levels per pair."""

    templates: dict[str, list[str]]
    heldout_templates: dict[str, list[str]]
    validation_templates: dict[str, list[str]]
    gate_texts: list[dict[str, Any]]
    texts: list[str]
    paramspace: dict[str, Any]
    split: FileSplit
    levels_per_pair: int

    def space(self) -> ParamSpace:
        from delta_v2a.phase3.paramspace import ParamSpace

        return ParamSpace.from_dict(self.paramspace)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"split": dataclasses.asdict(self.split)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"status ok but no data set fields {missing}")
        return cls(**_fields(cls, data) | {"split": FileSplit.from_json(data["split"])})


@dataclasses.dataclass(frozen=True)
class Pairs(JsonArtifact):
    """Phase 3's pair choice (``rows``: one per image effect; ``chosen``: the pairs it trains
    on; ``significance``: what they rest on), the level words and seed it used, why
    (``message``), the models' provenance (``meta``) and, where a pair was chosen, the data
    set (``data``; None for ``status: no_pairs``)."""

    KIND: ClassVar[str] = "phase3_pairs"
    VERSION: ClassVar[int] = 1

    threshold: float
    significance: Significance
    rows: list[PairRow]
    chosen: list[ChosenPair]
    level_words: list[str]
    seed: int
    message: str
    meta: dict[str, Any]
    data: PairsData | None = None

    @property
    def status(self) -> str:
        """``ok`` where a data set was built, ``no_pairs`` where nothing passed."""
        return "no_pairs" if self.data is None else "ok"

    def pairs(self) -> list[tuple[str, str]]:
        """The (image effect, audio effect) pairs Phase 3 trains on, in the file's order."""
        return [(c.image_effect, c.audio_effect) for c in self.chosen]

    def choice_json(self) -> dict[str, Any]:
        """The choice as the file holds it (threshold, significance, rows, chosen): what the
        training log and the model file copy."""
        return {
            "threshold": self.threshold,
            "significance": self.significance.to_json(),
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "chosen": [dataclasses.asdict(c) for c in self.chosen],
        }

    def to_json(self) -> dict[str, Any]:
        head = self.choice_json() | {"level_words": self.level_words, "seed": self.seed}
        head |= {"status": self.status, "message": self.message, "meta": self.meta}
        return head | (self.data.to_json() if self.data is not None else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("status") not in ("ok", "no_pairs"):
            raise ValueError(f"status {data.get('status')!r} is neither 'ok' nor 'no_pairs'")
        return cls(
            threshold=data["threshold"],
            significance=Significance.from_json(data["significance"]),
            rows=[PairRow.from_json(r) for r in data["rows"]],
            chosen=[ChosenPair.from_json(c) for c in data["chosen"]],
            level_words=list(data["level_words"]),
            seed=data["seed"],
            message=data["message"],
            meta=dict(data["meta"]),
            data=PairsData.from_json(data) if data["status"] == "ok" else None,
        )
