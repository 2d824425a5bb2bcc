"""Real `snakemake` through Phase 3 on a tiny project: decoder artifacts, summary, reruns."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
import yaml
from workflow_utils import ROOT, planned_jobs, small_run_configs, snakemake

pytestmark = pytest.mark.workflow
#: The run is the shared .test/ run (conftest.small_run): its phase3 section keeps every best
#: match on score alone (tiny random models find no significant pair), 2 windows 1 s apart, a
#: 3-point u grid, 3 epochs logged every 2nd on the console, one example per pair.
TEST_CONFIG = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
PHASE3 = TEST_CONFIG["phase3"]


@pytest.fixture(scope="module")
def project(small_run):
    return small_run, small_run_configs(small_run), (small_run / "console.txt").read_text()


def test_all_runs_through_phase3_and_ends_with_the_summary(project):
    base, _, out = project
    for rule in ("phase1", "phase3_windows", "phase3_dataset", "phase3_strength", "phase3"):
        assert f"rule {rule}:" in out or f"localrule {rule}:" in out, rule
    assert "Delta V2A: summary of every phase" in out  # on the console, not only in a log
    summary = json.loads((base / "results/summary.json").read_text())
    assert [p["phase"] for p in summary["phases"]] == [
        "health",
        "phase 0-a sensitivity",
        "phase 0-b linearity",
        "phase 1 discovery",
        "phase 3 decoder",
    ]
    assert summary["not_science"] is True
    if summary["failed"]:
        assert "!!! WARNING" in out


def test_decoder_artifacts(project):
    base, _, console = project
    log = json.loads((base / "results/training_log.json").read_text())
    assert log["status"] == "trained" and log["target"] == "matched"
    assert all(len(m["history"]) == PHASE3["epochs"] for m in log["training"]["models"].values())
    assert log["meta"]["not_science"] is True
    assert len(log["pairs"]["chosen"]) == 2  # one per image effect
    assert log["pairs"]["significance"]["required"] is False  # tiny models: none significant
    assert {"decoder", "text_lookup", "text_mlp", "shuffled_audio", "text2fx_search"} <= set(
        log["test"]["figures"]
    )
    assert "uses_audio" in log["verdict"] and log["audio_dependence"]["grid_size"] == 3
    split = log["data"]["split"]
    sizes = [len(split[f"{k}_files"]) for k in ("train", "val", "test")]
    n_audio = sum(1 for _ in (base / "data/audio").rglob("*.flac"))
    assert min(sizes) >= 1 and sizes[2] >= 2 and sum(sizes) == n_audio  # by file, nothing lost
    doc = torch.load(base / "results/decoder_model.pt", weights_only=True)
    assert doc["status"] == "trained" and doc["windows"]["count"] == PHASE3["windows"]["count"]
    preds = pd.read_csv(base / "results/parameter_predictions/predictions.tsv", sep="\t")
    assert set(preds["path"]) == set(split["test_files"])
    assert len(list((base / "results/parameter_predictions/examples").glob("*.wav"))) == 3
    for fig in ("phase3_training", "phase3_predictions"):
        assert (base / f"results/figures/{fig}.png").stat().st_size > 1000
    assert (base / "results/phase3/audio_dependence.json").exists()
    # every epoch in the log file, every log_every-th (and the last) on the console
    progress = (base / "logs/phase3/train.log").read_text()
    for kind in ("attention", "concat", "text"):
        assert all(f"{kind} epoch {e}/3" in progress for e in (1, 2, 3)), kind
    assert "attention epoch 2/3" in console and "attention epoch 1/3" not in console


def test_training_change_reruns_training_only_and_restart_resumes(project, tmp_path):
    small_run, _, _ = project
    base = tmp_path / "copy"  # the shared run stays as it was for the other tests
    shutil.copytree(small_run, base, symlinks=True)
    configs = small_run_configs(base)
    assert planned_jobs(snakemake(base, "--dry-run", *configs)) == {}
    changed = base / "config/more_epochs.yaml"  # an overlay of the one changed key
    changed.write_text(yaml.safe_dump({"phase3": {"epochs": 4}}))
    jobs = planned_jobs(snakemake(base, "--dry-run", *configs, str(changed)))
    assert jobs == {"phase3": 1, "summary": 1, "tables": 1, "transfer_examples": 1, "all": 1}
    # A restarted job with unchanged inputs and settings resumes from its last checkpoint.
    snakemake(base, *configs, "--forcerun", "phase3")
    log = (base / "logs/phase3/train.log").read_text()
    assert "resuming from checkpoint" in log and "after epoch 3 of 3" in log
