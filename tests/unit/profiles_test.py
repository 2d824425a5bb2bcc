"""The shipped profiles (profiles/slurm, profiles/workstation): valid keys, and a dry run through
each lists the workflow's jobs without a cluster. Fast: dry runs only."""

from __future__ import annotations

import logging
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
    # 4 songs with half on test: the parse-time data-size check plans Phase 3 (2 test files)
    config = make_project(
        base,
        {"image": tiny_clip_dir, "audio": tiny_clap_dir},
        {"city": 1},
        {"folk": 4},
        {"phase3": {"split": {"val": 0.25, "test": 0.5}}},
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
    assert {"slurm_account", "runtime", "mem_mb", "cpus_per_task"} <= set(defaults)
    # Derived, not listed: no rule names and no partition the plugin would take as given
    # (a job's own slurm_partition overrides the plugin's choice).
    assert "set-resources" not in profile and "slurm_partition" not in defaults
    assert partitions() == {CPU_PARTITION: 0, GPU_PARTITION: 8}
    readme = (PROFILES / "README.md").read_text()
    for key in [*profile, *defaults, *load("workstation"), *load("demo")]:
        assert f"`{key}`" in readme, f"profiles/README.md does not document `{key}`"


def partitions() -> dict[str, int]:
    """The SLURM profile's partitions: name -> max_gpu."""
    path = PROFILES / "slurm" / load("slurm")["slurm-partition-config"]
    return {
        name: p.get("max_gpu", 0)
        for name, p in yaml.safe_load(path.read_text())["partitions"].items()
    }


class DryRunJob:
    """What the SLURM plugin's partition choice reads of a job: its resources and threads."""

    def __init__(self, rule: str, line: str):
        self.name = rule
        self.resources = {k: v for k, _, v in (x.partition("=") for x in line.split(", "))}
        self.threads = int(self.resources.get("cpus_per_task", 1))


def chosen_partition(rule: str, line: str) -> str | None:
    """The partition the SLURM plugin itself picks for a dry run's job (its own code, on the
    profile's partition file), as it does at submission."""
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    path = PROFILES / "slurm" / load("slurm")["slurm-partition-config"]
    return get_best_partition(read_partition_file(path), DryRunJob(rule, line), logging.getLogger())


#: The model rules each extraction grouping makes (docs/methods.md §2.2), with file shards too.
GROUP_MODEL_RULES = {
    "variant": {"embed_variant", "embed_original"},
    "effect": {"embed_effect", "embed_original"},
    "modality": {"embed_image", "embed_audio"},
}
ALWAYS_MODEL_RULES = {"health", "phase1", "phase3_windows", "phase3_dataset", "phase3_strength",
                      "phase3", "transfer_examples"}  # fmt: skip


@pytest.mark.parametrize("shards", [0, 2])
@pytest.mark.parametrize("group", sorted(GROUP_MODEL_RULES))
def test_slurm_sends_every_model_job_to_the_gpu_partition(project, group, shards):
    """Every job that asks for a GPU goes to the GPU partition with gpu=1, every other one to
    the CPU partition, for every extract.group and with file shards: the plugin's own choice on
    each job of the dry run. Each carries mem_mb and runtime."""
    base, config = project
    overlay = base / f"extract-{group}-{shards}.yaml"
    overlay.write_text(yaml.safe_dump({"extract": {"group": group, "shard_files": shards}}))
    proc = dry_run(base, config, "--profile", str(PROFILES / "slurm"), "--configfile",
                   str(config), str(overlay))  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "Using profile" in out and "profiles/slurm" in out
    jobs = planned_jobs(proc)
    resources = job_resources(proc)
    assert set(resources) >= set(jobs) - {"all"}
    on_gpu = set()
    for rule, lines in resources.items():
        for line in lines:
            gpu = resource(line, "gpu")
            want = GPU_PARTITION if gpu not in (None, "0") else CPU_PARTITION
            assert chosen_partition(rule, line) == want, (rule, line)
            on_gpu |= {rule} if want == GPU_PARTITION else set()
            if rule not in {"all"}:
                assert resource(line, "mem_mb") and resource(line, "runtime"), (rule, line)
            assert resource(line, "slurm_account") == "EDIT-ME-account", (rule, line)
    assert on_gpu == GROUP_MODEL_RULES[group] | ALWAYS_MODEL_RULES
    if (group, shards) == ("variant", 0):
        assert jobs["embed_variant"] == 24 and jobs["embed_original"] == 2
    if shards:  # one model job per file shard, each on the GPU partition
        assert all(jobs[r] % shards == 0 for r in GROUP_MODEL_RULES[group]), jobs
        assert jobs["merge_original"] == 2


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
