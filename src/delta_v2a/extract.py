"""Extraction: vet the files, render each variant, embed in batches, gather the deltas.

Cost model: per job, one model load plus one decode + effect + forward pass per file. Decoding,
effects and the model's preprocessing run in a pool of the job's threads that stays at most two
batches ahead of the model (delta_v2a.prefetch), so they overlap with the forward passes
instead of adding to them. The originals are embedded once
per modality (their own job) and never again per effect.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.constants import IMAGE_SIZE, SAMPLE_RATE, WINDOW_SAMPLES
from delta_v2a.effects import apply_audio_effect, apply_image_effect
from delta_v2a.media import (
    BadMediaError,
    FileChangedError,
    MediaFile,
    load_audio,
    load_image,
    path_from_shown,
    shown_path,
    vet_file,
)
from delta_v2a.prefetch import prefetched_batches
from delta_v2a.storage import DeltaStore, EmbeddingTable, StoreError, atomic_path, read_tsv_rows

log = logging.getLogger(__name__)
MANIFEST_FIELDS = ("path", "category", "modality", "sha256")


# --- manifests -------------------------------------------------------------------------------


def write_manifest(path: str | Path, files: Sequence[MediaFile], hashes: Sequence[str]) -> None:
    """The usable files of a modality with the SHA-256 of their bytes (the cache key).

    Paths are written as :func:`~delta_v2a.media.shown_path` text in csv quoting: any name a
    file system allows is one field on one line, and :func:`read_manifest` gives it back exactly.
    """
    rows = ((f.shown, f.category, f.modality, h) for f, h in zip(files, hashes, strict=True))
    _write_tsv(path, MANIFEST_FIELDS, rows)


def _write_tsv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _manifest_rows(path: str | Path) -> list[list[str]]:
    """The rows of a manifest, each with its four fields; anything else is one line naming it."""
    return read_tsv_rows(path, MANIFEST_FIELDS, "a manifest")


def read_manifest(path: str | Path) -> list[MediaFile]:
    """The manifest's files, each with the SHA-256 it was vetted with (checked at decode)."""
    try:
        return [
            MediaFile(path_from_shown(r[0]), r[1], r[2], sha256=r[3]) for r in _manifest_rows(path)
        ]
    except ValueError as err:
        raise StoreError(f"{path}: {err}; delete it and rerun") from err


def manifest_hashes(path: str | Path) -> list[str]:
    return [r[3] for r in _manifest_rows(path)]


SKIPPED_FIELDS = ("path", "category", "modality", "reason")


def write_skipped(path: str | Path, bad: Sequence[tuple[MediaFile, str]]) -> None:
    """The files left out, with their reasons (paths as in the manifest: one field each)."""
    _write_tsv(path, SKIPPED_FIELDS, ((f.shown, f.category, f.modality, r) for f, r in bad))


class FileFailedError(RuntimeError):
    """A file that passed vetting failed while one variant of it was rendered or prepared."""

    def __init__(self, path: str, variant: str, cause: BaseException) -> None:
        self.path, self.variant = path, variant
        what = " ".join(str(cause).split()) or "no message"
        super().__init__(f"{shown_path(path)}: {variant}: {type(cause).__name__}: {what}")


@dataclass(frozen=True)
class Decoding:
    """How a modality's files become model input (what the embedding's meaning depends on)."""

    modality: str
    image_size: int = IMAGE_SIZE
    sampling_rate: int = SAMPLE_RATE
    window: int = WINDOW_SAMPLES
    preroll: int = SAMPLE_RATE  # one second
    #: Most bytes one image decode may need (``preprocessing.image.decode_budget_mib``). It
    #: decides which files are refused, never what an accepted file's pixels are, so it stays
    #: out of :meth:`as_dict` (the cache key). None: the default, with no config in play.
    decode_budget: int | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.modality == "image":
            return {"image_size": self.image_size}
        return {"sampling_rate": self.sampling_rate, "window": self.window, "preroll": self.preroll}


def default_decoding(modality: str, preroll_s: float, budget_mib: int) -> Decoding:
    """Decoding used to vet files before a model is loaded (CLIP 224 px, CLAP 48 kHz × 10 s)."""
    return Decoding(
        modality=modality,
        preroll=int(round(preroll_s * SAMPLE_RATE)),
        decode_budget=budget_mib * 2**20 or None,
    )


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


def vet(
    files: Sequence[MediaFile], decoding: Decoding, workers: int = 2
) -> tuple[list[MediaFile], list[str], list[tuple[MediaFile, str]]]:
    """Decode every file once, before any model loads.

    Returns (usable files, the SHA-256 of the bytes each decode read, [(bad file, reason)]).
    ``decoding.preroll`` must cover the longest lead-in any later phase reads (Phase 3's window
    sequence included), so what passes here never fails later. A file that changes while it is
    vetted raises :class:`~delta_v2a.media.FileChangedError`.
    """

    def check(f: MediaFile) -> tuple[str | None, str]:
        return vet_file(
            f,
            image_size=decoding.image_size,
            sr=decoding.sampling_rate,
            window=decoding.window,
            preroll=decoding.preroll,
            budget=decoding.decode_budget,
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = list(pool.map(check, files))
    good = [(f, h) for f, (r, h) in zip(files, checked, strict=True) if r is None]
    bad = [(f, r) for f, (r, _) in zip(files, checked, strict=True) if r is not None]
    return [f for f, _ in good], [h for _, h in good], bad


# --- rendering -------------------------------------------------------------------------------


def render(
    file: MediaFile, decoding: Decoding, effect: str | None, params: Mapping[str, float]
) -> np.ndarray:
    """Decode one file and give it one effect (``effect=None``: the original).

    A file from a manifest carries its vetted SHA-256; bytes that differ now raise
    :class:`~delta_v2a.media.FileChangedError`, so a cache entry is always keyed by the bytes
    actually decoded.
    """
    if decoding.modality == "image":
        image = load_image(
            file.path, decoding.image_size, sha256=file.sha256, budget=decoding.decode_budget
        )
        return image if effect is None else apply_image_effect(effect, image, params)
    audio = load_audio(
        file.path, decoding.sampling_rate, decoding.window, decoding.preroll, sha256=file.sha256
    )
    if effect is None:
        return audio[decoding.preroll :]
    return apply_audio_effect(
        effect, audio, decoding.sampling_rate, params, preroll=decoding.preroll
    )


def embed_variant(
    embedder: Any,
    files: Sequence[MediaFile],
    decoding: Decoding,
    effect: str | None,
    params: Mapping[str, float],
    batch_size: int,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embeddings (F, D) of every file under one variant, in manifest order.

    Decode, effect and the model's preprocessing (``embedder.prepare``) run in ``workers``
    threads, up to two batches ahead of the forward pass; one worker gives the same bits.
    ``progress(done, total)`` is called after each batch (the job logs it with its tag).
    """

    def prepare(f: MediaFile) -> Any:
        try:
            return embedder.prepare(render(f, decoding, effect, params))
        except FileChangedError:
            raise
        except Exception as exc:  # name the file: one of thousands in the job
            raise FileFailedError(f.path, effect or "original", exc) from exc

    out: list[np.ndarray] = []
    done = 0
    for batch in prefetched_batches(list(files), prepare, batch_size, workers):
        out.append(embedder.embed_prepared(batch))
        done += len(batch)
        if progress is not None:
            progress(done, len(files))
    if not out:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


# --- gathering -------------------------------------------------------------------------------


def shard_rows(n_files: int, shards: int, shard: int, batch: int) -> range:
    """The manifest rows shard ``shard`` of ``shards`` embeds (``shards`` 0: every row).

    Why batch-aligned: a forward pass's bits can depend on which files share its batch, so each
    shard starts at a multiple of ``batch`` and holds whole batches (the last one ragged). Every
    file then meets the same batch-mates as in an unsharded run, and the concatenated shards are
    bit-identical to it (docs/methods.md §2.2). Later shards may be empty when there are fewer
    batches than shards.
    """
    if shards <= 0:
        return range(n_files)
    if not 0 <= shard < shards or batch < 1:
        raise ValueError(f"shard {shard} of {shards} (batch {batch}) does not exist")
    batches = -(-n_files // batch)
    per = -(-batches // shards)  # whole batches per shard
    start = min(n_files, shard * per * batch)
    return range(start, min(n_files, start + per * batch))


def gather(
    modality: str,
    original: EmbeddingTable,
    variants: Sequence[tuple[str, str, EmbeddingTable]],
    effects: Sequence[str],
    intensities: Sequence[str],
    meta: Mapping[str, Any],
) -> tuple[DeltaStore, np.ndarray]:
    """Join each variant with the originals: Δe = e_aug − e_orig per file.

    Returns the compact store and the augmented embeddings (row-aligned with the store) for the
    JSON. Every variant must cover exactly the originals' files, in order.
    """
    parts = [(e, i, (t,)) for e, i, t in variants]
    return gather_parts(modality, original, parts, effects, intensities, meta)


def gather_parts(
    modality: str,
    original: EmbeddingTable,
    variants: Sequence[tuple[str, str, Iterable[EmbeddingTable]]],
    effects: Sequence[str],
    intensities: Sequence[str],
    meta: Mapping[str, Any],
    augmented: np.ndarray | None = None,
) -> tuple[DeltaStore, np.ndarray]:
    """:func:`gather` for variants that come in parts (file shards, in manifest order).

    Why an iterable per variant: the deltas job passes generators that load one shard at a
    time, so memory holds the output (the deltas, preallocated) plus one shard, never every
    variant's tables at once; ``augmented`` (rows × dim float32, e.g. a memory-mapped file)
    receives the augmented rows for the JSON, in memory when None. The parts of a variant must
    concatenate to exactly the originals' files, in order; the result is the same bits as one
    table per variant.
    """
    f, dim = original.embeddings.shape
    eff_code = {e: i for i, e in enumerate(effects)}
    int_code = {x: i for i, x in enumerate(intensities)}
    n = f * len(variants)
    delta = np.empty((n, dim), dtype=np.float32)
    if augmented is None:
        augmented = np.empty((n, dim), dtype=np.float32)
    elif augmented.shape != (n, dim) or augmented.dtype != np.float32:
        raise ValueError(f"augmented buffer {augmented.shape} {augmented.dtype}, not {(n, dim)}")
    ecodes = np.empty(n, dtype=np.int16)
    icodes = np.empty(n, dtype=np.int16)
    for v, (effect, intensity, parts) in enumerate(variants):
        for lo, part_delta, table in variant_deltas(modality, original, effect, intensity, parts):
            rows = slice(v * f + lo, v * f + lo + len(part_delta))
            delta[rows] = part_delta
            augmented[rows] = table.embeddings
        ecodes[v * f : (v + 1) * f] = eff_code[effect]
        icodes[v * f : (v + 1) * f] = int_code[intensity]
    store = DeltaStore(
        modality=modality,
        delta=delta,
        file_index=np.tile(np.arange(f, dtype=np.int64), len(variants)),
        effect_code=ecodes,
        intensity_code=icodes,
        files=np.asarray(original.paths, dtype=str),
        file_category=np.asarray(original.categories, dtype=str),
        original=original.embeddings,
        effects=np.asarray(list(effects), dtype=str),
        intensities=np.asarray(list(intensities), dtype=str),
        meta=dict(meta),
    )
    return store, augmented


def variant_deltas(
    modality: str,
    original: EmbeddingTable,
    effect: str,
    intensity: str,
    parts: Iterable[EmbeddingTable],
) -> Iterator[tuple[int, np.ndarray, EmbeddingTable]]:
    """(first file, deltas, part) for each part of one variant, checked against the originals.

    Why a generator: the deltas job writes each part's rows as they come (docs/methods.md §2.3),
    so memory holds the originals and one part. The parts must concatenate to exactly the
    originals' files, in order.
    """
    f, lo = len(original.paths), 0
    for table in parts:
        hi = lo + len(table.paths)
        if hi > f or not np.array_equal(table.paths, original.paths[lo:hi]):
            raise ValueError(
                f"{modality} {effect}/{intensity}: its files differ from the originals'; "
                "the manifest changed between jobs, rerun extraction"
            )
        delta = np.subtract(table.embeddings, original.embeddings[lo:hi], dtype=np.float32)
        yield lo, delta, table
        lo = hi
    if lo != f:
        raise ValueError(
            f"{modality} {effect}/{intensity}: {lo} of the originals' {f} files; a shard "
            "is missing or the manifest changed between jobs, rerun extraction"
        )


def degenerate_problems(delta: np.ndarray) -> list[tuple[int, str]]:
    """[(row, problem)] of the deltas with no direction (zero norm) or no value (NaN/inf).

    The squared norms are summed in float64 by ``einsum`` without a copy of the rows (the deltas
    job calls this on every part; a masked copy cost one more part of memory)."""
    finite = np.isfinite(delta).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", delta, delta, dtype=np.float64))
    rows = np.flatnonzero(~finite | (np.where(finite, norms, 0) <= 1e-12))
    return [(int(r), "non-finite delta" if not finite[r] else "zero-norm delta") for r in rows]


def degenerate_records(
    delta: np.ndarray, paths: Sequence[str], effect: str, intensity: str
) -> list[dict]:
    """One variant part's deltas with no direction or no value, as the store's meta lists them
    (``paths``: the part's files, row for row)."""
    return [
        {"path": str(paths[r]), "effect_type": effect, "intensity": intensity, "problem": problem}
        for r, problem in degenerate_problems(delta)
    ]


def degenerate_rows(store: DeltaStore) -> list[dict]:
    """Records whose delta has no direction (zero norm) or no value (NaN/inf): reported by name."""
    return [
        {
            "path": str(store.files[store.file_index[r]]),
            "effect_type": str(store.effects[store.effect_code[r]]),
            "intensity": str(store.intensities[store.intensity_code[r]]),
            "problem": problem,
        }
        for r, problem in degenerate_problems(store.delta)
    ]


__all__ = [
    "BadMediaError",
    "Decoding",
    "FileFailedError",
    "default_decoding",
    "degenerate_problems",
    "degenerate_records",
    "degenerate_rows",
    "embed_variant",
    "gather",
    "gather_parts",
    "job_decoding",
    "manifest_hashes",
    "prefetched_batches",
    "read_manifest",
    "render",
    "shard_rows",
    "variant_deltas",
    "vet",
    "write_manifest",
    "write_skipped",
]


def study_store(
    embedder: Any,
    files: Sequence[MediaFile],
    decoding: Decoding,
    modality: str,
    effects: Sequence[str],
    config: Mapping[str, Any],
    batch_size: int = 8,
) -> DeltaStore:
    """Every variant of ``files`` in one process, as the workflow's extract jobs make it
    (original, then each effect × ``config["intensities"]`` level with its fixed params),
    joined by :func:`gather`: for tests and benchmarks that need a store without a run."""
    intensities = list(config["intensities"])
    orig = embed_variant(embedder, files, decoding, None, {}, batch_size=batch_size)
    table = EmbeddingTable(
        np.array([f.path for f in files]), np.array([f.category for f in files]), orig
    )
    variants = []
    for effect in effects:
        conf = config["effects"][modality][effect]
        for level in intensities:
            params = {**conf.get("fixed", {}), **conf["levels"][level]}
            emb = embed_variant(embedder, files, decoding, effect, params, batch_size=batch_size)
            variants.append((effect, level, EmbeddingTable(table.paths, table.categories, emb)))
    meta = {"model": embedder.info.to_dict(), "decoding": decoding.as_dict()}
    return gather(modality, table, variants, effects, intensities, meta)[0]
