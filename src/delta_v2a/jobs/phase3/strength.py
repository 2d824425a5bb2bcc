"""Rule ``phase3_strength``: every clip's strength curve g_f(u), the matched targets u* and
the audio-dependence figure, all before any training (docs/methods.md §6.2, §6.4). Each
(clip, effect, u) is rendered and embedded once and cached by content."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.dependence import AudioDependence
from delta_v2a.artifacts.pairs import Pairs
from delta_v2a.artifacts.phase0 import SensitivityResults
from delta_v2a.extract import manifest_hashes, read_manifest
from delta_v2a.jobs.common import (
    Paths,
    PipelineError,
    job_batch_size,
    load_embedder_for_job,
    log,
)
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.strength import (
    MAX_UNREACHABLE_SHARE,
    ImageStrength,
    TargetOptions,
    curve_norms,
    dependence_message,
    image_strengths,
    matched_targets,
    render_clip,
    u_grid,
    unreachable_line,
)
from delta_v2a.settings import ModelSpec, StrengthSettings
from delta_v2a.storage import NAMES, atomic_path, save_npz

CURVES_VERSION = 1


def _curve_shard_key(model: ModelSpec, device_type: str, preroll_s: float) -> str:
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
        clips = [render_clip(raw, sr, space, jobs[n][1], jobs[n][2], preroll) for n in ns]
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
    settings: StrengthSettings,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """raw (F, D) and rendered (F, J, G, D) CLAP embeddings; each clip × u embedded once and
    cached by content (:func:`delta_v2a.cache.fill`); the model loads only for misses."""
    from delta_v2a.cache import fill
    from delta_v2a.models import resolve_device

    model, preroll_s = settings.model, settings.preroll_s
    jobs = [(f, None, 0.0) for f in range(len(paths))]
    jobs += [(f, e, float(u)) for f in range(len(paths)) for e in space.effects for u in grid]
    keys = []
    for f, e, u in jobs:
        params = None if e is None else space.physical(space.target(e, u))[e]
        keys.append(_clip_key(hashes[f], e or "raw", params))
    shard = None
    if settings.cache_dir:
        key = _curve_shard_key(model, resolve_device(model.device).type, preroll_s)
        shard = Path(settings.cache_dir) / "embeddings" / "phase3_curves" / f"{key}.npz"

    def embed_missing(misses: np.ndarray) -> tuple[np.ndarray, dict]:
        log.info("strength curves: %d of %d clips to render and embed", len(misses), len(keys))
        embedder = load_embedder_for_job(model, threads)
        new, cost = _render_and_embed(
            embedder,
            paths,
            [jobs[m] for m in misses],
            space,
            preroll_s,
            job_batch_size(settings.batch, embedder),
        )
        return new, {"model": embedder.info.to_dict(), "cost": cost}

    filled = fill(shard, keys, embed_missing)
    n_new = int((~filled.hit).sum())
    log.info("strength curves: %d clips, %d from the cache", len(keys), len(keys) - n_new)
    n_f = len(paths)
    rendered = filled.embeddings[n_f:].reshape(n_f, len(space.effects), len(grid), -1)
    info = {
        "clap_calls": int(len(keys)),
        "clap_calls_this_run": n_new,
        "cost": dict(filled.meta.get("cost", {})),
    }
    return filled.embeddings[:n_f], rendered, info


def _strengths(
    sensitivity: str, frame: pd.DataFrame, intensities: Sequence[str]
) -> dict[str, ImageStrength]:
    """m_i(θ) of the samples' image effects from Phase 0's sensitivity file."""
    means = SensitivityResults.read(sensitivity).image_means()  # names the file when bad
    try:
        return image_strengths(
            means,
            sorted(set(frame["image_effect"])),
            intensities,
        )
    except ValueError as err:
        raise PipelineError(f"{sensitivity}: {err}") from None


def _write_no_strength(pairs: Pairs, outputs: Paths) -> None:
    """No pair: the declared outputs, each saying why."""
    save_npz(outputs.curves, {"grid": np.zeros(0)}, {"status": pairs.status})
    with atomic_path(outputs.targets) as tmp:
        pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
    AudioDependence(status=pairs.status, message=pairs.message).write(outputs.dependence)
    log.warning("%s", pairs.message)


def _log_dependence(dep: Mapping[str, Any], target: str) -> None:
    (log.info if dep["can_matter"] else log.warning)(
        "AUDIO DEPENDENCE (%s targets): %s", target, dep["message"]
    )
    loud = dep.get("unreachable_share", 0.0) > MAX_UNREACHABLE_SHARE
    (log.warning if loud else log.info)(
        "%s; %d non-monotone curves", unreachable_line(dep), dep["n_non_monotone_curves"]
    )


def run_strength(
    *, inputs: Paths, outputs: Paths, settings: StrengthSettings, threads: int
) -> None:
    """Per-clip strength curves g_f(u), the matched targets u* and how much the audio can
    matter, all before training (sections 6.2, 6.4)."""
    pairs = Pairs.read(inputs.pairs)
    if pairs.data is None:
        _write_no_strength(pairs, outputs)
        return
    paths = [f.path for f in read_manifest(inputs.manifest)]
    space, grid = pairs.data.space(), u_grid(settings.grid_size)
    t0 = time.perf_counter()
    raw, rendered, info = _embed_curves(
        paths, manifest_hashes(inputs.manifest), space, grid, settings, threads
    )
    cost = {**info, "seconds": time.perf_counter() - t0, "files": len(paths)}
    cost["effects"] = list(space.effects)
    curves = curve_norms(raw, rendered.reshape(len(paths), -1, raw.shape[1])).reshape(
        rendered.shape[:3]
    )
    frame = pd.read_csv(inputs.samples, sep="\t", keep_default_na=False, encoding_errors=NAMES)
    opts = TargetOptions(settings.target, settings.min_sd, settings.kappa_percentile)
    targets, dep = matched_targets(
        frame,
        paths,
        pairs.data.split,
        grid,
        curves,
        space.effects,
        _strengths(inputs.sensitivity, frame, settings.intensities),
        pairs.level_words,
        opts,
    )
    dep.update(curve_cost=cost, message=dependence_message(dep, settings.min_sd))
    _log_dependence(dep, settings.target)
    arrays = {"grid": grid, "paths": np.asarray(paths, dtype=str)}
    arrays |= {"effects": np.asarray(space.effects, dtype=str), "curves": curves.astype(np.float32)}
    save_npz(
        outputs.curves, arrays | {"raw": raw, "rendered": rendered}, {"status": "ok", "cost": cost}
    )
    with atomic_path(outputs.targets) as tmp:
        targets.to_csv(tmp, sep="\t", index=False, float_format="%.8g", errors=NAMES)
    AudioDependence.build(dep).write(outputs.dependence)
