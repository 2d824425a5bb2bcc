"""Phase 3 jobs: window embeddings, the data set, decoder training + validation, and the
end-of-run summary of every phase.

Three jobs, so that each reruns only when what it reads changes: ``run_windows`` (the audio
model over each file's window sequence; depends on the manifest and the model, not on Phase 1),
``run_dataset`` (pairs from the discovery matrix, the sample list, the CLAP text embeddings of
the descriptions) and ``run_train`` (no audio model: arrays in, decoder out).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.extract import manifest_hashes, read_manifest
from delta_v2a.jobs.common import (
    PipelineError,
    gate_health,
    job_batch_size,
    load_embedder_for_job,
    log,
)
from delta_v2a.phase3.artifact import save_decoder
from delta_v2a.phase3.dataset import build_samples, choose_pairs, describe, targets_for
from delta_v2a.phase3.model import model_with_state, predict
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config
from delta_v2a.phase3.spectral import MelSettings, log_mel, spectral_distance
from delta_v2a.phase3.train import TrainData, TrainResult, TrainSettings, train_decoder
from delta_v2a.phase3.windows import WindowSpec, embed_windows
from delta_v2a.provenance import merge_model_meta
from delta_v2a.storage import (
    EmbeddingTable,
    atomic_path,
    load_npz,
    read_json,
    save_npz,
    write_json,
)

WINDOWS_VERSION = 1


# --------------------------------------------------------------------------- windows


def _windows_key(model: Mapping[str, Any], device_type: str, count: int, hop_s: float) -> str:
    from delta_v2a.cache import PREPROCESSING_VERSION, model_fingerprint

    parts = {
        "kind": "phase3-windows",
        "version": [PREPROCESSING_VERSION, WINDOWS_VERSION],
        "model": model_fingerprint(model["name_or_path"]),
        "dtype": model["dtype"],
        "normalize": model["normalize"],
        "device_type": device_type,
        "count": int(count),
        "hop_s": float(hop_s),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _reusable_centre(original: EmbeddingTable, paths: Sequence[str], embedder: Any) -> bool:
    """Extraction's originals are the centred windows when made by this model at this window."""
    meta = original.meta
    dec, mod = meta.get("decoding", {}), meta.get("model", {})
    same = (
        [str(p) for p in original.paths] == list(paths)
        and dec.get("sampling_rate") == embedder.sampling_rate
        and dec.get("window") == embedder.window_samples
        and mod.get("name_or_path") == embedder.info.name_or_path
        and mod.get("dtype") == embedder.info.dtype
    )
    if not same:
        log.info("original.npz differs in files, model or window: every window is embedded")
    return same


def run_windows(
    *,
    manifest: str,
    original: str,
    output: str,
    model: Mapping[str, Any],
    count: int,
    hop_s: float,
    cache_dir: str | None = None,
    threads: int = 1,
) -> None:
    """(F, count, D) CLAP embeddings of each file's window sequence, each file embedded once:
    the centred window comes from extraction's ``original.npz``, the others from the cache or
    the model."""
    from delta_v2a.cache import EmbeddingCache
    from delta_v2a.models import resolve_device

    files = read_manifest(manifest)
    paths = [f.path for f in files]
    hashes = manifest_hashes(manifest)
    cache, emb, hit = None, None, np.zeros(len(files), dtype=bool)
    if cache_dir:
        key = _windows_key(model, resolve_device(model["device"]).type, count, hop_s)
        cache = EmbeddingCache.open(Path(cache_dir) / "embeddings" / "audio_windows" / f"{key}.npz")
        emb, hit = cache.lookup(hashes)
    misses = np.flatnonzero(~hit)
    log.info(
        "window sequences (%d × %g s hop): %d files, %d cached, %d to embed",
        count,
        hop_s,
        len(files),
        int(hit.sum()),
        len(misses),
    )
    n_reused = 0
    if len(misses):
        embedder = load_embedder_for_job("audio", model, threads)
        sr = embedder.sampling_rate
        spec = WindowSpec(count, max(1, round(hop_s * sr)), embedder.window_samples, sr)
        table = EmbeddingTable.load(original)
        last = None
        if _reusable_centre(table, paths, embedder):
            last = table.embeddings[misses]
            n_reused = len(misses)
        new = embed_windows(
            embedder,
            [paths[i] for i in misses],
            spec,
            last=last,
            batch_size=job_batch_size(model, embedder),
        )
        dim = new.shape[2]
        emb = np.zeros((len(files), count * dim), np.float32) if emb is None else emb
        emb[misses] = new.reshape(len(misses), -1)
        info = {"model": embedder.info.to_dict(), "windows": spec.to_dict()}
        if cache is not None:
            cache.add([hashes[i] for i in misses], new.reshape(len(misses), -1), info)
            cache.save()
    else:
        info = {k: cache.meta[k] for k in ("model", "windows")}
    dim = emb.shape[1] // count
    EmbeddingTable(
        paths=np.array(paths, dtype=str),
        categories=np.array([f.category for f in files], dtype=str),
        embeddings=emb.reshape(len(files), count, dim),
        meta={
            "modality": "audio",
            **info,
            "hop_s": float(hop_s),
            "normalize": bool(model["normalize"]),
            "n_cached": int(hit.sum()),
            "n_centre_reused": n_reused,
        },
    ).save(output)
    log.info(
        "wrote %s: %d files × %d windows × %d (centre window reused from extraction for %d)",
        output,
        len(files),
        count,
        dim,
        n_reused,
    )


# --------------------------------------------------------------------------- data set


def _save_texts(path: str, texts: Sequence[str], emb: np.ndarray, meta: Mapping) -> None:
    save_npz(
        path,
        {"texts": np.asarray(list(texts), dtype=str), "embeddings": emb.astype(np.float32)},
        meta,
    )


def run_dataset(
    *,
    matrix: str,
    labels: str,
    manifest: str,
    health: Sequence[str],
    allow_unhealthy: bool,
    model: Mapping[str, Any],
    effects_config: Mapping[str, Any],
    threshold: float,
    level_words: Sequence[str],
    descriptions: Mapping[str, str],
    levels_per_pair: int,
    val_fraction: float,
    bypass_below: float,
    seed: int,
    pairs_out: str,
    samples_out: str,
    texts_out: str,
    threads: int = 1,
) -> None:
    """Choose the pairs, draw the sample list, embed each distinct description once."""
    lab = read_json(labels)
    image_effects, audio_effects = list(lab["image_effects"]), list(lab["audio_effects"])
    rows = choose_pairs(
        np.load(matrix, allow_pickle=False), image_effects, audio_effects, threshold
    )
    chosen = [r for r in rows if r["chosen"]]
    for r in rows:
        if r["chosen"]:
            log.info(
                "PAIR: %s -> %s (score %.4g > threshold %g)",
                r["image_effect"],
                r["audio_effect"],
                r["score"],
                threshold,
            )
        else:
            log.info("no pair for %s: %s", r["image_effect"], r["reason"])
    doc: dict[str, Any] = {
        "threshold": threshold,
        "rows": rows,
        "chosen": [{k: r[k] for k in ("image_effect", "audio_effect", "score")} for r in chosen],
        "level_words": list(level_words),
        "seed": seed,
    }
    if not chosen:
        best = max((r["score"] for r in rows if r["score"] is not None), default=None)
        message = (
            f"NO PAIR passes phase3.pair_threshold = {threshold:g} (best score "
            f"{'none' if best is None else f'{best:.4g}'}): Phase 3 has nothing to learn and "
            "trains no decoder. Lower the threshold knowingly, or check Phase 1."
        )
        log.warning("%s", message)
        doc.update(status="no_pairs", message=message, meta=merge_model_meta([]))
        write_json(pairs_out, doc)
        with atomic_path(samples_out) as tmp:
            pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
        _save_texts(texts_out, [], np.zeros((0, 0), np.float32), {"status": "no_pairs"})
        return

    gate_health(health, allow_unhealthy, "text")
    files = read_manifest(manifest)
    samples = build_samples(
        [f.path for f in files],
        [f.category for f in files],
        chosen,
        levels_per_pair=levels_per_pair,
        level_words=level_words,
        templates=descriptions,
        val_fraction=val_fraction,
        seed=seed,
    )
    embedder = load_embedder_for_job("audio", model, threads)
    selected = {r["audio_effect"] for r in chosen}
    order = [e for e in effects_config["effects"]["audio"] if e in selected]
    space = audio_space_from_config(effects_config, order, embedder.sampling_rate, bypass_below)
    targets = targets_for(samples, space)
    for j, name in enumerate(space.names):
        samples[f"target:{name}"] = targets[:, j]
    texts = list(
        dict.fromkeys(
            describe(descriptions[r["image_effect"]], w) for r in chosen for w in level_words
        )
    )
    text_emb = embedder.embed_texts(texts)
    meta = merge_model_meta([{"modality": "audio", "model": embedder.info.to_dict()}])
    val_files = sorted(set(samples.loc[samples["split"] == "val", "path"]))
    doc.update(
        status="ok",
        message=f"{len(chosen)} pair(s) chosen",
        meta=meta,
        descriptions={r["image_effect"]: descriptions[r["image_effect"]] for r in chosen},
        texts=texts,
        paramspace=space.to_dict(),
        split={
            "val_fraction": val_fraction,
            "train_files": sorted(set(samples["path"]) - set(val_files)),
            "val_files": val_files,
        },
        levels_per_pair=levels_per_pair,
    )
    with atomic_path(samples_out) as tmp:
        samples.to_csv(tmp, sep="\t", index=False)
    _save_texts(texts_out, texts, text_emb, {"model": embedder.info.to_dict()})
    write_json(pairs_out, doc)
    log.info(
        "%d samples (%d train, %d val) over %d files (%d held out), %d descriptions, "
        "parameter space %s",
        len(samples),
        int((samples["split"] == "train").sum()),
        int((samples["split"] == "val").sum()),
        len(files),
        len(val_files),
        len(texts),
        space.names,
    )


# --------------------------------------------------------------------------- training


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _history(result: TrainResult) -> list[dict[str, float]]:
    return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in result.history]


def _write_no_pairs(
    pairs: Mapping[str, Any],
    model_out: str,
    log_out: str,
    predictions_dir: str,
    figures: Sequence[str],
) -> None:
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
            "verdict": {"beats_mean_baseline": None, "message": message},
            "pairs": {k: pairs[k] for k in ("threshold", "rows", "chosen")},
        },
    )
    out = Path(predictions_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.txt").write_text(message + "\n", encoding="utf-8")
    for fig in figures:
        plots.message_figure(fig, "Phase 3: no decoder trained", message, meta.get("note", ""))
    log.warning("%s", message)


def run_train(
    *,
    windows: str,
    samples: str,
    pairs: str,
    texts: str,
    model_out: str,
    log_out: str,
    predictions_dir: str,
    training_figure: str,
    predictions_figure: str,
    architecture: Mapping[str, Any],
    training: Mapping[str, Any],
    seed: int,
    mel: Mapping[str, Any],
    spectral_max_samples: int,
    examples: int,
    preroll_s: float,
    checkpoint_dir: str,
    checkpoint_interval_s: float = 0.0,
    device: str = "cpu",
    threads: int = 1,
) -> None:
    """Train the decoder and its no-attention ablation, validate both by rendering audio."""
    import torch

    from delta_v2a.models import resolve_device

    pairs_doc = read_json(pairs)
    if pairs_doc["status"] != "ok":
        _write_no_pairs(
            pairs_doc, model_out, log_out, predictions_dir, [training_figure, predictions_figure]
        )
        return
    torch.set_num_threads(max(1, threads))
    dev = resolve_device(device)
    space = ParamSpace.from_dict(pairs_doc["paramspace"])
    table = EmbeddingTable.load(windows)
    frame = pd.read_csv(samples, sep="\t", keep_default_na=False)
    text_arrays, text_meta = load_npz(texts, ("texts", "embeddings"))
    text_rows = {str(t): i for i, t in enumerate(text_arrays["texts"])}
    file_rows = {str(p): i for i, p in enumerate(table.paths)}
    text_model = text_meta.get("model", {}).get("name_or_path")
    if text_model != table.meta["model"]["name_or_path"]:
        raise PipelineError(
            f"text embeddings come from {text_model!r}, window embeddings from "
            f"{table.meta['model']['name_or_path']!r}: both must be the same CLAP; rerun"
        )
    missing = sorted(set(frame["path"]) - set(file_rows))
    if missing:
        raise PipelineError(
            f"{len(missing)} sample file(s) have no window embeddings (e.g. {missing[0]}); "
            "the manifest changed between jobs: rerun"
        )
    data = TrainData(
        text=text_arrays["embeddings"],
        audio=table.embeddings,
        desc_index=frame["description"].map(text_rows).to_numpy(np.int64),
        file_index=frame["path"].map(file_rows).to_numpy(np.int64),
        targets=targets_for(frame, space),
        is_val=(frame["split"] == "val").to_numpy(),
    )
    settings = TrainSettings(
        epochs=int(training["epochs"]),
        batch_size=int(training["batch_size"]),
        lr=float(training["lr"]),
        weight_decay=float(training["weight_decay"]),
        seed=int(seed),
    )
    base_arch = {
        "text_dim": int(data.text.shape[1]),
        "audio_dim": int(data.audio.shape[2]),
        "n_windows": int(data.audio.shape[1]),
        "n_params": space.dim,
        "d_model": int(architecture["d_model"]),
        "heads": int(architecture["heads"]),
        "hidden": int(architecture["hidden"]),
        "dropout": float(architecture["dropout"]),
    }
    results: dict[str, TrainResult] = {}
    archs = {kind: {"kind": kind, **base_arch} for kind in ("attention", "concat")}
    log.info(
        "training on %s: %d train / %d val samples, %d epochs, batch %d, lr %g",
        dev,
        int((~data.is_val).sum()),
        int(data.is_val.sum()),
        settings.epochs,
        settings.batch_size,
        settings.lr,
    )
    for kind, arch in archs.items():
        r = results[kind] = train_decoder(
            arch,
            data,
            settings,
            checkpoint=Path(checkpoint_dir) / f"{kind}.pt",
            checkpoint_interval_s=checkpoint_interval_s,
            device=dev,
        )
        log.info(
            "%s: best epoch %d (val MSE %.5f); %d epochs in %.1f s of training (%.1f epochs/s)",
            kind,
            r.best_epoch,
            r.best_val_loss,
            len(r.history),
            r.train_seconds,
            r.epochs_per_s or float("nan"),
        )

    # Predictions on the held-out files, by the best epoch of each model.
    val = np.flatnonzero(data.is_val)
    val_text = data.text[data.desc_index[val]]
    val_audio = data.audio[data.file_index[val]]
    truth = data.targets[val]
    preds = {
        kind: np.clip(
            predict(model_with_state(archs[kind], r.best_state, dev), val_text, val_audio, dev),
            0.0,
            1.0,
        )
        for kind, r in results.items()
    }
    mean_params = data.targets[~data.is_val].mean(axis=0)
    candidates = {
        "model": preds["attention"],
        "ablation": preds["concat"],
        "mean_parameters": np.broadcast_to(mean_params, truth.shape),
        "no_effect": np.zeros_like(truth),
    }
    param_mse = {k: float(((v - truth) ** 2).mean()) for k, v in candidates.items()}

    val_frame = frame.iloc[val].reset_index(drop=True)
    spec = WindowSpec(**table.meta["windows"])
    preroll = int(round(preroll_s * spec.sample_rate))
    t_render = time.perf_counter()
    spectral, rendered = _spectral_validation(
        val_frame,
        truth,
        candidates,
        space,
        spec,
        preroll,
        MelSettings(**mel),
        spectral_max_samples,
        examples,
        Path(predictions_dir),
        seed,
    )
    render_seconds = time.perf_counter() - t_render
    _write_predictions(val_frame, truth, candidates, space, spectral, Path(predictions_dir))

    dist = {k: _finite(float(np.nanmean(spectral[k]))) if rendered else None for k in candidates}
    per_pair = {}
    for (img, aud), idx in val_frame.groupby(["image_effect", "audio_effect"]).groups.items():
        sel = np.asarray(list(idx))
        per_pair[f"{img}->{aud}"] = {
            "n": int(len(sel)),
            "param_mse": {
                k: float(((v[sel] - truth[sel]) ** 2).mean()) for k, v in candidates.items()
            },
            "spectral_distance_db": {
                k: _finite(float(np.nanmean(spectral[k][sel])))
                if np.isfinite(spectral[k][sel]).any()
                else None
                for k in candidates
            },
        }
    beats = dist["model"] is not None and dist["model"] < dist["mean_parameters"]
    verdict_msg = (
        f"decoder log-mel distance {dist['model']:.3f} dB vs mean-parameter baseline "
        f"{dist['mean_parameters']:.3f} dB, no effect {dist['no_effect']:.3f} dB; "
        f"ablation without attention {dist['ablation']:.3f} dB"
        if dist["model"] is not None
        else "no validation sample rendered"
    )
    (log.info if beats else log.warning)(
        "%s: %s",
        "decoder beats the baseline" if beats else "DECODER NO BETTER THAN BASELINE",
        verdict_msg,
    )

    main, abl = results["attention"], results["concat"]
    meta = dict(pairs_doc["meta"])
    # What `delta-v2a apply` needs to load the same CLAP: id or path, dtype, normalisation.
    audio_model = {**table.meta["model"], "normalize": bool(table.meta.get("normalize", True))}
    windows_doc = {k: int(v) for k, v in table.meta["windows"].items()}
    from delta_v2a.plots import decoder_prediction_figure, decoder_training_figure

    decoder_training_figure(
        {"cross-attention": main.history, "ablation (no attention)": abl.history},
        param_mse["mean_parameters"],
        {k: v for k, v in dist.items() if v is not None},
        training_figure,
        meta.get("note", ""),
    )
    decoder_prediction_figure(
        val_frame, truth, candidates["model"], space.names, predictions_figure, meta.get("note", "")
    )
    save_decoder(
        model_out,
        {
            "status": "trained",
            "arch": archs["attention"],
            "state_dict": main.best_state,
            "paramspace": space.to_dict(),
            "level_words": list(pairs_doc["level_words"]),
            "descriptions": dict(pairs_doc["descriptions"]),
            "pairs": list(pairs_doc["chosen"]),
            "audio_model": audio_model,
            "windows": windows_doc,
            "preroll": preroll,
            "best_epoch": main.best_epoch,
            "best_val_loss": main.best_val_loss,
            "seed": int(seed),
            "not_science": bool(meta.get("not_science", False)),
            "note": meta.get("note", ""),
        },
    )
    eps = {k: _finite(r.epochs_per_s) for k, r in results.items()}
    write_json(
        log_out,
        {
            "meta": meta,
            "status": "trained",
            "verdict": {"beats_mean_baseline": beats, "message": verdict_msg},
            "pairs": {k: pairs_doc[k] for k in ("threshold", "rows", "chosen")},
            "seeds": {
                "seed": int(seed),
                "split_and_levels": "numpy default_rng([seed, 101]) / ([seed, 202])",
                "init": "torch.manual_seed(seed)",
                "shuffle": "torch.Generator().manual_seed(seed + 1)",
                "spectral_subsample": "numpy default_rng([seed, 303])",
            },
            "data": {
                "n_samples": len(frame),
                "n_train": int((~data.is_val).sum()),
                "n_val": int(data.is_val.sum()),
                "n_files": int(frame["path"].nunique()),
                "split": pairs_doc["split"],
                "levels_per_pair": pairs_doc["levels_per_pair"],
                "level_words": pairs_doc["level_words"],
                "descriptions": pairs_doc["descriptions"],
                "texts": pairs_doc["texts"],
            },
            "paramspace": space.to_dict(),
            "windows": {**windows_doc, "hop_s": table.meta.get("hop_s")},
            "architecture": archs["attention"],
            "training": {
                **asdict(settings),
                "optimizer": "AdamW",
                "loss": "MSE on the normalised parameter vector",
                "device": str(dev),
                "epochs_per_s": eps["attention"],
                "train_seconds": main.train_seconds,
                "epochs_this_run": main.epochs_run,
                "resumed_from_epoch": main.resumed_from,
            },
            "history": _history(main),
            "best_epoch": main.best_epoch,
            "best_val_loss": main.best_val_loss,
            "ablation": {
                "description": "same head, no attention: text and mean window embedding "
                "concatenated",
                "architecture": archs["concat"],
                "history": _history(abl),
                "best_epoch": abl.best_epoch,
                "best_val_loss": abl.best_val_loss,
                "epochs_per_s": eps["concat"],
                "resumed_from_epoch": abl.resumed_from,
            },
            "validation": {
                "param_mse": param_mse,
                "spectral_distance_db": dist,
                "n_rendered": rendered,
                "render_seconds": render_seconds,
                "render_share_of_training_and_validation": render_seconds
                / max(render_seconds + main.train_seconds + abl.train_seconds, 1e-9),
                "per_pair": per_pair,
                "mel": dict(mel),
                "distance": "mean |log-mel(A) - log-mel(A_aug)| in dB over mels x frames",
                "baselines": {
                    "mean_parameters": "the mean training target vector for every sample",
                    "no_effect": "A_raw itself (all parameters neutral)",
                },
            },
        },
    )


def _spectral_validation(
    val_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spec: WindowSpec,
    preroll: int,
    mel: MelSettings,
    max_samples: int,
    examples: int,
    out_dir: Path,
    seed: int,
) -> tuple[dict[str, np.ndarray], int]:
    """Render A_aug and every candidate from A_raw; log-mel distances (NaN where not rendered).

    At most ``max_samples`` validation samples are rendered (a seeded subset); the first
    ``examples`` of them, one pair after another, are written as WAV files.
    """
    import soundfile as sf

    from delta_v2a.media import load_audio

    n = len(val_frame)
    sr = spec.sample_rate
    pick = np.sort(np.random.default_rng([seed, 303]).permutation(n)[: min(n, max_samples)])
    dist = {k: np.full(n, np.nan) for k in candidates}
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    # Examples: round robin over pairs, each pair's rendered samples taken across its levels.
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i in pick:
        key = (val_frame.at[i, "image_effect"], val_frame.at[i, "audio_effect"])
        by_pair.setdefault(key, []).append(int(i))
    for lst in by_pair.values():  # strongest level first: the most audible examples
        lst.sort(key=lambda i: -float(val_frame.at[i, "level"]))
    chosen_examples: list[int] = []
    while len(chosen_examples) < min(examples, len(pick)):
        for lst in by_pair.values():
            if lst and len(chosen_examples) < examples:
                chosen_examples.append(lst.pop(0))
    # Per file, one rendering per distinct effective parameter set: the mean-parameter and
    # no-effect baselines render once per file, a description's prediction once per file.
    mels: dict[str, np.ndarray] = {}

    def log_mel_of(vec: np.ndarray) -> np.ndarray:
        key = json.dumps(space.physical(vec), sort_keys=True)
        if key not in mels:
            mels[key] = log_mel(space.render(raw, sr, vec, preroll), sr, mel)
        return mels[key]

    raw_path = None
    for done, i in enumerate(pick, 1):
        path = val_frame.at[i, "path"]
        if path != raw_path:  # samples are grouped by file: one file in memory at a time
            raw, raw_path, mels = load_audio(path, sr, spec.window, preroll), path, {}
        target_db = log_mel_of(truth[i])
        for name, vecs in candidates.items():
            dist[name][i] = spectral_distance(log_mel_of(vecs[i]), target_db)
        if i in chosen_examples:
            stem = Path(path).stem
            label = (
                f"{chosen_examples.index(i):02d}_{stem}_{val_frame.at[i, 'image_effect']}-"
                f"{val_frame.at[i, 'audio_effect']}_{val_frame.at[i, 'level_word']}"
            )
            for kind, y in (
                ("raw", raw[preroll:]),
                ("target", space.render(raw, sr, truth[i], preroll)),
                ("predicted", space.render(raw, sr, candidates["model"][i], preroll)),
            ):
                with atomic_path(ex_dir / f"{label}_{kind}.wav", ".wav") as tmp:
                    sf.write(tmp, y, sr, subtype="FLOAT", format="WAV")
        if done % 50 == 0 or done == len(pick):
            log.info("rendered %d/%d validation samples", done, len(pick))
    return dist, len(pick)


def _write_predictions(
    val_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spectral: Mapping[str, np.ndarray],
    out_dir: Path,
) -> None:
    cols = ["sample", "path", "category", "image_effect", "audio_effect", "level", "level_word"]
    out = val_frame[cols + ["description"]].copy()
    for j, axis in enumerate(space.axes):
        out[f"true:{axis.name}"] = truth[:, j]
        out[f"pred:{axis.name}"] = candidates["model"][:, j]
        out[f"pred_ablation:{axis.name}"] = candidates["ablation"][:, j]
    for j, axis in enumerate(space.axes):
        # Physical values as rendered (a bypassed effect shows its neutral value).
        out[f"true_value:{axis.name}"] = [_phys(space, v, j) for v in truth]
        out[f"pred_value:{axis.name}"] = [_phys(space, v, j) for v in candidates["model"]]
    for name, d in spectral.items():
        out[f"logmel_db:{name}"] = d
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.tsv") as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def _phys(space: ParamSpace, vec: np.ndarray, j: int) -> float:
    axis = space.axes[j]
    params = space.physical(vec)[axis.effect]
    return axis.neutral if params is None else float(params[axis.param])
