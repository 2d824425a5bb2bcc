"""The Phase 3 experiment as one function (docs/methods.md §6.3-6.6): train the decoder, its
concat ablation and the text-only MLP once per training seed, choose the text-only baseline
on validation files, predict every baseline on the test files once, and decide whether the
decoder uses the audio.

:func:`run_experiment` reads and writes no file: what needs the world outside (training with
its checkpoints, the Text2FX search's CLAP, rendering the test predictions from the audio
files) is asked of a :class:`Lab` the caller supplies (the phase3 job's, in
:mod:`delta_v2a.jobs.phase3.train`), and everything measured comes back as an
:class:`Experiment`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.dependence import AudioDependence
from delta_v2a.artifacts.pairs import Pairs, PairsData
from delta_v2a.config.data_size import MIN_TEST_FILES_TO_RUN
from delta_v2a.phase3.baselines import (
    TRAINED_KINDS,
    ShuffledError,
    derangements,
    reference_predictions,
    shuffled_error,
    shuffled_files_many,
)
from delta_v2a.phase3.calibrate import calibrate_on_training
from delta_v2a.phase3.evaluate import (
    choose_text_only,
    cost_comparison,
    evaluate_test,
    per_sample_mse,
    strength_errors,
)
from delta_v2a.phase3.inference import file_mean_differences
from delta_v2a.phase3.listening import SPECTRAL_METRICS
from delta_v2a.phase3.model import model_with_state, predict
from delta_v2a.phase3.options import Architecture
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.search import ClipSearch
from delta_v2a.phase3.train import TrainData, TrainResult, TrainSettings
from delta_v2a.phase3.windows import WindowSpec
from delta_v2a.settings import Phase3Settings

log = logging.getLogger(__name__)

#: Derangements of the test files the shuffled-audio baseline averages over (all where fewer).
N_DERANGEMENTS = 200

#: Per-sample values: candidate -> metric -> (N,) over the test samples.
PerSample = dict[str, dict[str, np.ndarray]]


class ExperimentError(ValueError):
    """The data cannot answer the question (one line saying what to change)."""


@dataclasses.dataclass(frozen=True)
class StrengthCurves:
    """The strength job's curves (curves.npz): per file and audio effect, the strength at
    each grid point of u and the CLAP embedding of the clip rendered there."""

    grid: np.ndarray  # (G,)
    effects: tuple[str, ...]  # the effects' order in the second axis
    curves: np.ndarray  # (F, E, G)
    rendered: np.ndarray  # (F, E, G, D)

    def effect_columns(self, effects: Sequence[str]) -> list[int]:
        """Each sample's column in the effects axis."""
        j_of = {e: k for k, e in enumerate(self.effects)}
        return [j_of[str(e)] for e in effects]


@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    """Everything the experiment reads, checked for agreement by the job that loaded it."""

    data: TrainData
    space: ParamSpace
    #: samples.tsv with targets.tsv's columns (u_star, target_strength, unreachable, ...),
    #: one row per row of ``data``
    frame: pd.DataFrame
    curves: StrengthCurves
    texts: tuple[str, ...]  # the descriptions, in the row order of ``data.text``
    pairs: Pairs  # pairs.json, with its data set (status ok)
    windows: Mapping[str, Any]  # the window embeddings' windows (WindowSpec's fields)
    hop_s: float | None = None

    @property
    def spec(self) -> WindowSpec:
        return WindowSpec(**self.windows)

    @property
    def dataset(self) -> PairsData:
        """pairs.json's data set (templates, gate texts, split): there since a pair passed."""
        if self.pairs.data is None:
            raise ExperimentError(f"no data set to train on: {self.pairs.message}")
        return self.pairs.data


@dataclasses.dataclass(frozen=True)
class Renders:
    """The listening test (§6.5): each candidate's log-mel distances to the target's render
    (NaN where not rendered), how many samples were rendered, in how long, with which mel."""

    spectral: Mapping[str, Mapping[str, np.ndarray]]
    n_rendered: int
    seconds: float
    mel: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Lab:
    """What the experiment asks of the world outside it.

    ``train(base_arch, settings)``: the three trained kinds of one seed (name -> result);
    ``search(test)``: the Text2FX-style search on the test rows and its cost;
    ``render(test, candidates, extra, mse)``: the listening test of the designated seed's
    candidates plus ``extra`` (the other seeds'), with ``mse`` for the predictions table.
    """

    train: Callable[[Mapping[str, Any], TrainSettings], dict[str, TrainResult]]
    search: Callable[[np.ndarray], tuple[ClipSearch, dict[str, Any]]]
    render: Callable[..., Renders]
    device: Any = "cpu"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What one Phase 3 experiment measured."""

    test: np.ndarray  # the test rows of the data (held-out paraphrases included)
    base_arch: Mapping[str, Any]
    settings: TrainSettings  # the designated (first) seed's
    seed_results: Mapping[int, Mapping[str, TrainResult]]  # every seed's models
    candidates: Mapping[str, np.ndarray]  # the designated seed's and the shared predictions
    evaluation: Mapping[str, Any]  # figures, verdict, shuffled_spread (evaluate_test)
    renders: Renders
    timing: Mapping[str, Any]
    cost: Mapping[str, Any]
    calibration: Mapping[str, Any]  # the apply gate (apply_calibration)

    @property
    def results(self) -> Mapping[str, TrainResult]:
        """The designated seed's models: the model file, the figures."""
        return self.seed_results[self.settings.seed]


@dataclasses.dataclass(frozen=True)
class _Seeds:
    """Every training seed's models and test predictions (first: the designated seed)."""

    results: list[dict[str, TrainResult]]
    preds: list[dict[str, np.ndarray]]
    shuffled: list[np.ndarray]  # each seed's decoder under every derangement (K, N, P)
    validation_mse: list[dict[str, float]]
    forward: float  # the designated decoder's forward seconds per sample


def test_rows(data: TrainData) -> np.ndarray:
    """The test samples (held-out paraphrases included), from at least
    :data:`~delta_v2a.config.data_size.MIN_TEST_FILES_TO_RUN` files."""
    test = np.flatnonzero(np.isin(data.split, ["test", "heldout"]))
    if (n := len(np.unique(data.file_index[test]))) < MIN_TEST_FILES_TO_RUN:
        raise ExperimentError(
            f"the test split holds {n} audio file(s): the shuffled-audio baseline and the "
            f"intervals over test files need at least {MIN_TEST_FILES_TO_RUN}; add audio files "
            "or raise phase3.split.test"
        )
    return test


test_rows.__test__ = False  # not a pytest test, whatever its name


def base_architecture(data: TrainData, space: ParamSpace, arch: Architecture) -> dict[str, Any]:
    """What every trained kind shares: input sizes from the data, widths from config."""
    return {
        "text_dim": int(data.text.shape[1]),
        "audio_dim": int(data.audio.shape[2]),
        "n_windows": int(data.audio.shape[1]),
        "n_params": space.dim,
        **{k: getattr(arch, k) for k in ("d_model", "heads", "hidden", "dropout")},
    }


def _effect_keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["image_effect"], frame["level_word"], strict=True))


def validation_mse(inputs: TrainingInputs, text_mlp: Any, device: Any) -> dict[str, float]:
    """Validation MSE (mean over validation files) of the text-only candidates: what the
    verdict's text-only baseline is chosen on (never the test files)."""
    data = inputs.data
    train, val = (np.flatnonzero(data.split == k) for k in ("train", "val"))
    keys = _effect_keys(inputs.frame)
    ref, _ = reference_predictions(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in val], data.targets[val]
    )
    text, files = data.text[data.desc_index[val]], data.file_index[val]
    preds = {
        "text_lookup": ref["text_lookup"],
        "text_mlp": np.clip(predict(text_mlp, text, data.audio[files], device), 0, 1),
    }
    zero = np.zeros(len(val))
    return {
        k: float(file_mean_differences(per_sample_mse(v, data.targets[val]), zero, files)[1].mean())
        for k, v in preds.items()
    }


def seed_predictions(
    inputs: TrainingInputs,
    test: np.ndarray,
    results: Mapping[str, TrainResult],
    base_arch: Mapping[str, Any],
    device: Any,
    seed: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, float, dict[str, float]]:
    """One training seed's trained candidates on the test samples: the decoder, concat,
    text_mlp and the decoder on shuffled audio (the first derangement, rendered); with the
    decoder's predictions under every derangement (K, N, P), its forward time per sample and
    the text-only candidates' validation MSE. The derangements are the same for every
    training seed (``seed``: the run's)."""
    data = inputs.data
    text, files = data.text[data.desc_index[test]], data.file_index[test]
    models = {
        name: model_with_state({"kind": TRAINED_KINDS[name], **base_arch}, r.best_state, device)
        for name, r in results.items()
    }
    t0 = time.perf_counter()
    out = {"decoder": predict(models["decoder"], text, data.audio[files], device)}
    forward = (time.perf_counter() - t0) / len(test)
    for name in ("concat", "text_mlp"):
        out[name] = predict(models[name], text, data.audio[files], device)
    val = validation_mse(inputs, models["text_mlp"], device)
    # Shuffled audio over many derangements of the test files (all of them where few):
    # the first one is rendered and plotted, the verdict uses the mean error over all.
    perms = derangements(len(np.unique(files)), N_DERANGEMENTS, seed)
    shuffled = np.stack(
        [
            np.clip(predict(models["decoder"], text, data.audio[f], device), 0, 1)
            for f in shuffled_files_many(files, perms)
        ]
    )
    out["shuffled_audio"] = shuffled[0]
    out = {k: np.asarray(np.clip(v, 0, 1), dtype=np.float64) for k, v in out.items()}
    return out, shuffled, forward, val


def shared_predictions(
    inputs: TrainingInputs, test: np.ndarray, search_u: np.ndarray
) -> tuple[dict[str, np.ndarray], int]:
    """The candidates no training seed changes: text lookup, global mean, no effect, the
    oracle, the Text2FX-style search (its u per sample, ``search_u``) and curve inversion;
    with the number of test keys the text lookup never saw."""
    data, space, frame = inputs.data, inputs.space, inputs.frame
    train = np.flatnonzero(data.split == "train")
    keys = _effect_keys(frame)
    out, n_unseen = reference_predictions(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in test], data.targets[test]
    )
    effects = frame["audio_effect"].iloc[test]
    out["text2fx_search"] = np.stack(
        [space.target(e, x) for e, x in zip(effects, search_u, strict=True)]
    )
    # The ceiling for a method reading the clip's curve (§6.4): its own curve at its word.
    u_ci = frame["u_curve_inversion"].iloc[test].to_numpy(np.float64)
    out["curve_inversion"] = np.stack(
        [space.target(e, x) for e, x in zip(effects, u_ci, strict=True)]
    )
    out = {k: np.clip(np.asarray(v, dtype=np.float64), 0, 1) for k, v in out.items()}
    return out, int(n_unseen)


def per_sample_metrics(
    inputs: TrainingInputs,
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spectral: Mapping[str, Mapping[str, np.ndarray]],
    shuffled_all: np.ndarray,
) -> tuple[PerSample, ShuffledError]:
    """One seed's per-sample metrics of every candidate (§6.6); the shuffled baseline's MSE
    averaged over the derangements, with its spread."""
    data, frame, curves = inputs.data, inputs.frame, inputs.curves
    effects = frame["audio_effect"].iloc[test].to_numpy()
    strength = strength_errors(
        candidates,
        [inputs.space.axes_of(e) for e in effects],
        curves.grid,
        curves.curves[data.file_index[test], curves.effect_columns(effects)],
        frame["target_strength"].iloc[test].to_numpy(np.float64),
    )
    truth = data.targets[test]
    per_sample = {
        name: {
            "param_mse": per_sample_mse(pred, truth),
            "strength_error": strength[name],
            **{m: spectral[name][m] for m in SPECTRAL_METRICS},
        }
        for name, pred in candidates.items()
    }
    errors = np.stack([per_sample_mse(p, truth) for p in shuffled_all])  # (K, N)
    shuffled = shuffled_error(errors, data.file_index[test])
    per_sample["shuffled_audio"]["param_mse"] = shuffled.per_sample
    return per_sample, shuffled


def _log_verdict(ev: Mapping[str, Any], seeds: Sequence[int]) -> None:
    """Each seed's sign tests, the decoder's test MSE over seeds and the verdict."""
    concl = ev["verdict"]
    for r in concl["inference"]["seeds"]:
        log.info(
            "seed %d %s: %s",
            r["seed"],
            "passes" if r["passed"] else "does NOT pass",
            "; ".join(
                f"{c['name']} wins {c['wins']}/{c['n_files']}, p {c['p']:.3g}"
                + (f" (Holm {c['p_holm']:.3g})" if c["gating"] else "")
                + f", mean {c['mean']:.3g}"
                for c in r["comparisons"]
            ),
        )
    dec = ev["figures"]["test"]["decoder"]["param_mse"]
    log.info(
        "decoder test MSE over %d seeds: %.4g ± %.2g (SD over seeds; per seed %s)",
        len(seeds),
        dec["mean"],
        dec["seed_sd"] or 0.0,
        ", ".join(f"{x:.4g}" for x in dec["per_seed"]),
    )
    (log.info if concl["uses_audio"] else log.warning)("VERDICT: %s", concl["message"])
    log.info(
        "decoder beats %s; does not beat %s",
        concl["beats"] or "none",
        concl["does_not_beat"] or "none",
    )


def evaluate(
    inputs: TrainingInputs,
    test: np.ndarray,
    per_seed: Sequence[PerSample],
    shuffled: Sequence[ShuffledError],
    validation: Sequence[Mapping[str, float]],
    settings: Phase3Settings,
) -> dict[str, Any]:
    """The test figures over seeds and the verdict (every seed must pass; each seed's
    text-only baseline chosen on its validation MSE), logged with each seed's sign tests."""
    data = inputs.data
    ev = evaluate_test(
        per_seed,
        data.file_index[test],
        data.split[test] == "test",
        settings.bootstrap,
        settings.seed,
        seeds=settings.seeds,
        text_only=[choose_text_only(v) for v in validation],
        alpha=settings.alpha,
        min_test_files=settings.min_test_files,
    )
    ev["verdict"]["text_only_validation_mse"] = list(validation)
    ev["shuffled_spread"] = {
        "n_derangements": int(len(shuffled[0].per_derangement)),
        **{k: [float(getattr(x, k)) for x in shuffled] for k in ("mean", "sd", "low", "high")},
        "seeds": list(settings.seeds),
    }
    _log_verdict(ev, settings.seeds)
    return ev


def train_seeds(
    inputs: TrainingInputs,
    settings: Phase3Settings,
    lab: Lab,
    base_arch: Mapping[str, Any],
    test: np.ndarray,
) -> _Seeds:
    """Every training seed's models and their test predictions (``phase3.seeds``; the first
    is the designated one), with the designated decoder's forward time per sample."""
    results, preds, shuffled, val, forward = [], [], [], [], 0.0
    for k, s in enumerate(settings.seeds):
        log.info("training seed %d (%d of %d)", s, k + 1, len(settings.seeds))
        r = lab.train(base_arch, dataclasses.replace(settings.optimiser, seed=s))
        out, shuf, fwd, v = seed_predictions(inputs, test, r, base_arch, lab.device, settings.seed)
        results.append(r)
        preds.append(out)
        shuffled.append(shuf)
        val.append(v)
        forward = fwd if k == 0 else forward
    return _Seeds(results, preds, shuffled, val, forward)


def search_inputs(
    inputs: TrainingInputs, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the Text2FX-style search reads per test sample: its file, its audio effect, its
    description's text embedding and the embeddings of its clip at the grid points (free:
    the strength job rendered them), (N, G, D)."""
    data = inputs.data
    effects = inputs.frame["audio_effect"].iloc[test].to_numpy().astype(str)
    files = data.file_index[test]
    known = inputs.curves.rendered[files, inputs.curves.effect_columns(effects)]
    return files, effects, data.text[data.desc_index[test]], known


def search_cost(
    result: ClipSearch, budget: int, n_grid: int, seconds: float, spent: Mapping[str, float]
) -> dict[str, Any]:
    """The search's cost: calls per clip (what each search asked for) and the CLAP calls and
    seconds actually spent (``spent``: rendering and embedding)."""
    n = len(result.calls)
    return {
        "budget": int(budget),
        "grid_points_free": int(n_grid),
        "search_calls_per_clip": float(result.calls.mean()) if n else 0.0,
        "search_calls_max": int(result.calls.max()) if n else 0,
        "clap_calls_made": int(result.embedded),
        "seconds_per_sample": seconds / max(n, 1),
        "render_seconds": spent["render"],
        "embed_seconds": spent["embed"],
    }


def _designated_mse(
    truth: np.ndarray, candidates: Mapping[str, np.ndarray], shuffled: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-sample MSE of the designated seed's candidates, the shuffled baseline's as its
    mean over every derangement with their SD (for predictions.tsv)."""
    mse = {k: per_sample_mse(v, truth) for k, v in candidates.items()}
    errors = np.stack([per_sample_mse(p, truth) for p in shuffled])  # every derangement
    return mse | {"shuffled_audio": errors.mean(axis=0), "shuffled_audio_sd": errors.std(axis=0)}


def run_experiment(
    inputs: TrainingInputs,
    settings: Phase3Settings,
    lab: Lab,
    dependence: AudioDependence,
) -> Experiment:
    """Train on train files once per training seed, choose each epoch on validation files,
    report every figure from the test files once, with every baseline, as mean and spread
    over seeds, and the verdict (§6.3-6.6). ``dependence``: the strength job's
    audio_dependence.json, measured (its grid cost enters the cost comparison)."""
    data, test = inputs.data, test_rows(inputs.data)
    base_arch = base_architecture(data, inputs.space, settings.architecture)
    seeds = train_seeds(inputs, settings, lab, base_arch, test)
    search, search_timing = lab.search(test)
    shared, n_unseen = shared_predictions(inputs, test, search.u)
    timing = {"text_lookup_unseen_keys": n_unseen, "decoder_forward_seconds_per_sample":
              seeds.forward, "text2fx": search_timing,
              "shuffled_derangements": int(seeds.shuffled[0].shape[0])}  # fmt: skip
    candidates = {**seeds.preds[0], **shared}  # the designated seed: renders, predictions.tsv
    extra = {
        f"{k}@seed{s}": v
        for s, p in zip(settings.seeds[1:], seeds.preds[1:], strict=True)
        for k, v in p.items()
    }
    mse = _designated_mse(data.targets[test], candidates, seeds.shuffled[0])
    renders = lab.render(test, candidates, extra, mse)
    per_seed, shuffled = [], []
    for s, p, shuf in zip(settings.seeds, seeds.preds, seeds.shuffled, strict=True):
        own = {k: renders.spectral[k if s == settings.seeds[0] else f"{k}@seed{s}"] for k in p}
        ps, sh = per_sample_metrics(
            inputs, test, {**p, **shared}, {**renders.spectral, **own}, shuf
        )
        per_seed.append(ps)
        shuffled.append(sh)
    cost = cost_comparison(
        dependence.curve_cost, int(dependence.grid_size), inputs.spec.count, timing
    )
    return Experiment(
        test=test,
        base_arch=base_arch,
        settings=dataclasses.replace(settings.optimiser, seed=settings.seeds[0]),
        seed_results=dict(zip(settings.seeds, seeds.results, strict=True)),
        candidates=candidates,
        evaluation=evaluate(inputs, test, per_seed, shuffled, seeds.validation_mse, settings),
        renders=renders,
        timing=timing,
        cost=cost,
        calibration=calibrate_on_training(
            inputs.frame,
            inputs.dataset.gate_texts,
            list(inputs.texts),
            data.text,
            inputs.pairs.level_words,
        ),
    )
