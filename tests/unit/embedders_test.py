"""Embedders as plug-ins: the registry, a tiny random model of every family loaded through
the one path, the determinism gate, and the model commands of the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from delta_v2a import embedders
from delta_v2a.models import BATCH_LIMIT, health_check, load_embedder

ROOT = Path(__file__).resolve().parents[2]
FAMILY_DIRS = {"clip": "tiny-clip", "siglip": "tiny-siglip", "clap": "tiny-clap"}


@pytest.fixture(scope="module")
def extra_tiny(tmp_path_factory):
    """The tiny SigLIP and LAION-CLAP (original layout, converted), written by the project."""
    from delta_v2a.tiny_models import write_tiny_laion_clap, write_tiny_siglip

    root = tmp_path_factory.mktemp("tiny-extra")
    write_tiny_siglip(root / "tiny-siglip")
    write_tiny_laion_clap(root / "tiny-laion-clap")
    return root


def _dir(family: str, tiny_model_root: Path, extra: Path) -> Path:
    if family == "laion_clap":
        return extra / "tiny-laion-clap"
    return (extra if family == "siglip" else tiny_model_root) / FAMILY_DIRS[family]


def _media(embedder, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    if hasattr(embedder, "input_size"):
        size = embedder.input_size
        return [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]
    t = np.arange(embedder.window_samples) / embedder.sampling_rate
    return [(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220, 880, 3000)[:n]]


def test_registry_holds_every_family_and_refuses_unknown_ones():
    # a superset: a new family's module adds itself, nothing here changes
    assert {"clap", "clip", "laion_clap", "planted", "siglip"} <= set(embedders.families())
    with pytest.raises(ValueError, match="unknown model family 'nope'; known: clap, clip"):
        embedders.family("nope")
    with pytest.raises(ValueError, match="registered twice"):

        @embedders.register
        class Twin:
            family = "clip"


@pytest.mark.parametrize("family", ["clip", "siglip", "clap", "laion_clap"])
def test_tiny_model_of_every_family_loads_through_the_one_path(family, tiny_model_root, extra_tiny):
    folder = _dir(family, tiny_model_root, extra_tiny)
    assert embedders.family_of(str(folder)) == family  # read from the folder's config.json
    modality = "image" if family in ("clip", "siglip") else "audio"
    emb = load_embedder(modality, str(folder), device="cpu")
    info = emb.info
    assert info.family == family and info.tiny and not info.science
    if modality == "image":
        assert info.input_size == emb.input_size == 224 and info.sampling_rate is None
    else:
        assert (info.sampling_rate, info.window_samples) == (48000, 480000)
    texts = emb.embed_texts(["a dog", "rain on a tin roof", "a violin"])
    media = emb.embed(_media(emb), 2)
    for out in (texts, media):
        assert out.shape[1] == emb.dim == info.dim and out.dtype == np.float32
        assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert set(json.loads(json.dumps(info.to_dict()))) >= {"family", "input_size", "revision"}


def test_siglip_pads_text_to_its_full_length_so_the_last_token_is_the_same(extra_tiny):
    """SigLIP's text embedding is its last token's state: padding to the longest prompt would
    make a prompt's embedding depend on its batch, padding to max_length does not."""
    emb = load_embedder("image", str(extra_tiny / "tiny-siglip"), device="cpu")
    tok = emb.tokenizer(["a dog"], padding=emb.text_padding, max_length=64, truncation=True)
    assert emb.text_padding == "max_length" and len(tok["input_ids"][0]) == 64
    alone = emb.embed_texts(["a dog"])
    batched = emb.embed_texts(["a dog", "a much longer prompt about rain on a tin roof"])
    assert np.abs(alone[0] - batched[0]).max() < 1e-5


def test_family_is_read_from_config_or_declared(tmp_path, tiny_model_root):
    copy = shutil.copytree(tiny_model_root / "tiny-clap", tmp_path / "clap")
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(cfg | {"delta_v2a_family": "laion_clap"}))
    assert embedders.family_of(str(copy)) == "laion_clap"
    assert embedders.family_of(str(copy), "clap") == "clap"  # the config's family wins
    (copy / "config.json").write_text(json.dumps(cfg | {"model_type": "whisper"}))
    with pytest.raises(ValueError, match="no family loads model_type 'whisper'"):
        embedders.family_of(str(copy))
    with pytest.raises(FileNotFoundError, match="fetch-models"):
        embedders.family_of(str(tmp_path / "nowhere"))


def test_no_import_circle_planted_loads_without_the_model_layer():
    script = "import sys, delta_v2a.planted; print('delta_v2a.models' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


# --------------------------------------------------------------------------- determinism gate


class _BatchEffect:
    """A tower whose embedding of an input leans toward the batch mean (like a model that
    normalises over the batch): alone and batched differ by about ``leak``."""

    def __init__(self, inner, leak: float) -> None:
        self.inner, self.leak, self.info = inner, leak, inner.info

    def _mix(self, out: np.ndarray) -> np.ndarray:
        mixed = out + self.leak * out.mean(axis=0, keepdims=True)
        return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)

    def embed_texts(self, texts, batch_size=64):
        return self._mix(self.inner.embed_texts(texts, batch_size))

    def embed(self, items, batch_size):
        return self._mix(self.inner.embed(items, batch_size))

    def embed_audio(self, clips, batch_size=8):
        return self.embed(clips, batch_size)


def _health_clips():
    from delta_v2a.models import contrasting_clips

    return contrasting_clips(48000, 480000)


def test_determinism_gate_refuses_an_embedder_with_a_batch_effect(clap_embedder):
    clips = _health_clips()
    good = health_check(clap_embedder, clips=clips)
    assert good["passed"], good["message"]
    figures = good["batch_max_cosine_distance"]
    assert set(figures) == {"text", "media"} and max(figures.values()) < 1e-6
    assert good["batch_limit"] == BATCH_LIMIT
    bad = health_check(_BatchEffect(clap_embedder, 0.05), clips=clips)
    assert not bad["passed"] and bad["batch_max_cosine_distance"]["text"] > BATCH_LIMIT
    assert "change with the batch" in bad["message"] and "batch_limit" in bad["message"]
    # the gate's limit is the config's: a looser one lets the same embedder through
    loose = health_check(_BatchEffect(clap_embedder, 0.05), clips=clips, batch_limit=0.5)
    assert loose["passed"]


def test_image_tower_gate_uses_images(clip_embedder):
    from delta_v2a.models import contrasting_images

    report = health_check(clip_embedder, images=contrasting_images(224))
    assert report["passed"] and report["audio_mean_pairwise_cosine"] is None
    assert report["batch_max_cosine_distance"]["media"] < 1e-6


def test_schema_default_batch_limit_is_the_code_default():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    models = schema["properties"]["models"]["properties"]
    limit = models["health"]["properties"]["batch_limit"]
    assert limit["default"] == BATCH_LIMIT and limit["description"]
    assert models["family"]["properties"]["image"]["default"] == "auto"


# --------------------------------------------------------------------------- CLI and config


def test_renamed_options_get_one_line_naming_the_new_one(capsys):
    from delta_v2a.cli import main

    for old, new in (("--clap", "--audio-model"), ("--clip=x", "--image-model")):
        assert main(["transfer", "--audio", "a.wav", "--out", "o.wav", old, "x"]) == 2
        err = capsys.readouterr().err.strip()
        assert new in err and "\n" not in err


def test_convert_clap_command_says_a_differing_sha256(tmp_path, capsys):
    import torch

    from delta_v2a.cli import main
    from delta_v2a.tiny_models import tiny_laion_clap_checkpoint

    ckpt = tmp_path / "tiny.pt"
    torch.save({"state_dict": tiny_laion_clap_checkpoint(1)}, ckpt)
    out = tmp_path / "converted"
    assert main(["convert-clap", str(ckpt), str(out), "--tokenizer", "/no/such/tokenizer"]) == 2
    assert "--tokenizer" in capsys.readouterr().err  # no network here: the option is named
    from delta_v2a.embedders import laion_clap
    from delta_v2a.tiny_models import _roberta_tokenizer

    _roberta_tokenizer().save_pretrained(tmp_path / "tok")
    assert main(["convert-clap", str(ckpt), str(out), "--tokenizer", str(tmp_path / "tok")]) == 0
    err = capsys.readouterr().err
    assert "NOT the published music_audioset_epoch_15_esc_90.14.pt" in err
    receipt = json.loads((out / laion_clap.RECEIPT).read_text())
    assert receipt["sha256"] == laion_clap.sha256_of(ckpt) and not receipt["sha256_matches"]
    assert embedders.family_of(str(out)) == "laion_clap"
    fusion = {"module.audio_branch.patch_embed.fusion_model.w": torch.zeros(1)}
    torch.save({"state_dict": fusion}, tmp_path / "fusion.pt")
    assert main(["convert-clap", str(tmp_path / "fusion.pt"), str(tmp_path / "f")]) == 2
    assert "fusion checkpoint" in capsys.readouterr().err


def test_missing_model_folder_says_the_fetch_command(tmp_path):
    from delta_v2a.config import ConfigError, check_models

    models = {"image": str(tmp_path / "models/clip"), "audio": "org/name", "revision": {}}
    with pytest.raises(ConfigError, match="delta-v2a fetch-models --configfile"):
        check_models({"models": models})


def test_fetch_models_needs_a_source_for_a_missing_folder(tmp_path, tiny_model_root):
    from delta_v2a.models import fetch_models

    config = tmp_path / "c.yaml"
    models = {"image": str(tiny_model_root / "tiny-clip"), "audio": str(tmp_path / "m/clap")}
    config.write_text(yaml.safe_dump({"models": models}))
    with pytest.raises(ValueError, match="models.source.audio: not set"):
        fetch_models(config)
    config.write_text(yaml.safe_dump({"models": {**models, "audio": "planted:audio",
                                                 "family": {"audio": "planted"}}}))  # fmt: skip
    lines = fetch_models(config)
    assert "already there" in lines[0] and "nothing to fetch" in lines[1]


def test_real_yaml_names_clip_l14_and_the_converted_original_music_checkpoint():
    real = yaml.safe_load((ROOT / "config/real.yaml").read_text())["models"]
    assert real["source"]["image"] == "openai/clip-vit-large-patch14"
    assert real["source"]["audio"].endswith("/music_audioset_epoch_15_esc_90.14.pt")
    assert "larger_clap_music" not in real["audio"]


def test_health_gate_stops_the_phases_on_a_batch_effect(tmp_path, clap_embedder):
    from delta_v2a.artifacts.health import HealthReport
    from delta_v2a.jobs.common import PipelineError, gate_health

    report = health_check(_BatchEffect(clap_embedder, 0.05), clips=_health_clips())
    path = tmp_path / "audio.json"
    HealthReport.from_json(report | {"modality": "audio"}).write(path)
    for part in ("text", "media"):
        with pytest.raises(PipelineError, match="models.health.batch_limit"):
            gate_health([str(path)], allow_unhealthy=False, part=part)
        assert gate_health([str(path)], allow_unhealthy=True, part=part)[0].passed is False
