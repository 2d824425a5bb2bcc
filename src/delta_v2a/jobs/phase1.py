"""Phase 1 job: prototypes vs text anchors -> the discovery matrix with intervals, p-values,
the chosen pairs, its table and figures (docs/methods.md §5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a import phase1, plots
from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.config import ANCHOR_CONTEXT
from delta_v2a.jobs.common import Paths, PipelineError, gate_health, load_embedder_for_job, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import ModelSpec, Phase1Settings
from delta_v2a.split import read_split
from delta_v2a.storage import DeltaStore, atomic_path

#: What each array of discovery_components.npz holds (copied into discovery_labels.json).
COMPONENTS = {
    "score": "(n_image, n_audio) pooled final score (anchors centred when center_anchors); "
    "identical to discovery_matrix.npy",
    "score_raw": "(n_image, n_audio) the same score from raw (uncentred) anchors",
    "score_no_shared": "score with sim3 from synonyms without a shared image/audio word",
    "score_per_intensity": "(n_int, n_image, n_audio): score from the prototypes of ONE "
    "intensity on both sides (image level k with audio level k); sim3 does not depend on it",
    "score_lo / score_hi": "bootstrap-over-files basic interval of the score",
    "sim1 / sim1_raw": "(n_image,) cos(pooled image prototype, centred / raw image anchor), CLIP",
    "sim2 / sim2_raw": "(n_audio,) cos(pooled audio prototype, centred / raw audio anchor), CLAP",
    "sim1_lo / sim1_hi / sim2_lo / sim2_hi": "bootstrap-over-files basic intervals",
    "sim3": "(n_image, n_audio) sim3 used in the score: the bridge's cosine (audio | image "
    "text tower) or, "
    "for both, the smaller of the two bridges' cosines",
    "sim3_raw": "sim3 as above from raw (uncentred) anchors",
    "sim3_audio / sim3_image": "each bridge's cosine in the audio / image model's text tower "
    "(centred anchors when center_anchors)",
    "sim3_audio_raw / sim3_image_raw": "each bridge's cosine from raw anchors",
    "z_audio / z_image": "(both) each bridge's cosine standardised against its foil null",
    "bridge_sign_agreement": "(both) whether the two bridges' cosines have the same sign",
    "sim3_no_shared[_clap|_clip]": "sim3 with shared-word synonyms left out",
    "p_sim1 / p_sim2": "foil-concept p-value of sim1 / sim2 per effect (the claim's null): "
    "(1 + concepts at least as extreme) / (K + 1)",
    "k_sim1 / k_sim2 / k_sim3_audio / k_sim3_image": "K, the foil concepts behind each p-value "
    "(its smallest value is 1/(K + 1))",
    "p_sim1_label / p_sim2_label": "label permutation of per-file effect blocks (secondary: "
    "tests that effects differ, not that the prototype points along its anchor)",
    "p_sim3": "foil-set p-value of sim3 per cell (both: the larger of the two bridges')",
    "p_sim3_audio / p_sim3_image": "each bridge's foil-concept p-value",
    "*_no_shared": "(shared_words: warn) the same figures without shared-word synonyms",
    "p": "cell p-value: max(p_sim1[i], p_sim2[j], p_sim3[i, j]) (intersection-union)",
    "p_adjusted": "p adjusted across the matrix (phase1.correction: holm | bh)",
    "sim1_per_intensity / sim2_per_intensity": "(n_int, n_effects) sim per intensity",
    "image_prototypes / audio_prototypes": "(n_effects, D) pooled; *_per_intensity (n_int, ...)",
    "image_anchor / audio_anchor": "anchors used by sim1 / sim2 (centred if set), each in its "
    "own model's text tower; image_anchor_audio_tower / audio_anchor_image_tower: the same "
    "effects' anchors in the other tower (bridges)",
    "image_effects / audio_effects / intensities": "axis labels, as in discovery_labels.json",
}


def _jsonable(x: Any) -> Any:
    """Arrays and floats as JSON values, NaN (undefined) as null."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr) if np.isfinite(arr) else None
    return [_jsonable(v) for v in arr]


def _spec(modality, effects, contexts, templates, synonyms) -> phase1.AnchorSpec:
    return phase1.AnchorSpec(
        effect_template=templates[modality]["effect"],
        neutral_template=templates[modality]["neutral"],
        context_field=ANCHOR_CONTEXT[modality],
        synonyms={e: list(synonyms[modality][e]) for e in effects},
        contexts=[phase1.readable(c) for c in contexts],
    )


def _side(store: DeltaStore, files: np.ndarray | None = None) -> phase1.Side:
    """One modality's deltas as Phase 1 reads them; with ``files`` (a mask over the store's
    files) only those files' deltas, re-indexed (the audio side: Phase 3's train + val)."""
    keep = np.ones(len(store.files), dtype=bool) if files is None else np.asarray(files)
    new_index = np.cumsum(keep) - 1
    rows = keep[store.file_index]
    return phase1.Side(
        delta=store.delta[rows],
        effect_code=np.asarray(store.effect_code, dtype=np.int64)[rows],
        intensity_code=np.asarray(store.intensity_code, dtype=np.int64)[rows],
        file_index=new_index[np.asarray(store.file_index, dtype=np.int64)[rows]],
        n_files=int(keep.sum()),
        effects=[str(e) for e in store.effects],
        intensities=[str(i) for i in store.intensities],
    )


def _choice_files(store: DeltaStore, split_path: str) -> np.ndarray:
    """Mask of the audio files Phase 1 may choose on: Phase 3's train and validation files,
    never its test files (docs/methods.md §5)."""
    allowed = set(read_split(split_path).files("train", "val"))
    mask = np.array([str(p) in allowed for p in store.files])
    if not mask.any():
        raise PipelineError(f"{split_path}: no train or validation file is in the audio store")
    return mask


def _embed(modality: str, model: ModelSpec, threads: int, specs, text_batch_size: int):
    """Load one model (once per job), embed every distinct prompt of ``specs`` in it."""
    embedder = load_embedder_for_job(model, threads)
    anchors, n_prompts = phase1.text_anchors(  # one batched call per tower
        lambda texts: embedder.embed_texts(texts, batch_size=text_batch_size), specs
    )
    log.info("%s text tower: %d distinct prompts embedded once each", modality, n_prompts)
    return anchors, n_prompts, embedder.info.to_dict()


def _load_sides(image_store: str, audio_store: str) -> dict[str, DeltaStore]:
    stores = {"image": DeltaStore.load(image_store), "audio": DeltaStore.load(audio_store)}
    for modality, store in stores.items():
        if store.modality != modality:
            raise PipelineError(f"{modality} store holds {store.modality!r} deltas")
    img_i, aud_i = ([str(i) for i in s.intensities] for s in stores.values())
    if img_i != aud_i:
        raise PipelineError(f"image intensities {img_i} differ from audio {aud_i}")
    return stores


def _tower_specs(specs, foils, text_bridge) -> tuple[dict, dict]:
    """What each text tower embeds: its own modality's anchors and foils, plus the other
    modality's for its bridge. Foils go through the same templates and contexts as the
    synonyms (``foils_<modality>``), in the same batched call."""
    fspec = {m: phase1.foil_spec(specs[m], foils) for m in MODES}
    image = {"image": specs["image"], "foils_image": fspec["image"]}
    audio = {"audio": specs["audio"], "foils_audio": fspec["audio"]}
    if text_bridge in ("image", "both"):
        image |= {"audio": specs["audio"], "foils_audio": fspec["audio"]}
    if text_bridge in ("audio", "both"):
        audio |= {"image": specs["image"], "foils_image": fspec["image"]}
    return image, audio


def _foil_banks(towers: dict, foils) -> phase1.Foils:
    """The foil banks of every null: sim1 (image tower, image templates), sim2 (audio tower,
    audio templates) and each bridge's (image templates, audio templates) in its tower."""
    bridges = {
        name: tuple(phase1.foil_bank(foils, tower[f"foils_{m}"]) for m in MODES)
        for name, tower in towers.items()
        if "foils_image" in tower and "foils_audio" in tower
    }
    return phase1.Foils(
        image=phase1.foil_bank(foils, towers["image"]["foils_image"]),
        audio=phase1.foil_bank(foils, towers["audio"]["foils_audio"]),
        bridges=bridges,
    )


MODES = ("image", "audio")


def _all_anchors(stores, specs, settings: Phase1Settings, threads: int, foils) -> dict:
    """Every anchor and foil bank in every text tower it is needed in; one model load and one
    batched text call per tower. Image tower: image anchors (sim1) [+ audio for its bridge];
    audio tower: audio anchors (sim2) [+ image for its bridge]."""
    models, batch = settings.models, settings.text_batch_size
    tower_specs = dict(
        zip(MODES, _tower_specs(specs, foils, settings.options.text_bridge), strict=True)
    )
    towers, n_prompts, info = {}, {}, {}
    for m in MODES:
        towers[m], n_prompts[m], info[m] = _embed(m, models[m], threads, tower_specs[m], batch)
        got, want = towers[m][m].vectors.shape[1], stores[m].delta.shape[1]
        if got != want:
            raise PipelineError(
                f"the {m} model's text anchors are {got}-d but the {m} deltas {want}-d: the "
                "deltas were made with another model"
            )
    bridges = {
        t: (towers[t]["image"].synonym_vectors, towers[t]["audio"].synonym_vectors)
        for t in MODES
        if "image" in towers[t] and "audio" in towers[t]
    }
    return {
        "towers": towers,
        "bridges": bridges,
        "foils": _foil_banks(towers, foils),
        "n_prompts": n_prompts,
        "info": info,
    }


def _shared(specs, mode: str) -> tuple[dict[str, list[str]], tuple | None]:
    """Words an image-side and an audio-side synonym share, and the keep-masks without them."""
    words = phase1.shared_words(specs["image"].synonyms, specs["audio"].synonyms)
    if not words:
        return words, None
    keep = tuple(
        list(phase1.without_shared(specs[m].synonyms, words).values()) for m in ("image", "audio")
    )
    log.warning(
        "shared words between image and audio synonyms: %s (phase1.shared_words: %s)",
        ", ".join(sorted(words)),
        mode,
    )
    return words, keep


def _cell_table(res: Mapping[str, Any], img_fx, aud_fx, alpha: float) -> pd.DataFrame:
    """results/discovery.tsv: one row per (image effect, audio effect) cell, every component,
    interval and p-value; columns that do not apply to the run's bridge are left out."""
    chosen = {(c["image_effect"], c["audio_effect"]) for c in res["chosen_pairs"]}
    per_row = ("sim1", "sim1_lo", "sim1_hi", "sim1_raw", "p_sim1", "k_sim1", "p_sim1_label")
    per_col = ("sim2", "sim2_lo", "sim2_hi", "sim2_raw", "p_sim2", "k_sim2", "p_sim2_label")
    cells = ["score", "score_lo", "score_hi", "score_raw", "score_no_shared", "sim3", "sim3_raw"]
    cells += [k for k in res if k.startswith(("sim3_audio", "sim3_image", "z_", "sim3_no_shared"))]
    cells += ["bridge_sign_agreement", "p_sim3", "p_sim3_audio", "p_sim3_image"]
    cells += ["k_sim3_audio", "k_sim3_image", "p", "p_adjusted"]
    cells += [k for k in res if k.endswith("_no_shared") and k.startswith("p")]
    rows = []
    for i, a in enumerate(img_fx):
        for j, b in enumerate(aud_fx):
            rec: dict[str, Any] = {"image_effect": a, "audio_effect": b}
            rec |= {k: res[k][i] for k in per_row if k in res}
            rec |= {k: res[k][j] for k in per_col if k in res}
            rec |= {k: res[k][i, j] for k in dict.fromkeys(cells) if k in res}
            p = res["p_adjusted"][i, j]
            rec["significant"] = bool(np.isfinite(p) and p <= alpha)
            rec["chosen"] = (a, b) in chosen
            rows.append(rec)
    return pd.DataFrame(rows)


def _write_arrays(res, anchors_, matrix_out, components_out, img_fx, aud_fx, intensities):
    with atomic_path(matrix_out, ".npy") as tmp:
        np.save(tmp, res["score"])
    skip = {"chosen_pairs", "counts", "image_anchor", "audio_anchor", "null_model"}
    arrays = {k: np.asarray(v) for k, v in res.items() if k not in skip}
    arrays |= {
        "image_effects": np.asarray(img_fx, dtype=str),
        "audio_effects": np.asarray(aud_fx, dtype=str),
        "intensities": np.asarray(intensities, dtype=str),
        "image_anchor": res["image_anchor"],
        "audio_anchor": res["audio_anchor"],
    }
    towers = anchors_["towers"]
    if "image" in towers["audio"]:
        arrays["image_anchor_audio_tower"] = towers["audio"]["image"].vectors
    if "audio" in towers["image"]:
        arrays["audio_anchor_image_tower"] = towers["image"]["audio"].vectors
    with atomic_path(components_out, ".npz") as tmp:
        np.savez(tmp, **arrays)


def _foil_summary(foils, res, opts) -> dict:
    """What the foil nulls drew from (the package's foil vocabulary, minus every foil sharing
    a content word with a configured synonym, and clusters too small for every list) and K,
    the concepts behind each p-value: the smallest p is 1/(K + 1)."""
    k = [res[f"k_sim{n}"] for n in "12"] + [v for key, v in res.items() if key.startswith("k_sim3")]
    k_min = min((int(np.min(v)) for v in k if np.size(v)), default=0)
    return {
        "vocabulary": f"delta_v2a/{phase1.FOILS_FILE}",
        "source": "WordNet 3.0 adjective clusters (scripts/build_foils.py)",
        "n_words": sum(len(w) for w in foils.values()),
        "n_clusters": len(foils),
        "coherence_band_sd": opts.coherence_band,
        "min_concepts": opts.min_concepts,
        "max_concepts": opts.max_concepts,
        "k_sim1": _jsonable(res["k_sim1"]),
        "k_sim2": _jsonable(res["k_sim2"]),
        "k_min": k_min,
        "smallest_p": 1.0 / (k_min + 1) if k_min else None,
    }


def _health_figures(health_docs) -> dict:
    keys = ("text_mean_pairwise_cosine", "audio_mean_pairwise_cosine", "limit", "passed")
    return {
        d.get("modality", "?"): {k: d.get(k) for k in keys}
        | {"model": d.get("model", {}).get("name_or_path")}
        for d in health_docs
    }


def _sim3_label(opts: phase1.Options) -> str:
    centring = "centred anchors" if opts.center_anchors else "raw (uncentred) anchors"
    if opts.text_bridge == "both":
        return (
            f"sim3 = the smaller of the audio and image text towers' cosines ({centring}): both "
            "towers must agree; its p-value is the larger of the two towers' foil-null "
            "p-values; the towers' sign agreement is reported per cell"
        )
    return f"sim3 = cosine in the {opts.text_bridge} model's text tower ({centring})"


def _labels(res, ctx, opts, words, components_out) -> dict:
    """discovery_labels.json: axes, how each number was made, the p-values and chosen pairs."""
    specs, anchors_, stores = ctx["specs"], ctx["anchors"], ctx["stores"]
    img_fx, aud_fx = ctx["effects"]["image"], ctx["effects"]["audio"]
    meta = merge_model_meta({"modality": m, **s.meta} for m, s in stores.items())
    meta["text_models"] = anchors_["info"]
    best = phase1.best_matches(res["score"], img_fx, aud_fx)
    pairs = {m: anchors_["towers"][m][m].n_pairs for m in MODES}
    protos = {"image": res["image_prototypes"], "audio": res["audio_prototypes"]}
    return {
        "image_effects": img_fx,
        "audio_effects": aud_fx,
        "matrix": "discovery_matrix.npy: rows = image_effects, columns = audio_effects, pooled "
        "over intensities, after clipping",
        "intensities": ctx["intensities"],
        "score": "sim1[i] × sim2[j] × sim3[i, j]"
        + (" with each factor clipped at 0" if opts.clip_negative else " (raw factors)"),
        "sim3_definition": _sim3_label(opts),
        "center_anchors": opts.center_anchors,
        "text_bridge": opts.text_bridge,
        "sim3_reason": phase1.SIM3_REASON,
        "clip_negative": opts.clip_negative,
        "clip_negative_reason": phase1.CLIP_REASON,
        "alpha": opts.alpha,
        "correction": opts.correction,
        "p_value": "max(p_sim1[i], p_sim2[j], p_sim3[i, j]) (intersection-union). Each is "
        "(1 + concepts at least as extreme) / (K + 1) over K foil concepts (one-sided WordNet "
        "adjective clusters), each concept contributing the share of its size- and "
        "coherence-matched foil sets that beat the observed cosine. p_sim1 / p_sim2: foil sets "
        "in the effect's place, centred the same way; p_sim3: foil-set pairs of two different "
        "concepts, the same draws in both towers (both = the larger of the two towers' p). "
        "p_sim1_label / p_sim2_label: the label permutation (effects differ), reported, not "
        "used (docs/methods.md §5)",
        "null_model": res.get("null_model"),
        "n_foil_draws": opts.n_foil_draws,
        "shared_words_mode": opts.shared_words,
        "n_permutations": opts.n_permutations,
        "n_bootstrap": opts.n_bootstrap,
        "ci_level": opts.ci_level,
        "seed": opts.seed,
        "p_adjusted": _jsonable(res["p_adjusted"]),
        "p": _jsonable(res["p"]),
        "chosen_pairs": res["chosen_pairs"],
        "shared_words": words,
        "templates": {m: dict(ctx["templates"][m]) for m in ("image", "audio")},
        "synonyms": {m: {e: list(v) for e, v in specs[m].synonyms.items()} for m in specs},
        "contexts": {
            "image_categories": ctx["contexts"]["image"],
            "audio_genres": ctx["contexts"]["audio"],
        },
        "prompts": {
            "distinct_prompts_embedded": anchors_["n_prompts"],
            "pairs_per_effect": {
                m: dict(zip(specs[m].synonyms, n, strict=True)) for m, n in pairs.items()
            },
        },
        "sim1": dict(zip(img_fx, _jsonable(res["sim1"]), strict=True)),
        "sim2": dict(zip(aud_fx, _jsonable(res["sim2"]), strict=True)),
        "sim3": _jsonable(res["sim3"]),
        "scores": _jsonable(res["score"]),
        "scores_raw": _jsonable(res["score_raw"]),
        "best_matches": best,
        "prototypes": {
            m: {
                "n_deltas": {
                    e: dict(zip(ctx["intensities"], res["counts"][m][:, j].tolist(), strict=True))
                    for j, e in enumerate(ctx["effects"][m])
                },
                # |p| in [0, 1]: 1 when every delta of the effect points the same way
                "pooled_norm": dict(
                    zip(
                        ctx["effects"][m], _jsonable(np.linalg.norm(protos[m], axis=1)), strict=True
                    )
                ),
            }
            for m in ("image", "audio")
        },
        "components_file": components_out,
        "components": COMPONENTS,
        "health": _health_figures(ctx["health_docs"]),
        "meta": meta,
    }


def _figures(res, ctx, opts, paths: Mapping[str, str]) -> None:
    """The marked heatmap (score, interval, adjusted p; chosen pairs boxed), the sim1/sim2/sim3
    panels and the per-intensity small multiples."""
    img_fx, aud_fx = ctx["effects"]["image"], ctx["effects"]["audio"]
    info, meta = ctx["anchors"]["info"], ctx["meta"]
    chosen = np.zeros(res["score"].shape, dtype=bool)
    for c in res["chosen_pairs"]:
        chosen[img_fx.index(c["image_effect"]), aud_fx.index(c["audio_effect"])] = True
    head = (
        f"bridge: {opts.text_bridge}, anchors {'centred' if opts.center_anchors else 'raw'}"
        f"{', negatives clipped at 0' if opts.clip_negative else ''}; {opts.correction} "
        f"p ≤ {opts.alpha:g}: chosen pairs boxed"
    )
    models = f"CLIP: {info['image']['name_or_path']}   CLAP: {info['audio']['name_or_path']}"
    if meta["not_science"] or info["image"].get("tiny") or info["audio"].get("tiny"):
        # the run's own note (tiny random models, or the planted world's stand-ins)
        models += "\n" + (str(meta.get("note") or "not science").split(";")[0])
    plots.discovery_heatmap(
        res["score"],
        img_fx,
        aud_fx,
        paths["heatmap"],
        f"Phase 1 discovery: sim1·sim2·sim3 ({head})\n{models}",
        meta["note"],
        lo=res["score_lo"],
        hi=res["score_hi"],
        p_adjusted=res["p_adjusted"],
        chosen=chosen,
        ci_level=opts.ci_level,
    )
    plots.discovery_components_figure(
        res,
        img_fx,
        aud_fx,
        paths["panels"],
        f"Phase 1 components ({head})\n{models}",
        meta["note"],
        _sim3_label(opts),
        opts.ci_level,
    )
    plots.discovery_intensity_figure(
        res["score_per_intensity"],
        ctx["intensities"],
        img_fx,
        aud_fx,
        paths["intensity"],
        f"Phase 1 per intensity (image level k with audio level k)\n{models}",
        meta["note"],
    )


def _log_result(res, img_fx, aud_fx, opts) -> None:
    """The run's verdict in the log: significant pairs, loudly none."""
    log.info(
        "Phase 1 (bridge %s, %s anchors, %s-adjusted p <= %g):",
        opts.text_bridge,
        "centred" if opts.center_anchors else "raw",
        opts.correction,
        opts.alpha,
    )
    for i, name in enumerate(img_fx):
        j = int(np.nanargmax(res["score"][i])) if np.isfinite(res["score"][i]).any() else None
        if j is None:
            log.info("  %-12s -> no finite score", name)
            continue
        if res["score"][i, j] <= 0:
            log.info("  %-12s -> no positive score (every factor product clipped to 0)", name)
            continue
        log.info(
            "  %-12s best %-12s score %.4g [%.4g, %.4g], p %.3g, adjusted %.3g",
            name,
            aud_fx[j],
            res["score"][i, j],
            res["score_lo"][i, j],
            res["score_hi"][i, j],
            res["p"][i, j],
            res["p_adjusted"][i, j],
        )
    if res["chosen_pairs"]:
        for c in res["chosen_pairs"]:
            log.info(
                "  chosen: %s -> %s (p_adjusted %.3g; %s)",
                c["image_effect"],
                c["audio_effect"],
                c["p_adjusted"],
                c.get("reason", ""),
            )
    else:
        log.warning(
            "!!! Phase 1: NO pair is significant (%s-adjusted p <= %g): Phase 3 has nothing to "
            "learn from this matrix !!!",
            opts.correction,
            opts.alpha,
        )


def run_phase1(*, inputs: Paths, outputs: Paths, settings: Phase1Settings, threads: int) -> None:
    """Phase 1 end to end: anchors, the matrix, its foil nulls, the chosen pairs (and their
    stability over seeds) and figures (docs/methods.md §5)."""
    opts = settings.options
    # Health first: anchors from a collapsed text tower are noise (docs/methods.md §1).
    health_docs = gate_health(inputs.health, settings.allow_unhealthy, "text")
    stores = _load_sides(inputs.image, inputs.audio)
    held_in = {"image": None, "audio": _choice_files(stores["audio"], inputs.split)}
    sides = {m: _side(s, held_in[m]) for m, s in stores.items()}
    log.info(
        "choosing on %d of %d audio files (Phase 3's train + val; its test files are held out)",
        sides["audio"].n_files,
        len(stores["audio"].files),
    )
    effects = {m: sides[m].effects for m in sides}
    contexts = {m: sorted({str(c) for c in s.file_category}) for m, s in stores.items()}
    specs = {
        m: _spec(m, effects[m], contexts[m], settings.templates, settings.synonyms) for m in sides
    }
    every_synonym = [w for m in MODES for ws in specs[m].synonyms.values() for w in ws]
    smallest = min(len(ws) for m in MODES for ws in specs[m].synonyms.values())
    if opts.shared_words == "drop":  # lists lose their shared words before the draws
        words = phase1.shared_words(specs["image"].synonyms, specs["audio"].synonyms)
        kept = [phase1.without_shared(specs[m].synonyms, words) for m in MODES]
        smallest = max(1, min(sum(k) for km in kept for k in km.values()))
    # Only clusters that can hold a size-matched set are embedded (the rest are never drawn).
    foils = phase1.load_foils(every_synonym, smallest, opts.max_concepts)
    anchors_ = _all_anchors(stores, specs, settings, threads, foils)
    words, keep = _shared(specs, opts.shared_words)
    towers = anchors_["towers"]
    inp = phase1.Inputs(
        sides["image"],
        sides["audio"],
        towers["image"]["image"].synonym_vectors,
        towers["audio"]["audio"].synonym_vectors,
        anchors_["bridges"],
        keep,
        anchors_["foils"],
    )
    res = phase1.discover(inp, opts)
    stability = phase1.seed_stability(inp, opts, n_seeds=settings.stability_seeds)
    templates = settings.templates
    meta = merge_model_meta({"modality": m, **s.meta} for m, s in stores.items())
    ctx = {
        "specs": specs,
        "anchors": anchors_,
        "stores": stores,
        "effects": effects,
        "contexts": contexts,
        "intensities": sides["image"].intensities,
        "templates": templates,
        "health_docs": health_docs,
        "meta": meta,
    }
    _write_arrays(
        res,
        anchors_,
        outputs.matrix,
        outputs.components,
        effects["image"],
        effects["audio"],
        ctx["intensities"],
    )
    labels = _labels(res, ctx, opts, words, outputs.components)
    labels |= {"stability": stability, "foils": _foil_summary(foils, res, opts)}
    labels["audio_files"] = {
        "chosen_on": "Phase 3's train + validation files (results/split.json); test held out",
        "n_used": int(sides["audio"].n_files),
        "n_held_out": int(len(stores["audio"].files) - sides["audio"].n_files),
    }
    DiscoveryLabels.build(labels).write(outputs.labels)
    table = _cell_table(res, effects["image"], effects["audio"], opts.alpha)
    with atomic_path(outputs.table, ".tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    figures = {k: outputs[k] for k in ("heatmap", "panels", "intensity")}
    _figures(res, ctx, opts, figures)
    _log_result(res, effects["image"], effects["audio"], opts)
    if meta["not_science"]:
        log.warning(meta["note"])
