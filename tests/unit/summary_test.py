"""The end-of-run summary: loud on every failed phase."""

from __future__ import annotations

import numpy as np


def test_summary_warns_loudly_on_every_failed_phase():
    from delta_v2a.jobs.summary import format_summary, summarise

    def variant(**kw):
        return {"modality": "audio", "effect_type": "lpf", "intensity": "low", **kw}

    summary = summarise(
        health=[{"passed": True}],
        sensitivity={
            "meta": {"not_science": True, "note": "NOT SCIENCE: tiny"},
            "results": [variant(sensitive=False, mean=0.001), variant(sensitive=True, mean=0.1)],
        },
        linearity={
            "summary": [variant(consistent=True, n_consistent=2, n_categories=2, n_undetermined=0)]
        },
        cross={"results": [variant(invariant=True)]},
        discovery=np.zeros((2, 2)),
        labels={"image_effects": ["blur", "contrast"], "audio_effects": ["lpf", "reverb"]},
        training_log={"status": "no_pairs", "message": "NO PAIR passes"},
    )
    assert summary["failed"] == ["phase 0-a sensitivity", "phase 1 discovery", "phase 3 decoder"]
    text = format_summary(summary)
    assert "!!! WARNING: 3 phase(s) FAILED" in text and "NOT SCIENCE" in text
    assert "insensitive: audio lpf/low" in text and "blur: no pair" in text


def test_summary_says_which_pairs_phase3_trained_on_and_why():
    from delta_v2a.jobs.summary import summarise
    from delta_v2a.jobs.tables import phase3_choice

    pairs = {
        "chosen": [{"image_effect": "contrast", "audio_effect": "reverb", "score": 0.1}],
        "significance": {"available": True, "required": False, "alpha": 0.05},
    }
    log = {"status": "no_pairs", "message": "x", "pairs": pairs}  # status: keep Phase 3 short
    summary = summarise(
        health=[{"passed": True}],
        sensitivity={"meta": {}, "results": []},
        linearity={"summary": []},
        cross={"results": []},
        discovery=np.zeros((2, 2)),
        labels={"image_effects": ["blur", "contrast"], "audio_effects": ["lpf", "reverb"]},
        training_log=log,
    )
    basis = phase3_choice(log)["basis"]
    assert summary["phase3_pairs"] == {"pairs": [["contrast", "reverb"]], "basis": basis}
    phase1 = next(p for p in summary["phases"] if p["phase"] == "phase 1 discovery")
    assert phase1["lines"][-1] == f"Phase 3 trained on: contrast -> reverb ({basis})"
