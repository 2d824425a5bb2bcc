"""Tidy exports: values copied from the phases' JSON, later keys read when present."""

from __future__ import annotations

import numpy as np
import pandas as pd
from phase3_utils import training_log

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.summary import Summary
from delta_v2a.report.html import matrix_table, pairs_html
from delta_v2a.report.rows import (
    discovery_rows,
    phase1_pairs,
    phase3_choice,
    phase3_rows,
    verdict_line_rows,
    verdict_rows,
)


def labels(**fields) -> DiscoveryLabels:
    """Phase 1's labels as the artifact holds them; fields not given are empty."""
    base = {
        "image_effects": ["blur", "contrast"],
        "audio_effects": ["lpf", "reverb"],
        "alpha": 0.05,
        "correction": "holm",
        "p": [[None, None], [None, None]],
        "p_adjusted": [[None, None], [None, None]],
        "chosen_pairs": [],
        "sim1": {"blur": 0.5, "contrast": 0.1},
        "sim2": {"lpf": 0.4, "reverb": 0.2},
        "sim3": [[0.9, 0.1], [0.3, 0.2]],
        "best_matches": [
            {"image_effect": "blur", "best": "lpf"},
            {"image_effect": "contrast", "best": "reverb"},
        ],
    }
    return DiscoveryLabels.build(base | fields)


LABELS = labels()
MATRIX = np.array([[0.18, 0.01], [0.012, 0.004]])
ROWS = [
    {
        "image_effect": "blur",
        "audio_effect": "lpf",
        "score": 0.18,
        "p_adjusted": 1.0,
        "chosen": True,
        "reason": None,
    },
    {
        "image_effect": "contrast",
        "audio_effect": "reverb",
        "score": 0.004,
        "p_adjusted": 1.0,
        "chosen": False,
        "reason": "below phase3.pair_threshold",
    },  # fmt: skip
]
NOTE = "NOT REQUIRED: pairs chosen on score alone, not evidence"
SCORE_ONLY = {"available": True, "required": False, "alpha": 0.05, "note": NOTE}
CHOSEN = [{"image_effect": "blur", "audio_effect": "lpf", "score": 0.18, "p_adjusted": 1.0}]
LOG = training_log(pairs={"rows": ROWS, "chosen": CHOSEN, "significance": SCORE_ONLY})


def test_discovery_rows_copy_the_cells_and_mark_best_and_chosen():
    frame = discovery_rows(MATRIX, LABELS, LOG)
    assert len(frame) == 4
    cell = frame.set_index(["image_effect", "audio_effect"])
    assert cell.loc[("contrast", "lpf"), "score"] == 0.012
    assert cell.loc[("contrast", "lpf"), "sim3"] == 0.3
    assert (
        cell.loc[("contrast", "lpf"), "sim1"] == 0.1 and cell.loc[("blur", "reverb"), "sim2"] == 0.2
    )
    assert list(frame["best_match"]) == [True, False, False, True]
    assert list(frame["chosen"]) == [False] * 4  # this Phase 1 chose nothing
    assert list(frame["used_by_phase3"]) == [True, False, False, False]  # score-only pairs
    assert frame["p_adjusted"].isna().all()  # undefined cells stay empty


def test_phase1_keys_are_used_when_present():
    pick = {"image_effect": "contrast", "audio_effect": "reverb"}
    lab = labels(p_adjusted=[[0.01, 1.0], [0.5, 0.9]], chosen_pairs=[pick])
    frame = discovery_rows(MATRIX, lab, LOG)
    assert list(frame["p_adjusted"]) == [0.01, 1.0, 0.5, 0.9]
    assert list(frame["chosen"]) == [False, False, False, True]  # Phase 1's choice
    assert list(frame["used_by_phase3"]) == [True, False, False, False]  # the log's, copied
    dicts = [{"image_effect": "blur", "audio_effect": "reverb"}]
    assert phase1_pairs(labels(chosen_pairs=dicts)) == {("blur", "reverb")}
    html = matrix_table(frame)
    assert html.count("★ ") == 1 + 1 and html.count("◆ ") == 1 + 1  # the cell and the caption
    assert "p<sub>adj</sub> = 0.01" in html


def test_phase3_rows_copy_every_test_figure_with_its_interval():
    fig = {"mean": 0.1, "low": 0.05, "high": 0.2, "n_files": 3, "seed_sd": 0.02}
    fig |= {"per_seed": [0.08, 0.1, 0.12]}
    log = training_log(
        test={
            "figures": {
                "decoder": {"param_mse": fig},
                "no_effect": {"param_mse": {**fig, "mean": 0.3}},
            },
            "paraphrase_figures": {"decoder": {"strength_error": {**fig, "mean": 0.5}}},
        },
    )
    got = [tuple(r.values()) for r in phase3_rows(log).to_dict("records")]
    assert got == [
        ("test", "decoder", "param_mse", 0.1, 0.05, 0.2, 3, 0.02, 3, "trained"),
        ("test", "no_effect", "param_mse", 0.3, 0.05, 0.2, 3, 0.02, 3, "trained"),
        ("paraphrases", "decoder", "strength_error", 0.5, 0.05, 0.2, 3, 0.02, 3, "trained"),
    ]
    assert phase3_rows(training_log("no_pairs")).empty
    assert isinstance(phase3_rows(training_log("no_pairs")), pd.DataFrame)


def test_phase3_choice_names_the_pairs_and_what_they_rest_on():
    assert phase3_choice(LOG) == {
        "pairs": [("blur", "lpf")],
        "basis": "score only: phase3.require_significant_pairs is false (not evidence)",
    }
    block = {"rows": ROWS, "chosen": CHOSEN}
    sig = {"available": True, "required": True, "alpha": 0.01, "note": ""}
    significant = training_log(pairs=block | {"significance": sig})
    assert phase3_choice(significant)["basis"] == "significant: p_adjusted <= 0.01"
    no_p = training_log(
        pairs=block | {"significance": {"available": False, "alpha": 0.05, "note": NOTE}}
    )
    assert phase3_choice(no_p)["basis"].startswith("score only: discovery_labels.json has no")
    # the no-pairs training log: nothing chosen
    assert phase3_choice(training_log("no_pairs")) == {"pairs": [], "basis": "none"}
    frame = discovery_rows(MATRIX, LABELS, LOG)
    basis = frame.set_index(["image_effect", "audio_effect"])["phase3_basis"]
    assert basis[("blur", "lpf")] == phase3_choice(LOG)["basis"]
    assert basis.drop(("blur", "lpf")).isna().all()
    assert pairs_html(frame).count("◆ blur → lpf") == 1 and "not evidence" in pairs_html(frame)
    assert "no pair" in pairs_html(discovery_rows(MATRIX, LABELS, training_log("no_pairs")))


def _summary_fields() -> dict:
    """summary.json's fields besides the phases, as summarise writes them for a stand-in run."""
    return {
        "not_science": True,
        "note": "NOT SCIENCE",
        "failed": [],
        "phase3_pairs": {"pairs": [], "basis": "none"},
    }


def test_verdict_detail_is_short_and_the_lists_have_their_own_table():
    long = [f"insensitive: audio effect_{i}/high (mean ||Δe|| 0.001)" for i in range(40)]
    summary = {
        "phases": [
            {"phase": "health", "status": "ok", "lines": ["2 model(s) passed"]},
            {"phase": "phase 0-a sensitivity", "status": "FAILED", "lines": ["x " * 150, *long]},
            {"phase": "phase 3 decoder", "status": "n/a", "lines": []},
        ]
    }
    summary = Summary.from_json(_summary_fields() | summary)
    rows = verdict_rows(summary)
    assert list(rows["detail"].str.len() <= 200) == [True] * 3
    assert rows["detail"][0] == "2 model(s) passed"  # one line: whole, no pointer
    assert rows["detail"][1].endswith("… (+40 more: verdict_lines.tsv)")
    assert rows["detail"][1].startswith("x x ") and rows["detail"][2] == ""
    lines = verdict_line_rows(summary)
    assert len(lines) == 1 + 41
    sens = lines[lines["phase"] == "phase 0-a sensitivity"]
    assert list(sens["line"]) == list(range(1, 42)) and list(sens["text"])[1:] == long


def test_front_page_opens_with_the_banner_and_the_verdict_table():
    from delta_v2a.report.html import front_page

    phases = [{"phase": "phase 1 discovery", "status": "FAILED", "lines": ["0 of 2"]}]
    summary = Summary.from_json(_summary_fields() | {"phases": phases})
    empty = pd.DataFrame(columns=["modality", "effect", "intensity", "category", "consistent",
                                  "mean_cosine", "cv"])  # fmt: skip
    frames = {
        "verdicts": verdict_rows(summary),
        "phase0_sensitivity": empty,
        "phase0_consistency": empty,
        "phase0_invariance": empty,
        "phase1_discovery": discovery_rows(MATRIX, LABELS, LOG),
        "phase3_results": phase3_rows(training_log("no_pairs")),
    }
    page = front_page(frames, "", {"not_science": True, "note": "NOT SCIENCE: tiny"})
    banner, table = page.index('id="not-science"'), page.index('id="verdicts"')
    assert page.index("<style>") < banner < table < page.index("Phase 0-a")
    assert '<td class="FAILED">FAILED</td><td>0 of 2</td>' in page
    assert "align-items:flex-start!important" in page  # Snakemake's centred box, undone
    assert 'id="not-science"' not in front_page(frames, "", {})
