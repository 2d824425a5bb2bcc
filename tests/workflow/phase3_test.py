"""Real `snakemake` through Phase 3 on a tiny project: decoder artifacts, summary, reruns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml
from workflow_utils import make_project, planned_jobs, small_config, snakemake

pytestmark = pytest.mark.workflow
# A plain --configfile overlay merges nested keys and cannot remove effects: the runs below
# pass --replace-workflow-config with the full defaults cut to 2 × 2 effects × 2 intensities.
REPLACE = "--replace-workflow-config"
AUDIO = {"folk": 2, "jazz": 2}  # 2 test files: the least the shuffled baseline needs
IMAGES = {"city": 1, "sea": 1}
PHASE3 = {
    # Scores are clipped at 0: -1 lets every image effect keep its best audio effect, so the
    # decoder is trained whatever the tiny random models discover.
    "pair_threshold": -1.0,
    # Tiny random models find no significant pair (Phase 1's p-values are all 1): pair on score
    # alone, as the demo does, so Phase 3 is exercised; every output then says "not evidence".
    "require_significant_pairs": False,
    "levels_per_pair": 2,
    "windows": {"count": 2, "hop_s": 1.0},
    "epochs": 3,
    "log_every": 2,
    "u_grid": 3,
    "split": {"val": 0.2, "test": 0.4},
    "bootstrap": 200,
    "model": {"d_model": 32, "heads": 2, "hidden": 32},
    "validation": {"max_samples": 4, "examples": 1},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_clip_dir, tiny_clap_dir):
    base = tmp_path_factory.mktemp("wf3")
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    cfg = small_config(models, phase3=PHASE3, models={"health": {"allow_unhealthy": True}})
    config = make_project(base, models, IMAGES, AUDIO, extra=cfg)
    run = snakemake(base, REPLACE, config=config)
    return base, config, run


def test_all_runs_through_phase3_and_ends_with_the_summary(project):
    base, _, run = project
    out = run.stdout + run.stderr
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
    base, _, run = project
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
    assert [len(split[f"{k}_files"]) for k in ("train", "val", "test")] == [1, 1, 2]
    doc = torch.load(base / "results/decoder_model.pt", weights_only=True)
    assert doc["status"] == "trained" and doc["windows"]["count"] == 2
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
    console = run.stdout + run.stderr
    assert "attention epoch 2/3" in console and "attention epoch 1/3" not in console


def test_training_change_reruns_training_only_and_restart_resumes(project):
    base, config, _ = project
    assert planned_jobs(snakemake(base, REPLACE, "--dry-run", config=config)) == {}
    more = yaml.safe_load(config.read_text())
    more["phase3"]["epochs"] = 4
    changed = base / "more_epochs.yaml"
    changed.write_text(yaml.safe_dump(more))
    jobs = planned_jobs(snakemake(base, REPLACE, "--dry-run", config=changed))
    assert jobs == {"phase3": 1, "summary": 1, "tables": 1, "transfer_examples": 1, "all": 1}
    # A restarted job with unchanged inputs and settings resumes from its last checkpoint.
    snakemake(base, REPLACE, "--forcerun", "phase3", config=config)
    log = (base / "logs/phase3/train.log").read_text()
    assert "resuming from checkpoint" in log and "after epoch 3 of 3" in log
