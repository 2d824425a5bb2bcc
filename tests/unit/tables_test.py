"""Tidy exports: values copied from the phases' JSON, later keys read when present."""

from __future__ import annotations

import numpy as np
import pandas as pd

from delta_v2a.jobs.tables import discovery_rows, matrix_table, phase1_pairs, phase3_rows

LABELS = {
    "image_effects": ["blur", "contrast"],
    "audio_effects": ["lpf", "reverb"],
    "sim1": {"blur": 0.5, "contrast": 0.1},
    "sim2": {"lpf": 0.4, "reverb": 0.2},
    "sim3": [[0.9, 0.1], [0.3, 0.2]],
    "best_matches": [
        {"image_effect": "blur", "best": "lpf"},
        {"image_effect": "contrast", "best": "reverb"},
    ],
}
MATRIX = np.array([[0.18, 0.01], [0.012, 0.004]])
ROWS = [
    {"image_effect": "blur", "audio_effect": "lpf", "chosen": True},
    {"image_effect": "contrast", "audio_effect": "reverb", "chosen": False},
]
LOG = {"pairs": {"rows": ROWS}}


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
    assert frame["p_adjusted"].isna().all()  # not written by this Phase 1


def test_phase1_keys_are_used_when_present():
    labels = LABELS | {
        "p_adjusted": [[0.01, 1.0], [0.5, 0.9]],
        "chosen_pairs": [["contrast", "reverb"]],
    }
    frame = discovery_rows(MATRIX, labels, LOG)
    assert list(frame["p_adjusted"]) == [0.01, 1.0, 0.5, 0.9]
    assert list(frame["chosen"]) == [False, False, False, True]  # Phase 1's choice
    assert list(frame["used_by_phase3"]) == [True, False, False, False]  # the log's, copied
    dicts = [{"image_effect": "blur", "audio_effect": "reverb"}]
    assert phase1_pairs({"chosen_pairs": dicts}) == {("blur", "reverb")}
    html = matrix_table(frame)
    assert html.count("★ ") == 1 + 1 and html.count("◆ ") == 1 + 1  # the cell and the caption
    assert "p<sub>adj</sub> = 0.01" in html


def test_phase3_rows_copy_every_test_figure_with_its_interval():
    fig = {"mean": 0.1, "low": 0.05, "high": 0.2, "n_files": 3, "seed_sd": 0.02}
    fig |= {"per_seed": [0.08, 0.1, 0.12]}
    log = {
        "status": "trained",
        "test": {
            "figures": {
                "decoder": {"param_mse": fig},
                "no_effect": {"param_mse": {**fig, "mean": 0.3}},
            },
            "paraphrase_figures": {"decoder": {"strength_error": {**fig, "mean": 0.5}}},
        },
    }
    got = [tuple(r.values()) for r in phase3_rows(log).to_dict("records")]
    assert got == [
        ("test", "decoder", "param_mse", 0.1, 0.05, 0.2, 3, 0.02, 3, "trained"),
        ("test", "no_effect", "param_mse", 0.3, 0.05, 0.2, 3, 0.02, 3, "trained"),
        ("paraphrases", "decoder", "strength_error", 0.5, 0.05, 0.2, 3, 0.02, 3, "trained"),
    ]
    assert phase3_rows({"status": "no_pairs"}).empty
    assert isinstance(phase3_rows({}), pd.DataFrame)
