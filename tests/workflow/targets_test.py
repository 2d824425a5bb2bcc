"""Every seed verb is a target; bad roots and typos stop at parse time; the small .test/ run
writes tidy tables (one pandas.read_csv each) and records the models' revisions everywhere."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml
from workflow_utils import ROOT, planned_jobs, snakemake

pytestmark = pytest.mark.workflow
TEST_CONFIG = str(ROOT / ".test/config/config.yaml")

EXPECTED = {  # rules each target plans from scratch (and, for extract, what it must not)
    "extract": (
        {"manifest", "embed_original", "embed_variant", "deltas", "health"},
        {"sensitivity"},
    ),
    "sensitivity": ({"deltas", "sensitivity"}, {"linearity", "phase1"}),
    "linearity": ({"deltas", "linearity"}, {"sensitivity", "phase1"}),
    "phase1": ({"deltas", "phase1"}, {"phase3"}),
    "phase3": ({"phase1", "phase3_windows", "phase3_dataset", "phase3"}, {"summary"}),
    "all": ({"sensitivity", "linearity", "phase1", "phase3", "summary", "tables"}, set()),
}


@pytest.fixture(scope="module")
def dot_test(tmp_path_factory):
    """.test/ as committed: its data, hub-id models (a dry run loads no model)."""
    base = tmp_path_factory.mktemp("dot_test")
    shutil.copytree(ROOT / ".test/data", base / "data")
    return base


@pytest.mark.parametrize("target", list(EXPECTED))
def test_every_seed_verb_is_a_target(dot_test, target):
    jobs = planned_jobs(snakemake(dot_test, "--dry-run", target, "--configfile", TEST_CONFIG))
    needed, absent = EXPECTED[target]
    assert needed <= set(jobs), jobs
    assert not absent & set(jobs), jobs


@pytest.mark.parametrize("missing", ["images", "audio"])
def test_missing_or_empty_data_root_stops_at_parse_time(tmp_path, dot_test, missing):
    other = "audio" if missing == "images" else "images"
    shutil.copytree(dot_test / "data" / other, tmp_path / "data" / other)
    proc = snakemake(tmp_path, "--dry-run", "--configfile", TEST_CONFIG, check=False)
    out = proc.stdout + proc.stderr
    key = f"data.{missing}"
    assert proc.returncode != 0
    # a relative root is read from the working directory (--directory), and the line says so
    where = f"(relative paths are read from the working directory {tmp_path.resolve()})"
    assert f"{key}: data root 'data/{missing}' does not exist {where} (set {key}" in out
    assert "Job stats" not in out
    (tmp_path / "data" / missing).mkdir()
    proc = snakemake(tmp_path, "--dry-run", "--configfile", TEST_CONFIG, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{key}: data root 'data/{missing}' is empty" in out


def test_a_config_typo_is_short_with_the_closest_key(tmp_path, dot_test):
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"sensitivty": {"min_distance": 0.02}}))
    proc = snakemake(dot_test, "--dry-run", "--configfile", TEST_CONFIG, str(typo), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "sensitivty: unknown config key; did you mean 'sensitivity'?" in out
    assert len(out.splitlines()) < 15, out  # not the whole schema and config


def test_tables_open_with_one_read_csv_and_have_one_row_per_unit(small_run):
    cfg = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    n_int, n_eff = len(cfg["intensities"]), {m: len(e) for m, e in cfg["run_effects"].items()}
    variants = n_int * (n_eff["image"] + n_eff["audio"])
    n_cat = {"image": 2, "audio": 2}  # .test/data: city, sea; folk, jazz
    tables = {
        p.stem: pd.read_csv(p, sep="\t") for p in (small_run / "results/tables").glob("*.tsv")
    }
    assert set(tables) == {
        "verdicts", "verdict_lines", "phase0_sensitivity", "phase0_consistency",
        "phase0_invariance", "phase1_discovery", "phase3_results",
    }  # fmt: skip
    assert len(tables["phase0_sensitivity"]) == variants
    assert not tables["phase0_sensitivity"].duplicated(["modality", "effect", "intensity"]).any()
    assert len(tables["phase0_consistency"]) == n_int * sum(n_eff[m] * n_cat[m] for m in n_cat)
    assert len(tables["phase0_invariance"]) == variants
    disc = tables["phase1_discovery"]
    assert len(disc) == n_eff["image"] * n_eff["audio"]
    summary = json.loads((small_run / "results/summary.json").read_text())
    assert list(tables["verdicts"]["phase"]) == [p["phase"] for p in summary["phases"]]
    lines = tables["verdict_lines"]  # every verdict line, in the summary's order
    assert list(lines["text"]) == [t for p in summary["phases"] for t in p["lines"]]
    # values are copied, not recomputed: the same numbers as the JSON and the matrix
    sens = json.loads((small_run / "results/sensitivity_results.json").read_text())
    assert list(tables["phase0_sensitivity"]["mean_norm"]) == pytest.approx(
        [r["mean"] for r in sens["results"]], rel=1e-9
    )
    log = json.loads((small_run / "results/training_log.json").read_text())
    chosen = {(r["image_effect"], r["audio_effect"]) for r in log["pairs"]["rows"] if r["chosen"]}
    marked = set(map(tuple, disc.loc[disc["chosen"], ["image_effect", "audio_effect"]].values))
    assert chosen  # .test/ keeps every best match (pair_threshold -1, score-only pairs)
    labels = json.loads((small_run / "results/discovery_labels.json").read_text())
    significant = {(c["image_effect"], c["audio_effect"]) for c in labels["chosen_pairs"]}
    assert marked == significant  # the table marks Phase 1's significant pairs only
    p3 = tables["phase3_results"]
    assert set(p3["candidate"]) >= {"decoder", "text_lookup", "shuffled_audio", "no_effect"}
    test = log["test"]["figures"]
    got = p3.query("split == 'test' and metric == 'param_mse'")
    assert dict(zip(got["candidate"], got["mean"], strict=True)) == pytest.approx(
        {c: f["param_mse"]["mean"] for c, f in test.items()}
    )


def test_the_pinned_revisions_are_in_every_artifact(small_run):
    overlay = yaml.safe_load((small_run / "config/tiny-models.yaml").read_text())
    SMALL_RUN_REVISIONS = overlay["models"]["revision"]  # noqa: N806
    results = small_run / "results"
    for name in ("sensitivity_results.json", "linearity_results.json",
                 "cross_category_variance.json", "discovery_labels.json"):  # fmt: skip
        meta = json.loads((results / name).read_text())["meta"]
        assert meta["revisions"] == SMALL_RUN_REVISIONS, name
        assert {m["revision"] for m in meta["models"].values()} == set(SMALL_RUN_REVISIONS.values())
    for modality in ("image", "audio"):
        meta = json.loads((results / f"{modality}_deltas.meta.json").read_text())
        assert meta["model"]["revision"] == SMALL_RUN_REVISIONS[modality]
        health = json.loads((results / f"health/{modality}.json").read_text())
        assert health["model"]["revision"] == SMALL_RUN_REVISIONS[modality]
    log = json.loads((results / "training_log.json").read_text())
    assert log["meta"]["revisions"] == {"audio": SMALL_RUN_REVISIONS["audio"]}
    prov = json.loads((results / "tables/provenance.json").read_text())
    assert prov["meta"]["revisions"] == SMALL_RUN_REVISIONS
