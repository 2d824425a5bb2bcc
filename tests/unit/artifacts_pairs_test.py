"""pairs.json as a typed artifact (Phase 3's pair choice and data set), the pure functions
that make it, and the Phase 3 data jobs kept to reading, calling and writing."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from phase0_utils import sens_row, sensitivity

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import FileSplit, Pairs, Significance
from delta_v2a.jobs.common import PipelineError
from delta_v2a.phase3 import pairs as science
from delta_v2a.phase3.strength import image_strengths
from delta_v2a.storage import write_json

SPACE = {"effects": ["lpf"], "axes": [], "fixed": {}}  # a ParamSpace.to_dict stand-in

#: What phase3_dataset wrote before the type (its dict, key for key, in its order).
CHOICE = {
    "threshold": 0.05,
    "significance": {"available": True, "required": True, "alpha": 0.05, "note": "p <= a"},
    "rows": [
        {
            "image_effect": "blur",
            "audio_effect": "lpf",
            "score": 0.3,
            "p_adjusted": 0.01,
            "chosen": True,
            "reason": None,
        },
        {
            "image_effect": "contrast",
            "audio_effect": None,
            "score": None,
            "p_adjusted": None,
            "chosen": False,
            "reason": "Phase 1 chose no pair for it",
        },
    ],
    "chosen": [{"image_effect": "blur", "audio_effect": "lpf", "score": 0.3, "p_adjusted": 0.01}],
    "level_words": ["slightly", "very"],
    "seed": 0,
}
OK_DOC = CHOICE | {
    "status": "ok",
    "message": "1 pair(s) chosen",
    "meta": {"not_science": True, "note": "tiny"},
    "templates": {"blur": ["a {level} blurry photo", "a {level} soft photo", "a {level} hazy one"]},
    "heldout_templates": {"blur": ["a {level} hazy one"]},
    "validation_templates": {"blur": ["a {level} soft photo"]},
    "gate_texts": [{"text": "a cat", "role": "control", "effect": None, "level_word": None}],
    "texts": ["a slightly blurry photo", "a cat"],
    "paramspace": SPACE,
    "split": {
        "fractions": {"val": 0.2, "test": 0.4},
        "train_files": ["a.wav", "b.wav"],
        "val_files": ["c.wav"],
        "test_files": ["d.wav", "e.wav"],
    },
    "levels_per_pair": 4,
}
NO_PAIRS_DOC = {
    **CHOICE,
    "chosen": [],
    "status": "no_pairs",
    "message": "NO PAIR passes",
    "meta": {"not_science": True},
}


@pytest.mark.parametrize("doc", [OK_DOC, NO_PAIRS_DOC], ids=["ok", "no_pairs"])
def test_the_file_keeps_todays_keys_values_and_order_and_round_trips(tmp_path, doc):
    typed = Pairs.from_json(doc)
    assert typed.to_json() == doc and list(typed.to_json()) == list(doc)
    typed.write(tmp_path / "pairs.json")
    raw = json.loads((tmp_path / "pairs.json").read_text())
    assert list(raw) == ["artifact", "format_version", *doc]
    assert raw["artifact"] == "phase3_pairs" and raw["format_version"] == 1
    back = Pairs.read(tmp_path / "pairs.json")
    assert back == typed and back.status == doc["status"]
    assert (back.data is None) == (doc["status"] == "no_pairs")


def test_typed_fields_say_what_readers_use():
    p = Pairs.from_json(OK_DOC)
    assert p.pairs() == [("blur", "lpf")] and p.chosen[0].p_adjusted == 0.01
    assert p.rows[1].audio_effect is None and p.rows[1].reason.startswith("Phase 1")
    assert p.significance.required is True and p.significance.alpha == 0.05
    assert p.data.split.test_files == ["d.wav", "e.wav"] and p.data.levels_per_pair == 4
    assert p.choice_json() == {
        k: OK_DOC[k] for k in ("threshold", "significance", "rows", "chosen")
    }


def test_significance_without_p_values_writes_no_required_key():
    sig = {"available": False, "alpha": 0.05, "note": "no p_adjusted"}
    typed = Significance.from_json(sig)
    assert typed.required is None and typed.to_json() == sig and list(typed.to_json()) == list(sig)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (OK_DOC, "not a phase3_pairs file"),  # an old, untyped pairs.json
        ({"artifact": "discovery_labels", "format_version": 1}, "not a phase3_pairs file"),
        ({"artifact": "phase3_pairs", "format_version": 2, **OK_DOC}, "format 2"),
        (
            {"artifact": "phase3_pairs", "format_version": 1, **NO_PAIRS_DOC, "status": "ok"},
            "no data set fields ['templates'",
        ),
        ({"artifact": "phase3_pairs", "format_version": 1, **OK_DOC, "status": "done"}, "done"),
        (
            {"artifact": "phase3_pairs", "format_version": 1, **{**OK_DOC, "split": {}}},
            "malformed",
        ),
    ],
    ids=["untyped", "other-kind", "other-version", "ok-without-data", "bad-status", "bad-split"],
)
def test_foreign_or_damaged_files_are_refused_in_one_line_naming_the_file(
    tmp_path, document, words
):
    path = tmp_path / "pairs.json"
    write_json(path, document)
    with pytest.raises(ArtifactError) as err:
        Pairs.read(path)
    message = str(err.value)
    assert str(path) in message and words in message and "\n" not in message
    assert "rerun" in message


# --------------------------------------------------------------------------- the pure side


def _labels(chosen) -> DiscoveryLabels:
    return DiscoveryLabels.build(
        {
            "image_effects": ["blur", "contrast"],
            "audio_effects": ["lpf", "reverb"],
            "alpha": 0.05,
            "correction": "holm",
            "p": [[0.01, 0.5], [0.5, 0.2]],
            "p_adjusted": [[0.01, 0.5], [0.5, 0.2]],
            "chosen_pairs": chosen,
            "sim1": {},
            "sim2": {},
            "sim3": [[0.0, 0.0], [0.0, 0.0]],
            "best_matches": [],
        }
    )


def test_pick_pairs_takes_phase1s_decision_and_score_only_says_so():
    matrix = np.array([[0.3, 0.1], [0.0, 0.4]])
    chosen = [{"image_effect": "blur", "audio_effect": "lpf", "p_adjusted": 0.01}]
    choice = science.pick_pairs(matrix, _labels(chosen), 0.05, True)
    assert [(c.image_effect, c.audio_effect, c.score) for c in choice.chosen] == [
        ("blur", "lpf", 0.3)
    ]
    assert choice.rows[1].chosen is False and choice.significance.required is True
    loose = science.pick_pairs(matrix, _labels([]), 0.05, False)
    assert [(c.image_effect, c.audio_effect) for c in loose.chosen] == [
        ("blur", "lpf"),
        ("contrast", "reverb"),
    ]
    assert [c.p_adjusted for c in loose.chosen] == [0.01, 0.2]  # each keeps its p-value
    assert loose.significance.required is False and "not evidence" in loose.significance.note
    none = science.no_pairs(science.pick_pairs(matrix, _labels([]), 0.05, True), ["a"], 0, {})
    assert none.status == "no_pairs" and none.chosen == [] and "NO PAIR" in none.message


def test_dataset_record_splits_templates_and_files():
    templates = {"blur": ["t0 {level}", "t1 {level}", "t2 {level}", "t3 {level}"], "x": ["u"]}
    desc = science.Descriptions(templates, heldout=1, validation=1, level_words=["low", "high"])
    choice = science.pick_pairs(
        np.array([[0.3, 0.1], [0.0, 0.0]]),
        _labels([{"image_effect": "blur", "audio_effect": "lpf"}]),
        0.05,
        True,
    )
    samples = pd.DataFrame(
        {
            "path": ["b.wav", "a.wav", "a.wav", "c.wav", "d.wav"],
            "split": ["train", "train", "train", "val", "test"],
            "description": ["t0 low", "t1 high", "t0 low", "t0 high", "t3 low"],
        }
    )
    assert science.files_by_split(samples) == {
        "train": ["a.wav", "b.wav"],
        "val": ["c.wav"],
        "test": ["d.wav"],
    }
    gate = [{"text": "t3 low", "role": "test_paraphrase"}, {"text": "zz", "role": "control"}]
    texts = science.distinct_texts(samples, gate)
    assert texts == ["t0 low", "t1 high", "t0 high", "t3 low", "zz"]  # each once, in order

    class Space:
        def to_dict(self):
            return SPACE

    pairs = science.dataset_pairs(
        choice,
        desc,
        7,
        {"note": "n"},
        samples=samples,
        gate=gate,
        texts=texts,
        space=Space(),
        fractions={"val": 0.25, "test": 0.25},
        levels_per_pair=3,
    )
    data = pairs.data
    assert pairs.status == "ok" and pairs.message == "1 pair(s) chosen" and pairs.seed == 7
    assert list(data.templates) == ["blur"]  # the trained image effects only
    assert data.heldout_templates == {"blur": ["t3 {level}"]}
    assert data.validation_templates == {"blur": ["t2 {level}"]}
    assert data.split == FileSplit(
        {"val": 0.25, "test": 0.25}, ["a.wav", "b.wav"], ["c.wav"], ["d.wav"]
    )
    assert Pairs.from_json(pairs.to_json()) == pairs


def test_image_strengths_name_what_phase0_lacks():
    rows = [sens_row(intensity=i, mean=m) for i, m in (("low", 0.1), ("high", 0.3))]
    rows.append(sens_row(modality="audio", effect_type="lpf", mean=9.0))
    rows = sensitivity(rows).image_means()
    got = image_strengths(rows, ["blur"], ["low", "high"])
    assert got["blur"](0.5) == pytest.approx(0.1) and got["blur"].strongest == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"contrast at \['low', 'high'\]"):
        image_strengths(rows, ["blur", "contrast"], ["low", "high"])


def test_transfer_examples_take_the_test_songs_from_typed_pairs(tmp_path):
    from delta_v2a.jobs.transfer import _test_songs

    samples = tmp_path / "samples.tsv"
    pd.DataFrame(columns=["sample"]).to_csv(samples, sep="\t", index=False)  # no split column
    Pairs.from_json(OK_DOC).write(tmp_path / "pairs.json")
    assert _test_songs(str(samples), str(tmp_path / "pairs.json"), 1) == (["d.wav"], "test")
    Pairs.from_json(NO_PAIRS_DOC).write(tmp_path / "none.json")
    with pytest.raises(PipelineError, match="no test or validation file"):
        _test_songs(str(samples), str(tmp_path / "none.json"), 1)


# --------------------------------------------------------------------------- the jobs

JOBS = Path(__file__).resolve().parents[2] / "src" / "delta_v2a" / "jobs" / "phase3"


@pytest.mark.parametrize("name", ["dataset.py", "strength.py", "windows.py"])
def test_phase3_data_jobs_read_call_write_in_short_functions(name):
    """Their science lives in delta_v2a.phase3 (pairs, strength, windows); no function of
    theirs outgrows one screen, and none imports another job module."""
    tree = ast.parse((JOBS / name).read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 50
    ]
    assert not long, long
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m and m.startswith("delta_v2a.jobs.")} - {
        "delta_v2a.jobs.common"
    }
