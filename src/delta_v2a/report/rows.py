"""The study's tidy tables: one row per unit, every value copied from the phase that computed it.

Each ``results/tables/*.tsv`` has one row per unit (a variant, a category of a variant, a pair
of effects, a figure of a candidate) and opens with one ``pandas.read_csv(path, sep="\\t")``;
the columns are documented in docs/tables.md. Nothing is recomputed here, so a table can never
disagree with its JSON. Pure functions of the loaded documents; the ``tables`` job reads and
writes.

Keys that later versions of a phase add (Phase 1's ``p_adjusted`` and ``chosen_pairs``, Phase
3's test split) are read when present and left empty when not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.phase0 import CrossCategoryVariance, LinearityResults, SensitivityResults
from delta_v2a.artifacts.summary import Summary
from delta_v2a.artifacts.training_log import TrainingLog

#: Longest ``detail`` of verdicts.tsv: one screen line of the report's verdict table.
DETAIL_CHARS = 200
#: Each table's name and what one of its rows is (the report's caption).
TABLES = {
    "verdicts": "every phase's verdict and its headline (from results/summary.json)",
    "verdict_lines": "every line of every phase's verdict, one row per line (summary.json)",
    "phase0_sensitivity": "Phase 0-a, one row per (modality, effect, intensity)",
    "phase0_consistency": "Phase 0-b, one row per (modality, effect, intensity, category)",
    "phase0_invariance": "Phase 0-b, one row per (modality, effect, intensity)",
    "phase1_discovery": "Phase 1, one row per (image effect, audio effect)",
    "phase3_results": "Phase 3, one row per (split, metric, candidate)",
}


# --------------------------------------------------------------------------- rows


def _short(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, "…" marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


def verdict_rows(summary: Summary, limit: int = DETAIL_CHARS) -> pd.DataFrame:
    """One row per phase: its status and a ``detail`` of at most ``limit`` characters (the
    verdict's first line, then how many more lines ``verdict_lines.tsv`` holds), so that the
    table is read at a glance; the lists themselves are in :func:`verdict_line_rows`."""
    rows = []
    for p in summary.phases:
        lines = p.lines
        more = f" (+{len(lines) - 1} more: verdict_lines.tsv)" if len(lines) > 1 else ""
        head = _short(lines[0], limit - len(more)) if lines else ""
        rows.append({"phase": p.phase, "status": p.status, "detail": head + more})
    return pd.DataFrame(rows, columns=["phase", "status", "detail"])


def verdict_line_rows(summary: Summary) -> pd.DataFrame:
    """One row per line of each phase's verdict (the summary's lists: insensitive variants,
    pairs, baselines), numbered from 1 in the summary's order."""
    rows = [
        {"phase": p.phase, "status": p.status, "line": i, "text": text}
        for p in summary.phases
        for i, text in enumerate(p.lines, start=1)
    ]
    return pd.DataFrame(rows, columns=["phase", "status", "line", "text"])


def _gate_rows(
    records: Sequence[Any],
    cols: Sequence[str],
    copy: Sequence[str],
    thresholds: Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
    derived: Mapping[str, Callable[[Any], Any]] | None = None,
) -> pd.DataFrame:
    """One row per record (a Phase 0 row of delta_v2a.artifacts.phase0) of a Phase 0 gate: the
    variant, the record's own values (``copy`` as they are, ``renamed`` table name <- record
    field), the gate's thresholds and any ``derived`` columns. Values are copied, never
    recomputed."""
    rows = [
        {
            **_variant(r),
            **{k: getattr(r, k) for k in copy},
            **{new: getattr(r, old) for new, old in (renamed or {}).items()},
            **thresholds,
            **{k: f(r) for k, f in (derived or {}).items()},
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(cols))


def sensitivity_rows(doc: SensitivityResults) -> pd.DataFrame:
    """One row per (modality, effect, intensity): statistics of ‖Δe‖ and the verdict."""
    cols = ["modality", "effect", "intensity", "n", "n_zero_norm", "n_nonfinite", "mean_norm",
            "std_norm", "min_norm", "max_norm", "min_distance", "sensitive", "reason"]  # fmt: skip
    return _gate_rows(
        doc.results,
        cols,
        copy=("n", "n_zero_norm", "n_nonfinite", "sensitive", "reason"),
        thresholds={"min_distance": doc.min_distance},
        renamed={f"{k}_norm": k for k in ("mean", "std", "min", "max")},
    )


def consistency_rows(doc: LinearityResults) -> pd.DataFrame:
    """One row per (modality, effect, intensity, category): direction and magnitude
    consistency of the deltas within the category, and the gate's verdict."""
    th = doc.thresholds
    cols = ["modality", "effect", "intensity", "category", "n", "mean_cosine", "cv",
            "min_cosine", "max_cv", "consistent", "reason"]  # fmt: skip
    return _gate_rows(
        doc.within_category,
        cols,
        copy=("category", "n", "mean_cosine", "cv", "consistent", "reason"),
        thresholds={k: th.get(k) for k in ("min_cosine", "max_cv")},
    )


def invariance_rows(doc: CrossCategoryVariance) -> pd.DataFrame:
    """One row per (modality, effect, intensity): variance of the category prototypes'
    pairwise cosines (cross-category invariance) and the gate's verdict."""
    cols = ["modality", "effect", "intensity", "n_categories", "n_pairs", "mean_cosine",
            "variance", "max_variance", "invariant", "reason"]  # fmt: skip
    return _gate_rows(
        doc.results,
        cols,
        copy=("mean_cosine", "variance", "invariant", "reason"),
        thresholds={"max_variance": doc.thresholds.get("max_variance")},
        derived={
            "n_categories": lambda r: len(r.categories),
            "n_pairs": lambda r: len(r.pairs),
        },
    )


def _variant(r: Any) -> dict[str, Any]:
    return {"modality": r.modality, "effect": r.effect_type, "intensity": r.intensity}


def phase1_pairs(labels: DiscoveryLabels) -> set[tuple[str, str]]:
    """(image effect, audio effect) pairs Phase 1 chose (its ``chosen_pairs``: the one
    decision of significance, docs/methods.md §5)."""
    return labels.pairs()


def phase3_choice(training_log: TrainingLog) -> dict[str, Any]:
    """The pairs Phase 3 trained on and what they rest on, from the training log's copy of
    ``pairs.json`` (its ``chosen`` and ``significance``; docs/methods.md §6.1): the one source
    that the tables, the report and the summary all quote. ``basis`` is ``significant``
    (Phase 1's corrected p-value, ``p_adjusted <= alpha``), ``score only`` with why (the demo's
    ``phase3.require_significant_pairs: false``, or no p-values), or ``none`` (no pair)."""
    pairs = training_log.pairs.pairs()
    sig = training_log.pairs.significance
    if not pairs:
        basis = "none"
    elif sig is not None and not sig.available:
        basis = "score only: discovery_labels.json has no p-values"
    elif sig is not None and sig.required is False:
        basis = "score only: phase3.require_significant_pairs is false (not evidence)"
    else:
        basis = f"significant: p_adjusted <= {sig.alpha if sig else float('nan'):g}"
    return {"pairs": pairs, "basis": basis}


def phase3_pairs(training_log: TrainingLog) -> set[tuple[str, str]]:
    """Pairs Phase 3 trained on (:func:`phase3_choice`): Phase 1's significant pairs above
    phase3.pair_threshold, or the score-only pairs of the exercise mode."""
    return set(phase3_choice(training_log)["pairs"])


def _matrix_or_none(value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == shape else None


def discovery_rows(
    matrix: np.ndarray, labels: DiscoveryLabels, training_log: TrainingLog
) -> pd.DataFrame:
    """One row per (image effect, audio effect) cell of the discovery matrix: the score, its
    three factors, the adjusted p-value, best match, Phase 1's choice (``chosen``), whether
    Phase 3 trained on it (``used_by_phase3``) and why (``phase3_basis``,
    :func:`phase3_choice`)."""
    rows_e, cols_e = labels.image_effects, labels.audio_effects
    shape = (len(rows_e), len(cols_e))
    sim3 = _matrix_or_none(labels.sim3_matrix(), shape)
    p_adj = _matrix_or_none(labels.p_adjusted_matrix(), shape)
    best = {b["image_effect"]: b["best"] for b in labels.best_matches}
    chosen, choice = labels.pairs(), phase3_choice(training_log)
    used = set(choice["pairs"])
    out = []
    for i, img in enumerate(rows_e):
        for j, aud in enumerate(cols_e):
            out.append(
                {
                    "image_effect": img,
                    "audio_effect": aud,
                    "score": float(matrix[i, j]),
                    "sim1": labels.sim1.get(img),
                    "sim2": labels.sim2.get(aud),
                    "sim3": None if sim3 is None else float(sim3[i, j]),
                    "p_adjusted": None if p_adj is None else float(p_adj[i, j]),
                    "best_match": best.get(img) == aud,
                    "chosen": (img, aud) in chosen,
                    "used_by_phase3": (img, aud) in used,
                    "phase3_basis": choice["basis"] if (img, aud) in used else None,
                }
            )
    return pd.DataFrame(out)


def phase3_rows(training_log: TrainingLog) -> pd.DataFrame:
    """One row per (split, candidate, metric) of the Phase 3 test figures: the decoder and
    every baseline on the test files (``test``) and on the held-out paraphrases
    (``paraphrases``), each a mean with its bootstrap interval over test files, and its SD
    over the training seeds (0 for what no seed changes)."""
    cols = ["split", "candidate", "metric", "mean", "low", "high", "n_files", "seed_sd"]
    cols += ["n_seeds", "status"]
    rows = []
    test = training_log.test
    blocks = (
        {"test": test.figures, "paraphrases": test.paraphrase_figures} if test is not None else {}
    )
    for split, figures in blocks.items():
        for candidate, metrics in (figures or {}).items():
            for metric, fig in metrics.items():
                if isinstance(fig, Mapping):
                    rows.append(
                        {"split": split, "candidate": candidate, "metric": metric,
                         **{k: fig.get(k) for k in ("mean", "low", "high", "n_files", "seed_sd")},
                         "n_seeds": len(fig.get("per_seed") or []) or None,
                         "status": training_log.status}
                    )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
