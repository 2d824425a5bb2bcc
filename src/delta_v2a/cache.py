"""Content-addressed embedding cache: each (file content, model, variant) is embedded once.

Snakemake reruns a whole variant job when its inputs change (a file added to the data folder
changes the manifest); the cache makes that rerun cost only the new files. A shard holds the
embeddings of one (model, variant, preprocessing) key, indexed by the SHA-256 of each file's
bytes, so renaming or moving a file costs nothing and editing one re-embeds only that one.
A job whose files are all cached does not even load the model.

Every entry is written under the hash of the bytes that were actually decoded: a manifest
file carries its vetted SHA-256 and the decoder refuses other bytes (media.FileChangedError),
so a file edited during a run cannot put one photo's embedding under another's content.

Bump PREPROCESSING_VERSION whenever decoding or an effect changes what a model sees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from delta_v2a.settings import ModelSpec
from delta_v2a.storage import load_npz, save_npz

# 2: ICC profiles colour-managed to sRGB; 16-bit PNGs box-reduced before float conversion.
PREPROCESSING_VERSION = 2


def model_fingerprint(name_or_path: str, family: str = "auto") -> str:
    """What identifies a model's weights without loading them.

    Local directory: names, sizes and modification times of its files (regenerating a tiny
    model changes it). Hub id: the cached snapshot's commit when one is on disk, else the id.
    The planted family is built from code: its version is its weights.
    """
    if family == "planted":
        from delta_v2a.planted import PLANTED_VERSION

        return f"{name_or_path}@{PLANTED_VERSION}"
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        digest = hashlib.sha256()
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            st = path.stat()
            digest.update(f"{path.relative_to(local)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return f"dir:{digest.hexdigest()[:16]}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
    except Exception:  # a malformed id: the loader will say so with a better message
        cached = None
    if isinstance(cached, str):
        return f"hub:{name_or_path}@{Path(cached).parent.name}"
    return f"hub:{name_or_path}"


def variant_key(
    *,
    modality: str,
    model: ModelSpec,
    device_type: str,
    effect: str | None,
    effect_params: Mapping[str, float],
    preroll_s: float,
) -> str:
    """Hash of everything an embedding depends on besides the file's bytes."""
    return shard_key(
        model,
        device_type,
        modality=modality,
        effect=effect,
        params={k: float(v) for k, v in sorted(effect_params.items())},
        preroll_s=float(preroll_s) if modality == "audio" else None,
    )


def shard_key(model: ModelSpec, device_type: str, **parts: Any) -> str:
    """Short hash naming a shard: the preprocessing version, the model and ``parts`` (what
    else the embedding depends on: effect and parameters, a window sequence, ...), JSON-able."""
    described = {
        "version": PREPROCESSING_VERSION,
        "model": model_fingerprint(model.name_or_path, model.family),
        "dtype": model.dtype,
        "normalize": model.normalize,
        "device_type": device_type,
        **parts,
    }
    if model.revision:  # pinned hub commit; absent keeps unpinned keys unchanged
        described["revision"] = model.revision
    blob = json.dumps(described, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Filled:
    """What :func:`fill` returns: all rows, which came from the cache, and the model meta."""

    embeddings: np.ndarray
    hit: np.ndarray
    meta: dict


def fill(
    shard: str | Path | None,
    hashes: Sequence[str],
    embed_missing: Callable[[np.ndarray], tuple[np.ndarray, Mapping[str, Any]]],
) -> Filled:
    """The one cache cycle every embedding job runs: look up, embed the misses, merge, save.

    ``embed_missing(indices)`` embeds the rows ``indices`` (positions in ``hashes``) and returns
    ``(rows, meta)``; it is not called when everything is cached, so a fully cached job never
    loads its model. ``shard=None`` (cache disabled) embeds everything. The new rows are saved
    under ``hashes``, which must be the hashes of the bytes ``embed_missing`` decodes (it is
    the decoder's job to refuse other bytes; see media.FileChangedError).
    """
    cache = EmbeddingCache.open(shard) if shard is not None else None
    emb, hit = cache.lookup(hashes) if cache is not None else (None, np.zeros(len(hashes), bool))
    misses = np.flatnonzero(~hit)
    if not len(misses):
        if cache is None or emb is None:
            raise ValueError("nothing to embed and nothing cached: no files given")
        return Filled(emb, hit, dict(cache.meta))
    new, meta = embed_missing(misses)
    new = np.asarray(new, dtype=np.float32)
    if new.shape[0] != len(misses):
        raise ValueError(f"embed_missing returned {new.shape[0]} rows for {len(misses)} misses")
    if emb is None:
        emb = np.zeros((len(hashes), *new.shape[1:]), dtype=np.float32)
    emb[misses] = new
    if cache is not None:
        cache.add([hashes[i] for i in misses], new, meta)
        cache.save()
    return Filled(emb, hit, dict(meta))


@dataclass
class EmbeddingCache:
    """One shard: content hash → embedding, for one variant key."""

    path: Path
    hashes: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> EmbeddingCache:
        """Load a shard; a missing or unreadable one starts empty (a cache is never the truth)."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            arrays, meta = load_npz(path, ("hashes", "embeddings"))
        except (ValueError, OSError):
            return cls(path)
        return cls(path, [str(h) for h in arrays["hashes"]], arrays["embeddings"], meta)

    def lookup(self, hashes: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """(embeddings with zero rows for misses, boolean hit mask)."""
        hit = np.zeros(len(hashes), dtype=bool)
        if self.embeddings is None:
            return None, hit
        index = {h: i for i, h in enumerate(self.hashes)}
        rows = np.array([index.get(h, -1) for h in hashes], dtype=np.int64)
        hit = rows >= 0
        out = np.zeros((len(hashes), self.embeddings.shape[1]), dtype=np.float32)
        out[hit] = self.embeddings[rows[hit]]
        return out, hit

    def add(self, hashes: Sequence[str], embeddings: np.ndarray, meta: Mapping[str, Any]) -> None:
        known = set(self.hashes)
        new = []
        for i, h in enumerate(hashes):  # identical files in one batch: stored once
            if h not in known:
                known.add(h)
                new.append(i)
        if not new:
            return
        rows = np.asarray(embeddings, dtype=np.float32)[new]
        self.hashes += [hashes[i] for i in new]
        self.embeddings = rows if self.embeddings is None else np.vstack([self.embeddings, rows])
        self.meta = dict(meta)

    def save(self) -> None:
        if self.embeddings is None:
            return
        save_npz(
            self.path,
            {"hashes": np.asarray(self.hashes, dtype=str), "embeddings": self.embeddings},
            self.meta,
        )
