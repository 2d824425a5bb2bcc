"""Figures registered in the Snakemake report (seaborn, written atomically)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
