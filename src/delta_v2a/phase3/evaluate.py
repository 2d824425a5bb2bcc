"""Phase 3 evaluation on the test split: the metrics, bootstrap intervals over test files
(description), the verdict (an exact sign test over files, :mod:`delta_v2a.phase3.inference`)
and the cost comparison (docs/methods.md sections 6.4-6.6). The baselines'
predictions come from :mod:`delta_v2a.phase3.baselines`. Pure functions on arrays, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delta_v2a.phase3.inference import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_TEST_FILES,
    GATES,
    Phase3Verdict,
    file_mean_differences,
    phase3_verdict,
)

__all__ = [
    "METRICS",
    "TEXT_ONLY",
    "choose_text_only",
    "bootstrap_mean",
    "bootstrap_difference",
    "cost_comparison",
    "evaluate_test",
    "figures_over_files",
    "seed_spread",
    "per_sample_mse",
    "strength_error",
    "strength_errors",
    "verdict",
]

#: Every test figure, lower is better (docs/methods.md §6.5).
METRICS = {
    "param_mse": "mean squared error of the normalised parameter vector",
    "strength_error": "|g_f(u_hat) - target| / target, g_f the clip's strength curve",
    "logmel_db": "mean |log-mel(A) - log-mel(A_aug)|, dB re each clip's peak, top_db",
    "logmel_gain_db": "mean |log-mel(A) - log-mel(A_aug)|, dB re a common reference (power "
    "1), floored at floor_db: sees a gain error the peak-relative one cannot",
}


#: The text-only candidates; the verdict's text-only gate uses the better one ON VALIDATION.
TEXT_ONLY = ("text_lookup", "text_mlp")


def choose_text_only(validation_mse: Mapping[str, float]) -> str:
    """The text-only baseline the verdict compares against: the lower validation MSE (mean
    over validation files) of ``TEXT_ONLY``, ties to the lookup. Chosen on validation, never
    on test: a choice made on the test files would bias the gate towards the weaker
    baseline's complement (issue 34)."""
    return min(TEXT_ONLY, key=lambda k: (validation_mse[k], TEXT_ONLY.index(k)))


def per_sample_mse(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) mean squared error over the parameter axes of each sample."""
    return ((np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2).mean(axis=1)


def _file_means(values: np.ndarray, files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-file means of the finite values (files with none are left out)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    uniq = np.unique(np.asarray(files)[ok])
    means = np.array([values[ok][np.asarray(files)[ok] == f].mean() for f in uniq])
    return uniq, means


def bootstrap_mean(
    values: np.ndarray, files: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> dict[str, Any]:
    """Mean over files of the per-file mean, with a percentile bootstrap interval that
    resamples test files (samples of one file are not independent: same audio)."""
    _, means = _file_means(values, files)
    if len(means) == 0:
        return {"mean": None, "low": None, "high": None, "n_files": 0}
    rng = np.random.default_rng([seed, 404])
    boots = means[rng.integers(len(means), size=(n_boot, len(means)))].mean(axis=1)
    q = (1.0 - level) / 2.0
    return {
        "mean": float(means.mean()),
        "low": float(np.quantile(boots, q)),
        "high": float(np.quantile(boots, 1.0 - q)),
        "n_files": int(len(means)),
    }


def bootstrap_difference(
    a: np.ndarray, b: np.ndarray, files: np.ndarray, n_boot: int, seed: int
) -> dict[str, Any]:
    """``a − b`` per sample, then :func:`bootstrap_mean` over files (paired by sample)."""
    return bootstrap_mean(np.asarray(a) - np.asarray(b), files, n_boot, seed)


def strength_error(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``|‖Δ_audio(P̂)‖ − target| / target`` per sample (NaN where the target is 0)."""
    target = np.asarray(target, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(target > 0, np.abs(np.asarray(achieved) - target) / target, np.nan)


def verdict(
    figures: Mapping[str, Mapping[str, Any]],
    inference: Phase3Verdict,
    diff_text: Mapping[str, Any],
    diff_shuffled: Mapping[str, Any],
    text_name: str,
    metric: str = "param_mse",
    text_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """ "The decoder uses the audio" only when :func:`~delta_v2a.phase3.inference.phase3_verdict`
    passes: on enough test files, each gate (text-only − decoder, shuffled − decoder) has a
    Holm-corrected one-sided sign-test p <= alpha and a positive mean, in every seed. The
    bootstrap intervals are kept as description (they are no test: with few files they are
    far too narrow). Lists which baselines the decoder beats on ``metric`` (point estimates;
    lower is better) and which it does not. A gate counts as passed only when it passed in
    every seed; ``text_names`` is each seed's text-only baseline (default: ``text_name``)."""
    passed = {
        g: bool(inference.seeds)
        and all(c.passed for r in inference.seeds for c in r.comparisons if c.name == g)
        for g in GATES
    }
    mine = figures["decoder"][metric]["mean"]
    beaten, not_beaten = [], []
    for name, fig in figures.items():
        other = fig.get(metric, {}).get("mean")
        if name == "decoder" or other is None or mine is None:
            continue
        (beaten if mine < other else not_beaten).append(name)
    uses = inference.uses_audio
    head = {
        # what a pass generalises to: files are the unit, not genres (docs/methods.md §6.5)
        "pass": "the decoder USES THE AUDIO: on a new song of the genres studied it beats "
        "text-only and its own output on other songs' audio with probability above 1/2 "
        "(exact sign test over test files; the mean difference is described, not claimed): ",
        "fail": "NO EVIDENCE THAT THE DECODER USES THE AUDIO: ",
        "inconclusive": "INCONCLUSIVE, NO EVIDENCE THAT THE DECODER USES THE AUDIO: ",
    }[inference.status]
    return {
        "uses_audio": uses,
        "status": inference.status,
        "reason": inference.reason,
        "beats_text_only": passed[GATES[0]],
        "shuffled_audio_hurts": passed[GATES[1]],
        "text_only_baseline": text_name,
        "text_only_baseline_per_seed": list(text_names or [text_name]),
        "seeds": [r.seed for r in inference.seeds],
        "seeds_passed": [r.seed for r in inference.seeds if r.passed],
        "metric": metric,
        "inference": inference.to_dict(),
        "difference_text_only_minus_decoder": dict(diff_text),
        "difference_shuffled_minus_decoder": dict(diff_shuffled),
        "beats": beaten,
        "does_not_beat": not_beaten,
        "message": head + inference.reason,
    }


def strength_errors(
    candidates: Mapping[str, np.ndarray],
    axes: Sequence[Sequence[int]],
    grid: np.ndarray,
    curves: np.ndarray,
    target: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per sample and baseline: |g_f(û) − target| / target, with g_f the sample's strength
    curve (row of ``curves``, sampled at ``grid``) and û the mean predicted value over the
    parameter axes of the sample's audio effect (``axes[n]``)."""
    from delta_v2a.phase3.strength import curve_at

    out = {}
    for name, pred in candidates.items():
        u = np.array([pred[n, list(ax)].mean() for n, ax in enumerate(axes)])
        out[name] = strength_error(curve_at(grid, curves, u), target)
    return out


def figures_over_files(
    per_sample: Mapping[str, Mapping[str, np.ndarray]],
    files: np.ndarray,
    mask: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """baseline -> metric -> bootstrap mean and 95 % interval over the test files in mask."""
    return {
        name: {
            metric: bootstrap_mean(values[mask], files[mask], n_boot, seed)
            for metric, values in metrics.items()
        }
        for name, metrics in per_sample.items()
    }


def seed_spread(
    per_seed: Sequence[Mapping[str, Mapping[str, np.ndarray]]], files: np.ndarray, mask: np.ndarray
) -> dict[str, dict[str, dict[str, Any]]]:
    """baseline -> metric -> each seed's mean over files (in ``mask``) and their SD across
    seeds (ddof 1; 0 with one seed): how much the figure depends on the training seed. The
    untrained baselines are the same in every seed, so their SD is 0."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, metrics in per_seed[0].items():
        out[name] = {}
        for metric in metrics:
            means = []
            for ps in per_seed:
                _, m = _file_means(ps[name][metric][mask], files[mask])
                means.append(float(m.mean()) if len(m) else float("nan"))
            arr = np.array(means)
            ok = arr[np.isfinite(arr)]
            sd = _spread(ok) if len(ok) else None
            out[name][metric] = {"per_seed": [_or_none(x) for x in means], "seed_sd": sd}
    return out


def _spread(values: np.ndarray) -> float:
    """SD (ddof 1) of the seeds' means; exactly 0 when they are all equal, since a
    computed SD of equal floats can come out at 1e-17 depending on how the platform sums."""
    if len(values) < 2 or np.all(values == values[0]):
        return 0.0
    return float(values.std(ddof=1))


def _or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _seed_mean(
    per_seed: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    """Each baseline's per-sample value averaged over seeds (the samples' NaN pattern is the
    same in every seed: the same samples are rendered)."""
    return {
        name: {m: np.mean([ps[name][m] for ps in per_seed], axis=0) for m in metrics}
        for name, metrics in per_seed[0].items()
    }


def _with_spread(figures: dict, spread: Mapping) -> dict:
    """The seed-averaged figures with each seed's mean and their SD added."""
    for name, metrics in figures.items():
        for metric, fig in metrics.items():
            fig.update(spread[name][metric])
    return figures


def evaluate_test(
    per_seed: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
    files: np.ndarray,
    seen: np.ndarray,
    n_boot: int,
    seed: int,
    *,
    seeds: Sequence[int] | None = None,
    text_only: Sequence[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_test_files: int = DEFAULT_MIN_TEST_FILES,
    reported: Sequence[str] = ("curve_inversion", "text2fx_search", "oracle"),
) -> dict[str, Any]:
    """Test figures, seen templates (``seen``) and held-out paraphrases apart, and the
    verdict from the seen ones, over one or several training seeds (``per_seed[s]``: baseline
    -> metric -> per-sample values of seed ``seeds[s]``; §6.5-6.6).

    Figures are over the per-sample values averaged over seeds (mean over files, percentile
    bootstrap over files) with each seed's mean and their SD. The verdict: per seed, the
    decoder against that seed's text-only baseline (``text_only[s]``, chosen on validation by
    :func:`choose_text_only`; default the lookup) and against itself on shuffled audio,
    per-file differences paired by sample, tested over files; it passes only when
    every seed passes (:func:`phase3_verdict`). The ``reported`` baselines that are present
    are compared too, without gating."""
    seeds = list(range(len(per_seed))) if seeds is None else list(seeds)
    if len(seeds) != len(per_seed) or not per_seed:
        raise ValueError(f"{len(per_seed)} per-seed results for the seeds {seeds}")
    mean = _seed_mean(per_seed)
    figures = {
        "test": _with_spread(
            figures_over_files(mean, files, seen, n_boot, seed), seed_spread(per_seed, files, seen)
        ),
        "paraphrase": _with_spread(
            figures_over_files(mean, files, ~seen, n_boot, seed),
            seed_spread(per_seed, files, ~seen),
        )
        if (~seen).any()
        else {},
    }
    text_names = list(text_only) if text_only is not None else [TEXT_ONLY[0]] * len(per_seed)
    if len(text_names) != len(per_seed) or not set(text_names) <= set(TEXT_ONLY):
        raise ValueError(f"text_only must name one of {TEXT_ONLY} per seed, got {text_names}")
    per_file: dict[str, list[np.ndarray]] = {}
    for ps, text_name in zip(per_seed, text_names, strict=True):
        mse = {k: v["param_mse"][seen] for k, v in ps.items()}
        names = {GATES[0]: text_name, GATES[1]: "shuffled_audio"}
        names.update({r: r for r in reported if r in mse})
        for gate, name in names.items():
            d = file_mean_differences(mse[name], mse["decoder"], files[seen])[1]
            per_file.setdefault(gate, []).append(d)
    text_mse = np.mean([ps[t]["param_mse"] for ps, t in zip(per_seed, text_names, strict=True)], 0)
    diff_text = bootstrap_difference(
        text_mse[seen], mean["decoder"]["param_mse"][seen], files[seen], n_boot, seed
    )
    diff_shuf = bootstrap_difference(
        mean["shuffled_audio"]["param_mse"][seen],
        mean["decoder"]["param_mse"][seen],
        files[seen],
        n_boot,
        seed,
    )
    inference = phase3_verdict(
        {k: np.stack(v) for k, v in per_file.items()},
        alpha=alpha,
        min_test_files=min_test_files,
        n_boot=n_boot,
        seed_labels=seeds,
    )
    v = verdict(
        figures["test"], inference, diff_text, diff_shuf, text_names[0], "param_mse", text_names
    )
    return {"figures": figures, "verdict": v, "per_sample": mean}


def cost_comparison(
    curve_cost: Mapping[str, Any], grid_size: int, n_windows: int, timing: Mapping[str, Any]
) -> dict[str, Any]:
    """CLAP calls and seconds per clip: the decoder (its windows + one text) against the
    Text2FX-style search, whose clip pays the grid (rendered and embedded, free here because
    the strength job made it, not free for a standalone run) plus its own search calls
    (``timing["text2fx"]``, measured in this job); per-clip grid costs from the strength
    job (``curve_cost``)."""
    c = curve_cost["cost"]
    embed, render = c.get("embed_seconds_per_clip"), c.get("render_seconds_per_clip")
    known = embed is not None and render is not None
    decoder_s = n_windows * embed + timing["decoder_forward_seconds_per_sample"] if known else None
    search = timing["text2fx"]
    search_s = grid_size * (embed + render) + search["seconds_per_sample"] if known else None
    return {
        "decoder": {
            "clap_audio_calls_per_clip": n_windows,
            "clap_text_calls": 1,
            "seconds_per_clip": decoder_s,
        },
        "text2fx_search": {
            "clap_audio_calls_per_clip": float(grid_size + search["search_calls_per_clip"]),
            "clap_text_calls": 1,
            "seconds_per_clip": search_s,
            **dict(search),
        },
        "per_clip_costs": dict(c),
        "u_grid": {
            k: curve_cost[k]
            for k in ("clap_calls", "clap_calls_this_run", "seconds", "files", "effects")
        },
    }
