"""Console lines: job tags from log paths, progress with count / rate / ETA, throttling."""

from __future__ import annotations

import logging

import torch

from delta_v2a.jobs import common
from delta_v2a.jobs.common import Progress, job_tag, setup_logging
from delta_v2a.models import to_device


def test_job_tag_names_rule_and_wildcards():
    assert job_tag("logs/embed/image/blur/low.log") == "embed image/blur/low"
    assert job_tag("/abs/run/logs/manifest/audio.log") == "manifest audio"
    assert job_tag("logs/phase3/train.log") == "phase3 train"
    assert job_tag(None, "run_embed") == "run_embed"


def test_every_line_carries_the_tag(tmp_path, capsys):
    setup_logging(tmp_path / "logs" / "embed" / "audio" / "lpf" / "high.log")
    logging.getLogger("delta_v2a").info("hello %d%%", 5)
    line = capsys.readouterr().err.strip()
    assert "[embed audio/lpf/high] hello 5%" in line
    text = (tmp_path / "logs" / "embed" / "audio" / "lpf" / "high.log").read_text()
    assert "[embed audio/lpf/high] hello 5%" in text


def _progress_lines(monkeypatch, caplog, steps, total, every_s=10.0):
    """What Progress logs for ``steps`` of (seconds, done), on a fake clock."""
    import tqdm.std

    now = [0.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    p = Progress("embedded", every_s=every_s)
    with caplog.at_level(logging.INFO, logger="delta_v2a"):
        for t, done in steps:
            now[0] = t
            p(done, total)
    return [r.getMessage() for r in caplog.records]


def test_progress_line_count_rate_eta(monkeypatch, caplog):
    lines = _progress_lines(monkeypatch, caplog, [(0.0, 0), (2.0, 64), (94.0, 3000)], 3000, 1.0)
    assert lines[0] == "embedded 0/3000 files (0%) ?files/s ETA ?"
    assert lines[1] == "embedded 64/3000 files (2%) 32.00files/s ETA 01:31"  # 2936 / 32 s, cut
    assert lines[-1].startswith("embedded 3000/3000 files (100%)")


def test_progress_is_throttled_but_always_logs_the_end(monkeypatch, caplog):
    steps = [(i * 0.5, i) for i in range(1, 101)]  # a batch every 0.5 s for 50 s
    lines = _progress_lines(monkeypatch, caplog, steps, 100)
    assert len(lines) == 6  # the start, then every 10 s, and the last
    assert lines[-1].startswith("embedded 100/100 files (100%)")


class _FakeTensor:
    """Records what to_device does, standing in for a CUDA copy on a machine without a GPU."""

    def __init__(self, calls):
        self.calls = calls

    def pin_memory(self):
        self.calls.append("pin")
        return self

    def to(self, *args, **kw):
        self.calls.append(("to", args, kw))
        return self


def test_cuda_copies_are_pinned_and_non_blocking_cpu_copies_are_plain():
    calls: list = []
    to_device(_FakeTensor(calls), torch.device("cuda", 1), torch.float16)
    assert calls == [
        "pin",
        ("to", (torch.device("cuda", 1),), {"non_blocking": True}),
        ("to", (torch.float16,), {}),
    ]
    calls.clear()
    to_device(_FakeTensor(calls), torch.device("cpu"), torch.float32)
    assert calls == [("to", (torch.device("cpu"),), {"dtype": torch.float32})]


def test_hugging_face_progress_bars_are_off_in_jobs(monkeypatch):
    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    hf_logging.enable_progress_bar()
    common.quiet_hugging_face()
    assert not hf_logging.is_progress_bar_enabled()
    import os

    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    hf_logging.enable_progress_bar()


def test_a_refusal_ends_the_job_with_one_line_and_no_traceback(tmp_path, capsys):
    import pytest

    from delta_v2a.jobs.common import PipelineError, run_job

    def refuse():
        raise PipelineError("data.images: data root 'x' does not exist or is not a folder")

    with pytest.raises(SystemExit) as stop:
        run_job(tmp_path / "logs/refuse.log", refuse)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "data root 'x' does not exist" in err and "Traceback" not in err
    assert "Traceback" not in (tmp_path / "logs/refuse.log").read_text()

    def bug():
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        run_job(tmp_path / "logs/bug.log", bug)


def test_a_device_this_machine_lacks_is_a_one_line_refusal(tmp_path, capsys, monkeypatch):
    import pytest
    import torch

    from delta_v2a import models
    from delta_v2a.jobs.common import run_job

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def embed():
        models.resolve_device("cuda")  # where run_embed resolves the device for its cache key

    with pytest.raises(SystemExit) as stop:
        run_job(tmp_path / "logs/embed.log", embed)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "failed: models.device: device 'cuda' requested but CUDA is not available" in err
    assert "Traceback" not in err

    def bug():
        raise ValueError("any other ValueError is a bug and keeps its traceback")

    with pytest.raises(ValueError):
        run_job(tmp_path / "logs/bug.log", bug)


def test_a_damaged_artifact_is_a_one_line_refusal(tmp_path, capsys):
    import pytest

    from delta_v2a.jobs.common import run_job
    from delta_v2a.storage import StoreError

    def read():
        raise StoreError("results/image_deltas.npz: cannot read array store; delete it and rerun")

    with pytest.raises(SystemExit) as stop:
        run_job(tmp_path / "logs/linearity.log", read)
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "delete it and rerun" in err and "Traceback" not in err
