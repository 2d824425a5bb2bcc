"""The `delta-v2a` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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


@pytest.mark.parametrize(
    ("argv", "quiet"),
    [
        (["info", "m.pt"], True),
        (["--verbose", "info", "m.pt"], False),
        (["info", "m.pt", "--verbose"], False),
    ],
)
def test_third_party_bars_hidden_unless_verbose(monkeypatch, argv, quiet):
    from delta_v2a import cli

    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)
    args = cli.build_parser().parse_args(argv)
    cli.quiet_third_party(args.verbose)
    assert (os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1") is quiet
    assert (os.environ.get("TRANSFORMERS_VERBOSITY") == "error") is quiet


def test_quiet_cli_loads_a_model_without_progress_bars(tmp_path, tiny_clip_dir):
    # the premise, in a fresh interpreter: transformers draws "Loading weights" unless told not to
    code = (
        "import sys; from delta_v2a import cli; cli.quiet_third_party('-v' in sys.argv)\n"
        "from transformers import CLIPModel; CLIPModel.from_pretrained(sys.argv[1])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_DISABLE", "TRANSF"))}
    env |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    run = [sys.executable, "-c", code, str(tiny_clip_dir)]
    quiet = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    loud = subprocess.run([*run, "-v"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Loading weights" in loud.stderr
    assert "Loading weights" not in quiet.stderr and "it/s" not in quiet.stderr
