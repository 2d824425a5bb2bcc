"""Phase 3: parameter space, pairs, data set, decoder training, checkpoints, the use command."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from workflow_utils import ROOT

from delta_v2a import decoder as dec
from delta_v2a.effects import apply_audio_effect
from delta_v2a.paramspace import ParamSpace, audio_space_from_config

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


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The decoder is small: one thread trains it fastest on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def space() -> ParamSpace:
    return audio_space_from_config(CONFIG, ALL_AUDIO, SR, bypass_below=0.02)


# --------------------------------------------------------------------------- parameter space


def test_space_runs_from_neutral_to_the_strongest_configured_level(space):
    assert space.names == [
        "lpf.cutoff_hz",
        "highshelf.gain_db",
        "saturation.drive_db",
        "reverb.room_size",
        "reverb.wet_level",
    ]
    lpf = space.axes[0]
    assert lpf.scale == "log" and lpf.physical(0) == SR / 2 and lpf.physical(1) == 800.0
    assert lpf.physical(0.5) == pytest.approx(math.sqrt(SR / 2 * 800.0))
    assert lpf.normalised(lpf.physical(0.3)) == pytest.approx(0.3)
    shelf = space.axes[1]
    assert (shelf.physical(0), shelf.physical(0.5), shelf.physical(1)) == (0.0, 6.0, 12.0)
    assert space.fixed["lpf"] == {"order": 4.0}
    assert space.fixed["reverb"] == {"damping": 0.5, "dry_level": 1.0, "width": 1.0}
    # out-of-range predictions are clipped, not extrapolated
    assert space.physical([2, -1, 0, 0, 0])["lpf"]["cutoff_hz"] == 800.0
    assert space.physical([2, -1, 0, 0, 0])["highshelf"] is None


def test_neutral_vector_is_the_identity_even_for_saturation(space):
    x = _music()
    preroll = 4800
    out = space.render(x, SR, np.zeros(space.dim), preroll)
    np.testing.assert_array_equal(out, x[preroll:])
    # below bypass_below an effect is not called (saturation has no identity setting)
    vec = space.target("saturation", 0.01)
    assert space.physical(vec)["saturation"] is None
    np.testing.assert_array_equal(space.render(x, SR, vec, preroll), x[preroll:])


@pytest.mark.parametrize("effect", ALL_AUDIO)
def test_one_active_effect_renders_exactly_like_extraction(space, effect):
    x = _music()
    preroll = 4800
    vec = space.target(effect, 0.7)
    params = space.physical(vec)[effect]
    expected = apply_audio_effect(effect, x, SR, params, preroll=preroll)
    np.testing.assert_array_equal(space.render(x, SR, vec, preroll), expected)
    assert all(p is None for e, p in space.physical(vec).items() if e != effect)


def test_space_serialises_to_plain_values(space):
    data = json.loads(json.dumps(space.to_dict()))
    assert ParamSpace.from_dict(data) == space
    with pytest.raises(ValueError, match="built for 48000 Hz"):
        space.render(_music(sr=16_000, seconds=0.5), 16_000, np.zeros(space.dim))


# --------------------------------------------------------------------------- pairs, samples


def test_pairs_take_each_image_effects_best_audio_effect_above_threshold():
    matrix = np.array(
        [[0.02, 0.30, 0.0], [0.0, 0.0, 0.001], [np.nan, np.nan, np.nan], [0.0, 0.2, 0.1]]
    )
    rows = dec.choose_pairs(
        matrix, ["blur", "brightness", "contrast", "saturation"], ALL_AUDIO[:3], 0.01
    )
    chosen = [(r["image_effect"], r["audio_effect"]) for r in rows if r["chosen"]]
    assert chosen == [("blur", "highshelf"), ("saturation", "highshelf")]
    assert "<= threshold 0.01" in rows[1]["reason"] and rows[2]["reason"].startswith("no finite")
    assert not any(
        r["chosen"] for r in dec.choose_pairs(np.zeros((4, 3)), list("abcd"), "xyz", 0.0)
    )


def test_descriptions_use_ordered_level_words():
    assert [dec.level_word(u, WORDS) for u in (0.0, 0.24, 0.25, 0.6, 0.99, 1.0)] == [
        "slightly",
        "slightly",
        "moderately",
        "very",
        "extremely",
        "extremely",
    ]
    assert dec.describe("a {level} blurry photo", "extremely") == "an extremely blurry photo"
    assert dec.describe("a {level} blurry photo", "very") == "a very blurry photo"


@pytest.mark.parametrize(
    "n_files,fraction,seed", [(2, 0.2, 0), (5, 0.2, 1), (17, 0.3, 2), (40, 0.2, 3)]
)
def test_validation_split_never_shares_a_file(n_files, fraction, seed):
    paths = [f"g{i % 3}/f{i}.wav" for i in range(n_files)]
    pairs = [
        {"image_effect": "blur", "audio_effect": "lpf"},
        {"image_effect": "contrast", "audio_effect": "reverb"},
    ]
    frame = dec.build_samples(
        paths,
        [p.split("/")[0] for p in paths],
        pairs,
        levels_per_pair=4,
        level_words=WORDS,
        templates=TEMPLATES,
        val_fraction=fraction,
        seed=seed,
    )
    assert len(frame) == n_files * 2 * 4
    val, train = (
        set(frame.loc[frame.split == "val", "path"]),
        set(frame.loc[frame.split == "train", "path"]),
    )
    assert val and train and not val & train and val | train == set(paths)
    assert len(val) == min(max(1, round(fraction * n_files)), n_files - 1)
    # stratified levels: every (file, pair) has one level in each quarter
    bins = frame.groupby(["path", "audio_effect"])["level"].apply(
        lambda s: sorted((s * 4).astype(int))
    )
    assert all(b == [0, 1, 2, 3] for b in bins)
    again = dec.build_samples(
        paths,
        [p.split("/")[0] for p in paths],
        pairs,
        levels_per_pair=4,
        level_words=WORDS,
        templates=TEMPLATES,
        val_fraction=fraction,
        seed=seed,
    )
    pd.testing.assert_frame_equal(frame, again)
    with pytest.raises(ValueError, match="at least 2 audio files"):
        dec.split_files(1, 0.2, 0)


# --------------------------------------------------------------------------- training


def synthetic_task(n_files=20, seed=0, dim=24, k=3):
    """Targets are a known function of the text condition: the pair's effect at the centre of
    the level word's bin. Audio embeddings are noise (they carry no information here)."""
    rng = np.random.default_rng(seed)
    space = audio_space_from_config(CONFIG, ["lpf", "highshelf", "reverb"], SR)
    pairs = [
        {"image_effect": "blur", "audio_effect": "lpf"},
        {"image_effect": "brightness", "audio_effect": "highshelf"},
        {"image_effect": "contrast", "audio_effect": "reverb"},
    ]
    paths = [f"g/f{i}.wav" for i in range(n_files)]
    frame = dec.build_samples(
        paths,
        ["g"] * n_files,
        pairs,
        levels_per_pair=8,
        level_words=WORDS,
        templates=TEMPLATES,
        val_fraction=0.2,
        seed=seed,
    )
    texts = sorted(set(frame["description"]))
    text_emb = rng.standard_normal((len(texts), dim)).astype(np.float32)
    text_emb /= np.linalg.norm(text_emb, axis=1, keepdims=True)
    word_level = {w: (i + 0.5) / len(WORDS) for i, w in enumerate(WORDS)}
    targets = np.stack(
        [
            space.target(e, word_level[w])
            for e, w in zip(frame.audio_effect, frame.level_word, strict=True)
        ]
    )
    data = dec.TrainData(
        text=text_emb,
        audio=rng.standard_normal((n_files, k, dim)).astype(np.float32),
        desc_index=frame["description"].map({t: i for i, t in enumerate(texts)}).to_numpy(),
        file_index=frame["file_index"].to_numpy(),
        targets=targets.astype(np.float32),
        is_val=(frame["split"] == "val").to_numpy(),
    )
    arch = {
        "kind": "attention",
        "text_dim": dim,
        "audio_dim": dim,
        "n_windows": k,
        "n_params": space.dim,
        "d_model": 32,
        "heads": 4,
        "hidden": 64,
        "dropout": 0.0,
    }
    return data, arch, space


FAST = dec.TrainSettings(epochs=40, batch_size=32, lr=3e-3, weight_decay=0.01, seed=0)


@pytest.mark.parametrize("kind", ["attention", "concat"])
def test_decoder_learns_a_known_function_of_the_text_on_held_out_files(kind):
    data, arch, _ = synthetic_task()
    arch = {**arch, "kind": kind}
    result = dec.train_decoder(arch, data, FAST)
    val = data.is_val
    pred = dec.predict(
        dec.model_with_state(arch, result.best_state),
        data.text[data.desc_index[val]],
        data.audio[data.file_index[val]],
    )
    mse = float(((pred - data.targets[val]) ** 2).mean())
    baseline = float(((data.targets[~val].mean(0) - data.targets[val]) ** 2).mean())
    # a clear margin for the decoder; the ablation, which also sees the noise, a looser one
    assert mse < (0.1 if kind == "attention" else 0.3) * baseline, (mse, baseline)
    assert result.best_val_loss == pytest.approx(mse, rel=1e-4)
    assert len(result.history) == FAST.epochs and result.resumed_from is None


def test_interrupted_training_resumes_to_the_same_result(tmp_path):
    data, arch, _ = synthetic_task(n_files=8)
    settings = dec.TrainSettings(epochs=6, batch_size=16, lr=3e-3, seed=1)
    arch = {**arch, "dropout": 0.2}  # dropout draws random numbers: their state must resume too
    straight = dec.train_decoder(arch, data, settings, checkpoint=tmp_path / "a.pt")

    class Killed(Exception):
        pass

    def kill_after_3(record):
        if record["epoch"] == 3:
            raise Killed

    with pytest.raises(Killed):
        dec.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt", on_epoch=kill_after_3)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 3
    resumed = dec.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert resumed.resumed_from == 4 and resumed.epochs_run == 3
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    assert straight.best_epoch == resumed.best_epoch
    for key, value in straight.best_state.items():
        torch.testing.assert_close(value, resumed.best_state[key])
    # a finished checkpoint: nothing left to train
    again = dec.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert again.epochs_run == 0 and again.best_epoch == straight.best_epoch
    # other settings: the checkpoint is not theirs, training starts afresh
    other = dec.train_decoder(
        arch,
        data,
        dec.TrainSettings(epochs=2, batch_size=16, lr=1e-3, seed=1),
        checkpoint=tmp_path / "b.pt",
    )
    assert other.resumed_from is None and len(other.history) == 2


def test_decoder_model_round_trips_with_weights_only(tmp_path):
    data, arch, space = synthetic_task(n_files=6)
    result = dec.train_decoder(arch, data, dec.TrainSettings(epochs=2, lr=3e-3))
    path = tmp_path / "decoder_model.pt"
    dec.save_decoder(path, _payload(arch, result.best_state, space, "tiny-clap"))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == dec.FORMAT and raw["level_words"] == WORDS
    loaded = dec.load_decoder(path)
    assert loaded.space == space and loaded.windows.count == 3
    text, audio = data.text[data.desc_index[:5]], data.audio[data.file_index[:5]]
    expected = dec.predict(dec.model_with_state(arch, result.best_state), text, audio)
    np.testing.assert_allclose(loaded.predict(text, audio), np.clip(expected, 0, 1), atol=1e-6)
    # a checkpoint with anything but plain values is refused before it is written
    with pytest.raises(TypeError, match="not a plain value"):
        dec.save_decoder(tmp_path / "bad.pt", {"status": "trained", "space": space})
    dec.save_decoder(tmp_path / "none.pt", {"status": "no_pairs", "message": "NO PAIR passes"})
    with pytest.raises(ValueError, match="NO PAIR passes"):
        dec.load_decoder(tmp_path / "none.pt")
    # a damaged or foreign file fails with a message naming it, never a bare zip error
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.pt: cannot read the decoder"):
        dec.load_decoder(tmp_path / "cut.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt: not a Delta V2A decoder"):
        dec.load_decoder(tmp_path / "list.pt")


def _payload(arch, state, space, clap, window=480_000):
    return {
        "status": "trained",
        "arch": arch,
        "state_dict": state,
        "paramspace": space.to_dict(),
        "level_words": WORDS,
        "descriptions": TEMPLATES,
        "pairs": [],
        "audio_model": {"name_or_path": str(clap), "dtype": "fp32", "normalize": True},
        "windows": {"count": arch["n_windows"], "hop": SR, "window": window, "sample_rate": SR},
        "preroll": SR,
    }


# --------------------------------------------------------------------------- audio windows and use


def test_window_sequence_ends_with_the_extraction_window(tmp_path, clap_embedder):
    from delta_v2a.extract import Decoding, render
    from delta_v2a.media import MediaFile

    path = tmp_path / "song.wav"
    sf.write(path, _music(seconds=12.0, seed=3), SR)
    spec = dec.WindowSpec(count=3, hop=SR, window=clap_embedder.window_samples, sample_rate=SR)
    clips = dec.window_clips(path, spec)
    centred = render(MediaFile(str(path), "g", "audio"), Decoding("audio", preroll=SR), None, {})
    np.testing.assert_array_equal(clips[-1], centred)
    np.testing.assert_array_equal(clips[0][2 * SR :], clips[-1][: -2 * SR])
    full = dec.embed_windows(clap_embedder, [str(path)], spec)
    given = np.full((1, clap_embedder.dim), 7.0, np.float32)
    reused = dec.embed_windows(clap_embedder, [str(path)], spec, last=given)
    np.testing.assert_allclose(full[0, :2], reused[0, :2], atol=1e-5)
    np.testing.assert_array_equal(reused[0, 2], given[0])
    np.testing.assert_allclose(full[0, 2], clap_embedder.embed_audio([centred])[0], atol=1e-5)


def test_apply_command_renders_a_file_and_prints_parameters(tmp_path, tiny_clap_dir, capsys):
    from delta_v2a.cli import main

    space = audio_space_from_config(CONFIG, ["lpf", "highshelf"], SR)
    arch = {
        "kind": "attention",
        "text_dim": 512,
        "audio_dim": 512,
        "n_windows": 2,
        "n_params": space.dim,
        "d_model": 16,
        "heads": 2,
        "hidden": 16,
        "dropout": 0.0,
    }
    torch.manual_seed(0)
    state = dec.build_decoder(arch).state_dict()
    state["head.3.bias"] = torch.tensor([3.0, -3.0])  # always: lpf at full strength, no shelf
    state["head.3.weight"] = torch.zeros_like(state["head.3.weight"])
    model = tmp_path / "decoder_model.pt"
    dec.save_decoder(model, _payload(arch, state, space, tiny_clap_dir))
    audio = tmp_path / "in.wav"
    sf.write(audio, _music(seconds=11.0, sr=16_000, seed=5), 16_000)
    out = tmp_path / "out.wav"
    args = ["apply", "--model", str(model), "--audio", str(audio), "--out", str(out)]
    assert main([*args, "--describe", "a very blurry photo"]) == 0
    printed = capsys.readouterr().out
    assert "lpf: cutoff_hz = 800 Hz (u = 1.000)" in printed and "highshelf: bypassed" in printed
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(y) == 11 * SR
    from delta_v2a.decoder import load_whole

    x = load_whole(audio, SR)
    np.testing.assert_array_equal(
        y, apply_audio_effect("lpf", x, SR, {"cutoff_hz": 800.0, "order": 4})
    )
    assert main([*args, "--describe", "x", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["parameters"]["lpf"] == {"order": 4.0, "cutoff_hz": 800.0}
    assert doc["normalised"] == {"lpf.cutoff_hz": 1.0, "highshelf.gain_db": 0.0}
    assert (
        main(
            [
                "apply",
                "--model",
                str(tmp_path / "missing.pt"),
                "--audio",
                str(audio),
                "--describe",
                "x",
                "--out",
                str(out),
            ]
        )
        == 2
    )


# --------------------------------------------------------------------------- the jobs, in process


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_clap_dir):
    """A manifest, extraction's originals and a discovery matrix, as the workflow makes them."""
    from workflow_utils import write_audio

    from delta_v2a.pipeline.extract import run_embed, run_manifest

    base = tmp_path_factory.mktemp("phase3")
    for i, genre in enumerate(["folk", "folk", "jazz", "jazz", "jazz"]):
        write_audio(base / "data" / genre / f"clip_{i}.wav", seed=i)
    model = {
        "name_or_path": str(tiny_clap_dir),
        "device": "cpu",
        "dtype": "fp32",
        "normalize": True,
        "batch_size": 8,
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
    from delta_v2a.pipeline.phase3 import run_dataset

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
    from delta_v2a.pipeline.phase3 import run_train

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
    from delta_v2a.pipeline.phase3 import run_windows
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
    loaded = dec.load_decoder(out / "decoder_model.pt")
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
        dec.load_decoder(out / "decoder_model.pt")


def test_summary_warns_loudly_on_every_failed_phase():
    from delta_v2a.pipeline.phase3 import format_summary, summarise

    def variant(**kw):
        return {"modality": "audio", "effect_type": "lpf", "intensity": "low", **kw}

    summary = summarise(
        health=[{"passed": True}],
        sensitivity={
            "meta": {"not_science": True, "note": "NOT SCIENCE: tiny"},
            "results": [variant(sensitive=False, mean=0.001), variant(sensitive=True, mean=0.1)],
        },
        linearity={
            "summary": [variant(consistent=True, n_consistent=2, n_categories=2, n_undetermined=0)]
        },
        cross={"results": [variant(invariant=True)]},
        discovery=np.zeros((2, 2)),
        labels={"image_effects": ["blur", "contrast"], "audio_effects": ["lpf", "reverb"]},
        threshold=0.0,
        training_log={"status": "no_pairs", "message": "NO PAIR passes"},
    )
    assert summary["failed"] == ["phase 0-a sensitivity", "phase 1 discovery", "phase 3 decoder"]
    text = format_summary(summary)
    assert "!!! WARNING: 3 phase(s) FAILED" in text and "NOT SCIENCE" in text
    assert "insensitive: audio lpf/low" in text and "blur: no pair" in text


def test_cli_runs_as_a_module():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "delta_v2a.cli", "apply", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--describe" in proc.stdout
