"""Rule ``phase3_dataset``: the pairs chosen from Phase 1's discovery matrix, the split by
file, the sample list and the CLAP text embedding of every description, held-out
paraphrases and apply's control descriptions included (docs/methods.md §6.1, §6.3). What
``pairs.json`` holds is made by :mod:`delta_v2a.phase3.pairs`; this job reads, calls, writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.pairs import Pairs
from delta_v2a.extract import read_manifest
from delta_v2a.jobs.common import Paths, gate_health, load_embedder_for_job, log
from delta_v2a.phase3.dataset import SPLITS, build_samples
from delta_v2a.phase3.pairs import (
    Descriptions,
    PairChoice,
    dataset_pairs,
    distinct_texts,
    files_by_split,
    gate_for,
    no_pairs,
    pair_space,
    pick_pairs,
)
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import DatasetSettings
from delta_v2a.split import read_split
from delta_v2a.storage import NAMES, atomic_path, save_npz


def _save_texts(path: str, texts: Sequence[str], emb: np.ndarray, meta: Mapping) -> None:
    save_npz(
        path,
        {"texts": np.asarray(list(texts), dtype=str), "embeddings": emb.astype(np.float32)},
        meta,
    )


def _log_choice(choice: PairChoice) -> None:
    """Each image effect's pair or why it has none; loudly when significance was not used."""
    if not choice.significance.required:
        log.warning("%s", choice.significance.note)
    for r in choice.rows:
        if r.chosen:
            log.info(
                "PAIR: %s -> %s (score %.4g > threshold %g, p_adjusted %s)",
                r.image_effect,
                r.audio_effect,
                r.score,
                choice.threshold,
                r.p_adjusted,
            )
        else:
            log.info("no pair for %s: %s", r.image_effect, r.reason)


def _write_no_pairs(pairs: Pairs, outputs: Paths) -> None:
    """No pair: every declared output, each saying so."""
    log.warning("%s", pairs.message)
    pairs.write(outputs.pairs)
    with atomic_path(outputs.samples) as tmp:
        pd.DataFrame(columns=["sample"]).to_csv(tmp, sep="\t", index=False)
    _save_texts(outputs.texts, [], np.zeros((0, 0), np.float32), {"status": "no_pairs"})


def _samples(inputs: Paths, choice: PairChoice, st: DatasetSettings) -> tuple[pd.DataFrame, dict]:
    """The sample list over the manifest's files, and the split's fractions."""
    files = read_manifest(inputs.manifest)
    split = read_split(inputs.split)
    paths = [f.path for f in files]
    samples = build_samples(
        paths,
        [f.category for f in files],
        [dataclasses.asdict(c) for c in choice.chosen],
        levels_per_pair=st.levels_per_pair,
        level_words=st.level_words,
        templates={k: list(v) for k, v in st.descriptions.items()},
        heldout_templates=st.heldout_templates,
        validation_templates=st.validation_templates,
        split=split.of(paths, inputs.split),
        seed=st.seed,
    )
    return samples, split.fractions


def run_dataset(*, inputs: Paths, outputs: Paths, settings: DatasetSettings, threads: int) -> None:
    """Choose the pairs, split the files, draw the sample list, embed each distinct
    description (trained and held-out templates, apply's gate texts) once."""
    st = settings
    labels = DiscoveryLabels.read(inputs.labels)
    matrix = np.load(inputs.matrix, allow_pickle=False)
    choice = pick_pairs(matrix, labels, st.pairs.threshold, st.pairs.require_significant)
    _log_choice(choice)
    if not choice.chosen:
        meta = merge_model_meta([])
        _write_no_pairs(no_pairs(choice, st.level_words, st.seed, meta), outputs)
        return
    gate_health(inputs.health, st.allow_unhealthy, "text")
    samples, fractions = _samples(inputs, choice, st)
    desc = Descriptions(
        st.descriptions, st.heldout_templates, st.validation_templates, st.level_words
    )
    gate = gate_for(choice.chosen, desc)
    texts = distinct_texts(samples, gate)
    embedder = load_embedder_for_job(st.model, threads)
    space = pair_space(
        choice.chosen, st.audio_effects, st.intensities, embedder.sampling_rate, st.bypass_below
    )
    text_emb = embedder.embed_texts(texts)
    meta = merge_model_meta([{"modality": "audio", "model": embedder.info.to_dict()}])
    pairs = dataset_pairs(
        choice,
        desc,
        st.seed,
        meta,
        samples=samples,
        gate=gate,
        texts=texts,
        space=space,
        fractions=fractions,
        levels_per_pair=st.levels_per_pair,
    )
    with atomic_path(outputs.samples) as tmp:
        samples.to_csv(tmp, sep="\t", index=False, errors=NAMES)
    _save_texts(outputs.texts, texts, text_emb, {"model": embedder.info.to_dict()})
    pairs.write(outputs.pairs)
    _log_dataset(samples, len(texts), space)


def _log_dataset(samples: pd.DataFrame, n_texts: int, space: ParamSpace) -> None:
    by_split = files_by_split(samples)
    log.info(
        "%d samples over %d files (train %d / val %d / test %d files; %d held-out paraphrase "
        "samples on test), %d descriptions, parameter space %s",
        len(samples),
        samples["path"].nunique(),
        *(len(by_split[k]) for k in SPLITS),
        int(samples["held_out"].sum()),
        n_texts,
        space.names,
    )
