"""Extraction jobs: vet files, embed originals and variants, gather deltas, health check."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.cache import fill, variant_key
from delta_v2a.extract import (
    Decoding,
    degenerate_rows,
    embed_variant,
    gather,
    read_manifest,
    vet,
    write_manifest,
    write_skipped,
)
from delta_v2a.inventory import inventory_digest, read_inventory
from delta_v2a.jobs.common import (
    Paths,
    PipelineError,
    Progress,
    job_batch_size,
    load_embedder_for_job,
    log,
    prefer_item_parallelism,
)
from delta_v2a.media import FileChangedError, discover
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import DeltasSettings, EmbedSettings, HealthSettings, ManifestSettings
from delta_v2a.storage import EmbeddingTable, atomic_path, write_deltas_json, write_json


def default_decoding(modality: str, preroll_s: float) -> Decoding:
    """Decoding used to vet files before a model is loaded (CLIP 224 px, CLAP 48 kHz × 10 s)."""
    return Decoding(modality=modality, preroll=int(round(preroll_s * 48_000)))


def run_manifest(
    *, inputs: Paths, outputs: Paths, settings: ManifestSettings, threads: int
) -> None:
    """Vet every file once, decoding what every later phase reads.

    ``settings.lead_s``: the longest lead-in before the centred window any later phase reads
    (Phase 3's window sequence); audio is vetted over ``max(preroll_s, lead_s)`` before the
    window, so NaN samples there are found here, not in a later job.
    """
    modality, root, key = settings.modality, settings.root, settings.key
    preroll_s, lead_s = settings.preroll_s, settings.lead_s
    if not Path(root).is_dir():
        raise PipelineError(f"{key}: data root '{root}' does not exist or is not a folder")
    try:
        files = discover(root, modality)
    except OSError as err:
        raise PipelineError(f"{key}: {err.strerror or err}") from err
    expected = _inventory_for(inputs.inventory, outputs.manifest, files)
    try:
        good, hashes, bad = vet(
            files, default_decoding(modality, max(preroll_s, lead_s)), workers=threads
        )
    except FileChangedError as err:
        raise PipelineError(str(err)) from err
    changed = [f.shown for f, h in zip(good, hashes, strict=True) if expected[f.shown] != h]
    if changed:
        raise PipelineError(f"{changed[0]}: {_CHANGED}")
    for f, reason in bad:
        log.warning("bad %s file %s: %s", modality, f.shown, reason)
    if bad and settings.on_bad_file == "error":
        listing = "\n".join(f"  {f.shown}: {reason}" for f, reason in bad)
        raise PipelineError(
            f"{len(bad)} unusable {modality} file(s) under {key} '{root}' (on_bad_file: error; "
            f"set on_bad_file: skip to leave them out and list them in "
            f"results/skipped_files.tsv):\n{listing}"
        )
    if not good:
        raise PipelineError(
            f"{key} '{root}': no usable {modality} files (expected {root}/<category>/**/*"
            f"{'.{jpg,jpeg,png}' if modality == 'image' else '.{wav,mp3,flac}'}; "
            f"{len(bad)} bad file(s) skipped)"
        )
    per_cat = pd.Series([f.category for f in good]).value_counts().sort_index()
    log.info(
        "%d usable %s files in %d categories: %s",
        len(good),
        modality,
        len(per_cat),
        per_cat.to_dict(),
    )
    write_skipped(outputs.skipped, bad)
    write_manifest(outputs.manifest, good, hashes)


_CHANGED = "the data changed after the workflow was parsed; run snakemake again"


def _inventory_for(inventory: str, vetted: str, files: list) -> dict[str, str]:
    """{path: sha256} of the data state this job vets, checked against the files found now.

    Why: the output is named by the inventory's digest (docs/methods.md §2.1), so what it holds
    must be exactly that state; a file added, removed or rewritten since the parse stops here.
    """
    text = Path(inventory).read_text(encoding="utf-8")
    digest = Path(vetted).name.split(".")[1]
    if inventory_digest(text) != digest:
        raise PipelineError(f"{inventory}: {_CHANGED}")
    expected = read_inventory(inventory)
    if set(expected) != {f.shown for f in files}:
        extra = sorted(set(expected) ^ {f.shown for f in files})
        raise PipelineError(f"{extra[0]}: {_CHANGED}")
    return expected


def run_manifest_current(*, inputs: Paths, outputs: Paths) -> None:
    """Make the vetted manifest of the current data state the one every later job reads, and
    drop the vetted manifests of earlier states (a return to one vets it again)."""
    keep = {Path(inputs.manifest).resolve(), Path(inputs.skipped).resolve()}
    for src, dst in ((inputs.manifest, outputs.manifest), (inputs.skipped, outputs.skipped)):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    modality = Path(outputs.manifest).stem
    vetted = Path(inputs.manifest).parent
    old = [p for p in vetted.glob(f"{modality}[._]*.tsv") if p.resolve() not in keep]
    for path in old:
        path.unlink(missing_ok=True)
    log.info(
        "%s is %s (%d earlier vetted file(s) removed)", outputs.manifest, inputs.manifest, len(old)
    )


def run_skipped(*, inputs: Paths, outputs: Paths) -> None:
    """One table of every file left out, with its reason."""
    output = outputs.table
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in inputs.skipped]
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if len(table):
        log.warning("%d file(s) skipped; see %s", len(table), output)


def run_embed(*, inputs: Paths, outputs: Paths, settings: EmbedSettings, threads: int) -> None:
    """Embed every manifest file under one variant, embedding only what the cache lacks."""
    model, effect, intensity = settings.model, settings.effect, settings.intensity
    modality, effect_params, preroll_s = model.modality, settings.effect_params, settings.preroll_s
    from delta_v2a.models import resolve_device

    files = read_manifest(inputs.manifest)
    hashes = [f.sha256 for f in files]  # the vetted bytes; render() refuses any others
    label = f"{modality} {effect or 'original'}/{intensity or '-'}"
    shard = None
    if settings.cache_dir:
        key = variant_key(
            modality=modality,
            model=model,
            device_type=resolve_device(model.device).type,
            effect=effect,
            effect_params=effect_params,
            preroll_s=preroll_s,
        )
        shard = Path(settings.cache_dir) / "embeddings" / modality / f"{key}.npz"

    def embed_missing(rows: np.ndarray) -> tuple[np.ndarray, dict]:
        misses = [files[i] for i in rows]
        log.info("%s: %d files, %d to embed", label, len(files), len(misses))
        embedder = load_embedder_for_job(model, threads)
        decoding = job_decoding(modality, embedder, preroll_s)
        prefer_item_parallelism(threads)
        new = embed_variant(
            embedder,
            misses,
            decoding,
            effect,
            effect_params,
            job_batch_size(settings.batch, embedder),
            workers=threads,
            progress=Progress("embedded"),
        )
        return new, {"model": embedder.info.to_dict(), "decoding": decoding.as_dict()}

    filled = fill(shard, hashes, embed_missing)
    emb, hit = filled.embeddings, filled.hit
    meta_model = {k: filled.meta[k] for k in ("model", "decoding")}
    log.info("%s: %d of %d files from the cache", label, int(hit.sum()), len(files))
    meta = {
        "modality": modality,
        "effect": effect,
        "intensity": intensity,
        "effect_params": dict(effect_params),
        "n_cached": int(hit.sum()),
        **meta_model,
    }
    EmbeddingTable(
        paths=np.array([f.path for f in files], dtype=str),
        categories=np.array([f.category for f in files], dtype=str),
        embeddings=emb,
        meta=meta,
    ).save(outputs.embeddings)


def job_decoding(modality: str, embedder: Any, preroll_s: float) -> Decoding:
    """How files reach this model: its input size, or its rate and window plus the pre-roll."""
    if modality == "image":
        return Decoding("image", image_size=embedder.input_size)
    sr = embedder.sampling_rate
    return Decoding(
        "audio",
        sampling_rate=sr,
        window=embedder.window_samples,
        preroll=int(round(preroll_s * sr)),
    )


def run_deltas(*, inputs: Paths, outputs: Paths, settings: DeltasSettings) -> None:
    """Join variants with originals into the seed's JSON and the compact store."""
    modality, effects, intensities = settings.modality, settings.effects, settings.intensities
    orig = EmbeddingTable.load(inputs.original)
    tables = []
    for path in inputs.variants:
        table = EmbeddingTable.load(path)
        tables.append((table.meta["effect"], table.meta["intensity"], table))
    meta = {
        "model": orig.meta["model"],
        "decoding": orig.meta["decoding"],
        "effect_params": {f"{e}/{i}": t.meta["effect_params"] for e, i, t in tables},
    } | merge_model_meta([orig.meta])
    store, augmented = gather(modality, orig, tables, effects, intensities, meta)
    bad = degenerate_rows(store)
    for row in bad:
        log.warning(
            "degenerate delta: %s %s/%s: %s",
            row["path"],
            row["effect_type"],
            row["intensity"],
            row["problem"],
        )
    store.meta["degenerate"] = bad
    store.save(outputs.store)
    with atomic_path(outputs.json) as tmp, open(tmp, "wb") as fh:
        n = write_deltas_json(fh, store, augmented)
    write_json(outputs.meta, store.meta | {"n_records": n})
    log.info(
        "%s: %d delta records (%d files × %d effects × %d intensities)",
        modality,
        n,
        len(store.files),
        len(effects),
        len(intensities),
    )


def contrasting_clips(sr: int, window: int) -> list[np.ndarray]:
    """Deterministic clips that any working audio tower should tell apart."""
    t = np.arange(window, dtype=np.float64) / sr
    rng = np.random.default_rng(0)
    clips = [
        0.3 * np.sin(2 * np.pi * 440 * t),  # a pure tone
        0.1 * rng.standard_normal(window),  # white noise
        0.5 * (np.arange(window) % (sr // 4) < 40),  # a click train
        sum(0.1 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0)),  # a low chord
        0.3 * np.sign(np.sin(2 * np.pi * 3000 * t)),  # a bright square wave
    ]
    return [c.astype(np.float32) for c in clips]


def run_health(*, inputs: Paths, outputs: Paths, settings: HealthSettings, threads: int) -> None:
    """Mean pairwise cosine of unrelated prompts (and contrasting clips), whatever the verdict."""
    modality = settings.model.modality
    from delta_v2a.models import health_check

    embedder = load_embedder_for_job(settings.model, threads)
    clips = (
        contrasting_clips(embedder.sampling_rate, embedder.window_samples)
        if modality == "audio"
        else None
    )
    report = health_check(embedder, clips=clips, limit=settings.limit)
    report["modality"] = modality
    write_json(outputs.health, report)
    (log.info if report["passed"] else log.warning)("health %s: %s", modality, report["message"])
