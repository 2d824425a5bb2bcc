"""Effects against independent references (scipy, PIL, audiomentations, RBJ cookbook,
closed-form Butterworth) and the properties the study relies on: identity at neutral,
monotone strength, determinism, float32, no in-place changes, preroll semantics."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss
from audiomentations import LowPassFilter
from pedalboard import Reverb
from PIL import Image, ImageEnhance
from scipy.ndimage import gaussian_filter

from delta_v2a import effects as fx
from delta_v2a.config import load_config

#: The workflow's default levels, from the schema (their one home): modality -> effect ->
#: intensity -> varying parameters.
DEFAULT_LEVELS = {
    m: {e: spec["levels"] for e, spec in effects.items()}
    for m, effects in load_config(
        Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml"
    )["effects"].items()
}

SR = 48_000
ORDER = list(fx.DEFAULT_INTENSITIES)
IMAGE_NAMES = sorted(fx.IMAGE_EFFECTS)
AUDIO_NAMES = sorted(fx.AUDIO_EFFECTS)


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A photo-like test image: smooth colour gradients plus texture, inside (0.05, 0.95)."""
    rng = np.random.default_rng(0)
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    base = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx + 3 * yy)], axis=-1) * 0.6 + 0.2
    img = base + 0.15 * (rng.random((h, w, 3)) - 0.5)
    return np.clip(img, 0.05, 0.95).astype(np.float32)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """0.5 s of noise plus two tones, RMS ~0.15, first sample non-zero (exercises lpf's zi)."""
    rng = np.random.default_rng(1)
    t = np.arange(SR // 2) / SR
    x = 0.1 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 440 * t)
    x += 0.05 * np.sin(2 * np.pi * 6000 * t + 0.3)
    x[0] = 0.2
    return x.astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def dtft_db(h: np.ndarray, freqs: np.ndarray, sr: int = SR) -> np.ndarray:
    """Magnitude (dB) of a finite impulse response at exact frequencies (no bin rounding)."""
    n = np.arange(h.size)
    e = np.exp(-2j * np.pi * np.outer(freqs, n) / sr)
    return 20 * np.log10(np.abs(e @ h.astype(np.float64)))


def impulse(n: int, at: int = 0) -> np.ndarray:
    x = np.zeros(n, dtype=np.float32)
    x[at] = 1.0
    return x


def neutral_params(spec: fx.EffectSpec) -> dict[str, float]:
    return {p.name: p.neutral for p in spec.params}


def all_variants() -> list[tuple[str, str, str]]:
    return [(m, e, i) for m in ("image", "audio") for e in DEFAULT_LEVELS[m] for i in ORDER]


def run(modality: str, name: str, params: dict[str, float], img: np.ndarray, aud: np.ndarray):
    if modality == "image":
        return fx.apply_image_effect(name, img, params)
    return fx.apply_audio_effect(name, aud, SR, params)


# ------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------


def test_registry_is_consistent() -> None:
    for modality, registry in (("image", fx.IMAGE_EFFECTS), ("audio", fx.AUDIO_EFFECTS)):
        assert set(DEFAULT_LEVELS[modality]) == set(registry)
        for name, spec in registry.items():
            assert spec.name == name and spec.modality == modality
            accepted = set(inspect.signature(spec.fn).parameters)
            assert set(spec.allowed_params) <= accepted, name
            for p in spec.params:
                assert p.minimum <= p.neutral <= p.maximum, (name, p.name)


def test_effect_spec_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"unknown image effect 'sharpen'.*'blur'"):
        fx.effect_spec("image", "sharpen")
    with pytest.raises(ValueError, match=r"unknown modality 'video'"):
        fx.effect_spec("video", "blur")
    with pytest.raises(ValueError, match="allowed"):
        fx.apply_audio_effect("blur", np.zeros(8, np.float32), SR, {"sigma": 1.0})


# ------------------------------------------------------------------------------------------
# Image effects against references
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 4.0, 30.0])  # 30: kernel 181 > image
def test_blur_matches_scipy_gaussian(sigma: float) -> None:
    rng = np.random.default_rng(2)
    img = rng.random((40, 56, 3), dtype=np.float32)
    radius = math.ceil(3 * sigma)
    ref = np.stack(
        [
            gaussian_filter(img[..., c].astype(np.float64), sigma, mode="mirror", radius=radius)
            for c in range(3)
        ],
        axis=-1,
    )
    out = fx.blur(img, sigma=sigma)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_blur_removes_high_frequencies_monotonically() -> None:
    img = np.random.default_rng(3).random((64, 64, 3), dtype=np.float32)

    def hf_energy(x: np.ndarray) -> float:
        spec = np.abs(np.fft.fft2(x - x.mean(axis=(0, 1)), axes=(0, 1))) ** 2
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij"))
        return float(spec[f > 0.25].sum())

    energies = [hf_energy(fx.blur(img, sigma=s)) for s in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)]
    assert all(a > b for a, b in zip(energies, energies[1:], strict=False)), energies


# PIL works in 8 bits: it truncates the blend (<1 level) and rounds its grey (luma per pixel
# for Color; int(mean + 0.5) for Contrast), which moves the result by <= 0.5 * |1 - f| levels.
@pytest.mark.parametrize(
    ("name", "enhancer", "factor"),
    [
        ("brightness", ImageEnhance.Brightness, 0.5),
        ("brightness", ImageEnhance.Brightness, 1.15),
        ("brightness", ImageEnhance.Brightness, 1.6),
        ("contrast", ImageEnhance.Contrast, 0.3),
        ("contrast", ImageEnhance.Contrast, 0.7),
        ("contrast", ImageEnhance.Contrast, 1.5),
        ("saturation", ImageEnhance.Color, 0.5),
        ("saturation", ImageEnhance.Color, 1.5),
        ("saturation", ImageEnhance.Color, 4.0),
    ],
)
def test_image_enhance_matches_pil(name: str, enhancer: Callable, factor: float) -> None:
    u8 = np.random.default_rng(4).integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
    pil = np.asarray(enhancer(Image.fromarray(u8)).enhance(factor), dtype=np.float64)
    ours = fx.apply_image_effect(name, u8.astype(np.float32) / 255, {"factor": factor}) * 255.0
    rounding = 0.0 if name == "brightness" else 0.5 * abs(1 - factor)
    tol = 1.0 + rounding + 0.01
    diff = ours - pil
    assert np.abs(diff).max() <= tol, (np.abs(diff).max(), tol)
    # Truncation bias: ours is on average above PIL by about half a level, never far below.
    assert -rounding - 0.01 <= diff.mean() <= 1.0


def test_contrast_grey_is_float_mean_luma() -> None:
    img = np.random.default_rng(5).random((8, 8, 3), dtype=np.float32) * 0.5 + 0.25
    flat = fx.contrast(img, factor=0.0)
    mean = float((img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean())
    np.testing.assert_allclose(flat, mean, rtol=0, atol=1e-7)


def test_image_effects_clip_to_unit_range(image: np.ndarray) -> None:
    for name, factor in (("brightness", 5.0), ("contrast", 8.0), ("saturation", 15.0)):
        out = fx.apply_image_effect(name, image, {"factor": factor})
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert (out == 1.0).any()


def test_image_input_validation(image: np.ndarray) -> None:
    with pytest.raises(TypeError, match="float32"):
        fx.blur((image * 255).astype(np.uint8), sigma=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fx.brightness(image * 255, factor=1.0)
    with pytest.raises(ValueError, match="shape"):
        fx.contrast(image[..., :2], factor=1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        fx.blur(image, sigma=-1.0)


# ------------------------------------------------------------------------------------------
# Audio effects against references
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cutoff", [800.0, 2000.0, 4000.0])
def test_lpf_magnitude_response(cutoff: float) -> None:
    # Impulse at index 1 with preroll=1: x[0] = 0, so the zi start state is zero and the
    # output is the plain impulse response.
    h = fx.lpf(impulse(1 << 15, at=1), SR, cutoff_hz=cutoff, order=4, preroll=1)
    freqs = np.array([100.0, cutoff / 2, cutoff, 2 * cutoff, 3 * cutoff])
    measured = dtft_db(h, freqs)
    sos = ss.butter(4, cutoff, btype="low", fs=SR, output="sos")
    _, resp = ss.sosfreqz(sos, worN=freqs, fs=SR)
    np.testing.assert_allclose(measured, 20 * np.log10(np.abs(resp)), atol=0.1)
    # Closed form of the bilinear-transformed Butterworth (independent of scipy's design).
    ratio = np.tan(np.pi * freqs / SR) / np.tan(np.pi * cutoff / SR)
    closed = -10 * np.log10(1 + ratio**8)
    np.testing.assert_allclose(measured, closed, atol=0.1)
    assert measured[2] == pytest.approx(-3.0103, abs=0.1)
    # An octave up: -24 dB for an analogue 4th order; frequency warping makes it steeper.
    assert measured[3] == pytest.approx(closed[3], abs=0.1) and measured[3] <= -24.0


@pytest.mark.parametrize("cutoff", [800.0, 2000.0, 4000.0])
def test_lpf_matches_audiomentations(audio: np.ndarray, cutoff: float) -> None:
    aug = LowPassFilter(
        min_cutoff_freq=cutoff,
        max_cutoff_freq=cutoff,
        min_rolloff=24,
        max_rolloff=24,
        zero_phase=False,
        p=1.0,
    )
    ref = aug(samples=audio, sample_rate=SR)
    assert aug.parameters["rolloff"] == 24
    assert aug.parameters["cutoff_freq"] == pytest.approx(cutoff, rel=1e-9)
    out = fx.lpf(audio, SR, cutoff_hz=cutoff)
    # Measured bit-identical (audiomentations 0.43); 1e-5 leaves room for its mel round trip.
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_lpf_nyquist() -> None:
    x = np.random.default_rng(6).standard_normal(256).astype(np.float32)
    with pytest.raises(ValueError, match=r"cutoff_hz=30000.0 Hz.*24000.0 Hz"):
        fx.lpf(x, SR, cutoff_hz=30_000.0)
    np.testing.assert_array_equal(fx.lpf(x, SR, cutoff_hz=SR / 2), x)  # bypass
    order2 = fx.apply_audio_effect("lpf", x, SR, {"cutoff_hz": 1000.0, "order": 2})
    assert not np.allclose(order2, fx.apply_audio_effect("lpf", x, SR, {"cutoff_hz": 1000.0}))


def rbj_highshelf(gain_db: float, f0: float, q: float, sr: int) -> tuple[np.ndarray, ...]:
    """Robert Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients"."""
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    cw, sa = np.cos(w0), 2 * np.sqrt(a_) * alpha
    b = [
        a_ * ((a_ + 1) + (a_ - 1) * cw + sa),
        -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
        a_ * ((a_ + 1) + (a_ - 1) * cw - sa),
    ]
    a = [
        (a_ + 1) - (a_ - 1) * cw + sa,
        2 * ((a_ - 1) - (a_ + 1) * cw),
        (a_ + 1) - (a_ - 1) * cw - sa,
    ]
    return np.array(b) / a[0], np.array(a) / a[0]


@pytest.mark.parametrize("gain_db", [3.0, 6.0, 12.0, -6.0])
def test_highshelf_matches_rbj_cookbook(gain_db: float) -> None:
    h = fx.highshelf(impulse(1 << 14), SR, gain_db=gain_db, cutoff_hz=4000.0, q=0.707)
    freqs = np.array([20.0, 200.0, 1000.0, 2000.0, 4000.0, 6000.0, 10_000.0, 20_000.0])
    measured = dtft_db(h, freqs)
    b, a = rbj_highshelf(gain_db, 4000.0, 0.707, SR)
    _, resp = ss.freqz(b, a, worN=freqs, fs=SR)
    np.testing.assert_allclose(measured, 20 * np.log10(np.abs(resp)), atol=0.05)
    assert measured[0] == pytest.approx(0.0, abs=0.1)
    assert measured[-1] == pytest.approx(gain_db, abs=0.1)
    assert measured[4] == pytest.approx(gain_db / 2, abs=0.05)  # shelf midpoint at f0


@pytest.mark.parametrize("drive_db", [0.0, 6.0, 12.0, 24.0, 48.0])
@pytest.mark.parametrize("preroll", [0, 1000])
def test_saturation_is_rms_matched_tanh(audio: np.ndarray, drive_db: float, preroll: int) -> None:
    out = fx.audio_saturation(audio, SR, drive_db=drive_db, preroll=preroll)
    kept = audio[preroll:].astype(np.float64)
    curve = np.tanh(10 ** (drive_db / 20) * kept)
    ref = curve * rms(kept) / rms(curve)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    assert rms(out) == pytest.approx(rms(kept), rel=1e-5)


def test_saturation_silence_and_identity_limit(audio: np.ndarray) -> None:
    silent = fx.audio_saturation(np.zeros(500, np.float32), SR, drive_db=24.0)
    assert silent.dtype == np.float32 and not silent.any()
    # 0 dB is the spec's anchor but not an identity: tanh bends the peaks...
    assert np.abs(fx.audio_saturation(audio, SR, drive_db=0.0) - audio).max() > 1e-3
    # ...the identity is the limit of vanishing drive.
    np.testing.assert_allclose(fx.audio_saturation(audio, SR, drive_db=-80.0), audio, atol=1e-6)


def schroeder_rt60(h: np.ndarray, sr: int = SR) -> float:
    """T30: slope of the Schroeder backward-integrated decay between -5 and -35 dB."""
    e = np.cumsum((h.astype(np.float64) ** 2)[::-1])[::-1]
    edc = 10 * np.log10(e / e[0] + 1e-300)
    i0, i1 = int(np.argmax(edc <= -5)), int(np.argmax(edc <= -35))
    slope = np.polyfit(np.arange(i0, i1) / sr, edc[i0:i1], 1)[0]
    return float(-60 / slope)


def test_reverb_rt60_grows_with_room_size() -> None:
    # Measured with this pedalboard (0.9.26) T30 at damping 0.5: 0.3 -> 0.79 s, 0.5 -> 1.10,
    # 0.7 -> 1.76, 0.9 -> 3.99 s. Tolerances +-10 % (T20 vs T30 alone differ by ~5 %).
    expected = {0.3: 0.79, 0.5: 1.10, 0.7: 1.76, 0.9: 3.99}
    x = impulse(10 * SR)
    rt = {
        rs: schroeder_rt60(fx.reverb(x, SR, room_size=rs, wet_level=1.0, dry_level=0.0))
        for rs in (0.1, *expected)
    }
    values = list(rt.values())
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), rt
    for rs, want in expected.items():
        assert rt[rs] == pytest.approx(want, rel=0.10), rt


def test_reverb_dry_level_is_unity_gain(audio: np.ndarray) -> None:
    dry_only = fx.reverb(audio, SR, room_size=0.9, wet_level=0.0, dry_level=0.5)
    np.testing.assert_array_equal(dry_only, np.float32(0.5) * audio)
    wet = fx.reverb(audio, SR, room_size=0.5, wet_level=0.3, dry_level=0.0)
    both = fx.reverb(audio, SR, room_size=0.5, wet_level=0.3)
    np.testing.assert_allclose(both, wet + audio, atol=1e-6)
    # Same as pedalboard mixing itself, once its x2 dry scale is undone.
    board = Reverb(room_size=0.5, damping=0.5, wet_level=0.3, dry_level=0.5, width=1.0)
    np.testing.assert_allclose(both, board(audio, SR), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Properties every effect must have
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("modality", "name", "intensity"), all_variants())
def test_pure_float32_deterministic(
    image: np.ndarray, audio: np.ndarray, modality: str, name: str, intensity: str
) -> None:
    img_before, aud_before = image.copy(), audio.copy()
    params = DEFAULT_LEVELS[modality][name][intensity]
    first = run(modality, name, params, image, audio)
    second = run(modality, name, params, image, audio)
    np.testing.assert_array_equal(image, img_before)
    np.testing.assert_array_equal(audio, aud_before)
    ref = image if modality == "image" else audio
    assert first.dtype == np.float32 and first.shape == ref.shape
    assert np.isfinite(first).all()
    assert first.tobytes() == second.tobytes()
    assert not np.shares_memory(first, ref)
    if modality == "image":
        assert first.min() >= 0.0 and first.max() <= 1.0


@pytest.mark.parametrize(
    ("modality", "name"),
    [("image", n) for n in IMAGE_NAMES] + [("audio", n) for n in AUDIO_NAMES],
)
def test_stronger_levels_move_further(
    image: np.ndarray, audio: np.ndarray, modality: str, name: str
) -> None:
    ref = image if modality == "image" else audio
    dists = []
    for intensity in ORDER:
        out = run(modality, name, DEFAULT_LEVELS[modality][name][intensity], image, audio)
        if modality == "image":
            dists.append(float(np.abs(out - ref).mean()))
        else:
            dists.append(rms(out - ref) / rms(ref))
    assert 0 < dists[0] < dists[1] < dists[2], dists


@pytest.mark.parametrize(
    ("modality", "name"),
    [("image", n) for n in IMAGE_NAMES] + [("audio", n) for n in AUDIO_NAMES if n != "saturation"],
)
def test_identity_at_neutral(
    image: np.ndarray, audio: np.ndarray, modality: str, name: str
) -> None:
    # Audio saturation has no finite identity (see test_saturation_silence_and_identity_limit).
    params = neutral_params(fx.effect_spec(modality, name))
    out = run(modality, name, params, image, audio)
    ref = image if modality == "image" else audio
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_preroll_returns_tail_of_full_render(audio: np.ndarray, name: str) -> None:
    params = DEFAULT_LEVELS["audio"][name]["mid"]
    n = 4_800
    full = fx.apply_audio_effect(name, audio, SR, params)
    cut = fx.apply_audio_effect(name, audio, SR, params, preroll=n)
    assert cut.shape == (audio.size - n,) and cut.dtype == np.float32
    if name == "saturation":  # same curve, but RMS matched on the kept part only
        assert rms(cut) == pytest.approx(rms(audio[n:]), rel=1e-5)
        np.testing.assert_allclose(cut, full[n:] * (rms(cut) / rms(full[n:])), atol=1e-6)
    else:
        np.testing.assert_array_equal(cut, full[n:])
        # The state built up during the preroll matters: filtering the tail alone differs.
        alone = fx.apply_audio_effect(name, audio[n:].copy(), SR, params)
        assert np.abs(alone - cut).max() > 1e-4


def test_reverb_tail_from_preroll_flows_in() -> None:
    x = impulse(SR, at=100)
    out = fx.reverb(x, SR, room_size=0.6, wet_level=0.3, preroll=SR // 4)
    assert rms(out) > 1e-4


@pytest.mark.parametrize("preroll", [-1, 100, 2.5])
def test_preroll_bounds(preroll: int) -> None:
    with pytest.raises((ValueError, TypeError), match="preroll"):
        fx.apply_audio_effect("lpf", np.ones(100, np.float32), SR, {"cutoff_hz": 1e3}, preroll)


def test_apply_rejects_bad_params(image: np.ndarray, audio: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"'blur'.*\['sigmaa'\].*allowed: \['sigma'\]"):
        fx.apply_image_effect("blur", image, {"sigmaa": 1.0})
    with pytest.raises(ValueError, match=r"'reverb'.*missing.*wet_level"):
        fx.apply_audio_effect("reverb", audio, SR, {"room_size": 0.3})
    with pytest.raises(ValueError, match=r"'lpf'.*\['q'\].*'cutoff_hz', 'order'"):
        fx.apply_audio_effect("lpf", audio, SR, {"cutoff_hz": 1e3, "q": 1.0})


# ------------------------------------------------------------------------------------------
# check_levels
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modality", "name"), [(m, e) for m in DEFAULT_LEVELS for e in DEFAULT_LEVELS[m]]
)
def test_check_levels_accepts_defaults(modality: str, name: str) -> None:
    levels = DEFAULT_LEVELS[modality][name]
    fx.check_levels(modality, name, levels, ORDER)
    # As config.py calls it: fixed parameters merged into every level, sr given.
    merged = {i: {**fx.effect_spec(modality, name).fixed_defaults, **v} for i, v in levels.items()}
    fx.check_levels(modality, name, merged, ORDER, sr=SR if modality == "audio" else None)


def test_check_levels_allows_fixed_wet_level() -> None:
    levels = {
        i: {"room_size": r, "wet_level": 0.3} for i, r in zip(ORDER, (0.3, 0.6, 0.9), strict=True)
    }
    fx.check_levels("audio", "reverb", levels, ORDER)


@pytest.mark.parametrize(
    ("modality", "name", "levels", "sr", "pattern"),
    [
        (
            "image",
            "blur",
            {"low": {"sigma": -1.0}, "mid": {"sigma": 2.0}, "high": {"sigma": 4.0}},
            None,
            r"effects\.image\.blur\.low\.sigma = -1\.0 .*\[0\.0, 64\.0\]",
        ),
        (
            "image",
            "contrast",
            {"low": {"factor": 0.5}, "mid": {"factor": 0.7}, "high": {"factor": 0.3}},
            None,
            r"effects\.image\.contrast\.mid\.factor = 0\.7 must be < 0\.5 \(value at .low.\)",
        ),
        (
            "image",
            "brightness",
            {"low": {"factor": 1.0}, "mid": {"factor": 1.3}, "high": {"factor": 1.6}},
            None,
            r"effects\.image\.brightness\.low\.factor = 1\.0 .*neutral",
        ),
        (
            "image",
            "saturation",
            {"low": {"factor": 1.5}, "mid": {"factor": 2.5}, "high": {"factor": 25.0}},
            None,
            r"effects\.image\.saturation\.high\.factor = 25\.0 is outside .*\[0\.0, 20\.0\]",
        ),
        (
            "image",
            "blur",
            {"low": {"sigma": 1.0}, "mid": {"sigma": 2.0, "radius": 3}, "high": {"sigma": 4.0}},
            None,
            r"effects\.image\.blur\.mid\.radius: unknown parameter.*\['sigma'\]",
        ),
        (
            "image",
            "blur",
            {"low": {"sigma": 1.0}, "mid": {"sigma": 2.0}},
            None,
            r"effects\.image\.blur: intensities .*missing \['high'\]",
        ),
        (
            "image",
            "blur",
            {"low": {"sigma": 1.0}, "mid": {"sigma": "2"}, "high": {"sigma": 4.0}},
            None,
            r"effects\.image\.blur\.mid\.sigma: must be a finite number",
        ),
        (
            "audio",
            "lpf",
            {
                "low": {"cutoff_hz": 10_000.0},
                "mid": {"cutoff_hz": 4000.0},
                "high": {"cutoff_hz": 800.0},
            },
            16_000,
            r"effects\.audio\.lpf\.low\.cutoff_hz = 10000\.0 .*Nyquist.*8000\.0",
        ),
        (
            "audio",
            "highshelf",
            {"low": {"gain_db": -3.0}, "mid": {"gain_db": -6.0}, "high": {"gain_db": -12.0}},
            None,
            r"effects\.audio\.highshelf\.low\.gain_db = -3\.0 must be > 0\.0 \(neutral",
        ),
        (
            "audio",
            "reverb",
            {
                "low": {"room_size": 0.3, "wet_level": 0.3},
                "mid": {"room_size": 0.6, "wet_level": 0.2},
                "high": {"room_size": 0.9, "wet_level": 0.4},
            },
            None,
            r"effects\.audio\.reverb\.mid\.wet_level = 0\.2 must be >= 0\.3",
        ),
    ],
)
def test_check_levels_rejects(modality, name, levels, sr, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        fx.check_levels(modality, name, levels, ORDER, sr=sr)


def test_check_levels_nyquist_only_with_sr() -> None:
    levels = {
        "low": {"cutoff_hz": 10_000.0},
        "mid": {"cutoff_hz": 4000.0},
        "high": {"cutoff_hz": 800.0},
    }
    fx.check_levels("audio", "lpf", levels, ORDER)  # fine at the nominal 48 kHz
    with pytest.raises(ValueError, match="Nyquist"):
        fx.check_levels("audio", "lpf", levels, ORDER, sr=16_000)


@pytest.mark.parametrize(
    "modality, name, bad, words",
    [
        ("audio", "lpf", {"order": 2.5}, "order must be a positive whole number"),
        ("audio", "lpf", {"order": 0}, "order must be a positive whole number"),
        ("audio", "reverb", {"damping": 2.0}, "damping must be in [0, 1]"),
        ("audio", "reverb", {"width": -0.1}, "width must be in [0, 1]"),
        ("audio", "reverb", {"dry_level": -1.0}, "dry_level must be >= 0"),
        ("audio", "highshelf", {"q": 0.0}, "q must be > 0"),
        ("audio", "highshelf", {"cutoff_hz": 0.0}, "cutoff_hz=0.0 Hz must be in (0, 24000.0)"),
    ],
)
def test_every_parameter_is_checked_at_start_by_the_effects_own_rule(modality, name, bad, words):
    """check_levels (the start-up check) and the effect refuse the same value, same words."""
    from delta_v2a.effects import (
        DEFAULT_INTENSITIES,
        apply_audio_effect,
        check_levels,
    )

    levels = {i: {**DEFAULT_LEVELS[modality][name][i], **bad} for i in DEFAULT_INTENSITIES}
    with pytest.raises(ValueError) as at_start:
        check_levels(modality, name, levels, DEFAULT_INTENSITIES, sr=48_000)
    assert str(at_start.value).startswith(f"effects.{modality}.{name}.low: ")
    assert words in str(at_start.value)
    audio = np.full(4800, 0.1, np.float32)
    with pytest.raises(ValueError) as in_effect:
        apply_audio_effect(name, audio, 48_000, levels["low"])
    assert str(in_effect.value) in str(at_start.value)


def test_each_registered_effect_names_its_own_check():
    from delta_v2a.effects import AUDIO_EFFECTS, IMAGE_EFFECTS

    for spec in (*IMAGE_EFFECTS.values(), *AUDIO_EFFECTS.values()):
        fn = spec.fn.__name__.replace("audio_", "").replace("image_", "")
        assert spec.check.__name__.endswith(fn), (spec.name, spec.check.__name__)
