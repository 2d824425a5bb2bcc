"""Phase 3 jobs without Snakemake: windows, data set, training on tiny models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from health_utils import health_report
from phase0_utils import sens_row, sensitivity
from phase3_utils import CONFIG, TEMPLATES, WORDS, training_log

from delta_v2a.artifacts.dependence import AudioDependence
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.training_log import TrainingLog
from delta_v2a.config import merge
from delta_v2a.jobs.common import Paths
from delta_v2a.phase3 import artifact
from delta_v2a.settings import (
    dataset_settings,
    embed_settings,
    manifest_settings,
    phase3_settings,
    strength_settings,
    windows_settings,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, tiny_clap_dir):
    """A manifest, extraction's originals and a discovery matrix, as the workflow makes them."""
    from workflow_utils import write_audio

    from delta_v2a.inventory import inventory_digest, inventory_of
    from delta_v2a.jobs.embed import run_embed
    from delta_v2a.jobs.manifest import run_manifest
    from delta_v2a.jobs.split import run_split
    from delta_v2a.settings import SplitSettings

    base = tmp_path_factory.mktemp("phase3")
    for i, genre in enumerate(["folk", "folk", "jazz", "jazz", "jazz"]):
        write_audio(base / "data" / genre / f"clip_{i}.wav", seed=i)
    cfg = merge(CONFIG, {"models": {"audio": str(tiny_clap_dir), "device": "cpu"}})
    cfg = merge(cfg, {"cache": {"dir": str(base / "cache")}, "data": {"audio": str(base / "data")}})
    cfg = merge(cfg, {"models": {"batch_size": {"cpu": {"audio": 8}}}})
    inventory = base / "audio.inventory.tsv"
    inventory.write_text(inventory_of(base / "data", "audio"), encoding="utf-8")
    vetted = base / f"audio.{inventory_digest(inventory.read_text(encoding='utf-8'))}.tsv"
    run_manifest(
        inputs=Paths(inventory=str(inventory)),
        outputs=Paths(manifest=str(vetted), skipped=str(base / "skipped.tsv")),
        settings=manifest_settings(merge(cfg, {"phase3": {"windows": {"count": 1}}}), "audio", "t"),
        threads=1,
    )
    vetted.rename(base / "audio.tsv")  # what manifest_current does
    run_split(
        inputs=Paths(manifest=str(base / "audio.tsv")),
        outputs=Paths(split=str(base / "split.json")),
        settings=SplitSettings(fractions={"val": 0.2, "test": 0.4}, seed=0),
    )
    run_embed(
        inputs=Paths(manifest=str(base / "audio.tsv")),
        outputs=Paths(embeddings=str(base / "original.npz")),
        settings=dataclasses.replace(embed_settings(cfg, "audio", None, None), cache_dir=None),
        threads=1,
    )
    np.save(base / "matrix.npy", np.array([[0.3, 0.1], [0.0, 0.2], [0.0, 0.0]]))
    labels = _labels(P_CHOSEN, CHOSEN)
    labels.write(base / "labels.json")
    model = cfg
    sens = [
        sens_row(effect_type=e, intensity=i, mean=0.05 * (k + 1))
        for e in labels.image_effects
        for k, i in enumerate(CONFIG["intensities"])
    ]
    sensitivity(sens).write(base / "sensitivity.json")
    health_report().write(base / "health.json")
    return base, model


#: Phase 1's decision in the main flow: blur -> lpf and brightness -> reverb significant.
P_CHOSEN = [[0.01, 0.5], [0.5, 0.01], [None, None]]
CHOSEN = [
    {"image_effect": "blur", "audio_effect": "lpf", "score": 0.3, "p_adjusted": 0.01},
    {"image_effect": "brightness", "audio_effect": "reverb", "score": 0.2, "p_adjusted": 0.01},
]


def _labels(p_adjusted, chosen) -> DiscoveryLabels:
    """Phase 1's labels as the artifact holds them (the fields Phase 3 reads)."""
    return DiscoveryLabels.build(
        {
            "image_effects": ["blur", "brightness", "contrast"],
            "audio_effects": ["lpf", "reverb"],
            "alpha": 0.05,
            "correction": "holm",
            "p": p_adjusted,
            "p_adjusted": p_adjusted,
            "chosen_pairs": chosen,
            "sim1": {},
            "sim2": {},
            "sim3": [[0.0, 0.0]] * 3,
            "best_matches": [],
        }
    )


def _dataset(base, cfg, threshold=0.05, out="ds", p_adjusted=None, require_significant=True):
    from delta_v2a.jobs.phase3 import run_dataset

    (base / out).mkdir(exist_ok=True)
    labels = base / "labels.json"
    if p_adjusted is not None:  # Phase 1 chose nothing at these p-values
        labels = base / out / "labels.json"
        _labels(p_adjusted, []).write(labels)
    p3 = {"pair_threshold": threshold, "require_significant_pairs": require_significant}
    p3 |= {"levels_per_pair": 4}
    run_dataset(
        inputs=Paths(
            matrix=str(base / "matrix.npy"),
            labels=str(labels),
            manifest=str(base / "audio.tsv"),
            split=str(base / "split.json"),
            health=[str(base / "health.json")],
        ),
        outputs=Paths(
            pairs=str(base / out / "pairs.json"),
            samples=str(base / out / "samples.tsv"),
            texts=str(base / out / "texts.npz"),
        ),
        settings=dataset_settings(merge(cfg, {"phase3": p3})),
        threads=1,
    )
    return base / out


def _strength(base, ds, cfg, target="matched"):
    from delta_v2a.jobs.phase3 import run_strength

    run_strength(
        inputs=Paths(
            manifest=str(base / "audio.tsv"),
            pairs=str(ds / "pairs.json"),
            samples=str(ds / "samples.tsv"),
            sensitivity=str(base / "sensitivity.json"),
        ),
        outputs=Paths(
            curves=str(ds / "curves.npz"),
            targets=str(ds / "targets.tsv"),
            dependence=str(ds / "dependence.json"),
        ),
        settings=strength_settings(merge(cfg, {"phase3": {"u_grid": 4, "target": target}})),
        threads=1,
    )


def _train(base, ds, cfg, out="train", epochs=3, seeds=3, budget=3):
    from delta_v2a.jobs.phase3 import run_train

    o = base / out
    inputs = {"samples": "samples.tsv", "pairs": "pairs.json", "texts": "texts.npz"}
    inputs |= {"targets": "targets.tsv", "curves": "curves.npz", "dependence": "dependence.json"}
    outputs = {"model": "decoder_model.pt", "log": "training_log.json"}
    outputs |= {"predictions": "parameter_predictions", "training": "training.png"}
    p3 = {
        "model": {"d_model": 32, "heads": 4, "hidden": 32, "dropout": 0.1},
        "epochs": epochs,
        "batch_size": 32,
        "lr": 1e-3,
        "validation": {"max_samples": 6, "examples": 2},
        "bootstrap": 200,
        "log_every": 2,
        "checkpoint_interval_s": 0,
        "seeds": seeds,
        "text2fx_budget": budget,
    }
    run_train(
        inputs=Paths(
            windows=str(base / "windows.npz"),
            **{k: str(ds / name) for k, name in inputs.items()},
        ),
        outputs=Paths(
            **{k: str(o / name) for k, name in outputs.items()},
            scatter=str(o / "predictions.png"),
        ),
        settings=phase3_settings(merge(cfg, {"phase3": p3}), str(o / "checkpoints")),
        threads=1,
    )
    return o


def _check_windows(base, model):
    """Window sequences: the centre window reused from extraction, then all from the cache."""
    from delta_v2a.jobs.phase3 import run_windows
    from delta_v2a.storage import EmbeddingTable

    inputs = Paths(manifest=str(base / "audio.tsv"), original=str(base / "original.npz"))
    settings = windows_settings(merge(model, {"phase3": {"windows": {"count": 2, "hop_s": 1.0}}}))

    def run(name):
        outputs = Paths(windows=str(base / name))
        run_windows(inputs=inputs, outputs=outputs, settings=settings, threads=1)

    run("windows.npz")
    windows = EmbeddingTable.load(base / "windows.npz")
    original = EmbeddingTable.load(base / "original.npz")
    assert windows.embeddings.shape == (5, 2, 512) and windows.meta["n_centre_reused"] == 5
    np.testing.assert_array_equal(windows.embeddings[:, -1], original.embeddings)
    run("again.npz")
    again = EmbeddingTable.load(base / "again.npz")
    assert again.meta["n_cached"] == 5  # every file was embedded once, then read from the cache
    np.testing.assert_array_equal(again.embeddings, windows.embeddings)


def _check_dataset(base, model, caplog):
    """Phase 1's significant pairs, the split by file, held-out paraphrases."""
    with caplog.at_level("INFO"):
        ds = _dataset(base, model)
    assert "PAIR: blur -> lpf" in caplog.text and "PAIR: brightness -> reverb" in caplog.text
    pairs = json.loads((ds / "pairs.json").read_text())
    assert [p["audio_effect"] for p in pairs["chosen"]] == ["lpf", "reverb"]
    assert pairs["rows"][2]["chosen"] is False  # contrast: best 0.0 <= 0.05
    assert pairs["significance"]["available"] is True
    samples = pd.read_csv(ds / "samples.tsv", sep="\t")
    split = pairs["split"]
    assert [len(split[f"{k}_files"]) for k in ("train", "val", "test")] == [2, 1, 2]
    n_test_rows = 2 * 2 * 4
    assert len(samples) == 5 * 2 * 4 + n_test_rows  # + one held-out paraphrase per test sample
    assert set(samples.loc[samples.held_out, "split"]) == {"test"}
    # apply's validation paraphrases reach no sample; every gate text is embedded
    val_tpl = pairs["validation_templates"]
    assert val_tpl == {e: [TEMPLATES[e][-2]] for e in ("blur", "brightness")}
    val_texts = {r["text"] for r in pairs["gate_texts"] if r["role"] == "val_paraphrase"}
    assert len(val_texts) == 2 * len(WORDS) and not val_texts & set(samples["description"])
    test_texts = {r["text"] for r in pairs["gate_texts"] if r["role"] == "test_paraphrase"}
    assert test_texts == set(samples.loc[samples.held_out, "description"])
    assert {r["text"] for r in pairs["gate_texts"]} <= set(pairs["texts"])
    return ds, split, n_test_rows


def _check_strength(base, ds, model):
    """Strength curves: every clip × u embedded once, then read from the cache."""
    _strength(base, ds, model)
    dep = json.loads((ds / "dependence.json").read_text())
    assert dep["status"] == "ok" and dep["curve_cost"]["clap_calls"] == 5 * (1 + 2 * 4)
    assert dep["curve_cost"]["clap_calls_this_run"] == 5 * 9
    # Tiny random CLAP still moves differently per clip: a spread of exactly 0 would mean u*
    # did not depend on the audio at all (the figure the verdict's premise rests on).
    assert dep["sd_across_files"] > 0 and np.isfinite(dep["sd_across_files"])
    targets = pd.read_csv(ds / "targets.tsv", sep="\t")
    assert targets["u_star"].between(0, 1).all() and (targets["target_strength"] > 0).all()
    _strength(base, ds, model)  # every clip x u is cached by content now
    assert (
        json.loads((ds / "dependence.json").read_text())["curve_cost"]["clap_calls_this_run"] == 0
    )


def _check_training(base, ds, cfg, split, n_test_rows, caplog):
    """The training log: every baseline on test, intervals, the verdict over 3 training
    seeds, the Text2FX-style search's calls, both log-mel distances, predictions.tsv."""
    with caplog.at_level("INFO"):
        out = _train(base, ds, cfg)
    assert "decoder epoch 2/3" in caplog.text or "attention epoch 2/3" in caplog.text
    assert "training seed 2 (3 of 3)" in caplog.text and "seed 1 does NOT pass" in caplog.text
    assert "decoder test MSE over 3 seeds" in caplog.text
    log = json.loads((out / "training_log.json").read_text())
    assert log["status"] == "trained" and log["target"] == "matched"
    models = log["training"]["models"]
    assert set(models) == {"decoder", "concat", "text_mlp"}
    assert all(len(m["history"]) == 3 for m in models.values())
    assert log["seeds"]["training_seeds"] == [0, 1, 2] and log["seeds"]["designated"] == 0
    per_seed = log["training"]["per_seed"]
    assert set(per_seed) == {"0", "1", "2"} and set(per_seed["1"]) == set(models)
    # different seeds train different networks
    assert len({per_seed[s]["decoder"]["best_val_loss"] for s in per_seed}) == 3
    assert per_seed["0"]["decoder"]["best_val_loss"] == models["decoder"]["best_val_loss"]
    assert [r["seed"] for r in log["verdict"]["inference"]["seeds"]] == [0, 1, 2]
    figures = log["test"]["figures"]
    assert set(figures) == {
        "decoder",
        "concat",
        "text_mlp",
        "text_lookup",
        "global_mean",
        "no_effect",
        "shuffled_audio",
        "oracle",
        "text2fx_search",
        "curve_inversion",
    }
    for f in figures.values():
        assert f["param_mse"]["n_files"] == 2 and f["param_mse"]["low"] <= f["param_mse"]["high"]
        assert len(f["param_mse"]["per_seed"]) == 3 and set(f) >= {"logmel_db", "logmel_gain_db"}
        assert np.mean(f["param_mse"]["per_seed"]) == pytest.approx(f["param_mse"]["mean"])
    assert figures["decoder"]["param_mse"]["seed_sd"] > 0  # the seeds differ
    assert figures["text2fx_search"]["param_mse"]["seed_sd"] == 0.0  # no seed changes it
    assert figures["oracle"]["param_mse"]["mean"] == 0.0
    assert figures["oracle"]["logmel_gain_db"]["mean"] == 0.0
    assert set(log["test"]["paraphrase_figures"]) == set(figures)
    v = log["verdict"]
    assert isinstance(v["uses_audio"], bool) and set(v["beats"]) | set(v["does_not_beat"]) == (
        set(figures) - {"decoder"}
    )
    search = log["cost"]["text2fx_search"]
    assert search["budget"] == 3 and 0 < search["search_calls_per_clip"] <= 3
    assert search["clap_audio_calls_per_clip"] == 4 + search["search_calls_per_clip"]
    assert 0 < search["clap_calls_made"] <= 3 * n_test_rows * 2
    assert log["meta"]["not_science"] is True and log["test"]["n_rendered"] == 6
    preds = pd.read_csv(out / "parameter_predictions/predictions.tsv", sep="\t")
    assert len(preds) == 2 * n_test_rows and set(preds["path"]) == set(split["test_files"])
    assert {"true:lpf.cutoff_hz", "pred_decoder:reverb.wet_level", "logmel_db:decoder"} <= set(
        preds
    )
    assert preds["logmel_db:decoder"].notna().sum() == 6
    assert preds["logmel_gain_db:decoder"].notna().sum() == 6
    assert not any("@seed" in c for c in preds)  # the designated seed only
    # the per-sample error the verdict uses; shuffled: the mean over derangements, with its SD
    assert {"param_mse:decoder", "param_mse:shuffled_audio", "param_mse_sd:shuffled_audio"} <= set(
        preds
    )
    assert log["verdict"]["text_only_baseline_per_seed"] == [
        min(v, key=v.get) for v in log["verdict"]["text_only_validation_mse"]
    ]
    from delta_v2a.report.summary import _phase3_verdict

    typed = TrainingLog.read(out / "training_log.json")
    assert typed.verdict.seeds == [0, 1, 2] and typed.test.figures == log["test"]["figures"]
    lines = _phase3_verdict(typed)["lines"]  # the summary reads this very log
    assert "training seeds [0, 1, 2]: passed [] (the verdict needs all)" in lines
    assert any(line.startswith("seed 2 text_only: decoder better on") for line in lines)
    shuffled = [line for line in lines if line.startswith("shuffled audio over 1 derangements")]
    assert len(shuffled) == 1 and shuffled[0].count(",") >= 4  # 2 test files: 1; three seeds

    assert len(list((out / "parameter_predictions/examples").glob("*.wav"))) == 2 * 3
    return out


def _check_model_file(out, model):
    """decoder_model.pt: the parameter space, a portable CLAP path, apply's threshold."""
    loaded = artifact.load_decoder(out / "decoder_model.pt")
    assert loaded.space.effects == ("lpf", "reverb") and loaded.level_words == WORDS
    assert loaded.audio_model["relative_to_model_file"] is True
    from delta_v2a.phase3.artifact import resolve_clap

    assert resolve_clap(loaded, out / "decoder_model.pt", None) == str(
        Path(model["models"]["audio"]).resolve()
    )
    assert loaded.transfer is None
    # apply's gate: chosen on validation, the same in the model file and the training log
    gate = loaded.gate
    logged = json.loads((out / "training_log.json").read_text())["apply"]
    assert (logged["threshold"], logged["margin"]) == (gate["threshold"], gate["margin"])
    assert logged["validation"] == gate["validation"] and logged["test"] == gate["test"]
    val, test = gate["validation"], gate["test"]
    assert val["n_paraphrases"] == test["n_paraphrases"] == 2 * len(WORDS)  # 2 pairs
    assert val["paraphrases_accepted_wrong_meaning"] == 0
    assert val["controls_refused"] == val["n_controls"] and val["n_near_misses"] > 0
    # no paraphrase accepted on validation: the gate takes trained descriptions only
    assert (gate["threshold"] <= 1.0) == (val["paraphrases_accepted"] > 0)
    n_trained = sum(r["trained"] for r in gate["references"])
    assert n_trained == gate["n_trained"] > 0
    assert len(gate["reference_embeddings"]) == len(gate["references"]) > n_trained
    assert (out / "training.png").stat().st_size > 1000


def _check_experiment_writes_nothing(base, ds, cfg, monkeypatch):
    """run_experiment on the job's inputs, with a Lab that needs no file (training without
    checkpoints, the grid-argmax search, nothing rendered), opens no file for writing; each
    seed's text-only baseline is its lower validation MSE; the same inputs give the same
    figures twice (every random stream is seeded)."""
    import builtins
    import io

    import torch

    from delta_v2a.artifacts.pairs import Pairs
    from delta_v2a.jobs.phase3.train import _load_training_data
    from delta_v2a.phase3 import experiment as ex
    from delta_v2a.phase3.baselines import TRAINED_KINDS
    from delta_v2a.phase3.listening import SPECTRAL_METRICS
    from delta_v2a.phase3.search import search_clips
    from delta_v2a.phase3.train import train_decoder

    names = {"samples": "samples.tsv", "pairs": "pairs.json", "texts": "texts.npz"}
    names |= {"targets": "targets.tsv", "curves": "curves.npz"}
    paths = Paths(windows=str(base / "windows.npz"), **{k: str(ds / v) for k, v in names.items()})
    inputs, _ = _load_training_data(paths, Pairs.read(ds / "pairs.json"))
    p3 = {"model": {"d_model": 16, "heads": 2, "hidden": 16, "dropout": 0.0}, "epochs": 2}
    p3 |= {"bootstrap": 50, "seeds": 2, "text2fx_budget": 0}
    st = phase3_settings(merge(cfg, {"phase3": p3}), str(base / "no_checkpoints"))
    dependence = AudioDependence.read(ds / "dependence.json")

    def search(test):
        files, effects, text, known = ex.search_inputs(inputs, test)
        found = search_clips(None, files, effects, text, inputs.curves.grid, known, budget=0)
        spent = {"render": 0.0, "embed": 0.0}
        return found, ex.search_cost(found, 0, len(inputs.curves.grid), 0.0, spent)

    def render(test, candidates, extra, mse):
        nan = {m: np.full(len(test), np.nan) for m in SPECTRAL_METRICS}
        return ex.Renders({k: nan for k in {**candidates, **extra}}, 0, 0.0, {})

    lab = ex.Lab(
        train=lambda arch, s: {
            n: train_decoder({"kind": k, **arch}, inputs.data, s) for n, k in TRAINED_KINDS.items()
        },
        search=search,
        render=render,
    )
    real_open = builtins.open

    def read_only(file, mode="r", *args, **kwargs):
        assert not set(mode) & set("wax+"), f"the experiment opened {file} for writing"
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only)
    monkeypatch.setattr(io, "open", read_only)  # pathlib's
    monkeypatch.setattr(torch, "save", lambda *a, **k: pytest.fail("the experiment saved"))
    first, again = (ex.run_experiment(inputs, st, lab, dependence) for _ in range(2))
    monkeypatch.undo()
    verdict = first.evaluation["verdict"]
    assert verdict["text_only_baseline_per_seed"] == [
        min(v, key=v.get) for v in verdict["text_only_validation_mse"]
    ]
    assert list(first.seed_results) == list(st.seeds) and first.results["decoder"].best_epoch
    assert first.evaluation["figures"] == again.evaluation["figures"]
    assert not (base / "no_checkpoints").exists()


def test_phase3_jobs_end_to_end(upstream, caplog, monkeypatch):
    base, model = upstream
    _check_windows(base, model)
    ds, split, n_test_rows = _check_dataset(base, model, caplog)
    _check_strength(base, ds, model)
    out = _check_training(base, ds, model, split, n_test_rows, caplog)
    _check_model_file(out, model)
    _check_experiment_writes_nothing(base, ds, model, monkeypatch)


def test_no_pair_is_said_clearly_and_still_writes_every_output(upstream, caplog):
    base, model = upstream
    with caplog.at_level("INFO"):
        ds = _dataset(base, model, threshold=0.5, out="nopairs")
        _strength(base, ds, model)
        out = _train(base, ds, model, out="nopairs_train")
    want = "NO PAIR passes phase3.pair_threshold = 0.5 with p_adjusted <= 0.05 (best eligible"
    assert want + " score 0.3)" in caplog.text
    log = json.loads((out / "training_log.json").read_text())
    assert log["status"] == "no_pairs" and "NO PAIR" in log["message"]
    assert set(log) == {"artifact", "format_version", "meta", "status", "message", "verdict",
                        "pairs"}  # fmt: skip
    typed = TrainingLog.read(out / "training_log.json")
    assert typed.pairs.threshold == 0.5 and typed.verdict.uses_audio is None
    assert (out / "parameter_predictions/README.txt").exists()
    assert (out / "training.png").exists() and (out / "predictions.png").exists()
    with pytest.raises(ValueError, match="holds no trained decoder.*NO PAIR"):
        artifact.load_decoder(out / "decoder_model.pt")


def test_no_significant_pair_is_said_loudly(upstream, caplog):
    base, model = upstream
    p = [[0.5, 0.5], [0.5, 0.5], [None, None]]
    with caplog.at_level("INFO"):
        ds = _dataset(base, model, out="nosig", p_adjusted=p)
    assert "NO PAIR passes phase3.pair_threshold = 0.05 with p_adjusted <= 0.05" in caplog.text
    pairs = json.loads((ds / "pairs.json").read_text())
    assert pairs["status"] == "no_pairs" and pairs["significance"]["available"] is True
    assert pairs["rows"][0]["reason"] == "Phase 1 chose no pair for it"


def test_pairs_on_score_alone_only_when_asked_and_then_said(upstream, caplog):
    """phase3.require_significant_pairs: false (the demo) pairs on score, keeps each pair's
    p-value and says the pairs are not evidence."""
    base, model = upstream
    p = [[0.5, 0.5], [0.5, 0.5], [None, None]]
    with caplog.at_level("INFO"):
        ds = _dataset(base, model, out="scoreonly", p_adjusted=p, require_significant=False)
    pairs = json.loads((ds / "pairs.json").read_text())
    assert pairs["status"] == "ok" and pairs["significance"]["required"] is False
    assert all(r["p_adjusted"] == 0.5 for r in pairs["chosen"])
    assert "NOT REQUIRED" in caplog.text and "not evidence" in pairs["significance"]["note"]


def test_summary_phase3_section_reports_verdict_baselines_and_intervals():
    from delta_v2a.report.summary import _phase3_verdict

    fig = {"mean": 0.02, "low": 0.01, "high": 0.03, "n_files": 3}
    log = {
        "target": "matched",
        "audio_dependence": {"message": "u* spread across files for one description: SD 0.1"},
        "verdict": {
            "uses_audio": False,
            "message": "NO EVIDENCE THAT THE DECODER USES THE AUDIO: it does not beat text-only",
            "beats": ["no_effect"],
            "does_not_beat": ["text_lookup"],
            "text_only_baseline": "text_lookup",
            "difference_text_only_minus_decoder": {"mean": -0.01, "low": -0.02, "high": 0.001},
            "difference_shuffled_minus_decoder": {"mean": 0.0, "low": -0.01, "high": 0.01},
        },
        "test": {
            "figures": {
                n: {"param_mse": fig, "strength_error": fig, "logmel_db": fig}
                for n in ("decoder", "text_lookup", "no_effect")
            }
        },
    }
    v = _phase3_verdict(training_log(**log))
    # a FAILED verdict opens with why; the audio dependence follows
    assert v["status"] == "FAILED" and v["lines"][0].startswith("FAILED because: NO EVIDENCE")
    assert "beats: no_effect; does not beat: text_lookup" in v["lines"]
    assert "SD 0.1" in v["lines"][1]
    assert any(line.startswith("test decoder: MSE 0.02 [0.01, 0.03]") for line in v["lines"])
    ok = {**log, "verdict": {**log["verdict"], "uses_audio": True}}
    assert _phase3_verdict(training_log(**ok))["status"] == "ok"
    assert _phase3_verdict(training_log("no_pairs", message="NO PAIR"))["lines"] == ["NO PAIR"]
