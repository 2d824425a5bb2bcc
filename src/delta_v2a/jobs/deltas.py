"""The deltas job (rules/extract.smk: deltas): every variant joined with the originals into the
compact delta store and the seed's JSON, streamed one variant part at a time."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator
from typing import Any

from delta_v2a.extract import degenerate_records, variant_deltas
from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.provenance import merge_model_meta
from delta_v2a.settings import DeltasSettings
from delta_v2a.storage import (
    TABLE_META,
    DeltaStoreWriter,
    EmbeddingTable,
    SeedJsonWriter,
    atomic_path,
    write_json,
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
            codes = (effects.index(e), k % len(intensities))
            bad += _write_variant(store, records, orig, (e, i), codes, parts, modality)
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


def _write_variant(
    store: DeltaStoreWriter,
    records: SeedJsonWriter | None,
    orig: EmbeddingTable,
    label: tuple[str, str],
    codes: tuple[int, int],
    parts: Iterator[EmbeddingTable],
    modality: str,
) -> list[dict]:
    """One variant's deltas, part by part, into the store (at its effect and intensity codes)
    and the seed JSON; returns its degenerate deltas, each named in the log."""
    effect, intensity = label
    bad: list[dict] = []
    try:
        for lo, delta, table in variant_deltas(modality, orig, effect, intensity, parts):
            hi = lo + len(delta)
            store.add(delta, range(lo, hi), *codes)
            bad += _logged(degenerate_records(delta, table.paths, effect, intensity))
            if records is not None:
                records.write(
                    effect,
                    intensity,
                    table.paths,
                    table.categories,
                    delta,
                    orig.embeddings[lo:hi],
                    table.embeddings,
                )
    except ValueError as err:
        raise PipelineError(str(err)) from err
    return bad


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


def _logged(rows: list[dict]) -> list[dict]:
    """The degenerate deltas, each named in the log."""
    for row in rows:
        log.warning(
            "degenerate delta: %s %s/%s: %s",
            row["path"],
            row["effect_type"],
            row["intensity"],
            row["problem"],
        )
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
