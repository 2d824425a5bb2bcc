"""Rule ``phase3_dataset``: the pairs chosen from Phase 1's discovery matrix, the split by
file, the sample list and the CLAP text embedding of every description, held-out
paraphrases and apply's control descriptions included (docs/methods.md §6.1, §6.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.extract import read_manifest
from delta_v2a.jobs.common import gate_health, load_embedder_for_job, log
from delta_v2a.phase3.dataset import (
    CONTROL_DESCRIPTIONS,
    SPLITS,
    build_samples,
    choose_pairs,
    no_pairs_message,
    pair_significance,
)
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config
from delta_v2a.provenance import merge_model_meta
from delta_v2a.storage import atomic_path, read_json, save_npz, write_json


def _save_texts(path: str, texts: Sequence[str], emb: np.ndarray, meta: Mapping) -> None:
    save_npz(
        path,
        {"texts": np.asarray(list(texts), dtype=str), "embeddings": emb.astype(np.float32)},
        meta,
    )


def _pick_pairs(
    matrix: str,
    lab: Mapping[str, Any],
    threshold: float,
    alpha: float,
    require_significant: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of :func:`choose_pairs` and what significance they used (section 6.1).

    ``require_significant=False`` (phase3.require_significant_pairs) chooses on score alone so
    that Phase 3 can be exercised where Phase 1 found nothing (the tiny demo models); each
    row keeps its p-value and every output says the pairs are not evidence."""
    p_adj = lab.get("p_adjusted")
    rows = choose_pairs(
        np.load(matrix, allow_pickle=False),
        list(lab["image_effects"]),
        list(lab["audio_effects"]),
        threshold,
        p_adjusted=p_adj if require_significant else None,
        alpha=alpha,
    )
    significance = pair_significance(
        rows, list(lab["audio_effects"]), p_adj, alpha, require_significant
    )
    if not significance.get("required", False):
        log.warning("%s", significance["note"])
    for r in rows:
        if r["chosen"]:
            log.info(
                "PAIR: %s -> %s (score %.4g > threshold %g, p_adjusted %s)",
                r["image_effect"],
                r["audio_effect"],
                r["score"],
                threshold,
                r["p_adjusted"],
            )
        else:
            log.info("no pair for %s: %s", r["image_effect"], r["reason"])
    return rows, significance


def _write_no_pairs(
    doc: dict[str, Any], rows: Sequence[Mapping], pairs_out: str, samples_out: str, texts_out: str
) -> None:
    message = no_pairs_message(doc["threshold"], doc["significance"], rows)
    log.warning("%s", message)
    doc.update(status="no_pairs", message=message, meta=merge_model_meta([]))
    write_json(pairs_out, doc)
    with atomic_path(samples_out) as tmp:
        pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
    _save_texts(texts_out, [], np.zeros((0, 0), np.float32), {"status": "no_pairs"})


def _pairs_doc(
    threshold: float,
    significance: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    level_words: Sequence[str],
    seed: int,
) -> dict[str, Any]:
    """pairs.json's head: the choice and what it rests on (the data set is added after)."""
    keep = ("image_effect", "audio_effect", "score", "p_adjusted")
    return {
        "threshold": threshold,
        "significance": dict(significance),
        "rows": list(rows),
        "chosen": [{k: r[k] for k in keep} for r in rows if r["chosen"]],
        "level_words": list(level_words),
        "seed": seed,
    }


def run_dataset(
    *,
    matrix: str,
    labels: str,
    manifest: str,
    health: Sequence[str],
    allow_unhealthy: bool,
    model: Mapping[str, Any],
    effects_config: Mapping[str, Any],
    threshold: float,
    alpha: float,
    require_significant: bool = True,
    level_words: Sequence[str],
    descriptions: Mapping[str, Sequence[str]],
    heldout_templates: int,
    levels_per_pair: int,
    split: Mapping[str, float],
    bypass_below: float,
    seed: int,
    pairs_out: str,
    samples_out: str,
    texts_out: str,
    threads: int = 1,
) -> None:
    """Choose the pairs, split the files, draw the sample list, embed each distinct
    description (trained and held-out templates) once."""
    rows, significance = _pick_pairs(
        matrix, read_json(labels), threshold, alpha, require_significant
    )
    chosen = [r for r in rows if r["chosen"]]
    templates = {k: [v] if isinstance(v, str) else list(v) for k, v in descriptions.items()}
    doc = _pairs_doc(threshold, significance, rows, level_words, seed)
    if not chosen:
        _write_no_pairs(doc, rows, pairs_out, samples_out, texts_out)
        return
    gate_health(health, allow_unhealthy, "text")
    files = read_manifest(manifest)
    samples = build_samples(
        [f.path for f in files],
        [f.category for f in files],
        chosen,
        levels_per_pair=levels_per_pair,
        level_words=level_words,
        templates=templates,
        heldout_templates=heldout_templates,
        fractions=split,
        seed=seed,
    )
    embedder = load_embedder_for_job("audio", model, threads)
    selected = {r["audio_effect"] for r in chosen}
    order = [e for e in effects_config["effects"]["audio"] if e in selected]
    space = audio_space_from_config(effects_config, order, embedder.sampling_rate, bypass_below)
    texts = list(dict.fromkeys(samples["description"]))
    texts += [c for c in CONTROL_DESCRIPTIONS if c not in texts]  # apply's refusal floor
    text_emb = embedder.embed_texts(texts)
    meta = merge_model_meta([{"modality": "audio", "model": embedder.info.to_dict()}])
    by_split = {name: sorted(set(samples.loc[samples["split"] == name, "path"])) for name in SPLITS}
    used = {r["image_effect"] for r in chosen}
    doc.update(
        status="ok",
        message=f"{len(chosen)} pair(s) chosen",
        meta=meta,
        templates={e: templates[e] for e in used},
        heldout_templates={e: templates[e][len(templates[e]) - heldout_templates :] for e in used},
        texts=texts,
        paramspace=space.to_dict(),
        split={"fractions": dict(split), **{f"{k}_files": v for k, v in by_split.items()}},
        levels_per_pair=levels_per_pair,
    )
    with atomic_path(samples_out) as tmp:
        samples.to_csv(tmp, sep="\t", index=False)
    _save_texts(texts_out, texts, text_emb, {"model": embedder.info.to_dict()})
    write_json(pairs_out, doc)
    _log_dataset(samples, len(files), by_split, len(texts), space)


def _log_dataset(
    samples: pd.DataFrame,
    n_files: int,
    by_split: Mapping[str, Sequence[str]],
    n_texts: int,
    space: ParamSpace,
) -> None:
    log.info(
        "%d samples over %d files (train %d / val %d / test %d files; %d held-out paraphrase "
        "samples on test), %d descriptions, parameter space %s",
        len(samples),
        n_files,
        *(len(by_split[k]) for k in SPLITS),
        int(samples["held_out"].sum()),
        n_texts,
        space.names,
    )
