"""The ``summary`` job: every phase's verdict in one place, loud on failures (the verdicts:
delta_v2a.report.summary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.health import HealthReport
from delta_v2a.artifacts.phase0 import CrossCategoryVariance, LinearityResults, SensitivityResults
from delta_v2a.artifacts.summary import Summary
from delta_v2a.artifacts.training_log import TrainingLog
from delta_v2a.jobs.common import Paths, log
from delta_v2a.report.summary import format_summary, summarise
from delta_v2a.storage import atomic_path


def run_summary(*, inputs: Paths, outputs: Paths) -> None:
    """Every phase's verdict, from the phases' own records, printed at the end of the run."""
    summary = summarise(
        health=[HealthReport.read(p) for p in inputs.health],
        sensitivity=SensitivityResults.read(inputs.sensitivity),
        linearity=LinearityResults.read(inputs.linearity),
        cross=CrossCategoryVariance.read(inputs.cross),
        discovery=np.load(inputs.matrix, allow_pickle=False),
        labels=DiscoveryLabels.read(inputs.labels),
        training_log=TrainingLog.read(inputs.training_log),
    )
    text = format_summary(summary)
    Summary.from_json(summary).write(outputs.json)
    with atomic_path(outputs.text) as tmp:
        Path(tmp).write_text(text + "\n", encoding="utf-8")
    for line in text.splitlines():
        (log.warning if summary["failed"] else log.info)("%s", line)
