"""Phase 1 job: prototypes vs text anchors -> the discovery matrix with intervals, p-values,
the chosen pairs, its table and figures (docs/methods.md §5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a import phase1, plots
from delta_v2a.config import ANCHOR_CONTEXT, MODALITIES
from delta_v2a.jobs.common import Paths, PipelineError, gate_health, load_embedder_for_job, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import ModelSpec, Phase1Settings
from delta_v2a.split import read_split
from delta_v2a.storage import DeltaStore, atomic_path


@dataclass(frozen=True)
class TextAnchors:
    """Every text tower's anchors (``towers[tower][modality]``), the bridges' synonym vectors,
    the foil banks, and per tower the distinct prompts embedded and the model's info."""

    towers: dict[str, dict[str, phase1.Anchors]]
    bridges: dict[str, tuple]
    foils: phase1.Foils
    n_prompts: dict[str, int]
    info: dict[str, dict[str, Any]]


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
    fspec = {m: phase1.foil_spec(specs[m], foils) for m in MODALITIES}
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
        name: tuple(phase1.foil_bank(foils, tower[f"foils_{m}"]) for m in MODALITIES)
        for name, tower in towers.items()
        if "foils_image" in tower and "foils_audio" in tower
    }
    return phase1.Foils(
        image=phase1.foil_bank(foils, towers["image"]["foils_image"]),
        audio=phase1.foil_bank(foils, towers["audio"]["foils_audio"]),
        bridges=bridges,
    )


def _all_anchors(stores, specs, settings: Phase1Settings, threads: int, foils) -> TextAnchors:
    """Every anchor and foil bank in every text tower it is needed in; one model load and one
    batched text call per tower. Image tower: image anchors (sim1) [+ audio for its bridge];
    audio tower: audio anchors (sim2) [+ image for its bridge]."""
    models, batch = settings.models, settings.text_batch_size
    tower_specs = dict(
        zip(MODALITIES, _tower_specs(specs, foils, settings.options.text_bridge), strict=True)
    )
    towers, n_prompts, info = {}, {}, {}
    for m in MODALITIES:
        towers[m], n_prompts[m], info[m] = _embed(m, models[m], threads, tower_specs[m], batch)
        got, want = towers[m][m].vectors.shape[1], stores[m].delta.shape[1]
        if got != want:
            raise PipelineError(
                f"the {m} model's text anchors are {got}-d but the {m} deltas {want}-d: the "
                "deltas were made with another model"
            )
    bridges = {
        t: (towers[t]["image"].synonym_vectors, towers[t]["audio"].synonym_vectors)
        for t in MODALITIES
        if "image" in towers[t] and "audio" in towers[t]
    }
    return TextAnchors(towers, bridges, _foil_banks(towers, foils), n_prompts, info)


def _shared(specs, mode: str) -> tuple[dict[str, list[str]], tuple | None]:
    """Words an image-side and an audio-side synonym share, and the keep-masks without them."""
    words = phase1.shared_words(specs["image"].synonyms, specs["audio"].synonyms)
    if not words:
        return words, None
    keep = tuple(list(phase1.without_shared(specs[m].synonyms, words).values()) for m in MODALITIES)
    log.warning(
        "shared words between image and audio synonyms: %s (phase1.shared_words: %s)",
        ", ".join(sorted(words)),
        mode,
    )
    return words, keep


def _write_arrays(
    res, anchors_: TextAnchors, matrix_out, components_out, img_fx, aud_fx, intensities
):
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
    towers = anchors_.towers
    if "image" in towers["audio"]:
        arrays["image_anchor_audio_tower"] = towers["audio"]["image"].vectors
    if "audio" in towers["image"]:
        arrays["audio_anchor_image_tower"] = towers["image"]["audio"].vectors
    with atomic_path(components_out, ".npz") as tmp:
        np.savez(tmp, **arrays)


def _chosen_mask(res, img_fx, aud_fx) -> np.ndarray:
    chosen = np.zeros(res["score"].shape, dtype=bool)
    for c in res["chosen_pairs"]:
        chosen[img_fx.index(c["image_effect"]), aud_fx.index(c["audio_effect"])] = True
    return chosen


def _figure_titles(run: phase1.RunRecord, opts: phase1.Options) -> tuple[str, str]:
    """The run's choices (bridge, centring, clipping, test) and its models, for every title."""
    info, meta = run.text_models, run.meta
    head = (
        f"bridge: {opts.text_bridge}, anchors {'centred' if opts.center_anchors else 'raw'}"
        f"{', negatives clipped at 0' if opts.clip_negative else ''}; {opts.correction} "
        f"p ≤ {opts.alpha:g}: chosen pairs boxed"
    )
    models = f"CLIP: {info['image']['name_or_path']}   CLAP: {info['audio']['name_or_path']}"
    if meta["not_science"] or info["image"].get("tiny") or info["audio"].get("tiny"):
        # the run's own note (tiny random models, or the planted world's stand-ins)
        models += "\n" + (str(meta.get("note") or "not science").split(";")[0])
    return head, models


def _figures(res, run: phase1.RunRecord, opts: phase1.Options, paths: Mapping[str, str]) -> None:
    """The marked heatmap (score, interval, adjusted p; chosen pairs boxed), the sim1/sim2/sim3
    panels and the per-intensity small multiples."""
    img_fx, aud_fx = list(run.effects["image"]), list(run.effects["audio"])
    head, models = _figure_titles(run, opts)
    note = run.meta["note"]
    plots.discovery_heatmap(
        res["score"],
        img_fx,
        aud_fx,
        paths["heatmap"],
        f"Phase 1 discovery: sim1·sim2·sim3 ({head})\n{models}",
        note,
        lo=res["score_lo"],
        hi=res["score_hi"],
        p_adjusted=res["p_adjusted"],
        chosen=_chosen_mask(res, img_fx, aud_fx),
        ci_level=opts.ci_level,
    )
    plots.discovery_components_figure(
        res,
        img_fx,
        aud_fx,
        paths["panels"],
        f"Phase 1 components ({head})\n{models}",
        note,
        phase1.sim3_label(opts),
        opts.ci_level,
    )
    plots.discovery_intensity_figure(
        res["score_per_intensity"],
        run.intensities,
        img_fx,
        aud_fx,
        paths["intensity"],
        f"Phase 1 per intensity (image level k with audio level k)\n{models}",
        note,
    )


def _log_best(res, i: int, name: str, aud_fx) -> None:
    """One image effect's best audio effect, its interval and p-values."""
    j = int(np.nanargmax(res["score"][i])) if np.isfinite(res["score"][i]).any() else None
    if j is None:
        log.info("  %-12s -> no finite score", name)
        return
    if res["score"][i, j] <= 0:
        log.info("  %-12s -> no positive score (every factor product clipped to 0)", name)
        return
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
        _log_best(res, i, name, aud_fx)
    for c in res["chosen_pairs"]:
        log.info(
            "  chosen: %s -> %s (p_adjusted %.3g; %s)",
            c["image_effect"],
            c["audio_effect"],
            c["p_adjusted"],
            c.get("reason", ""),
        )
    if not res["chosen_pairs"]:
        log.warning(
            "!!! Phase 1: NO pair is significant (%s-adjusted p <= %g): Phase 3 has nothing to "
            "learn from this matrix !!!",
            opts.correction,
            opts.alpha,
        )


def _read_sides(inputs: Paths, settings: Phase1Settings):
    """Health first (anchors from a collapsed text tower are noise, docs/methods.md §1), then
    both delta stores and the sides Phase 1 chooses on (audio: Phase 3's train + val)."""
    health_docs = gate_health(inputs.health, settings.allow_unhealthy, "text")
    stores = _load_sides(inputs.image, inputs.audio)
    held_in = {"image": None, "audio": _choice_files(stores["audio"], inputs.split)}
    sides = {m: _side(s, held_in[m]) for m, s in stores.items()}
    log.info(
        "choosing on %d of %d audio files (Phase 3's train + val; its test files are held out)",
        sides["audio"].n_files,
        len(stores["audio"].files),
    )
    return health_docs, stores, sides


def _foil_vocabulary(specs, opts: phase1.Options) -> dict:
    """The foil clusters the nulls draw from: only those that can hold a size-matched set are
    embedded (the rest are never drawn); with ``shared_words: drop`` the lists lose their
    shared words before the draws."""
    every_synonym = [w for m in MODALITIES for ws in specs[m].synonyms.values() for w in ws]
    smallest = min(len(ws) for m in MODALITIES for ws in specs[m].synonyms.values())
    if opts.shared_words == "drop":
        words = phase1.shared_words(specs["image"].synonyms, specs["audio"].synonyms)
        kept = [phase1.without_shared(specs[m].synonyms, words) for m in MODALITIES]
        smallest = max(1, min(sum(k) for km in kept for k in km.values()))
    return phase1.load_foils(every_synonym, smallest, opts.max_concepts)


def _run_record(stores, sides, specs, contexts, anchors_, settings, health_docs, components):
    """What the labels and figures say about the run besides the result."""
    return phase1.RunRecord(
        effects={m: sides[m].effects for m in sides},
        intensities=sides["image"].intensities,
        templates=settings.templates,
        synonyms={m: specs[m].synonyms for m in specs},
        contexts=contexts,
        n_prompts=anchors_.n_prompts,
        n_pairs={m: anchors_.towers[m][m].n_pairs for m in MODALITIES},
        text_models=anchors_.info,
        health_docs=health_docs,
        meta=merge_model_meta({"modality": m, **s.meta} for m, s in stores.items()),
        components_file=components,
        n_audio_used=int(sides["audio"].n_files),
        n_audio_held_out=int(len(stores["audio"].files) - sides["audio"].n_files),
    )


def _write_table(res, run: phase1.RunRecord, alpha: float, path: str) -> None:
    rows = phase1.cell_rows(res, run.effects["image"], run.effects["audio"], alpha)
    table = pd.DataFrame(rows)
    with atomic_path(path, ".tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def run_phase1(*, inputs: Paths, outputs: Paths, settings: Phase1Settings, threads: int) -> None:
    """Phase 1 end to end: anchors, the matrix, its foil nulls, the chosen pairs (and their
    stability over seeds) and figures (docs/methods.md §5)."""
    opts = settings.options
    health_docs, stores, sides = _read_sides(inputs, settings)
    contexts = {m: sorted({str(c) for c in s.file_category}) for m, s in stores.items()}
    specs = {
        m: _spec(m, sides[m].effects, contexts[m], settings.templates, settings.synonyms)
        for m in sides
    }
    foils = _foil_vocabulary(specs, opts)
    anchors_ = _all_anchors(stores, specs, settings, threads, foils)
    words, keep = _shared(specs, opts.shared_words)
    image_syn, audio_syn = (anchors_.towers[m][m].synonym_vectors for m in MODALITIES)
    inp = phase1.Inputs(
        sides["image"], sides["audio"], image_syn, audio_syn, anchors_.bridges, keep, anchors_.foils
    )
    res = phase1.discover(inp, opts)
    stability = phase1.seed_stability(inp, opts, n_seeds=settings.stability_seeds)
    run = _run_record(
        stores, sides, specs, contexts, anchors_, settings, health_docs, outputs.components
    )
    img_fx, aud_fx = run.effects["image"], run.effects["audio"]
    _write_arrays(
        res, anchors_, outputs.matrix, outputs.components, img_fx, aud_fx, run.intensities
    )
    labels = phase1.discovery_labels(res, run, opts, words, stability, foils)
    labels.write(outputs.labels)
    _write_table(res, run, opts.alpha, outputs.table)
    _figures(res, run, opts, {k: outputs[k] for k in ("heatmap", "panels", "intensity")})
    _log_result(res, img_fx, aud_fx, opts)
    if run.meta["not_science"]:
        log.warning(run.meta["note"])
