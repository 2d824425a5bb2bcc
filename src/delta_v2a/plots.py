"""Figures registered in the Snakemake report (seaborn, written atomically)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from delta_v2a.storage import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def _title(fig: plt.Figure, title: str, note: str) -> None:
    """Title on top; the not-science note, when any, in red underneath the panels."""
    fig.suptitle(title, fontsize=11)
    if note:
        fig.supxlabel(note, fontsize=8, color="firebrick")


#: Short names of effect parameters on the figures' axes.
SYMBOLS = {
    "sigma": "σ",
    "factor": "×",
    "cutoff_hz": "cutoff",
    "gain_db": "gain",
    "drive_db": "drive",
}


def level_text(modality: str, effect: str, params: Mapping[str, float]) -> str:
    """An intensity level in physical units, from the effect registry's units: "σ 4 px",
    "cutoff 2000 Hz", "gain 6 dB", "×1.5" (a blend factor)."""
    from delta_v2a.effects import effect_spec

    parts = []
    for p in effect_spec(modality, effect).params:
        if p.name not in params:
            continue
        value = f"{float(params[p.name]):.4g}"
        if p.unit == "x":
            parts.append(f"×{value}")
        else:
            parts.append(f"{SYMBOLS.get(p.name, p.name)} {value} {p.unit}".strip())
    return ", ".join(parts)


def with_levels(frame: pd.DataFrame, levels: Mapping[tuple[str, str, str], str] | None):
    """``frame`` with a ``variant`` column: "effect/intensity", and its physical level on a
    second line where ``levels`` knows it ((modality, effect, intensity) -> text)."""
    levels = levels or {}
    keys = zip(frame["modality"], frame["effect_type"], frame["intensity"], strict=True)
    return frame.assign(
        variant=[
            f"{e}/{i}" + (f"\n{levels[(m, e, i)]}" if (m, e, i) in levels else "")
            for m, e, i in keys
        ]
    )


def norms_figure(
    norms: pd.DataFrame,
    min_distance: float,
    path: str | Path,
    note: str,
    levels: Mapping[tuple[str, str, str], str] | None = None,
) -> None:
    """Box plots of ‖Δe‖ per effect and intensity (its level in physical units below the
    name), one panel per modality."""
    mods = list(dict.fromkeys(norms["modality"]))
    fig, axes = plt.subplots(
        1, len(mods), figsize=(6 * len(mods), 4.8), squeeze=False, layout="constrained"
    )
    for ax, mod in zip(axes[0], mods, strict=True):
        sub = with_levels(norms[norms["modality"] == mod], levels)
        sns.boxplot(data=sub, x="variant", y="norm", hue="effect_type", legend=False, ax=ax)
        ax.axhline(min_distance, ls="--", color="grey", lw=1)
        ax.set_title(f"{mod}")
        ax.set_xlabel("effect/intensity (level)")
        ax.set_ylabel("‖Δe‖")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    _title(fig, "Phase 0-a: delta norms (dashed: min_distance)", note)
    _save(fig, path)


def consistency_figure(
    within: pd.DataFrame,
    min_cosine: float,
    path: str | Path,
    note: str,
    levels: Mapping[tuple[str, str, str], str] | None = None,
) -> None:
    """Within-category mean cosine per effect × intensity (its level in physical units below
    the name), one point per category, side by side in a fixed order. Why not the default
    random jitter: seaborn draws it from numpy's global random state, so the same results
    would give a different figure on every run."""
    mods = list(dict.fromkeys(within["modality"]))
    fig, axes = plt.subplots(
        1, len(mods), figsize=(6 * len(mods), 4.5), squeeze=False, layout="constrained"
    )
    for ax, mod in zip(axes[0], mods, strict=True):
        sub = within[(within["modality"] == mod) & within["mean_cosine"].notna()]
        sub = with_levels(sub, levels)
        if len(sub):
            sns.stripplot(
                data=sub,
                x="variant",
                y="mean_cosine",
                hue="category",
                dodge=True,
                jitter=False,
                ax=ax,
            )
        ax.axhline(min_cosine, ls="--", color="grey", lw=1)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(mod)
        ax.set_xlabel("effect/intensity (level)")
        ax.set_ylabel("mean pairwise cosine")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    _title(fig, "Phase 0-b: within-category consistency (dashed: min_cosine)", note)
    _save(fig, path)


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "p n/a"
    return f"p={p:.2g}" if p >= 1e-3 else f"p={p:.0e}"


def score_scale(top: float) -> float:
    """The colour scale's top for scores whose largest is ``top``: ``top`` itself, or 1 (the
    scale of a product of cosines) when every score is 0, so that an all-zero matrix gets a
    readable 0-1 colour bar, not one ending at 1e-12."""
    return top if top > 0 else 1.0


def discovery_heatmap(
    score,
    row_labels: list[str],
    col_labels: list[str],
    path: str | Path,
    title: str,
    note: str,
    *,
    lo=None,
    hi=None,
    p_adjusted=None,
    chosen=None,
    ci_level: float = 0.95,
) -> None:
    """Phase 1: image effects (rows) × audio effects (columns). Each cell shows its score, its
    bootstrap interval and its adjusted p-value; chosen pairs (significant best-in-row) are
    boxed, so the figure alone says which pairs Phase 3 will learn.

    Clipped scores lie in [0, ∞) and get a sequential map; raw scores that go negative get a
    diverging one centred at 0. Empty cells are NaN (no usable prototype).
    """
    score = np.asarray(score, dtype=np.float64)
    frame = pd.DataFrame(score, index=row_labels, columns=col_labels)
    finite = score[np.isfinite(score)]
    lo_v = float(finite.min()) if finite.size else 0.0
    hi_v = float(finite.max()) if finite.size else 1.0
    label = "score"
    if lo_v < 0:
        bound = max(abs(lo_v), abs(hi_v))
        kw = {"cmap": "vlag", "center": 0.0, "vmin": -bound, "vmax": bound}
    else:
        kw = {"cmap": "rocket_r", "vmin": 0.0, "vmax": score_scale(hi_v)}
        label += " (every cell 0)" if hi_v == 0 else ""
    annot = np.empty(score.shape, dtype=object)
    for (i, j), v in np.ndenumerate(score):
        text = f"{v:.3g}" if np.isfinite(v) else "n/a"
        if lo is not None and hi is not None:
            text += f"\n[{lo[i][j]:.2g}, {hi[i][j]:.2g}]"
        if p_adjusted is not None:
            text += "\n" + _fmt_p(float(p_adjusted[i][j]))
        annot[i, j] = text
    fig, ax = plt.subplots(
        figsize=(1.9 * len(col_labels) + 3, 1.2 * len(row_labels) + 2.8), layout="constrained"
    )
    sns.heatmap(
        frame,
        annot=annot,
        fmt="",
        annot_kws={"fontsize": 8},
        linewidths=0.5,
        square=False,
        cbar_kws={"label": label},
        ax=ax,
        **kw,
    )
    if chosen is not None:
        for i, j in zip(*np.nonzero(np.asarray(chosen)), strict=True):
            ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, lw=3, ec="tab:green"))
    ax.set_xlabel(
        f"audio effect (CLAP)   cells: score, {ci_level:.0%} bootstrap interval, adjusted p"
    )
    ax.set_ylabel("image effect (CLIP)")
    ax.tick_params(axis="y", rotation=0)
    _title(fig, title, note)
    _save(fig, path)


def discovery_components_figure(
    res, row_labels, col_labels, path, title, note, sim3_label: str, ci_level: float
) -> None:
    """sim1 and sim2 per effect with bootstrap intervals and permutation p, and sim3 as a
    matrix (what the score is made of, so a reader sees which factor decides a cell)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    for ax, key, labels, space in (
        (axes[0], "sim1", row_labels, "CLIP"),
        (axes[1], "sim2", col_labels, "CLAP"),
    ):
        v, lo, hi = (np.asarray(res[k], dtype=np.float64) for k in (key, f"{key}_lo", f"{key}_hi"))
        x = np.arange(len(labels))
        err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
        ax.bar(x, np.nan_to_num(v), yerr=np.nan_to_num(err), capsize=4, color="tab:blue")
        ax.scatter(x, res[f"{key}_raw"], marker="x", color="black", zorder=3, label="raw anchor")
        for xi, (vi, p) in enumerate(zip(v, res[f"p_{key}"], strict=True)):
            ax.annotate(
                _fmt_p(float(p)),
                (xi, np.nan_to_num(vi)),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 8),
                textcoords="offset points",
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, labels, rotation=30)
        ax.set_ylabel(f"{key}: cos(prototype, anchor) in {space}")
        ax.set_title(f"{key} ({ci_level:.0%} bootstrap interval, label-permutation p)")
        ax.legend(fontsize=8)
    sim3 = pd.DataFrame(
        np.asarray(res["sim3"], dtype=np.float64), index=row_labels, columns=col_labels
    )
    annot = np.empty(sim3.shape, dtype=object)
    for (i, j), v in np.ndenumerate(sim3.to_numpy()):
        annot[i, j] = f"{v:.2g}\n{_fmt_p(float(res['p_sim3'][i, j]))}"
    sns.heatmap(
        sim3,
        annot=annot,
        fmt="",
        cmap="vlag",
        center=0.0,
        ax=axes[2],
        annot_kws={"fontsize": 8},
        cbar_kws={"label": "sim3"},
    )
    axes[2].set_title("sim3 (synonym-shuffle p)")
    axes[2].set_xlabel(sim3_label, fontsize=7, wrap=True)
    axes[2].tick_params(axis="y", rotation=0)
    _title(fig, title, note)
    _save(fig, path)


def discovery_intensity_figure(
    score_k, intensities, row_labels, col_labels, path, title, note
) -> None:
    """Per-intensity score matrices as small multiples on one colour scale (does the pairing
    hold at every strength, or does one intensity carry it?)."""
    score_k = np.asarray(score_k, dtype=np.float64)
    finite = score_k[np.isfinite(score_k)]
    vmax = score_scale(float(finite.max()) if finite.size else 1.0)
    vmin = min(float(finite.min()) if finite.size else 0.0, 0.0)
    n = len(intensities)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 1, 4), layout="constrained", squeeze=False)
    for k, ax in enumerate(axes[0]):
        sns.heatmap(
            pd.DataFrame(score_k[k], index=row_labels, columns=col_labels),
            annot=True,
            fmt=".2g",
            cmap="rocket_r" if vmin >= 0 else "vlag",
            vmin=vmin,
            vmax=vmax,
            ax=ax,
            cbar=k == n - 1,
            annot_kws={"fontsize": 8},
        )
        ax.set_title(f"intensity: {intensities[k]}")
        ax.tick_params(axis="y", rotation=0)
    _title(fig, title, note)
    _save(fig, path)


def message_figure(path: str | Path, title: str, message: str, note: str) -> None:
    """A figure that only says why there is nothing to plot (report entries must exist)."""
    fig, ax = plt.subplots(figsize=(7, 2.5), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10)
    _title(fig, title, note)
    _save(fig, path)


def decoder_training_figure(
    histories: dict[str, list[dict]],
    test_figures: dict[str, dict[str, dict]],
    path: str | Path,
    note: str,
) -> None:
    """Phase 3: train/val MSE per epoch of each trained model (the epoch is chosen on
    validation), and every baseline's test parameter MSE with its 95 % bootstrap interval
    over test files (the only place test figures come from)."""
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(13, 4.8), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
    )
    for (name, hist), colour in zip(histories.items(), sns.color_palette(n_colors=8), strict=False):
        frame = pd.DataFrame(hist)
        if frame.empty:
            continue
        ax.plot(frame["epoch"], frame["train_loss"], color=colour, lw=1, alpha=0.6, ls=":")
        ax.plot(frame["epoch"], frame["val_loss"], color=colour, lw=1.6, label=f"{name} (val)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalised parameters; dotted: train)")
    ax.legend(fontsize=8)
    names = [n for n, f in test_figures.items() if f["param_mse"]["mean"] is not None]
    means = np.array([test_figures[n]["param_mse"]["mean"] for n in names])
    low = means - np.array([test_figures[n]["param_mse"]["low"] for n in names])
    high = np.array([test_figures[n]["param_mse"]["high"] for n in names]) - means
    colours = ["crimson" if n == "decoder" else "steelblue" for n in names]
    bx.barh(names, means, xerr=[low, high], color=colours, capsize=3)
    bx.invert_yaxis()
    bx.set_xlabel("test parameter MSE (95 % bootstrap over test files)")
    bx.set_title("test split: every baseline")
    _title(fig, "Phase 3: decoder training and test figures", note)
    _save(fig, path)


def decoder_prediction_figure(
    samples: pd.DataFrame,
    truth,
    predicted,
    names: list[str],
    path: str | Path,
    note: str,
    space: Any = None,
) -> None:
    """Phase 3: predicted vs true parameter, one panel per parameter, test samples coloured by
    the pair they came from. Given the parameter ``space``, each axis is in the parameter's
    physical unit (Hz, dB, ...; log axes where the space maps u logarithmically); without it,
    normalised (0 neutral, 1 strongest)."""
    if space is not None:
        truth, predicted, names = _physical_columns(space, truth, predicted)
        scales = [a.scale for a in space.axes]
        return _prediction_panels(samples, truth, predicted, names, path, note, scales)
    return _prediction_panels(samples, truth, predicted, names, path, note, None)


def _physical_columns(space: Any, truth, predicted) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each normalised column mapped to its axis's physical value, with "effect: param (unit)"."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    out_t, out_p = np.empty_like(truth), np.empty_like(predicted)
    for j, axis in enumerate(space.axes):
        out_t[:, j] = [axis.physical(u) for u in np.clip(truth[:, j], 0, 1)]
        out_p[:, j] = [axis.physical(u) for u in np.clip(predicted[:, j], 0, 1)]
    labels = [f"{a.effect}: {a.param}" + (f" ({a.unit})" if a.unit else "") for a in space.axes]
    return out_t, out_p, labels


def _plain_log_axes(ax: plt.Axes) -> None:
    """Log axes labelled in plain numbers at 1, 2, 5 × 10^k (2000, 5000, 10000 Hz), not
    mathtext powers whose minor labels overlap."""
    from matplotlib import ticker

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(ticker.NullFormatter())


def _prediction_panels(samples, truth, predicted, names, path, note, scales) -> None:
    """The panels; ``scales`` (one per axis) when the values are physical, else None."""
    physical = scales is not None
    n = len(names)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False, layout="constrained")
    pair = (samples["image_effect"] + "→" + samples["audio_effect"]).to_numpy()
    for j, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        frame = pd.DataFrame({"true": truth[:, j], "predicted": predicted[:, j], "pair": pair})
        sns.scatterplot(data=frame, x="true", y="predicted", hue="pair", s=18, ax=ax)
        if physical:
            values = np.concatenate([truth[:, j], predicted[:, j]])
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1)
            ax.set_xlabel(f"target {name}")
            ax.set_ylabel(f"predicted {name}")
            if scales[j] == "log":
                _plain_log_axes(ax)
        else:
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
            ax.set_xlim(-0.05, 1.05)
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlabel(f"target u ({name}; 0 neutral, 1 strongest level)")
            ax.set_ylabel("predicted u")
        ax.set_title(name)
        if j:
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
    unit = "physical units" if physical else "normalised"
    _title(fig, f"Phase 3: predicted vs target parameters, test files ({unit})", note)
    _save(fig, path)


def sweep_figure(
    panels: list[tuple[str, np.ndarray, list[str], list[str], list[tuple[str, str]]]],
    path: str | Path,
    title: str,
    note: str,
) -> None:
    """The model sweep: each pair's discovery matrix (rows image effects, columns audio
    effects) side by side, its chosen Phase 1 pairs boxed, so agreement is seen at a glance.
    Each panel has its own colour scale: the pairs' scores need not share units."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.6 * len(panels), 4.2), layout="constrained", squeeze=False
    )
    for ax, (name, matrix, rows, cols, chosen) in zip(axes[0], panels, strict=True):
        score = np.asarray(matrix, dtype=np.float64)
        finite = score[np.isfinite(score)]
        hi = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        sns.heatmap(
            pd.DataFrame(score, index=rows, columns=cols),
            annot=True,
            fmt=".2g",
            annot_kws={"fontsize": 7},
            cmap="rocket_r",
            vmin=min(0.0, float(finite.min()) if finite.size else 0.0),
            vmax=hi,
            linewidths=0.5,
            cbar=False,
            ax=ax,
        )
        for image, audio in chosen:
            if image in rows and audio in cols:
                i, j = rows.index(image), cols.index(audio)
                ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, lw=3, ec="tab:green"))
        picked = ", ".join(f"{i}→{a}" for i, a in chosen) or "no pair"
        ax.set_title(f"{name}\nPhase 1: {picked}", fontsize=9)
        ax.set_xlabel("audio effect")
        ax.set_ylabel("image effect")
        ax.tick_params(axis="y", rotation=0)
    _title(fig, title, note)
    _save(fig, path)
