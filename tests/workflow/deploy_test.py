"""The workflow deployed the standard way: a user's own Snakefile imports it as a Snakemake
`module` (what snakedeploy writes; docs/deploy.md) from a copy elsewhere, and runs the .test
configuration. The copy's folder, the user's folder and the checkout differ, so nothing may be
found from workflow.basedir or the shell's directory.

Cost: the small run's results (made once per test run by the small_run fixture through the
root Snakefile) are copied in, and the module import reruns the tail of the study on them
(Phase 0-b consistency, the summary and the tables, through the module's scripts and src/); a
dry run in an empty folder plans the whole study through the module and the root Snakefile.
About 1 min beside the small run on a busy 2-core machine (17 s plan, 39 s rerun).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_utils import SNAKEMAKE, copy_repository, planned_jobs

USER_SNAKEFILE = """\
configfile: "config/config.yaml"
configfile: "config/tiny-models.yaml"


module delta_v2a:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from delta_v2a
"""

#: The tail of the study the import reruns: CPU jobs through the module's scripts (their
#: inputs' other consumers, Phase 3 among them, stay done).
RERUN = ("linearity", "summary", "tables")


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # the module must find its own src/
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args], cwd=folder, env=env, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, small_run: Path) -> tuple[Path, Path]:
    """(the workflow's copy, the user's project with the .test config and data)."""
    copy = copy_repository(tmp_path_factory.mktemp("deployed") / "delta-v2a")
    (copy / ".venv").unlink()  # a deployed workflow has no environment of its own
    user = tmp_path_factory.mktemp("user-project")
    shutil.copytree(small_run / "config", user / "config")
    shutil.copytree(small_run / "data", user / "data")
    snakefile = copy / "workflow/Snakefile"
    (user / "Snakefile").write_text(USER_SNAKEFILE.format(snakefile=snakefile))
    return copy, user


def test_a_module_import_plans_the_whole_study(deployed, small_run, tmp_path):
    copy, user = deployed
    fresh = tmp_path / "fresh"
    shutil.copytree(user, fresh)
    proc = run(fresh, "--dry-run")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    jobs = planned_jobs(proc)
    assert jobs["all"] == 1 and jobs["embed_variant"] == 8 and jobs["phase3"] == 1
    # the same plan as the root Snakefile's on the same config
    root = subprocess.run(
        [SNAKEMAKE, "-s", str(copy / "Snakefile"), "-d", str(fresh), "--dry-run", "--cores", "2",
         "--configfile", str(fresh / "config/config.yaml"), str(fresh / "config/tiny-models.yaml")],
        capture_output=True, text=True, timeout=300, env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert root.returncode == 0, root.stderr[-3000:]
    assert planned_jobs(root) == jobs


def test_a_module_import_runs_the_test_config(deployed, small_run):
    copy, user = deployed
    for folder in ("results", "logs", ".snakemake"):
        shutil.copytree(small_run / folder, user / folder, symlinks=True)
    outputs = [
        "results/linearity_results.json",
        "results/summary.json",
        "results/tables/verdicts.tsv",
    ]
    for path in outputs:
        (user / path).unlink()
    proc = run(user)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    ran = {line.split("Rule: ")[1].rstrip(")") for line in text.splitlines() if "(Rule: " in line}
    assert set(RERUN) <= ran <= set(RERUN) | {"all"}, ran
    for path in outputs:
        assert (user / path).stat().st_size > 0, path
    # Each job checked that it imported the copy's src/ (check_code_origin fails the job
    # otherwise), although the environment's editable install points at the checkout.
    summary = yaml.safe_load((user / "results/summary.json").read_text())
    assert summary == yaml.safe_load((small_run / "results/summary.json").read_text())
