"""The planted audio tower's per-song sensitivity (Phase 3's positive control, docs/methods.md
§9): one constant in the twin, log-normal across songs in ``planted:audio-spread``, the same for
a song before and after the study's effects, and it scales what an effect does to the song."""

from __future__ import annotations

import numpy as np
import pytest

from delta_v2a import effects, planted
from delta_v2a.models import load_embedder

SR = planted.SAMPLING_RATE


def _song(seed: int) -> np.ndarray:
    """10 s of a few harmonic tones whose low partials differ per seed (as songs do)."""
    rng = np.random.default_rng(seed)
    t = np.arange(planted.WINDOW_SAMPLES) / SR
    y = np.zeros_like(t)
    for f0 in rng.uniform(70, 400, size=4):
        for k in range(1, 12):
            y += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6))
    return (0.1 * y / np.abs(y).max()).astype(np.float32)


def test_the_twin_has_one_sensitivity_and_the_world_a_spread():
    songs = [_song(s) for s in range(16)]
    nuisance = [planted.audio_nuisance(y) for y in songs]
    assert {planted.song_sensitivity(n, 0.0) for n in nuisance} == {1.0}
    logs = np.log([planted.song_sensitivity(n, planted.SENSITIVITY_SPREAD) for n in nuisance])
    assert 0.15 < logs.std() < 1.5  # spread over the songs, not one song carrying it
    twin, world = (
        load_embedder("audio", "planted:audio", "planted"),
        load_embedder("audio", "planted:audio-spread", "planted"),
    )
    assert twin.sensitivity_spread == 0 and world.sensitivity_spread == planted.SENSITIVITY_SPREAD


def test_a_songs_sensitivity_survives_the_effects_and_scales_their_delta():
    world = load_embedder("audio", "planted:audio-spread", "planted", normalize=False)
    twin = load_embedder("audio", "planted:audio", "planted", normalize=False)
    ratios, sens = [], []
    for seed in range(4):
        y = _song(seed)
        s = planted.song_sensitivity(planted.audio_nuisance(y), planted.SENSITIVITY_SPREAD)
        low = effects.apply_audio_effect("lpf", y, SR, {"cutoff_hz": 800.0})
        s_low = planted.song_sensitivity(planted.audio_nuisance(low), planted.SENSITIVITY_SPREAD)
        assert abs(np.log(s_low / s)) < 0.1  # agree within a quarter of the SD across songs
        dw = np.linalg.norm(world.prepare(low) - world.prepare(y))
        dt = np.linalg.norm(twin.prepare(low) - twin.prepare(y))
        ratios.append(dw / dt)
        sens.append(s)
    np.testing.assert_allclose(ratios, sens, rtol=0.15)  # the delta grows with the sensitivity


def test_planted_songs_are_the_demos_pieces_transposed_and_retimed(tmp_path):
    """Variant v of a piece: its notes at 2^(TRANSPOSE[v] / 12) times the pitch, TEMPO[v]
    times the tempo; a song count outside what the catalogue can make is refused."""
    from delta_v2a import demo

    piece = demo.PIECES[0]
    base, _ = demo.variant_notes(piece, 0)
    moved, _ = demo.variant_notes(piece, 1)
    assert base[0].freq * 2 ** (demo.TRANSPOSE[1] / 12) == pytest.approx(moved[0].freq)
    assert moved[1].start == pytest.approx(base[1].start / demo.TEMPO[1])
    with pytest.raises(ValueError, match="songs must be in"):
        demo.build_planted_songs(tmp_path, songs=len(demo.PIECES) - 1)
