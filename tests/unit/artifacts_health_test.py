"""A model's health report (delta_v2a.artifacts.health): the file is health_check's figures
and the modality, key for key and in order, with ``artifact`` and ``format_version`` added; a
report of the seed's untyped layout, or without a field, is one line naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from health_utils import health_report

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.health import HealthReport
from delta_v2a.embedders.base import ModelInfo
from delta_v2a.jobs.common import PipelineError, gate_health
from delta_v2a.models import health_check
from delta_v2a.storage import read_json, write_json


class _Towers:
    """Text embeddings that are one direction (collapsed) plus a little noise."""

    info = ModelInfo("fake-clip", None, "float32", "cpu", 8, tiny=False, note="")

    def embed_texts(self, texts, batch_size=None):
        rng = np.random.default_rng(len(texts))
        return np.ones((len(texts), 8)) + 1e-3 * rng.normal(size=(len(texts), 8))

    def embed(self, items, batch_size):
        return np.stack([np.full(8, float(np.sum(x))) for x in items])


def test_health_checks_figures_are_written_key_for_key_in_order(tmp_path):
    figures = health_check(_Towers(), images=[np.ones((2, 2)), np.zeros((2, 2)) + 2])
    HealthReport.from_json(figures | {"modality": "image"}).write(tmp_path / "image.json")
    text = (tmp_path / "image.json").read_text()
    got = json.loads(text)
    assert list(got)[:2] == ["artifact", "format_version"]
    body = {k: v for k, v in got.items() if k not in ("artifact", "format_version")}
    seed = figures | {"modality": "image"}
    assert json.dumps(body) == json.dumps(json.loads(json.dumps(seed)))
    report = HealthReport.read(tmp_path / "image.json")
    assert report.passed is False and report.model_name == "fake-clip"
    with pytest.raises(PipelineError, match="fake-clip: mean pairwise cosine of unrelated"):
        gate_health([str(tmp_path / "image.json")], allow_unhealthy=False, part="text")


def test_round_trip_and_the_figures_phase1_records(tmp_path):
    report = health_report(modality="audio", audio_mean_pairwise_cosine=0.4)
    report.write(tmp_path / "audio.json")
    assert HealthReport.read(tmp_path / "audio.json") == report
    assert report.mean_pairwise_cosine("media") == 0.4
    assert report.mean_pairwise_cosine("text") == 0.5
    assert report.figures() == {
        "text_mean_pairwise_cosine": 0.5,
        "audio_mean_pairwise_cosine": 0.4,
        "limit": 0.95,
        "passed": True,
        "model": "tiny-model",
    }


def test_an_untyped_or_damaged_report_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "audio.json"
    health_report().write(path)
    doc = read_json(path)
    untyped = {k: v for k, v in doc.items() if k not in ("artifact", "format_version")}
    write_json(path, untyped)  # the seed's layout
    with pytest.raises(ArtifactError, match=r"audio\.json: not a model_health file") as err:
        gate_health([str(path)], allow_unhealthy=False, part="media")
    assert "\n" not in str(err.value)
    del doc["limit"]
    write_json(path, doc)
    with pytest.raises(ArtifactError, match=r"audio\.json: model_health lacks \['limit'\]"):
        HealthReport.read(path)
