"""Reading Phase 1's significance fields through its typed labels (discovery_labels.json)."""

from __future__ import annotations

import pytest
from phase0_utils import sens_row, sensitivity

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.storage import write_json
from delta_v2a.transfer.payload import _significance


def labels(**fields) -> DiscoveryLabels:
    base = {
        "image_effects": ["blur", "contrast"],
        "audio_effects": ["lpf", "reverb"],
        "alpha": 0.05,
        "correction": "holm",
        "p": [[None, None], [None, None]],
        "p_adjusted": [[0.01, 0.2], [0.5, 0.04]],
        "chosen_pairs": [],
        "sim1": {},
        "sim2": {},
        "sim3": [[0.0, 0.0], [0.0, 0.0]],
        "best_matches": [],
    }
    return DiscoveryLabels.build(base | fields)


def test_only_phase1s_chosen_pairs_decide():
    assert _significance(labels(), "blur", "lpf") == {
        "p_value": None,
        "p_adjusted": 0.01,
        "alpha": 0.05,
        "significant": False,  # p < alpha, but Phase 1 chose nothing: none is made here
    }
    decided = labels(chosen_pairs=[{"image_effect": "contrast", "audio_effect": "reverb"}])
    assert _significance(decided, "contrast", "reverb")["significant"] is True
    assert _significance(decided, "blur", "lpf")["significant"] is False  # p 0.01, not chosen


def test_labels_round_trip_and_an_untyped_file_is_refused_in_one_line(tmp_path):
    lab = labels(chosen_pairs=[{"image_effect": "blur", "audio_effect": "reverb"}])
    lab = DiscoveryLabels.build(lab.to_json() | {"p_value": "max(...)", "foils": {"n": 3}})
    lab.write(tmp_path / "labels.json")
    back = DiscoveryLabels.read(tmp_path / "labels.json")
    assert back == lab and back.details["foils"] == {"n": 3}
    assert back.pairs() == {("blur", "reverb")}
    old = {k: v for k, v in lab.to_json().items()}
    write_json(tmp_path / "old.json", old)  # an old file: no artifact, no version
    with pytest.raises(ArtifactError, match=r"old\.json: not a discovery_labels file") as err:
        DiscoveryLabels.read(tmp_path / "old.json")
    assert "\n" not in str(err.value)


def test_a_missing_phase0_row_is_named():
    import numpy as np

    from delta_v2a.storage import DeltaStore
    from delta_v2a.transfer.payload import PayloadError, _level_norms

    store = DeltaStore(
        modality="image",
        delta=np.ones((2, 4), np.float32),
        file_index=np.zeros(2, np.int64),
        effect_code=np.zeros(2, np.int16),
        intensity_code=np.array([0, 1], np.int16),
        files=np.array(["a.png"]),
        file_category=np.array(["c"]),
        original=np.ones((1, 4), np.float32),
        effects=np.array(["blur"]),
        intensities=np.array(["low", "high"]),
    )
    rows = [sens_row(intensity="low", mean=0.1)]
    with pytest.raises(PayloadError, match=r"sens\.json: .* blur/high"):
        _level_norms(sensitivity(rows), "sens.json", store)
    rows.append(sens_row(intensity="high", mean=0.3))
    assert _level_norms(sensitivity(rows), "sens.json", store)["blur"].norm == (0.0, 0.1, 0.3)


def test_reads_phase1s_own_keys_p_matrix():
    """Phase 1 writes the uncorrected matrix as "p"."""
    lab = labels(
        p=[[0.001, 0.3], [0.2, 0.01]],
        p_adjusted=[[0.004, 1.0], [0.6, 0.03]],
        chosen_pairs=[{"image_effect": "contrast", "audio_effect": "reverb"}],
    )
    sig = _significance(lab, "contrast", "reverb")
    assert sig["p_value"] == 0.01 and sig["p_adjusted"] == 0.03 and sig["significant"] is True
