"""Give each running model job its own GPU when a machine has several (a lock-file picker).

Why: Snakemake's ``gpu`` resource only counts jobs; it does not say *which* GPU a job gets, so
without this every job lands on ``cuda:0`` while the others idle. Each job takes an exclusive
``flock`` on one slot file ``cuda<i>.slot<j>`` in a per-user lock folder, choosing the lowest
free slot number and, among those, the lowest device: the device with the fewest running jobs.
The kernel drops the lock when the process ends, however it ends (even on SIGKILL), so a
crashed job never leaves a GPU marked busy. On a SLURM node ``CUDA_VISIBLE_DEVICES`` already
shows each job only its own GPU(s); with one visible device nothing is picked.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["DeviceLease", "default_lock_dir", "device_kind", "pick_device"]

LOCK_DIR_VARIABLE = "DELTA_V2A_GPU_LOCKS"


def device_kind(device: str) -> str:
    """``cpu`` or ``cuda`` for a ``models.device`` value, importing torch only for ``auto``.

    Why: the embedding cache key and the batch size need only the kind, and a job whose files
    are all cached should not pay seconds of torch and transformers imports to learn it
    (docs/methods.md §2.2). Whether the device exists is checked when a model loads
    (``models.resolve_device``).
    """
    name = device.strip().lower()
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    return kind


def default_lock_dir() -> Path:
    """``$DELTA_V2A_GPU_LOCKS`` or a per-user folder in the system temp dir (one per machine)."""
    env = os.environ.get(LOCK_DIR_VARIABLE)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"delta_v2a-gpu-locks-{os.getuid()}"


@dataclass
class DeviceLease:
    """A held slot on one device; keep it alive for as long as the job uses the device."""

    index: int
    slot: int
    handle: IO[str]

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (kept open: it is the lock)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def pick_device(n_devices: int, lock_dir: str | Path | None = None) -> DeviceLease:
    """Lease the least-busy of ``n_devices`` visible devices (ties: the lowest index).

    Never waits: the number of concurrent model jobs is Snakemake's business (the ``gpu``
    resource); this only spreads them. Slot 0 of every device is tried before slot 1 of any.
    """
    if n_devices < 1:
        raise ValueError(f"no devices to pick from (n_devices={n_devices})")
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        for index in range(n_devices):
            handle = _try_lock(folder / f"cuda{index}.slot{slot}")
            if handle is not None:
                return DeviceLease(index=index, slot=slot, handle=handle)
        slot += 1
