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
from delta_v2a.jobs.phase3.renders import SPECTRAL_METRICS, render_test
from delta_v2a.jobs.phase3.text2fx import text2fx_test
from delta_v2a.phase3.artifact import portable_model, save_decoder
from delta_v2a.phase3.baselines import (
    TRAINED_KINDS,
    derangements,
    reference_predictions,
    shuffled_error,
    shuffled_files_many,
)
from delta_v2a.phase3.dataset import targets_for
from delta_v2a.phase3.evaluate import (
    choose_text_only,
    cost_comparison,
    evaluate_test,
    per_sample_mse,
    strength_errors,
)
from delta_v2a.phase3.inference import file_mean_differences
from delta_v2a.phase3.model import model_with_state, predict
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.train import TrainData, TrainResult, TrainSettings, train_decoder
from delta_v2a.phase3.windows import WindowSpec
from delta_v2a.settings import Phase3Settings
from delta_v2a.storage import NAMES, EmbeddingTable, load_npz, read_json, write_json

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
    frame = pd.read_csv(samples, sep="\t", keep_default_na=False, encoding_errors=NAMES)
    frame["held_out"] = frame["held_out"].astype(str).str.lower() == "true"
    tgt = pd.read_csv(targets, sep="\t", keep_default_na=False, encoding_errors=NAMES)
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
    """The decoder, the concat ablation and the text-only MLP of one training seed
    (``settings.seed``, its own checkpoints); every epoch goes to the log file, every
    ``log_every``-th also to the console."""
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
            checkpoint=Path(checkpoint_dir) / f"{kind}_seed{settings.seed}.pt",
            checkpoint_interval_s=checkpoint_interval_s,
            device=dev,
            on_epoch=to_file,
            log_every=log_every,
        )
        log.info(
            "%s (seed %d): best epoch %d on validation (val MSE %.5f); %d epochs in %.1f s",
            name,
            settings.seed,
            r.best_epoch,
            r.best_val_loss,
            len(r.history),
            r.train_seconds,
        )
    return results


def _test_rows(data: TrainData) -> np.ndarray:
    """The test samples (held-out paraphrases included); at least 2 files are needed."""
    test = np.flatnonzero(np.isin(data.split, ["test", "heldout"]))
    if len(np.unique(data.file_index[test])) < 2:
        raise PipelineError(
            f"the test split holds {len(np.unique(data.file_index[test]))} audio file: the "
            "shuffled-audio baseline and the intervals over test files need at least 2; add "
            "audio files or raise phase3.split.test"
        )
    return test


def _seed_predictions(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    results: Mapping[str, TrainResult],
    base_arch: Mapping[str, Any],
    dev: Any,
    seed: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """One training seed's trained candidates on the test samples: the decoder, concat,
    text_mlp and the decoder on shuffled audio (the first derangement, rendered); with the
    decoder's predictions under every derangement (K, N, P) and its forward time per sample.
    The derangements are the same for every training seed (``seed``: the run's)."""
    data = ctx["data"]
    text, files = data.text[data.desc_index[test]], data.file_index[test]
    models = {
        name: model_with_state({"kind": TRAINED_KINDS[name], **base_arch}, r.best_state, dev)
        for name, r in results.items()
    }
    t0 = time.perf_counter()
    out = {"decoder": predict(models["decoder"], text, data.audio[files], dev)}
    forward = (time.perf_counter() - t0) / len(test)
    for name in ("concat", "text_mlp"):
        out[name] = predict(models[name], text, data.audio[files], dev)
    ctx["validation_mse"].append(_validation_mse(ctx, models["text_mlp"], dev))
    # Shuffled audio over many derangements of the test files (all of them where few):
    # the first one is rendered and plotted, the verdict uses the mean error over all.
    perms = derangements(len(np.unique(files)), N_DERANGEMENTS, seed)
    shuffled = np.stack(
        [
            np.clip(predict(models["decoder"], text, data.audio[f], dev), 0, 1)
            for f in shuffled_files_many(files, perms)
        ]
    )
    out["shuffled_audio"] = shuffled[0]
    out = {k: np.asarray(np.clip(v, 0, 1), dtype=np.float64) for k, v in out.items()}
    return out, shuffled, forward


def _validation_mse(ctx: Mapping[str, Any], text_mlp: Any, dev: Any) -> dict[str, float]:
    """Validation MSE (mean over validation files) of the text-only candidates: what the
    verdict's text-only baseline is chosen on (never the test files)."""
    data, frame = ctx["data"], ctx["frame"]
    train, val = (np.flatnonzero(data.split == k) for k in ("train", "val"))
    keys = list(zip(frame["image_effect"], frame["level_word"], strict=True))
    ref, _ = reference_predictions(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in val], data.targets[val]
    )
    text, files = data.text[data.desc_index[val]], data.file_index[val]
    preds = {
        "text_lookup": ref["text_lookup"],
        "text_mlp": np.clip(predict(text_mlp, text, data.audio[files], dev), 0, 1),
    }
    zero = np.zeros(len(val))
    return {
        k: float(file_mean_differences(per_sample_mse(v, data.targets[val]), zero, files)[1].mean())
        for k, v in preds.items()
    }


def _shared_predictions(
    ctx: Mapping[str, Any], test: np.ndarray, search: Any
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The candidates no training seed changes: text lookup, global mean, no effect, the
    oracle, the Text2FX-style search (its u per sample, ``search``) and curve inversion."""
    data, space, frame = ctx["data"], ctx["space"], ctx["frame"]
    train = np.flatnonzero(data.split == "train")
    keys = list(zip(frame["image_effect"], frame["level_word"], strict=True))
    out, n_unseen = reference_predictions(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in test], data.targets[test]
    )
    effects = frame["audio_effect"].iloc[test]
    out["text2fx_search"] = np.stack(
        [space.target(e, x) for e, x in zip(effects, search.u, strict=True)]
    )
    # The ceiling for a method reading the clip's curve (§6.4): its own curve at its word.
    u_ci = frame["u_curve_inversion"].iloc[test].to_numpy(np.float64)
    out["curve_inversion"] = np.stack(
        [space.target(e, x) for e, x in zip(effects, u_ci, strict=True)]
    )
    out = {k: np.clip(np.asarray(v, dtype=np.float64), 0, 1) for k, v in out.items()}
    return out, {"text_lookup_unseen_keys": int(n_unseen)}


def _per_sample(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spectral: Mapping[str, Mapping[str, np.ndarray]],
    shuffled_all: np.ndarray,
) -> tuple[dict[str, dict[str, np.ndarray]], Any]:
    """One seed's per-sample metrics of every candidate (§6.6); the shuffled baseline's MSE
    averaged over the derangements, with its spread."""
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
            **{m: spectral[name][m] for m in SPECTRAL_METRICS},
        }
        for name, pred in candidates.items()
    }
    errors = np.stack([per_sample_mse(p, truth) for p in shuffled_all])  # (K, N)
    shuffled = shuffled_error(errors, data.file_index[test])
    per_sample["shuffled_audio"]["param_mse"] = shuffled.per_sample
    return per_sample, shuffled


def _evaluate(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    per_seed: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
    shuffled: Sequence[Any],
    seeds: Sequence[int],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """The test figures over seeds and the verdict (every seed must pass), logged with each
    seed's sign-test p-values."""
    data, st = ctx["data"], ctx["settings"]
    ev = evaluate_test(
        per_seed,
        data.file_index[test],
        data.split[test] == "test",
        n_boot,
        seed,
        seeds=seeds,
        text_only=[choose_text_only(v) for v in ctx["validation_mse"]],
        alpha=st.alpha,
        min_test_files=st.min_test_files,
    )
    ev["verdict"]["text_only_validation_mse"] = ctx["validation_mse"]
    ev["shuffled_spread"] = {
        "n_derangements": int(len(shuffled[0].per_derangement)),
        **{k: [float(getattr(x, k)) for x in shuffled] for k in ("mean", "sd", "low", "high")},
        "seeds": list(seeds),
    }
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
    return ev


def _train_seeds(
    ctx: Mapping[str, Any], base_arch: Mapping[str, Any], dev: Any, test: np.ndarray
) -> tuple[list[dict[str, TrainResult]], list[dict[str, np.ndarray]], list[np.ndarray], float]:
    """Every training seed's models and their test predictions (``phase3.seeds``; the first
    is the designated one), with the designated decoder's forward time per sample."""
    st = ctx["settings"]
    results, preds, shuffled, forward = [], [], [], 0.0
    ctx["validation_mse"] = []
    for k, s in enumerate(st.seeds):
        log.info("training seed %d (%d of %d)", s, k + 1, len(st.seeds))
        settings = dataclasses.replace(st.optimiser, seed=s)
        r = _train_models(
            ctx["data"],
            base_arch,
            settings,
            st.checkpoint_dir,
            st.checkpoint_interval_s,
            dev,
            st.log_every,
        )
        out, shuf, fwd = _seed_predictions(ctx, test, r, base_arch, dev, st.seed)
        results.append(r)
        preds.append(out)
        shuffled.append(shuf)
        forward = fwd if k == 0 else forward
    return results, preds, shuffled, forward


def run_train(*, inputs: Paths, outputs: Paths, settings: Phase3Settings, threads: int) -> None:
    """Train on train files, once per training seed, choose each epoch on validation files,
    report every figure from the test files once, with every baseline, as mean and spread
    over seeds (sections 6.3-6.6); the model file carries the designated (first) seed's
    decoder and what ``delta-v2a transfer`` needs (docs/methods.md §7)."""
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
    base_arch = _base_arch(ctx["data"], ctx["space"], dataclasses.asdict(st.architecture))
    first = dataclasses.replace(st.optimiser, seed=st.seeds[0])
    dep = _announce(ctx["data"], first, dev, dependence, st.seeds)
    test = _test_rows(ctx["data"])
    results, preds, shuffled_all, forward = _train_seeds(ctx, base_arch, dev, test)
    search, search_cost = text2fx_test(ctx, test, st, threads)
    shared, timing = _shared_predictions(ctx, test, search)
    timing |= {"decoder_forward_seconds_per_sample": forward, "text2fx": search_cost}
    timing["shuffled_derangements"] = int(shuffled_all[0].shape[0])
    candidates = {**preds[0], **shared}  # the designated seed: renders, predictions.tsv
    extra = {
        f"{k}@seed{s}": v
        for s, p in zip(st.seeds[1:], preds[1:], strict=True)
        for k, v in p.items()
    }
    spec = WindowSpec(**ctx["table"].meta["windows"])
    preroll = int(round(st.preroll_s * spec.sample_rate))
    truth = ctx["data"].targets[test]
    mse = {k: per_sample_mse(v, truth) for k, v in candidates.items()}
    errors = np.stack([per_sample_mse(p, truth) for p in shuffled_all[0]])  # every derangement
    mse |= {"shuffled_audio": errors.mean(axis=0), "shuffled_audio_sd": errors.std(axis=0)}
    renders = render_test(
        ctx, test, candidates, spec, preroll, validation, predictions_dir, seed, extra, mse
    )
    spectral = renders["spectral"]
    per_seed, shuffled = [], []
    for s, p, shuf in zip(st.seeds, preds, shuffled_all, strict=True):
        own = {k: spectral[k if s == st.seeds[0] else f"{k}@seed{s}"] for k in p}
        ps, sh = _per_sample(ctx, test, {**p, **shared}, {**spectral, **own}, shuf)
        per_seed.append(ps)
        shuffled.append(sh)
    run = TrainRun(
        results=results[0],
        base_arch=base_arch,
        settings=first,
        dependence=dep,
        evaluation=_evaluate(ctx, test, per_seed, shuffled, st.seeds, st.bootstrap, seed),
        renders=renders,
        cost=cost_comparison(dep["curve_cost"], int(dep["grid_size"]), spec.count, timing),
        timing=timing,
        calibration=calibrate_apply(ctx, ctx["data"].text),
        target=st.target,
        device=str(dev),
        preroll=preroll,
        transfer=_transfer_entry(transfer_inputs, pairs, model_out, st.u_grid, seed),
        seed_results=dict(zip(st.seeds, results, strict=True)),
    )
    save_model(model_out, ctx, run)
    write_figures(ctx, test, run, candidates, training_figure, predictions_figure)
    write_json(log_out, training_log(ctx, run))


def _announce(
    data: TrainData, settings: TrainSettings, dev: Any, dependence: str, seeds: Sequence[int]
) -> dict:
    """Log what is about to be trained, and the audio-dependence figure measured before it
    (a warning when no decoder can beat text-only on this data); returns that figure."""
    counts = {k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")}
    log.info(
        "training on %s: samples %s, %d epochs, batch %d, lr %g, seeds %s (the first is the "
        "designated one: model file, renders, predictions)",
        dev,
        counts,
        settings.epochs,
        settings.batch_size,
        settings.lr,
        list(seeds),
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
    from delta_v2a.transfer.payload import transfer_payload_from_results

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
