"""The console a person reads: short lines at thousands of files, every job line tagged."""

from __future__ import annotations

import re

import pytest
from workflow_utils import make_project, planned_jobs, snakemake, write_image

pytestmark = pytest.mark.workflow
# "A few hundred characters": the longest line is the deltas job's list of its 12 variant
# tables (~700 characters), which grows with effects x intensities, never with the files.
MAX_LINE = 1000
JOB_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING|ERROR) (.*)$")


def test_dry_run_at_3000_files_has_no_long_line(tmp_path, tiny_clip_dir, tiny_clap_dir):
    # 4 songs with half on test: the parse-time data-size check plans Phase 3 (2 test files)
    config = make_project(
        tmp_path,
        {"image": tiny_clip_dir, "audio": tiny_clap_dir},
        {},
        {"folk": 4},
        {"phase3": {"split": {"val": 0.25, "test": 0.5}}},
    )
    for i in range(3000):  # names as long as real ones, so the old listing would be ~150 kB
        write_image(
            tmp_path / "data/images" / f"cat{i % 7}" / f"photo_{i:05d}_holiday.png", i, (8, 8)
        )
    proc = snakemake(tmp_path, "--dry-run", config=config)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert planned_jobs(proc)["manifest"] == 2
    longest = max(lines, key=len)
    assert len(longest) <= MAX_LINE, longest[:200]
    inputs = [x for x in lines if x.strip().startswith("input:") and "inventory" in x]
    assert inputs and all("photo_" not in x for x in inputs)
    inventory = (tmp_path / "results/manifest/image.inventory.tsv").read_text().splitlines()
    assert len(inventory) == 3001 and inventory[0] == "path\tsize\tsha256"
    # parsing again changes nothing, so nothing becomes stale by itself
    stamp = (tmp_path / "results/manifest/image.inventory.tsv").stat().st_mtime_ns
    snakemake(tmp_path, "--dry-run", config=config)
    assert (tmp_path / "results/manifest/image.inventory.tsv").stat().st_mtime_ns == stamp


def test_every_job_line_names_its_job(tmp_path, tiny_clip_dir, tiny_clap_dir):
    config = make_project(
        tmp_path, {"image": tiny_clip_dir, "audio": tiny_clap_dir}, {"a": 2, "b": 2}, {"folk": 3}
    )
    targets = ["results/embeddings/image/blur/low.npz", "results/embeddings/audio/lpf/high.npz"]
    proc = snakemake(tmp_path, *targets, config=config)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert max(len(x) for x in lines) <= MAX_LINE
    job_lines = [m.group(2) for x in lines if (m := JOB_LINE.match(x))]
    assert job_lines, "no job log lines on the console"
    tags = {"manifest image/", "manifest audio/", "embed image/blur/low]", "embed audio/lpf/high]"}
    assert all(any(x.startswith(f"[{t}") for t in tags) for x in job_lines), job_lines
    # tqdm's rate: "3.21files/s", or "2.50s/files" below one a second, "?files/s" at the start
    progress = re.compile(r"embedded (\d+)/(\d+) files \(\d+%\) \S+/\S+ ETA \S+$")
    for tag, n in (("embed image/blur/low", 4), ("embed audio/lpf/high", 3)):
        done = [progress.search(x) for x in job_lines if x.startswith(f"[{tag}]")]
        assert any(m and m.groups() == (str(n), str(n)) for m in done), (tag, job_lines)
    text = "\n".join(lines)
    assert "Loading weights" not in text and "it/s]" not in text  # no Hugging Face bars
    # an added file reruns the manifest (through the inventory) and its modality only
    write_image(tmp_path / "data/images/a/new.png", 99)
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run", *targets, config=config))
    assert jobs == {"manifest": 1, "manifest_current": 1, "embed_variant": 1}
