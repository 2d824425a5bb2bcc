"""The report's parts (docs/methods.md §8): a FAILED verdict says why on its first line, every
verdict line is in the page (folded), the Transfer section embeds its players, an all-zero
heatmap gets a 0-1 colour bar, Phase 3's prediction axes are in physical units."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from health_utils import health_report
from phase0_utils import cross, cross_row, linearity, sens_row, sensitivity, summary_row
from phase3_utils import training_log
from PIL import Image

from delta_v2a.artifacts import ArtifactError
from delta_v2a.artifacts.summary import Summary
from delta_v2a.artifacts.transfer import TransferExamples
from delta_v2a.report.html import transfer_html, verdicts_table
from delta_v2a.report.rows import verdict_line_rows, verdict_rows
from delta_v2a.report.summary import summarise

sys.path.insert(0, str(Path(__file__).parent))
from summary_test import no_pair_labels  # noqa: E402  (Phase 1's labels when nothing is chosen)


def _summary(**over):
    args = {
        "health": [health_report()],
        "sensitivity": sensitivity(
            [sens_row(sensitive=True, mean=0.2)] * 24,
            meta={"degenerate_deltas": {"image": ["a.png"]}},
        ),
        "linearity": linearity([summary_row()]),
        "cross": cross([cross_row(invariant=True)]),
        "discovery": np.zeros((2, 2)),
        "labels": no_pair_labels(),
        "training_log": training_log("no_pairs", message="NO PAIR passes"),
    }
    return summarise(**(args | over))


def test_failed_phase_says_why_first():
    """The issue's case: FAILED beside '24 of 24 variants sensitive' (a degenerate delta)."""
    phases = {p["phase"]: p for p in _summary()["phases"]}
    sens = phases["phase 0-a sensitivity"]
    assert sens["status"] == "FAILED"
    assert sens["lines"][0] == "FAILED because: 1 degenerate delta(s) (zero norm or non-finite)"
    assert sens["lines"][1] == "24 of 24 variants sensitive"
    assert phases["phase 1 discovery"]["lines"][0].startswith("FAILED because: no significant")
    # a passing phase keeps its own first line
    assert phases["phase 0-b linearity"]["lines"][0] == "1 of 1 variants consistent"
    # the first detail of the report's table is that reason
    rows = verdict_rows(Summary.from_json(_summary()))
    detail = rows.set_index("phase").loc["phase 0-a sensitivity", "detail"]
    assert detail.startswith("FAILED because: 1 degenerate delta")


def test_every_verdict_line_is_in_the_page_folded():
    summary = _summary()
    typed = Summary.from_json(summary)
    page = verdicts_table(verdict_rows(typed), verdict_line_rows(typed))
    assert "more: verdict_lines.tsv" not in page
    for phase in summary["phases"]:
        for line in phase["lines"]:
            assert line.replace("<", "&lt;").replace(">", "&gt;") in page
    assert re.search(r"<details class=\"verdict-lines\"><summary>all \d+ lines</summary>", page)


def _transfer_folder(root):
    root.mkdir()
    sr = 16_000
    for name in ("example0_original.wav", "example0_decoder.wav", "example0_exact.wav"):
        sf.write(root / name, np.zeros(sr, np.float32), sr, subtype="FLOAT")
    for name in ("before.png", "after0.png"):
        Image.new("RGB", (8, 8)).save(root / name)
    record = {"song": "data/audio/folk/a.wav", "split": "test", "edit_effect": "blur",
              "edit_level": "high", "edit_params": {"sigma": 4.0}}  # fmt: skip
    for route in ("decoder", "exact"):
        record[route] = {"refused": None, "wav": f"example0_{route}.wav"}
    record["report"] = {"decoder": ["lpf: cutoff_hz = 4934 Hz"], "exact": ["lpf: u = 0.4"]}
    doc = TransferExamples(status="ok", not_science=True, note="NOT SCIENCE: planted",
                           split="test", examples=[record])  # fmt: skip
    doc.write(root / "examples.json")


def test_transfer_section_embeds_photos_players_and_reports(tmp_path):
    _transfer_folder(tmp_path / "transfer")
    doc = TransferExamples.read(tmp_path / "transfer/examples.json")
    page = transfer_html(doc, tmp_path / "transfer")
    assert page.count('<audio controls preload="none" src="data:audio/wav;base64,') == 3
    assert page.count('src="data:image/png;base64,') == 2
    assert "lpf: cutoff_hz = 4934 Hz" in page and "NOT SCIENCE: planted" in page
    none = TransferExamples.unavailable("holds no trained decoder")
    assert "No transfer examples: holds no trained decoder" in transfer_html(none, tmp_path)
    assert "the transfer_examples rule wrote nothing" in transfer_html(None, tmp_path)


def test_transfer_examples_file_adds_only_its_kind_and_version(tmp_path):
    _transfer_folder(tmp_path / "transfer")
    path = tmp_path / "transfer/examples.json"
    raw = json.loads(path.read_text())
    assert set(raw) == {"artifact", "format_version", "status", "not_science", "note", "photo",
                        "split", "seconds", "examples"}  # fmt: skip
    assert TransferExamples.read(path).to_json() == {
        k: v for k, v in raw.items() if k not in ("artifact", "format_version")
    }
    TransferExamples.unavailable("no decoder").write(tmp_path / "none.json")
    assert set(json.loads((tmp_path / "none.json").read_text())) == {
        "artifact", "format_version", "status", "message"
    }  # fmt: skip
    path.write_text(json.dumps(raw | {"format_version": 2}))
    with pytest.raises(ArtifactError, match="examples.json: transfer_examples format 2"):
        TransferExamples.read(path)


def test_all_zero_heatmap_gets_a_readable_colour_bar(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from delta_v2a import plots

    seen = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.update(fig=fig))
    plots.discovery_heatmap(np.zeros((2, 2)), ["blur", "contrast"], ["lpf", "reverb"],
                            tmp_path / "h.png", "t", "")  # fmt: skip
    bars = [ax for ax in seen["fig"].axes if ax.get_ylabel().startswith("score")]
    assert bars and bars[0].get_ylabel() == "score (every cell 0)"
    assert bars[0].get_ylim() == pytest.approx((0.0, 1.0))
    plt.close(seen["fig"])
    assert plots.score_scale(0.0) == 1.0 and plots.score_scale(0.3) == 0.3


def test_prediction_axes_are_physical(tmp_path, monkeypatch, space):
    import matplotlib.pyplot as plt

    from delta_v2a import plots

    seen = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.update(fig=fig))
    rng = np.random.default_rng(0)
    truth, predicted = rng.random((6, space.dim)), rng.random((6, space.dim))
    samples = pd.DataFrame({"image_effect": ["blur"] * 6, "audio_effect": ["lpf"] * 6})
    plots.decoder_prediction_figure(samples, truth, predicted, space.names, tmp_path / "p.png",
                                    "", space=space)  # fmt: skip
    axes = [ax for ax in seen["fig"].axes if ax.get_title()]
    lpf = next(ax for ax in axes if ax.get_title().startswith("lpf: cutoff_hz"))
    assert lpf.get_title() == "lpf: cutoff_hz (Hz)" and lpf.get_xscale() == "log"
    x = lpf.collections[0].get_offsets()[:, 0]
    j = space.names.index("lpf.cutoff_hz")
    expected = [space.axes[j].physical(u) for u in truth[:, j]]
    np.testing.assert_allclose(np.sort(x), np.sort(expected))
    assert "physical units" in seen["fig"]._suptitle.get_text()
    plt.close(seen["fig"])


def test_phase0_axes_name_each_level_in_physical_units(tmp_path, monkeypatch):
    from delta_v2a import plots

    assert plots.level_text("image", "blur", {"sigma": 4.0}) == "σ 4 px"
    assert plots.level_text("audio", "lpf", {"cutoff_hz": 2000.0, "order": 4}) == "cutoff 2000 Hz"
    assert plots.level_text("audio", "highshelf", {"gain_db": 6.0}) == "gain 6 dB"
    assert plots.level_text("image", "brightness", {"factor": 1.5}) == "×1.5"
    seen = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.update(fig=fig))
    norms = pd.DataFrame({"modality": "image", "effect_type": "blur", "intensity": ["low", "high"],
                          "norm": [0.1, 0.3]})  # fmt: skip
    levels = {("image", "blur", "low"): "σ 1 px", ("image", "blur", "high"): "σ 4 px"}
    plots.norms_figure(norms, 0.01, tmp_path / "n.png", "", levels)
    ticks = [t.get_text() for t in seen["fig"].axes[0].get_xticklabels()]
    assert ticks == ["blur/low\nσ 1 px", "blur/high\nσ 4 px"]
    import matplotlib.pyplot as plt

    plt.close(seen["fig"])
