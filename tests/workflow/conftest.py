"""One small end-to-end run of the committed .test/ configuration, shared by the target, table,
Phase 3 and report tests (the run costs minutes on a busy 2-core machine; it is made once, and a
test that changes it works on a copy)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sessions import shared_folder
from workflow_utils import ROOT, VENV, copy_repository, small_run_configs, snakemake

#: Pinned revisions the small run declares, so every artifact must carry them.
SMALL_RUN_REVISIONS = {"image": "a" * 40, "audio": "b" * 40}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_root: Path) -> Path:
    """.test/ copied to a temporary folder and run to the end (`all`) on the tiny models, once
    per test run (shared by xdist's workers: tests/sessions.py)."""

    def build(base: Path) -> None:
        shutil.copytree(ROOT / ".test/config", base / "config")
        shutil.copytree(ROOT / ".test/data", base / "data")
        overlay = {
            "models": {
                "image": str(tiny_model_root / "tiny-clip"),
                "audio": str(tiny_model_root / "tiny-clap"),
                "device": "cpu",
                "revision": SMALL_RUN_REVISIONS,
            }
        }
        (base / "config/tiny-models.yaml").write_text(yaml.safe_dump(overlay))
        run = snakemake(base, *small_run_configs(base))
        (base / "console.txt").write_text(run.stdout + run.stderr)  # what the run printed

    return shared_folder(tmp_path_factory, "small_run", build)


@pytest.fixture(scope="session")
def planted_state(tmp_path_factory: pytest.TempPathFactory, tiny_model_root: Path) -> Path:
    """A copy of the repository after `make demo`, by the Makefile's own command: the demo
    media under resources/demo, the planted world's 60 songs under resources/planted, one
    model sweep (config/demo-sweep.yaml) of the planted world (the positive control:
    docs/methods.md §9) under runs/planted and the tiny random models under results/, and
    their comparison under results/sweep; then the planted world's twin under
    runs/planted-twin (a copy of the world rerun from Phase 3's targets with
    config/planted-twin.yaml: an audio-independent target, the negative). Built once per
    test run."""

    def build(state: Path) -> None:
        copy_repository(state)
        env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(state / "src")}
        subprocess.run([sys.executable, "-m", "delta_v2a.demo", str(state / "resources/demo")],
                       check=True, capture_output=True, cwd=state, env=env)  # fmt: skip
        media = [sys.executable, "-m", "delta_v2a.demo", "resources/planted", "--songs", "60"]
        subprocess.run(media, check=True, capture_output=True, cwd=state, env=env)
        (state / "resources/models").mkdir(parents=True)
        for name in ("tiny-clip", "tiny-clap"):  # what `make demo` writes first
            (state / "resources/models" / name).symlink_to(tiny_model_root / name)
        argv = [str(VENV / "bin/snakemake"), "--cores", "2", "--configfile",
                "config/demo-sweep.yaml"]  # fmt: skip
        run = subprocess.run(argv, cwd=state, env=env, capture_output=True, text=True,
                             timeout=2400)  # fmt: skip
        (state / "planted_console.txt").write_text(run.stdout + run.stderr)
        assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
        # the twin: the same world, only Phase 3 reruns (forced from its targets)
        shutil.copytree(state / "runs/planted", state / "runs/planted-twin", symlinks=True)
        # the world's media paths are relative to the repository (the sweep runs there)
        (state / "runs/planted-twin/resources").symlink_to("../../resources")
        argv = [str(VENV / "bin/snakemake"), "--cores", "2", "--directory", "runs/planted-twin",
                "--configfile", "config/planted.yaml", "config/planted-twin.yaml",
                "--forcerun", "phase3_strength"]  # fmt: skip
        run = subprocess.run(argv, cwd=state, env=env, capture_output=True, text=True,
                             timeout=2400)  # fmt: skip
        (state / "planted_twin_console.txt").write_text(run.stdout + run.stderr)
        assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    return shared_folder(tmp_path_factory, "planted_state", build)
