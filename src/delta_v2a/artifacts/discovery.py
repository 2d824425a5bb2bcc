"""``discovery_labels.json``: what Phase 1 decided and how (docs/methods.md §5).

Phase 3, the tables, the summary, the report and ``delta-v2a transfer`` read the fields below;
everything else the file holds (how each number was made, templates, synonyms, prompts, foils,
stability, health, meta) is carried in ``details`` and written back at the top level, so the
file's field names stay the ones users see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from delta_v2a.artifacts import JsonArtifact


def _matrix(rows: Any) -> np.ndarray:
    """A JSON matrix (null = undefined) as floats with NaN."""
    return np.asarray(
        [[np.nan if v is None else float(v) for v in row] for row in rows or []], dtype=float
    )


@dataclasses.dataclass(frozen=True)
class DiscoveryLabels(JsonArtifact):
    """Phase 1's axes, its cell p-values and the pairs it chose (the one decision of
    significance: ``chosen_pairs``). Matrices are rows = image effects, columns = audio
    effects, JSON null where undefined."""

    KIND: ClassVar[str] = "discovery_labels"
    VERSION: ClassVar[int] = 1

    image_effects: list[str]
    audio_effects: list[str]
    alpha: float
    correction: str
    p: list[list[float | None]]
    p_adjusted: list[list[float | None]]
    chosen_pairs: list[dict[str, Any]]
    sim1: dict[str, float | None]
    sim2: dict[str, float | None]
    sim3: list[list[float | None]]
    best_matches: list[dict[str, Any]]
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**out.pop("details"), **out}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)} - {"details"}
        rest = {k: v for k, v in data.items() if k not in names | {"artifact", "format_version"}}
        return cls(**{k: data[k] for k in names}, details=rest)

    @classmethod
    def build(cls, fields: Mapping[str, Any]) -> Self:
        """From the job's labels: the typed fields by name, the rest into ``details``."""
        return cls.from_json(dict(fields))

    def p_adjusted_matrix(self) -> np.ndarray:
        return _matrix(self.p_adjusted)

    def p_matrix(self) -> np.ndarray:
        return _matrix(self.p)

    def sim3_matrix(self) -> np.ndarray:
        return _matrix(self.sim3)

    def pairs(self) -> set[tuple[str, str]]:
        """The (image effect, audio effect) pairs Phase 1 chose."""
        return {(c["image_effect"], c["audio_effect"]) for c in self.chosen_pairs}

    def cell(self, image: str, audio: str) -> tuple[int, int]:
        """Row and column of a pair (ValueError naming the effect if it is not in the matrix)."""
        for name, axis in ((image, self.image_effects), (audio, self.audio_effects)):
            if name not in axis:
                raise ValueError(f"{name!r} is not one of Phase 1's effects {axis}")
        return self.image_effects.index(image), self.audio_effects.index(audio)
