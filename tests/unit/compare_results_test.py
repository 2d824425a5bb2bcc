"""scripts/compare_results.py: clocks and paths are set aside, science fields never are."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
from workflow_utils import ROOT

_spec = importlib.util.spec_from_file_location(
    "compare_results", ROOT / "scripts/compare_results.py"
)
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)


def test_only_volatile_keys_are_dropped():
    doc = {
        "seconds": 1.0,
        "train_seconds": 2.0,
        "epochs_per_s": 3.0,
        "resolved_path": "/tmp/x",
        "n_samples": 4,
        "difference_shuffled_minus_decoder": {"low": 0.1},
        "text2fx_search": {"mean": 0.2},
        "sampling_rate": 48000,
        "hop_s": 5.0,
    }
    assert set(compare.clean(doc)) == {
        "n_samples",
        "difference_shuffled_minus_decoder",
        "text2fx_search",
        "sampling_rate",
        "hop_s",
    }


def test_a_changed_science_field_is_a_difference(tmp_path):
    for name, low in (("old", 0.1), ("new", 0.2)):
        (tmp_path / name).mkdir()
        doc = {"verdict": {"difference_shuffled_minus_decoder": {"low": low}}, "seconds": 1}
        (tmp_path / name / "training_log.json").write_text(json.dumps(doc))
        np.save(tmp_path / name / "m.npy", np.ones(3))
    assert compare.main(tmp_path / "old", tmp_path / "new") == 1
    (tmp_path / "new/training_log.json").write_text(
        (tmp_path / "old/training_log.json").read_text()
    )
    assert compare.main(tmp_path / "old", tmp_path / "new") == 0
