"""The end-of-run summary: loud on every failed phase."""

from __future__ import annotations

import numpy as np
from phase0_utils import cross, cross_row, linearity, sens_row, sensitivity, summary_row
from phase3_utils import training_log

from delta_v2a.artifacts.discovery import DiscoveryLabels


def no_pair_labels() -> DiscoveryLabels:
    """Phase 1's labels when it chose nothing (the fields the summary reads)."""
    return DiscoveryLabels.build(
        {
            "image_effects": ["blur", "contrast"],
            "audio_effects": ["lpf", "reverb"],
            "alpha": 0.05,
            "correction": "holm",
            "p": [[1.0, 1.0], [1.0, 1.0]],
            "p_adjusted": [[1.0, 1.0], [1.0, 1.0]],
            "chosen_pairs": [],
            "sim1": {},
            "sim2": {},
            "sim3": [[0.0, 0.0], [0.0, 0.0]],
            "best_matches": [],
        }
    )


def test_summary_warns_loudly_on_every_failed_phase():
    from delta_v2a.report.summary import format_summary, summarise

    audio = {"modality": "audio", "effect_type": "lpf", "intensity": "low"}
    summary = summarise(
        health=[{"passed": True}],
        sensitivity=sensitivity(
            [sens_row(**audio, sensitive=False, mean=0.001), sens_row(**audio, mean=0.1)],
            meta={"not_science": True, "note": "NOT SCIENCE: tiny"},
        ),
        linearity=linearity([summary_row(**audio)]),
        cross=cross([cross_row(**audio, invariant=True)]),
        discovery=np.zeros((2, 2)),
        labels=no_pair_labels(),
        training_log=training_log("no_pairs", message="NO PAIR passes"),
    )
    assert summary["failed"] == ["phase 0-a sensitivity", "phase 1 discovery", "phase 3 decoder"]
    text = format_summary(summary)
    assert "!!! WARNING: 3 phase(s) FAILED" in text and "NOT SCIENCE" in text
    assert "insensitive: audio lpf/low" in text and "blur: no pair" in text


def test_summary_phase3_carries_each_seeds_p_values_the_seed_spread_and_the_search_cost():
    from delta_v2a.report.summary import _phase3_verdict

    def comp(name, p, gating=True):
        return {"name": name, "mean": 0.1, "n_files": 12, "wins": 9, "p": p, "p_holm": 2 * p,
                "gating": gating}  # fmt: skip

    fig = {"mean": 0.02, "low": 0.01, "high": 0.03, "n_files": 12}
    dec = {**fig, "per_seed": [0.01, 0.02, 0.03], "seed_sd": 0.01}
    seeds = [
        {
            "seed": s,
            "passed": s != 8,
            "comparisons": [comp("text_only", p), comp("oracle", 1, False)],
        }
        for s, p in ((7, 0.001), (8, 0.4), (9, 0.002))
    ]
    log = {
        "target": "matched",
        "audio_dependence": {
            "message": "m",
            "n_unreachable": 0,
            "n_samples": 8,
            "unreachable_share": 0.0,
            "kappa_percentile": 5,
        },
        "verdict": {
            "uses_audio": False,
            "status": "fail",
            "message": "NO EVIDENCE THAT THE DECODER USES THE AUDIO: seed 8: text_only",
            "seeds": [7, 8, 9],
            "seeds_passed": [7, 9],
            "inference": {"seeds": seeds},
            "beats": [],
            "does_not_beat": ["text_lookup"],
            "text_only_baseline": "text_lookup",
            "difference_text_only_minus_decoder": fig,
            "difference_shuffled_minus_decoder": fig,
        },
        "test": {
            "shuffled_spread": {"n_derangements": 200, "mean": [0.5, 0.6, 0.7], "sd": [0.1] * 3},
            "figures": {
                "decoder": {k: dec for k in ("param_mse", "strength_error", "logmel_db")}
                | {"logmel_gain_db": {**fig, "mean": 4.5}},
            },
        },
        "cost": {
            "text2fx_search": {
                "budget": 8,
                "grid_points_free": 11,
                "search_calls_per_clip": 7.5,
                "seconds_per_sample": 0.25,
            }
        },
    }
    verdict = _phase3_verdict(training_log(**log))
    lines = verdict["lines"]
    assert verdict["status"] == "FAILED"  # a FAILED verdict says why first, then the figures
    assert lines[0] == f"FAILED because: {log['verdict']['message']}"
    assert log["verdict"]["message"] not in lines[1:]  # said once, first
    assert lines[2].startswith("0 of 8 matched targets unreachable (0.0%, clipped to u = 1")
    assert (
        "seed 8 text_only: decoder better on 9 of 12 files, sign test p 0.4 (Holm 0.8); "
        "mean difference 0.1" in lines
    )
    assert (
        "seed 7 oracle: decoder better on 9 of 12 files, sign test p 1 (Holm 2); "
        "mean difference 0.1, reported" in lines
    )
    assert "training seeds [7, 8, 9]: passed [7, 9] (the verdict needs all)" in lines
    assert any(
        line.startswith("decoder test MSE over 3 seeds: 0.02 ± 0.01") and "0.01, 0.02, 0.03" in line
        for line in lines
    )
    assert any("gain-aware 4.5 [0.01, 0.03] dB" in line for line in lines)
    assert (
        "text2fx_search: budget 8 CLAP calls per clip beyond the 11-point grid, 7.5 used "
        "per clip, 0.25 s per sample" in lines
    )
    assert (
        "shuffled audio over 200 derangements: MSE per seed 0.5, 0.6, 0.7 (SD 0.1, 0.1, 0.1 "
        "across derangements)" in lines
    )
    assert _phase3_verdict(training_log(**log))["status"] == "FAILED"


def test_summary_says_which_pairs_phase3_trained_on_and_why():
    from delta_v2a.report.rows import phase3_choice
    from delta_v2a.report.summary import summarise

    pairs = {
        "chosen": [
            {"image_effect": "contrast", "audio_effect": "reverb", "score": 0.1, "p_adjusted": 1}
        ],
        "significance": {"available": True, "required": False, "alpha": 0.05, "note": "x"},
    }
    log = training_log("no_pairs", message="x", pairs=pairs)  # status: keep Phase 3 short
    summary = summarise(
        health=[{"passed": True}],
        sensitivity=sensitivity(),
        linearity=linearity(),
        cross=cross(),
        discovery=np.zeros((2, 2)),
        labels=no_pair_labels(),
        training_log=log,
    )
    basis = phase3_choice(log)["basis"]
    assert summary["phase3_pairs"] == {"pairs": [["contrast", "reverb"]], "basis": basis}
    phase1 = next(p for p in summary["phases"] if p["phase"] == "phase 1 discovery")
    assert phase1["lines"][-1] == f"Phase 3 trained on: contrast -> reverb ({basis})"


def test_unreachable_targets_are_counted_and_loud_above_five_percent():
    from delta_v2a.phase3.strength import unreachable_line

    dep = {"n_unreachable": 3, "n_samples": 30, "unreachable_share": 0.1, "kappa_percentile": 5}
    assert unreachable_line(dep) == (
        "!!! 3 of 30 matched targets unreachable (10.0%, clipped to u = 1; κ from the 5th "
        "percentile of the train files' strongest norms), over 5% !!!"
    )
    quiet = unreachable_line(dep | {"n_unreachable": 1, "unreachable_share": 1 / 30})
    assert quiet.startswith("1 of 30 matched targets unreachable (3.3%") and "!!!" not in quiet
