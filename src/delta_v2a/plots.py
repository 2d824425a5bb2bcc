"""Figures registered in the Snakemake report (seaborn, written atomically)."""

from __future__ import annotations

from pathlib import Path

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


def norms_figure(norms: pd.DataFrame, min_distance: float, path: str | Path, note: str) -> None:
    """Box plots of ‖Δe‖ by effect × intensity, one panel per modality."""
    mods = list(dict.fromkeys(norms["modality"]))
    fig, axes = plt.subplots(
        1, len(mods), figsize=(6 * len(mods), 4.5), squeeze=False, layout="constrained"
    )
    for ax, mod in zip(axes[0], mods, strict=True):
        sub = norms[norms["modality"] == mod]
        sns.boxplot(data=sub, x="effect_type", y="norm", hue="intensity", ax=ax)
        ax.axhline(min_distance, ls="--", color="grey", lw=1)
        ax.set_title(f"{mod}")
        ax.set_xlabel("effect")
        ax.set_ylabel("‖Δe‖")
    _title(fig, "Phase 0-a: delta norms (dashed: min_distance)", note)
    _save(fig, path)


def consistency_figure(
    within: pd.DataFrame, min_cosine: float, path: str | Path, note: str
) -> None:
    """Within-category mean cosine per effect × intensity, one point per category."""
    mods = list(dict.fromkeys(within["modality"]))
    fig, axes = plt.subplots(
        1, len(mods), figsize=(6 * len(mods), 4.5), squeeze=False, layout="constrained"
    )
    for ax, mod in zip(axes[0], mods, strict=True):
        sub = within[(within["modality"] == mod) & within["mean_cosine"].notna()]
        sub = sub.assign(variant=sub["effect_type"] + "/" + sub["intensity"])
        if len(sub):
            sns.stripplot(data=sub, x="variant", y="mean_cosine", hue="category", ax=ax)
        ax.axhline(min_cosine, ls="--", color="grey", lw=1)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(mod)
        ax.set_xlabel("effect/intensity")
        ax.set_ylabel("mean pairwise cosine")
        ax.tick_params(axis="x", rotation=60)
    _title(fig, "Phase 0-b: within-category consistency (dashed: min_cosine)", note)
    _save(fig, path)


def discovery_heatmap(
    score,
    row_labels: list[str],
    col_labels: list[str],
    path: str | Path,
    title: str,
    note: str,
) -> None:
    """Phase 1: image effects (rows) × audio effects (columns), each cell's score annotated.

    Clipped scores lie in [0, 1] and get a sequential map; raw scores that go negative get a
    diverging one centred at 0. Empty cells are NaN (no usable prototype).
    """
    frame = pd.DataFrame(score, index=row_labels, columns=col_labels)
    finite = frame.to_numpy()[pd.notna(frame.to_numpy())]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if lo < 0:
        bound = max(abs(lo), abs(hi), 1e-12)
        kw = {"cmap": "vlag", "center": 0.0, "vmin": -bound, "vmax": bound}
    else:
        kw = {"cmap": "rocket_r", "vmin": 0.0, "vmax": max(hi, 1e-12)}
    fig, ax = plt.subplots(
        figsize=(1.6 * len(col_labels) + 3, 1.0 * len(row_labels) + 2.5), layout="constrained"
    )
    sns.heatmap(
        frame,
        annot=True,
        fmt=".3g",
        linewidths=0.5,
        square=False,
        cbar_kws={"label": "score"},
        ax=ax,
        **kw,
    )
    ax.set_xlabel("audio effect (CLAP)")
    ax.set_ylabel("image effect (CLIP)")
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
) -> None:
    """Phase 3: predicted vs true normalised parameter, one panel per parameter, test
    samples coloured by the pair they came from."""
    n = len(names)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False, layout="constrained")
    pair = (samples["image_effect"] + "→" + samples["audio_effect"]).to_numpy()
    for j, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        frame = pd.DataFrame({"true": truth[:, j], "predicted": predicted[:, j], "pair": pair})
        sns.scatterplot(data=frame, x="true", y="predicted", hue="pair", s=18, ax=ax)
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(name)
        if j:
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
    _title(fig, "Phase 3: predicted vs true parameters (test files)", note)
    _save(fig, path)
