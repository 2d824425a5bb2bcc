"""The planted world end to end, exactly as `make demo` runs it (config/planted.yaml on the demo
media): the pipeline finds the answer built into the embedders and nothing else, and Phase 3
refuses a verdict it has too few test files for. NOT SCIENCE: a check of the pipeline.

The unit test (tests/unit/planted_test.py) checks Phase 1's statistics on the planted
embedders; this one checks that the workflow, its tables, Phase 3's pair list and the summary
carry that answer through (docs/methods.md §9)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow
PLANTED = {("blur", "lpf"), ("brightness", "highshelf")}  # delta_v2a.planted builds these in


def _results(state: Path) -> Path:
    return state / "runs/planted/results"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_phase1_finds_the_planted_pairs_and_nothing_else(planted_state):
    rows = _rows(_results(planted_state) / "tables/phase1_discovery.tsv")
    chosen = {(r["image_effect"], r["audio_effect"]) for r in rows if r["chosen"] == "True"}
    assert chosen == PLANTED
    for r in rows:  # every other cell of the matrix stays above alpha
        planted = (r["image_effect"], r["audio_effect"]) in PLANTED
        assert (float(r["p_adjusted"]) <= 0.05) == planted, r
        assert (r["used_by_phase3"] == "True") == planted, r
    pairs = json.loads((_results(planted_state) / "phase3/pairs.json").read_text())
    assert pairs["significance"]["required"] is True  # no score-only override here
    assert {(p["image_effect"], p["audio_effect"]) for p in pairs["rows"] if p["chosen"]} == (
        PLANTED
    )


def test_phase3_trains_on_them_and_gives_no_verdict_on_three_test_files(planted_state):
    """15 demo songs leave 3 test files: below phase3.min_test_files (10) no sign-flip test can
    reach its level, so the verdict must be INCONCLUSIVE, whatever the figures look like."""
    results = _results(planted_state)
    verdicts = {r["phase"]: r for r in _rows(results / "tables/verdicts.tsv")}
    assert verdicts["phase 1 discovery"]["status"] == "ok"
    assert verdicts["phase 3 decoder"]["status"] == "INCONCLUSIVE"
    summary = (results / "summary.txt").read_text(encoding="utf-8")
    assert "NOT SCIENCE: planted embedders" in summary
    assert "only 3 test files" in summary and "fewer than the 10 a verdict needs" in summary
    assert "Phase 3 trained on: blur -> lpf, brightness -> highshelf (significant" in summary
    assert (results / "decoder_model.pt").is_file()
