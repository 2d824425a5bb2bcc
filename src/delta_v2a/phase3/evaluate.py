"""Phase 3 evaluation on the test split: the metrics, bootstrap intervals over test files
(description), the verdict (a sign-flip test over files, :mod:`delta_v2a.phase3.inference`)
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
    "bootstrap_mean",
    "bootstrap_difference",
    "cost_comparison",
    "evaluate_test",
    "figures_over_files",
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
}


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
) -> dict[str, Any]:
    """ "The decoder uses the audio" only when :func:`~delta_v2a.phase3.inference.phase3_verdict`
    passes: on enough test files, each gate (text-only − decoder, shuffled − decoder) has a
    Holm-corrected one-sided sign-flip p <= alpha and a positive mean, in every seed. The
    bootstrap intervals are kept as description (they are no test: with few files they are
    far too narrow). Lists which baselines the decoder beats on ``metric`` (point estimates;
    lower is better) and which it does not."""
    gates = {c.name: c for c in inference.seeds[0].comparisons} if inference.seeds else {}
    mine = figures["decoder"][metric]["mean"]
    beaten, not_beaten = [], []
    for name, fig in figures.items():
        other = fig.get(metric, {}).get("mean")
        if name == "decoder" or other is None or mine is None:
            continue
        (beaten if mine < other else not_beaten).append(name)
    uses = inference.uses_audio
    head = {
        "pass": "the decoder USES THE AUDIO: ",
        "fail": "NO EVIDENCE THAT THE DECODER USES THE AUDIO: ",
        "inconclusive": "INCONCLUSIVE, NO EVIDENCE THAT THE DECODER USES THE AUDIO: ",
    }[inference.status]
    return {
        "uses_audio": uses,
        "status": inference.status,
        "reason": inference.reason,
        "beats_text_only": bool(gates.get(GATES[0]) and gates[GATES[0]].passed),
        "shuffled_audio_hurts": bool(gates.get(GATES[1]) and gates[GATES[1]].passed),
        "text_only_baseline": text_name,
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


def evaluate_test(
    per_sample: Mapping[str, Mapping[str, np.ndarray]],
    files: np.ndarray,
    seen: np.ndarray,
    n_boot: int,
    seed: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_test_files: int = DEFAULT_MIN_TEST_FILES,
    reported: Sequence[str] = ("curve_inversion", "text2fx_search", "oracle"),
) -> dict[str, Any]:
    """Test figures, seen templates (``seen``) and held-out paraphrases apart, and the
    verdict from the seen ones: the decoder against the better text-only baseline and
    against itself on shuffled audio, per-file differences paired by sample, tested over
    files (§6.5-6.6); the ``reported`` baselines that are present are compared too, without
    gating. One training seed; several seeds go straight to :func:`phase3_verdict`."""
    figures = {
        "test": figures_over_files(per_sample, files, seen, n_boot, seed),
        "paraphrase": figures_over_files(per_sample, files, ~seen, n_boot, seed)
        if (~seen).any()
        else {},
    }
    text_name = min(
        ("text_lookup", "text_mlp"), key=lambda k: figures["test"][k]["param_mse"]["mean"]
    )
    mse = {k: v["param_mse"][seen] for k, v in per_sample.items()}
    diff_text = bootstrap_difference(mse[text_name], mse["decoder"], files[seen], n_boot, seed)
    diff_shuf = bootstrap_difference(
        mse["shuffled_audio"], mse["decoder"], files[seen], n_boot, seed
    )
    names = {GATES[0]: text_name, GATES[1]: "shuffled_audio"}
    names.update({r: r for r in reported if r in mse})
    per_file = {
        gate: file_mean_differences(mse[name], mse["decoder"], files[seen])[1]
        for gate, name in names.items()
    }
    inference = phase3_verdict(per_file, alpha=alpha, min_test_files=min_test_files, n_boot=n_boot)
    return {
        "figures": figures,
        "verdict": verdict(figures["test"], inference, diff_text, diff_shuf, text_name),
        "per_sample": per_sample,
    }


def cost_comparison(
    curve_cost: Mapping[str, Any], grid_size: int, n_windows: int, timing: Mapping[str, float]
) -> dict[str, Any]:
    """CLAP calls and seconds per clip: the decoder (its windows + one text) against the
    per-clip search (every grid u rendered and embedded + one text), from the per-clip costs
    measured where the strength curves were embedded (``curve_cost``)."""
    c = curve_cost["cost"]
    embed, render = c.get("embed_seconds_per_clip"), c.get("render_seconds_per_clip")
    known = embed is not None and render is not None
    decoder_s = n_windows * embed + timing["decoder_forward_seconds_per_sample"] if known else None
    search_s = (
        grid_size * (embed + render) + timing["text2fx_argmax_seconds_per_sample"]
        if known
        else None
    )
    return {
        "decoder": {
            "clap_audio_calls_per_clip": n_windows,
            "clap_text_calls": 1,
            "seconds_per_clip": decoder_s,
        },
        "text2fx_search": {
            "clap_audio_calls_per_clip": int(grid_size),
            "clap_text_calls": 1,
            "seconds_per_clip": search_s,
        },
        "per_clip_costs": dict(c),
        "u_grid": {
            k: curve_cost[k]
            for k in ("clap_calls", "clap_calls_this_run", "seconds", "files", "effects")
        },
    }
