"""``training_log.json``: what Phase 3 trained, every figure from the test files, every baseline
and the verdict (docs/methods.md §6.3-6.6).

The tables, the report and the summary read the sections typed below by attribute; the
figure tables (candidate -> metric -> mean, interval, per-seed values), the sign tests of
``verdict.inference`` and the copies of other files (``meta``, ``audio_dependence``) keep
the shape of the functions that made them. A run that trained
nothing (``status: no_pairs``) holds ``meta``, ``status``, ``message``, ``verdict`` and
``pairs`` only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact
from delta_v2a.artifacts.pairs import ChosenPair, PairRow, Pairs, Significance


def _present(obj: Any, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dataclass's fields in order, those left at None dropped (absent from the file)."""
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if getattr(obj, f.name) is not None or f.name in keep
    }


@dataclasses.dataclass(frozen=True)
class PairsChoice:
    """The copy of ``pairs.json``'s decision the run trained on (§6.1; the types of
    :mod:`delta_v2a.artifacts.pairs`): its threshold, what significance it rested on, every
    pair row and the chosen pairs."""

    threshold: float | None = None
    significance: Significance | None = None
    rows: list[PairRow] = dataclasses.field(default_factory=list)
    chosen: list[ChosenPair] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, pairs: Pairs) -> Self:
        return cls(pairs.threshold, pairs.significance, list(pairs.rows), list(pairs.chosen))

    def pairs(self) -> list[tuple[str, str]]:
        """The (image effect, audio effect) pairs trained on, in the file's order."""
        return [(c.image_effect, c.audio_effect) for c in self.chosen]

    def to_json(self) -> dict[str, Any]:
        sig = self.significance
        return {
            "threshold": self.threshold,
            "significance": sig.to_json() if sig is not None else {},
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "chosen": [dataclasses.asdict(c) for c in self.chosen],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        sig = data.get("significance")
        return cls(
            threshold=data.get("threshold"),
            significance=Significance.from_json(sig) if sig else None,
            rows=[PairRow.from_json(r) for r in data.get("rows", [])],
            chosen=[ChosenPair.from_json(c) for c in data.get("chosen", [])],
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """Does the decoder use the audio (:func:`delta_v2a.phase3.evaluate.verdict`): every
    field but ``uses_audio`` and ``message`` is absent when nothing was trained."""

    uses_audio: bool | None
    status: str | None = None
    reason: str | None = None
    beats_text_only: bool | None = None
    shuffled_audio_hurts: bool | None = None
    text_only_baseline: str | None = None
    text_only_baseline_per_seed: list[str] | None = None
    seeds: list[int] | None = None
    seeds_passed: list[int] | None = None
    metric: str | None = None
    #: the per-seed sign tests (:meth:`delta_v2a.phase3.inference.Phase3Inference.to_dict`)
    inference: dict[str, Any] | None = None
    difference_text_only_minus_decoder: dict[str, Any] | None = None
    difference_shuffled_minus_decoder: dict[str, Any] | None = None
    beats: list[str] | None = None
    does_not_beat: list[str] | None = None
    message: str
    #: each seed's validation MSE of the text-only candidates (what chose ``text_only_baseline``)
    text_only_validation_mse: list[dict[str, float]] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.status is None:  # nothing was trained: the two fields that say so
            return _present(self, keep=("uses_audio", "message"))
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def seed_comparisons(self) -> list[dict[str, Any]]:
        """Each training seed's sign tests (``seed``, ``passed``, ``comparisons``)."""
        return list((self.inference or {}).get("seeds", []))


@dataclasses.dataclass(frozen=True)
class TestSection:
    """The figures on the test files (seen templates) and on the held-out paraphrases:
    candidate -> metric -> mean with its 95 % interval over files and its spread over seeds
    (:func:`delta_v2a.phase3.evaluate.evaluate_test`), and how they were made."""

    figures: dict[str, dict[str, dict[str, Any]]]
    paraphrase_figures: dict[str, dict[str, dict[str, Any]]]
    interval: str
    shuffled_spread: dict[str, Any] | None
    n_rendered: int
    render_seconds: float
    mel: dict[str, Any]
    metrics: dict[str, str]
    baselines: dict[str, str]
    text_lookup_unseen_keys: int

    __test__ = False  # not a pytest class, whatever its name


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingLog(JsonArtifact):
    """The phase3 job's record. ``status`` is ``trained`` or ``no_pairs`` (then ``message``
    says why and every training field is absent)."""

    KIND: ClassVar[str] = "training_log"
    VERSION: ClassVar[int] = 1

    meta: dict[str, Any]
    status: str
    message: str | None = None
    target: str | None = None
    verdict: Verdict
    audio_dependence: dict[str, Any] | None = None
    pairs: PairsChoice
    seeds: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    paramspace: dict[str, Any] | None = None
    windows: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    test: TestSection | None = None
    apply: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None

    @property
    def trained(self) -> bool:
        return self.status == "trained"

    @classmethod
    def untrained(
        cls, message: str, pairs: PairsChoice | None = None, meta: dict[str, Any] | None = None
    ) -> Self:
        """The log of a run that trained nothing (no pair passed), saying why."""
        verdict = Verdict(uses_audio=None, message=message)
        return cls(meta=meta or {}, status="no_pairs", message=message, verdict=verdict,
                   pairs=pairs or PairsChoice())  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        names = [f.name for f in dataclasses.fields(self) if f.name != "message"]
        out = _present(self, keep=tuple(names) if self.trained else ())
        out["verdict"] = self.verdict.to_json()
        out["pairs"] = self.pairs.to_json()
        if self.test is not None:
            out["test"] = _present(self.test, keep=("shuffled_spread",))
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        fields["verdict"] = Verdict(**data["verdict"])
        fields["pairs"] = PairsChoice.from_json(data["pairs"])
        if data.get("test") is not None:
            fields["test"] = TestSection(**data["test"])
        return cls(**fields)
