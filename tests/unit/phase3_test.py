"""Phase 3 science: pairs, data set and splits, decoder training, checkpoints, the model file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from workflow_utils import ROOT

from delta_v2a.effects import apply_audio_effect
from delta_v2a.phase3 import artifact, dataset, train, windows
from delta_v2a.phase3 import model as net
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


def test_pairs_take_each_image_effects_best_audio_effect_above_threshold():
    matrix = np.array(
        [[0.02, 0.30, 0.0], [0.0, 0.0, 0.001], [np.nan, np.nan, np.nan], [0.0, 0.2, 0.1]]
    )
    rows = dataset.choose_pairs(
        matrix, ["blur", "brightness", "contrast", "saturation"], ALL_AUDIO[:3], 0.01
    )
    chosen = [(r["image_effect"], r["audio_effect"]) for r in rows if r["chosen"]]
    assert chosen == [("blur", "highshelf"), ("saturation", "highshelf")]
    assert "<= threshold 0.01" in rows[1]["reason"] and rows[2]["reason"].startswith("no finite")
    assert not any(
        r["chosen"] for r in dataset.choose_pairs(np.zeros((4, 3)), list("abcd"), "xyz", 0.0)
    )


def test_descriptions_use_ordered_level_words():
    assert [dataset.level_word(u, WORDS) for u in (0.0, 0.24, 0.25, 0.6, 0.99, 1.0)] == [
        "slightly",
        "slightly",
        "moderately",
        "very",
        "extremely",
        "extremely",
    ]
    assert dataset.describe("a {level} blurry photo", "extremely") == "an extremely blurry photo"
    assert dataset.describe("a {level} blurry photo", "very") == "a very blurry photo"


@pytest.mark.parametrize(
    "n_files,fraction,seed", [(2, 0.2, 0), (5, 0.2, 1), (17, 0.3, 2), (40, 0.2, 3)]
)
def test_validation_split_never_shares_a_file(n_files, fraction, seed):
    paths = [f"g{i % 3}/f{i}.wav" for i in range(n_files)]
    pairs = [
        {"image_effect": "blur", "audio_effect": "lpf"},
        {"image_effect": "contrast", "audio_effect": "reverb"},
    ]
    frame = dataset.build_samples(
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
    again = dataset.build_samples(
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
        dataset.split_files(1, 0.2, 0)


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
    frame = dataset.build_samples(
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
    data = train.TrainData(
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


FAST = train.TrainSettings(epochs=40, batch_size=32, lr=3e-3, weight_decay=0.01, seed=0)


@pytest.mark.parametrize("kind", ["attention", "concat"])
def test_decoder_learns_a_known_function_of_the_text_on_held_out_files(kind):
    data, arch, _ = synthetic_task()
    arch = {**arch, "kind": kind}
    result = train.train_decoder(arch, data, FAST)
    val = data.is_val
    pred = net.predict(
        net.model_with_state(arch, result.best_state),
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
    settings = train.TrainSettings(epochs=6, batch_size=16, lr=3e-3, seed=1)
    arch = {**arch, "dropout": 0.2}  # dropout draws random numbers: their state must resume too
    straight = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "a.pt")

    class Killed(Exception):
        pass

    def kill_after_3(record):
        if record["epoch"] == 3:
            raise Killed

    with pytest.raises(Killed):
        train.train_decoder(
            arch, data, settings, checkpoint=tmp_path / "b.pt", on_epoch=kill_after_3
        )
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 3
    resumed = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert resumed.resumed_from == 4 and resumed.epochs_run == 3
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    assert straight.best_epoch == resumed.best_epoch
    for key, value in straight.best_state.items():
        torch.testing.assert_close(value, resumed.best_state[key])
    # a finished checkpoint: nothing left to train
    again = train.train_decoder(arch, data, settings, checkpoint=tmp_path / "b.pt")
    assert again.epochs_run == 0 and again.best_epoch == straight.best_epoch
    # other settings: the checkpoint is not theirs, training starts afresh
    other = train.train_decoder(
        arch,
        data,
        train.TrainSettings(epochs=2, batch_size=16, lr=1e-3, seed=1),
        checkpoint=tmp_path / "b.pt",
    )
    assert other.resumed_from is None and len(other.history) == 2


def test_decoder_model_round_trips_with_weights_only(tmp_path):
    data, arch, space = synthetic_task(n_files=6)
    result = train.train_decoder(arch, data, train.TrainSettings(epochs=2, lr=3e-3))
    path = tmp_path / "decoder_model.pt"
    artifact.save_decoder(path, _payload(arch, result.best_state, space, "tiny-clap"))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == artifact.FORMAT and raw["level_words"] == WORDS
    loaded = artifact.load_decoder(path)
    assert loaded.space == space and loaded.windows.count == 3
    text, audio = data.text[data.desc_index[:5]], data.audio[data.file_index[:5]]
    expected = net.predict(net.model_with_state(arch, result.best_state), text, audio)
    np.testing.assert_allclose(loaded.predict(text, audio), np.clip(expected, 0, 1), atol=1e-6)
    # a checkpoint with anything but plain values is refused before it is written
    with pytest.raises(TypeError, match="not a plain value"):
        artifact.save_decoder(tmp_path / "bad.pt", {"status": "trained", "space": space})
    artifact.save_decoder(tmp_path / "none.pt", {"status": "no_pairs", "message": "NO PAIR passes"})
    with pytest.raises(ValueError, match="NO PAIR passes"):
        artifact.load_decoder(tmp_path / "none.pt")
    # a damaged or foreign file fails with a message naming it, never a bare zip error
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.pt: cannot read the decoder"):
        artifact.load_decoder(tmp_path / "cut.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt: not a Delta V2A decoder"):
        artifact.load_decoder(tmp_path / "list.pt")


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
    spec = windows.WindowSpec(count=3, hop=SR, window=clap_embedder.window_samples, sample_rate=SR)
    clips = windows.window_clips(path, spec)
    centred = render(MediaFile(str(path), "g", "audio"), Decoding("audio", preroll=SR), None, {})
    np.testing.assert_array_equal(clips[-1], centred)
    np.testing.assert_array_equal(clips[0][2 * SR :], clips[-1][: -2 * SR])
    full = windows.embed_windows(clap_embedder, [str(path)], spec)
    given = np.full((1, clap_embedder.dim), 7.0, np.float32)
    reused = windows.embed_windows(clap_embedder, [str(path)], spec, last=given)
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
    state = net.build_decoder(arch).state_dict()
    state["head.3.bias"] = torch.tensor([3.0, -3.0])  # always: lpf at full strength, no shelf
    state["head.3.weight"] = torch.zeros_like(state["head.3.weight"])
    model = tmp_path / "decoder_model.pt"
    artifact.save_decoder(model, _payload(arch, state, space, tiny_clap_dir))
    audio = tmp_path / "in.wav"
    sf.write(audio, _music(seconds=11.0, sr=16_000, seed=5), 16_000)
    out = tmp_path / "out.wav"
    args = ["apply", "--model", str(model), "--audio", str(audio), "--out", str(out)]
    assert main([*args, "--describe", "a very blurry photo"]) == 0
    printed = capsys.readouterr().out
    assert "lpf: cutoff_hz = 800 Hz (u = 1.000)" in printed and "highshelf: bypassed" in printed
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and len(y) == 11 * SR
    from delta_v2a.phase3.artifact import load_whole

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
