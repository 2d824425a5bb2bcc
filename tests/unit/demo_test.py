"""Tests for delta_v2a.demo: the generated offline demo media."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from delta_v2a import demo
from delta_v2a.media import discover, probe

IMAGE_EXTS = {".jpg", ".png"}
AUDIO_EXTS = {".wav", ".mp3", ".flac"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, demo.build_demo(out, seed=0)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_layout_counts_and_formats(built):
    out, summary = built
    images = discover(out / "images", "image")
    audio = discover(out / "audio", "audio")
    assert summary == {
        "images": dict(Counter(f.category for f in images)),
        "audio": dict(Counter(f.category for f in audio)),
    }
    for files, exts in ((images, IMAGE_EXTS), (audio, AUDIO_EXTS)):
        by_group: dict[str, set[str]] = {}
        for f in files:
            by_group.setdefault(f.category, set()).add(Path(f.path).suffix)
        assert len(by_group) >= 3
        assert all(n >= 4 for n in Counter(f.category for f in files).values())
        # Every category / genre mixes all formats of its modality.
        assert all(found == exts for found in by_group.values()), by_group


def test_every_file_passes_probe(built):
    out, _ = built
    files = discover(out / "images", "image") + discover(out / "audio", "audio")
    reasons = {
        f.path: probe(f, image_size=224, sr=48000, window=480000, preroll=48000) for f in files
    }
    assert reasons == dict.fromkeys(reasons)


def test_audio_lengths_and_rate(built):
    out, _ = built
    infos = [sf.info(p) for p in sorted((out / "audio").rglob("*.*"))]
    assert {i.samplerate for i in infos} == {demo.SR}
    assert {i.channels for i in infos} == {1}
    durations = [i.duration for i in infos]
    assert min(durations) > 7.5
    assert sum(d >= 11.0 for d in durations) >= len(durations) - 2
    assert any(d < 10.0 for d in durations)  # one short clip exercises repeat-padding


def test_deterministic_rebuild(built, tmp_path):
    out, summary = built
    again = tmp_path / "again"
    assert demo.build_demo(again, seed=0) == summary
    first, second = _files(out), _files(again)
    assert first.keys() == second.keys()
    for name in first:
        if Path(name).suffix in {".png", ".wav", ".flac", ".md"}:
            assert first[name] == second[name], name
    # A rebuild into an earlier demo build starts from a clean folder.
    (again / "images" / "living" / "stale.png").write_bytes(b"old")
    demo._prepare(again)
    assert list(again.iterdir()) == []


def test_seed_changes_the_audio():
    piece = demo.PIECES[0]
    notes, parts = demo.score_notes(piece.work, piece.qpm, 3.0)
    a = demo.render(notes, parts, piece.genre, 3.0, seed=0)
    b = demo.render(notes, parts, piece.genre, 3.0, seed=0)
    c = demo.render(notes, parts, piece.genre, 3.0, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def _spectral_flatness(x: np.ndarray, n_fft: int = 4096) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    loud = power.sum(axis=1) > 1e-3 * power.sum(axis=1).max()
    return float(np.median(flatness[loud]))


def _peaks(x: np.ndarray, count: int, fmax: float = 4000.0) -> np.ndarray:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / demo.SR)
    spec[(freqs < 60) | (freqs > fmax)] = 0
    is_peak = (spec[1:-1] > spec[:-2]) & (spec[1:-1] >= spec[2:])
    idx = np.nonzero(is_peak)[0] + 1
    return freqs[idx[np.argsort(spec[idx])[::-1][:count]]]


@pytest.mark.parametrize("piece", demo.PIECES, ids=lambda p: p.name)
def test_audio_is_pitched_music(built, piece):
    out, _ = built
    x, rate = sf.read(out / "audio" / piece.genre / f"{piece.name}.{piece.ext}", dtype="float32")
    assert rate == demo.SR
    rms_db = 20 * np.log10(np.sqrt(np.mean(x**2)))
    assert -20 < rms_db < -10
    assert np.abs(x).max() <= demo.PEAK_LIMIT + 0.05  # MP3 may overshoot a little
    # Tonal, not noise: white noise has flatness ~0.5, these partial-only spectra far less.
    assert _spectral_flatness(x) < 0.02
    # The strongest spectral peaks sit on harmonics of the score's notes (within 30 cents).
    notes, _ = demo.score_notes(piece.work, piece.qpm, piece.seconds)
    harmonics = np.array(sorted({n.freq * k for n in notes for k in range(1, 9)}))
    for peak in _peaks(x, 8):
        cents = np.abs(1200 * np.log2(peak / harmonics)).min()
        assert cents < 30, (peak, cents)


def test_sources_lists_every_file(built):
    out, _ = built
    text = (out / "SOURCES.md").read_text(encoding="utf-8")
    assert text.startswith(demo.MARKER)
    media = [n for n in _files(out) if n != "SOURCES.md"]
    assert len(media) == len(demo.PHOTOS) + len(demo.PIECES)
    for name in media:
        assert text.count(f"`{name}`") == 1, name
    assert "skimage.data.chelsea()" in text and "bach/bwv66.6" in text and "CC BY 2.0" in text


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        demo.build_demo(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_parses_arguments(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_build(out_dir, seed=0):
        calls.append((out_dir, seed))
        return {"images": {"a": 4}, "audio": {"b": 4}}

    monkeypatch.setattr(demo, "build_demo", fake_build)
    assert demo.main([str(tmp_path / "out"), "--seed", "3"]) == 0
    assert calls == [(tmp_path / "out", 3)]
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == fake_build(None)
