"""Rule ``phase3_dataset``: the pairs chosen from Phase 1's discovery matrix, the split by
file, the sample list and the CLAP text embedding of every description, held-out
paraphrases and apply's control descriptions included (docs/methods.md §6.1, §6.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.extract import read_manifest
from delta_v2a.jobs.common import Paths, gate_health, load_embedder_for_job, log
from delta_v2a.phase3.calibrate import gate_texts, template_roles
from delta_v2a.phase3.dataset import (
    SPLITS,
    build_samples,
    choose_pairs,
    no_pairs_message,
    pair_significance,
)
from delta_v2a.phase3.paramspace import ParamSpace, audio_space_from_config
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import DatasetSettings, PairRule
from delta_v2a.split import read_split
from delta_v2a.storage import NAMES, atomic_path, save_npz, write_json


def _save_texts(path: str, texts: Sequence[str], emb: np.ndarray, meta: Mapping) -> None:
    save_npz(
        path,
        {"texts": np.asarray(list(texts), dtype=str), "embeddings": emb.astype(np.float32)},
        meta,
    )


def _pick_pairs(
    matrix: str, lab: DiscoveryLabels, rule: PairRule
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of :func:`choose_pairs` and what significance they used (section 6.1).

    Phase 1's ``chosen_pairs`` are the one decision of significance; ``require_significant:
    false`` (phase3.require_significant_pairs) chooses on score alone so that Phase 3 can be
    exercised where Phase 1 found nothing (the tiny demo models); each row keeps its p-value
    and every output says the pairs are not evidence."""
    rows = choose_pairs(
        np.load(matrix, allow_pickle=False),
        lab.image_effects,
        lab.audio_effects,
        rule.threshold,
        lab.chosen_pairs if rule.require_significant else None,
    )
    significance = pair_significance(
        rows, lab.audio_effects, lab.p_adjusted, lab.alpha, rule.require_significant
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
                rule.threshold,
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


def _validation_templates(templates: Sequence[str], st: DatasetSettings) -> list[str]:
    """The templates that only calibrate apply's gate (neither trained on nor test)."""
    roles = template_roles(len(templates), st.heldout_templates, st.validation_templates)
    return [t for t, role in zip(templates, roles, strict=True) if role == "val"]


def run_dataset(*, inputs: Paths, outputs: Paths, settings: DatasetSettings, threads: int) -> None:
    """Choose the pairs, split the files, draw the sample list, embed each distinct
    description (trained and held-out templates) once."""
    st = settings
    pairs_out, samples_out, texts_out = outputs.pairs, outputs.samples, outputs.texts
    labels = DiscoveryLabels.read(inputs.labels)
    rows, significance = _pick_pairs(inputs.matrix, labels, st.pairs)
    chosen = [r for r in rows if r["chosen"]]
    templates = {k: list(v) for k, v in st.descriptions.items()}
    doc = _pairs_doc(st.pairs.threshold, significance, rows, st.level_words, st.seed)
    if not chosen:
        _write_no_pairs(doc, rows, pairs_out, samples_out, texts_out)
        return
    gate_health(inputs.health, st.allow_unhealthy, "text")
    files = read_manifest(inputs.manifest)
    split = read_split(inputs.split)
    samples = build_samples(
        [f.path for f in files],
        [f.category for f in files],
        chosen,
        levels_per_pair=st.levels_per_pair,
        level_words=st.level_words,
        templates=templates,
        heldout_templates=st.heldout_templates,
        validation_templates=st.validation_templates,
        split=split.of([f.path for f in files], inputs.split),
        seed=st.seed,
    )
    embedder = load_embedder_for_job(st.model, threads)
    selected = {r["audio_effect"] for r in chosen}
    order = [e for e in st.audio_effects if e in selected]
    effects_config = {"intensities": list(st.intensities), "effects": {"audio": st.audio_effects}}
    space = audio_space_from_config(effects_config, order, embedder.sampling_rate, st.bypass_below)
    used = {r["image_effect"] for r in chosen}
    # apply's gate (docs/methods.md §6.7): references of the effects not trained on, validation
    # and test paraphrases, near misses and unrelated controls, embedded with the rest
    gate = gate_texts(
        templates, sorted(used), st.level_words, st.heldout_templates, st.validation_templates
    )
    texts = list(dict.fromkeys([*samples["description"], *(g["text"] for g in gate)]))
    text_emb = embedder.embed_texts(texts)
    meta = merge_model_meta([{"modality": "audio", "model": embedder.info.to_dict()}])
    by_split = {name: sorted(set(samples.loc[samples["split"] == name, "path"])) for name in SPLITS}
    doc.update(
        status="ok",
        message=f"{len(chosen)} pair(s) chosen",
        meta=meta,
        templates={e: templates[e] for e in used},
        heldout_templates={
            e: templates[e][len(templates[e]) - st.heldout_templates :] for e in used
        },
        validation_templates={e: _validation_templates(templates[e], st) for e in used},
        gate_texts=gate,
        texts=texts,
        paramspace=space.to_dict(),
        split={"fractions": split.fractions, **{f"{k}_files": v for k, v in by_split.items()}},
        levels_per_pair=st.levels_per_pair,
    )
    with atomic_path(samples_out) as tmp:
        samples.to_csv(tmp, sep="\t", index=False, errors=NAMES)
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
