"""``phase3/audio_dependence.json``: how much the audio can matter, measured before training
(docs/methods.md §6.2, §6.4).

Written by the ``phase3_strength`` job; read by ``phase3`` (its log line, the grid's cost in the
cost comparison, the copy in the training log). Where no pair was chosen the file holds only
``status`` and ``message``. The figure's other numbers (the spread, the share the description
explains, κ, the unreachable count, ...) are carried in ``details`` and written back at the top
level, so the file's field names stay the ones users see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from delta_v2a.artifacts import JsonArtifact

#: What a reader needs of a file with ``status: ok`` (absent where no pair was chosen).
_MEASURED = ("can_matter", "grid_size", "curve_cost")


@dataclasses.dataclass(frozen=True)
class AudioDependence(JsonArtifact):
    """``status`` (``ok``, or Phase 3's pair status where nothing was measured), the one-line
    ``message``, and for ``ok``: whether a decoder can beat text-only (``can_matter``), the
    strength grid's size and what the curves cost (``curve_cost``: CLAP calls, seconds)."""

    KIND: ClassVar[str] = "phase3_audio_dependence"
    VERSION: ClassVar[int] = 1

    status: str
    message: str
    can_matter: bool | None = None
    grid_size: int | None = None
    curve_cost: dict[str, Any] | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.details)
        for name in _MEASURED:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out | {"status": self.status, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        if data["status"] == "ok":
            missing = [name for name in _MEASURED if data.get(name) is None]
            if missing:
                raise ValueError(f"status ok but no {missing}")
        typed = {"status", "message", *_MEASURED}
        rest = {k: v for k, v in data.items() if k not in typed | {"artifact", "format_version"}}
        return cls(**{k: data.get(k) for k in typed}, details=rest)

    @classmethod
    def build(cls, fields: Mapping[str, Any]) -> Self:
        """From the strength job's figure: the typed fields by name, the rest into ``details``."""
        return cls.from_json(dict(fields))
