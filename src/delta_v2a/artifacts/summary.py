"""``summary.json``: every phase's verdict in one place.

Written by the ``summary`` job (the verdicts: :func:`delta_v2a.report.summary.summarise`); read
by the ``tables`` job (the verdict tables) and the model sweep (each pair's verdicts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact


@dataclasses.dataclass(frozen=True)
class PhaseVerdict:
    """One phase's verdict: its name as the summary prints it, ``ok``/``FAILED``/..., and its
    lines (the first says why where it failed)."""

    phase: str
    status: str
    lines: list[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["phase"]), str(data["status"]), list(data["lines"]))


@dataclasses.dataclass(frozen=True)
class Summary(JsonArtifact):
    """The run's verdicts: whether it ran on stand-in models (``not_science``, ``note``), one
    :class:`PhaseVerdict` per phase in order, the names of the failed phases and the pairs
    Phase 3 trained on (``phase3_pairs``: ``pairs`` and their ``basis``)."""

    KIND: ClassVar[str] = "summary"
    VERSION: ClassVar[int] = 1

    not_science: bool
    note: str
    phases: list[PhaseVerdict]
    failed: list[str]
    phase3_pairs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"phases": [dataclasses.asdict(p) for p in self.phases]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            not_science=bool(data["not_science"]),
            note=str(data["note"]),
            phases=[PhaseVerdict.from_json(p) for p in data["phases"]],
            failed=list(data["failed"]),
            phase3_pairs=dict(data["phase3_pairs"]),
        )

    def status(self, phase: str) -> str:
        """A phase's status ("ok", "FAILED", ...), or "absent" where the summary lacks it."""
        return next((p.status for p in self.phases if p.phase == phase), "absent")
