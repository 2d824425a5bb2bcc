"""A model's typed health report for tests (delta_v2a.artifacts.health): a passing report with
plausible figures, each overridable, so a test names only the fields it is about."""

from __future__ import annotations

from typing import Any

from delta_v2a.artifacts.health import HealthReport


def health_report(**kw: Any) -> HealthReport:
    fields: dict[str, Any] = {
        "model": {"name_or_path": "tiny-model"},
        "text_mean_pairwise_cosine": 0.5,
        "audio_mean_pairwise_cosine": None,
        "limit": 0.95,
        "batch_max_cosine_distance": {"text": 0.0, "media": 0.0},
        "batch_limit": 1e-3,
        "passed": True,
        "message": "tiny-model: passed health check",
        "modality": "image",
    }
    return HealthReport(**(fields | kw))
