"""``delta-v2a transfer`` end to end on the tiny models: a small study (real extraction code,
real Phase 0 table, the real payload builder), a decoder file in the current format, photos
and a song (docs/methods.md §7). Tiny random models: the recognition is not science here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from workflow_utils import ROOT

from delta_v2a import transfer as tr
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import (
    ChosenPair,
    FileSplit,
    PairRow,
    Pairs,
    PairsData,
    Significance,
)
from delta_v2a.artifacts.phase0 import SensitivityResults, SensitivityRow
from delta_v2a.cli import EXIT_BAD_INPUT, EXIT_REFUSED, main
from delta_v2a.config import load_config
from delta_v2a.effects import apply_audio_effect, apply_image_effect
from delta_v2a.extract import Decoding, render, study_store
from delta_v2a.media import MediaFile, load_image
from delta_v2a.phase0 import sensitivity_table
from delta_v2a.phase3 import artifact
from delta_v2a.phase3 import model as net
from delta_v2a.phase3.dataset import describe
from delta_v2a.phase3.paramspace import audio_space_from_config
from delta_v2a.transfer.payload import transfer_payload_from_results
from delta_v2a.transfer.types import TransferPayload

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SR = 48_000
CONFIG = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")
INTENSITIES = CONFIG["intensities"]
IMAGE_EFFECTS = ["blur", "brightness"]
AUDIO_EFFECTS = ["lpf", "highshelf"]


def _photo(path, seed: int, size=(320, 256)) -> None:
    """A textured photo (smoothed noise plus edges), so blur and brightness both change it."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.random((h // 16, w // 16, 3))
    img = np.kron(base, np.ones((16, 16, 1)))
    img += 0.25 * rng.random((h, w, 3))
    Image.fromarray((255 * np.clip(img / 1.25, 0, 1)).astype(np.uint8)).save(path)


def _song(path, seed: int, seconds: float = 11.0, sr: int = 16_000) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * (180 + 20 * seed) * k * t) / k for k in range(1, 30))
    x = 0.3 * x / np.abs(x).max() + 0.02 * rng.standard_normal(t.size)
    sf.write(path, x.astype(np.float32), sr)


def _pairs_file(path, space, chosen) -> None:
    """Phase 3's pairs.json as its job writes it (the payload reads the chosen pairs and the
    audio chain's order from it), with a data set that holds only the parameter space."""
    rows = [PairRow(i, a, score, None, True, None) for i, a, score in chosen]
    data = PairsData({}, {}, {}, [], [], space.to_dict(), FileSplit({}, [], [], []), 1)
    Pairs(
        threshold=0.0,
        significance=Significance(available=False, alpha=0.05, note="score only"),
        rows=rows,
        chosen=[ChosenPair.of(r) for r in rows],
        level_words=["slightly"],
        seed=0,
        message=f"{len(rows)} pair(s)",
        meta={},
        data=data,
    ).write(path)


def _study_results(root, clip_embedder, clap_embedder):
    """Stores, Phase 0 and 1 outputs and Phase 3's pairs of a tiny study, by the project's
    code; the transfer payload built from them."""
    photos = []
    for k in range(6):
        _photo(root / f"p{k}.png", seed=k)
        photos.append(MediaFile(str(root / f"p{k}.png"), "scenes", "image"))
    songs = []
    for k in range(2):
        _song(root / f"s{k}.wav", seed=k)
        songs.append(MediaFile(str(root / f"s{k}.wav"), "tones", "audio"))
    image = study_store(
        clip_embedder, photos, Decoding("image", 224), "image", IMAGE_EFFECTS, CONFIG
    )
    audio = study_store(clap_embedder, songs, Decoding("audio"), "audio", AUDIO_EFFECTS, CONFIG)
    image.save(root / "image_deltas.npz")
    audio.save(root / "audio_deltas.npz")
    sens = [SensitivityRow.from_json(r) for r in sensitivity_table([image, audio], 0.01)]
    SensitivityResults({}, 0.01, sens).write(root / "sens.json")
    DiscoveryLabels.build(
        {
            "image_effects": IMAGE_EFFECTS,
            "audio_effects": AUDIO_EFFECTS,
            "p": [[0.001, 0.2], [0.1, 0.1]],
            "p_adjusted": [[0.004, 0.5], [0.3, 0.2]],
            "alpha": 0.05,
            "correction": "holm",
            "chosen_pairs": [  # Phase 1's decision (the one the payload copies)
                {"image_effect": "blur", "audio_effect": "lpf", "score": 0.2, "p_adjusted": 0.004}
            ],
            "sim1": {},
            "sim2": {},
            "sim3": [[0.5, 0.0], [0.0, 0.5]],
            "best_matches": [],
        }
    ).write(root / "labels.json")
    space = audio_space_from_config(CONFIG, AUDIO_EFFECTS, SR, bypass_below=0.02)
    _pairs_file(
        root / "pairs.json", space, [("blur", "lpf", 0.2), ("brightness", "highshelf", 0.1)]
    )
    payload = transfer_payload_from_results(
        str(root / "image_deltas.npz"),
        str(root / "sens.json"),
        str(root / "labels.json"),
        str(root / "pairs.json"),
        audio_store=str(root / "audio_deltas.npz"),
    )
    return space, payload


def _model_doc(space, clap_embedder, tiny_clap_dir) -> dict:
    """A decoder file whose weights make lpf depend on text and audio, highshelf bypassed."""
    arch = {"kind": "attention", "text_dim": 512, "audio_dim": 512, "n_windows": 2}
    arch |= {"n_params": space.dim, "d_model": 16, "heads": 2, "hidden": 16, "dropout": 0.0}
    torch.manual_seed(0)
    state = net.build_decoder(arch).state_dict()
    state["head.3.weight"][1] = 0.0  # highshelf always bypassed, lpf depends on text and audio
    state["head.3.bias"][1] = -3.0
    state["head.3.bias"][0] = 0.5
    words = CONFIG["phase3"]["level_words"]
    first = [describe(CONFIG["phase3"]["descriptions"]["blur"][0], w) for w in words]
    doc = {
        "status": "trained",
        "arch": arch,
        "state_dict": state,
        "paramspace": space.to_dict(),
        "level_words": CONFIG["phase3"]["level_words"],
        "templates": CONFIG["phase3"]["descriptions"],
        "pairs": [],
        # apply's gate is tested in apply_gate_test.py and phase3_test.py; here it holds the
        # first template at every level word, so the decoder route's descriptions are exact
        "apply": {
            "threshold": 2.0,
            "margin": 3.0,
            "references": [
                {"text": t, "effect": "blur", "level_word": w, "trained": True}
                for t, w in zip(first, words, strict=True)
            ],
            "reference_embeddings": torch.as_tensor(clap_embedder.embed_texts(first)),
        },
        "audio_model": {"name_or_path": str(tiny_clap_dir), "dtype": "fp32", "normalize": True},
        "windows": {
            "count": 2,
            "hop": SR,
            "window": clap_embedder.window_samples,
            "sample_rate": SR,
        },
        "preroll": SR,
        "not_science": True,
    }
    return doc


@pytest.fixture(scope="module")
def study(tmp_path_factory, clip_embedder, clap_embedder, tiny_clip_dir, tiny_clap_dir):
    """A decoder file with a transfer payload built from a tiny study by the project's code."""
    root = tmp_path_factory.mktemp("study")
    space, payload = _study_results(root, clip_embedder, clap_embedder)
    doc = _model_doc(space, clap_embedder, tiny_clap_dir)
    artifact.save_decoder(root / "decoder_model.pt", doc | {"transfer": payload.to_dict()})
    artifact.save_decoder(root / "old_model.pt", doc)
    # a held-out photo, and the same photo blurred by the workflow's own effect
    _photo(root / "before.png", seed=99)
    x = load_image(root / "before.png", 224)
    blurred = apply_image_effect("blur", x, CONFIG["effects"]["image"]["blur"]["levels"]["high"])
    Image.fromarray((255 * x).round().astype(np.uint8)).save(root / "b0.png")
    Image.fromarray((255 * blurred).round().astype(np.uint8)).save(root / "b1.png")
    Image.fromarray((255 * blurred).round().astype(np.uint8)).resize((448, 448)).save(
        root / "b1_big.png"
    )
    _song(root / "song.wav", seed=5)
    return root, payload


def _args(root, *extra):
    return [
        "transfer",
        "--model",
        str(root / "decoder_model.pt"),
        "--audio",
        str(root / "song.wav"),
        *extra,
    ]


def test_payload_is_plain_and_carries_the_study(study):
    root, payload = study
    raw = torch.load(root / "decoder_model.pt", weights_only=True)["transfer"]
    assert raw["effects"] == IMAGE_EFFECTS and len(raw["prototypes"]) == 2
    np.testing.assert_allclose(np.linalg.norm(raw["prototypes"], axis=1), 1.0, atol=1e-12)
    assert [p["significant"] for p in raw["pairs"]] == [True, False]
    assert raw["pairs"][0]["p_adjusted"] == 0.004 and raw["image_model"]["normalize"] is True
    # κ maps blur's strongest mean image norm onto lpf's median audio norm at its strongest level
    blur_top = raw["curves"]["blur"]["norm"][-1]
    assert raw["pairs"][0]["kappa"] * blur_top == pytest.approx(
        raw["pairs"][0]["audio_norm_strongest"]
    )
    assert raw["chain_order"] == AUDIO_EFFECTS
    # the typed payload writes what it read, and the model file's reader builds it once
    assert TransferPayload.from_dict(raw) == payload and payload.to_dict() == raw
    assert artifact.load_decoder(root / "decoder_model.pt").transfer == payload


def test_a_payload_of_another_version_is_one_line_naming_the_model_file(study, tmp_path):
    root, _ = study
    doc = torch.load(root / "decoder_model.pt", weights_only=True)
    doc["transfer"]["version"] = 99
    torch.save(doc, tmp_path / "future.pt")
    with pytest.raises(ValueError) as err:
        artifact.load_decoder(tmp_path / "future.pt")
    line = str(err.value)
    assert line.startswith(f"{tmp_path / 'future.pt'}: ") and "\n" not in line
    assert "version 99" in line and "rerun phase3" in line


def test_blurred_photo_transfers_with_the_decoder_and_equals_apply(study, capsys):
    from delta_v2a.cli import main as cli_main

    root, _ = study
    out = root / "out.wav"
    photos = ["--before", str(root / "b0.png"), "--after", str(root / "b1.png")]
    assert main([*_args(root, *photos, "--out", str(out), "--json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    blur = doc["saw"]["effects"]["blur"]
    assert (
        doc["route"] == "decoder" and blur["recognised"] and blur["pair"]["audio_effect"] == "lpf"
    )
    assert doc["saw"]["explained_share"] >= doc["saw"]["threshold"]
    assert doc["parameters"]["highshelf"] is None and doc["not_science"] is True
    # the decoder route is `apply` on the description of that strength
    same = root / "apply.wav"
    desc = doc["steps"][0]["description"]
    apply = ["apply", "--model", str(root / "decoder_model.pt"), "--audio", str(root / "song.wav")]
    assert cli_main([*apply, "--describe", desc, "--out", str(same)]) == 0
    capsys.readouterr()
    np.testing.assert_array_equal(sf.read(out)[0], sf.read(same)[0])
    # the human report says what it saw and did, and that tiny models are not science
    assert main([*_args(root, *photos, "--out", str(out))]) == 0
    printed = capsys.readouterr().out
    assert "blur: strength" in printed and "pair blur -> lpf (Phase 1 p_adj = 0.004)" in printed
    assert "lpf: cutoff_hz = " in printed
    assert "NOT SCIENCE: made with tiny randomly initialised models" in printed


def test_exact_route_reproduces_the_per_clip_oracle(study, clap_embedder, capsys):
    root, payload = study
    out = root / "exact.wav"
    photos = ["--before", str(root / "b0.png"), "--after", str(root / "b1.png")]
    assert main([*_args(root, *photos, "--out", str(out), "--exact", "--json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    note = doc["exact"][0]
    # the oracle, recomputed through extraction's own rendering: g(u) on the centred window
    space = audio_space_from_config(CONFIG, AUDIO_EFFECTS, SR, bypass_below=0.02)
    song = MediaFile(str(root / "song.wav"), "x", "audio")
    grid = np.linspace(0, 1, payload.u_grid)
    clips = [render(song, Decoding("audio"), None, {})]
    for u in grid[1:]:
        params = space.physical(space.target("lpf", u))["lpf"]
        clips.append(render(song, Decoding("audio"), "lpf", params))
    emb = clap_embedder.embed_audio(clips).astype(np.float64)
    g = np.linalg.norm(emb - emb[0], axis=1)
    np.testing.assert_allclose(note["curve"], g, atol=1e-5)
    blur = doc["saw"]["effects"]["blur"]
    curve = payload.curves["blur"]
    target = payload.pairs[0].kappa * curve.at(blur["theta"])
    assert note["target_norm"] == pytest.approx(target)
    u, _ = tr.solve_monotone(grid, g, target)
    assert note["u"] == pytest.approx(u, abs=1e-4)
    # rendered on the song as it is (16 kHz mono), not on the model's 48 kHz copy
    x, rate = sf.read(root / "song.wav", dtype="float32")
    expected = apply_audio_effect(
        "lpf", x, rate, space.physical(space.target("lpf", note["u"]))["lpf"]
    )
    got, got_rate = sf.read(out, dtype="float32")
    assert got_rate == rate == 16_000
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_describe_keeps_the_text_route(study, capsys):
    root, _ = study
    out = root / "d.wav"
    assert main([*_args(root, "--describe", "a very blurry photo", "--out", str(out))]) == 0
    assert "text route" in capsys.readouterr().out and out.is_file()


def test_bad_inputs_fail_with_one_line(study, capsys):
    root, _ = study
    out = str(root / "bad.wav")
    b0, b1 = str(root / "b0.png"), str(root / "b1.png")
    cases = [
        (["--before", str(root / "nope.jpg"), "--after", b1], EXIT_BAD_INPUT, "nope.jpg: no such"),
        (["--before", b0, "--after", b0], EXIT_REFUSED, "no edit found"),
        (["--before", b0], EXIT_BAD_INPUT, "give --before and --after"),
        (["--before", b0, "--after", b1, "--describe", "x"], EXIT_BAD_INPUT, "one or the other"),
    ]
    for extra, code, message in cases:
        assert main([*_args(root, *extra, "--out", out)]) == code
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' bars
        assert message in err and err.startswith("delta-v2a transfer: ")
    # identical photos stay refused under --force: there is nothing to transfer, and the
    # refusal does not suggest --force
    assert main([*_args(root, "--before", b0, "--after", b0, "--out", out)]) == EXIT_REFUSED
    assert "--force" not in capsys.readouterr().err
    assert main([*_args(root, "--before", b0, "--after", b0, "--out", out, "--force")]) == 3
    capsys.readouterr()
    old = ["transfer", "--model", str(root / "old_model.pt"), "--audio", str(root / "song.wav")]
    assert main([*old, "--before", b0, "--after", b1, "--out", out]) == EXIT_BAD_INPUT
    assert "no 'transfer' entry" in capsys.readouterr().err


def test_photos_of_different_sizes_are_resized_as_extraction(study, capsys):
    root, _ = study
    out = root / "big.wav"
    big = ["--before", str(root / "b0.png"), "--after", str(root / "b1_big.png"), "--json"]
    code = main([*_args(root, *big, "--out", str(out))])
    captured = capsys.readouterr()
    assert code in (0, EXIT_REFUSED) and "error" not in captured.err
    if code == 0:
        assert json.loads(captured.out)["saw"]["effects"]["blur"]["recognised"]


def test_only_non_significant_pairs_are_refused_unless_forced(study, capsys):
    """Brightness is paired with highshelf at p_adj = 0.2 > alpha: refused, --force warns."""
    root, _ = study
    x = load_image(root / "before.png", 224)
    bright = apply_image_effect(
        "brightness", x, CONFIG["effects"]["image"]["brightness"]["levels"]["high"]
    )
    Image.fromarray((255 * bright).round().astype(np.uint8)).save(root / "bright.png")
    photos = ["--before", str(root / "b0.png"), "--after", str(root / "bright.png")]
    out = str(root / "bright.wav")
    code = main([*_args(root, *photos, "--out", out, "--json")])
    captured = capsys.readouterr()
    doc = json.loads(captured.out) if code == 0 else None
    if doc is not None:  # recognised as blur (tiny models): then brightness played no part
        assert "highshelf" not in [s["audio_effect"] for s in doc["steps"]]
        return
    assert code == EXIT_REFUSED
    if "not significant" in captured.err:
        assert "(--force goes on anyway)" in captured.err  # here it does
        assert main([*_args(root, *photos, "--out", out, "--force", "--json")]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert any("non-significant" in w for w in doc["saw"]["warnings"])


def test_examples_job_renders_both_routes_and_a_page(study, tmp_path):
    import pandas as pd

    from delta_v2a.extract import write_manifest
    from delta_v2a.jobs.common import Paths
    from delta_v2a.jobs.transfer import run_examples
    from delta_v2a.settings import ExamplesSettings

    root, _ = study
    manifest = tmp_path / "image.tsv"
    write_manifest(manifest, [MediaFile(str(root / "before.png"), "scenes", "image")], ["h"])
    samples = tmp_path / "samples.tsv"
    pd.DataFrame(
        {"path": [str(root / "s0.wav"), str(root / "song.wav")], "split": ["train", "test"]}
    ).to_csv(samples, sep="\t", index=False)
    out = tmp_path / "transfer"
    levels = CONFIG["effects"]["image"]["blur"]["levels"]
    study_inputs = {"image_manifest": str(manifest), "samples": str(samples)}
    study_inputs["pairs"] = str(root / "pairs.json")
    run_examples(
        inputs=Paths(model=str(root / "decoder_model.pt"), **study_inputs),
        outputs=Paths(folder=str(out)),
        settings=ExamplesSettings(
            edit_levels={"blur": {k: levels[k] for k in INTENSITIES}}, n_examples=2, device="cpu"
        ),
    )
    doc = json.loads((out / "examples.json").read_text())
    assert doc["status"] == "ok" and doc["split"] == "test" and doc["not_science"]
    assert [e["edit_level"] for e in doc["examples"]] == INTENSITIES[-2:]
    assert {e["edit_effect"] for e in doc["examples"]} == {"blur"}
    assert all(e["song"] == str(root / "song.wav") for e in doc["examples"])
    for k in range(2):
        for route in ("original", "decoder", "exact"):
            assert (out / f"example{k}_{route}.wav").is_file()
    page = (out / "index.html").read_text()
    assert page.count("<audio controls") == 6 and "NOT SCIENCE: made with tiny" in page
    # a model file without a trained decoder gives a page that says why, not a crash
    none = tmp_path / "none"
    run_examples(
        inputs=Paths(model=str(root / "old_model.pt"), **study_inputs),
        outputs=Paths(folder=str(none)),
        settings=ExamplesSettings(edit_levels={}, n_examples=2, device="cpu"),
    )
    assert json.loads((none / "examples.json").read_text())["status"] == "unavailable"


def _stereo_44k(path, seconds: float = 11.0) -> np.ndarray:
    """Two different channels at 44.1 kHz, 16-bit: what a user's song usually is."""
    sr = 44_100
    t = np.arange(int(seconds * sr)) / sr
    left = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 40))
    right = sum(np.sin(2 * np.pi * 330 * k * t) / k for k in range(1, 30))
    x = 0.25 * np.stack([left / np.abs(left).max(), right / np.abs(right).max()], axis=1)
    sf.write(path, x, sr, subtype="PCM_16")
    return sf.read(path, dtype="float32")[0]


@pytest.mark.parametrize("suffix,fmt", [(".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG")])
def test_stereo_44k_song_keeps_its_rate_channels_and_the_asked_format(study, capsys, suffix, fmt):
    """apply and transfer render the predicted chain on each channel at 44.1 kHz (the model
    reads its mono 48 kHz windows) and write the format the output name asks for."""
    root, _ = study
    x = _stereo_44k(root / "stereo.wav")
    space = audio_space_from_config(CONFIG, AUDIO_EFFECTS, SR, bypass_below=0.02)
    model = str(root / "decoder_model.pt")
    for command in ("apply", "transfer"):
        out = root / f"{command}_stereo{suffix}"
        argv = [command, "--model", model, "--audio", str(root / "stereo.wav"), "--out", str(out)]
        assert main([*argv, "--describe", "a very blurry photo", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        info = sf.info(out)
        assert (info.samplerate, info.channels, info.format) == (44_100, 2, fmt)
        assert doc["written"] == {
            "sample_rate": 44_100,
            "channels": 2,
            "format": fmt,
            "notes": [],
        }
        y = sf.read(out, dtype="float32")[0]
        assert y.shape == x.shape
        # each channel is that channel through the predicted low-pass at 44.1 kHz
        params = space.physical([doc["normalised"][n] for n in space.names])
        assert params["highshelf"] is None
        for c in range(2):
            expected = apply_audio_effect("lpf", x[:, c], 44_100, params["lpf"])
            tol = 1e-6 if fmt == "WAV" else (1e-4 if fmt == "FLAC" else None)
            if tol is None:  # Vorbis is lossy: the spectrum's shape, not the samples
                assert np.corrcoef(y[:, c], expected)[0, 1] > 0.95
            else:
                np.testing.assert_allclose(y[:, c], expected, atol=tol)
        assert not np.allclose(y[:, 0], y[:, 1], atol=1e-3)  # the channels stay apart


def test_refusals_come_before_the_heavy_imports(study, tmp_path):
    """A missing file, a bad output name or a bad route is refused with exit 2 before torch
    is imported (it takes seconds), measured in a fresh interpreter."""
    import os
    import subprocess
    import sys
    import time

    root, _ = study
    model, song = str(root / "decoder_model.pt"), str(root / "song.wav")
    cases = [
        (
            ["apply", "--model", model, "--audio", "nope.wav", "--describe", "x", "--out", "o.wav"],
            "--audio nope.wav: no such file",
        ),
        (
            ["apply", "--model", model, "--audio", song, "--describe", "x", "--out", "o.mp3"],
            "'.mp3' is not an output format",
        ),
        (
            ["apply", "--model", model, "--audio", song, "--describe", " ", "--out", "o.wav"],
            "the description is empty",
        ),
        (
            [
                "transfer",
                "--model",
                "nope.pt",
                "--audio",
                song,
                "--describe",
                "x",
                "--out",
                "o.wav",
            ],
            "--model nope.pt: no such file",
        ),
        (
            ["transfer", "--audio", song, "--before", song, "--out", "o.flac", "--model", model],
            "give --before and --after",
        ),
        (
            [
                "transfer",
                "--audio",
                song,
                "--describe",
                "x",
                "--exact",
                "--out",
                "o.ogg",
                "--model",
                model,
            ],
            "--exact needs photos",
        ),
    ]
    code = (
        "import sys, json; from delta_v2a.cli import main; rc = main(json.loads(sys.argv[1]));"
        "print(json.dumps([rc, 'torch' in sys.modules, 'transformers' in sys.modules]))"
    )
    for argv, message in cases:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(argv)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=os.environ | {"PYTHONPATH": str(ROOT / "src")},  # this checkout's code
            check=False,
        )
        seconds = time.perf_counter() - start
        rc, torch_loaded, transformers_loaded = json.loads(done.stdout)
        assert rc == EXIT_BAD_INPUT and message in done.stderr, (argv, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
        assert not torch_loaded and not transformers_loaded
        assert seconds < 5.0  # generous on a loaded machine; torch alone takes longer here
