"""`snakemake --report` reads like a results section, checked in a real (headless) browser."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
from workflow_utils import ROOT, snakemake

pytestmark = pytest.mark.workflow

_spec = importlib.util.spec_from_file_location("shot", ROOT / "scripts/report_screenshot.py")
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)


@pytest.fixture(scope="module")
def report(small_run):
    configs = [
        "--configfile",
        *(str(small_run / f"config/{n}.yaml") for n in ("config", "tiny-models")),
    ]
    snakemake(small_run, *configs, "--report", str(small_run / "report.html"))
    return small_run / "report.html"


@pytest.mark.skipif(
    shot.find_browser() is None,
    reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)",
)
def test_report_first_page_has_verdicts_tables_and_audio(report, small_run, tmp_path):
    dom = shot.rendered_dom(report)
    # the verdict table, rendered from results/tables/verdicts.tsv, with every phase
    table = re.search(r'<table[^>]*class="verdicts[^"]*"[^>]*>(.*?)</table>', dom, re.S)
    assert table, "no verdict table on the first page"
    for phase in ("health", "sensitivity", "linearity", "discovery", "decoder"):
        assert phase in table.group(1)
    for table_id in ("phase0-sensitivity", "phase0-consistency", "phase0-invariance",
                     "discovery-matrix", "phase3-results", "examples"):  # fmt: skip
        assert f'id="{table_id}"' in dom, table_id
    matrix = re.search(r'id="discovery-matrix".*?</table>', dom, re.S).group(0)
    labels = json.loads((small_run / "results/discovery_labels.json").read_text())
    # Phase 1's significant pairs are starred; tiny models have none, and then none is
    assert ('class="chosen' in matrix) == bool(labels["chosen_pairs"])
    assert "p<sub>adj</sub>" in matrix
    audio = re.findall(r'<audio[^>]*src="data:audio/wav;base64,', dom)
    assert len(audio) == 3  # one (raw, target, predicted) triple in .test/
    assert 'id="not-science"' in dom  # tiny models: the page says so
    png = shot.screenshot(report, tmp_path / "report.png", 1200, 1600)
    assert png.stat().st_size > 10_000
