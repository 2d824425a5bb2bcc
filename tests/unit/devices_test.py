"""The lock-file GPU picker, with a faked device count (no GPU needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from delta_v2a import devices
from delta_v2a.devices import pick_device
from delta_v2a.jobs import common

# the child processes import this checkout's package, not an installed one
ENV = os.environ | {"PYTHONPATH": str(Path(devices.__file__).resolve().parents[1])}


def test_jobs_spread_over_devices_least_busy_first(tmp_path):
    leases = [pick_device(3, tmp_path) for _ in range(7)]
    assert [(x.index, x.slot) for x in leases] == [
        (0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1), (0, 2),
    ]  # fmt: skip
    leases[4].release()  # a job on cuda:1 ends: the next one goes there
    again = pick_device(3, tmp_path)
    assert (again.index, again.slot) == (1, 1)
    for lease in [*leases, again]:
        lease.release()
    assert pick_device(3, tmp_path).index == 0


def test_a_killed_job_frees_its_device(tmp_path):
    """flock dies with the process: a crashed job never leaves a GPU marked busy."""
    code = (
        "import os, sys; from delta_v2a.devices import pick_device; "
        f"l = pick_device(2, {str(tmp_path)!r}); print(l.index, flush=True); os._exit(0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    assert out.stdout.strip() == "0"
    assert pick_device(2, tmp_path).index == 0  # its lock went with it


def test_held_by_another_process_is_skipped(tmp_path):
    code = (
        "import sys, time; from delta_v2a.devices import pick_device; "
        f"l = pick_device(2, {str(tmp_path)!r}); print(l.index, flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout.readline().strip() == "0"
        assert pick_device(2, tmp_path).index == 1
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_no_devices_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no devices"):
        pick_device(0, tmp_path)


def test_lock_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(devices.LOCK_DIR_VARIABLE, str(tmp_path / "locks"))
    assert devices.default_lock_dir() == tmp_path / "locks"


class _FakeCuda:
    def __init__(self, count: int) -> None:
        self.count = count

    def is_available(self) -> bool:
        return self.count > 0

    def device_count(self) -> int:
        return self.count


@pytest.mark.parametrize(
    ("device", "count", "want"),
    [
        ("auto", 0, "auto"),
        ("cpu", 4, "cpu"),
        ("cuda:3", 4, "cuda:3"),  # explicit index honoured
        ("auto", 1, "auto"),
        ("cuda", 1, "cuda"),
        ("auto", 2, "cuda:0"),
        ("cuda", 2, "cuda:0"),
    ],
)
def test_job_device_with_a_faked_device_count(tmp_path, monkeypatch, device, count, want):
    import torch

    monkeypatch.setenv(devices.LOCK_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr(torch, "cuda", _FakeCuda(count))
    monkeypatch.setattr(common, "_LEASES", [])
    assert common.job_device(device) == want
    if want.startswith("cuda:") and device != "cuda:3":
        assert common.job_device(device) == "cuda:1"  # the second job gets the other GPU


@pytest.mark.parametrize(
    ("device", "kind"), [("cpu", "cpu"), (" CUDA ", "cuda"), ("cuda:3", "cuda")]
)
def test_device_kind_of_an_explicit_device_needs_no_torch(device, kind):
    """An explicit device is read from its name alone: a subprocess proves torch stays out."""
    code = (
        "import sys; from delta_v2a.devices import device_kind; "
        f"k = device_kind({device!r}); print(k, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [kind, "False"]


def test_device_kind_auto_asks_torch_and_a_bad_name_is_refused():
    import torch

    assert devices.device_kind("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cpu:0", "cuda:x"):
        with pytest.raises(ValueError, match="unknown device"):
            devices.device_kind(bad)
