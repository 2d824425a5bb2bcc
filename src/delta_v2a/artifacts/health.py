"""``health/{image,audio}.json``: one model's health report (docs/methods.md §3).

Written by the ``health`` job (the figures of :func:`delta_v2a.models.health_check` and the
modality); read by the health gate of every job that embeds or reads deltas
(:func:`delta_v2a.jobs.common.gate_health`: Phase 0, Phase 1, Phase 3's data set), which copies
it into Phase 0's ``meta`` and Phase 1's labels, and by the summary. The file holds the seed's
keys in the seed's order, with ``artifact`` and ``format_version`` added at the top.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from delta_v2a.artifacts import JsonArtifact


@dataclasses.dataclass(frozen=True)
class HealthReport(JsonArtifact):
    """The model's provenance (``model``: :meth:`EmbedderInfo.to_dict`), the mean pairwise
    cosine of unrelated prompts and (audio) of contrasting clips against ``limit``, each input's
    cosine distance alone vs batched (``batch_max_cosine_distance``: per part, text and media)
    against ``batch_limit``, the verdict, its one-line ``message`` and the ``modality``."""

    KIND: ClassVar[str] = "model_health"
    VERSION: ClassVar[int] = 1

    model: dict[str, Any]
    text_mean_pairwise_cosine: float | None
    audio_mean_pairwise_cosine: float | None
    limit: float
    batch_max_cosine_distance: dict[str, float]
    batch_limit: float
    passed: bool
    message: str
    modality: str

    @property
    def model_name(self) -> str:
        return str(self.model.get("name_or_path", "?"))

    def mean_pairwise_cosine(self, part: str) -> float | None:
        """The collapse figure the gate reads for ``part``: 'text' (unrelated prompts) or
        'media' (contrasting clips; None for an image tower, which has no such figure)."""
        return (
            self.audio_mean_pairwise_cosine if part == "media" else self.text_mean_pairwise_cosine
        )

    def figures(self) -> dict[str, Any]:
        """What Phase 1's labels record of the report (the figures, verdict and model name)."""
        keys = ("text_mean_pairwise_cosine", "audio_mean_pairwise_cosine", "limit", "passed")
        return {k: getattr(self, k) for k in keys} | {"model": self.model.get("name_or_path")}
