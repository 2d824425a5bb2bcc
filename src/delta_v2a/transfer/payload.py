"""The ``transfer`` entry of ``decoder_model.pt``, built from the study's artifacts
(docs/methods.md §7).

:func:`build_transfer_payload` is the arithmetic on loaded documents (no I/O);
:func:`transfer_payload_from_results` loads the files and calls it, and is what the Phase 3
training job stores under ``"transfer"`` in the model file. Phase 1's significance fields
(``p_adjusted``, ``chosen_pairs``, ``alpha``) are read where present; a study without them gives
pairs whose significance is ``None`` (untested), which ``delta-v2a transfer`` refuses unless
``--force``. A missing field raises :class:`PayloadError` naming the file and key (a
StoreError: the job ends on its one line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import ChosenPair, Pairs
from delta_v2a.artifacts.phase0 import SensitivityResults
from delta_v2a.phase1 import prototypes
from delta_v2a.storage import DeltaStore, StoreError
from delta_v2a.transfer import geometry as tr
from delta_v2a.transfer.types import TransferPayload

log = logging.getLogger("delta_v2a")


class PayloadError(StoreError):
    """An artifact lacks what the transfer entry needs; the message names file and key."""


def _level_norms(sensitivity: SensitivityResults, where: str, store: DeltaStore) -> dict:
    """Phase 0's mean image ‖Δe‖ per effect, one per intensity in the store's order."""
    means = sensitivity.image_means()
    out = {}
    for effect in map(str, store.effects):
        norms = []
        for intensity in map(str, store.intensities):
            mean = means.get((effect, intensity))
            if mean is None:
                raise PayloadError(
                    f"{where}: results has no finite image mean for {effect}/{intensity}"
                )
            norms.append(float(mean))
        out[effect] = tr.StrengthCurve.from_levels(norms)
    return out


def _significance(labels: DiscoveryLabels, image: str, audio: str) -> dict[str, Any]:
    """The pair's p-values and Phase 1's decision, copied (Phase 1 alone decides)."""
    try:
        i, j = labels.cell(image, audio)
    except ValueError as err:
        raise PayloadError(f"discovery labels: {err}") from err
    p_adj, p_raw = labels.p_adjusted_matrix(), labels.p_matrix()
    return {
        "p_value": float(p_raw[i, j]) if np.isfinite(p_raw[i, j]) else None,
        "p_adjusted": float(p_adj[i, j]) if np.isfinite(p_adj[i, j]) else None,
        "alpha": labels.alpha,
        "significant": (image, audio) in labels.pairs(),
    }


def _normalised(store: DeltaStore) -> bool:
    """Whether the study's embeddings were L2-normalised (their originals have unit length)."""
    norms = np.linalg.norm(store.original.astype(np.float64), axis=1)
    return bool(norms.size and np.all(np.abs(norms - 1.0) < 1e-3))


def _audio_top(audio_store: DeltaStore | None, image: str, effect: str, where: str) -> float:
    """Median audio ‖Δe‖ of ``effect`` at its strongest intensity (κ's target)."""
    if audio_store is None:
        raise PayloadError(
            f"{where}: pair {image} -> {effect}: no audio_store was given to compute κ from"
        )
    e = list(audio_store.effects).index(effect)
    rows = (audio_store.effect_code == e) & (
        audio_store.intensity_code == len(audio_store.intensities) - 1
    )
    norms = np.linalg.norm(audio_store.delta[rows].astype(np.float64), axis=1)
    norms = norms[np.isfinite(norms)]
    if norms.size == 0:
        raise PayloadError(f"audio store: no finite delta of {effect} at its strongest level")
    return float(np.median(norms))


def _pairs(
    chosen: Sequence[ChosenPair],
    pairs_json: str,
    image_store: str,
    curves: Mapping[str, Any],
    labels: DiscoveryLabels,
    audio: DeltaStore | None,
) -> list[dict[str, Any]]:
    """Phase 3's chosen pairs with their significance and κ (from the image curve's top and
    the audio's strongest norm)."""
    pairs = []
    for c in chosen:
        i, j = c.image_effect, c.audio_effect
        if i not in curves:
            raise PayloadError(f"{pairs_json}: pair {i} -> {j}: {i} is not in {image_store}")
        top = _audio_top(audio, i, j, pairs_json)
        pairs.append(
            {
                "image_effect": i,
                "audio_effect": j,
                "score": c.score,
                **_significance(labels, i, j),
                "audio_norm_strongest": top,
                "kappa": tr.kappa(curves[i].at(1), top),
            }
        )
    return pairs


def _calibration_shares(
    store: DeltaStore, units: np.ndarray, max_calibration: int, seed: int
) -> np.ndarray:
    """Explained shares of (a seeded subset of at most ``max_calibration``) known edits."""
    rows = np.arange(len(store))
    if rows.size > max_calibration:
        rng = np.random.default_rng([seed, 17])
        rows = np.sort(rng.choice(rows, max_calibration, replace=False))
    return tr.explained_shares(store.delta[rows], units)


def _image_model(store: DeltaStore, image_store: str) -> dict[str, Any]:
    """How ``transfer`` must embed a new photo pair: the model and decoding of the store."""
    model = dict(store.meta.get("model", {}))
    image_model = {
        "name_or_path": model.get("name_or_path"),
        "revision": model.get("revision"),
        "dtype": model.get("dtype", "fp32"),
        "normalize": _normalised(store),
        "image_size": store.meta.get("decoding", {}).get("image_size"),
        "dim": int(store.delta.shape[1]),
        "tiny": bool(model.get("tiny", False)),
        "family": model.get("family", "auto"),  # which embedder family loads it again
    }
    if image_model["name_or_path"] is None:
        raise PayloadError(f"{image_store}: meta.model.name_or_path is missing")
    return image_model


def build_transfer_payload(
    store: DeltaStore,
    sensitivity: SensitivityResults,
    labels: DiscoveryLabels,
    phase3_pairs: Pairs,
    audio: DeltaStore | None,
    *,
    names: Mapping[str, str],
    quantile: float = 0.05,
    min_component: float = 0.1,
    u_grid: int = 11,
    max_calibration: int = 5000,
    seed: int = 0,
) -> TransferPayload:
    """The typed ``transfer`` entry for ``decoder_model.pt`` (its ``to_dict()`` is the plain,
    weights_only-loadable dict that :func:`geometry.build_payload` makes).

    ``names``: the files the documents came from (``image_store``, ``sensitivity``, ``pairs``),
    for the messages only.
    """
    effects = [str(e) for e in store.effects]
    pooled = prototypes(
        store.delta, store.effect_code, store.intensity_code, effects, list(store.intensities)
    ).pooled
    units = tr.unit_prototypes(pooled, effects)
    curves = _level_norms(sensitivity, names["sensitivity"], store)
    chosen, data = phase3_pairs.chosen, phase3_pairs.data
    pairs = _pairs(chosen, names["pairs"], names["image_store"], curves, labels, audio)
    # The audio chain in Phase 3's order when it trained, else the audio store's order.
    chain = (data.paramspace.get("effects") if data is not None else None) or (
        [str(e) for e in audio.effects] if audio is not None else [p["audio_effect"] for p in pairs]
    )
    doc = tr.build_payload(
        effects=effects,
        units=units,
        curves=curves,
        pairs=pairs,
        image_model=_image_model(store, names["image_store"]),
        calibration=_calibration_shares(store, units, max_calibration, seed),
        null=tr.null_share(units, seed=seed),
        quantile=quantile,
        min_component=min_component,
        alpha=labels.alpha,
        chain=chain,
        u_grid=u_grid,
    )
    return TransferPayload.from_dict(doc)


def transfer_payload_from_results(
    image_store: str,
    sensitivity_json: str,
    labels_json: str,
    pairs_json: str,
    *,
    audio_store: str | None = None,
    **options: Any,
) -> TransferPayload:
    """:func:`build_transfer_payload` of the study's files (``options``: its keywords)."""
    payload = build_transfer_payload(
        DeltaStore.load(image_store),
        SensitivityResults.read(sensitivity_json),
        DiscoveryLabels.read(labels_json),
        Pairs.read(pairs_json),
        DeltaStore.load(audio_store) if audio_store else None,
        names={"image_store": image_store, "sensitivity": sensitivity_json, "pairs": pairs_json},
        **options,
    )
    th = payload.thresholds
    log.info(
        "transfer: %d image prototypes, %d pair(s), explained-share threshold %.3f (set by %s; "
        "known edits' median %.3f, random directions' 95th percentile %s)",
        len(payload.effects),
        len(payload.pairs),
        th.explained_share_min,
        th.calibration.set_by,
        th.calibration.median_known_edit_share,
        "n/a" if (q := th.calibration.null_share_q95) is None else f"{q:.3f}",
    )
    return payload
