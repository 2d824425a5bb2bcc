"""The shipped profiles (profiles/slurm, profiles/workstation): valid keys, and a dry run through
each lists the workflow's jobs without a cluster. Fast: dry runs only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_utils import ROOT, SNAKEMAKE, make_project, planned_jobs

PROFILES = ROOT / "profiles"
GPU_PARTITION = "EDIT-ME-gpu-partition"
CPU_PARTITION = "EDIT-ME-cpu-partition"


def load(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def cli_options() -> set[str]:
    """Every long option snakemake accepts here, executor plugins' included."""
    from snakemake.cli import get_argument_parser

    parser = get_argument_parser()
    return {s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")}


def dry_run(base: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    env.pop("SLURM_CONF", None)  # no cluster: nothing may need one
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(base),
        "--configfile",
        str(config),
        "--dry-run",
        *args,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=180, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def job_resources(proc: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """Rule -> the distinct resources lines of its jobs in a dry run."""
    out: dict[str, set[str]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            out.setdefault(rule, set()).add(line.split(":", 1)[1].strip())
    return out


def resource(line: str, name: str) -> str | None:
    m = re.search(rf"(?:^|, ){name}=([^,]*)", line)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_clip_dir, tiny_clap_dir):
    base = tmp_path_factory.mktemp("profiles")
    config = make_project(
        base, {"image": tiny_clip_dir, "audio": tiny_clap_dir}, {"city": 1}, {"folk": 1}
    )
    return base, config


@pytest.fixture(scope="module")
def rules(project) -> set[str]:
    base, config = project
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(base), "--configfile", str(config)]
        + ["--list-rules"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # one rule a line, "name" or "name (docstring...", continuation lines indented
    return {m.group(1) for m in re.finditer(r"^(\w+)(?: \(|$)", proc.stdout, re.MULTILINE)}


@pytest.mark.parametrize("name", ["slurm", "workstation", "demo"])
def test_profile_keys_are_snakemake_options(name, rules):
    profile = load(name)
    unknown = set(profile) - cli_options()
    assert not unknown, f"profiles/{name}: not snakemake options: {sorted(unknown)}"
    assert set(profile.get("set-resources", {})) <= rules, "set-resources names unknown rules"
    assert set(profile.get("set-threads", {})) <= rules


def test_slurm_profile_has_the_documented_defaults():
    profile = load("slurm")
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert {"slurm_account", "slurm_partition", "runtime", "mem_mb", "cpus_per_task"} <= set(
        defaults
    )
    assert defaults["slurm_partition"] == CPU_PARTITION
    for rule, res in profile["set-resources"].items():
        assert res["slurm_partition"] == GPU_PARTITION and res["gpu"] == 1, rule
    readme = (PROFILES / "README.md").read_text()
    for key in [*profile, *defaults, *load("workstation"), *load("demo")]:
        assert f"`{key}`" in readme, f"profiles/README.md does not document `{key}`"


def test_slurm_dry_run_lists_submissions_without_a_cluster(project):
    """Every job that needs a GPU goes to the GPU partition with gpu=1; every other one to the
    CPU partition without one; each carries mem_mb and runtime."""
    base, config = project
    proc = dry_run(base, config, "--profile", str(PROFILES / "slurm"))
    out = proc.stdout + proc.stderr
    assert "Using profile" in out and "profiles/slurm" in out
    jobs = planned_jobs(proc)
    assert jobs["embed_variant"] == 24 and jobs["embed_original"] == 2
    resources = job_resources(proc)
    assert set(resources) >= set(jobs) - {"all"}
    for rule, lines in resources.items():
        for line in lines:
            gpu = resource(line, "gpu")
            partition = resource(line, "slurm_partition")
            if gpu not in (None, "0"):
                assert partition == GPU_PARTITION, (rule, line)
            else:
                assert partition == CPU_PARTITION, (rule, line)
            if rule not in {"all"}:
                assert resource(line, "mem_mb") and resource(line, "runtime"), (rule, line)
            assert resource(line, "slurm_account") == "EDIT-ME-account", (rule, line)


def test_workstation_dry_run_shares_the_gpu_in_two_slots(project):
    base, config = project
    proc = dry_run(base, config, "--profile", str(PROFILES / "workstation"))
    out = proc.stdout + proc.stderr
    assert "profiles/workstation" in out
    jobs = planned_jobs(proc)
    # extract.group: modality: one model job per modality, not 1 + 12 per modality
    assert jobs["embed_image"] == jobs["embed_audio"] == 1
    assert not {"embed_variant", "embed_original"} & set(jobs)
    profile = load("workstation")
    assert profile["cores"] == 8 and profile["resources"] == {"gpu": 2}
    resources = job_resources(proc)
    model_rules = {r for r, lines in resources.items() if any(resource(x, "gpu") for x in lines)}
    assert {"embed_image", "embed_audio", "health"} <= model_rules
    # CPU-only rules exist to run beside the model job
    assert {"manifest", "deltas", "sensitivity"} <= set(resources) - model_rules
