"""The real `snakemake` on a tiny project: artifacts, fan-out, and stale-only reruns."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seed_spec import SEED_RECORD_KEYS
from workflow_utils import make_project, planned_jobs, snakemake, write_image

from delta_v2a.storage import DeltaStore, EmbeddingTable

pytestmark = pytest.mark.workflow
IMAGES = {"city": 2, "forest": 2, "sea": 1}
AUDIO = {"folk": 2, "jazz": 2}
N_VARIANTS = 4 * 3


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_clip_dir, tiny_clap_dir):
    base = tmp_path_factory.mktemp("wf")
    config = make_project(
        base,
        {"image": tiny_clip_dir, "audio": tiny_clap_dir},
        IMAGES,
        AUDIO,
        extra={"models": {"health": {"allow_unhealthy": True}}},
    )
    dry = snakemake(base, "--dry-run", config=config)
    run = snakemake(base, config=config)
    return base, config, dry, run


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
    assert planned_jobs(snakemake(base, "--dry-run", config=config)) == {}


def test_changed_parameter_reruns_only_its_job(project):
    base, config, *_ = project
    text = config.read_text()
    changed = base / "changed.yaml"
    changed.write_text(
        text + "effects:\n  image:\n    blur:\n      levels:\n"
        "        low: {sigma: 1.0}\n        mid: {sigma: 2.5}\n"
        "        high: {sigma: 4.0}\n"
    )
    jobs = planned_jobs(snakemake(base, "--dry-run", config=changed))
    assert jobs["embed_variant"] == 1 and jobs["deltas"] == 1  # one variant, one modality
    assert not {"manifest", "embed_original", "health"} & jobs.keys()  # upstream untouched


def test_added_image_reruns_image_side_only_and_embeds_only_it(project):
    base, config, *_ = project
    n_before = sum(IMAGES.values())
    write_image(base / "data/images/city/new one.png", seed=99)
    jobs = planned_jobs(snakemake(base, "--dry-run", config=config))
    assert jobs["manifest"] == 1 and jobs["embed_original"] == 1
    assert jobs["embed_variant"] == N_VARIANTS  # the image side only
    assert jobs["deltas"] == 1
    snakemake(base, config=config)
    for path in (base / "results/embeddings/image").rglob("*.npz"):
        table = EmbeddingTable.load(path)
        assert len(table.paths) == n_before + 1
        assert table.meta["n_cached"] == n_before, path  # only the new file was embedded
    records = json.loads((base / "results/image_deltas.json").read_text())
    assert len(records) == (n_before + 1) * N_VARIANTS
