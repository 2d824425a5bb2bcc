"""Rule ``phase3``: train the decoder, its concat ablation and the text-only MLP on the train
files, choose the epoch on validation, predict every baseline on the test files once
(docs/methods.md §6.3-6.6). The audio model is not loaded: arrays in, decoder out. Rendering
the test predictions is :mod:`.renders`, what is written is :mod:`.records`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.jobs.phase3.records import (
    TrainRun,
    calibrate_apply,
    save_model,
    training_log,
    write_figures,
)
from delta_v2a.jobs.phase3.renders import render_test
from delta_v2a.phase3.artifact import portable_model, save_decoder
from delta_v2a.phase3.baselines import (
    TRAINED_KINDS,
    derangements,
    reference_predictions,
    shuffled_error,
    shuffled_files_many,
    text2fx_search,
)
from delta_v2a.phase3.dataset import targets_for
from delta_v2a.phase3.evaluate import (
    cost_comparison,
    evaluate_test,
    per_sample_mse,
    strength_errors,
)
from delta_v2a.phase3.model import model_with_state, predict
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.train import TrainData, TrainResult, TrainSettings, train_decoder
from delta_v2a.phase3.windows import WindowSpec
from delta_v2a.settings import Phase3Settings
from delta_v2a.storage import EmbeddingTable, load_npz, read_json, write_json

#: Derangements of the test files the shuffled-audio baseline averages over (all where fewer).
N_DERANGEMENTS = 200


def _write_untrained(
    pairs: Mapping[str, Any],
    model_out: str,
    log_out: str,
    predictions_dir: str,
    figures: Sequence[str],
) -> None:
    """No pair: every declared output is still written, each saying why (loudly)."""
    from delta_v2a import plots

    message = pairs["message"]
    meta = pairs.get("meta", {})
    save_decoder(
        model_out,
        {"status": "no_pairs", "message": message, "pairs": [], "threshold": pairs["threshold"]},
    )
    write_json(
        log_out,
        {
            "meta": meta,
            "status": "no_pairs",
            "message": message,
            "verdict": {"uses_audio": None, "message": message},
            "pairs": {k: pairs[k] for k in ("threshold", "significance", "rows", "chosen")},
        },
    )
    out = Path(predictions_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text(message + "\n", encoding="utf-8")
    for fig in figures:
        plots.message_figure(fig, "Phase 3: no decoder trained", message, meta.get("note", ""))
    log.warning("%s", message)


def _load_training_data(
    windows: str, pairs: str, samples: str, texts: str, targets: str, curves: str
) -> dict[str, Any]:
    """Everything training and evaluation read, checked for agreement between jobs."""
    pairs_doc = read_json(pairs)
    space = ParamSpace.from_dict(pairs_doc["paramspace"])
    table = EmbeddingTable.load(windows)
    frame = pd.read_csv(samples, sep="\t", keep_default_na=False)
    frame["held_out"] = frame["held_out"].astype(str).str.lower() == "true"
    tgt = pd.read_csv(targets, sep="\t", keep_default_na=False)
    if not np.array_equal(tgt["sample"].to_numpy(), frame["sample"].to_numpy()):
        raise PipelineError(f"{targets} and {samples} list different samples: rerun")
    for col in ("u_star", "target_strength", "unreachable", "image_strength", "u_curve_inversion"):
        frame[col] = (
            tgt[col].to_numpy()
            if col != "unreachable"
            else tgt[col].astype(str).str.lower() == "true"
        )
    text_arrays, text_meta = load_npz(texts, ("texts", "embeddings"))
    curve_arrays, _ = load_npz(curves, ("grid", "paths", "effects", "curves", "rendered"))
    text_rows = {str(t): i for i, t in enumerate(text_arrays["texts"])}
    file_rows = {str(p): i for i, p in enumerate(table.paths)}
    text_model = text_meta.get("model", {}).get("name_or_path")
    if text_model != table.meta["model"]["name_or_path"]:
        raise PipelineError(
            f"text embeddings come from {text_model!r}, window embeddings from "
            f"{table.meta['model']['name_or_path']!r}: both must be the same CLAP; rerun"
        )
    missing = sorted(set(frame["path"]) - set(file_rows))
    if missing or [str(p) for p in curve_arrays["paths"]] != [str(p) for p in table.paths]:
        raise PipelineError(
            "sample files, window embeddings and strength curves disagree on the file list "
            "(the manifest changed between jobs): rerun"
        )
    data = TrainData(
        text=text_arrays["embeddings"],
        audio=table.embeddings,
        desc_index=frame["description"].map(text_rows).to_numpy(np.int64),
        file_index=frame["path"].map(file_rows).to_numpy(np.int64),
        targets=targets_for(frame, space, "u_star"),
        split=np.where(frame["held_out"], "heldout", frame["split"]).astype(str),
    )
    return {
        "pairs": pairs_doc,
        "space": space,
        "table": table,
        "frame": frame,
        "data": data,
        "texts": [str(t) for t in text_arrays["texts"]],
        "curves": curve_arrays,
    }


def _train_models(
    data: TrainData,
    base_arch: Mapping[str, Any],
    settings: TrainSettings,
    checkpoint_dir: str,
    checkpoint_interval_s: float,
    dev: Any,
    log_every: int,
) -> dict[str, TrainResult]:
    """The decoder, the concat ablation and the text-only MLP; every epoch goes to the log
    file, every ``log_every``-th also to the console."""
    import logging

    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    results = {}
    for name, kind in TRAINED_KINDS.items():

        def to_file(rec: Mapping[str, float], kind: str = kind) -> None:
            if rec["epoch"] % max(1, log_every) == 0 or rec["epoch"] == settings.epochs:
                return  # train_decoder logged it everywhere
            msg = (
                f"{kind} epoch {rec['epoch']}/{settings.epochs}: train MSE "
                f"{rec['train_loss']:.5f}, val MSE {rec['val_loss']:.5f}, {rec['seconds']:.2f} s"
            )
            record = log.makeRecord(log.name, logging.INFO, __file__, 0, msg, (), None)
            for h in files:
                h.handle(record)

        r = results[name] = train_decoder(
            {"kind": kind, **base_arch},
            data,
            settings,
            checkpoint=Path(checkpoint_dir) / f"{kind}.pt",
            checkpoint_interval_s=checkpoint_interval_s,
            device=dev,
            on_epoch=to_file,
            log_every=log_every,
        )
        log.info(
            "%s: best epoch %d on validation (val MSE %.5f); %d epochs in %.1f s",
            name,
            r.best_epoch,
            r.best_val_loss,
            len(r.history),
            r.train_seconds,
        )
    return results


def _test_predictions(
    ctx: Mapping[str, Any],
    results: Mapping[str, TrainResult],
    base_arch: Mapping[str, Any],
    dev: Any,
    seed: int,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Every baseline's (N_test, P) prediction on the test samples (held-out paraphrases
    included), and the decoder's forward time per sample."""
    data, space, frame, curves = ctx["data"], ctx["space"], ctx["frame"], ctx["curves"]
    test = np.flatnonzero(np.isin(data.split, ["test", "heldout"]))
    train = np.flatnonzero(data.split == "train")
    text, files = data.text[data.desc_index[test]], data.file_index[test]
    if len(np.unique(files)) < 2:
        raise PipelineError(
            f"the test split holds {len(np.unique(files))} audio file: the shuffled-audio "
            "baseline and the intervals over test files need at least 2; add audio files or "
            "raise phase3.split.test"
        )
    models = {
        name: model_with_state({"kind": TRAINED_KINDS[name], **base_arch}, r.best_state, dev)
        for name, r in results.items()
    }
    t0 = time.perf_counter()
    out = {"decoder": predict(models["decoder"], text, data.audio[files], dev)}
    timing = {"decoder_forward_seconds_per_sample": (time.perf_counter() - t0) / len(test)}
    for name in ("concat", "text_mlp"):
        out[name] = predict(models[name], text, data.audio[files], dev)
    # Shuffled audio over many derangements of the test files (all of them where few):
    # the first one is rendered and plotted, the verdict uses the mean error over all.
    perms = derangements(len(np.unique(files)), N_DERANGEMENTS, seed)
    shuffled = [
        np.clip(predict(models["decoder"], text, data.audio[f], dev), 0, 1)
        for f in shuffled_files_many(files, perms)
    ]
    out["shuffled_audio"] = shuffled[0]
    out = {k: np.clip(v, 0, 1) for k, v in out.items()}
    timing["shuffled_derangements"] = len(shuffled)
    ctx["shuffled_all"] = np.stack(shuffled)
    keys = list(zip(frame["image_effect"], frame["level_word"], strict=True))
    reference, n_unseen = reference_predictions(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in test], data.targets[test]
    )
    out.update(reference)
    effects = frame["audio_effect"].iloc[test]
    j = effects.map({str(e): k for k, e in enumerate(curves["effects"])}).to_numpy()
    t1 = time.perf_counter()
    u = text2fx_search(curves["grid"], curves["rendered"][files, j], text)
    timing["text2fx_argmax_seconds_per_sample"] = (time.perf_counter() - t1) / len(test)
    out["text2fx_search"] = np.stack([space.target(e, x) for e, x in zip(effects, u, strict=True)])
    # The ceiling for a method reading the clip's curve (§6.4): its own curve at its word.
    u_ci = frame["u_curve_inversion"].iloc[test].to_numpy(np.float64)
    out["curve_inversion"] = np.stack(
        [space.target(e, x) for e, x in zip(effects, u_ci, strict=True)]
    )
    timing["text_lookup_unseen_keys"] = int(n_unseen)
    return test, {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}, timing


def _evaluate(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spectral: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Per-sample metrics of every baseline, then the test figures and the verdict."""
    data, space, frame, curves = ctx["data"], ctx["space"], ctx["frame"], ctx["curves"]
    effects = frame["audio_effect"].iloc[test].to_numpy()
    j_of = {str(e): k for k, e in enumerate(curves["effects"])}
    strength = strength_errors(
        candidates,
        [space.axes_of(e) for e in effects],
        curves["grid"],
        curves["curves"][data.file_index[test], [j_of[e] for e in effects]],
        frame["target_strength"].iloc[test].to_numpy(np.float64),
    )
    truth = data.targets[test]
    per_sample = {
        name: {
            "param_mse": per_sample_mse(pred, truth),
            "strength_error": strength[name],
            "logmel_db": spectral[name],
        }
        for name, pred in candidates.items()
    }
    errors = np.stack([per_sample_mse(p, truth) for p in ctx["shuffled_all"]])  # (K, N)
    shuffled = shuffled_error(errors, data.file_index[test])
    per_sample["shuffled_audio"]["param_mse"] = shuffled.per_sample
    ev = evaluate_test(
        per_sample,
        data.file_index[test],
        data.split[test] == "test",
        n_boot,
        seed,
        alpha=ctx["settings"].alpha,
        min_test_files=ctx["settings"].min_test_files,
    )
    ev["shuffled_spread"] = {
        "n_derangements": int(len(errors)),
        "mean": shuffled.mean,
        "sd": shuffled.sd,
        "low": shuffled.low,
        "high": shuffled.high,
    }
    concl = ev["verdict"]
    (log.info if concl["uses_audio"] else log.warning)("VERDICT: %s", concl["message"])
    log.info(
        "decoder beats %s; does not beat %s",
        concl["beats"] or "none",
        concl["does_not_beat"] or "none",
    )
    return ev


def run_train(*, inputs: Paths, outputs: Paths, settings: Phase3Settings, threads: int) -> None:
    """Train on train files, choose the epoch on validation files, report every figure from
    the test files once, with every baseline (sections 6.3-6.6); the model file also carries
    what ``delta-v2a transfer`` needs (docs/methods.md §7)."""
    st = settings
    seed, validation = st.seed, dataclasses.asdict(st.validation)
    windows, samples, pairs, texts = inputs.windows, inputs.samples, inputs.pairs, inputs.texts
    targets, curves, dependence = inputs.targets, inputs.curves, inputs.dependence
    model_out, log_out, predictions_dir = outputs.model, outputs.log, outputs.predictions
    training_figure, predictions_figure = outputs.training, outputs.scatter
    # What `delta-v2a transfer` needs, when the rule declares it (the workflow's does).
    names = ("image_store", "audio_store", "sensitivity", "labels")
    transfer_inputs = {k: inputs[k] for k in names} if set(names) <= set(inputs.names()) else None
    import torch

    from delta_v2a.models import resolve_device

    torch.set_num_threads(max(1, threads))
    pairs_doc = read_json(pairs)
    if pairs_doc["status"] != "ok":
        figures = [training_figure, predictions_figure]
        _write_untrained(pairs_doc, model_out, log_out, predictions_dir, figures)
        return
    dev = resolve_device(st.device)
    ctx = _load_training_data(windows, pairs, samples, texts, targets, curves)
    ctx["settings"] = st
    settings = TrainSettings(**dataclasses.asdict(st.optimiser), seed=seed)
    base_arch = _base_arch(ctx["data"], ctx["space"], dataclasses.asdict(st.architecture))
    dep = _announce(ctx["data"], settings, dev, dependence)
    results = _train_models(
        ctx["data"],
        base_arch,
        settings,
        st.checkpoint_dir,
        st.checkpoint_interval_s,
        dev,
        st.log_every,
    )
    test, candidates, timing = _test_predictions(ctx, results, base_arch, dev, seed)
    spec = WindowSpec(**ctx["table"].meta["windows"])
    preroll = int(round(st.preroll_s * spec.sample_rate))
    renders = render_test(ctx, test, candidates, spec, preroll, validation, predictions_dir, seed)
    run = TrainRun(
        results=results,
        base_arch=base_arch,
        settings=settings,
        dependence=dep,
        evaluation=_evaluate(ctx, test, candidates, renders["spectral"], st.bootstrap, seed),
        renders=renders,
        cost=cost_comparison(dep["curve_cost"], int(dep["grid_size"]), spec.count, timing),
        timing=timing,
        calibration=calibrate_apply(ctx, ctx["data"].text),
        target=st.target,
        device=str(dev),
        preroll=preroll,
        transfer=_transfer_entry(transfer_inputs, pairs, model_out, st.u_grid, seed),
    )
    save_model(model_out, ctx, run)
    write_figures(ctx, test, run, candidates, training_figure, predictions_figure)
    write_json(log_out, training_log(ctx, run))


def _announce(data: TrainData, settings: TrainSettings, dev: Any, dependence: str) -> dict:
    """Log what is about to be trained, and the audio-dependence figure measured before it
    (a warning when no decoder can beat text-only on this data); returns that figure."""
    counts = {k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")}
    log.info(
        "training on %s: samples %s, %d epochs, batch %d, lr %g",
        dev,
        counts,
        settings.epochs,
        settings.batch_size,
        settings.lr,
    )
    dep = read_json(dependence)
    (log.info if dep["can_matter"] else log.warning)("audio dependence: %s", dep["message"])
    return dep


def _transfer_entry(
    inputs: Mapping[str, str] | None, pairs: str, model_out: str, u_grid: int, seed: int
) -> dict[str, Any] | None:
    """What ``delta-v2a transfer`` needs in the model file (docs/methods.md §7), with the
    image model's path portable like the CLAP's; None when the rule passes no inputs."""
    if not inputs:
        return None
    from delta_v2a.jobs.transfer import transfer_payload_from_results

    entry = transfer_payload_from_results(
        inputs["image_store"],
        inputs["sensitivity"],
        inputs["labels"],
        pairs,
        audio_store=inputs["audio_store"],
        u_grid=u_grid,
        seed=seed,
    )
    entry["image_model"] = portable_model(entry["image_model"], model_out)
    return entry


def _base_arch(data: TrainData, space: ParamSpace, architecture: Mapping[str, Any]) -> dict:
    """What every trained kind shares: input sizes from the data, widths from config."""
    return {
        "text_dim": int(data.text.shape[1]),
        "audio_dim": int(data.audio.shape[2]),
        "n_windows": int(data.audio.shape[1]),
        "n_params": space.dim,
        **{k: architecture[k] for k in ("d_model", "heads", "hidden", "dropout")},
    }
