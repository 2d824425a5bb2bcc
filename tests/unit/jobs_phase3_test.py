"""Phase 3 jobs without Snakemake: windows, data set, training on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_utils import ROOT

from delta_v2a.phase3 import artifact
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SR = 48_000
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())
ALL_AUDIO = list(CONFIG["effects"]["audio"])
WORDS = CONFIG["phase3"]["level_words"]
TEMPLATES = CONFIG["phase3"]["descriptions"]


def _music(seconds: float = 1.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 20))
    return (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def space() -> ParamSpace:
    return audio_space_from_config(CONFIG, ALL_AUDIO, SR, bypass_below=0.02)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_clap_dir):
    """A manifest, extraction's originals and a discovery matrix, as the workflow makes them."""
    from workflow_utils import write_audio

    from delta_v2a.jobs.extract import run_embed, run_manifest

    base = tmp_path_factory.mktemp("phase3")
    for i, genre in enumerate(["folk", "folk", "jazz", "jazz", "jazz"]):
        write_audio(base / "data" / genre / f"clip_{i}.wav", seed=i)
    model = {
        "name_or_path": str(tiny_clap_dir),
        "device": "cpu",
        "dtype": "fp32",
        "normalize": True,
        "batch_size": {"cpu": 8, "cuda": 8},
    }
    run_manifest(
        modality="audio",
        root=str(base / "data"),
        key="data.audio",
        on_bad_file="error",
        preroll_s=1.0,
        manifest_out=str(base / "audio.tsv"),
        skipped_out=str(base / "skipped.tsv"),
    )
    run_embed(
        modality="audio",
        manifest=str(base / "audio.tsv"),
        output=str(base / "original.npz"),
        model=model,
        effect=None,
        intensity=None,
        effect_params={},
        preroll_s=1.0,
    )
    np.save(base / "matrix.npy", np.array([[0.3, 0.1], [0.0, 0.2], [0.0, 0.0]]))
    labels = {
        "image_effects": ["blur", "brightness", "contrast"],
        "audio_effects": ["lpf", "reverb"],
    }
    (base / "labels.json").write_text(json.dumps(labels))
    health = base / "health.json"
    health.write_text(json.dumps({"text_mean_pairwise_cosine": 0.5, "limit": 0.95, "passed": True}))
    return base, model


def _dataset(base, model, threshold=0.05, out="ds"):
    from delta_v2a.jobs.phase3 import run_dataset

    (base / out).mkdir(exist_ok=True)
    run_dataset(
        matrix=str(base / "matrix.npy"),
        labels=str(base / "labels.json"),
        manifest=str(base / "audio.tsv"),
        health=[str(base / "health.json")],
        allow_unhealthy=False,
        model={k: v for k, v in model.items() if k != "batch_size"},
        effects_config={"intensities": CONFIG["intensities"], "effects": CONFIG["effects"]},
        threshold=threshold,
        level_words=WORDS,
        descriptions=TEMPLATES,
        levels_per_pair=4,
        val_fraction=0.2,
        bypass_below=0.02,
        seed=0,
        pairs_out=str(base / out / "pairs.json"),
        samples_out=str(base / out / "samples.tsv"),
        texts_out=str(base / out / "texts.npz"),
    )
    return base / out


def _train(base, ds, out="train", epochs=3):
    from delta_v2a.jobs.phase3 import run_train

    o = base / out
    run_train(
        windows=str(base / "windows.npz"),
        samples=str(ds / "samples.tsv"),
        pairs=str(ds / "pairs.json"),
        texts=str(ds / "texts.npz"),
        model_out=str(o / "decoder_model.pt"),
        log_out=str(o / "training_log.json"),
        predictions_dir=str(o / "parameter_predictions"),
        training_figure=str(o / "training.png"),
        predictions_figure=str(o / "predictions.png"),
        architecture={"d_model": 32, "heads": 4, "hidden": 32, "dropout": 0.1},
        training={"epochs": epochs, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01},
        seed=0,
        mel={"n_fft": 2048, "hop_length": 1024, "n_mels": 64},
        spectral_max_samples=6,
        examples=2,
        preroll_s=1.0,
        checkpoint_dir=str(o / "checkpoints"),
        device="cpu",
    )
    return o


def test_phase3_jobs_end_to_end(upstream, caplog):
    from delta_v2a.jobs.phase3 import run_windows
    from delta_v2a.storage import EmbeddingTable

    base, model = upstream
    cache = base / "cache"
    kw = dict(manifest=str(base / "audio.tsv"), original=str(base / "original.npz"), model=model)
    run_windows(**kw, output=str(base / "windows.npz"), count=2, hop_s=1.0, cache_dir=str(cache))
    windows = EmbeddingTable.load(base / "windows.npz")
    original = EmbeddingTable.load(base / "original.npz")
    assert windows.embeddings.shape == (5, 2, 512) and windows.meta["n_centre_reused"] == 5
    np.testing.assert_array_equal(windows.embeddings[:, -1], original.embeddings)
    run_windows(**kw, output=str(base / "again.npz"), count=2, hop_s=1.0, cache_dir=str(cache))
    again = EmbeddingTable.load(base / "again.npz")
    assert again.meta["n_cached"] == 5  # every file was embedded once, then read from the cache
    np.testing.assert_array_equal(again.embeddings, windows.embeddings)

    with caplog.at_level("INFO"):
        ds = _dataset(base, model)
    assert "PAIR: blur -> lpf" in caplog.text and "PAIR: brightness -> reverb" in caplog.text
    pairs = json.loads((ds / "pairs.json").read_text())
    assert [p["audio_effect"] for p in pairs["chosen"]] == ["lpf", "reverb"]
    assert pairs["rows"][2]["chosen"] is False  # contrast: best 0.0 <= 0.05
    samples = pd.read_csv(ds / "samples.tsv", sep="\t")
    assert len(samples) == 5 * 2 * 4 and len(pairs["texts"]) == 2 * len(WORDS)
    assert not set(pairs["split"]["val_files"]) & set(pairs["split"]["train_files"])

    out = _train(base, ds)
    log = json.loads((out / "training_log.json").read_text())
    assert log["status"] == "trained" and len(log["history"]) == 3
    assert len(log["ablation"]["history"]) == 3
    dist = log["validation"]["spectral_distance_db"]
    assert set(dist) == {"model", "ablation", "mean_parameters", "no_effect"}
    assert all(v >= 0 for v in dist.values()) and log["validation"]["n_rendered"] == 6
    assert log["validation"]["render_seconds"] > 0
    assert 0 < log["validation"]["render_share_of_training_and_validation"] < 1
    assert log["meta"]["not_science"] is True
    preds = pd.read_csv(out / "parameter_predictions/predictions.tsv", sep="\t")
    assert len(preds) == int((samples.split == "val").sum())
    assert set(preds["path"]) == set(pairs["split"]["val_files"])
    assert {"true:lpf.cutoff_hz", "pred:reverb.wet_level", "logmel_db:model"} <= set(preds)
    assert preds["logmel_db:model"].notna().sum() == 6
    assert len(list((out / "parameter_predictions/examples").glob("*.wav"))) == 2 * 3
    loaded = artifact.load_decoder(out / "decoder_model.pt")
    assert loaded.space.effects == ("lpf", "reverb") and loaded.doc["level_words"] == WORDS
    assert loaded.audio_model["name_or_path"] == model["name_or_path"]
    assert (out / "training.png").stat().st_size > 1000


def test_no_pair_is_said_clearly_and_still_writes_every_output(upstream, caplog):
    base, model = upstream
    with caplog.at_level("INFO"):
        ds = _dataset(base, model, threshold=0.5, out="nopairs")
        out = _train(base, ds, out="nopairs_train")
    assert "NO PAIR passes phase3.pair_threshold = 0.5 (best score 0.3)" in caplog.text
    log = json.loads((out / "training_log.json").read_text())
    assert log["status"] == "no_pairs" and "NO PAIR" in log["message"]
    assert (out / "parameter_predictions/README.txt").exists()
    assert (out / "training.png").exists() and (out / "predictions.png").exists()
    with pytest.raises(ValueError, match="holds no trained decoder.*NO PAIR"):
        artifact.load_decoder(out / "decoder_model.pt")
