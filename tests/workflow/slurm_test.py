"""The whole workflow through `profiles/slurm` on a real one-node SLURM cluster (not a mock).

The cluster (munged + slurmctld + slurmd, see slurm_cluster.py) runs on this machine under a
temporary prefix. The run uses the shipped profile plus a test overlay that does what a CPU-only
site does (profiles/README.md): one local partition, no account, no GPUs, `squeue` for job states
because accounting is off, and threads capped at half the node's CPUs so that two jobs run side by
side. The same small project is also run locally with the same thread cap; the artifacts must be
equal. A job that fails on the cluster must end the run with a non-zero exit, within a bound.

Skipped, with the reason, when the machine cannot install or start SLURM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import SlurmCluster, SlurmUnavailable
from workflow_utils import ROOT, SNAKEMAKE, planned_jobs, write_data

from delta_v2a.config import load_config

pytestmark = pytest.mark.workflow

PROFILE = ROOT / "profiles/slurm"
# A small overlay of the defaults: 2 image and 2 audio effects, 2 intensities, 2 categories x 2
# files per modality.
KEEP = {"image": ["blur", "brightness"], "audio": ["lpf", "saturation"]}
INTENSITIES = ["low", "high"]
IMAGES = {"city": 2, "forest": 2}
AUDIO = {"folk": 2, "jazz": 2}
RUN_TIMEOUT_S = 900  # every snakemake call is killed (SIGKILL) past this
MODEL_RULES = {"embed_original", "embed_variant", "health"}
SLURM_ID = re.compile(r"SLURM_JOB_ID=([^\s,]+)")  # the log line goes on: ", process up …"


def small_workflow(base: Path, models: dict[str, Path], source: Path = ROOT) -> Path:
    """A copy of the workflow (Snakefile, workflow/, src/, config/, envs/) whose default config is
    repository's reduced to the small overlay, plus its data; returns the copied Snakefile.

    Why a copy: a --configfile overlay is merged into config/config.yaml, so it cannot drop effects
    or levels, and Snakemake 9.27 does not pass --replace-workflow-config on to the jobs it
    submits (they would read the full config and stop on the levels the overlay dropped)."""
    for name in ("Snakefile", "workflow", "src", "config", "envs"):
        src = source / name
        if src.is_dir():
            shutil.copytree(
                src,
                base / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(src, base / name)
    cfg = load_config(source / "workflow/schemas/config.schema.yaml", source / "config/config.yaml")
    cfg["intensities"] = INTENSITIES
    for modality, names in KEEP.items():
        effects = cfg["effects"][modality]
        cfg["run_effects"][modality] = list(names)
        cfg["effects"][modality] = {
            n: {**effects[n], "levels": {i: effects[n]["levels"][i] for i in INTENSITIES}}
            for n in names
        }
    cfg["data"] = {"images": "data/images", "audio": "data/audio"}
    cfg["models"].update(
        {"image": str(models["image"]), "audio": str(models["audio"]), "device": "cpu"}
    )
    cfg["models"]["health"]["allow_unhealthy"] = True  # tiny random towers are "collapsed"
    # 4 songs: half of them test files, the 2 Phase 3 needs (checked when the DAG is built)
    cfg["phase3"]["split"] = {"val": 0.25, "test": 0.5}
    (base / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    write_data(base, IMAGES, AUDIO)
    return base / "Snakefile"


def run_snakemake(
    base: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = RUN_TIMEOUT_S,
) -> tuple[subprocess.CompletedProcess, float]:
    """snakemake on the workflow copy in `base`, under `timeout -s KILL`; returns the process
    and its wall time."""
    cmd = [
        "timeout",
        "-s",
        "KILL",
        str(int(timeout_s)),
        SNAKEMAKE,
        "--snakefile",
        str(base / "Snakefile"),
        "--directory",
        str(base),
        *args,
    ]
    env = dict(env or os.environ)
    env |= {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
        stdin=subprocess.DEVNULL,
        timeout=timeout_s + 30,
    )
    return proc, time.monotonic() - t0


def dry_run_resources(base: Path, *args: str) -> dict[str, str]:
    """Rule -> its resources line, from a dry run (first job of each rule)."""
    proc, _ = run_snakemake(base, "--dry-run", *args, timeout_s=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out, rule = {}, None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            out.setdefault(rule, line.split(":", 1)[1].strip())
    return out


def threads_per_job(cluster: SlurmCluster) -> int:
    """Threads cap for the test: two jobs side by side on the node (the Snakemake start of one
    overlaps the other's work; on 2 CPUs one run took 162 s, against 253 s with 2 threads)."""
    return max(1, cluster.cpus // 2)


def site_overlay(base: Path, cluster: SlurmCluster, **extra) -> Path:
    """A profile given after profiles/slurm: what a CPU-only site with accounting off changes.

    Snakemake replaces a key given by a later profile as a whole, so default-resources and
    set-resources are restated from profiles/slurm with the site's values substituted; every
    rule that asks for a GPU (in the profile or in its own resources) gets gpu=0."""
    shipped = yaml.safe_load((PROFILE / "config.yaml").read_text())
    site = {"slurm_partition": cluster.partition, "slurm_account": ""}
    set_resources = {
        rule: {**res, **site, "gpu": 0} for rule, res in shipped.get("set-resources", {}).items()
    }
    for rule, resources in dry_run_resources(base, "--profile", str(PROFILE)).items():
        if re.search(r"\bgpu=[1-9]", resources):
            set_resources.setdefault(rule, {**site, "gpu": 0})
    overlay = {
        "slurm-status-command": "squeue",  # accounting is off: sacct would never answer
        "slurm-init-seconds-before-status-checks": 5,  # MinJobAge (300) >= 3 x this
        "max-threads": threads_per_job(cluster),
        "default-resources": {**shipped["default-resources"], **site},
        "set-resources": set_resources,
        **extra,
    }
    path = base / "test-overlay"
    path.mkdir(exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


def artifact_files(base: Path) -> list[str]:
    """Artifacts to compare: results/ without timings, caches and figures (PNG metadata)."""
    skip = ("benchmarks/", "cache/", "figures/")
    return sorted(
        str(p.relative_to(base / "results"))
        for p in (base / "results").rglob("*")
        if p.is_file()
        and not str(p.relative_to(base / "results")).startswith(skip)
        and p.suffix != ".png"
        and not p.name.startswith(".")  # Snakemake's directory() timestamps
        and not p.name.endswith(".inventory.tsv")  # parse-time record of sizes and mtimes
    )


def assert_same_tree(x, y, where) -> None:
    """Nested dicts/lists of tensors, arrays and plain values: equal, exactly."""
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), where
        for key in x:
            assert_same_tree(x[key], y[key], f"{where}.{key}")
    elif isinstance(x, list | tuple):
        assert isinstance(y, list | tuple) and len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            assert_same_tree(u, v, f"{where}[{i}]")
    elif hasattr(x, "numpy"):  # a tensor
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=str(where))
    else:
        np.testing.assert_equal(x, y, err_msg=str(where))


def assert_same_artifact(a: Path, b: Path) -> None:
    if a.suffix == ".npz":
        with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
            assert sorted(x.files) == sorted(y.files), a
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{a}:{key}")
    elif a.suffix == ".npy":
        np.testing.assert_array_equal(np.load(a), np.load(b), err_msg=str(a))
    elif a.suffix == ".json":
        assert json.loads(a.read_text()) == json.loads(b.read_text()), a
    elif a.suffix == ".pt":  # torch's zip container differs byte-wise; its content may not
        import torch

        assert_same_tree(torch.load(a, weights_only=True), torch.load(b, weights_only=True), a)
    else:
        assert a.read_bytes() == b.read_bytes(), a


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(request):
    c = SlurmCluster()
    request.addfinalizer(c.stop)  # also when a test fails or start() half-succeeds
    try:
        c.start()
    except SlurmUnavailable as err:
        pytest.skip(f"SLURM test cluster unavailable: {err}")
    return c


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory, tiny_clip_dir, tiny_clap_dir):
    models = {"image": tiny_clip_dir, "audio": tiny_clap_dir}
    local = tmp_path_factory.mktemp("local")
    on_slurm = tmp_path_factory.mktemp("slurm")
    small_workflow(local, models)
    small_workflow(on_slurm, models)
    overlay = site_overlay(on_slurm, cluster)
    profiles = ["--profile", str(PROFILE), "--profile", str(overlay)]
    dry, _ = run_snakemake(on_slurm, "--dry-run", *profiles, env=cluster.env())
    slurm, slurm_s = run_snakemake(on_slurm, *profiles, env=cluster.env())
    # the same thread counts as on the cluster, so that the numbers can be equal bit for bit
    threads = str(threads_per_job(cluster))
    local_run, local_s = run_snakemake(
        local, "--cores", str(cluster.cpus), "--max-threads", threads
    )
    print(f"\nsmall overlay: local run {local_s:.0f} s, SLURM run {slurm_s:.0f} s")
    return {
        "local": local,
        "slurm": on_slurm,
        "dry": dry,
        "slurm_run": slurm,
        "local_run": local_run,
        "times": (local_s, slurm_s),
    }


def test_whole_workflow_runs_on_slurm(runs):
    proc = runs["slurm_run"]
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Using profiles" in out and str(PROFILE) in out
    assert runs["local_run"].returncode == 0, (runs["local_run"].stderr)[-6000:]
    assert "100%" in out and "done" in out


def run_jobs(proc: subprocess.CompletedProcess) -> list[tuple[bool, str, list[str]]]:
    """(local?, rule, log files) of every job a run started, from its output."""
    jobs, current = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(local)?rule (\w+):", line)
        if m:
            current = (bool(m.group(1)), m.group(2), [])
            jobs.append(current)
        elif current and line.strip().startswith("log:"):
            current[2].extend(x.strip() for x in line.split(":", 1)[1].split(","))
        elif not line.startswith(" "):
            current = None
    return jobs


def test_every_job_ran_as_a_slurm_batch_job(runs, cluster):
    """Each non-local job's log names the SLURM job it ran in (SLURM_JOB_ID), that job is one
    the run submitted with sbatch, and slurmd's log says it launched it as a batch job."""
    base, proc = runs["slurm"], runs["slurm_run"]
    jobs = run_jobs(proc)
    assert len(jobs) == sum(planned_jobs(runs["dry"]).values())
    local_rules = {rule for local, rule, _ in jobs if local}
    assert "all" in local_rules and not local_rules & MODEL_RULES, local_rules
    remote = [(rule, logs) for local, rule, logs in jobs if not local]
    n_variants = sum(len(v) for v in KEEP.values()) * len(INTENSITIES)
    assert sum(rule == "embed_variant" for rule, _ in remote) == n_variants
    submitted = [int(n) for n in re.findall(r"submitted with SLURM jobid (\d+)", proc.stderr)]
    assert len(submitted) == len(set(submitted)) == len(remote)  # one sbatch per job
    launched = cluster.launched_batch_jobs()
    assert set(submitted) <= launched, (submitted, sorted(launched))
    seen = set()
    for rule, logs in remote:
        ids = [i for log in logs for i in SLURM_ID.findall((base / log).read_text())]
        assert len(ids) == 1 and int(ids[0]) in submitted, (rule, logs, ids)
        seen.add(int(ids[0]))
    assert seen == set(submitted)  # and no two jobs share one
    for local, rule, logs in jobs:  # local rules ran on the submit host, outside SLURM
        for log in logs if local else []:
            assert SLURM_ID.findall((base / log).read_text()) in ([], ["None"]), (rule, log)
    print(f"\n{len(remote)} jobs, {len(submitted)} sbatch jobs, local rules: {sorted(local_rules)}")


def test_artifacts_equal_a_local_run(runs):
    local, on_slurm = runs["local"], runs["slurm"]
    names = artifact_files(local)
    assert names == artifact_files(on_slurm)
    assert "image_deltas.npz" in names and "sensitivity_results.json" in names
    for name in names:
        assert_same_artifact(local / "results" / name, on_slurm / "results" / name)


def test_failing_job_makes_snakemake_exit_nonzero(cluster, tmp_path, tiny_clip_dir, tiny_clap_dir):
    """A job that fails on the cluster (a corrupt image under on_bad_file: error) ends the run
    with a non-zero exit, within a bound, instead of waiting forever for its status."""
    base = tmp_path
    small_workflow(base, {"image": tiny_clip_dir, "audio": tiny_clap_dir})
    (base / "data/images/city/broken.png").write_bytes(b"not a png at all")
    overlay = site_overlay(base, cluster)
    t0 = time.monotonic()
    proc, wall = run_snakemake(
        base,
        "--profile",
        str(PROFILE),
        "--profile",
        str(overlay),
        "results/manifest/image.tsv",
        env=cluster.env(),
        timeout_s=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, -9, 137), (proc.returncode, out[-4000:])
    assert wall < 240, f"took {time.monotonic() - t0:.0f} s"
    assert re.search(r"Error in rule manifest", out), out[-4000:]
    assert re.search(r"SLURM-job '\d+' failed", out), out[-4000:]
    manifest_log = "".join(p.read_text() for p in (base / "logs/manifest/image").glob("*.log"))
    ids = SLURM_ID.findall(manifest_log)
    assert ids and ids[0].isdigit() and int(ids[0]) in cluster.launched_batch_jobs()
    assert "broken.png" in manifest_log
