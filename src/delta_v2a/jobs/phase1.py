"""Phase 1 job: prototypes vs text anchors -> the discovery matrix, its labels and heatmap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delta_v2a import phase1, plots
from delta_v2a.config import ANCHOR_CONTEXT
from delta_v2a.jobs.common import PipelineError, gate_health, load_embedder_for_job, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.storage import DeltaStore, atomic_path, write_json

#: What each array of discovery_components.npz holds (copied into discovery_labels.json).
COMPONENTS = {
    "score": "(n_image, n_audio) pooled final score; identical to discovery_matrix.npy",
    "score_per_intensity": "(n_int, n_image, n_audio): score from the prototypes of ONE "
    "intensity on both sides (image level k with audio level k); sim3 does not depend on it",
    "sim1": "(n_image,) raw cos(pooled image prototype, image anchor) in CLIP space",
    "sim2": "(n_audio,) raw cos(pooled audio prototype, audio anchor) in CLAP space",
    "sim3": "(n_image, n_audio) raw anchor-anchor cosine of the chosen text bridge",
    "sim3_clap": "(n_image, n_audio) raw sim3 in CLAP's text space (bridge clap or both)",
    "sim3_clip": "(n_image, n_audio) raw sim3 in CLIP's text space (bridge clip or both)",
    "sim1_per_intensity": "(n_int, n_image) raw sim1 per intensity",
    "sim2_per_intensity": "(n_int, n_audio) raw sim2 per intensity",
    "image_prototypes": "(n_image, D_clip) pooled; image_prototypes_per_intensity (n_int, ...)",
    "audio_prototypes": "(n_audio, D_clap) pooled; audio_prototypes_per_intensity (n_int, ...)",
    "image_anchor_clip": "(n_image, D_clip) image-effect anchors in CLIP text space (sim1)",
    "audio_anchor_clap": "(n_audio, D_clap) audio-effect anchors in CLAP text space (sim2)",
    "image_anchor_clap": "(n_image, D_clap) image-effect anchors in CLAP text space (bridge)",
    "audio_anchor_clip": "(n_audio, D_clip) audio-effect anchors in CLIP text space (bridge)",
    "image_effects / audio_effects / intensities": "axis labels, as in discovery_labels.json",
}


def _jsonable(x: Any) -> Any:
    """Arrays and floats as JSON values, NaN (no usable prototype) as null."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr) if np.isfinite(arr) else None
    return [_jsonable(v) for v in arr]


def _spec(
    modality: str,
    effects: Sequence[str],
    contexts: Sequence[str],
    templates: Mapping[str, Mapping[str, str]],
    synonyms: Mapping[str, Mapping[str, Sequence[str]]],
) -> phase1.AnchorSpec:
    return phase1.AnchorSpec(
        effect_template=templates[modality]["effect"],
        neutral_template=templates[modality]["neutral"],
        context_field=ANCHOR_CONTEXT[modality],
        synonyms={e: list(synonyms[modality][e]) for e in effects},
        contexts=[phase1.readable(c) for c in contexts],
    )


def _protos(store: DeltaStore) -> phase1.Prototypes:
    return phase1.prototypes(
        store.delta,
        store.effect_code,
        store.intensity_code,
        [str(e) for e in store.effects],
        [str(i) for i in store.intensities],
    )


def _embed(modality: str, model: Mapping[str, Any], threads: int, specs, text_batch_size: int):
    """Load one model (once per job), embed every distinct prompt of ``specs`` in it."""
    embedder = load_embedder_for_job(modality, model, threads)
    anchors, n_prompts = phase1.text_anchors(
        lambda texts: embedder.embed_texts(texts, batch_size=text_batch_size), specs
    )
    log.info("%s text tower: %d distinct prompts embedded once each", modality, n_prompts)
    return anchors, n_prompts, embedder.info.to_dict()


def run_phase1(
    *,
    image_store: str,
    audio_store: str,
    health: Sequence[str],
    models: Mapping[str, Mapping[str, Any]],
    allow_unhealthy: bool,
    text_bridge: str,
    clip_negative: bool,
    templates: Mapping[str, Mapping[str, str]],
    synonyms: Mapping[str, Mapping[str, Sequence[str]]],
    matrix_out: str,
    labels_out: str,
    components_out: str,
    heatmap_out: str,
    threads: int = 1,
    text_batch_size: int = 64,
) -> None:
    # Health first: anchors from a collapsed text tower are noise (docs/methods.md §1).
    health_docs = gate_health(health, allow_unhealthy, "text")
    stores = {"image": DeltaStore.load(image_store), "audio": DeltaStore.load(audio_store)}
    for modality, store in stores.items():
        if store.modality != modality:
            raise PipelineError(f"{modality} store holds {store.modality!r} deltas")
    protos = {m: _protos(s) for m, s in stores.items()}
    img_fx, aud_fx = protos["image"].effects, protos["audio"].effects
    intensities = protos["image"].intensities
    if protos["audio"].intensities != intensities:
        raise PipelineError(
            f"image intensities {intensities} differ from audio {protos['audio'].intensities}"
        )
    contexts = {m: sorted({str(c) for c in s.file_category}) for m, s in stores.items()}
    specs = {
        m: _spec(m, protos[m].effects, contexts[m], templates, synonyms) for m in ("image", "audio")
    }

    # CLIP's text tower: image anchors (sim1) [+ audio anchors for the clip bridge].
    # CLAP's text tower: audio anchors (sim2) [+ image anchors for the clap bridge].
    clip_specs = {"image": specs["image"]}
    clap_specs = {"audio": specs["audio"]}
    if text_bridge in ("clip", "both"):
        clip_specs["audio"] = specs["audio"]
    if text_bridge in ("clap", "both"):
        clap_specs["image"] = specs["image"]
    clip_anchors, n_clip, clip_info = _embed(
        "image", models["image"], threads, clip_specs, text_batch_size
    )
    clap_anchors, n_clap, clap_info = _embed(
        "audio", models["audio"], threads, clap_specs, text_batch_size
    )

    img_anchor, aud_anchor = clip_anchors["image"].vectors, clap_anchors["audio"].vectors
    if img_anchor.shape[1] != protos["image"].pooled.shape[1]:
        raise PipelineError(
            f"CLIP text anchors are {img_anchor.shape[1]}-d but the image deltas "
            f"{protos['image'].pooled.shape[1]}-d: the deltas were made with another model"
        )
    if aud_anchor.shape[1] != protos["audio"].pooled.shape[1]:
        raise PipelineError(
            f"CLAP text anchors are {aud_anchor.shape[1]}-d but the audio deltas "
            f"{protos['audio'].pooled.shape[1]}-d: the deltas were made with another model"
        )
    sim1 = phase1.rowwise_cosine(protos["image"].pooled, img_anchor)
    sim2 = phase1.rowwise_cosine(protos["audio"].pooled, aud_anchor)
    sim1_k = np.stack([phase1.rowwise_cosine(p, img_anchor) for p in protos["image"].per_intensity])
    sim2_k = np.stack([phase1.rowwise_cosine(p, aud_anchor) for p in protos["audio"].per_intensity])
    bridge = phase1.bridge_sim3(
        clap_anchors["image"].vectors if "image" in clap_anchors else None,
        aud_anchor,
        img_anchor,
        clip_anchors["audio"].vectors if "audio" in clip_anchors else None,
        text_bridge,
    )
    sim3 = bridge["sim3"]
    score = phase1.combine(sim1, sim2, sim3, clip_negative)
    score_k = phase1.combine(sim1_k, sim2_k, sim3, clip_negative)
    best = phase1.best_matches(score, img_fx, aud_fx)

    # ---------------------------------------------------------------- artifacts
    with atomic_path(matrix_out, ".npy") as tmp:
        np.save(tmp, score)
    arrays = {
        "image_effects": np.asarray(img_fx, dtype=str),
        "audio_effects": np.asarray(aud_fx, dtype=str),
        "intensities": np.asarray(intensities, dtype=str),
        "score": score,
        "score_per_intensity": score_k,
        "sim1": sim1,
        "sim2": sim2,
        "sim3": sim3,
        "sim1_per_intensity": sim1_k,
        "sim2_per_intensity": sim2_k,
        "image_prototypes": protos["image"].pooled,
        "image_prototypes_per_intensity": protos["image"].per_intensity,
        "audio_prototypes": protos["audio"].pooled,
        "audio_prototypes_per_intensity": protos["audio"].per_intensity,
        "image_anchor_clip": img_anchor,
        "audio_anchor_clap": aud_anchor,
    }
    arrays |= {f"sim3_{k}": v for k, v in bridge.items() if k != "sim3"}
    if "image" in clap_anchors:
        arrays["image_anchor_clap"] = clap_anchors["image"].vectors
    if "audio" in clip_anchors:
        arrays["audio_anchor_clip"] = clip_anchors["audio"].vectors
    with atomic_path(components_out, ".npz") as tmp:
        np.savez(tmp, **arrays)

    meta = merge_model_meta({"modality": m, **s.meta} for m, s in stores.items())
    meta["text_models"] = {"image": clip_info, "audio": clap_info}
    health_figures = {
        d.get("modality", "?"): {
            k: d.get(k)
            for k in ("text_mean_pairwise_cosine", "audio_mean_pairwise_cosine", "limit", "passed")
        }
        | {"model": d.get("model", {}).get("name_or_path")}
        for d in health_docs
    }
    labels = {
        "image_effects": img_fx,
        "audio_effects": aud_fx,
        "matrix": "discovery_matrix.npy: rows = image_effects, columns = audio_effects, "
        "pooled over intensities, after clipping",
        "intensities": intensities,
        "score": "sim1[i] × sim2[j] × sim3[i, j]"
        + (" with each factor clipped at 0" if clip_negative else " (raw factors)"),
        "text_bridge": text_bridge,
        "sim3_reason": phase1.SIM3_REASON,
        "clip_negative": clip_negative,
        "clip_negative_reason": phase1.CLIP_REASON,
        "templates": {m: dict(templates[m]) for m in ("image", "audio")},
        "synonyms": {m: {e: list(v) for e, v in specs[m].synonyms.items()} for m in specs},
        "contexts": {"image_categories": contexts["image"], "audio_genres": contexts["audio"]},
        "prompts": {
            "distinct_prompts_embedded": {"clip": n_clip, "clap": n_clap},
            "pairs_per_effect": {
                m: dict(zip(specs[m].synonyms, a.n_pairs, strict=True))
                for m, a in (("image", clip_anchors["image"]), ("audio", clap_anchors["audio"]))
            },
        },
        "sim1": dict(zip(img_fx, _jsonable(sim1), strict=True)),
        "sim2": dict(zip(aud_fx, _jsonable(sim2), strict=True)),
        "sim3": _jsonable(sim3),
        "scores": _jsonable(score),
        "best_matches": best,
        "prototypes": {
            m: {
                "n_deltas": {
                    e: dict(zip(p.intensities, p.counts[:, j].tolist(), strict=True))
                    for j, e in enumerate(p.effects)
                },
                # |p| in [0, 1]: 1 when every delta of the effect points the same way
                "pooled_norm": dict(
                    zip(p.effects, _jsonable(np.linalg.norm(p.pooled, axis=1)), strict=True)
                ),
            }
            for m, p in protos.items()
        },
        "components_file": components_out,
        "components": COMPONENTS,
        "health": health_figures,
        "meta": meta,
    }
    write_json(labels_out, labels)

    title = (
        f"Phase 1 discovery: sim1·sim2·sim3 (bridge: {text_bridge}"
        f"{', negatives clipped at 0' if clip_negative else ''})\n"
        f"CLIP: {clip_info['name_or_path']}   CLAP: {clap_info['name_or_path']}"
    )
    if meta["not_science"] or clip_info.get("tiny") or clap_info.get("tiny"):
        title += "\ntiny random models: not science"
    plots.discovery_heatmap(
        score,
        [f"{e}\nsim1 {_fmt(s)}" for e, s in zip(img_fx, sim1, strict=True)],
        [f"{e}\nsim2 {_fmt(s)}" for e, s in zip(aud_fx, sim2, strict=True)],
        heatmap_out,
        title,
        meta["note"],
    )

    log.info("Phase 1 best matches (score = sim1·sim2·sim3, bridge %s):", text_bridge)
    for rec in best:
        if rec["best"] is None:
            log.info("  %-12s -> no finite score", rec["image_effect"])
        elif rec["score"] <= 0:
            log.info("  %-12s -> no match: every score is <= 0", rec["image_effect"])
        elif rec["runner_up"] is None:
            log.info("  %-12s -> %-12s score %.4g", rec["image_effect"], rec["best"], rec["score"])
        else:
            log.info(
                "  %-12s -> %-12s score %.4g, margin %.4g over %s%s",
                rec["image_effect"],
                rec["best"],
                rec["score"],
                rec["margin"],
                rec["runner_up"],
                " (TIE: the best is arbitrary)" if rec["tie"] else "",
            )
    if meta["not_science"]:
        log.warning(meta["note"])


def _fmt(x: float) -> str:
    return f"{x:+.2f}" if np.isfinite(x) else "n/a"
