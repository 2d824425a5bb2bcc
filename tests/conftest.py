"""Shared fixtures: tiny offline CLIP/CLAP checkpoints, written and loaded once per session.

Imports of torch/transformers happen inside the fixtures so test files that do not use them
stay fast to collect.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sessions import shared_folder


@pytest.fixture(scope="session")
def tiny_model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding `tiny-clip/` and `tiny-clap/` (seed 0), written once per test run
    (shared by xdist's workers: tests/sessions.py)."""
    from delta_v2a.tiny_models import write_tiny_clap, write_tiny_clip

    def build(root: Path) -> None:
        write_tiny_clip(root / "tiny-clip", seed=0)
        write_tiny_clap(root / "tiny-clap", seed=0)

    return shared_folder(tmp_path_factory, "tiny_models", build)


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_model_root: Path) -> Path:
    return tiny_model_root / "tiny-clip"


@pytest.fixture(scope="session")
def tiny_clap_dir(tiny_model_root: Path) -> Path:
    return tiny_model_root / "tiny-clap"


@pytest.fixture(scope="session")
def clip_embedder(tiny_clip_dir: Path):
    """`ClipEmbedder` on the tiny CLIP, fp32 on CPU (deterministic)."""
    from delta_v2a.embedders.clip import ClipEmbedder

    return ClipEmbedder.load(str(tiny_clip_dir), device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def clap_embedder(tiny_clap_dir: Path):
    """`ClapEmbedder` on the tiny CLAP, fp32 on CPU (deterministic)."""
    from delta_v2a.embedders.clap import ClapEmbedder

    return ClapEmbedder.load(str(tiny_clap_dir), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def one_torch_thread():
    """The decoder is small: one thread trains it fastest on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def space():
    """The parameter space of every default audio effect at 48 kHz (Phase 3 tests)."""
    from phase3_utils import ALL_AUDIO, CONFIG, SR

    from delta_v2a.phase3.paramspace import audio_space_from_config

    return audio_space_from_config(CONFIG, ALL_AUDIO, SR, bypass_below=0.02)


@pytest.fixture(autouse=True)
def _no_log_handlers_left_behind():
    """Job functions configure the root logger (as a job process should); in one pytest process
    a handler left on a captured, closed stream would print "--- Logging error ---" later."""
    import logging

    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


#: Modules that take many minutes on their own (a real SLURM cluster runs the workflow) start
#: first, so that under pytest-xdist they run beside the rest instead of ending the run alone.
START_FIRST = ("tests/workflow/slurm_test.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(START_FIRST))
