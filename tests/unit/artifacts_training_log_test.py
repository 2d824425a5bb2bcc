"""training_log.json as a typed artifact: a trained and an untrained log survive a round trip
field for field, and a file of another kind or version is refused in one line naming it."""

import json

import pytest
from phase3_utils import training_log

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.training_log import TrainingLog

FIG = {"mean": 0.1, "low": 0.05, "high": 0.2, "n_files": 3, "seed_sd": 0.0, "per_seed": [0.1]}
VERDICT = {
    "uses_audio": False,
    "status": "fail",
    "reason": "it does not beat text-only",
    "seeds": [0],
    "seeds_passed": [],
    "inference": {"seeds": [{"seed": 0, "passed": False, "comparisons": []}]},
    "beats": [],
    "does_not_beat": ["text_lookup"],
    "message": "NO EVIDENCE THAT THE DECODER USES THE AUDIO: it does not beat text-only",
    "text_only_validation_mse": [{"text_lookup": 0.1, "text_mlp": 0.2}],
}
SIG = {"available": True, "required": True, "alpha": 0.05, "note": "significant pairs"}
PAIRS = {"threshold": 0.05, "significance": SIG, "rows": [], "chosen": []}


def test_a_trained_log_round_trips_field_for_field(tmp_path):
    log = training_log(
        target="matched",
        verdict=VERDICT,
        pairs=PAIRS
        | {
            "chosen": [
                {"image_effect": "blur", "audio_effect": "lpf", "score": 0.3, "p_adjusted": 0.01}
            ]
        },
        audio_dependence={"message": "SD 0.1", "can_matter": True},
        best_epoch=3,
        best_val_loss=0.25,
        cost={"text2fx_search": {"budget": 8}},
        test={"figures": {"decoder": {"param_mse": FIG}}, "shuffled_spread": {"mean": [0.3]}},
    )
    path = tmp_path / "training_log.json"
    log.write(path)
    doc = json.loads(path.read_text())
    assert doc["artifact"] == "training_log" and doc["format_version"] == 1
    assert doc["verdict"]["reason"] == VERDICT["reason"] and "message" not in doc  # trained
    assert doc["test"]["figures"]["decoder"]["param_mse"] == FIG
    back = TrainingLog.read(path)
    assert back == log
    assert back.trained and back.pairs.pairs() == [("blur", "lpf")]
    assert back.pairs.significance.required is True and doc["pairs"]["significance"] == SIG
    assert back.verdict.seed_comparisons()[0]["seed"] == 0 and back.test.n_rendered == 0


def test_an_untrained_log_holds_only_what_says_why(tmp_path):
    path = tmp_path / "training_log.json"
    TrainingLog.untrained("NO PAIR passes", meta={"note": "x"}).write(path)
    doc = json.loads(path.read_text())
    assert set(doc) == {"artifact", "format_version", "meta", "status", "message", "verdict",
                        "pairs"}  # fmt: skip
    assert doc["verdict"] == {"uses_audio": None, "message": "NO PAIR passes"}
    back = TrainingLog.read(path)
    assert not back.trained and back.message == "NO PAIR passes" and back.test is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format_version": 2}, "training_log format 2"),
        ({"artifact": "discovery_labels"}, "not a training_log file"),
        ({"artifact": None}, "not a training_log file"),  # a log written before the type
    ],
)
def test_another_version_or_kind_is_one_line_naming_the_file(tmp_path, change, words):
    path = tmp_path / "training_log.json"
    TrainingLog.untrained("NO PAIR passes").write(path)
    doc = json.loads(path.read_text()) | change
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    with pytest.raises(ArtifactError) as err:
        TrainingLog.read(path)
    message = str(err.value)
    assert str(path) in message and words in message and "\n" not in message


def test_a_damaged_verdict_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "training_log.json"
    TrainingLog.untrained("NO PAIR passes").write(path)
    doc = json.loads(path.read_text())
    doc["verdict"] = {"message": "x", "surprise": 1}
    path.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="training_log is malformed") as err:
        TrainingLog.read(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
