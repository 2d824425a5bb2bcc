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
    # batches of 2, so that file shards (test_shards_...) hold several batches each
    batch = {"cpu": {"image": 2, "audio": 2}}
    cfg = small_config(models, models={"health": {"allow_unhealthy": True}, "batch_size": batch})
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


DELTAS = [f"results/{m}_deltas.{ext}" for m in ("image", "audio") for ext in ("npz", "json")]


def beside(project, tmp_path_factory, name: str, extract: dict):
    """The project's data and config in a fresh folder, extracted with other ``extract`` keys."""
    _, config, *_ = project
    base = tmp_path_factory.mktemp(name)
    write_data(base, IMAGES, AUDIO)
    cfg = yaml.safe_load(config.read_text()) | {"extract": extract}
    other = write_config(base, cfg)
    return base, other, snakemake(base, REPLACE, *DELTAS, config=other)


def assert_same_deltas(a, b):
    """Stores, seed JSON and meta of two runs: the same bits."""
    for m in ("image", "audio"):
        x, y = (
            DeltaStore.load(a / f"results/{m}_deltas.npz"),
            DeltaStore.load(b / f"results/{m}_deltas.npz"),
        )
        assert (
            x.delta.tobytes() == y.delta.tobytes() and x.original.tobytes() == y.original.tobytes()
        )
        for name in ("file_index", "effect_code", "intensity_code", "files", "effects"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
        assert x.meta == y.meta
        for ext in ("json", "meta.json"):
            path = f"results/{m}_deltas.{ext}"
            assert (a / path).read_bytes() == (b / path).read_bytes(), path


@pytest.fixture(scope="module")
def grouped(project, tmp_path_factory):
    return beside(project, tmp_path_factory, "grouped", {"group": "modality"})


def test_modality_grouping_runs_one_job_per_modality_with_the_same_bits(project, grouped):
    base, *_ = project
    gbase, _, run = grouped
    out = run.stdout + run.stderr
    assert "rule embed_image:" in out and "rule embed_audio:" in out
    assert "rule embed_variant:" not in out and "rule embed_original:" not in out
    assert_same_deltas(base, gbase)
    for path in (base / "results/embeddings").rglob("*.npz"):  # every table, one per variant
        mine = EmbeddingTable.load(gbase / path.relative_to(base))
        theirs = EmbeddingTable.load(path)
        assert mine.embeddings.tobytes() == theirs.embeddings.tobytes(), path
        assert mine.meta == theirs.meta, path


def test_a_grouped_rerun_embeds_only_the_changed_variant(grouped):
    gbase, config, _ = grouped
    cfg = yaml.safe_load(config.read_text())
    cfg["effects"]["image"]["blur"]["levels"]["high"]["sigma"] += 0.5
    changed = write_config(gbase, cfg, "changed.yaml")
    jobs = planned_jobs(snakemake(gbase, REPLACE, "--dry-run", *DELTAS, config=changed))
    assert jobs == {"embed_image": 1, "deltas": 1}  # the audio side and the manifests stay
    snakemake(gbase, REPLACE, *DELTAS, config=changed)
    n = sum(IMAGES.values())
    for path in (gbase / "results/embeddings/image").rglob("*.npz"):
        table = EmbeddingTable.load(path)
        expected = 0 if path.match("blur/high.npz") else n  # the cache answers the others
        assert table.meta["n_cached"] == expected, path


def test_shards_merge_to_the_same_bits_as_one_job_per_variant(project, tmp_path_factory):
    """3 shards of batches of 2: 5 images -> 2 + 2 + 1, 4 clips -> 2 + 2 + none."""
    base, *_ = project
    sbase, _, run = beside(
        project, tmp_path_factory, "sharded", {"group": "modality", "shard_files": 3}
    )
    out = run.stdout + run.stderr
    assert out.count("rule embed_image:") == 3 and out.count("rule merge_original:") == 2
    # vetting is cut the same way: 3 shards per modality, joined into the same manifest
    assert out.count("rule manifest:") == 6
    for m in ("image", "audio"):
        path = f"results/manifest/{m}.tsv"
        assert (sbase / path).read_text() == (base / path).read_text()
    sizes = [
        len(EmbeddingTable.load(sbase / f"results/embeddings/audio/lpf/low.part{k}.npz").paths)
        for k in range(3)
    ]
    assert sizes == [2, 2, 0]
    assert_same_deltas(base, sbase)
    for m in ("image", "audio"):
        path = f"results/embeddings/{m}/original.npz"
        mine, theirs = EmbeddingTable.load(sbase / path), EmbeddingTable.load(base / path)
        assert mine.embeddings.tobytes() == theirs.embeddings.tobytes()
        assert mine.meta == theirs.meta


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
