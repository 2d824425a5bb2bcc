"""Too little audio is said when the DAG is built, before any job runs: a Phase 3 target on 7
songs is refused with the numbers, Phase 0 on them runs, 8 songs warn that the verdict can only
be INCONCLUSIVE (delta_v2a.config.check_data_size)."""

from __future__ import annotations

import pytest
from workflow_utils import (
    assert_refused,
    planned_jobs,
    small_config,
    snakemake,
    write_config,
    write_data,
)

pytestmark = pytest.mark.workflow
REPLACE = "--replace-workflow-config"


def test_data_size_is_checked_before_any_job(tmp_path, tiny_clip_dir, tiny_clap_dir):
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    write_data(tmp_path, {"city": 2}, {"folk": 4, "jazz": 3})
    cfg = write_config(tmp_path, small_config(models, 1))
    proc = snakemake(tmp_path, REPLACE, "--dry-run", "results/decoder_model.pt", config=cfg,
                     check=False)  # fmt: skip
    text = assert_refused(proc)
    assert "Error: data.audio: too little audio for Phase 3: 7 audio file(s) give 1 test" in text
    assert "(8 songs: add 1)" in text and "48 songs, add 41" in text
    assert "Job stats" not in text and not (tmp_path / "logs").exists()
    # Phase 0 and Phase 1 (the split needs 3 files) are planned on the same data
    jobs = planned_jobs(snakemake(tmp_path, REPLACE, "--dry-run", "phase1", config=cfg))
    assert jobs.get("split") == 1 and "phase3_dataset" not in jobs
    # an eighth song gives 2 test files: Phase 3 runs, with the warning and its numbers
    write_data(tmp_path, {}, {"jazz": 1}, seed=50, stem="more ")
    proc = snakemake(tmp_path, REPLACE, "--dry-run", config=cfg)
    text = proc.stdout + proc.stderr
    assert "Warning: data.audio: 8 audio file(s) give 2 test file(s)" in text
    assert "INCONCLUSIVE: add 40 song(s) (48 in all)" in text
    assert planned_jobs(proc).get("phase3_dataset") == 1


def test_data_size_counts_the_inventory_not_the_walk(
    tmp_path, tiny_clip_dir, tiny_clap_dir, monkeypatch
):
    """The gate reads the inventory the study will vet: with a prepared inventory of 60 songs
    (benchmarks/extraction.py plans 10^6 this way) the 7 songs on disk are not what counts."""
    from delta_v2a.inventory import INVENTORY_HEADER, inventory_of

    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    write_data(tmp_path, {"city": 2}, {"folk": 4, "jazz": 3})
    cfg = write_config(tmp_path, small_config(models, 1))
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "image.inventory.tsv").write_text(inventory_of(tmp_path / "data/images", "image"))
    rows = [f"data/audio/folk/s{k:02d}.wav\t{1000 + k}\t{k:064x}" for k in range(60)]
    (plan / "audio.inventory.tsv").write_text("\n".join([INVENTORY_HEADER, *rows]) + "\n")
    monkeypatch.setenv("DELTA_V2A_PLAN_INVENTORY", str(plan))
    proc = snakemake(tmp_path, REPLACE, "--dry-run", "results/decoder_model.pt", config=cfg)
    text = proc.stdout + proc.stderr
    assert "too little audio" not in text and "Warning: data.audio" not in text
    assert planned_jobs(proc).get("phase3_dataset") == 1
