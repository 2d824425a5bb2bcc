"""Phase 0 jobs: sensitivity (0-a) and linearity (0-b) over the delta stores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from delta_v2a import phase0, plots
from delta_v2a.jobs.common import Paths, gate_health, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import LinearitySettings, SensitivitySettings
from delta_v2a.storage import DeltaStore, write_json


def _phase_meta(stores: Sequence[DeltaStore], health: Sequence[dict]) -> dict:
    meta = merge_model_meta({"modality": s.modality, **s.meta} for s in stores)
    meta["health"] = {d.get("modality", "?"): d for d in health}
    meta["degenerate_deltas"] = {s.modality: s.meta.get("degenerate", []) for s in stores}
    return meta


def _variant(r: dict) -> str:
    return f"{r['modality']} {r['effect_type']}/{r['intensity']}"


def _levels(stores: Sequence[DeltaStore]) -> dict[tuple[str, str, str], str]:
    """(modality, effect, intensity) -> the level in physical units, for the figures' axes
    (each store records the parameters every variant was made with)."""
    out = {}
    for s in stores:
        for key, params in s.meta.get("effect_params", {}).items():
            effect, intensity = key.split("/", 1)
            out[(s.modality, effect, intensity)] = plots.level_text(s.modality, effect, params)
    return out


def _norms_frame(stores: Sequence[DeltaStore]) -> pd.DataFrame:
    frames = []
    for s in stores:
        frames.append(
            pd.DataFrame(
                {
                    "modality": s.modality,
                    "effect_type": s.effect,
                    "intensity": s.intensity,
                    "norm": np.linalg.norm(s.delta.astype(np.float64), axis=1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _warn_failed(rows: list[dict], verdict: str, message: str, values) -> None:
    """One loud line per variant whose gate ``verdict`` is False (None: no verdict, silent);
    ``values(row)`` gives the figures the message quotes after the variant's name."""
    for r in rows:
        if r[verdict] is False:
            log.warning(message, _variant(r), *values(r))


def run_sensitivity(*, inputs: Paths, outputs: Paths, settings: SensitivitySettings) -> None:
    """Phase 0-a: statistics of the delta norms per variant (docs/methods.md §4)."""
    min_distance = settings.min_distance
    docs = gate_health(inputs.health, settings.allow_unhealthy, "media")
    loaded = [DeltaStore.load(p) for p in inputs.stores]
    rows = phase0.sensitivity_table(loaded, min_distance)
    _warn_failed(
        rows,
        "sensitive",
        "INSENSITIVE: %s mean ||Δe|| = %.4g <= min_distance %g",
        lambda r: (r["mean"], min_distance),
    )
    meta = _phase_meta(loaded, docs)
    write_json(outputs.json, {"meta": meta, "min_distance": min_distance, "results": rows})
    plots.norms_figure(
        _norms_frame(loaded), min_distance, outputs.figure, meta["note"], _levels(loaded)
    )


def run_linearity(*, inputs: Paths, outputs: Paths, settings: LinearitySettings) -> None:
    """Within-category consistency and cross-category invariance (docs/methods.md §4)."""
    docs = gate_health(inputs.health, settings.allow_unhealthy, "media")
    loaded = [DeltaStore.load(p) for p in inputs.stores]
    thresholds = {k: getattr(settings, k) for k in ("min_cosine", "max_cv", "max_variance")}
    min_cosine, max_variance = thresholds["min_cosine"], thresholds["max_variance"]
    within = phase0.within_category_table(loaded, min_cosine, thresholds["max_cv"])
    cross = phase0.cross_category_table(loaded, max_variance)
    summary = phase0.summarise_consistency(within)
    meta = _phase_meta(loaded, docs)
    _warn_failed(
        summary,
        "consistent",
        "INCONSISTENT: %s: %d of %d categories consistent",
        lambda s: (s["n_consistent"], s["n_categories"] - s["n_undetermined"]),
    )
    _warn_failed(
        cross,
        "invariant",
        "NOT INVARIANT: %s: variance %.4g >= %g (mean cosine %.3f)",
        lambda c: (c["variance"], max_variance, c["mean_cosine"]),
    )
    write_json(
        outputs.json,
        {
            "meta": meta,
            "thresholds": thresholds,
            "within_category": within,
            "summary": summary,
            "across_intensities": phase0.across_intensity_table(loaded),
        },
    )
    write_json(outputs.cross, {"meta": meta, "thresholds": thresholds, "results": cross})
    plots.consistency_figure(
        pd.DataFrame(within), min_cosine, outputs.figure, meta["note"], _levels(loaded)
    )
