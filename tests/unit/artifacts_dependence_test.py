"""phase3/audio_dependence.json as a typed artifact: a measured and an unmeasured figure survive
a round trip with the file's keys and values as the strength job wrote them, and a file of
another kind or version, or a measured one lacking its numbers, is refused in one line."""

import json

import pytest

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.dependence import AudioDependence

FIGURE = {
    "sd_across_files": 0.08,
    "share_explained_by_description": 0.4,
    "can_matter": True,
    "min_sd": 0.02,
    "per_description": {"blur->lpf|slightly": 0.07},
    "target": "matched",
    "files_used": "given subset",
    "n_files_used": 5,
    "status": "ok",
    "kappa": {"blur->lpf": 1.5},
    "n_unreachable": 1,
    "unreachable_share": 0.1,
    "kappa_percentile": 10.0,
    "n_samples": 10,
    "n_non_monotone_curves": 0,
    "grid_size": 4,
    "curve_cost": {"clap_calls": 20, "seconds": 1.5},
    "message": "u* spread across files for one description: SD 0.0800",
}


def test_a_measured_figure_round_trips_with_the_same_keys_and_values(tmp_path):
    path = tmp_path / "audio_dependence.json"
    AudioDependence.build(FIGURE).write(path)
    doc = json.loads(path.read_text())
    assert doc == FIGURE | {"artifact": "phase3_audio_dependence", "format_version": 1}
    back = AudioDependence.read(path)
    assert back.measured and back.can_matter is True and back.grid_size == 4
    assert back.curve_cost == FIGURE["curve_cost"] and back.to_json() == FIGURE


def test_no_pair_holds_only_status_and_message(tmp_path):
    path = tmp_path / "audio_dependence.json"
    AudioDependence(status="no_pairs", message="NO PAIR passes").write(path)
    doc = json.loads(path.read_text())
    assert doc == {"artifact": "phase3_audio_dependence", "format_version": 1,
                   "status": "no_pairs", "message": "NO PAIR passes"}  # fmt: skip
    back = AudioDependence.read(path)
    assert not back.measured and back.can_matter is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format_version": 2}, "phase3_audio_dependence format 2"),
        ({"artifact": "phase3_pairs"}, "not a phase3_audio_dependence file"),
        ({"artifact": None}, "not a phase3_audio_dependence file"),  # written before the type
        ({"grid_size": None}, "malformed"),  # status ok without its numbers
    ],
)
def test_another_version_kind_or_shape_is_one_line_naming_the_file(tmp_path, change, words):
    path = tmp_path / "audio_dependence.json"
    AudioDependence.build(FIGURE).write(path)
    doc = json.loads(path.read_text()) | change
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))
    with pytest.raises(ArtifactError) as err:
        AudioDependence.read(path)
    assert str(path) in str(err.value) and words in str(err.value)
    assert "\n" not in str(err.value)
