"""The real `snakemake` on a tiny project: artifacts, fan-out, and stale-only reruns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from seed_spec import SEED_RECORD_KEYS
from workflow_utils import (
    make_project,
    planned_jobs,
    small_config,
    snakemake,
    write_config,
    write_data,
    write_image,
)

from delta_v2a.storage import DeltaStore, EmbeddingTable

pytestmark = pytest.mark.workflow
IMAGES = {"city": 2, "forest": 2, "sea": 1}
AUDIO = {"folk": 2, "jazz": 2}
# The run: the defaults cut to 2 effects x 2 intensities per modality (small_config, passed
# with --replace-workflow-config), through the seed's Phase 0 verbs only. The default config's
# full fan-out (4 effects x 3 intensities) is checked by a dry run: executing it here cost
# minutes on a 2-core machine and tests nothing the small run does not.
REPLACE = "--replace-workflow-config"
N_VARIANTS = 2 * 2
TARGETS = ("sensitivity", "linearity")


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_clip_dir, tiny_clap_dir):
    base = tmp_path_factory.mktemp("wf")
    write_data(base, IMAGES, AUDIO)
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    cfg = small_config(models, models={"health": {"allow_unhealthy": True}})
    config = write_config(base, cfg)
    dry = snakemake(base, REPLACE, "--dry-run", *TARGETS, config=config)
    run = snakemake(base, REPLACE, *TARGETS, config=config)
    return base, config, dry, run


def test_default_config_fans_out_one_job_per_variant(tmp_path, tiny_clip_dir, tiny_clap_dir):
    """The seed's 24 extraction jobs: 4 effects x 3 intensities per modality, one job each."""
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    config = make_project(tmp_path, models, IMAGES, AUDIO)
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run", *TARGETS, config=config))
    assert jobs["embed_variant"] == 2 * 4 * 3
    assert jobs["embed_original"] == 2 and jobs["manifest"] == 2 and jobs["deltas"] == 2


def test_dry_run_fans_out_one_job_per_variant(project):
    _, _, dry, _ = project
    jobs = planned_jobs(dry)
    assert jobs["embed_variant"] == 2 * N_VARIANTS
    assert jobs["embed_original"] == 2 and jobs["manifest"] == 2 and jobs["deltas"] == 2
    assert jobs["sensitivity"] == jobs["linearity"] == 1


def test_full_run_writes_seed_artifacts(project):
    base, *_ = project
    for modality, n_files in (("image", sum(IMAGES.values())), ("audio", sum(AUDIO.values()))):
        records = json.loads((base / f"results/{modality}_deltas.json").read_text())
        assert len(records) == n_files * N_VARIANTS
        assert all(set(r) == SEED_RECORD_KEYS for r in records)
        dim = 768 if modality == "image" else 512
        assert {len(r["delta"]) for r in records} == {dim}
        r = records[0]
        np.testing.assert_allclose(
            np.float32(r["augmented_embedding"]) - np.float32(r["original_embedding"]),
            np.float32(r["delta"]),
            atol=1e-6,
        )
        store = DeltaStore.load(base / f"results/{modality}_deltas.npz")
        assert len(store) == len(records) and store.meta["not_science"] is True
    sens = json.loads((base / "results/sensitivity_results.json").read_text())
    assert len(sens["results"]) == 2 * N_VARIANTS
    assert sens["meta"]["not_science"] and "NOT SCIENCE" in sens["meta"]["note"]
    lin = json.loads((base / "results/linearity_results.json").read_text())
    assert len(lin["within_category"]) == (len(IMAGES) + len(AUDIO)) * N_VARIANTS
    one_file = [r for r in lin["within_category"] if r["category"] == "sea"]
    assert all(r["mean_cosine"] is None and "at least 2" in r["reason"] for r in one_file)
    cross = json.loads((base / "results/cross_category_variance.json").read_text())
    audio_rows = [r for r in cross["results"] if r["modality"] == "audio"]
    assert all(r["invariant"] is None and "single cosine" in r["reason"] for r in audio_rows)
    for fig in ("sensitivity", "linearity"):
        assert (base / f"results/figures/{fig}.png").stat().st_size > 1000


def test_second_dry_run_has_nothing_to_do(project):
    base, config, *_ = project
    assert planned_jobs(snakemake(base, REPLACE, "--dry-run", *TARGETS, config=config)) == {}


def test_changed_parameter_reruns_only_its_job(project):
    base, config, *_ = project
    cfg = yaml.safe_load(config.read_text())
    cfg["effects"]["image"]["blur"]["levels"]["high"]["sigma"] += 0.5
    changed = write_config(base, cfg, "changed.yaml")
    jobs = planned_jobs(snakemake(base, REPLACE, "--dry-run", *TARGETS, config=changed))
    assert jobs["embed_variant"] == 1 and jobs["deltas"] == 1  # one variant, one modality
    assert not {"manifest", "embed_original", "health"} & jobs.keys()  # upstream untouched


def test_added_image_reruns_image_side_only_and_embeds_only_it(project):
    base, config, *_ = project
    n_before = sum(IMAGES.values())
    write_image(base / "data/images/city/new one.png", seed=99)
    jobs = planned_jobs(snakemake(base, REPLACE, "--dry-run", *TARGETS, config=config))
    assert jobs["manifest"] == 1 and jobs["embed_original"] == 1
    assert jobs["embed_variant"] == N_VARIANTS  # the image side only
    assert jobs["deltas"] == 1
    snakemake(base, REPLACE, *TARGETS, config=config)
    for path in (base / "results/embeddings/image").rglob("*.npz"):
        table = EmbeddingTable.load(path)
        assert len(table.paths) == n_before + 1
        assert table.meta["n_cached"] == n_before, path  # only the new file was embedded
    records = json.loads((base / "results/image_deltas.json").read_text())
    assert len(records) == (n_before + 1) * N_VARIANTS
