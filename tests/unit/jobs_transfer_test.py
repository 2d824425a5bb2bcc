"""Reading Phase 1's significance fields by key, in each shape they may take."""

from __future__ import annotations

import pytest

from delta_v2a.transfer.payload import _significance

LABELS = {"image_effects": ["blur", "contrast"], "audio_effects": ["lpf", "reverb"]}


@pytest.mark.parametrize(
    "table",
    [
        [[0.01, 0.2], [0.5, 0.04]],
        {"blur": {"lpf": 0.01, "reverb": 0.2}, "contrast": {"lpf": 0.5, "reverb": 0.04}},
        [
            {"image_effect": "blur", "audio_effect": "lpf", "p_adjusted": 0.01},
            {"image_effect": "contrast", "audio_effect": "reverb", "p_adjusted": 0.04},
        ],
    ],
)
def test_p_adjusted_in_any_shape_is_copied_and_only_phase1_decides(table):
    labels = LABELS | {"p_adjusted": table, "alpha": 0.05}
    assert _significance(labels, "blur", "lpf") == {
        "p_value": None,
        "p_adjusted": 0.01,
        "alpha": 0.05,
        "significant": None,  # p < alpha, but Phase 1 made no decision: none is made here
    }
    decided = labels | {"chosen_pairs": [{"image_effect": "contrast", "audio_effect": "reverb"}]}
    assert _significance(decided, "contrast", "reverb")["significant"] is True
    assert _significance(decided, "blur", "lpf")["significant"] is False  # p 0.01, not chosen


def test_chosen_pairs_decide_and_missing_fields_mean_untested():
    chosen = LABELS | {"chosen_pairs": [{"image_effect": "blur", "audio_effect": "reverb"}]}
    assert _significance(chosen, "blur", "reverb")["significant"] is True
    assert _significance(chosen, "blur", "lpf")["significant"] is False
    pairs_as_lists = LABELS | {"chosen_pairs": [["contrast", "lpf"]]}
    assert _significance(pairs_as_lists, "contrast", "lpf")["significant"] is True
    assert _significance(LABELS, "blur", "lpf") == {
        "p_value": None,
        "p_adjusted": None,
        "alpha": None,
        "significant": None,
    }


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
    rows = [{"modality": "image", "effect_type": "blur", "intensity": "low", "mean": 0.1}]
    with pytest.raises(PayloadError, match=r"sens\.json: .* blur/high"):
        _level_norms({"results": rows}, "sens.json", store)
    rows.append({"modality": "image", "effect_type": "blur", "intensity": "high", "mean": 0.3})
    assert _level_norms({"results": rows}, "sens.json", store)["blur"].norm == (0.0, 0.1, 0.3)


def test_reads_phase1s_own_keys_p_matrix_and_p_value_description():
    """Phase 1 writes the uncorrected matrix as "p" and describes the test in "p_value"."""
    labels = LABELS | {
        "p": [[0.001, 0.3], [0.2, 0.01]],
        "p_value": "max(p_sim1, p_sim2, p_sim3) (intersection-union)",
        "p_adjusted": [[0.004, 1.0], [0.6, 0.03]],
        "alpha": 0.05,
        "chosen_pairs": [{"image_effect": "contrast", "audio_effect": "reverb"}],
    }
    sig = _significance(labels, "contrast", "reverb")
    assert sig["p_value"] == 0.01 and sig["p_adjusted"] == 0.03 and sig["significant"] is True
