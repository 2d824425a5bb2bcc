"""summary.json as a typed artifact: the summary ``summarise`` makes survives a round trip with
the same keys and values, and a file of another kind or version, or without its phases, is
refused in one line naming it."""

import json

import pytest

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.summary import PhaseVerdict, Summary

DOC = {
    "not_science": True,
    "note": "NOT SCIENCE: tiny models",
    "phases": [
        {"phase": "health", "status": "ok", "lines": ["2 model(s) passed the collapse check"]},
        {"phase": "phase 1 discovery", "status": "FAILED", "lines": ["FAILED because: none"]},
        {"phase": "phase 3 decoder", "status": "n/a", "lines": []},
    ],
    "failed": ["phase 1 discovery"],
    "phase3_pairs": {"pairs": [["blur", "lpf"]], "basis": "significant"},
}


def test_a_summary_round_trips_with_the_same_keys_and_values(tmp_path):
    path = tmp_path / "summary.json"
    Summary.from_json(DOC).write(path)
    doc = json.loads(path.read_text())
    assert doc == DOC | {"artifact": "summary", "format_version": 1}
    back = Summary.read(path)
    assert back.phases[1] == PhaseVerdict("phase 1 discovery", "FAILED", ["FAILED because: none"])
    assert back.status("phase 1 discovery") == "FAILED" and back.status("phase 2") == "absent"
    assert back.to_json() == DOC and back.not_science is True


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format_version": 2}, "summary format 2"),
        ({"artifact": "training_log"}, "not a summary file"),
        ({"artifact": None}, "not a summary file"),  # a summary written before the type
        ({"phases": None}, "summary lacks ['phases']"),
    ],
)
def test_another_version_kind_or_shape_is_one_line_naming_the_file(tmp_path, change, words):
    path = tmp_path / "summary.json"
    Summary.from_json(DOC).write(path)
    doc = json.loads(path.read_text()) | change
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    with pytest.raises(ArtifactError) as err:
        Summary.read(path)
    assert str(path) in str(err.value) and words in str(err.value)
    assert "\n" not in str(err.value)
