"""`delta-v2a --version`, and one-line errors (no traceback) for what a user can fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "delta_v2a.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_version():
    from delta_v2a import __version__

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"delta-v2a {__version__}"


def _apply(tmp_path: Path, model: str, *extra: str) -> subprocess.CompletedProcess:
    audio = tmp_path / "in.wav"
    audio.write_bytes(b"")
    return cli(
        "apply", "--model", model, "--audio", str(audio), "--describe", "a very blurry photo",
        "--out", str(tmp_path / "out.wav"), *extra,
    )  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("delta-v2a apply: error: "), proc.stderr
    return lines[0]


def test_missing_model_file(tmp_path):
    line = one_line_error(_apply(tmp_path, str(tmp_path / "nowhere.pt")))
    assert "nowhere.pt" in line and "no such file" in line.lower()


def test_unreadable_model_file(tmp_path):
    bad = tmp_path / "decoder_model.pt"
    bad.write_bytes(b"not a torch file")
    line = one_line_error(_apply(tmp_path, str(bad)))
    assert "decoder_model.pt: cannot read the decoder" in line


def test_cuda_requested_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the request is valid here")
    model = tmp_path / "decoder_model.pt"  # the arguments are checked first: a file is there
    model.write_bytes(b"not read: the device check comes before the model loads")
    line = one_line_error(_apply(tmp_path, str(model), "--device", "cuda"))
    assert "device 'cuda' requested but CUDA is not available" in line
