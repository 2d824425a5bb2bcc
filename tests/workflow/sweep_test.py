"""`make demo` is one model sweep of two pairs (config/demo-sweep.yaml; docs/sweep.md): its
comparison says what each pair found and that they disagree. Reads the session's planted_state,
which the Makefile's own demo command made (tests/workflow/conftest.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from workflow_utils import assert_refused, snakemake


def agreement(state: Path) -> dict[tuple[str, str, str], str]:
    with open(state / "results/sweep/agreement.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {(r["section"], r["subject"], r["measure"]): r["value"] for r in rows}


def test_the_demo_sweep_finds_the_planted_pairs_in_one_pair_and_nothing_in_the_other(
    planted_state,
):
    table = agreement(planted_state)
    assert table["pair", "planted", "phase1_pairs"] == "blur->lpf, brightness->highshelf"
    assert table["pair", "tiny_random", "phase1_pairs"] == "none"
    assert table["pair", "planted", "image_model"] == "planted:image"
    assert table["pair", "tiny_random", "audio_model"] == "resources/models/tiny-clap"
    assert table["sweep", "all pairs", "pairs"] == "2"
    assert table["sweep", "all pairs", "phase1_pairs_agree"] == "no"
    assert table["choice", "blur", "lpf"] == "1 of 2: planted"
    assert table["choice", "blur", "none"] == "1 of 2: tiny_random"
    assert ("spearman", "planted vs tiny_random", "rho") in table


def test_each_pair_is_the_whole_study_in_its_own_folder(planted_state):
    """The verdicts in the table are each pair's own summary.json; the pairs' folders are where
    their own commands put them (runs/planted/results, results/)."""
    table = agreement(planted_state)
    for name, folder in (("planted", "runs/planted/results"), ("tiny_random", "results")):
        summary = json.loads((planted_state / folder / "summary.json").read_text())
        status = {p["phase"]: p["status"] for p in summary["phases"]}
        assert table["pair", name, "health"] == status["health"]
        assert table["pair", name, "phase3"] == status["phase 3 decoder"]
        assert (planted_state / folder / "tables/provenance.json").is_file()
    assert (planted_state / "results/sweep/agreement.png").stat().st_size > 0
    assert "DISAGREE" in (planted_state / "results/sweep/section.html").read_text()


def test_a_sweep_of_one_pair_is_refused_in_one_line_at_parse(tmp_path):
    bad = tmp_path / "sweep.yaml"
    bad.write_text("sweep:\n  pairs:\n    only: {models: {image: a, audio: b}}\n")
    proc = snakemake(tmp_path, "--dry-run", config=bad, check=False)
    text = assert_refused(proc)
    assert "Error: sweep.pairs: " in text
