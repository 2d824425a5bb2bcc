"""The model health job (rules/extract.smk: health): is the model usable at all?"""

from __future__ import annotations

from delta_v2a.artifacts.health import HealthReport
from delta_v2a.jobs.common import Paths, load_embedder_for_job, log
from delta_v2a.settings import HealthSettings


def run_health(*, inputs: Paths, outputs: Paths, settings: HealthSettings, threads: int) -> None:
    """Mean pairwise cosine of unrelated prompts (and contrasting clips), and each input alone
    vs in a batch (the determinism gate), whatever the verdict."""
    modality = settings.model.modality
    from delta_v2a.models import contrasting_clips, contrasting_images, health_check

    embedder = load_embedder_for_job(settings.model, threads)
    audio = modality == "audio"
    clips = contrasting_clips(embedder.sampling_rate, embedder.window_samples) if audio else None
    images = None if audio else contrasting_images(embedder.input_size)
    figures = health_check(
        embedder, clips=clips, images=images, limit=settings.limit, batch_limit=settings.batch_limit
    )
    report = HealthReport.from_json(figures | {"modality": modality})
    report.write(outputs.health)
    (log.info if report.passed else log.warning)("health %s: %s", modality, report.message)
