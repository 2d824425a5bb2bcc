"""`snakemake --report` reads like a results section, checked in a real (headless) browser."""

from __future__ import annotations

import html
import importlib.util
import json
import re

import pandas as pd
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
    table = re.search(r'<table[^>]*class="[^"]*\bverdicts\b[^"]*"[^>]*>(.*?)</table>', dom, re.S)
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
    examples = re.search(r'id="examples".*?</table>', dom, re.S).group(0)
    audio = re.findall(r'<audio[^>]*src="data:audio/wav;base64,', examples)
    assert len(audio) == 3  # one (raw, target, predicted) triple in .test/
    assert 'id="transfer"' in dom and "<details" in dom  # Transfer section, folded lines
    assert 'id="not-science"' in dom  # tiny models: the page says so
    png = shot.screenshot(report, tmp_path / "report.png", 1400, 900)
    assert png.stat().st_size > 10_000


needs_browser = pytest.mark.skipif(shot.find_browser() is None, reason="no Chromium on PATH")


@needs_browser
@pytest.mark.parametrize("width, height", [(1400, 900), (1280, 720), (1024, 768)])
def test_first_screen_shows_title_banner_and_whole_verdict_table(report, width, height):
    """Measured in the browser at scroll 0: the title, the not-science banner (tiny models) and
    the whole verdict table lie inside the viewport; nothing sticks out past the right edge
    except inside a scroll box of its own, and the page itself does not scroll sideways."""
    m = shot.measure(report, width, height)
    vw, vh = m["viewport"]  # headless Chromium keeps ~90 px of the window for its own frame
    assert vw == width and height - 120 <= vh <= height
    assert m["scroll"] == [0, 0, 0, 0]
    for name in ("title", "not_science", "verdicts"):
        box = m[name]
        assert box is not None, f"{name}: not on the page"
        assert box["top"] >= 0 and box["bottom"] <= vh, f"{name} off the first screen: {m}"
        assert box["left"] >= 0 and box["right"] <= vw, f"{name} cut at the side: {m}"
    assert m["title_text"].startswith("Delta V2A")
    assert m["title"]["bottom"] <= m["not_science"]["top"] <= m["verdicts"]["top"]
    assert m["n_wider_than_page"] == 0, m["wider_than_page"]
    assert m["content_scroll_width"] <= m["content_client_width"]
    assert m["page_scroll_width"] <= width


def _marked_cells(dom: str, cls: str) -> set[tuple[str, str]]:
    """(row, column) of the discovery-matrix cells whose class holds ``cls``."""
    matrix = re.search(r'id="discovery-matrix".*?</table>', dom, re.S).group(0)
    cols = re.findall(r"<th>([^<]+)</th>", re.search(r"<thead>(.*?)</thead>", matrix).group(1))
    cells = set()
    for row in re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", matrix.split("</thead>")[1]):
        classes = re.findall(r'<td class="([^"]*)"', row[1])
        cells |= {(row[0], c) for c, k in zip(cols, classes, strict=True) if cls in k.split()}
    return cells


@needs_browser
def test_pairs_json_tables_report_and_summary_agree_on_the_chosen_pairs(report, small_run):
    """One truth: which pairs Phase 3 trained on, and why, reads the same in pairs.json, the
    training log, phase1_discovery.tsv (◆ used_by_phase3, phase3_basis), the report's matrix
    and sentence, and summary.json; Phase 1's own choice (★) is discovery_labels.json's."""
    res = small_run / "results"
    pairs = json.loads((res / "phase3/pairs.json").read_text())
    used = {(p["image_effect"], p["audio_effect"]) for p in pairs["chosen"]}
    assert used, ".test pairs on score alone (pair_threshold -1): Phase 3 must train on some"
    log = json.loads((res / "training_log.json").read_text())
    assert {(p["image_effect"], p["audio_effect"]) for p in log["pairs"]["chosen"]} == used
    tsv = pd.read_csv(res / "tables/phase1_discovery.tsv", sep="\t")
    marked = tsv[tsv["used_by_phase3"]]
    assert set(zip(marked["image_effect"], marked["audio_effect"], strict=True)) == used
    assert not pairs["significance"]["required"]  # .test: require_significant_pairs false
    basis = "score only: phase3.require_significant_pairs is false (not evidence)"
    assert set(marked["phase3_basis"]) == {basis}
    assert tsv.loc[~tsv["used_by_phase3"], "phase3_basis"].isna().all()
    summary = json.loads((res / "summary.json").read_text())
    assert {tuple(p) for p in summary["phase3_pairs"]["pairs"]} == used
    assert summary["phase3_pairs"]["basis"] == basis
    phase1 = next(p for p in summary["phases"] if p["phase"] == "phase 1 discovery")
    assert any(ln.startswith("Phase 3 trained on: ") and basis in ln for ln in phase1["lines"])
    labels = json.loads((res / "discovery_labels.json").read_text())
    starred = {(p["image_effect"], p["audio_effect"]) for p in labels["chosen_pairs"]}
    assert set(zip(*(tsv.loc[tsv["chosen"], c] for c in ("image_effect", "audio_effect")),
                   strict=True)) == starred  # fmt: skip
    dom = shot.rendered_dom(report)
    assert _marked_cells(dom, "used") == used and _marked_cells(dom, "chosen") == starred
    sentence = re.search(r'<p id="phase3-pairs">(.*?)</p>', dom, re.S).group(1)
    assert basis in sentence and all(f"◆ {i} → {a}" in sentence for i, a in used)


def test_report_holds_every_verdict_line_and_the_transfer_section(report, small_run):
    """Without a browser: the results section the report embeds holds every verdict line (no
    "+N more: verdict_lines.tsv"), a FAILED or INCONCLUSIVE phase's first line says why, the
    Transfer section has a player per rendered song; the report lists the Transfer entry."""
    front = (small_run / "results/report/front.html").read_text(encoding="utf-8")
    lines = pd.read_csv(small_run / "results/tables/verdict_lines.tsv", sep="\t")
    assert "more: verdict_lines.tsv" not in front
    for text in lines["text"]:
        assert html.escape(str(text)) in front, text
    for _, phase in lines[lines["status"].isin(["FAILED", "INCONCLUSIVE"])].groupby("phase"):
        first = phase.sort_values("line").iloc[0]
        assert first["text"].startswith(first["status"]), first  # why, before the figures
    section = front.split("<h2>Transfer", 1)[1]
    doc = json.loads((small_run / "results/transfer/examples.json").read_text())
    if doc["status"] == "ok":
        wavs = [1 + sum(bool(r[k]["wav"]) for k in ("decoder", "exact")) for r in doc["examples"]]
        assert section.count('<audio controls preload="none" src="data:audio/wav') == sum(wavs)
    else:
        assert f"No transfer examples: {html.escape(doc['message'])}" in section
    assert "transfer.html" in report.read_text(encoding="utf-8")
