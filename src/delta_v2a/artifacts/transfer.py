"""``transfer/examples.json``: the demo's photo edits transferred onto held-out songs.

Written by the ``transfer_examples`` job (:func:`delta_v2a.jobs.transfer.run_examples`, each
record one (edited photo, song) with both routes' reports from
:func:`delta_v2a.transfer.usecase.transfer`); read by the ``tables`` job (the report's Transfer
section) and :func:`delta_v2a.transfer.examples.example_pages`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact

#: the fields an "ok" file holds, in the order the job has always written them
_OK_FIELDS = ("status", "not_science", "note", "photo", "split", "seconds", "examples")


@dataclasses.dataclass(frozen=True)
class TransferExamples(JsonArtifact):
    """Either ``status == "ok"`` with the examples (``examples``: one record per edit level and
    song: ``song``, ``split``, ``edit_effect``, ``edit_level``, ``edit_params``, ``decoder`` and
    ``exact`` (each ``refused``, ``wav`` and the use case's report) and ``report`` (the printed
    lines per route)), or ``"unavailable"`` with the ``message`` saying why there are none."""

    KIND: ClassVar[str] = "transfer_examples"
    VERSION: ClassVar[int] = 1

    status: str
    message: str = ""
    not_science: bool = False
    note: str = ""
    photo: str | None = None
    split: str | None = None
    seconds: float | None = None
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def unavailable(cls, why: str) -> Self:
        """The file for a model file that holds nothing to transfer with."""
        return cls(status="unavailable", message=why)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The fields the job wrote before the file was typed (no others)."""
        if not self.ok:
            return {"status": self.status, "message": self.message}
        return {name: getattr(self, name) for name in _OK_FIELDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        seconds = data.get("seconds")
        return cls(
            status=str(data["status"]),
            message=str(data.get("message", "")),
            not_science=bool(data.get("not_science", False)),
            note=str(data.get("note", "")),
            photo=data.get("photo"),
            split=data.get("split"),
            seconds=None if seconds is None else float(seconds),
            examples=[dict(r) for r in data.get("examples", [])],
        )
