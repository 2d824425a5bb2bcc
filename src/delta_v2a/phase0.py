"""Phase 0 over whole delta stores: the seed's sensitivity and linearity tables.

Rows are grouped by integer codes (effect, intensity, category) in one pass; each group's
statistic is O(group · d), so the whole phase is linear in the number of records.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from delta_v2a import metrics
from delta_v2a.storage import DeltaStore


def _groups(store: DeltaStore, with_category: bool):
    keys = [store.effect_code, store.intensity_code]
    cat_names, cat_code = np.unique(store.file_category, return_inverse=True)
    if with_category:
        keys.append(cat_code[store.file_index])
    for key, rows in metrics.group_indices(*keys):
        labels = {
            "modality": store.modality,
            "effect_type": str(store.effects[key[0]]),
            "intensity": str(store.intensities[key[1]]),
        }
        if with_category:
            labels["category"] = str(cat_names[key[2]])
        yield labels, rows


def _order(store: DeltaStore):
    """Sort key that keeps effects in config order and intensities low → high."""
    eff = {str(e): i for i, e in enumerate(store.effects)}
    inten = {str(x): i for i, x in enumerate(store.intensities)}
    return lambda r: (eff[r["effect_type"]], inten[r["intensity"]], r.get("category", ""))


def sensitivity_table(stores: Sequence[DeltaStore], min_distance: float) -> list[dict]:
    rows = []
    for store in stores:
        part = [
            labels | metrics.sensitivity(store.delta[idx], min_distance)
            for labels, idx in _groups(store, with_category=False)
        ]
        rows += sorted(part, key=_order(store))
    return rows


def within_category_table(
    stores: Sequence[DeltaStore], min_cosine: float, max_cv: float
) -> list[dict]:
    rows = []
    for store in stores:
        part = [
            labels | metrics.consistency(store.delta[idx], min_cosine, max_cv)
            for labels, idx in _groups(store, with_category=True)
        ]
        rows += sorted(part, key=_order(store))
    return rows


def cross_category_table(stores: Sequence[DeltaStore], max_variance: float) -> list[dict]:
    rows = []
    for store in stores:
        category = store.category
        part = []
        for labels, idx in _groups(store, with_category=False):
            cats = category[idx]
            by_cat = {str(c): store.delta[idx[cats == c]] for c in np.unique(cats)}
            part.append(labels | metrics.cross_category(by_cat, max_variance))
        rows += sorted(part, key=_order(store))
    return rows


def across_intensity_table(stores: Sequence[DeltaStore]) -> list[dict]:
    rows = []
    for store in stores:
        for e, effect in enumerate(store.effects):
            per_level = [
                (str(name), store.delta[(store.effect_code == e) & (store.intensity_code == i)])
                for i, name in enumerate(store.intensities)
            ]
            rows.append(
                {"modality": store.modality, "effect_type": str(effect)}
                | metrics.across_intensities(per_level)
            )
    return rows


def summarise_consistency(within: list[dict]) -> list[dict]:
    """Per (modality, effect, intensity): how many categories passed the within-category gate."""
    out: dict[tuple, dict] = {}
    for r in within:
        key = (r["modality"], r["effect_type"], r["intensity"])
        s = out.setdefault(
            key,
            {
                "modality": key[0],
                "effect_type": key[1],
                "intensity": key[2],
                "n_categories": 0,
                "n_consistent": 0,
                "n_undetermined": 0,
            },
        )
        s["n_categories"] += 1
        if r["consistent"] is None:
            s["n_undetermined"] += 1
        elif r["consistent"]:
            s["n_consistent"] += 1
    for s in out.values():
        decided = s["n_categories"] - s["n_undetermined"]
        s["consistent"] = None if decided == 0 else s["n_consistent"] == decided
    return list(out.values())
