"""The `delta-v2a` command."""

from __future__ import annotations

import numpy as np
import yaml
from workflow_utils import ROOT

SR = 48_000
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
ALL_AUDIO = list(CONFIG["effects"]["audio"])
WORDS = CONFIG["phase3"]["level_words"]
TEMPLATES = CONFIG["phase3"]["descriptions"]


def _music(seconds: float = 1.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 20))
    return (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_cli_runs_as_a_module():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "delta_v2a.cli", "apply", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--describe" in proc.stdout


def test_cli_has_apply_and_info_with_force():
    from delta_v2a.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["info", "m.pt"])
    assert args.command == "info" and args.model == "m.pt" and not args.json
    args = parser.parse_args(
        ["apply", "--model", "m", "--audio", "a", "--describe", "d", "--out", "o", "--force"]
    )
    assert args.force is True and args.func.__name__ == "_apply"
