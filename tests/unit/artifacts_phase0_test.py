"""Phase 0's typed results (delta_v2a.artifacts.phase0): the file is the seed's, key for key
and in order, with ``artifact`` and ``format_version`` added; another kind, version or shape is
one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from phase0_utils import (
    across_row,
    cross,
    cross_row,
    linearity,
    sens_row,
    sensitivity,
    summary_row,
    within_row,
)

from delta_v2a import phase0
from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.phase0 import (
    AcrossIntensityRow,
    ConsistencyRow,
    ConsistencySummary,
    CrossCategoryRow,
    CrossCategoryVariance,
    LinearityResults,
    SensitivityResults,
    SensitivityRow,
)
from delta_v2a.storage import DeltaStore, read_json, write_json


def _store() -> DeltaStore:
    """Two effects at two intensities over four files in two categories; one variant of NaN deltas
    (no finite-norm delta), so the rows' None branches are written too."""
    rng = np.random.default_rng(0)
    n_files, variants = 4, [(e, i) for e in range(2) for i in range(2)]
    delta = rng.normal(size=(n_files * len(variants), 8)).astype(np.float32)
    delta[-n_files:] = np.nan
    return DeltaStore(
        modality="image",
        delta=delta,
        file_index=np.tile(np.arange(n_files), len(variants)),
        effect_code=np.repeat([e for e, _ in variants], n_files).astype(np.int16),
        intensity_code=np.repeat([i for _, i in variants], n_files).astype(np.int16),
        files=np.array([f"f{k}.png" for k in range(n_files)]),
        file_category=np.array(["a", "a", "b", "b"]),
        original=np.ones((n_files, 8), np.float32),
        effects=np.array(["blur", "contrast"]),
        intensities=np.array(["low", "high"]),
    )


def test_the_seeds_rows_are_written_key_for_key_in_order(tmp_path):
    """The job's rows (phase0's tables, as the seed wrote them) pass through the types
    unchanged: same keys, same order, same values; only the two header keys are added."""
    store = _store()
    sens = phase0.sensitivity_table([store], 0.01)
    within = phase0.within_category_table([store], 0.3, 1.0)
    summ = phase0.summarise_consistency(within)
    across = phase0.across_intensity_table([store])
    cross_rows = phase0.cross_category_table([store], 0.05)
    assert any(r["mean"] is None for r in sens)  # the None branch is exercised
    meta, th = {"note": "n", "health": {"image": {"passed": True}}}, {"max_variance": 0.05}
    SensitivityResults(meta, 0.01, [SensitivityRow.from_json(r) for r in sens]).write(
        tmp_path / "s.json"
    )
    LinearityResults(
        meta,
        th,
        [ConsistencyRow.from_json(r) for r in within],
        [ConsistencySummary.from_json(r) for r in summ],
        [AcrossIntensityRow.from_json(r) for r in across],
    ).write(tmp_path / "l.json")
    CrossCategoryVariance(meta, th, [CrossCategoryRow.from_json(r) for r in cross_rows]).write(
        tmp_path / "c.json"
    )
    seed = {
        "s.json": {"meta": meta, "min_distance": 0.01, "results": sens},
        "l.json": {
            "meta": meta,
            "thresholds": th,
            "within_category": within,
            "summary": summ,
            "across_intensities": across,
        },
        "c.json": {"meta": meta, "thresholds": th, "results": cross_rows},
    }
    kinds = {"s.json": "phase0_sensitivity", "l.json": "phase0_linearity"}
    for name, want in seed.items():
        text = (tmp_path / name).read_text()
        got = json.loads(text)
        assert list(got)[:2] == ["artifact", "format_version"]
        assert got["artifact"] == kinds.get(name, "phase0_cross_category")
        body = {k: v for k, v in got.items() if k not in ("artifact", "format_version")}
        # json round trip of the seed's dict: same keys in the same order, same values
        assert json.dumps(body) == json.dumps(json.loads(json.dumps(want)))


def test_round_trip(tmp_path):
    docs = [
        sensitivity([sens_row(), sens_row(mean=None, sensitive=None, reason="x")], {"note": "n"}),
        linearity([summary_row(consistent=None)], [within_row()], [across_row()]),
        cross([cross_row(), cross_row(invariant=False)]),
    ]
    for doc in docs:
        doc.write(tmp_path / "x.json")
        assert type(doc).read(tmp_path / "x.json") == doc
    assert docs[0].image_means() == {("blur", "low"): None}
    assert docs[2].results[1].variant == "image blur/low"


@pytest.mark.parametrize(
    "change, match",
    [
        ({"artifact": "phase0_linearity"}, "not a phase0_sensitivity file"),
        ({"format_version": 99}, "phase0_sensitivity format 99"),
        ({"results": [{"modality": "image"}]}, "malformed"),
        ({"results": []}, None),
    ],
)
def test_another_kind_version_or_shape_is_one_line_naming_the_file(tmp_path, change, match):
    path = tmp_path / "sensitivity_results.json"
    sensitivity([sens_row()]).write(path)
    doc = read_json(path)
    write_json(path, doc | change)
    if match is None:  # a valid change reads
        assert SensitivityResults.read(path).results == []
        return
    with pytest.raises(ArtifactError, match=match) as err:
        SensitivityResults.read(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_file_without_a_field_names_it(tmp_path):
    path = tmp_path / "cross_category_variance.json"
    cross([cross_row()]).write(path)
    doc = read_json(path)
    del doc["thresholds"]
    write_json(path, doc)
    with pytest.raises(ArtifactError, match=r"cross_category_variance\.json: .*lacks \['thresh"):
        CrossCategoryVariance.read(path)
    with pytest.raises(ArtifactError, match="not a phase0_linearity file"):
        LinearityResults.read(path)
