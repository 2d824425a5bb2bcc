"""Model loading and embedding on tiny offline checkpoints (random weights: plumbing only)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from delta_v2a.embedders.clap import ClapEmbedder
from delta_v2a.embedders.clip import ClipEmbedder
from delta_v2a.models import (
    HEALTH_PROMPTS,
    ModelInfo,
    health_check,
    load_embedder,
    mean_pairwise_cosine,
    resolve_device,
    resolve_dtype,
)
from delta_v2a.tiny_models import (
    TINY_MARKER,
    TINY_NOTE,
    build_tiny_clap,
    build_tiny_clip,
    main,
    write_tiny_clap,
    write_tiny_clip,
)

SR = 48000
WINDOW = 10 * SR


@cache
def _images() -> tuple[np.ndarray, ...]:
    """Eight visibly different 224 px RGB images in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 223.0
    checker = (((xx * 8).astype(int) + (yy * 8).astype(int)) % 2).astype(float)
    imgs = [np.full((224, 224, 3), c, dtype=np.float64) for c in ([1, 0, 0], [0, 0, 1], [0.5] * 3)]
    imgs += [
        np.stack([xx, yy, 1 - xx], axis=-1),
        rng.random((224, 224, 3)),
        np.repeat(checker[..., None], 3, axis=-1),
        np.stack([yy] * 3, axis=-1),
        np.zeros((224, 224, 3)),
    ]
    return tuple(im.astype(np.float32) for im in imgs)


@cache
def _clips() -> tuple[np.ndarray, ...]:
    """Eight different 10 s, 48 kHz clips: tones, noise, square wave, chirp, random walk."""
    rng = np.random.default_rng(1)
    t = np.arange(WINDOW) / SR
    clips = [0.3 * np.sin(2 * np.pi * f * t) for f in (110, 440, 1000, 3000)]
    clips += [
        0.1 * rng.standard_normal(WINDOW),
        0.5 * np.sign(np.sin(2 * np.pi * 2 * t)),
        0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t),
        np.cumsum(rng.standard_normal(WINDOW)) * 1e-3,
    ]
    return tuple(c.astype(np.float32) for c in clips)


def _state_dicts_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- tiny checkpoints


def test_round_trip_from_pretrained_offline(monkeypatch, tiny_clip_dir, tiny_clap_dir):
    from transformers import AutoProcessor, ClapModel, CLIPImageProcessorPil, CLIPModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for directory, model_cls, build in (
        (tiny_clip_dir, CLIPModel, build_tiny_clip),
        (tiny_clap_dir, ClapModel, build_tiny_clap),
    ):
        loaded = model_cls.from_pretrained(directory)
        built, built_proc = build(seed=0)
        assert _state_dicts_equal(loaded, built), directory.name
        proc = AutoProcessor.from_pretrained(directory)
        prompt = "a violin concerto, heavy traffic"
        assert proc.tokenizer(prompt)["input_ids"] == built_proc.tokenizer(prompt)["input_ids"]
    clip_proc = AutoProcessor.from_pretrained(tiny_clip_dir, backend="pil")
    assert isinstance(clip_proc.image_processor, CLIPImageProcessorPil)


def test_fresh_interpreter_loads_offline_and_unknown_id_is_clear(tmp_path, tiny_model_root):
    """HF_HUB_OFFLINE is read at import time, so only a fresh process really tests it."""
    script = (
        "import json, sys\n"
        "from delta_v2a.models import load_embedder\n"
        "root = sys.argv[1]\n"
        "out = {m: load_embedder(m, f'{root}/tiny-{k}', device='cpu').info.to_dict()\n"
        "       for m, k in (('image', 'clip'), ('audio', 'clap'))}\n"
        "try:\n"
        "    load_embedder('audio', 'delta-v2a-test/no-such-model')\n"
        "except (ValueError, OSError) as err:\n"
        "    out['error'] = str(err)\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tiny_model_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["image"]["dim"] == 768 and out["audio"]["dim"] == 512
    assert out["image"]["tiny"] and out["audio"]["tiny"]
    assert "delta-v2a-test/no-such-model" in out["error"]
    assert "python -m delta_v2a.tiny_models" in out["error"]


def test_seeded_writes_are_identical_and_seed_matters(tmp_path, tiny_model_root):
    assert main([str(tmp_path / "cli")]) == 0  # the CLI writes seed 0
    write_tiny_clip(tmp_path / "clip-seed1", seed=1)
    write_tiny_clap(tmp_path / "clap-seed1", seed=1)
    for kind in ("clip", "clap"):
        weights = (tmp_path / "cli" / f"tiny-{kind}" / "model.safetensors").read_bytes()
        assert weights == (tiny_model_root / f"tiny-{kind}" / "model.safetensors").read_bytes()
        assert weights != (tmp_path / f"{kind}-seed1" / "model.safetensors").read_bytes()
        marker = json.loads((tmp_path / f"{kind}-seed1" / TINY_MARKER).read_text())
        assert marker == {"tiny": True, "note": TINY_NOTE, "seed": 1, "kind": kind}


def test_tiny_models_keep_real_geometry(clip_embedder, clap_embedder):
    clip_cfg, clap_cfg = clip_embedder.model.config, clap_embedder.model.config
    assert clip_cfg.projection_dim == 768 and clip_cfg.vision_config.image_size == 224
    assert clap_cfg.projection_dim == 512 and not clap_cfg.audio_config.enable_fusion
    assert clip_embedder.input_size == 224
    assert clap_embedder.sampling_rate == SR and clap_embedder.window_samples == WINDOW
    assert clap_embedder.feature_extractor.feature_size == 64


# --------------------------------------------------------------------------- info and loading


def test_marker_sets_tiny_and_its_absence_clears_it(clip_embedder, tiny_clip_dir, tmp_path):
    info = clip_embedder.info
    assert info.tiny is True and info.note == TINY_NOTE
    assert info.dim == 768 and info.dtype == "fp32" and info.device == "cpu"
    assert info.resolved_path == str(tiny_clip_dir.resolve())
    assert set(info.to_dict()) == {f.name for f in ModelInfo.__dataclass_fields__.values()}
    plain = tmp_path / "plain-clip"
    shutil.copytree(tiny_clip_dir, plain)
    (plain / TINY_MARKER).unlink()
    other = ClipEmbedder.load(str(plain), device="cpu")
    assert other.info.tiny is False and other.info.note == ""


def test_missing_directory_raises_clear_error(tmp_path):
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(FileNotFoundError) as err:
        ClapEmbedder.load(str(missing), device="cpu")
    assert str(missing) in str(err.value)
    assert "python -m delta_v2a.tiny_models" in str(err.value)


def test_tiny_model_files_are_readable_by_everyone(tiny_clip_dir, tiny_clap_dir):
    # safetensors writes 0600; a shared install needs 0644 files and 0755 folders
    for root in (tiny_clip_dir, tiny_clap_dir):
        modes = {p.name: p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}
        assert modes and set(modes.values()) == {0o644}, modes
        assert "model.safetensors" in modes
        assert root.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("denied", ["folder", "weights"])
def test_unreadable_model_is_one_line_saying_permission_denied(
    tmp_path, tiny_clip_dir, monkeypatch, denied
):
    # tests run as root, who reads everything: the kernel's answer is simulated at os.access
    copy = shutil.copytree(tiny_clip_dir, tmp_path / "clip")
    target = copy if denied == "folder" else copy / "model.safetensors"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and Path(p) != target)
    with pytest.raises(PermissionError) as err:
        load_embedder("image", str(copy), device="cpu")
    message = str(err.value)
    assert f"'{target}': permission denied" in message and "\n" not in message
    assert "No such file" not in message and "incomplete" not in message


def test_wrong_model_type_and_modality(tiny_clap_dir):
    with pytest.raises(ValueError, match="is a clap model: it has no image tower"):
        load_embedder("image", str(tiny_clap_dir), device="cpu")
    with pytest.raises(ValueError, match="'clap' model, expected 'clip'"):
        load_embedder("image", str(tiny_clap_dir), family="clip", device="cpu")
    with pytest.raises(ValueError, match="unknown modality"):
        load_embedder("video", str(tiny_clap_dir))
    assert isinstance(load_embedder("audio", str(tiny_clap_dir), device="cpu"), ClapEmbedder)


def test_resolve_device_and_dtype(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    assert resolve_dtype("fp32", "cpu") is torch.float32
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    assert resolve_dtype("fp16", torch.device("cpu")) is torch.float16
    assert resolve_dtype("auto", "cpu") is torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8", "cpu")


# --------------------------------------------------------------------------- embeddings


def test_shapes_dtype_and_unit_norm(clip_embedder, clap_embedder):
    outputs = {
        "images": (clip_embedder.embed_images(_images()), 768),
        "clip texts": (clip_embedder.embed_texts(HEALTH_PROMPTS), 768),
        "audio": (clap_embedder.embed_audio(_clips()), 512),
        "clap texts": (clap_embedder.embed_texts(HEALTH_PROMPTS), 512),
    }
    for name, (emb, dim) in outputs.items():
        assert emb.shape == (8, dim) and emb.dtype == np.float32, name
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5, err_msg=name)
    assert clip_embedder.embed_images([]).shape == (0, 768)


def test_unnormalised_clip_differs_only_in_length(tiny_clip_dir, clip_embedder):
    raw_embedder = ClipEmbedder.load(str(tiny_clip_dir), device="cpu", normalize=False)
    raw = raw_embedder.embed_images(_images()[:3])
    norms = np.linalg.norm(raw, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)
    np.testing.assert_allclose(
        raw / norms[:, None], clip_embedder.embed_images(_images()[:3]), atol=1e-6
    )


def test_bf16_model_gets_bf16_inputs_and_returns_float32(
    tiny_clip_dir, tiny_clap_dir, clip_embedder, clap_embedder
):
    clip16 = ClipEmbedder.load(str(tiny_clip_dir), device="cpu", dtype="bf16")
    clap16 = ClapEmbedder.load(str(tiny_clap_dir), device="cpu", dtype="bf16")
    assert clip16.info.dtype == clap16.info.dtype == "bf16"
    pairs = (
        (clip16.embed_images(_images()[:2]), clip_embedder.embed_images(_images()[:2])),
        (clap16.embed_audio(_clips()[:2]), clap_embedder.embed_audio(_clips()[:2])),
        (clap16.embed_texts(HEALTH_PROMPTS[:2]), clap_embedder.embed_texts(HEALTH_PROMPTS[:2])),
    )
    for half, full in pairs:
        assert half.dtype == np.float32
        assert np.all(np.sum(half * full, axis=1) > 0.98)


def test_deterministic(clip_embedder, clap_embedder):
    np.testing.assert_array_equal(
        clip_embedder.embed_images(_images()[:4]), clip_embedder.embed_images(_images()[:4])
    )
    np.testing.assert_array_equal(
        clap_embedder.embed_audio(_clips()[:2]), clap_embedder.embed_audio(_clips()[:2])
    )
    np.testing.assert_array_equal(
        clap_embedder.embed_texts(HEALTH_PROMPTS), clap_embedder.embed_texts(HEALTH_PROMPTS)
    )


def test_batch_invariance(clip_embedder, clap_embedder):
    cases = {
        "images": (clip_embedder.embed_images, _images()),
        "audio": (clap_embedder.embed_audio, _clips()),
        "clip texts": (clip_embedder.embed_texts, HEALTH_PROMPTS),
        "clap texts": (clap_embedder.embed_texts, HEALTH_PROMPTS),
    }
    for name, (embed, items) in cases.items():
        together = embed(items, batch_size=8)
        alone = np.concatenate([embed(items[i : i + 1], batch_size=1) for i in range(8)])
        np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0, err_msg=name)


def test_pixel_values_are_exactly_mean_std_normalised(clip_embedder):
    imgs = _images()[3:6]
    pixels = clip_embedder.preprocess(imgs).numpy()
    proc = clip_embedder.image_processor
    mean = np.asarray(proc.image_mean, dtype=np.float32)
    std = np.asarray(proc.image_std, dtype=np.float32)
    manual = np.stack([((im - mean) / std).transpose(2, 0, 1) for im in imgs])
    assert pixels.shape == (3, 3, 224, 224) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, manual, rtol=0, atol=1e-6)
    # what the model receives: embedding the manual tensor gives the same vectors
    with torch.inference_mode():
        direct = clip_embedder.model.get_image_features(pixel_values=torch.from_numpy(manual))
    expected = torch.nn.functional.normalize(direct.pooler_output, dim=-1).numpy()
    np.testing.assert_allclose(clip_embedder.embed_images(imgs), expected, atol=1e-6)


def test_audio_features_have_no_fusion_or_random_crop(clap_embedder):
    feats = clap_embedder.preprocess(_clips()[:3])
    assert feats["input_features"].shape == (3, 1, 1001, 64)
    assert not feats["is_longer"].any()


def test_bad_inputs_raise(clip_embedder, clap_embedder):
    with pytest.raises(ValueError, match=f"expected exactly {WINDOW} samples.*got {WINDOW - 1}"):
        clap_embedder.embed_audio([np.zeros(WINDOW - 1, dtype=np.float32)])
    with pytest.raises(ValueError, match="1-D"):
        clap_embedder.embed_audio([np.zeros((2, WINDOW), dtype=np.float32)])
    with pytest.raises(ValueError, match="float"):
        clap_embedder.embed_audio([np.zeros(WINDOW, dtype=np.int16)])
    with pytest.raises(ValueError, match=r"expected shape \(224, 224, 3\)"):
        clip_embedder.embed_images([np.zeros((256, 256, 3), dtype=np.float32)])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        clip_embedder.embed_images([np.full((224, 224, 3), 255.0, dtype=np.float32)])
    with pytest.raises(ValueError, match="batch_size"):
        clip_embedder.embed_texts(["a"], batch_size=0)
    with pytest.raises(TypeError):
        clip_embedder.embed_texts("a single string")


# --------------------------------------------------------------------------- health check


def test_mean_pairwise_cosine_matches_brute_force():
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((7, 5)) * rng.uniform(0.5, 3, size=(7, 1))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    brute = np.mean([unit[i] @ unit[j] for i, j in itertools.combinations(range(7), 2)])
    assert mean_pairwise_cosine(emb) == pytest.approx(brute, abs=1e-12)
    assert mean_pairwise_cosine(np.tile([[3.0, -1.0, 2.0]], (5, 1))) == pytest.approx(1.0)
    assert mean_pairwise_cosine(np.eye(4)) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        mean_pairwise_cosine(np.ones((1, 3)))
    with pytest.raises(ValueError):
        mean_pairwise_cosine(np.zeros((3, 3)))


def test_health_check_passes_tiny_models_and_reports_figures(clip_embedder, clap_embedder):
    for embedder in (clip_embedder, clap_embedder):
        report = health_check(embedder)
        expected = mean_pairwise_cosine(embedder.embed_texts(HEALTH_PROMPTS))
        assert report["text_mean_pairwise_cosine"] == pytest.approx(expected)
        assert report["passed"] is True, report["message"]
        assert report["model"] == embedder.info.to_dict() and report["limit"] == 0.95
        assert embedder.info.name_or_path in report["message"]
        assert f"{expected:.4f}" in report["message"]
    audio = health_check(clap_embedder, clips=_clips())
    assert audio["audio_mean_pairwise_cosine"] == pytest.approx(
        mean_pairwise_cosine(clap_embedder.embed_audio(_clips()))
    )
    assert audio["passed"] is True, audio["message"]


def test_health_check_fails_below_limit_and_on_collapse(clap_embedder):
    forced = health_check(clap_embedder, limit=-1.0)
    assert forced["passed"] is False and "FAILED" in forced["message"]
    assert f"{forced['text_mean_pairwise_cosine']:.4f}" in forced["message"]

    class Collapsed:
        info = ModelInfo("fake/collapsed", None, "fp32", "cpu", 4, False, "")

        def embed_texts(self, texts, batch_size=64):
            return np.tile(np.float32([[0.5, 0.5, 0.5, 0.5]]), (len(texts), 1))

    report = health_check(Collapsed())
    assert report["passed"] is False and report["audio_mean_pairwise_cosine"] is None
    assert report["text_mean_pairwise_cosine"] == pytest.approx(1.0)
    assert "fake/collapsed" in report["message"] and "1.0000" in report["message"]
    with pytest.raises(TypeError, match="embed_audio"):
        health_check(Collapsed(), clips=_clips()[:2])


def test_module_sets_nothing_global(tiny_clip_dir):
    before_threads, before_rng = torch.get_num_threads(), torch.random.get_rng_state()
    env_before = dict(os.environ)
    ClipEmbedder.load(str(tiny_clip_dir), device="cpu")
    build_tiny_clip(seed=5)
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.random.get_rng_state(), before_rng)
    assert dict(os.environ) == env_before
