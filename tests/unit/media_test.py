"""Tests for delta_v2a.media: discovery, image and audio decoding, vetting."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
import soxr
from PIL import Image, ImageOps, JpegImagePlugin

from delta_v2a.media import (
    MIN_IMAGE_SIDE,
    BadMediaError,
    MediaFile,
    content_hash,
    discover,
    load_audio,
    load_image,
    probe,
    vet_file,
    walk_root,
)
from delta_v2a.media.images import _decode_image

SIZE = 32


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _save(arr: np.ndarray, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _check_out(out: np.ndarray, size: int = SIZE) -> None:
    assert out.shape == (size, size, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


# ------------------------------------------------------------------------------------------
# discover


def test_discover_layout_and_filters(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    _touch(root / "animals" / "cat.JPG")
    _touch(root / "animals" / "sub" / "deep" / "dog.jpeg")
    _touch(root / "objects" / "cup.png")
    _touch(root / "objects" / "space name é.Png")
    _touch(root / "objects" / ".hidden.png")
    _touch(root / "objects" / ".git" / "inside.png")
    _touch(root / "objects" / "notes.txt")
    _touch(root / "objects" / "anim.gif")
    _touch(root / ".secret" / "x.png")
    _touch(root / "loose.png")  # no category: ignored
    _touch(root / "zoo" / "ünï.jpg")
    outside = _touch(tmp_path / "elsewhere" / "real.png")
    _touch(tmp_path / "linked_dir" / "inner.jpg")
    (root / "scenes").mkdir()
    os.symlink(outside, root / "scenes" / "link.png")
    os.symlink(tmp_path / "linked_dir", root / "scenes" / "linked")
    os.symlink(root / "scenes", root / "scenes" / "loop")  # a cycle: must not hang
    os.symlink(tmp_path / "missing.png", root / "scenes" / "broken.png")

    monkeypatch.chdir(tmp_path)
    found = discover("imgs", "image")
    assert [f.path for f in found] == [
        "imgs/animals/cat.JPG",
        "imgs/animals/sub/deep/dog.jpeg",
        "imgs/objects/anim.gif",  # any format Pillow reads is found (animations are refused later)
        "imgs/objects/cup.png",
        "imgs/objects/space name é.Png",
        "imgs/scenes/link.png",
        "imgs/scenes/linked/inner.jpg",
        "imgs/zoo/ünï.jpg",
    ]
    assert [f.category for f in found] == [
        "animals",
        "animals",
        "objects",
        "objects",
        "objects",
        "scenes",
        "scenes",
        "zoo",
    ]
    assert all(isinstance(f, MediaFile) and f.modality == "image" for f in found)
    # Files no decoder reads are named (for skipped_files.tsv); hidden ones are not.
    assert [f.path for f in walk_root("imgs", "image").others] == ["imgs/objects/notes.txt"]
    # An absolute root gives absolute paths; the same files either way.
    absolute = discover(root, "image")
    assert [Path(f.path) for f in absolute] == [tmp_path / f.path for f in found]


def test_discover_audio_extensions_case_insensitive(tmp_path):
    for name in ["a.WAV", "b.Mp3", "c.flac", "d.ogg", "e.jpg", "f.wav.bak"]:
        _touch(tmp_path / "rock" / name)
    found = discover(tmp_path, "audio")
    assert [Path(f.path).name for f in found] == ["a.WAV", "b.Mp3", "c.flac", "d.ogg"]
    assert {f.modality for f in found} == {"audio"}
    # an image beside the songs is media of the other modality, not an "other" file
    assert [Path(f.path).name for f in walk_root(tmp_path, "audio").others] == ["f.wav.bak"]


def test_extension_lists_come_from_the_decoders():
    """Every format the installed libsndfile and Pillow read is accepted (issue 36.3)."""
    from delta_v2a.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS

    assert {".ogg", ".opus", ".oga", ".flac", ".wav", ".mp3", ".aiff"} <= set(AUDIO_EXTENSIONS)
    assert ".raw" not in AUDIO_EXTENSIONS  # header-less: needs its rate given
    assert {".webp", ".tif", ".tiff", ".bmp", ".jpg", ".png"} <= set(IMAGE_EXTENSIONS)
    assert ".eps" not in IMAGE_EXTENSIONS and ".txt" not in IMAGE_EXTENSIONS


def test_ogg_opus_and_webp_tiff_decode(tmp_path):
    sr = 48_000
    tone = _tones(sr * 2, sr)
    sf.write(tmp_path / "a.ogg", tone, sr, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "a.opus", tone, sr, format="OGG", subtype="OPUS")
    for name in ("a.ogg", "a.opus"):
        out = load_audio(tmp_path / name, sr, sr)
        assert np.corrcoef(out, tone[sr // 2 : sr // 2 + sr])[0, 1] > 0.95, name
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = (200, 30, 10)
    for name in ("a.webp", "a.tiff"):
        Image.fromarray(arr).save(tmp_path / name, lossless=True)
        out = load_image(tmp_path / name, SIZE)
        np.testing.assert_allclose(
            out[:, 2].mean(axis=0), [200 / 255, 30 / 255, 10 / 255], atol=0.02
        )


def test_discover_sorted_by_category_then_path(tmp_path):
    for p in ["b/z.png", "b/a.png", "a/y/b.png", "a/x.png", "B/q.png"]:
        _touch(tmp_path / p)
    found = discover(tmp_path, "image")
    keys = [(f.category, f.path) for f in found]
    assert keys == sorted(keys)
    assert [f.category for f in found] == ["B", "a", "a", "b", "b"]
    assert discover(tmp_path, "image") == found


def test_discover_missing_root_names_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data\.images root '.*nope' does not exist"):
        discover(tmp_path / "nope", "image")
    with pytest.raises(FileNotFoundError, match=r"data\.audio root"):
        discover(tmp_path / "nope", "audio")
    with pytest.raises(ValueError, match="modality"):
        discover(tmp_path, "video")


# ------------------------------------------------------------------------------------------
# load_image: colour modes


def test_grey_image_becomes_equal_channels(tmp_path):
    arr = np.full((40, 40), 100, np.uint8)
    out = load_image(_save(arr, tmp_path / "g.png"), SIZE)
    _check_out(out)
    np.testing.assert_allclose(out, 100 / 255, atol=1e-6)


def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((40, 60, 4), np.uint8)
    arr[..., 0] = 255  # red everywhere, alpha decides
    arr[:, :20, 3] = 0  # transparent -> white
    arr[:, 20:40, 3] = 128  # half -> pink
    arr[:, 40:, 3] = 255  # opaque -> red
    decoded = _decode_image(_save(arr, tmp_path / "a.png"), SIZE)
    np.testing.assert_allclose(decoded[5, 5], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(decoded[5, 30], [1, 127 / 255, 127 / 255], atol=3e-3)
    np.testing.assert_allclose(decoded[5, 50], [1, 0, 0], atol=1e-6)
    _check_out(load_image(tmp_path / "a.png", SIZE))


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (40, 40))
    pal.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    pal.paste(1, (0, 0, 40, 20))  # top half green (index 1), bottom blue (index 0)
    pal.save(tmp_path / "p.png")
    out = _decode_image(tmp_path / "p.png", SIZE)
    np.testing.assert_allclose(out[0, 0], [0, 1, 0])
    np.testing.assert_allclose(out[-1, 0], [0, 0, 1])
    pal.save(tmp_path / "pt.png", transparency=0)  # blue is the transparent index
    out = _decode_image(tmp_path / "pt.png", SIZE)
    np.testing.assert_allclose(out[0, 0], [0, 1, 0])
    np.testing.assert_allclose(out[-1, 0], [1, 1, 1])


def test_16bit_grey_png_keeps_full_precision(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png", SIZE)  # same size: resampling is the identity
    _check_out(out)
    np.testing.assert_allclose(out[..., 1], arr / 65535, atol=2e-6)
    # Truncating to 8 bits would be off by up to 1/255 - far above the tolerance.
    assert np.abs(np.round(arr / 257) / 255 - arr / 65535).max() > 1e-3


def test_16bit_colour_png_keeps_full_precision(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (SIZE, SIZE, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    assert Image.open(tmp_path / "c16.png").mode == "RGB"  # PIL alone would give 8 bits
    out = load_image(tmp_path / "c16.png", SIZE)
    np.testing.assert_allclose(out, rgb / 65535, atol=2e-6)


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (40, 40), (255, 0, 0, 0))  # pure cyan
    cmyk.save(tmp_path / "c.jpg", quality=95)
    out = load_image(tmp_path / "c.jpg", SIZE)
    _check_out(out)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), [0, 1, 1], atol=0.05)


def _with_orientation(arr: np.ndarray, path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(arr, path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_6_rotates(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 tall
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)  # right half blue
    path = _with_orientation(arr, tmp_path / "rot.jpg", 6)
    decoded = _decode_image(path, 20)
    assert decoded.shape == (40, 20, 3)  # displayed portrait
    # Orientation 6 = rotate 90° clockwise for display: the left half lands on top.
    assert decoded[:18, :, 0].mean() > 0.9 and decoded[:18, :, 2].mean() < 0.1
    assert decoded[22:, :, 2].mean() > 0.9 and decoded[22:, :, 0].mean() < 0.1
    out = load_image(path, 20)  # centre crop of the portrait: top half red, bottom blue
    assert out[:8, :, 0].mean() > 0.9 and out[-8:, :, 2].mean() > 0.9


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pil(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    arr = np.kron(rng.integers(0, 256, (3, 5, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    path = _with_orientation(arr, tmp_path / "o.png", orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path))).astype(np.float32) / 255
    np.testing.assert_allclose(_decode_image(path, 8), expected, atol=1e-6)


def test_large_jpeg_decodes_reduced(tmp_path, monkeypatch):
    x = np.linspace(0, 255, 6000, dtype=np.float32)
    y = np.linspace(0, 255, 4000, dtype=np.float32)
    arr = np.empty((4000, 6000, 3), np.uint8)
    arr[..., 0] = x[None, :]
    arr[..., 1] = y[:, None]
    arr[..., 2] = 128
    _save(arr, tmp_path / "big.jpg", quality=80)
    del arr
    # Spy on the JPEG decoder: the size it decodes at is what costs memory.
    decoded_sizes = []
    original_load = JpegImagePlugin.JpegImageFile.load

    def spy_load(self):
        decoded_sizes.append(self.size)
        return original_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy_load)
    start = time.perf_counter()
    decoded = _decode_image(tmp_path / "big.jpg", 224)
    out = load_image(tmp_path / "big.jpg", 224)
    elapsed = time.perf_counter() - start
    # Draft mode: 1/8 scale is the largest that keeps both sides >= 2*224.
    assert decoded_sizes[0] == (750, 500)
    assert decoded.shape == (500, 750, 3)
    _check_out(out, 224)
    assert elapsed < 3.0
    # Content still right: red grows left to right over the central square.
    assert out[112, 10, 0] < out[112, 112, 0] < out[112, 213, 0]
    np.testing.assert_allclose(out[112, 112], [0.5, 0.5, 128 / 255], atol=0.02)


def test_short_side_resize_and_centre_crop(tmp_path):
    bands = np.zeros((100, 300, 3), np.uint8)
    bands[:, :100, 0] = 255  # red | green | blue, landscape
    bands[:, 100:200, 1] = 255
    bands[:, 200:, 2] = 255
    out = load_image(_save(bands, tmp_path / "land.png"), 50)
    _check_out(out, 50)
    np.testing.assert_allclose(out[:, 2:-2], np.broadcast_to([0, 1, 0], (50, 46, 3)), atol=1e-3)
    out = load_image(_save(np.ascontiguousarray(bands.transpose(1, 0, 2)), tmp_path / "p.png"), 50)
    np.testing.assert_allclose(out[2:-2], np.broadcast_to([0, 1, 0], (46, 50, 3)), atol=1e-3)

    # A horizontal ramp: output column j samples source x = 50 + 2j + 0.5 (2x reduction).
    ramp = np.tile(np.arange(200, dtype=np.uint16)[None, :] * 300, (100, 1))
    out = load_image(_save(ramp, tmp_path / "ramp.png"), 50)
    expected = (50 + 2 * np.arange(50) + 0.5) * 300 / 65535
    np.testing.assert_allclose(out[25, 2:-2, 0], expected[2:-2], atol=2e-4)


def test_upscales_small_images(tmp_path):
    out = load_image(_save(np.full((10, 12, 3), 200, np.uint8), tmp_path / "s.png"), SIZE)
    _check_out(out)
    np.testing.assert_allclose(out, 200 / 255, atol=1e-5)


# ------------------------------------------------------------------------------------------
# load_image: bad files


def test_bad_images_raise_with_path_and_reason(tmp_path):
    rng = np.random.default_rng(0)
    good = _save(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), tmp_path / "g.jpg")
    data = good.read_bytes()
    cases = {
        _touch(tmp_path / "trunc.jpg", data[: len(data) // 2]): "truncated JPEG",
        _touch(tmp_path / "text.png", b"hello, I am text\n" * 20): "not an image file",
        _touch(tmp_path / "empty.jpg", b""): "empty file (0 bytes)",
        _save(np.zeros((1, 1, 3), np.uint8), tmp_path / "one.png"): "image is 1×1 px",
        _save(np.zeros((5, 100, 3), np.uint8), tmp_path / "thin.png"): "100×5 px",
    }
    for path, reason in cases.items():
        with pytest.raises(BadMediaError) as info:
            load_image(path, SIZE)
        assert str(path) in str(info.value)
        assert reason in info.value.reason
        assert info.value.path == str(path)
    assert f"at least {MIN_IMAGE_SIDE} px" in probe(
        MediaFile(str(tmp_path / "one.png"), "x", "image"), image_size=8, sr=1, window=1, preroll=0
    )


def test_bad_media_error_pickles():
    err = pickle.loads(pickle.dumps(BadMediaError("a/b.wav", "1-sample audio file")))
    assert (err.path, err.reason, str(err)) == ("a/b.wav", "1-sample audio file", err.args[0])
    assert str(err) == "a/b.wav: 1-sample audio file"
    assert isinstance(err, ValueError)


# ------------------------------------------------------------------------------------------
# load_audio


def _tones(n: int, sr: int, freqs=(440.0, 1234.0), amp=0.4) -> np.ndarray:
    t = np.arange(n) / sr
    return sum(amp * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32) / len(freqs)


@pytest.mark.parametrize(
    ("subtype", "tol"),
    [("PCM_U8", 1 / 120), ("PCM_16", 1 / 30000), ("PCM_24", 1e-6), ("FLOAT", 1e-7)],
)
def test_wav_bit_depths_give_same_signal(tmp_path, subtype, tol):
    sr = 16000
    x = _tones(sr, sr)
    sf.write(tmp_path / "t.wav", x, sr, subtype=subtype)
    out = load_audio(tmp_path / "t.wav", sr, sr // 2, sr // 4)
    start = (sr - sr // 2) // 2 - sr // 4
    assert out.dtype == np.float32 and out.shape == (sr // 2 + sr // 4,)
    np.testing.assert_allclose(out, x[start : start + len(out)], atol=tol)


def test_multichannel_downmixed_by_mean(tmp_path):
    sr = 8000
    x = _tones(sr, sr)
    chans = np.stack([x * (c + 1) / 6 + 0.01 * c for c in range(6)], axis=1)
    sf.write(tmp_path / "six.wav", chans, sr, subtype="FLOAT")
    out = load_audio(tmp_path / "six.wav", sr, 4000)
    np.testing.assert_allclose(out, chans.mean(axis=1)[2000:6000], atol=1e-6)


def test_resample_8k_to_48k_keeps_pitch(tmp_path):
    sr_in, sr = 8000, 48000
    sf.write(tmp_path / "k.wav", _tones(sr_in * 3, sr_in, freqs=(1000.0,)), sr_in)
    out = load_audio(tmp_path / "k.wav", sr, sr)
    spec = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    freqs = np.fft.rfftfreq(len(out), 1 / sr)
    assert abs(freqs[spec.argmax()] - 1000.0) <= 1.0
    assert spec[freqs > 4100].max() < 1e-3 * spec.max()  # no imaging above the old Nyquist


def test_centred_window_and_preroll_positions(tmp_path):
    sr, n = 8000, 24000
    ramp = np.arange(n, dtype=np.float32) / n  # sample value encodes its own index
    sf.write(tmp_path / "ramp.wav", ramp, sr, subtype="FLOAT")
    out = load_audio(tmp_path / "ramp.wav", sr, window=8000, preroll=2000)
    index = np.round(out * n).astype(int)
    np.testing.assert_array_equal(index, np.arange(6000, 16000))  # window 8000..16000
    no_preroll = load_audio(tmp_path / "ramp.wav", sr, window=8000)
    np.testing.assert_array_equal(out[2000:], no_preroll)  # preroll is what came before


def test_resampled_window_matches_whole_file_resample(tmp_path):
    sr_in, sr = 44100, 48000
    x = np.random.default_rng(0).uniform(-0.5, 0.5, sr_in * 6).astype(np.float32)
    sf.write(tmp_path / "n.wav", x, sr_in, subtype="FLOAT")
    out = load_audio(tmp_path / "n.wav", sr, window=sr * 2, preroll=sr // 2)
    full = soxr.resample(x, sr_in, sr, quality="VHQ")
    start = (len(full) - 2 * sr) // 2 - sr // 2
    np.testing.assert_allclose(out, full[start : start + len(out)], atol=1e-5)


def test_short_file_is_repeat_padded(tmp_path):
    sr, n = 8000, 3000
    ramp = np.arange(1, n + 1, dtype=np.float32) / n
    sf.write(tmp_path / "short.wav", ramp, sr, subtype="FLOAT")
    out = load_audio(tmp_path / "short.wav", sr, window=8000, preroll=1000)
    # Window starts at the file's start and tiles; the preroll is the file's end.
    np.testing.assert_array_equal(out, ramp[np.arange(-1000, 8000) % n])
    # Same policy with resampling: the level is kept, no zeros are inserted.
    up = load_audio(tmp_path / "short.wav", 16000, window=16000, preroll=2000)
    assert len(up) == 18000 and np.abs(up).min() > 0


def _sparse_wav(path: Path, sr: int, n: int, start: int, content: np.ndarray) -> None:
    """A 16-bit mono WAV of n frames that is all zeros (sparse) except content at `start`."""
    data_bytes = 2 * n
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + data_bytes)
        fh.seek(len(header) + 2 * start)
        fh.write((content * 32767).astype("<i2").tobytes())


def test_two_hour_file_decodes_only_the_window(tmp_path):
    sr_in, sr = 8000, 48000
    n = 2 * 3600 * sr_in
    middle = n // 2
    tone = _tones(sr_in * 14, sr_in, freqs=(500.0,), amp=0.5)
    _sparse_wav(tmp_path / "long.wav", sr_in, n, middle - sr_in * 7, tone)
    assert sf.info(tmp_path / "long.wav").duration == 7200.0
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = load_audio(tmp_path / "long.wav", sr, window=sr * 10, preroll=sr)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out) == sr * 11
    assert elapsed < 2.0
    assert peak < 50e6
    # Centred: the 500 Hz tone fills the whole window and preroll.
    rms = np.sqrt(np.mean(out.reshape(11, -1) ** 2, axis=1))
    np.testing.assert_allclose(rms, 0.5 / np.sqrt(2), rtol=0.01)


def test_mp3_and_flac_decode(tmp_path):
    sr = 48000
    x = _tones(sr * 12, sr, freqs=(440.0,), amp=0.6)
    x *= np.sin(np.pi * np.arange(len(x)) / len(x)).astype(np.float32)  # tonal, slow swell
    sf.write(tmp_path / "t.flac", x, sr)
    out = load_audio(tmp_path / "t.flac", sr, sr * 5, sr)
    start = (len(x) - sr * 5) // 2 - sr
    np.testing.assert_allclose(out, x[start : start + sr * 6], atol=1 / 30000)

    sf.write(tmp_path / "t.mp3", x, sr, format="MP3")
    out = load_audio(tmp_path / "t.mp3", sr, sr * 5, sr)
    decoded = sf.read(tmp_path / "t.mp3", dtype="float32")[0]
    # Seeking into the MP3 gives exactly what a full decode gives there (the decoder is primed).
    np.testing.assert_allclose(out, decoded[start : start + sr * 6], atol=1e-6)
    assert np.corrcoef(out, x[start : start + sr * 6])[0, 1] > 0.99


def test_bad_audio_reasons(tmp_path):
    sr = 8000
    sf.write(tmp_path / "one.wav", np.array([0.5], np.float32), sr)
    sf.write(tmp_path / "silence.wav", np.zeros(sr, np.float32), sr)
    nan = _tones(sr, sr)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, sr, subtype="FLOAT")
    sf.write(tmp_path / "tiny.wav", _tones(400, sr), sr)
    x = _tones(sr, sr)
    sf.write(tmp_path / "cancel.wav", np.stack([x, -x], axis=1), sr, subtype="FLOAT")
    _touch(tmp_path / "header.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(100))
    _touch(tmp_path / "empty.flac", b"")
    _touch(tmp_path / "text.mp3", b"not audio at all\n" * 50)
    cases = {
        "one.wav": "1-sample audio file",
        "silence.wav": "digital silence: all samples are 0",
        "nan.wav": "contains NaN/inf samples",
        "tiny.wav": "too short",
        "cancel.wav": "channels cancel",
        "header.wav": "cannot decode audio",
        "empty.flac": "empty file (0 bytes)",
        "text.mp3": "cannot decode audio",
    }
    for name, reason in cases.items():
        path = tmp_path / name
        with pytest.raises(BadMediaError) as info:
            load_audio(path, 48000, 48000, 4800)
        assert reason in info.value.reason, name
        assert str(path) in str(info.value)
        file = MediaFile(str(path), "x", "audio")
        assert probe(file, image_size=8, sr=48000, window=48000, preroll=4800) == info.value.reason


def test_truncated_audio(tmp_path, caplog):
    sr = 48000
    x = _tones(sr * 6, sr, freqs=(440.0,))
    sf.write(tmp_path / "full.flac", x, sr)
    sf.write(tmp_path / "full.mp3", x, sr, format="MP3")
    for ext in ("flac", "mp3"):
        data = (tmp_path / f"full.{ext}").read_bytes()
        _touch(tmp_path / f"cut.{ext}", data[: int(len(data) * 0.4)])
    # A FLAC cut mid-frame loses sync: bad file.
    with pytest.raises(BadMediaError, match="cannot decode audio"):
        load_audio(tmp_path / "cut.flac", sr, sr * 4, sr)
    # An MP3 whose header promises more than decodes: the decodable part is used, with a warning.
    with caplog.at_level("WARNING", logger="delta_v2a.media"):
        out = load_audio(tmp_path / "cut.mp3", sr, sr * 4, sr)
    assert len(out) == sr * 5 and np.sqrt(np.mean(out**2)) > 0.1
    assert "only" in caplog.text and "decode" in caplog.text


def test_probe(tmp_path):
    sf.write(tmp_path / "ok.wav", _tones(8000, 8000), 8000)
    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "ok.png")
    _touch(tmp_path / "bad.png", b"text")
    kw = {"image_size": 16, "sr": 16000, "window": 16000, "preroll": 1600}
    assert probe(MediaFile(str(tmp_path / "ok.wav"), "c", "audio"), **kw) is None
    assert probe(MediaFile(str(tmp_path / "ok.png"), "c", "image"), **kw) is None
    assert probe(MediaFile(str(tmp_path / "bad.png"), "c", "image"), **kw) == (
        "not an image file (cannot identify)"
    )
    assert "cannot read file" in probe(MediaFile(str(tmp_path / "gone.wav"), "c", "audio"), **kw)


def test_content_hash_streams_whole_file(tmp_path):
    data = np.random.default_rng(0).bytes(3 * 2**20 + 5)
    path = _touch(tmp_path / "blob.bin", data)
    assert content_hash(path) == hashlib.sha256(data).hexdigest()
    _touch(path, data[:-1] + b"\x00")
    assert content_hash(str(path)) != hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# robustness, second pass (docs/methods.md section 8)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_with_rows(w: int, h: int, rows: int, *, depth: int = 8, cut: int = 0) -> bytes:
    """An RGB PNG whose header declares w×h but whose (complete) zlib stream holds ``rows``."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(3 * w * depth // 8) for _ in range(rows))
    idat = zlib.compress(raw)
    idat = idat[: len(idat) - cut] if cut else idat
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def test_png_whose_data_holds_fewer_rows_than_declared_is_truncated(tmp_path):
    # PIL decodes this as an image with black rows: the row count must be checked.
    path = _touch(tmp_path / "short.png", _png_with_rows(1500, 1500, 10))
    Image.open(path).load()  # the premise: PIL alone accepts it
    with pytest.raises(BadMediaError, match=r"truncated PNG: its image data holds 45,010 of"):
        load_image(path, SIZE)
    # A stream cut mid-way (no zlib end) is truncated too, and a whole one passes.
    cut = _touch(tmp_path / "cut.png", _png_with_rows(300, 300, 300, cut=40))
    with pytest.raises(BadMediaError, match="truncated"):
        load_image(cut, SIZE)
    _check_out(load_image(_touch(tmp_path / "ok.png", _png_with_rows(300, 300, 300)), SIZE))
    # Adam7 interlaced: the expected size counts every pass.
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), np.uint8)).save(tmp_path / "i.png")
    _check_out(load_image(tmp_path / "i.png", SIZE))


def test_15000px_png_with_one_row_is_named_truncated_not_too_big(tmp_path):
    # The file: 15000×15000 declared, data for one row. Named as truncated (its data
    # ends early), not refused for the size its header promises; nothing large is allocated.
    for name, data in (
        ("huge.png", _png_with_rows(15000, 15000, 1)),
        ("no_iend.png", _png_with_rows(15000, 15000, 1)[:-12]),
    ):
        path = _touch(tmp_path / name, data)
        tracemalloc.start()
        with pytest.raises(BadMediaError, match=r"truncated PNG: ") as err:
            load_image(path, 224)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 50 * 2**20
        assert "memory budget" not in str(err.value)
    assert "before its IEND chunk" in str(err.value)


def _jpeg_declaring(w: int, h: int) -> bytes:
    """A real JPEG whose frame header is rewritten to declare w×h."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(
        buf, "JPEG"
    )
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def test_15000px_jpeg_whose_data_ends_early_is_named_truncated(tmp_path):
    data = _jpeg_declaring(15000, 15000)
    path = _touch(tmp_path / "huge.jpg", data[: data.index(b"\xff\xda") + 40])
    with pytest.raises(BadMediaError, match=r"truncated JPEG: the file ends \(\d+ bytes\) inside"):
        load_image(path, 224)
    # a whole JPEG passes the end check
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(buf, "JPEG")
    _check_out(load_image(_touch(tmp_path / "ok.jpg", buf.getvalue()), SIZE))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_data_is_an_error_in_every_format(tmp_path, fmt, keep):
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), np.uint8)).save(buf, fmt)
    data = buf.getvalue()
    path = _touch(tmp_path / "cut.png", data[: int(len(data) * keep)])  # any name: content decides
    with pytest.raises(BadMediaError, match="truncated|corrupt"):
        load_image(path, SIZE)


def test_truncated_images_stay_errors_even_if_someone_turns_pil_switch_on(tmp_path, monkeypatch):
    from PIL import ImageFile

    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "ok.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES is on"):
        load_image(tmp_path / "ok.png", SIZE)


def test_memory_budget_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    import delta_v2a.media.images as media

    # A TIFF: no reduced read (a PNG this size would be read in row strips instead).
    _save(np.zeros((400, 500, 3), np.uint8), tmp_path / "p.tif")
    need = media._decode_bytes(Image.open(tmp_path / "p.tif"), SIZE)
    assert need == 400 * 500 * (4 + 4) + (500 // 6) * (400 // 6) * 36  # RGB: buffer + copy
    monkeypatch.setattr(media, "MAX_DECODE_BYTES", need - 1)
    with pytest.raises(BadMediaError, match="per-file memory budget"):
        load_image(tmp_path / "p.tif", SIZE)
    monkeypatch.setattr(media, "MAX_DECODE_BYTES", need)
    _check_out(load_image(tmp_path / "p.tif", SIZE))


def test_a_configured_budget_is_named_in_the_refusal_with_the_value_that_passes(
    tmp_path, monkeypatch
):
    """The workflow passes preprocessing.image.decode_budget_mib: a refusal names the key and the
    smallest value that accepts the file (which then does); the CLI's default names no key."""
    import delta_v2a.media.images as media

    _save(np.zeros((400, 500, 3), np.uint8), tmp_path / "p.tif")
    need = media._decode_bytes(Image.open(tmp_path / "p.tif"), SIZE)
    mib = -(-need // 2**20)
    file = MediaFile(str(tmp_path / "p.tif"), "c", "image")
    common = {"image_size": SIZE, "sr": 48_000, "window": 48_000, "preroll": 0}
    reason, _ = vet_file(file, **common, budget=(mib - 1) * 2**20)
    assert reason is not None
    assert f"raise preprocessing.image.decode_budget_mib to at least {mib}," in reason
    assert vet_file(file, **common, budget=mib * 2**20)[0] is None
    with pytest.raises(BadMediaError) as err:
        load_image(tmp_path / "p.tif", SIZE, budget=need - 1)
    assert "decode_budget_mib" in str(err.value)
    monkeypatch.setattr(media, "MAX_DECODE_BYTES", need - 1)
    with pytest.raises(BadMediaError) as err:
        load_image(tmp_path / "p.tif", SIZE)
    assert "decode_budget_mib" not in str(err.value) and "downscale it" in str(err.value)


def test_16bit_colour_png_reduced_matches_full_float_reduction(tmp_path):
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 65536, (333, 401, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16a.png"), rgba[..., [2, 1, 0, 3]])
    decoded = _decode_image(tmp_path / "c16a.png", 16)  # factor 333 // 32 = 10
    f = rgba.astype(np.float64) / 65535
    premul = np.concatenate([f[..., :3] * f[..., 3:], f[..., 3:]], axis=-1)
    rows, cols = np.arange(0, 333, 10), np.arange(0, 401, 10)
    sums = np.add.reduceat(np.add.reduceat(premul, rows, 0), cols, 1)
    counts = np.outer(np.diff(np.append(rows, 333)), np.diff(np.append(cols, 401)))
    mean = sums / counts[..., None]
    expected = mean[..., :3] + (1 - mean[..., 3:])
    assert decoded.shape == (34, 41, 3)
    np.testing.assert_allclose(decoded, expected, atol=1e-5)


def test_16bit_png_decode_memory_stays_near_its_uint16_buffer(tmp_path):
    # The 843 kB 16-bit PNG reached 4.3 GB: float copies of the whole image. Now only
    # OpenCV's uint16 buffer is full size (cv2 allocates outside tracemalloc; numpy inside).
    arr = np.zeros((3000, 4000, 3), np.uint16)
    arr[::7, ::5] = 40000
    cv2.imwrite(str(tmp_path / "big16.png"), arr)
    tracemalloc.start()
    out = load_image(tmp_path / "big16.png", 224)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _check_out(out, 224)
    uint16_buffer = 3000 * 4000 * 3 * 2
    assert peak < uint16_buffer + 48 * 2**20, peak  # + one 32 MiB float stripe and change


def test_animated_images_are_refused_and_mpo_is_not(tmp_path):
    frames = [Image.new("RGB", (32, 32), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", "GIF", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "apng.png", "PNG", save_all=True, append_images=frames[1:])
    for name, fmt in (("anim.png", "GIF"), ("apng.png", "PNG")):
        with pytest.raises(BadMediaError, match=f"animated {fmt} \\(3 frames\\)"):
            load_image(tmp_path / name, SIZE)
    frames[0].save(tmp_path / "still.gif.png", "GIF")
    _check_out(load_image(tmp_path / "still.gif.png", SIZE))


def _swapped_srgb_profile() -> bytes:
    """sRGB with its red and blue primaries swapped: a valid RGB profile with a known effect."""
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", icc[128:132])[0]
    entries = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, b = entries[b"rXYZ"], entries[b"bXYZ"]
    icc[r + 4 : r + 12], icc[b + 4 : b + 12] = icc[b + 4 : b + 12], icc[r + 4 : r + 12]
    return bytes(icc)


def test_embedded_icc_profile_is_applied(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(30, 220, (40, 40, 3), np.uint8)
    # Stored values mean (blue, green, red) under this profile: sRGB output swaps R and B.
    Image.fromarray(arr).save(tmp_path / "swap.png", icc_profile=_swapped_srgb_profile())
    managed = _decode_image(tmp_path / "swap.png", 20)
    np.testing.assert_allclose(managed, arr[..., ::-1] / 255, atol=3 / 255)
    assert np.abs(managed - arr / 255).mean() > 0.1  # not merely the unmanaged values


def test_broken_icc_profile_is_named_in_a_warning(tmp_path, caplog):
    Image.new("RGB", (20, 20), (10, 200, 30)).save(tmp_path / "b.jpg", icc_profile=b"junk" * 40)
    _check_out(load_image(tmp_path / "b.jpg", SIZE))
    assert "embedded ICC profile unusable" in caplog.text and "b.jpg" in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        b"ID3\x04\x00\x00\x00\x00\x00\x14" + bytes(20),  # ID3v2 with padding only
        b"TAG" + b"title".ljust(125, b"\x00"),  # ID3v1 only
        b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"TAG" + bytes(125),  # both
    ],
)
def test_id3_only_mp3_says_it_has_no_audio_frames(tmp_path, data):
    path = _touch(tmp_path / "tag.mp3", data)
    with pytest.raises(BadMediaError, match="no audio frames: the file holds only an ID3 tag"):
        load_audio(path, 48000, 48000)


def test_unreadable_file_is_not_called_corrupt(tmp_path, monkeypatch):
    # Tests run as root (who reads anything), so the PermissionError is injected at open().
    import builtins

    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "locked.png")
    sf.write(tmp_path / "locked.wav", _tones(8000, 8000), 8000)
    real_open = builtins.open

    def guarded(path, *a, **k):
        if "locked" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    kw = {"image_size": 16, "sr": 16000, "window": 16000, "preroll": 0}
    for name, modality in (("locked.png", "image"), ("locked.wav", "audio")):
        reason = probe(MediaFile(str(tmp_path / name), "c", modality), **kw)
        assert reason == "cannot read file: Permission denied", name


def test_unreadable_folder_is_named(tmp_path, monkeypatch):
    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "root/cat/a.png")
    real = os.scandir

    def guarded(path):
        if str(path).endswith("cat"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", guarded)
    with pytest.raises(OSError, match=r"cannot list folder '.*root/cat': permission denied; give"):
        discover(tmp_path / "root", "image")


#: Names a POSIX file system allows and a TSV line or a log line cannot hold as they are.
ODD_NAMES = [
    b"new\nline.png",
    b"tab\there.png",
    b"quote\"s and 'single'.png",
    b"brace {x}.png",
    b"-leading dash.png",
    b"caf\xe9 latin-1.png",
    "emoji \U0001f3b5.png".encode(),
    b"back\\slash \\x41.png",
    b"cr\rdel\x7f.png",
]


def test_any_name_is_vetted_and_round_trips_through_the_manifest(tmp_path):
    from delta_v2a.extract import read_manifest, write_manifest, write_skipped
    from delta_v2a.media import path_from_shown, shown_path

    cat = tmp_path / "root" / "cat\tégorie"
    png = _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "plain.png").read_bytes()
    for raw in ODD_NAMES:
        with open(os.fsencode(cat) + b"/" + raw if cat.exists() else _mk(cat, raw), "wb") as fh:
            fh.write(png)
    files = discover(tmp_path / "root", "image")
    assert sorted(os.fsencode(Path(f.path).name) for f in files) == sorted(ODD_NAMES)
    assert {f.category for f in files} == {"cat\\x09égorie"}  # a label: one line of text
    for f in files:
        assert "\n" not in f.shown and "\t" not in f.shown and "\r" not in f.shown
        assert path_from_shown(f.shown) == f.path
        assert probe(f, image_size=16, sr=1, window=1, preroll=0) is None, f.shown
    assert shown_path("plain/é {x}.png") == "plain/é {x}.png"  # ordinary names unchanged
    hashes = [content_hash(f.path) for f in files]
    write_manifest(tmp_path / "m.tsv", files, hashes)
    back = read_manifest(tmp_path / "m.tsv")
    assert [(f.path, f.category, f.sha256) for f in back] == [
        (f.path, f.category, h) for f, h in zip(files, hashes, strict=True)
    ]
    write_skipped(tmp_path / "s.tsv", [(f, "why\tnot") for f in files])
    import pandas as pd

    table = pd.read_csv(tmp_path / "s.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert [path_from_shown(p) for p in table["path"]] == [f.path for f in files]
    assert set(table["reason"]) == {"why\tnot"}
    for text in ("lone \\ backslash", "bad \\xZZ", "ctrl \x01"):
        with pytest.raises(ValueError):
            path_from_shown(text)


def _mk(folder: Path, raw: bytes) -> bytes:
    folder.mkdir(parents=True)
    return os.fsencode(folder) + b"/" + raw


def test_decode_refuses_bytes_other_than_the_vetted_ones(tmp_path):
    from delta_v2a.media import FileChangedError, load_image_hashed, vet_file

    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "a.png")
    sf.write(tmp_path / "a.wav", _tones(8000, 8000), 8000)
    kw = {"image_size": 16, "sr": 16000, "window": 16000, "preroll": 0}
    img, aud = (
        MediaFile(str(tmp_path / "a.png"), "c", "image"),
        MediaFile(str(tmp_path / "a.wav"), "c", "audio"),
    )
    (_, h_img), (_, h_aud) = vet_file(img, **kw), vet_file(aud, **kw)
    assert h_img == content_hash(img.path) and h_aud == content_hash(aud.path)
    assert load_image_hashed(img.path, 16)[1] == h_img
    load_image(img.path, 16, sha256=h_img)
    load_audio(aud.path, 16000, 16000, sha256=h_aud)
    _save(np.full((20, 20, 3), 9, np.uint8), tmp_path / "a.png")
    sf.write(tmp_path / "a.wav", _tones(8000, 8000, amp=0.3), 8000)
    with pytest.raises(FileChangedError, match=r"a\.png: file changed while the workflow ran"):
        load_image(img.path, 16, sha256=h_img)
    with pytest.raises(FileChangedError, match=r"a\.wav: file changed"):
        load_audio(aud.path, 16000, 16000, sha256=h_aud)
    assert pickle.loads(pickle.dumps(FileChangedError("p", "a" * 64, "b" * 64))).path == "p"


def test_audio_changed_during_its_decode_is_detected(tmp_path, monkeypatch):
    import delta_v2a.media.audio as media
    from delta_v2a.media import FileChangedError

    sf.write(tmp_path / "a.wav", _tones(8000, 8000), 8000)
    real = media.decode_audio

    def decode_then_rewrite(path, *a, **k):
        out = real(path, *a, **k)
        sf.write(path, _tones(8000, 8000, amp=0.1), 8000)
        return out

    monkeypatch.setattr(media, "decode_audio", decode_then_rewrite)
    with pytest.raises(FileChangedError):
        media.load_audio_hashed(tmp_path / "a.wav", 16000, 16000)


def test_multi_frame_camera_jpeg_mpo_is_a_photo_not_an_animation(tmp_path):
    first, second = Image.new("RGB", (40, 40), (200, 0, 0)), Image.new("RGB", (40, 40), (0, 200, 0))
    first.save(tmp_path / "stereo.jpg", "MPO", save_all=True, append_images=[second])
    assert Image.open(tmp_path / "stereo.jpg").n_frames == 2
    out = load_image(tmp_path / "stereo.jpg", SIZE)  # frame 0 is the photo
    np.testing.assert_allclose(out.mean(axis=(0, 1)), [200 / 255, 0, 0], atol=0.02)


def _photo_like(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: a PNG encoder then uses every filter type (checked)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 37 + y * 11 + k * 5000) % 65536 for k in range(c)], axis=-1)
    noise = rng.integers(0, 4096, (h, w, c))
    return ((base + noise) % 65536).astype(np.uint16)


def _png_filters(path: Path) -> set[int]:
    from delta_v2a.media.png import png_layout

    layout = png_layout(path.read_bytes())
    raw = zlib.decompress(b"".join(bytes(b) for b in layout.idat))
    stride = 1 + layout.row_bytes
    return {raw[i] for i in range(0, len(raw), stride)}


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a, b, c = (x.astype(np.int16) for x in (a, b, c))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _refilter(path: Path, raw_rows: np.ndarray, bpp: int, seed: int = 0) -> None:
    """Rewrite a PNG's image data with a random filter type per row (all five, PNG spec
    §9.2), so the strip reader meets Sub, Up, Average and Paeth at strip edges."""
    from delta_v2a.media.png import _chunk, png_layout

    data = path.read_bytes()
    layout = png_layout(data)
    x = raw_rows.astype(np.int16)
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    upleft = np.zeros_like(x)
    upleft[1:, bpp:] = x[:-1, :-bpp]
    options = [x, x - left, x - up, x - (left + up) // 2, x - _paeth(left, up, upleft)]
    kinds = np.random.default_rng(seed).integers(0, 5, len(x))
    rows = np.choose(kinds[:, None], options) % 256
    body = np.concatenate([kinds[:, None], rows], axis=1).astype(np.uint8).tobytes()
    ihdr = data[8 : 8 + 25]
    path.write_bytes(
        data[:8] + ihdr + layout.head + _chunk(b"IDAT", zlib.compress(body)) + _chunk(b"IEND", b"")
    )


def _adam7_png(rgb: np.ndarray) -> bytes:
    """An interlaced (Adam7) 8-bit RGB PNG, every row unfiltered."""
    from delta_v2a.media.png import _chunk

    h, w, _ = rgb.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2)]
    body = b""
    for x0, y0, dx, dy in [*passes, (0, 1, 1, 2)]:
        sub = rgb[y0::dy, x0::dx]
        if sub.size:
            body += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    idat = zlib.compress(body)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("kind", ["rgb16", "rgba16", "grey16", "rgb", "rgba", "la", "l", "p"])
def test_png_over_the_budget_is_read_in_strips_bit_identical(tmp_path, monkeypatch, kind):
    """Issue 37.3: a PNG whose whole decode is over the budget is read in row strips and
    reduced strip by strip; the pixels equal the whole decode's, bit for bit."""
    import delta_v2a.media.images as images

    h, w, size = 901, 1203, 16  # factor 28; 901 rows: the last strip and block are partial
    big = _photo_like(h, w, 4)
    path = tmp_path / f"{kind}.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the strip reader finds the orientation without loading
    if kind in ("rgb16", "rgba16", "grey16"):
        arr = {"rgb16": big[..., :3], "rgba16": big, "grey16": big[..., 0]}[kind]
        cv2.imwrite(str(path), arr)
    else:
        mode = {"rgb": "RGB", "rgba": "RGBA", "la": "LA", "l": "L", "p": "RGB"}[kind]
        im8 = Image.fromarray((big >> 8).astype(np.uint8)[..., : len(mode)].squeeze(), mode)
        if kind == "p":
            im8 = im8.quantize(200)
            im8.info["transparency"] = 3
        im8.save(path, exif=exif, **({"transparency": 3} if kind == "p" else {}))
    with Image.open(path) as im:
        sixteen = images._is_16bit_colour_png(im)
        rawmode, bands = im.tile[0].args, len(im.getbands())
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if sixteen else None
        if sixteen:  # Pillow keeps 8 of the 16 bits: the file's rows come from OpenCV
            raw = raw[..., [2, 1, 0, 3][: raw.shape[2]]].astype(">u2").tobytes()
        else:
            raw = im.tobytes("raw", rawmode)
        depth = 2 if rawmode.endswith("16B") or sixteen else 1
        need = images._decode_bytes(im, 0 if sixteen else size)
    bpp = depth * (1 if kind == "p" else bands)
    _refilter(path, np.frombuffer(raw, np.uint8).reshape(h, -1), bpp)
    assert _png_filters(path) == {0, 1, 2, 3, 4}
    whole = images._decode_image(path, size, budget=need)
    calls = []
    real = images.png_strips
    monkeypatch.setattr(images, "png_strips", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(images, "STRIP_BYTES", 60_000)  # many strips
    strips = images._decode_image(path, size, budget=need - 1)
    assert calls, "the strip reader was not used"
    assert strips.dtype == whole.dtype and strips.shape == whole.shape
    assert np.array_equal(strips, whole)
    if kind not in ("rgb16", "rgba16", "grey16"):
        assert strips.shape[0] > strips.shape[1]  # orientation 6 applied (portrait)


def test_png_that_cannot_be_read_in_strips_is_refused_naming_the_key(tmp_path, monkeypatch):
    import delta_v2a.media.images as images

    monkeypatch.setattr(images, "STRIP_BYTES", 60_000)
    arr = (_photo_like(300, 400, 3) >> 8).astype(np.uint8)
    (tmp_path / "i.png").write_bytes(_adam7_png(arr))
    Image.fromarray(arr).save(tmp_path / "ok.png")
    with Image.open(tmp_path / "i.png") as im:
        assert im.info.get("interlace")
        need = images._decode_bytes(im, 16)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "i.png")), arr)
    with pytest.raises(BadMediaError) as err:
        load_image(tmp_path / "i.png", 16, budget=need - 1)
    assert "interlaced PNG cannot be read in row strips" in str(err.value)
    assert "raise preprocessing.image.decode_budget_mib" in str(err.value)
    # The same pixels, not interlaced, are read in strips within the same budget.
    _check_out(load_image(tmp_path / "ok.png", 16, budget=need - 1), 16)
    with pytest.raises(BadMediaError, match="nearly its full size"):
        load_image(tmp_path / "ok.png", 200, budget=1000)


def test_a_file_failing_while_embedded_is_named_with_its_variant(tmp_path):
    """Issue 37.2: an exception while one file's variant is rendered names the file; the job
    turns it into one line saying why on_bad_file cannot act there."""
    from delta_v2a.extract import Decoding, FileFailedError, embed_variant

    _save(np.zeros((20, 20, 3), np.uint8), tmp_path / "c" / "new\nline.png")
    file = MediaFile(str(tmp_path / "c" / "new\nline.png"), "c", "image")

    class Embedder:
        dim = 3

        def prepare(self, x):
            if x.mean() == 0:
                raise ZeroDivisionError("a black frame")
            return x

        def embed_prepared(self, batch):
            return np.zeros((len(batch), 3), np.float32)

    with pytest.raises(FileFailedError) as err:
        embed_variant(Embedder(), [file], Decoding("image", image_size=16), None, {}, 1)
    assert str(err.value).endswith("c/new\\x0aline.png: original: ZeroDivisionError: a black frame")
