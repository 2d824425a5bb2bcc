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
from delta_v2a.phase3.artifact import portable_model, save_decoder
from delta_v2a.phase3.dataset import (
    CONTROL_DESCRIPTIONS,
    SPLITS,
    build_samples,
    choose_pairs,
    targets_for,
)
from delta_v2a.phase3.evaluate import (
    bootstrap_difference,
    bootstrap_mean,
    derangement,
    per_sample_mse,
    strength_error,
    text2fx_search,
    text_lookup,
    verdict,
)
from delta_v2a.phase3.model import model_with_state, predict
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config
from delta_v2a.phase3.spectral import MelSettings, log_mel, spectral_distance
from delta_v2a.phase3.strength import (
    ImageStrength,
    audio_dependence,
    curve_at,
    curve_norms,
    image_strength,
    solve_u,
    u_grid,
)
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
CURVES_VERSION = 1


# --------------------------------------------------------------------------- windows


def _windows_key(model: Mapping[str, Any], device_type: str, count: int, hop_s: float) -> str:
    """The cache shard of window sequences (one mechanism with extraction's: cache.shard_key,
    so a pinned model revision is part of the key here too)."""
    from delta_v2a.cache import shard_key

    return shard_key(
        model,
        device_type,
        kind="phase3-windows",
        windows_version=WINDOWS_VERSION,
        count=int(count),
        hop_s=float(hop_s),
    )


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


def _pick_pairs(
    matrix: str,
    lab: Mapping[str, Any],
    threshold: float,
    alpha: float,
    require_significant: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of :func:`choose_pairs` and what significance they used (section 6.1).

    ``require_significant=False`` (phase3.require_significant_pairs) chooses on score alone so
    that Phase 3 can be exercised where Phase 1 found nothing (the tiny demo models); each
    row keeps its p-value and every output says the pairs are not evidence."""
    p_adj = lab.get("p_adjusted")
    rows = choose_pairs(
        np.load(matrix, allow_pickle=False),
        list(lab["image_effects"]),
        list(lab["audio_effects"]),
        threshold,
        p_adjusted=p_adj if require_significant else None,
        alpha=alpha,
    )
    if p_adj is not None and not require_significant:
        audio = list(lab["audio_effects"])
        for i, r in enumerate(rows):
            if r["audio_effect"] is not None:
                r["p_adjusted"] = p_adj[i][audio.index(r["audio_effect"])]
        significance = {
            "available": True,
            "required": False,
            "alpha": alpha,
            "note": "NOT REQUIRED (phase3.require_significant_pairs: false): pairs chosen on "
            "score alone; they are not evidence of a correspondence, whatever the decoder does",
        }
        log.warning("%s", significance["note"])
    elif p_adj is None:
        significance = {
            "available": False,
            "alpha": alpha,
            "note": "discovery_labels.json has no p_adjusted: pairs chosen on score alone, "
            "WITHOUT a significance test",
        }
        log.warning("%s", significance["note"])
    else:
        significance = {
            "available": True,
            "required": True,
            "alpha": alpha,
            "note": "p_adjusted <= alpha",
        }
    for r in rows:
        if r["chosen"]:
            log.info(
                "PAIR: %s -> %s (score %.4g > threshold %g, p_adjusted %s)",
                r["image_effect"],
                r["audio_effect"],
                r["score"],
                threshold,
                r["p_adjusted"],
            )
        else:
            log.info("no pair for %s: %s", r["image_effect"], r["reason"])
    return rows, significance


def _write_no_pairs(
    doc: dict[str, Any], rows: Sequence[Mapping], pairs_out: str, samples_out: str, texts_out: str
) -> None:
    best = max((r["score"] for r in rows if r["score"] is not None), default=None)
    sig = doc["significance"]
    message = (
        f"NO PAIR passes phase3.pair_threshold = {doc['threshold']:g}"
        + (f" with p_adjusted <= {sig['alpha']:g}" if sig.get("required", sig["available"]) else "")
        + f" (best eligible score {'none' if best is None else f'{best:.4g}'}): Phase 3 has "
        "nothing to learn and trains no decoder. Lower the threshold knowingly, or check Phase 1."
    )
    log.warning("%s", message)
    doc.update(status="no_pairs", message=message, meta=merge_model_meta([]))
    write_json(pairs_out, doc)
    with atomic_path(samples_out) as tmp:
        pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
    _save_texts(texts_out, [], np.zeros((0, 0), np.float32), {"status": "no_pairs"})


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
    alpha: float,
    require_significant: bool = True,
    level_words: Sequence[str],
    descriptions: Mapping[str, Sequence[str]],
    heldout_templates: int,
    levels_per_pair: int,
    split: Mapping[str, float],
    bypass_below: float,
    seed: int,
    pairs_out: str,
    samples_out: str,
    texts_out: str,
    threads: int = 1,
) -> None:
    """Choose the pairs, split the files, draw the sample list, embed each distinct
    description (trained and held-out templates) once."""
    rows, significance = _pick_pairs(
        matrix, read_json(labels), threshold, alpha, require_significant
    )
    chosen = [r for r in rows if r["chosen"]]
    templates = {k: [v] if isinstance(v, str) else list(v) for k, v in descriptions.items()}
    doc: dict[str, Any] = {
        "threshold": threshold,
        "significance": significance,
        "rows": rows,
        "chosen": [
            {k: r[k] for k in ("image_effect", "audio_effect", "score", "p_adjusted")}
            for r in chosen
        ],
        "level_words": list(level_words),
        "seed": seed,
    }
    if not chosen:
        _write_no_pairs(doc, rows, pairs_out, samples_out, texts_out)
        return
    gate_health(health, allow_unhealthy, "text")
    files = read_manifest(manifest)
    samples = build_samples(
        [f.path for f in files],
        [f.category for f in files],
        chosen,
        levels_per_pair=levels_per_pair,
        level_words=level_words,
        templates=templates,
        heldout_templates=heldout_templates,
        fractions=split,
        seed=seed,
    )
    embedder = load_embedder_for_job("audio", model, threads)
    selected = {r["audio_effect"] for r in chosen}
    order = [e for e in effects_config["effects"]["audio"] if e in selected]
    space = audio_space_from_config(effects_config, order, embedder.sampling_rate, bypass_below)
    texts = list(dict.fromkeys(samples["description"]))
    texts += [c for c in CONTROL_DESCRIPTIONS if c not in texts]  # apply's refusal floor
    text_emb = embedder.embed_texts(texts)
    meta = merge_model_meta([{"modality": "audio", "model": embedder.info.to_dict()}])
    by_split = {name: sorted(set(samples.loc[samples["split"] == name, "path"])) for name in SPLITS}
    used = {r["image_effect"] for r in chosen}
    doc.update(
        status="ok",
        message=f"{len(chosen)} pair(s) chosen",
        meta=meta,
        templates={e: templates[e] for e in used},
        heldout_templates={e: templates[e][len(templates[e]) - heldout_templates :] for e in used},
        texts=texts,
        paramspace=space.to_dict(),
        split={"fractions": dict(split), **{f"{k}_files": v for k, v in by_split.items()}},
        levels_per_pair=levels_per_pair,
    )
    with atomic_path(samples_out) as tmp:
        samples.to_csv(tmp, sep="\t", index=False)
    _save_texts(texts_out, texts, text_emb, {"model": embedder.info.to_dict()})
    write_json(pairs_out, doc)
    log.info(
        "%d samples over %d files (train %d / val %d / test %d files; %d held-out paraphrase "
        "samples on test), %d descriptions, parameter space %s",
        len(samples),
        len(files),
        *(len(by_split[k]) for k in SPLITS),
        int(samples["held_out"].sum()),
        len(texts),
        space.names,
    )


# --------------------------------------------------------------------------- strength curves


def _curve_shard_key(model: Mapping[str, Any], device_type: str, preroll_s: float) -> str:
    """The cache shard of strength-curve renders (cache.shard_key, as every embedding job)."""
    from delta_v2a.cache import shard_key

    return shard_key(
        model,
        device_type,
        kind="phase3-curves",
        curves_version=CURVES_VERSION,
        preroll_s=float(preroll_s),
    )


def _clip_key(file_hash: str, effect: str, params: Mapping | None) -> str:
    """Content key of one rendered clip: the file's bytes, the effect and its exact
    physical parameters (None = the raw clip)."""
    blob = json.dumps([file_hash, effect, params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _render_and_embed(
    embedder: Any,
    paths: Sequence[str],
    jobs: Sequence[tuple[int, str | None, float]],
    space: ParamSpace,
    preroll_s: float,
    batch_size: int,
) -> tuple[np.ndarray, dict[str, float]]:
    """Render (file, effect, u) clips exactly as extraction does (centred window, pre-roll
    dropped; effect None = the raw clip) and embed them, one file in memory at a time; the
    per-clip render and CLAP seconds are measured for the cost report."""
    from delta_v2a.media import load_audio

    sr, window = embedder.sampling_rate, embedder.window_samples
    preroll = int(round(preroll_s * sr))
    render_s = embed_s = 0.0
    new = np.zeros((len(jobs), embedder.dim), np.float32)
    by_file: dict[int, list[int]] = {}
    for n, (f, _, _) in enumerate(jobs):
        by_file.setdefault(f, []).append(n)
    for f, ns in by_file.items():
        raw = load_audio(paths[f], sr, window, preroll)
        t0 = time.perf_counter()
        clips = [
            raw[preroll:]
            if jobs[n][1] is None
            else space.render(raw, sr, space.target(jobs[n][1], jobs[n][2]), preroll)
            for n in ns
        ]
        t1 = time.perf_counter()
        new[ns] = embedder.embed_audio(clips, batch_size=batch_size)
        render_s, embed_s = render_s + t1 - t0, embed_s + time.perf_counter() - t1
    cost = {
        "clips_embedded": int(len(jobs)),
        "render_seconds_per_clip": render_s / len(jobs),
        "embed_seconds_per_clip": embed_s / len(jobs),
    }
    log.info(
        "rendered and embedded %d clips: %.3f s render + %.3f s CLAP per clip",
        len(jobs),
        cost["render_seconds_per_clip"],
        cost["embed_seconds_per_clip"],
    )
    return new, cost


def _embed_curves(
    paths: Sequence[str],
    hashes: Sequence[str],
    space: ParamSpace,
    grid: np.ndarray,
    model: Mapping[str, Any],
    preroll_s: float,
    cache_dir: str | None,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """raw (F, D) and rendered (F, J, G, D) CLAP embeddings; each clip × u embedded once and
    cached by content; the first file with misses loads the model."""
    from delta_v2a.cache import EmbeddingCache
    from delta_v2a.models import resolve_device

    jobs = [(f, None, 0.0) for f in range(len(paths))]
    jobs += [(f, e, float(u)) for f in range(len(paths)) for e in space.effects for u in grid]
    keys = []
    for f, e, u in jobs:
        params = None if e is None else space.physical(space.target(e, u))[e]
        keys.append(_clip_key(hashes[f], e or "raw", params))
    cache = None
    emb, hit = None, np.zeros(len(keys), dtype=bool)
    if cache_dir:
        shard = _curve_shard_key(model, resolve_device(model["device"]).type, preroll_s)
        cache = EmbeddingCache.open(
            Path(cache_dir) / "embeddings" / "phase3_curves" / f"{shard}.npz"
        )
        emb, hit = cache.lookup(keys)
    misses = np.flatnonzero(~hit)
    cost = dict(cache.meta.get("cost", {})) if cache is not None else {}
    log.info(
        "strength curves: %d clips (%d cached, %d to render and embed)",
        len(keys),
        int(hit.sum()),
        len(misses),
    )
    if len(misses):
        embedder = load_embedder_for_job("audio", model, threads)
        new, cost = _render_and_embed(
            embedder,
            paths,
            [jobs[m] for m in misses],
            space,
            preroll_s,
            job_batch_size(model, embedder),
        )
        emb = np.zeros((len(keys), embedder.dim), np.float32) if emb is None else emb
        emb[misses] = new
        if cache is not None:
            cache.add(
                [keys[m] for m in misses], new, {"model": embedder.info.to_dict(), "cost": cost}
            )
            cache.save()
    n_f, n_j, n_g = len(paths), len(space.effects), len(grid)
    raw_emb = emb[:n_f]
    rendered = emb[n_f:].reshape(n_f, n_j, n_g, -1)
    info = {"clap_calls": int(len(keys)), "clap_calls_this_run": int(len(misses)), "cost": cost}
    return raw_emb, rendered, info


def _image_strengths(
    sensitivity: Mapping[str, Any], effects: Sequence[str], intensities: Sequence[str]
) -> dict[str, ImageStrength]:
    """m_i(θ) per image effect from Phase 0's mean image ‖Δe‖ (section 6.2)."""
    means = {
        (r["effect_type"], r["intensity"]): r["mean"]
        for r in sensitivity["results"]
        if r["modality"] == "image"
    }
    out = {}
    for e in effects:
        missing = [i for i in intensities if means.get((e, i)) is None]
        if missing:
            raise PipelineError(
                f"sensitivity_results.json: no mean image ‖Δe‖ for {e} at {missing}: "
                "Phase 3's matched targets need every configured intensity"
            )
        out[e] = image_strength([means[(e, i)] for i in intensities])
    return out


def _solve_targets(
    frame: pd.DataFrame,
    grid: np.ndarray,
    curves: np.ndarray,
    effects: Sequence[str],
    strengths: Mapping[str, ImageStrength],
    train_files: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per sample: m_i(θ), the target strength κ_ij m_i(θ) and u* (section 6.2). κ_ij maps
    the strongest image level onto the median over training files of g_f(1), which is the
    audio delta norm of j at its strongest configured level on the same window."""
    j_of = {e: k for k, e in enumerate(effects)}
    kappa = {}
    for img, aud in (
        frame[["image_effect", "audio_effect"]].drop_duplicates().itertuples(index=False)
    ):
        median_audio = float(np.median(curves[train_files, j_of[aud], -1]))
        kappa[f"{img}->{aud}"] = median_audio / strengths[img].strongest
    j = frame["audio_effect"].map(j_of).to_numpy()
    m = np.array(
        [float(strengths[i](t)) for i, t in zip(frame["image_effect"], frame["level"], strict=True)]
    )
    k = np.array(
        [
            kappa[f"{i}->{a}"]
            for i, a in zip(frame["image_effect"], frame["audio_effect"], strict=True)
        ]
    )
    rows = curves[frame["file_index"].to_numpy(), j]
    solved = solve_u(grid, rows, k * m)
    out = frame[["sample"]].copy()
    out["image_strength"] = m
    out["kappa"] = k
    out["target_strength"] = k * m
    out["u_star"] = solved.u
    out["unreachable"] = solved.above
    return out, kappa


def _dependence(
    frame: pd.DataFrame,
    grid: np.ndarray,
    curves: np.ndarray,
    effects: Sequence[str],
    strengths: Mapping[str, ImageStrength],
    kappa: Mapping[str, float],
    level_words: Sequence[str],
    target: str,
    min_sd: float,
) -> dict[str, Any]:
    """Section 6.2's audio-dependence figure: u* of every file at each level word's bin
    centre θ (same description, same θ), before any training. In ``level`` mode the target
    is θ itself: no spread by construction."""
    n_files = curves.shape[0]
    cells = {}
    for img, aud in (
        frame[["image_effect", "audio_effect"]].drop_duplicates().itertuples(index=False)
    ):
        j = list(effects).index(aud)
        for w, word in enumerate(level_words):
            theta = (w + 0.5) / len(level_words)
            s = kappa[f"{img}->{aud}"] * float(strengths[img](theta))
            u = (
                solve_u(grid, curves[:, j], np.full(n_files, s)).u
                if target == "matched"
                else np.full(n_files, theta)
            )
            cells[(f"{img}->{aud}", word)] = u
    dep = audio_dependence(cells, min_sd)
    dep["target"] = target
    return dep


def _dependence_message(dep: Mapping[str, Any], min_sd: float) -> str:
    share = dep["share_explained_by_description"]
    return (
        f"u* spread across files for one description: SD {dep['sd_across_files']:.4f}; the "
        f"description alone explains {'n/a' if share is None else f'{share:.1%}'} of the "
        "variance of u*"
        + (
            ""
            if dep["can_matter"]
            else f" -- below {min_sd:g}: NO DECODER CAN BEAT TEXT-ONLY ON THIS DATA"
        )
    )


def run_strength(
    *,
    manifest: str,
    pairs: str,
    samples: str,
    sensitivity: str,
    model: Mapping[str, Any],
    intensities: Sequence[str],
    grid_size: int,
    preroll_s: float,
    target: str,
    min_sd: float,
    cache_dir: str | None,
    curves_out: str,
    targets_out: str,
    dependence_out: str,
    threads: int = 1,
) -> None:
    """Per-clip strength curves g_f(u), the matched targets u* and how much the audio can
    matter, all before training (sections 6.2, 6.4)."""
    doc = read_json(pairs)
    if doc["status"] != "ok":
        save_npz(curves_out, {"grid": np.zeros(0)}, {"status": doc["status"]})
        with atomic_path(targets_out) as tmp:
            pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
        write_json(dependence_out, {"status": doc["status"], "message": doc["message"]})
        log.warning("%s", doc["message"])
        return
    files = read_manifest(manifest)
    paths = [f.path for f in files]
    space = ParamSpace.from_dict(doc["paramspace"])
    grid = u_grid(grid_size)
    t0 = time.perf_counter()
    raw, rendered, info = _embed_curves(
        paths, manifest_hashes(manifest), space, grid, model, preroll_s, cache_dir, threads
    )
    seconds = time.perf_counter() - t0
    curves = curve_norms(raw, rendered.reshape(len(paths), -1, raw.shape[1])).reshape(
        rendered.shape[:3]
    )
    frame = pd.read_csv(samples, sep="\t", keep_default_na=False)
    train_files = np.array([p in set(doc["split"]["train_files"]) for p in paths])
    strengths = _image_strengths(
        read_json(sensitivity), sorted(set(frame["image_effect"])), intensities
    )
    targets, kappa = _solve_targets(frame, grid, curves, space.effects, strengths, train_files)
    if target == "level":
        targets["u_star"] = frame["level"].to_numpy()
        targets["unreachable"] = False
    dep = _dependence(
        frame, grid, curves, space.effects, strengths, kappa, doc["level_words"], target, min_sd
    )
    dep.update(
        status="ok",
        kappa=kappa,
        n_unreachable=int(targets["unreachable"].sum()),
        n_samples=len(targets),
        n_non_monotone_curves=int((np.diff(curves, axis=2) < 0).any(axis=2).sum()),
        grid_size=int(grid_size),
        curve_cost={
            **info,
            "seconds": seconds,
            "files": len(paths),
            "effects": list(space.effects),
        },
        message=_dependence_message(dep, min_sd),
    )
    (log.info if dep["can_matter"] else log.warning)(
        "AUDIO DEPENDENCE (%s targets): %s", target, dep["message"]
    )
    log.info(
        "%d of %d matched targets unreachable (clipped to u = 1); %d non-monotone curves",
        dep["n_unreachable"],
        len(targets),
        dep["n_non_monotone_curves"],
    )
    save_npz(
        curves_out,
        {
            "grid": grid,
            "paths": np.asarray(paths, dtype=str),
            "effects": np.asarray(space.effects, dtype=str),
            "curves": curves.astype(np.float32),
            "raw": raw,
            "rendered": rendered,
        },
        {"status": "ok", "cost": dep["curve_cost"]},
    )
    with atomic_path(targets_out) as tmp:
        targets.to_csv(tmp, sep="\t", index=False, float_format="%.8g")
    write_json(dependence_out, dep)


# --------------------------------------------------------------------------- training

BASELINES = {
    "decoder": "the cross-attention decoder (text attends over the audio windows)",
    "concat": "ablation: same head, text and mean window embedding concatenated, no attention",
    "text_mlp": "text-only MLP: same head, the text embedding alone",
    "text_lookup": "text-only lookup: mean training target per description meaning "
    "(image effect, level word)",
    "global_mean": "the mean training target vector for every sample",
    "no_effect": "A_raw itself (all parameters neutral)",
    "shuffled_audio": "the trained decoder with the audio windows permuted across test files",
    "oracle": "per-clip oracle: the target u* itself (floor of the grid and renders)",
    "text2fx_search": "Text2FX-style per-clip search: the grid u whose rendered audio's CLAP "
    "embedding is closest (cosine) to the CLAP text embedding of E_cond",
}
TRAINED_KINDS = {"decoder": "attention", "concat": "concat", "text_mlp": "text"}


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _history(result: TrainResult) -> list[dict[str, float]]:
    return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in result.history]


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
    for col in ("u_star", "target_strength", "unreachable", "image_strength"):
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
    text = data.text[data.desc_index[test]]
    files = data.file_index[test]
    test_files = np.unique(files)
    if len(test_files) < 2:
        raise PipelineError(
            f"the test split holds {len(test_files)} audio file: the shuffled-audio baseline and "
            "the intervals over test files need at least 2; add audio files or raise "
            "phase3.split.test"
        )
    perm = derangement(len(test_files), seed)
    shuffled = test_files[perm][np.searchsorted(test_files, files)]
    models = {
        name: model_with_state({"kind": TRAINED_KINDS[name], **base_arch}, r.best_state, dev)
        for name, r in results.items()
    }
    t0 = time.perf_counter()
    out = {"decoder": np.clip(predict(models["decoder"], text, data.audio[files], dev), 0, 1)}
    timing = {"decoder_forward_seconds_per_sample": (time.perf_counter() - t0) / len(test)}
    for name in ("concat", "text_mlp"):
        out[name] = np.clip(predict(models[name], text, data.audio[files], dev), 0, 1)
    out["shuffled_audio"] = np.clip(
        predict(models["decoder"], text, data.audio[shuffled], dev), 0, 1
    )
    keys = list(zip(frame["image_effect"], frame["level_word"], strict=True))
    out["text_lookup"], n_unseen = text_lookup(
        [keys[i] for i in train], data.targets[train], [keys[i] for i in test]
    )
    out["global_mean"] = np.broadcast_to(data.targets[train].mean(axis=0), (len(test), space.dim))
    out["no_effect"] = np.zeros((len(test), space.dim))
    out["oracle"] = data.targets[test]
    j_of = {str(e): k for k, e in enumerate(curves["effects"])}
    j = frame["audio_effect"].iloc[test].map(j_of).to_numpy()
    t1 = time.perf_counter()
    u = text2fx_search(curves["grid"], curves["rendered"][files, j], text)
    timing["text2fx_argmax_seconds_per_sample"] = (time.perf_counter() - t1) / len(test)
    out["text2fx_search"] = np.stack(
        [space.target(e, x) for e, x in zip(frame["audio_effect"].iloc[test], u, strict=True)]
    )
    timing["text_lookup_unseen_keys"] = int(n_unseen)
    return test, {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}, timing


def _strength_errors(
    ctx: Mapping[str, Any], test: np.ndarray, candidates: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per test sample and baseline: |g_f(û) − target| / target, g_f from the clip's curve
    and û the predicted value of the sample's audio effect (mean over its axes)."""
    data, space, frame, curves = ctx["data"], ctx["space"], ctx["frame"], ctx["curves"]
    j_of = {str(e): k for k, e in enumerate(curves["effects"])}
    effects = frame["audio_effect"].iloc[test].to_numpy()
    rows = curves["curves"][data.file_index[test], [j_of[e] for e in effects]]
    target = frame["target_strength"].iloc[test].to_numpy(np.float64)
    out = {}
    for name, pred in candidates.items():
        u = np.array([pred[n, space.axes_of(e)].mean() for n, e in enumerate(effects)])
        out[name] = strength_error(curve_at(curves["grid"], rows, u), target)
    return out


def _figures(
    per_sample: Mapping[str, Mapping[str, np.ndarray]],
    files: np.ndarray,
    mask: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """metric -> baseline -> bootstrap mean and 95 % interval over the test files in mask."""
    return {
        name: {
            metric: bootstrap_mean(values[mask], files[mask], n_boot, seed)
            for metric, values in metrics.items()
        }
        for name, metrics in per_sample.items()
    }


def _evaluate(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spectral: Mapping[str, np.ndarray],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Test figures (seen templates and held-out paraphrases apart) and the verdict."""
    data = ctx["data"]
    truth = data.targets[test]
    strength = _strength_errors(ctx, test, candidates)
    per_sample = {
        name: {
            "param_mse": per_sample_mse(pred, truth),
            "strength_error": strength[name],
            "logmel_db": spectral[name],
        }
        for name, pred in candidates.items()
    }
    files = data.file_index[test]
    seen = data.split[test] == "test"
    figures = {
        "test": _figures(per_sample, files, seen, n_boot, seed),
        "paraphrase": _figures(per_sample, files, ~seen, n_boot, seed) if (~seen).any() else {},
    }
    text_name = min(
        ("text_lookup", "text_mlp"), key=lambda k: figures["test"][k]["param_mse"]["mean"]
    )
    mse = {k: v["param_mse"][seen] for k, v in per_sample.items()}
    diff_text = bootstrap_difference(mse[text_name], mse["decoder"], files[seen], n_boot, seed)
    diff_shuf = bootstrap_difference(
        mse["shuffled_audio"], mse["decoder"], files[seen], n_boot, seed
    )
    concl = verdict(figures["test"], diff_text, diff_shuf, text_name)
    (log.info if concl["uses_audio"] else log.warning)("VERDICT: %s", concl["message"])
    log.info(
        "decoder beats %s; does not beat %s",
        concl["beats"] or "none",
        concl["does_not_beat"] or "none",
    )
    return {"figures": figures, "verdict": concl, "per_sample": per_sample}


def _spectral_validation(
    test_frame: pd.DataFrame,
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
    """Render A_aug and every candidate from A_raw; log-mel distances in dB re each clip's
    peak with top_db (NaN where not rendered).

    At most ``max_samples`` test samples are rendered (a seeded subset); the first
    ``examples`` of them, one pair after another, are written as WAV files.
    """
    import soundfile as sf

    from delta_v2a.media import load_audio

    n = len(test_frame)
    sr = spec.sample_rate
    pick = np.sort(np.random.default_rng([seed, 303]).permutation(n)[: min(n, max_samples)])
    dist = {k: np.full(n, np.nan) for k in candidates}
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    # Examples: round robin over pairs, each pair's rendered samples taken across its levels.
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i in pick:
        key = (test_frame.at[i, "image_effect"], test_frame.at[i, "audio_effect"])
        by_pair.setdefault(key, []).append(int(i))
    for lst in by_pair.values():  # strongest level first: the most audible examples
        lst.sort(key=lambda i: -float(test_frame.at[i, "level"]))
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
        path = test_frame.at[i, "path"]
        if path != raw_path:  # samples are grouped by file: one file in memory at a time
            raw, raw_path, mels = load_audio(path, sr, spec.window, preroll), path, {}
        target_db = log_mel_of(truth[i])
        for name, vecs in candidates.items():
            dist[name][i] = spectral_distance(log_mel_of(vecs[i]), target_db)
        if i in chosen_examples:
            stem = Path(path).stem
            label = (
                f"{chosen_examples.index(i):02d}_{stem}_{test_frame.at[i, 'image_effect']}-"
                f"{test_frame.at[i, 'audio_effect']}_{test_frame.at[i, 'level_word']}"
            )
            for kind, y in (
                ("raw", raw[preroll:]),
                ("target", space.render(raw, sr, truth[i], preroll)),
                ("predicted", space.render(raw, sr, candidates["decoder"][i], preroll)),
            ):
                with atomic_path(ex_dir / f"{label}_{kind}.wav", ".wav") as tmp:
                    sf.write(tmp, y, sr, subtype="FLOAT", format="WAV")
        if done % 50 == 0 or done == len(pick):
            log.info("rendered %d/%d test samples", done, len(pick))
    return dist, len(pick)


def _write_predictions(
    test_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spectral: Mapping[str, np.ndarray],
    out_dir: Path,
) -> None:
    cols = ["sample", "path", "category", "image_effect", "audio_effect", "level", "level_word"]
    cols += ["split", "held_out", "template", "description", "target_strength", "u_star"]
    out = test_frame[cols + ["unreachable"]].copy()
    for j, axis in enumerate(space.axes):
        out[f"true:{axis.name}"] = truth[:, j]
        for name, pred in candidates.items():
            if name != "oracle":
                out[f"pred_{name}:{axis.name}"] = pred[:, j]
    for j, axis in enumerate(space.axes):
        # Physical values as rendered (a bypassed effect shows its neutral value).
        out[f"true_value:{axis.name}"] = [_phys(space, v, j) for v in truth]
        out[f"pred_value:{axis.name}"] = [_phys(space, v, j) for v in candidates["decoder"]]
    for name, d in spectral.items():
        out[f"logmel_db:{name}"] = d
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.tsv") as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def _phys(space: ParamSpace, vec: np.ndarray, j: int) -> float:
    axis = space.axes[j]
    params = space.physical(vec)[axis.effect]
    return axis.neutral if params is None else float(params[axis.param])


def _apply_calibration(ctx: Mapping[str, Any], text_emb: np.ndarray) -> dict[str, Any]:
    """What ``delta-v2a apply`` accepts (section 6.7): the trained descriptions, and a cosine
    threshold to the nearest one, calibrated on the held-out paraphrases (the lowest
    nearest-trained similarity among them, so every held-out paraphrase would pass)."""
    frame, texts = ctx["frame"], ctx["texts"]
    trained = sorted(set(frame.loc[frame["split"] == "train", "description"]))
    held = frame.loc[frame["held_out"]].drop_duplicates("description")
    rows = {t: i for i, t in enumerate(texts)}
    t_emb = text_emb[[rows[t] for t in trained]]
    meaning = frame.drop_duplicates("description").set_index("description")
    calib, correct = [], 0
    for desc, effect, word in zip(
        held["description"], held["image_effect"], held["level_word"], strict=True
    ):
        sims = t_emb @ text_emb[rows[desc]]
        k = int(np.argmax(sims))
        hit = (meaning.at[trained[k], "image_effect"], meaning.at[trained[k], "level_word"]) == (
            effect,
            word,
        )
        correct += bool(hit)
        calib.append(
            {
                "paraphrase": desc,
                "nearest": trained[k],
                "cosine": float(sims[k]),
                "same_meaning": bool(hit),
            }
        )
    paraphrase_floor = min((c["cosine"] for c in calib), default=1.0)
    controls = [t for t in CONTROL_DESCRIPTIONS if t in rows and t not in meaning.index]
    control_sims = [float(np.max(t_emb @ text_emb[rows[t]])) for t in controls]
    control_ceiling = max(control_sims, default=-1.0)
    # Accept what the held-out paraphrases reach, but never what an unrelated description
    # reaches: where the two overlap the text tower cannot separate them, and refusing wins.
    threshold = max(paraphrase_floor, float(np.nextafter(control_ceiling, 2.0)))
    separable = control_ceiling < paraphrase_floor
    accepted = sum(c["cosine"] >= threshold for c in calib)
    (log.info if separable else log.warning)(
        "apply: unrelated control descriptions reach cosine %.4f, held-out paraphrases %.4f"
        "%s; %d of %d paraphrases accepted",
        control_ceiling,
        paraphrase_floor,
        "" if separable else " (NOT separable: the text tower cannot tell them apart)",
        accepted,
        len(calib),
    )
    log.info(
        "apply threshold: cosine >= %.4f to the nearest trained description (calibrated on "
        "%d held-out paraphrases, %d of them nearest to a description of the same meaning)",
        threshold,
        len(calib),
        correct,
    )
    return {
        "threshold": float(threshold),
        "trained_descriptions": trained,
        "trained_embeddings": torch_tensor(t_emb),
        "calibration": calib,
        "n_same_meaning": int(correct),
        "paraphrase_floor": float(paraphrase_floor),
        "control_ceiling": float(control_ceiling),
        "controls": [{"text": t, "cosine": c} for t, c in zip(controls, control_sims, strict=True)],
        "separable": bool(separable),
        "paraphrases_accepted": int(accepted),
    }


def torch_tensor(arr: np.ndarray) -> Any:
    import torch

    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def _portable_audio_model(table: EmbeddingTable, model_out: str) -> dict[str, Any]:
    """The CLAP id or path for ``apply`` (:func:`~delta_v2a.phase3.artifact.portable_model`)."""
    info = {**table.meta["model"], "normalize": bool(table.meta.get("normalize", True))}
    return portable_model(info, model_out)


def run_train(
    *,
    windows: str,
    samples: str,
    pairs: str,
    texts: str,
    targets: str,
    curves: str,
    dependence: str,
    model_out: str,
    log_out: str,
    predictions_dir: str,
    training_figure: str,
    predictions_figure: str,
    architecture: Mapping[str, Any],
    training: Mapping[str, Any],
    target: str,
    seed: int,
    mel: Mapping[str, Any],
    spectral_max_samples: int,
    examples: int,
    bootstrap: int,
    preroll_s: float,
    checkpoint_dir: str,
    checkpoint_interval_s: float = 0.0,
    log_every: int = 10,
    device: str = "cpu",
    threads: int = 1,
    transfer_inputs: Mapping[str, str] | None = None,
    u_grid: int = 11,
) -> None:
    """Train on train files, choose the epoch on validation files, report every figure from
    the test files once, with every baseline (sections 6.3-6.6).

    ``transfer_inputs`` (image_store, audio_store, sensitivity, labels) adds what
    ``delta-v2a transfer`` needs to the model file (docs/methods.md §7)."""
    import torch

    from delta_v2a.models import resolve_device

    torch.set_num_threads(max(1, threads))
    pairs_doc = read_json(pairs)
    if pairs_doc["status"] != "ok":
        _write_untrained(
            pairs_doc, model_out, log_out, predictions_dir, [training_figure, predictions_figure]
        )
        return
    dev = resolve_device(device)
    ctx = _load_training_data(windows, pairs, samples, texts, targets, curves)
    data, space, table = ctx["data"], ctx["space"], ctx["table"]
    settings = TrainSettings(
        **{k: training[k] for k in ("epochs", "batch_size", "lr", "weight_decay")}, seed=seed
    )
    base_arch = _base_arch(data, space, architecture)
    dep = _announce(data, settings, dev, dependence)
    results = _train_models(
        data, base_arch, settings, checkpoint_dir, checkpoint_interval_s, dev, log_every
    )
    test, candidates, timing = _test_predictions(ctx, results, base_arch, dev, seed)
    spec = WindowSpec(**table.meta["windows"])
    preroll = int(round(preroll_s * spec.sample_rate))
    spectral, rendered, render_seconds = _render_test(
        ctx,
        test,
        candidates,
        spec,
        preroll,
        mel,
        spectral_max_samples,
        examples,
        predictions_dir,
        seed,
    )
    ev = _evaluate(ctx, test, candidates, spectral, bootstrap, seed)
    cost = _cost(dep, spec, timing)
    calibration = _apply_calibration(ctx, data.text)
    doc = _training_log(
        ctx,
        results,
        base_arch,
        settings,
        dep,
        ev,
        cost,
        rendered,
        render_seconds,
        mel,
        target,
        seed,
        str(dev),
        timing,
    )
    transfer = _transfer_entry(transfer_inputs, pairs, model_out, u_grid, seed)
    _save_model(
        model_out, ctx, results, base_arch, ev, calibration, target, preroll, seed, transfer
    )
    _figures_png(ctx, test, results, candidates, ev, training_figure, predictions_figure)
    write_json(log_out, doc)


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


def _render_test(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spec: WindowSpec,
    preroll: int,
    mel: Mapping[str, Any],
    max_samples: int,
    examples: int,
    predictions_dir: str,
    seed: int,
) -> tuple[dict[str, np.ndarray], int, float]:
    """Log-mel distances of every baseline's render on (a seeded subset of) the test
    samples, and predictions.tsv with every test sample."""
    data, space = ctx["data"], ctx["space"]
    test_frame = ctx["frame"].iloc[test].reset_index(drop=True)
    t0 = time.perf_counter()
    spectral, rendered = _spectral_validation(
        test_frame,
        data.targets[test],
        candidates,
        space,
        spec,
        preroll,
        MelSettings(**mel),
        max_samples,
        examples,
        Path(predictions_dir),
        seed,
    )
    seconds = time.perf_counter() - t0
    _write_predictions(
        test_frame, data.targets[test], candidates, space, spectral, Path(predictions_dir)
    )
    return spectral, rendered, seconds


def _figures_png(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    results: Mapping[str, TrainResult],
    candidates: Mapping[str, np.ndarray],
    ev: Mapping[str, Any],
    training_figure: str,
    predictions_figure: str,
) -> None:
    from delta_v2a.plots import decoder_prediction_figure, decoder_training_figure

    note = ctx["pairs"]["meta"].get("note", "")
    decoder_training_figure(
        {k: r.history for k, r in results.items()}, ev["figures"]["test"], training_figure, note
    )
    seen = ctx["data"].split[test] == "test"
    decoder_prediction_figure(
        ctx["frame"].iloc[test][seen],
        ctx["data"].targets[test][seen],
        candidates["decoder"][seen],
        ctx["space"].names,
        predictions_figure,
        note,
    )


def _cost(dep: Mapping[str, Any], spec: WindowSpec, timing: Mapping[str, float]) -> dict[str, Any]:
    """CLAP calls and seconds per clip: the decoder (its windows + one text) against the
    per-clip search (every grid u rendered and embedded + one text), from the per-clip costs
    measured in the strength-curve job."""
    c = dep["curve_cost"]["cost"]
    embed, render = c.get("embed_seconds_per_clip"), c.get("render_seconds_per_clip")
    g = int(dep["grid_size"])
    known = embed is not None and render is not None
    return {
        "decoder": {
            "clap_audio_calls_per_clip": spec.count,
            "clap_text_calls": 1,
            "seconds_per_clip": spec.count * embed + timing["decoder_forward_seconds_per_sample"]
            if known
            else None,
        },
        "text2fx_search": {
            "clap_audio_calls_per_clip": g,
            "clap_text_calls": 1,
            "seconds_per_clip": g * (embed + render) + timing["text2fx_argmax_seconds_per_sample"]
            if known
            else None,
        },
        "per_clip_costs": dict(c),
        "u_grid": {
            k: dep["curve_cost"][k]
            for k in ("clap_calls", "clap_calls_this_run", "seconds", "files", "effects")
        },
    }


def _training_log(
    ctx: Mapping[str, Any],
    results: Mapping[str, TrainResult],
    base_arch: Mapping[str, Any],
    settings: TrainSettings,
    dep: Mapping[str, Any],
    ev: Mapping[str, Any],
    cost: Mapping[str, Any],
    rendered: int,
    render_seconds: float,
    mel: Mapping[str, Any],
    target: str,
    seed: int,
    device: str,
    timing: Mapping[str, Any],
) -> dict[str, Any]:
    """training_log.json: every figure from the test split, every baseline, the verdict."""
    p, frame, data = ctx["pairs"], ctx["frame"], ctx["data"]
    main = results["decoder"]
    return {
        "meta": p["meta"],
        "status": "trained",
        "target": target,
        "verdict": ev["verdict"],
        "audio_dependence": dict(dep),
        "pairs": {k: p[k] for k in ("threshold", "significance", "rows", "chosen")},
        "seeds": {
            "seed": int(seed),
            "split_and_levels": "numpy default_rng([seed, 101]) / ([seed, 202])",
            "init": "torch.manual_seed(seed)",
            "shuffle": "torch.Generator().manual_seed(seed + 1)",
            "spectral_subsample": "numpy default_rng([seed, 303])",
            "bootstrap": "numpy default_rng([seed, 404])",
            "audio_shuffle": "numpy default_rng([seed, 505])",
        },
        "data": {
            "n_samples": len(frame),
            "samples_per_split": {
                k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")
            },
            "n_files": int(frame["path"].nunique()),
            "split": p["split"],
            "levels_per_pair": p["levels_per_pair"],
            "level_words": p["level_words"],
            "templates": p["templates"],
            "heldout_templates": p["heldout_templates"],
            "n_unreachable_targets": int(frame["unreachable"].sum()),
        },
        "paramspace": ctx["space"].to_dict(),
        "windows": {**ctx["table"].meta["windows"], "hop_s": ctx["table"].meta.get("hop_s")},
        "architecture": {"kind": "attention", **base_arch},
        "training": {
            **asdict(settings),
            "optimizer": "AdamW",
            "loss": "MSE on the normalised parameter vector",
            "device": device,
            "epoch_chosen_on": "validation files",
            "models": {
                name: {
                    "kind": TRAINED_KINDS[name],
                    "best_epoch": r.best_epoch,
                    "best_val_loss": r.best_val_loss,
                    "train_seconds": r.train_seconds,
                    "epochs_per_s": _finite(r.epochs_per_s),
                    "epochs_this_run": r.epochs_run,
                    "resumed_from_epoch": r.resumed_from,
                    "history": _history(r),
                }
                for name, r in results.items()
            },
        },
        "best_epoch": main.best_epoch,
        "best_val_loss": main.best_val_loss,
        "test": {
            "figures": ev["figures"]["test"],
            "paraphrase_figures": ev["figures"]["paraphrase"],
            "interval": "95 % percentile bootstrap over test files",
            "n_rendered": rendered,
            "render_seconds": render_seconds,
            "mel": dict(mel),
            "metrics": {
                "param_mse": "mean squared error of the normalised parameter vector",
                "strength_error": "|g_f(u_hat) - target| / target, g_f the clip's strength curve",
                "logmel_db": "mean |log-mel(A) - log-mel(A_aug)|, dB re each clip's peak, top_db",
            },
            "baselines": BASELINES,
            "text_lookup_unseen_keys": timing["text_lookup_unseen_keys"],
        },
        "cost": dict(cost),
    }


def _compact(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: {m: {k: v for k, v in f.items()} for m, f in metrics.items()}
        for name, metrics in figures.items()
    }


def _save_model(
    model_out: str,
    ctx: Mapping[str, Any],
    results: Mapping[str, TrainResult],
    base_arch: Mapping[str, Any],
    ev: Mapping[str, Any],
    calibration: Mapping[str, Any],
    target: str,
    preroll: int,
    seed: int,
    transfer: Mapping[str, Any] | None = None,
) -> None:
    """decoder_model.pt: plain values and tensors only (weights_only=True), with the optional
    "transfer" entry (prototypes, strength curves, pairs) that ``delta-v2a transfer`` reads."""
    p = ctx["pairs"]
    meta = p["meta"]
    save_decoder(
        model_out,
        {
            "status": "trained",
            "arch": {"kind": "attention", **base_arch},
            "state_dict": results["decoder"].best_state,
            "paramspace": ctx["space"].to_dict(),
            "level_words": list(p["level_words"]),
            "templates": dict(p["templates"]),
            "heldout_templates": dict(p["heldout_templates"]),
            "pairs": list(p["chosen"]),
            "target": target,
            "audio_model": _portable_audio_model(ctx["table"], model_out),
            "windows": {k: int(v) for k, v in ctx["table"].meta["windows"].items()},
            "preroll": preroll,
            "best_epoch": results["decoder"].best_epoch,
            "best_val_loss": results["decoder"].best_val_loss,
            "test_figures": _compact(ev["figures"]["test"]),
            "verdict": {k: ev["verdict"][k] for k in ("uses_audio", "message")},
            "apply": dict(calibration),
            "seed": int(seed),
            "not_science": bool(meta.get("not_science", False)),
            "note": meta.get("note", ""),
            **({"transfer": dict(transfer)} if transfer else {}),
        },
    )
