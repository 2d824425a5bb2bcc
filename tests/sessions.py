"""Session fixtures built once per test run, also when pytest-xdist spreads the suite over
several worker processes (`make test` does: see the Makefile).

Each xdist worker is its own pytest session, so a plain session fixture would be built once per
worker: the small .test run and the planted world cost minutes each on a 2-core machine. Here the
first worker to need a folder builds it under a file lock in the run's common temporary root;
the others wait for it and reuse it. A build that fails leaves no marker, so the next worker
that asks tries again and reports its own failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """The run's temporary root: under xdist each worker's basetemp is ``<root>/popen-gwN``,
    so the parent is common to all workers; without xdist it is the session's basetemp."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_folder(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> Path:
    """``<root>/<name>``, made by ``build(folder)`` exactly once per test run."""
    root = shared_root(factory)
    folder, marker = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not marker.exists():
            if folder.exists():  # an earlier build failed part-way
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            marker.touch()
    return folder
