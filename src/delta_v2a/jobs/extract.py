"""Extraction jobs: vet files, embed originals and variants, gather deltas, health check."""

from __future__ import annotations

import contextlib
import gzip
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.cache import fill, variant_key
from delta_v2a.constants import SAMPLE_RATE
from delta_v2a.devices import device_kind
from delta_v2a.extract import (
    Decoding,
    FileFailedError,
    degenerate_problems,
    embed_variant,
    read_manifest,
    shard_rows,
    variant_deltas,
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
from delta_v2a.media import (
    MODALITY_EXTENSIONS,
    FileChangedError,
    MediaFile,
    shown_path,
    walk_root,
)
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import (
    DeltasSettings,
    EmbedGroupSettings,
    EmbedSettings,
    HealthSettings,
    ManifestSettings,
    ModelSpec,
)
from delta_v2a.storage import (
    TABLE_META,
    DeltaStoreWriter,
    EmbeddingTable,
    SeedJsonWriter,
    atomic_path,
    write_json,
)


def default_decoding(modality: str, preroll_s: float, budget_mib: int) -> Decoding:
    """Decoding used to vet files before a model is loaded (CLIP 224 px, CLAP 48 kHz × 10 s)."""
    return Decoding(
        modality=modality,
        preroll=int(round(preroll_s * SAMPLE_RATE)),
        decode_budget=budget_mib * 2**20 or None,
    )


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
        walk = walk_root(root, modality)
    except OSError as err:
        raise PipelineError(f"{key}: {err.strerror or err}") from err
    files = walk.files
    expected = _inventory_for(inputs.inventory, outputs.manifest, files)
    if settings.shards:  # this job's part of the sorted files (docs/methods.md §2.2)
        files = [files[i] for i in shard_rows(len(files), settings.shards, settings.shard, 1)]
    try:
        good, hashes, bad = vet(
            files,
            default_decoding(modality, max(preroll_s, lead_s), settings.decode_budget_mib),
            workers=threads,
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
    if not settings.shards:
        _log_usable(good, len(bad), settings)
    others = walk.others if settings.shard == 0 else []  # listed once, by the first shard
    write_skipped(outputs.skipped, bad + not_media(others, key, modality))
    write_manifest(outputs.manifest, good, hashes)


def _log_usable(good: list[MediaFile], n_bad: int, settings: ManifestSettings) -> None:
    """The usable files per category in the log; none at all stops the run."""
    modality, root, key = settings.modality, settings.root, settings.key
    if not good:
        raise PipelineError(
            f"{key} '{root}': no usable {modality} files (expected {root}/<category>/**/*"
            f".{{{','.join(e.lstrip('.') for e in MODALITY_EXTENSIONS[modality])}}}; "
            f"{n_bad} bad file(s) skipped)"
        )
    per_cat: dict[str, int] = {}
    for f in good:
        per_cat[f.category] = per_cat.get(f.category, 0) + 1
    log.info(
        "%d usable %s files in %d categories: %s",
        len(good),
        modality,
        len(per_cat),
        dict(sorted(per_cat.items())),
    )


def not_media(others: list[MediaFile], key: str, modality: str) -> list[tuple[MediaFile, str]]:
    """Files under a data root that no decoder reads: one warning line naming them, and rows
    for skipped_files.tsv (never a stop: a notes file beside the photos is not an error)."""
    if not others:
        return []
    names = ", ".join(f.shown for f in others[:10]) + (" ..." if len(others) > 10 else "")
    log.warning(
        "%d file(s) under %s are not %s files the decoders read, left out (listed in "
        "results/skipped_files.tsv): %s",
        len(others),
        key,
        modality,
        names,
    )
    return [(f, _not_media_reason(f.path, modality)) for f in others]


def _not_media_reason(path: str, modality: str) -> str:
    suffix = Path(path).suffix
    what = f"extension '{shown_path(suffix)}'" if suffix else "no extension"
    return f"{what}: not an {modality} format the installed decoders read"


_CHANGED = "the data changed after the workflow was parsed; run snakemake again"
_FAILED_AFTER_VETTING = (
    "the file passed vetting, so the effect or the model failed on it; on_bad_file acts at "
    "vetting (every variant must hold the same files): move the file out of the data root to "
    "go on, and report the error"
)


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
    """Make the vetted manifest of the current data state the one every later job reads (its
    vetting shards joined in order, with extract.shard_files), and drop the vetted manifests
    of earlier states (a return to one vets it again)."""
    manifests, skipped = _listed(inputs.manifest), _listed(inputs.skipped)
    keep = {Path(p).resolve() for p in manifests + skipped}
    if len(manifests) == 1:
        for src, dst in ((manifests[0], outputs.manifest), (skipped[0], outputs.skipped)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    else:
        _join_vetted(manifests, skipped, outputs)
    modality = Path(outputs.manifest).stem
    vetted = Path(manifests[0]).parent
    old = [p for p in vetted.glob(f"{modality}[._]*.tsv") if p.resolve() not in keep]
    for path in old:
        path.unlink(missing_ok=True)
    log.info(
        "%s is %s (%d earlier vetted file(s) removed)", outputs.manifest, manifests[0], len(old)
    )


def _listed(paths: str | list[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def _join_vetted(manifests: list[str], skipped: list[str], outputs: Paths) -> None:
    """The vetting shards' manifests and skipped lists as one of each (docs/methods.md §2.2)."""
    files = [f for part in manifests for f in read_manifest(part)]
    if not files:
        raise PipelineError(
            f"{manifests[0]}: no usable files in any of the {len(manifests)} vetting shards "
            f"(see {skipped[0]} and the shards beside it)"
        )
    with atomic_path(outputs.skipped) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for k, part in enumerate(skipped):
            with open(part, encoding="utf-8") as fh:
                header = fh.readline()
                out.write(header if k == 0 else "")
                shutil.copyfileobj(fh, out)
    write_manifest(outputs.manifest, files, [f.sha256 for f in files])
    log.info("%d usable files from %d vetting shards", len(files), len(manifests))


def run_skipped(*, inputs: Paths, outputs: Paths) -> None:
    """One table of every file left out, with its reason."""
    import pandas as pd

    output = outputs.table
    frames = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in inputs.skipped]
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    if len(table):
        log.warning("%d file(s) skipped; see %s", len(table), output)


def run_embed(*, inputs: Paths, outputs: Paths, settings: EmbedSettings, threads: int) -> None:
    """Embed every manifest file (or this job's shard of them) under one variant, embedding
    only what the cache lacks."""
    files = read_manifest(inputs.manifest)
    get_embedder = embedder_once(settings.model, threads)
    embed_one(files, settings, outputs.embeddings, get_embedder, threads)


def run_embed_group(
    *, inputs: Paths, outputs: Paths, settings: EmbedGroupSettings, threads: int
) -> None:
    """Embed several variants in one job, the model loaded once (at the first cache miss).

    Why: a model job's fixed price (process start, imports, model load) dominates a small run;
    grouping pays it once per group (docs/methods.md §2.2). Each variant is written to its own
    table, exactly as its own job would write it, so later rules cannot tell the difference.
    """
    variants, paths = settings.variants, list(outputs.embeddings)
    if len(variants) != len(paths):
        raise PipelineError(f"{len(variants)} variants for {len(paths)} outputs: {paths}")
    models = {v.model for v in variants}
    if len(models) != 1:
        raise PipelineError(f"one grouped job embeds with one model, not {len(models)}")
    files = read_manifest(inputs.manifest)
    get_embedder = embedder_once(variants[0].model, threads)
    for variant, path in zip(variants, paths, strict=True):
        embed_one(files, variant, path, get_embedder, threads)


def embedder_once(model: ModelSpec, threads: int) -> Callable[[], Any]:
    """The job's model, loaded on the first call only (a fully cached job never loads it)."""
    loaded: list[Any] = []

    def get() -> Any:
        if not loaded:
            loaded.append(load_embedder_for_job(model, threads))
        return loaded[0]

    return get


def embed_one(
    files: list[MediaFile],
    settings: EmbedSettings,
    output: str,
    get_embedder: Callable[[], Any],
    threads: int,
) -> None:
    """One variant's table: this job's shard of ``files``, the cache asked first."""
    model = settings.model
    device_type = device_kind(model.device)  # no torch import for an explicit device
    rows = shard_rows(
        len(files), settings.shards, settings.shard, settings.batch.for_device(device_type)
    )
    files = [files[i] for i in rows]
    hashes = [f.sha256 for f in files]  # the vetted bytes; render() refuses any others
    part = f" part {settings.shard + 1}/{settings.shards}" if settings.shards else ""
    label = f"{model.modality} {settings.effect or 'original'}/{settings.intensity or '-'}{part}"
    if files:
        embed_missing = _missing_embedder(files, settings, get_embedder, threads, label)
        filled = fill(_variant_cache(settings, device_type), hashes, embed_missing)
        emb, hit, meta_model = filled.embeddings, filled.hit, filled.meta
    else:  # a trailing shard with no batch left: an empty table, no model
        emb, hit = np.zeros((0, model.dim), np.float32), np.zeros(0, bool)
        meta_model = {"model": None, "decoding": None}
    log.info("%s: %d of %d files from the cache", label, int(hit.sum()), len(files))
    meta = {
        "modality": model.modality,
        "effect": settings.effect,
        "intensity": settings.intensity,
        "effect_params": dict(settings.effect_params),
        "n_cached": int(hit.sum()),
        **{k: meta_model[k] for k in ("model", "decoding")},
    }
    if settings.shards:
        meta |= {"shard": settings.shard, "shards": settings.shards}
    EmbeddingTable(
        paths=np.array([f.path for f in files], dtype=str),
        categories=np.array([f.category for f in files], dtype=str),
        embeddings=emb,
        meta=meta,
    ).save(output)


def _variant_cache(settings: EmbedSettings, device_type: str) -> Path | None:
    """Where this variant's (shard's) embeddings are cached; None without a cache."""
    if not settings.cache_dir:
        return None
    model = settings.model
    key = variant_key(
        modality=model.modality,
        model=model,
        device_type=device_type,
        effect=settings.effect,
        effect_params=settings.effect_params,
        preroll_s=settings.preroll_s,
    )
    suffix = f".part{settings.shard}of{settings.shards}" if settings.shards else ""
    return Path(settings.cache_dir) / "embeddings" / model.modality / f"{key}{suffix}.npz"


def _missing_embedder(
    files: list[MediaFile],
    settings: EmbedSettings,
    get_embedder: Callable[[], Any],
    threads: int,
    label: str,
) -> Callable[[np.ndarray], tuple[np.ndarray, dict]]:
    """What the cache calls for the rows it lacks: the model loads here, at the first miss."""
    modality = settings.model.modality

    def embed_missing(missing: np.ndarray) -> tuple[np.ndarray, dict]:
        misses = [files[i] for i in missing]
        log.info("%s: %d files, %d to embed", label, len(files), len(misses))
        embedder = get_embedder()
        decoding = job_decoding(modality, embedder, settings.preroll_s, settings.decode_budget_mib)
        prefer_item_parallelism(threads)
        try:
            new = embed_variant(
                embedder,
                misses,
                decoding,
                settings.effect,
                settings.effect_params,
                job_batch_size(settings.batch, embedder),
                workers=threads,
                progress=Progress("embedded"),
            )
        except FileFailedError as err:  # one line naming the file and its variant
            raise PipelineError(f"{err}; {_FAILED_AFTER_VETTING}") from err
        return new, {"model": embedder.info.to_dict(), "decoding": decoding.as_dict()}

    return embed_missing


def run_merge_original(*, inputs: Paths, outputs: Paths) -> None:
    """The originals' shards as one table (what Phase 3 and the deltas job read), with the
    same bits and meta as an unsharded job's (memory: twice the originals' table)."""
    tables = [EmbeddingTable.load(p, TABLE_META) for p in inputs.parts]
    metas = [t.meta for t in tables if t.meta["model"] is not None]  # empty trailing shards
    if not metas:
        raise PipelineError(f"{inputs.parts[0]}: every shard of the originals is empty")
    cached = sum(int(t.meta["n_cached"]) for t in tables)
    meta = {k: v for k, v in metas[0].items() if k not in ("shard", "shards")}
    EmbeddingTable(
        paths=np.concatenate([t.paths for t in tables]),
        categories=np.concatenate([t.categories for t in tables]),
        embeddings=np.concatenate([t.embeddings for t in tables]),
        meta=meta | {"n_cached": cached},
    ).save(outputs.embeddings)


def job_decoding(modality: str, embedder: Any, preroll_s: float, budget_mib: int) -> Decoding:
    """How files reach this model: its input size, or its rate and window plus the pre-roll."""
    if modality == "image":
        return Decoding("image", image_size=embedder.input_size, decode_budget=budget_mib * 2**20)
    sr = embedder.sampling_rate
    return Decoding(
        "audio",
        sampling_rate=sr,
        window=embedder.window_samples,
        preroll=int(round(preroll_s * sr)),
    )


def run_deltas(*, inputs: Paths, outputs: Paths, settings: DeltasSettings) -> None:
    """Join variants with originals into the compact store and the seed's JSON, streamed.

    Variant tables (each variant in ``max(1, shards)`` parts, in manifest order) are read one
    at a time and each part's deltas written to the store and the JSON before the next is read:
    memory is the originals plus one part (docs/methods.md §2.3), whatever the number of
    variants. The seed JSON is written in full, gzip-compressed or not at all
    (``extract.seed_json``); no later job reads it.
    """
    modality, effects, intensities = settings.modality, settings.effects, settings.intensities
    orig = EmbeddingTable.load(inputs.original, TABLE_META)
    per, paths = max(1, settings.shards), list(inputs.variants)
    labels = [(e, i) for e in effects for i in intensities]
    if len(paths) != per * len(labels):
        raise PipelineError(
            f"{modality} deltas: {len(paths)} variant tables for {len(labels)} variants × {per} "
            "part(s); extract.shard_files changed under this job, rerun extraction"
        )
    f = len(orig.paths)
    writer = DeltaStoreWriter(
        outputs.store,
        modality,
        files=orig.paths,
        file_category=orig.categories,
        original=orig.embeddings,
        effects=effects,
        intensities=intensities,
        n_rows=f * len(labels),
    )
    params: dict[str, Any] = {}
    bad: list[dict] = []
    with writer as store, _seed_json(outputs, settings.seed_json, modality) as records:
        for k, (e, i) in enumerate(labels):
            parts = _variant_parts(e, i, paths[k * per : (k + 1) * per], params)
            try:
                for lo, delta, table in variant_deltas(modality, orig, e, i, parts):
                    store.add(
                        delta, range(lo, lo + len(delta)), effects.index(e), k % len(intensities)
                    )
                    bad += _degenerate(delta, table, e, i)
                    if records is not None:
                        hi = lo + len(delta)
                        records.write(
                            e,
                            i,
                            table.paths,
                            table.categories,
                            delta,
                            orig.embeddings[lo:hi],
                            table.embeddings,
                        )
            except ValueError as err:
                raise PipelineError(str(err)) from err
        meta = {"model": orig.meta["model"], "decoding": orig.meta["decoding"]}
        meta |= merge_model_meta([orig.meta]) | {"effect_params": params, "degenerate": bad}
        store.meta = meta
    n = f * len(labels)
    write_json(outputs.meta, meta | {"n_records": n, "seed_json": settings.seed_json})
    log.info(
        "%s: %d delta records (%d files × %d effects × %d intensities); seed JSON: %s",
        modality,
        n,
        f,
        len(effects),
        len(intensities),
        settings.seed_json,
    )


def _variant_parts(
    effect: str, intensity: str, chunk: list[str], params: dict[str, Any]
) -> Iterator[EmbeddingTable]:
    """One variant's tables, loaded one at a time, each checked to hold that variant."""
    for path in chunk:
        table = EmbeddingTable.load(path, TABLE_META)
        if (table.meta["effect"], table.meta["intensity"]) != (effect, intensity):
            raise PipelineError(
                f"{path}: holds {table.meta['effect']}/{table.meta['intensity']}, "
                f"expected {effect}/{intensity}"
            )
        params[f"{effect}/{intensity}"] = table.meta["effect_params"]
        yield table


def _degenerate(delta: np.ndarray, table: EmbeddingTable, effect: str, intensity: str) -> list:
    """The part's deltas with no direction or no value, each named in the log."""
    rows = []
    for r, problem in degenerate_problems(delta):
        row = {"path": str(table.paths[r]), "effect_type": effect, "intensity": intensity}
        rows.append(row | {"problem": problem})
        log.warning("degenerate delta: %s %s/%s: %s", row["path"], effect, intensity, problem)
    return rows


@contextlib.contextmanager
def _seed_json(outputs: Paths, mode: str, modality: str) -> Iterator[SeedJsonWriter | None]:
    """The seed's JSON writer for ``extract.seed_json``: the full text, gzip (level 1: the
    floats' text compresses ~2.5x at ~100 MB/s), or none (no output declared)."""
    if mode == "none":
        yield None
        return
    with atomic_path(outputs.json) as tmp:
        opener = gzip.open(tmp, "wb", compresslevel=1) if mode == "gzip" else open(tmp, "wb")
        with opener as fh:
            records = SeedJsonWriter(fh, modality)
            yield records
            records.close()


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


def contrasting_images(size: int) -> list[np.ndarray]:
    """Deterministic float RGB images in [0, 1] that differ in every way a photo can: for the
    determinism gate (each alone vs all in one batch), not for a collapse figure."""
    ramp = np.linspace(0.0, 1.0, size)
    rng = np.random.default_rng(0)
    checker = ((np.arange(size)[:, None] // 16 + np.arange(size)[None, :] // 16) % 2).astype(float)
    images = [
        np.stack([np.tile(ramp, (size, 1))] * 3, axis=-1),  # a grey horizontal ramp
        rng.random((size, size, 3)),  # colour noise
        np.repeat(checker[..., None], 3, axis=-1),  # a checkerboard
        np.broadcast_to([0.8, 0.3, 0.1], (size, size, 3)),  # a flat orange
    ]
    return [np.ascontiguousarray(i, dtype=np.float32) for i in images]


def run_health(*, inputs: Paths, outputs: Paths, settings: HealthSettings, threads: int) -> None:
    """Mean pairwise cosine of unrelated prompts (and contrasting clips), and each input alone
    vs in a batch (the determinism gate), whatever the verdict."""
    modality = settings.model.modality
    from delta_v2a.models import health_check

    embedder = load_embedder_for_job(settings.model, threads)
    audio = modality == "audio"
    clips = contrasting_clips(embedder.sampling_rate, embedder.window_samples) if audio else None
    images = None if audio else contrasting_images(embedder.input_size)
    report = health_check(
        embedder, clips=clips, images=images, limit=settings.limit, batch_limit=settings.batch_limit
    )
    report["modality"] = modality
    write_json(outputs.health, report)
    (log.info if report["passed"] else log.warning)("health %s: %s", modality, report["message"])
