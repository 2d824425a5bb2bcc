"""What reruns is decided by file content (docs/methods.md §2.1): the same bytes plan nothing,
a changed byte reruns what depends on it, and a failed vetting keeps the last good results."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image
from workflow_utils import planned_jobs, small_config, snakemake, write_config, write_data

pytestmark = pytest.mark.workflow
REPLACE = "--replace-workflow-config"
TARGET = "results/embeddings/image/blur/low.npz"


@pytest.fixture
def project(tmp_path, tiny_clip_dir, tiny_clap_dir):
    write_data(tmp_path, {"city": 2}, {"folk": 1})
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    config = write_config(tmp_path, small_config(models, 1, on_bad_file="error"))
    snakemake(tmp_path, REPLACE, TARGET, config=config)
    return tmp_path, config


def _planned(base, config):
    return planned_jobs(snakemake(base, REPLACE, "--dry-run", TARGET, config=config))


def test_same_bytes_plan_nothing_and_a_changed_byte_reruns(project):
    base, config = project
    photo = base / "data/images/city/img 0.png"
    photo.touch()
    assert _planned(base, config) == {}
    shutil.copy(photo, base / "backup.png")
    photo.write_bytes(b"")  # emptied, then the backup copied back
    shutil.copy(base / "backup.png", photo)
    assert _planned(base, config) == {}
    photo.write_bytes((base / "data/images/city/img 1.png").read_bytes())  # other bytes
    assert _planned(base, config) == {"manifest": 1, "manifest_current": 1, "embed_variant": 1}


def test_failed_vetting_keeps_the_last_good_manifest_and_results(project):
    base, config = project
    manifest = base / "results/manifest/image.tsv"
    before, stamp = manifest.read_text(), manifest.stat().st_mtime_ns
    bad = base / "data/images/city/anim.png"
    frames = [Image.new("RGB", (16, 16), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(bad, "GIF", save_all=True, append_images=frames[1:])
    proc = snakemake(base, REPLACE, TARGET, config=config, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "data/images/city/anim.png: animated GIF (3 frames)" in text
    assert "Traceback" not in text
    assert manifest.read_text() == before and manifest.stat().st_mtime_ns == stamp
    assert (base / TARGET).exists()
    bad.unlink()
    assert _planned(base, config) == {}
