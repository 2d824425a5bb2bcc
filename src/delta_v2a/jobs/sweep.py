"""The model sweep's comparison job: each pair's own outputs in, the agreement table, its figure
and the report's section out (docs/sweep.md). The comparison itself: delta_v2a.sweep."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.summary import Summary
from delta_v2a.jobs.common import Paths
from delta_v2a.plots import sweep_figure
from delta_v2a.storage import atomic_path
from delta_v2a.sweep import (
    PairOutcome,
    SweepSettings,
    agreement_lines,
    agreement_rows,
    agreement_tsv,
    figure_panels,
    section_html,
)

log = logging.getLogger(__name__)


def _text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def run_sweep(*, inputs: Paths, outputs: Paths, settings: SweepSettings) -> None:
    """Read every pair's summary.json, discovery matrix and labels; write the comparison."""
    outcomes = [
        PairOutcome(
            name=name,
            models=models,
            summary=Summary.read(summary),
            matrix=np.load(matrix, allow_pickle=False),
            labels=DiscoveryLabels.read(labels),
        )
        for name, models, summary, matrix, labels in zip(
            settings.pairs,
            settings.models,
            inputs.summaries,
            inputs.matrices,
            inputs.labels,
            strict=True,
        )
    ]
    _text(outputs.table, agreement_tsv(agreement_rows(outcomes)))
    lines = agreement_lines(outcomes)
    stand_in = any(o.summary.not_science for o in outcomes)
    note = "NOT SCIENCE: a pair ran on stand-in models" if stand_in else ""
    title = "Model sweep: each pair's Phase 1 discovery"
    sweep_figure(figure_panels(outcomes), outputs.figure, title, note)
    _text(outputs.section, section_html(lines))
    for line in lines:
        log.info("%s", line)
