"""The `delta-v2a` command."""

from __future__ import annotations


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
