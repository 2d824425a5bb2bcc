"""The model sweep's pure parts (delta_v2a.sweep) and its job: known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.summary import Summary
from delta_v2a.config import ConfigError
from delta_v2a.jobs.common import Paths
from delta_v2a.jobs.sweep import run_sweep
from delta_v2a.sweep import (
    PairOutcome,
    SweepSettings,
    agreement_rows,
    agreement_tsv,
    aligned_cells,
    check_sweep,
    choice_rows,
    pairs_agree,
    plan_pairs,
    read_config_file,
    spearman,
    spearman_rows,
)

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ["blur", "brightness", "saturation"]
AUDIO = ["lpf", "highshelf", "reverb"]


def outcome(name, matrix, chosen=(), images=IMAGES, audio=AUDIO, statuses=None) -> PairOutcome:
    statuses = statuses or {}
    phases = [
        {"phase": p, "status": statuses.get(p, "ok"), "lines": []}
        for p in ("health", "phase 0-a sensitivity", "phase 0-b linearity", "phase 3 decoder")
    ]
    labels = DiscoveryLabels.build(
        {
            "image_effects": list(images),
            "audio_effects": list(audio),
            "alpha": 0.05,
            "correction": "holm",
            "p": [],
            "p_adjusted": [],
            "chosen_pairs": [{"image_effect": i, "audio_effect": a} for i, a in chosen],
            "sim1": {},
            "sim2": {},
            "sim3": [],
            "best_matches": [],
        }
    )
    summary = Summary.from_json(
        {"not_science": True, "note": "", "phases": phases, "failed": [], "phase3_pairs": {}}
    )
    return PairOutcome(
        name=name,
        models={"image": f"{name}-img", "audio": f"{name}-aud"},
        summary=summary,
        matrix=np.asarray(matrix, dtype=float),
        labels=labels,
    )


# --------------------------------------------------------------------------- Spearman


def test_spearman_matches_scipy_with_ties_and_its_extremes():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 40).astype(float)  # many ties
    y = x + rng.normal(0, 2, 40)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(x, x) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_spearman_is_undefined_for_a_constant_matrix_or_too_few_cells():
    assert math.isnan(spearman(np.zeros(9), np.arange(9.0)))
    assert math.isnan(spearman(np.arange(2.0), np.arange(2.0)))
    # NaN cells (no prototype) are left out, not ranked
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    assert spearman(x, np.array([1.0, 2.0, 9.0, 4.0, 5.0])) == pytest.approx(1.0)


def test_cells_are_aligned_by_label_not_by_position():
    """A pair whose files list the effects in another order ranks the same cells: rho 1."""
    m = np.arange(9.0).reshape(3, 3)
    a = outcome("a", m)
    order_i, order_a = [2, 0, 1], [1, 2, 0]
    b = outcome(
        "b",
        m[np.ix_(order_i, order_a)],
        images=[IMAGES[k] for k in order_i],
        audio=[AUDIO[k] for k in order_a],
    )
    x, y = aligned_cells(a, b)
    assert np.array_equal(x, y)
    assert spearman_rows([a, b])[0] == ("spearman", "a vs b", "rho", "1.000")
    # only the cells both studied: a third pair without reverb has 6 common cells
    c = outcome("c", m[:, :2], audio=AUDIO[:2])
    assert aligned_cells(a, c)[0].size == 6


# --------------------------------------------------------------------------- choices


def planted_and_random() -> list[PairOutcome]:
    planted = np.array([[0.56, 0.0, 0.01], [0.0, 0.67, 0.02], [0.01, 0.0, 0.05]])
    return [
        outcome("planted", planted, [("blur", "lpf"), ("brightness", "highshelf")]),
        outcome("tiny_random", np.zeros((3, 3)), statuses={"phase 3 decoder": "FAILED"}),
    ]


def test_the_planted_and_the_random_pair_disagree():
    pairs = planted_and_random()
    assert not pairs_agree(pairs)
    assert pairs_agree([pairs[0], pairs[0]]) and pairs_agree([pairs[1], pairs[1]])
    rows = agreement_rows(pairs)
    table = {(s, subj, m): v for s, subj, m, v in rows}
    assert table["pair", "planted", "phase1_pairs"] == "blur->lpf, brightness->highshelf"
    assert table["pair", "tiny_random", "phase1_pairs"] == "none"
    assert table["pair", "tiny_random", "phase3"] == "FAILED"
    assert table["pair", "planted", "image_model"] == "planted-img"
    assert table["spearman", "planted vs tiny_random", "rho"] == (
        "undefined (tiny_random: constant matrix)"
    )
    assert table["sweep", "all pairs", "phase1_pairs_agree"] == "no"


def test_choice_counts_per_image_effect():
    a, b = planted_and_random()
    c = outcome("other", np.eye(3), [("blur", "lpf"), ("brightness", "reverb")])
    rows = {(subj, m): v for _, subj, m, v in choice_rows([a, b, c])}
    assert rows["blur", "lpf"] == "2 of 3: planted, other"
    assert rows["blur", "none"] == "1 of 3: tiny_random"
    assert rows["brightness", "highshelf"] == "1 of 3: planted"
    assert rows["brightness", "reverb"] == "1 of 3: other"
    assert rows["saturation", "none"] == "3 of 3: planted, tiny_random, other"


def test_the_table_is_one_header_and_four_columns():
    text = agreement_tsv([("pair", "x", "phase1_pairs", "a\tb\nc")])
    lines = text.splitlines()
    assert lines[0] == "section\tsubject\tmeasure\tvalue"
    assert lines[1].split("\t") == ["pair", "x", "phase1_pairs", "a b c"]


# --------------------------------------------------------------------------- planning


def sweep_config(pairs: dict, **top) -> dict:
    return {
        "data": {"images": "data/images", "audio": "data/audio"},
        **top,
        "sweep": {"pairs": pairs},
    }


def test_a_pair_is_its_files_in_its_folder():
    files = {
        "p.yaml": {
            "data": {"images": "../../media/img", "audio": "/abs/aud"},
            "models": {"image": "x"},
        },
        "q.yaml": {"phase3": {"u_grid": 6}, "models": {"image": "tiny", "audio": "tiny-a"}},
    }
    plans = plan_pairs(
        sweep_config(
            {
                "planted": {"folder": "runs/planted", "configfiles": ["p.yaml"]},
                "random": {"folder": ".", "configfiles": ["q.yaml"], "models": {"audio": "other"}},
                "third": {"models": {"image": "clip", "audio": "clap"}},
            },
            intensities=["low"],
        ),
        files.__getitem__,
    )
    planted, random, third = plans
    # the pair's own relative data root is read from its folder (as --directory would)
    assert planted.config["data"] == {"images": "media/img", "audio": "/abs/aud"}
    assert (
        planted.prefix == "runs/planted" and planted.path("results/x") == "runs/planted/results/x"
    )
    # the sweep's own data roots are the working directory's
    assert random.config["data"] == {"images": "data/images", "audio": "data/audio"}
    assert random.prefix is None and random.path("results/x") == "results/x"
    assert random.config["models"] == {"image": "tiny", "audio": "other"}  # models win over files
    assert random.config["phase3"] == {"u_grid": 6} and random.config["intensities"] == ["low"]
    assert third.folder == "runs/third" and third.config["models"] == {
        "image": "clip",
        "audio": "clap",
    }
    assert all("sweep" not in p.config for p in plans)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"only": {}}, "at least two"),
        ({"a": {"folder": "runs/x"}, "b": {"folder": "runs/x/"}}, "its own folder"),
        ({"a": {}, "b-2": {}}, "letter followed by"),
        ({"a": {}, "b": {"folder": "../elsewhere"}}, "inside the run folder"),
    ],
)
def test_a_sweep_that_cannot_run_is_refused_in_one_line(pairs, message):
    with pytest.raises(ConfigError, match=message) as err:
        plan_pairs(sweep_config(pairs), lambda path: {})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("sweep", "where"),
    [
        ({"pairs": {"a": {}, "b": {"folder": 3}}}, "sweep.pairs.b.folder"),
        ({"pairs": {"a": {}, "b": {"modles": {}}}}, "sweep.pairs.b"),
        ({"pairs": {"a": {}}}, "sweep.pairs"),
        ({"pair": {}}, "sweep"),
    ],
)
def test_the_sweep_key_is_checked_against_its_schema_in_one_line(sweep, where):
    schema = yaml.safe_load((ROOT / "workflow/schemas/sweep.schema.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        check_sweep({"data": {}, "sweep": sweep}, schema)
    assert str(err.value).startswith(f"{where}: ") and "\n" not in str(err.value)
    check_sweep({"sweep": {"pairs": {"a": {"models": {"image": "x"}}, "b": {}}}}, schema)


def test_a_pair_config_file_that_cannot_be_read_is_one_line(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("models: {image: [\n")
    (tmp_path / "ok.yaml").write_text("models: {image: x}\n")
    assert read_config_file(str(tmp_path / "ok.yaml")) == {"models": {"image": "x"}}
    for name, why in (("list", "not a mapping"), ("bad", "not valid YAML"), ("gone", "No such")):
        with pytest.raises(ConfigError, match=why) as err:
            read_config_file(str(tmp_path / f"{name}.yaml"))
        assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- the job


def test_the_job_reads_each_pairs_files_and_writes_table_figure_and_section(tmp_path):
    paths = {"summaries": [], "matrices": [], "labels": []}
    for o in planted_and_random():
        folder = tmp_path / o.name
        folder.mkdir()
        o.summary.write(folder / "summary.json")
        o.labels.write(folder / "labels.json")
        np.save(folder / "matrix.npy", o.matrix)
        paths["summaries"].append(str(folder / "summary.json"))
        paths["matrices"].append(str(folder / "matrix.npy"))
        paths["labels"].append(str(folder / "labels.json"))
    out = tmp_path / "sweep"
    outputs = Paths(
        table=str(out / "agreement.tsv"), figure=str(out / "agreement.png"),
        section=str(out / "section.html"),
    )  # fmt: skip
    settings = SweepSettings(
        pairs=["planted", "tiny_random"],
        models=[{"image": "planted:image", "audio": "planted:audio"}, {"image": "t", "audio": "u"}],
    )
    run_sweep(inputs=Paths(**paths), outputs=outputs, settings=settings)
    table = (out / "agreement.tsv").read_text()
    assert "pair\tplanted\tphase1_pairs\tblur->lpf, brightness->highshelf" in table
    assert "pair\tplanted\timage_model\tplanted:image" in table
    assert "sweep\tall pairs\tphase1_pairs_agree\tno" in table
    assert (out / "agreement.png").read_bytes()[:4] == b"\x89PNG"
    assert "DISAGREE" in (out / "section.html").read_text()
