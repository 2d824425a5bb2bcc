"""The ``tables`` job: every ``results/tables/*.tsv``, their provenance and the report's results
section, from the phases' own JSON outputs (rows: delta_v2a.report.rows; HTML:
delta_v2a.report.html)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.phase0 import CrossCategoryVariance, LinearityResults, SensitivityResults
from delta_v2a.artifacts.summary import Summary
from delta_v2a.artifacts.training_log import TrainingLog
from delta_v2a.artifacts.transfer import TransferExamples
from delta_v2a.jobs.common import Paths, log
from delta_v2a.report import html as report_html
from delta_v2a.report import rows
from delta_v2a.storage import atomic_path, write_json


def run_tables(*, inputs: Paths, outputs: Paths) -> None:
    """Write every TSV, their provenance and the report's results section."""
    log_doc = TrainingLog.read(inputs.training_log)
    summary, sens = Summary.read(inputs.summary), SensitivityResults.read(inputs.sensitivity)
    frames = {
        "verdicts": rows.verdict_rows(summary),
        "verdict_lines": rows.verdict_line_rows(summary),
        "phase0_sensitivity": rows.sensitivity_rows(sens),
        "phase0_consistency": rows.consistency_rows(LinearityResults.read(inputs.linearity)),
        "phase0_invariance": rows.invariance_rows(CrossCategoryVariance.read(inputs.cross)),
        "phase1_discovery": rows.discovery_rows(
            np.load(inputs.matrix), DiscoveryLabels.read(inputs.labels), log_doc
        ),
        "phase3_results": rows.phase3_rows(log_doc),
    }
    tables = {name: outputs[name] for name in rows.TABLES}
    for name, frame in frames.items():
        with atomic_path(tables[name], ".tsv") as tmp:
            frame.to_csv(tmp, sep="\t", index=False, na_rep="")
        log.info("%s: %d rows", tables[name], len(frame))
    meta = dict(sens.meta)
    write_json(outputs.provenance, {"meta": meta, "tables": tables})
    groups = report_html.example_groups(Path(inputs.predictions) / "examples")
    transfer = ""
    if "transfer" in inputs.names():  # the Transfer section (transfer_examples' folder)
        found = Path(inputs.transfer) / "examples.json"
        doc = TransferExamples.read(found) if found.is_file() else None
        transfer = report_html.transfer_html(doc, inputs.transfer)
    page = report_html.front_page(frames, report_html.examples_html(groups), meta, transfer)
    with atomic_path(outputs.front, ".html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    if "transfer" in outputs.names():
        with atomic_path(outputs.transfer, ".html") as tmp:
            Path(tmp).write_text(report_html.STYLE + transfer, encoding="utf-8")
