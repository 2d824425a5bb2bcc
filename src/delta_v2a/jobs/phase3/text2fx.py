"""The phase3 job's Text2FX-style competitor: per test sample, a continuous search over u
that maximises the CLAP cosine between the rendered clip and the description
(:func:`delta_v2a.phase3.search.search_clips`, docs/methods.md §6.4). The CLAP loads once,
only when the budget asks for renders; each clip is rendered exactly as the strength curves
were (:func:`~delta_v2a.phase3.strength.render_clip`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from delta_v2a.jobs.common import PipelineError, load_embedder_for_job, log
from delta_v2a.phase3.search import ClipSearch, search_clips
from delta_v2a.phase3.strength import render_clip
from delta_v2a.settings import Phase3Settings


def _clip_embedder(ctx: Mapping[str, Any], settings: Phase3Settings, threads: int):
    """``embed(file, effect, u)`` on the job's CLAP, holding one file's audio at a time, and
    a dict of the seconds spent rendering and embedding."""
    from delta_v2a.media import load_audio

    embedder = load_embedder_for_job(settings.model, threads)
    if embedder.info.name_or_path != ctx["table"].meta["model"]["name_or_path"]:
        raise PipelineError(
            f"models.audio is {embedder.info.name_or_path!r} but the window embeddings come "
            f"from {ctx['table'].meta['model']['name_or_path']!r}: rerun"
        )
    sr, window = embedder.sampling_rate, embedder.window_samples
    preroll = int(round(settings.preroll_s * sr))
    paths, space = [str(p) for p in ctx["table"].paths], ctx["space"]
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


def text2fx_test(
    ctx: Mapping[str, Any], test: np.ndarray, settings: Phase3Settings, threads: int
) -> tuple[ClipSearch, dict[str, Any]]:
    """The search on every test sample (held-out paraphrases included) and its cost: calls
    per clip (what each search asked for) and the CLAP calls and seconds actually spent."""
    data, frame, curves = ctx["data"], ctx["frame"], ctx["curves"]
    effects = frame["audio_effect"].iloc[test].to_numpy().astype(str)
    j_of = {str(e): k for k, e in enumerate(curves["effects"])}
    files = data.file_index[test]
    known = curves["rendered"][files, [j_of[e] for e in effects]]  # (N, G, D)
    budget = settings.text2fx_budget
    t0 = time.perf_counter()
    if budget > 0:
        embed, spent = _clip_embedder(ctx, settings, threads)
    else:  # phase3.text2fx_budget: 0 asks for the grid argmax: nothing to render
        embed, spent = None, {"render": 0.0, "embed": 0.0}
    result = search_clips(
        embed, files, effects, data.text[data.desc_index[test]], curves["grid"], known,
        budget=budget,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    n = len(test)
    cost = {
        "budget": int(budget),
        "grid_points_free": int(len(curves["grid"])),
        "search_calls_per_clip": float(result.calls.mean()) if n else 0.0,
        "search_calls_max": int(result.calls.max()) if n else 0,
        "clap_calls_made": int(result.embedded),
        "seconds_per_sample": seconds / max(n, 1),
        "render_seconds": spent["render"],
        "embed_seconds": spent["embed"],
    }
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
