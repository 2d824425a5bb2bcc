"""Rule ``phase3``: read what the experiment needs, run it
(:func:`delta_v2a.phase3.experiment.run_experiment`: the decoder, its concat ablation and the
text-only MLP per training seed, every baseline on the test files once; docs/methods.md
§6.3-6.6), write its records (:mod:`delta_v2a.phase3.records`). What the experiment asks of
the world outside is here: training with checkpoints, the Text2FX search on the CLAP, the
listening test's audio and files (:class:`~delta_v2a.phase3.experiment.Lab`)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.dependence import AudioDependence
from delta_v2a.artifacts.pairs import Pairs
from delta_v2a.artifacts.training_log import PairsChoice, TrainingLog
from delta_v2a.jobs.common import Paths, PipelineError, load_embedder_for_job, log
from delta_v2a.phase3.artifact import portable_model, save_decoder
from delta_v2a.phase3.baselines import TRAINED_KINDS
from delta_v2a.phase3.dataset import targets_for
from delta_v2a.phase3.experiment import (
    Experiment,
    ExperimentError,
    Lab,
    Renders,
    StrengthCurves,
    TrainingInputs,
    run_experiment,
    search_cost,
    search_inputs,
)
from delta_v2a.phase3.listening import (
    SPECTRAL_METRICS,
    FileRenders,
    example_label,
    predictions_table,
)
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.records import RunFacts, decoder_payload, training_log
from delta_v2a.phase3.search import ClipSearch, search_clips
from delta_v2a.phase3.spectral import example_order, rendered_subset
from delta_v2a.phase3.strength import render_clip
from delta_v2a.phase3.train import TrainData, TrainResult, TrainSettings, train_decoder
from delta_v2a.settings import Phase3Settings
from delta_v2a.storage import NAMES, EmbeddingTable, atomic_path, load_npz
from delta_v2a.transfer.types import TransferPayload

#: The columns of targets.tsv the experiment reads beside samples.tsv.
TARGET_COLUMNS = ("u_star", "target_strength", "unreachable", "image_strength", "u_curve_inversion")


def _write_untrained(pairs: Pairs, outputs: Paths) -> None:
    """No pair: every declared output is still written, each saying why (loudly)."""
    from delta_v2a import plots

    message, meta = pairs.message, pairs.meta
    save_decoder(
        outputs.model,
        {"status": "no_pairs", "message": message, "pairs": [], "threshold": pairs.threshold},
    )
    TrainingLog.untrained(message, PairsChoice.of(pairs), meta).write(outputs.log)
    out = Path(outputs.predictions)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text(message + "\n", encoding="utf-8")
    for fig in (outputs.training, outputs.scatter):
        plots.message_figure(fig, "Phase 3: no decoder trained", message, meta.get("note", ""))
    log.warning("%s", message)


def _read_samples(samples: str, targets: str) -> pd.DataFrame:
    """samples.tsv with targets.tsv's columns, checked to list the same samples."""
    frame = pd.read_csv(samples, sep="\t", keep_default_na=False, encoding_errors=NAMES)
    frame["held_out"] = frame["held_out"].astype(str).str.lower() == "true"
    tgt = pd.read_csv(targets, sep="\t", keep_default_na=False, encoding_errors=NAMES)
    if not np.array_equal(tgt["sample"].to_numpy(), frame["sample"].to_numpy()):
        raise PipelineError(f"{targets} and {samples} list different samples: rerun")
    for col in TARGET_COLUMNS:
        frame[col] = (
            tgt[col].to_numpy()
            if col != "unreachable"
            else tgt[col].astype(str).str.lower() == "true"
        )
    return frame


def _load_training_data(inputs: Paths, pairs: Pairs) -> tuple[TrainingInputs, EmbeddingTable]:
    """Everything training and evaluation read (``pairs``: pairs.json, status ok), checked
    for agreement between jobs."""
    space, table = pairs.data.space(), EmbeddingTable.load(inputs.windows)
    frame = _read_samples(inputs.samples, inputs.targets)
    text_arrays, text_meta = load_npz(inputs.texts, ("texts", "embeddings"))
    curves, _ = load_npz(inputs.curves, ("grid", "paths", "effects", "curves", "rendered"))
    text_rows = {str(t): i for i, t in enumerate(text_arrays["texts"])}
    file_rows = {str(p): i for i, p in enumerate(table.paths)}
    text_model = text_meta.get("model", {}).get("name_or_path")
    audio_model = table.meta["model"]["name_or_path"]
    if text_model != audio_model:
        raise PipelineError(
            f"text embeddings come from {text_model!r}, window embeddings from "
            f"{audio_model!r}: both must be the same CLAP; rerun"
        )
    missing = sorted(set(frame["path"]) - set(file_rows))
    if missing or [str(p) for p in curves["paths"]] != [str(p) for p in table.paths]:
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
    strength = StrengthCurves(
        curves["grid"], tuple(str(e) for e in curves["effects"]), curves["curves"],
        curves["rendered"],
    )  # fmt: skip
    texts = tuple(str(t) for t in text_arrays["texts"])
    windows = dict(table.meta["windows"])
    loaded = TrainingInputs(data, space, frame, strength, texts, pairs, windows,
                            table.meta.get("hop_s"))  # fmt: skip
    return loaded, table


def _train_models(
    data: TrainData,
    st: Phase3Settings,
    dev: Any,
    base_arch: Mapping[str, Any],
    settings: TrainSettings,
) -> dict[str, TrainResult]:
    """The decoder, the concat ablation and the text-only MLP of one training seed
    (``settings.seed``, its own checkpoints); every epoch goes to the log file, every
    ``log_every``-th also to the console."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    results = {}
    for name, kind in TRAINED_KINDS.items():

        def to_file(rec: Mapping[str, float], kind: str = kind) -> None:
            if rec["epoch"] % max(1, st.log_every) == 0 or rec["epoch"] == settings.epochs:
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
            checkpoint=Path(st.checkpoint_dir) / f"{kind}_seed{settings.seed}.pt",
            checkpoint_interval_s=st.checkpoint_interval_s,
            device=dev,
            on_epoch=to_file,
            log_every=st.log_every,
        )
        log.info(
            "%s (seed %d): best epoch %d on validation (val MSE %.5f); %d epochs in %.1f s",
            name, settings.seed, r.best_epoch, r.best_val_loss, len(r.history), r.train_seconds,
        )  # fmt: skip
    return results


def _clip_embedder(table: EmbeddingTable, space: ParamSpace, st: Phase3Settings, threads: int):
    """``embed(file, effect, u)`` on the job's CLAP, holding one file's audio at a time, and
    a dict of the seconds spent rendering and embedding. Each clip is rendered exactly as
    the strength curves were (``render_clip``)."""
    from delta_v2a.media import load_audio

    embedder = load_embedder_for_job(st.model, threads)
    if embedder.info.name_or_path != table.meta["model"]["name_or_path"]:
        raise PipelineError(
            f"models.audio is {embedder.info.name_or_path!r} but the window embeddings come "
            f"from {table.meta['model']['name_or_path']!r}: rerun"
        )
    sr, window = embedder.sampling_rate, embedder.window_samples
    preroll = int(round(st.preroll_s * sr))
    paths = [str(p) for p in table.paths]
    held: dict[int, np.ndarray] = {}
    spent = {"render": 0.0, "embed": 0.0}

    def embed(f: int, effect: str, u: float) -> np.ndarray:
        if f not in held:
            held.clear()
            held[f] = load_audio(paths[f], sr, window, preroll)
        t0 = time.perf_counter()
        clip = render_clip(held[f], sr, space, effect, u, preroll)
        t1 = time.perf_counter()
        out = embedder.embed_audio([clip], batch_size=1)[0]
        spent["render"] += t1 - t0
        spent["embed"] += time.perf_counter() - t1
        return out

    return embed, spent


def _text2fx(
    inputs: TrainingInputs,
    table: EmbeddingTable,
    st: Phase3Settings,
    threads: int,
    test: np.ndarray,
) -> tuple[ClipSearch, dict[str, Any]]:
    """The Text2FX-style search on every test sample (held-out paraphrases included; §6.4):
    the CLAP loads once, only when the budget asks for renders; with its cost."""
    files, effects, text, known = search_inputs(inputs, test)
    budget, grid = st.text2fx_budget, inputs.curves.grid
    t0 = time.perf_counter()
    if budget > 0:
        embed, spent = _clip_embedder(table, inputs.space, st, threads)
    else:  # phase3.text2fx_budget: 0 asks for the grid argmax: nothing to render
        embed, spent = None, {"render": 0.0, "embed": 0.0}
    result = search_clips(embed, files, effects, text, grid, known, budget=budget)
    cost = search_cost(result, budget, len(grid), time.perf_counter() - t0, spent)
    log.info(
        "Text2FX-style search (golden-section, budget %d CLAP calls per clip, the %d grid "
        "points free): %.1f calls per clip, %d distinct renders embedded, %.3f s per sample",
        budget,
        cost["grid_points_free"],
        cost["search_calls_per_clip"],
        cost["clap_calls_made"],
        cost["seconds_per_sample"],
    )
    return result, cost


def _write_examples(ex_dir: Path, label: str, clips: Mapping[str, np.ndarray], sr: int) -> None:
    import soundfile as sf

    for kind, y in clips.items():
        with atomic_path(ex_dir / f"{label}_{kind}.wav", ".wav") as tmp:
            sf.write(tmp, y, sr, subtype="FLOAT", format="WAV")


def _spectral_validation(
    test_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    inputs: TrainingInputs,
    preroll: int,
    st: Phase3Settings,
    out_dir: Path,
) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Render A_aug and every candidate from A_raw (one file in memory at a time: samples
    are grouped by file); both log-mel distances per candidate (NaN where not rendered,
    :class:`~delta_v2a.phase3.listening.FileRenders`). At most ``validation.max_samples``
    test samples are rendered (a seeded subset); the first ``validation.examples`` of
    them, one pair after another, are written as WAVs."""
    from delta_v2a.media import load_audio

    spec, val = inputs.spec, st.validation
    pick = rendered_subset(len(test_frame), val.max_samples, st.seed)
    dist = {k: {m: np.full(len(test_frame), np.nan) for m in SPECTRAL_METRICS} for k in candidates}
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    chosen_examples = example_order(test_frame, pick, val.examples)
    renders, raw_path = None, None
    for done, i in enumerate(pick, 1):
        row = test_frame.loc[i]
        if row["path"] != raw_path:
            raw_path = row["path"]
            raw = load_audio(raw_path, spec.sample_rate, spec.window, preroll)
            renders = FileRenders(raw, spec.sample_rate, preroll, inputs.space, val.mel)
        found = renders.distances(truth[i], {k: v[i] for k, v in candidates.items()})
        for name, metrics in found.items():
            for metric, d in metrics.items():
                dist[name][metric][i] = d
        if i in chosen_examples:
            clips = renders.example(truth[i], candidates["decoder"][i])
            _write_examples(ex_dir, example_label(chosen_examples.index(i), row), clips,
                            spec.sample_rate)  # fmt: skip
        if done % 50 == 0 or done == len(pick):
            log.info("rendered %d/%d test samples", done, len(pick))
    return dist, len(pick)


def _render_test(
    inputs: TrainingInputs,
    st: Phase3Settings,
    preroll: int,
    predictions_dir: str,
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    extra: Mapping[str, np.ndarray],
    mse: Mapping[str, np.ndarray],
) -> Renders:
    """Both log-mel distances of every baseline's render on (a seeded subset of) the test
    samples, and predictions.tsv with every test sample. ``extra`` (the other training
    seeds' predictions) is rendered and measured on the same samples, not written."""
    truth, out = inputs.data.targets[test], Path(predictions_dir)
    test_frame = inputs.frame.iloc[test].reset_index(drop=True)
    t0 = time.perf_counter()
    spectral, rendered = _spectral_validation(
        test_frame, truth, {**candidates, **extra}, inputs, preroll, st, out
    )
    seconds = time.perf_counter() - t0
    written = {k: spectral[k] for k in candidates}
    table = predictions_table(test_frame, truth, candidates, inputs.space, written, mse)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "predictions.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", errors=NAMES)
    return Renders(spectral, rendered, seconds, dataclasses.asdict(st.validation.mel))


def _announce(data: TrainData, st: Phase3Settings, dev: Any, dependence: str) -> AudioDependence:
    """Log what is about to be trained, and the audio-dependence figure measured before it
    (a warning when no decoder can beat text-only on this data); returns that figure."""
    counts = {k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")}
    opt = st.optimiser
    log.info(
        "training on %s: samples %s, %d epochs, batch %d, lr %g, seeds %s (the first is the "
        "designated one: model file, renders, predictions)",
        dev, counts, opt.epochs, opt.batch_size, opt.lr, list(st.seeds),
    )  # fmt: skip
    dep = AudioDependence.read(dependence)
    (log.info if dep.can_matter else log.warning)("audio dependence: %s", dep.message)
    return dep


def _transfer_entry(inputs: Paths, model_out: str, st: Phase3Settings) -> TransferPayload | None:
    """What ``delta-v2a transfer`` needs in the model file (docs/methods.md §7), with the
    image model's path portable like the CLAP's; None when the rule passes no inputs (the
    workflow's does)."""
    if not {"image_store", "audio_store", "sensitivity", "labels"} <= set(inputs.names()):
        return None
    from delta_v2a.transfer.payload import transfer_payload_from_results

    entry = transfer_payload_from_results(
        inputs.image_store,
        inputs.sensitivity,
        inputs.labels,
        inputs.pairs,
        audio_store=inputs.audio_store,
        u_grid=st.u_grid,
        seed=st.seed,
    )
    return dataclasses.replace(entry, image_model=portable_model(entry.image_model, model_out))


def _write_figures(inputs: TrainingInputs, exp: Experiment, outputs: Paths) -> None:
    """Learning curves with the test figures, and the decoder's test predictions (seen
    templates) against the targets."""
    from delta_v2a.plots import decoder_prediction_figure, decoder_training_figure

    note, test = inputs.pairs.meta.get("note", ""), exp.test
    histories = {k: r.history for k, r in exp.results.items()}
    decoder_training_figure(histories, exp.evaluation["figures"]["test"], outputs.training, note)
    seen = inputs.data.split[test] == "test"
    decoder_prediction_figure(
        inputs.frame.iloc[test][seen],
        inputs.data.targets[test][seen],
        exp.candidates["decoder"][seen],
        inputs.space.names,
        outputs.scatter,
        note,
        space=inputs.space,  # axes in Hz, dB, ... (the parameter space's own units)
    )


def run_train(*, inputs: Paths, outputs: Paths, settings: Phase3Settings, threads: int) -> None:
    """Train on train files, once per training seed, choose each epoch on validation files,
    report every figure from the test files once, with every baseline, as mean and spread
    over seeds (sections 6.3-6.6); the model file carries the designated (first) seed's
    decoder and what ``delta-v2a transfer`` needs (docs/methods.md §7)."""
    import torch

    from delta_v2a.models import resolve_device

    torch.set_num_threads(max(1, threads))
    pairs = Pairs.read(inputs.pairs)
    if pairs.status != "ok":
        _write_untrained(pairs, outputs)
        return
    st, dev = settings, resolve_device(settings.device)
    loaded, table = _load_training_data(inputs, pairs)
    dep = _announce(loaded.data, st, dev, inputs.dependence)
    preroll = int(round(st.preroll_s * loaded.spec.sample_rate))
    lab = Lab(
        train=functools.partial(_train_models, loaded.data, st, dev),
        search=functools.partial(_text2fx, loaded, table, st, threads),
        render=functools.partial(_render_test, loaded, st, preroll, outputs.predictions),
        device=dev,
    )
    try:
        exp = run_experiment(loaded, st, lab, dep)
    except ExperimentError as err:
        raise PipelineError(str(err)) from None
    facts = RunFacts(target=st.target, device=str(dev), dependence=dep, preroll=preroll)
    audio = {**table.meta["model"], "normalize": bool(table.meta.get("normalize", True))}
    payload = decoder_payload(
        loaded, exp, facts, portable_model(audio, outputs.model),
        _transfer_entry(inputs, outputs.model, st),
    )  # fmt: skip
    save_decoder(outputs.model, payload)
    _write_figures(loaded, exp, outputs)
    training_log(loaded, exp, facts).write(outputs.log)
