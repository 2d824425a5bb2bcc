"""Matched-strength targets (docs/methods.md section 6.2): the image delta's size at a level,
each clip's own strength curve, and the u* that makes the clip move by the matched amount.

Pure functions, no I/O: the curves come from
:func:`delta_v2a.jobs.phase3.strength.run_strength`, which renders (:func:`render_clip`) and
embeds each (clip, effect, u) once and caches it by content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from delta_v2a.artifacts.pairs import FileSplit
    from delta_v2a.phase3.paramspace import ParamSpace

__all__ = [
    "MAX_UNREACHABLE_SHARE",
    "unreachable_line",
    "ImageStrength",
    "WORD_BIN_POINTS",
    "SolvedTargets",
    "TargetOptions",
    "audio_dependence",
    "curve_norms",
    "dependence_message",
    "image_strength",
    "image_strengths",
    "matched_targets",
    "render_clip",
    "word_bin_inversion",
    "kappa_scale",
    "matched_dependence",
    "Matching",
    "solve_targets",
    "solve_u",
    "u_grid",
    "unreachable_share",
]

#: Default percentile of the training files' g_f(1) that the strongest image level maps onto.
KAPPA_PERCENTILE = 5.0


def u_grid(size: int) -> np.ndarray:
    """``size`` equally spaced values of u in [0, 1], 0 (identity) and 1 (strongest) included."""
    if size < 2:
        raise ValueError(f"the u grid needs at least 2 points, got {size}")
    return np.linspace(0.0, 1.0, int(size))


@dataclass(frozen=True)
class ImageStrength:
    """``m_i(θ)``: Phase 0's mean image ‖Δe‖ of one effect, piecewise linear in θ.

    θ = 0 is the neutral image (‖Δe‖ = 0) and θ = k / n the k-th of the n configured
    intensities, so θ = 1 is the strongest configured level.
    """

    thetas: np.ndarray
    norms: np.ndarray

    def __call__(self, theta: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(theta, dtype=np.float64), self.thetas, self.norms)

    @property
    def strongest(self) -> float:
        return float(self.norms[-1])

    @property
    def peak(self) -> float:
        """The largest m_i(θ) over [0, 1] (= ``strongest`` when Phase 0's norms grow)."""
        return float(self.norms.max())


def image_strength(mean_norms: Sequence[float]) -> ImageStrength:
    """From the mean ‖Δe‖ at each configured intensity (weakest first)."""
    norms = np.asarray([0.0, *[float(v) for v in mean_norms]], dtype=np.float64)
    if len(norms) < 2 or not np.isfinite(norms).all():
        raise ValueError(f"image strengths need finite mean norms, got {list(mean_norms)}")
    if norms[-1] <= 0:
        raise ValueError("the strongest image level has zero mean ‖Δe‖: nothing to match")
    return ImageStrength(np.linspace(0.0, 1.0, len(norms)), norms)


def curve_norms(raw: np.ndarray, rendered: np.ndarray) -> np.ndarray:
    """``g_f(u) = ‖CLAP(DSP(A_f, u)) − CLAP(A_f)‖`` from embeddings.

    raw (F, D), rendered (F, G, D) -> (F, G).
    """
    return np.linalg.norm(rendered - raw[:, None, :], axis=-1)


@dataclass(frozen=True)
class SolvedTargets:
    u: np.ndarray  # (N,) u* in [0, 1]
    below: np.ndarray  # (N,) target <= the curve's start: u* = 0
    above: np.ndarray  # (N,) target beyond the curve's maximum: u* = 1 (unreachable)

    @property
    def n_unreachable(self) -> int:
        return int(self.above.sum())


def solve_u(grid: np.ndarray, curves: np.ndarray, targets: np.ndarray) -> SolvedTargets:
    """Solve ``g(u*) = target`` per row by monotone interpolation.

    ``curves`` (N, G) on ``grid`` (G,), ``targets`` (N,). A curve is made monotone by its
    running maximum (CLAP distances are noisy; the effect itself only grows), and u* is the
    first u where that envelope reaches the target, linear within the grid cell. A target
    beyond the curve's maximum is unreachable: u* = 1 and it is counted.
    """
    grid = np.asarray(grid, dtype=np.float64)
    env = np.maximum.accumulate(np.asarray(curves, dtype=np.float64), axis=1)
    t = np.asarray(targets, dtype=np.float64)
    below = t <= env[:, 0]
    above = (t > env[:, -1]) & ~below
    # env[k-1] < t <= env[k]: k counts the envelope values below t (searchsorted, per row)
    k = np.clip((env < t[:, None]).sum(axis=1), 1, len(grid) - 1)
    rows = np.arange(len(t))
    lo, hi = env[rows, k - 1], env[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(hi > lo, (t - lo) / (hi - lo), 0.0)
    out = grid[k - 1] + frac * (grid[k] - grid[k - 1])
    out = np.where(below, grid[0], np.where(above, grid[-1], out))
    return SolvedTargets(out, below, above)


def curve_at(grid: np.ndarray, curves: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Each row's strength at its own u (linear interpolation of the monotone envelope)."""
    env = np.maximum.accumulate(np.asarray(curves, dtype=np.float64), axis=1)
    return np.array([np.interp(float(x), grid, c) for x, c in zip(u, env, strict=True)])


def audio_dependence(
    u_star: Mapping[tuple[str, str], np.ndarray], min_sd: float
) -> dict[str, object]:
    """How much can the audio matter? Measured on u* before any training.

    ``u_star`` maps (pair, level word) to the u* of every file at that word's bin centre
    (one value per file, same θ): any spread among them comes from the audio alone. Reports
    the mean across-file SD and the share of the variance of those u* that the description
    explains (between-description variance over total). ``can_matter`` is False when the
    across-file SD is below ``min_sd``: then no decoder can beat text-only on this data.
    """
    cells = {k: np.asarray(v, dtype=np.float64) for k, v in u_star.items() if len(v)}
    if not cells:
        return {
            "sd_across_files": None,
            "share_explained_by_description": None,
            "can_matter": False,
            "per_description": {},
        }
    everything = np.concatenate(list(cells.values()))
    total = float(everything.var())
    within = float(np.mean([v.var() for v in cells.values()]))
    sds = {f"{p}|{w}": float(v.std()) for (p, w), v in cells.items()}
    sd = float(np.mean([v.std() for v in cells.values()]))
    share = None if total <= 0 else float(1.0 - within / total)
    return {
        "sd_across_files": sd,
        "share_explained_by_description": share,
        "can_matter": bool(sd >= min_sd),
        "min_sd": float(min_sd),
        "per_description": sds,
    }


def kappa_scale(
    strongest_audio: np.ndarray, image_peak: float, percentile: float = KAPPA_PERCENTILE
) -> float:
    """κ_ij: the largest image strength m_i maps onto a low percentile of the training files'
    audio strength at u = 1, g_f(1).

    Why a low percentile and not the median: a target above a clip's curve is unreachable
    (u* clipped at 1), and with the median half the files cannot reach the strongest level
    (12 of 30 "extremely" targets were). With the q-th percentile at most q % of the training
    files (method "lower": the order statistic at or below it) miss the strongest target;
    weaker levels, being lower, miss less. 50 gives the old median scale.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"kappa_percentile must be in [0, 100], got {percentile}")
    level = float(
        np.percentile(np.asarray(strongest_audio, np.float64), percentile, method="lower")
    )
    return level / float(image_peak)


def unreachable_share(curves: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows whose target is above the clip's curve maximum (u* clipped at 1);
    ``curves`` (N, G), ``targets`` (N,). NaN for no rows."""
    t = np.asarray(targets, dtype=np.float64)
    if len(t) == 0:
        return float("nan")
    return float(np.mean(t > np.asarray(curves, dtype=np.float64).max(axis=1)))


def solve_targets(
    frame: pd.DataFrame,
    grid: np.ndarray,
    curves: np.ndarray,
    effects: Sequence[str],
    strengths: Mapping[str, ImageStrength],
    train_files: np.ndarray,
    kappa_percentile: float = KAPPA_PERCENTILE,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per sample: m_i(θ), the target strength κ_ij m_i(θ) and u* (section 6.2). κ_ij maps
    the peak image strength onto the ``kappa_percentile``-th percentile over training files of
    g_f(1), the audio delta norm of j at its strongest configured level on the same window
    (:func:`kappa_scale`)."""
    j_of = {e: k for k, e in enumerate(effects)}
    kappa = {}
    for img, aud in (
        frame[["image_effect", "audio_effect"]].drop_duplicates().itertuples(index=False)
    ):
        kappa[f"{img}->{aud}"] = kappa_scale(
            curves[train_files, j_of[aud], -1], strengths[img].peak, kappa_percentile
        )
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


@dataclass(frozen=True)
class Matching:
    """What matching an image edit's strength on a clip's own curve needs (section 6.2): the
    samples (``frame``: image effect, audio effect, level, file index), the curves (F, J, G)
    over ``effects`` × ``grid``, each image effect's strength m(θ), κ per pair
    (``"img->aud"``), the level words and the target mode (``matched`` or ``level``)."""

    frame: pd.DataFrame
    grid: np.ndarray
    curves: np.ndarray
    effects: Sequence[str]
    strengths: Mapping[str, ImageStrength]
    kappa: Mapping[str, float]
    level_words: Sequence[str]
    target: str


def matched_dependence(
    problem: Matching, min_sd: float, files: np.ndarray | None = None
) -> dict[str, Any]:
    """Section 6.2's audio-dependence figure: u* of each file in ``files`` at each level
    word's bin centre θ (same description, same θ), before any training. In ``level`` mode
    the target is θ itself: no spread by construction.

    ``files`` (indices or a boolean mask over the curves' files) should be train +
    validation: the figure decides whether training is worth it, so it must not look at the
    test files the verdict is later drawn from. None uses every file, test included, and the
    result says so (``files_used: "all, test included"``)."""
    frame, grid, strengths, target = problem.frame, problem.grid, problem.strengths, problem.target
    if files is None:
        chosen, used = np.arange(problem.curves.shape[0]), "all, test included"
    else:
        chosen = np.asarray(files)
        chosen = np.flatnonzero(chosen) if chosen.dtype == bool else chosen.astype(int)
        used = "given subset"
    curves = np.asarray(problem.curves)[chosen]
    n_files = curves.shape[0]
    cells = {}
    for img, aud in (
        frame[["image_effect", "audio_effect"]].drop_duplicates().itertuples(index=False)
    ):
        j = list(problem.effects).index(aud)
        for w, word in enumerate(problem.level_words):
            theta = (w + 0.5) / len(problem.level_words)
            s = problem.kappa[f"{img}->{aud}"] * float(strengths[img](theta))
            u = (
                solve_u(grid, curves[:, j], np.full(n_files, s)).u
                if target == "matched"
                else np.full(n_files, theta)
            )
            cells[(f"{img}->{aud}", word)] = u
    dep = audio_dependence(cells, min_sd)
    dep.update(target=target, files_used=used, n_files_used=int(n_files))
    return dep


def dependence_message(dep: Mapping[str, Any], min_sd: float) -> str:
    """One line for the log and the summary: the spread, and the share the text explains."""
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


#: Above this share of unreachable targets a run says so loudly (docs/methods.md §6.2).
MAX_UNREACHABLE_SHARE = 0.05


def unreachable_line(dep: Mapping[str, Any]) -> str:
    """How many matched targets lie beyond their clip's curve (clipped to u = 1): the one line
    the strength log and the summary print, marked ``!!!`` above :data:`MAX_UNREACHABLE_SHARE`,
    because a censored target is one no method can reach (docs/methods.md §6.2)."""
    share = float(dep.get("unreachable_share", 0.0))
    loud = share > MAX_UNREACHABLE_SHARE
    text = (
        f"{dep['n_unreachable']} of {dep['n_samples']} matched targets unreachable "
        f"({100 * share:.1f}%, clipped to u = 1; κ from the "
        f"{dep.get('kappa_percentile', float('nan')):g}th percentile of the train files' "
        "strongest norms)"
    )
    return f"!!! {text}, over {100 * MAX_UNREACHABLE_SHARE:g}% !!!" if loud else text


# --------------------------------------------------------------------------- the strength job's


def render_clip(
    raw: np.ndarray, sr: int, space: ParamSpace, effect: str | None, u: float, preroll: int
) -> np.ndarray:
    """One clip as extraction renders it: ``raw`` (pre-roll + centred window) through the
    audio effect at normalised strength u, pre-roll dropped; effect None is the raw clip.
    The Text2FX search renders through this too, so its u values match the curves'."""
    if effect is None:
        return raw[preroll:]
    return space.render(raw, sr, space.target(effect, u), preroll)


def image_strengths(
    means: Mapping[tuple[str, str], float | None],
    effects: Sequence[str],
    intensities: Sequence[str],
) -> dict[str, ImageStrength]:
    """m_i(θ) per image effect from Phase 0's mean image ‖Δe‖ per (effect, intensity)
    (:meth:`delta_v2a.artifacts.phase0.SensitivityResults.image_means`); ValueError naming the
    effect and intensities missing."""
    out = {}
    for e in effects:
        missing = [i for i in intensities if means.get((e, i)) is None]
        if missing:
            raise ValueError(
                f"no mean image ‖Δe‖ for {e} at {missing}: "
                "Phase 3's matched targets need every configured intensity"
            )
        out[e] = image_strength([means[(e, i)] for i in intensities])
    return out


#: θ points per level word's bin at which curve inversion solves (the description gives the
#: word, never θ: the mean of the solutions is the MSE-optimal guess for θ uniform in the bin).
WORD_BIN_POINTS = 5


def word_bin_inversion(problem: Matching) -> np.ndarray:
    """Each sample's clip's own curve inverted at its level word (docs/methods.md §6.4): the
    ceiling for any method that reads the clip's curve and the description."""
    # here, not at the top: baselines imports this module (solve_u)
    from delta_v2a.phase3.baselines import curve_inversion

    frame, strengths, n = problem.frame, problem.strengths, len(problem.level_words)
    theta = frame["level"].to_numpy(np.float64)
    word = np.minimum((theta * n).astype(int), n - 1)
    pts = (word[:, None] + (np.arange(WORD_BIN_POINTS) + 0.5) / WORD_BIN_POINTS) / n
    if problem.target == "level":  # the target is θ itself: the word's best guess is its bin's mean
        return pts.mean(axis=1)
    j_of = {e: k for k, e in enumerate(problem.effects)}
    pairs = zip(frame["image_effect"], frame["audio_effect"], strict=True)
    scale = np.array([problem.kappa[f"{i}->{a}"] for i, a in pairs])
    m = np.stack([strengths[i](p) for i, p in zip(frame["image_effect"], pts, strict=True)])
    rows = problem.curves[
        frame["file_index"].to_numpy(), frame["audio_effect"].map(j_of).to_numpy()
    ]
    return curve_inversion(problem.grid, rows, scale[:, None] * m)


@dataclass(frozen=True)
class TargetOptions:
    """How targets are set: ``matched`` (u*) or ``level`` (θ itself), the across-file SD
    below which no decoder can beat text-only, and κ's percentile."""

    target: str
    min_sd: float
    kappa_percentile: float


def matched_targets(
    frame: pd.DataFrame,
    paths: Sequence[str],
    split: FileSplit,
    grid: np.ndarray,
    curves: np.ndarray,
    effects: Sequence[str],
    strengths: Mapping[str, ImageStrength],
    level_words: Sequence[str],
    opts: TargetOptions,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every sample's target (u*, its strength, the curve-inversion ceiling) and the
    audio-dependence figure with κ and the unreachable count (sections 6.2, 6.4); κ from the
    train files only, the figure from train + validation: nothing from test informs a choice.
    ``curves`` (F, J, G) over ``paths`` × ``effects`` × ``grid``."""
    train_files = np.array([p in set(split.train_files) for p in paths])
    targets, kappa = solve_targets(
        frame,
        grid,
        curves,
        effects,
        strengths,
        train_files,
        kappa_percentile=opts.kappa_percentile,
    )
    fit = set(split.train_files) | set(split.val_files)
    fit_files = np.array([p in fit for p in paths])
    problem = Matching(frame, grid, curves, effects, strengths, kappa, level_words, opts.target)
    targets["u_curve_inversion"] = word_bin_inversion(problem)
    if opts.target == "level":
        targets["u_star"] = frame["level"].to_numpy()
        targets["unreachable"] = False
    dep = matched_dependence(problem, opts.min_sd, files=fit_files)
    dep.update(
        status="ok",
        kappa=kappa,
        n_unreachable=int(targets["unreachable"].sum()),
        unreachable_share=float(targets["unreachable"].mean()) if len(targets) else 0.0,
        kappa_percentile=opts.kappa_percentile,
        n_samples=len(targets),
        n_non_monotone_curves=int((np.diff(curves, axis=2) < 0).any(axis=2).sum()),
        grid_size=len(grid),
    )
    return targets, dep
