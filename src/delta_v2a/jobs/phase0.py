"""Phase 0 jobs: sensitivity (0-a) and linearity (0-b) over the delta stores."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from delta_v2a import phase0, plots
from delta_v2a.artifacts.phase0 import (
    AcrossIntensityRow,
    ConsistencyRow,
    ConsistencySummary,
    CrossCategoryRow,
    CrossCategoryVariance,
    LinearityResults,
    SensitivityResults,
    SensitivityRow,
)
from delta_v2a.jobs.common import Paths, gate_health, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import LinearitySettings, SensitivitySettings
from delta_v2a.storage import DeltaStore, StoreReader, open_store


def store_parts(readers: Sequence[StoreReader], by: str) -> Iterator[DeltaStore]:
    """Each store's rows one variant (``by="variant"``) or one effect with every intensity of
    it (``by="effect"``) at a time, as a store of that one effect without the originals (no
    Phase 0 statistic reads them): what the Phase 0 tables need at once (docs/methods.md §2.3).

    Why: a job reading whole stores needs every variant of a modality in memory (37 GB of image
    deltas at 10^6 files). Every Phase 0 statistic is per variant (sensitivity, within- and
    cross-category) or per effect across its intensities, so the tables are the same row for
    row (a test compares).
    """
    for reader in readers:
        effect_code, intensity_code = reader.codes()
        key = effect_code.astype(np.int64)
        if by == "variant":
            key = key * (int(intensity_code.max(initial=0)) + 1) + intensity_code
        for k in dict.fromkeys(key.tolist()):
            rows = np.flatnonzero(key == k)
            e = int(effect_code[rows[0]])
            sub = reader.store(rows, originals=False)
            yield dataclasses.replace(
                sub, effect_code=np.zeros(len(sub), dtype=np.int16), effects=sub.effects[[e]]
            )


def _tables(readers: Sequence[StoreReader], by: str, *tables: Callable) -> list[list[dict]]:
    """Each of ``tables`` (a function of a list of stores) over every store, one variant or
    effect at a time (``by``), its rows concatenated in store order."""
    out: list[list[dict]] = [[] for _ in tables]
    for sub in store_parts(readers, by):
        for rows, table in zip(out, tables, strict=True):
            rows += table([sub])
    return out


def _phase_meta(stores: Sequence[DeltaStore | StoreReader], health: Sequence[dict]) -> dict:
    meta = merge_model_meta({"modality": s.modality, **s.meta} for s in stores)
    meta["health"] = {d.get("modality", "?"): d for d in health}
    meta["degenerate_deltas"] = {s.modality: s.meta.get("degenerate", []) for s in stores}
    return meta


def _variant(r: dict) -> str:
    return f"{r['modality']} {r['effect_type']}/{r['intensity']}"


def _levels(stores: Sequence[DeltaStore | StoreReader]) -> dict[tuple[str, str, str], str]:
    """(modality, effect, intensity) -> the level in physical units, for the figures' axes
    (each store records the parameters every variant was made with)."""
    out = {}
    for s in stores:
        for key, params in s.meta.get("effect_params", {}).items():
            effect, intensity = key.split("/", 1)
            out[(s.modality, effect, intensity)] = plots.level_text(s.modality, effect, params)
    return out


def _norms(store: DeltaStore) -> pd.DataFrame:
    """This (one-effect) store's delta norms for the figure; each label column holds references
    to one Python string per label (8 bytes a row), not a string object per row."""

    def labels(names: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.array(names.tolist(), dtype=object)[codes]

    return pd.DataFrame(
        {
            "modality": labels(np.array([store.modality]), np.zeros(len(store), dtype=np.int64)),
            "effect_type": labels(store.effects, store.effect_code),
            "intensity": labels(store.intensities, store.intensity_code),
            "norm": np.linalg.norm(store.delta.astype(np.float64), axis=1),
        }
    )


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
    readers = [open_store(p) for p in inputs.stores]
    rows, norms = _tables(
        readers,
        "variant",
        lambda subs: phase0.sensitivity_table(subs, min_distance),
        lambda subs: [_norms(subs[0])],
    )
    _warn_failed(
        rows,
        "sensitive",
        "INSENSITIVE: %s mean ||Δe|| = %.4g <= min_distance %g",
        lambda r: (r["mean"], min_distance),
    )
    meta = _phase_meta(readers, docs)
    results = [SensitivityRow.from_json(r) for r in rows]
    SensitivityResults(meta=meta, min_distance=min_distance, results=results).write(outputs.json)
    plots.norms_figure(
        pd.concat(norms, ignore_index=True),
        min_distance,
        outputs.figure,
        meta["note"],
        _levels(readers),
    )


def run_linearity(*, inputs: Paths, outputs: Paths, settings: LinearitySettings) -> None:
    """Within-category consistency and cross-category invariance (docs/methods.md §4)."""
    docs = gate_health(inputs.health, settings.allow_unhealthy, "media")
    readers = [open_store(p) for p in inputs.stores]
    thresholds = {k: getattr(settings, k) for k in ("min_cosine", "max_cv", "max_variance")}
    min_cosine, max_variance = thresholds["min_cosine"], thresholds["max_variance"]
    within, cross = _tables(
        readers,
        "variant",
        lambda subs: phase0.within_category_table(subs, min_cosine, thresholds["max_cv"]),
        lambda subs: phase0.cross_category_table(subs, max_variance),
    )
    (across,) = _tables(readers, "effect", phase0.across_intensity_table)
    summary = phase0.summarise_consistency(within)
    meta = _phase_meta(readers, docs)
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
    LinearityResults(
        meta=meta,
        thresholds=thresholds,
        within_category=[ConsistencyRow.from_json(r) for r in within],
        summary=[ConsistencySummary.from_json(s) for s in summary],
        across_intensities=[AcrossIntensityRow.from_json(a) for a in across],
    ).write(outputs.json)
    cross_rows = [CrossCategoryRow.from_json(c) for c in cross]
    CrossCategoryVariance(meta=meta, thresholds=thresholds, results=cross_rows).write(outputs.cross)
    plots.consistency_figure(
        pd.DataFrame(within), min_cosine, outputs.figure, meta["note"], _levels(readers)
    )
