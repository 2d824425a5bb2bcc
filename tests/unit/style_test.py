"""The workflow stays lint-clean and formatted (snakemake --lint, snakefmt, ruff)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PY_PATHS = ["src", "tests", "workflow/scripts", "benchmarks", "scripts"]


def run(*cmd: str) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def test_snakemake_lint_is_clean():
    # .test/ (snakemake-workflows convention): committed small data and hub-id models, so a
    # fresh clone lints without generating anything (the default data/ root may not exist)
    proc = run(
        str(BIN / "snakemake"),
        *("--directory", ".test", "--configfile", ".test/config/config.yaml", "--lint"),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "good condition" in out, out


@pytest.mark.parametrize(
    "cmd",
    [
        ["snakefmt", "--check", "Snakefile", "workflow/rules"],
        ["ruff", "check", *PY_PATHS],
        ["ruff", "format", "--check", *PY_PATHS],
    ],
    ids=["snakefmt", "ruff-check", "ruff-format"],
)
def test_formatters_are_clean(cmd):
    proc = run(str(BIN / cmd[0]), *cmd[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
