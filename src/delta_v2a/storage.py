"""Artifacts on disk: embedding tables, the compact delta store, streamed JSON.

Every writer goes through :func:`atomic_path`, so a job killed mid-write leaves no
half-written file that a later run could trust. Arrays are stored with ``np.savez`` and read
with ``allow_pickle=False``: strings are fixed-width unicode arrays, never pickled objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

STORE_VERSION = 1
#: pandas ``errors``/``encoding_errors`` for the workflow's internal TSV files that hold file
#: paths (Phase 3's samples): a name that is not UTF-8 keeps its exact bytes, written and read
#: back by the same rule (user-facing files show names with media.shown_path instead).
NAMES = "surrogateescape"
_UMASK = os.umask(0)
os.umask(_UMASK)


class StoreError(ValueError):
    """A store on disk is missing, corrupt or of another layout; the message names the file."""


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared on clusters
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically, sorted keys off (order is meaningful), NaN forbidden."""
    text = json_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(text: str) -> str:
    """JSON text with every lone surrogate written as its ``\\uXXXX`` escape.

    Why: a file name that is not UTF-8 reaches Python as a str with lone surrogates
    (``os.fsdecode``); JSON can carry it only escaped, and Python's ``json`` reads the escape
    back to the same str, so the name (``os.fsencode``) is exact. Emoji and every other
    character stay as they are. Surrogates can only stand inside JSON strings, so the escape
    is always valid there.
    """
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds exactly it; True if written.

    Why: Snakemake compares modification times, so a file rewritten with the same content would
    make everything downstream stale.
    """
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return True


def read_json(path: str | Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StoreError(
            f"{path}: not valid JSON ({err}; a damaged or interrupted write); delete it and rerun"
        ) from err


def read_json_fields(path: str | Path, what: str, required: Sequence[str]) -> dict[str, Any]:
    """A JSON object that must hold ``required`` keys; else one line naming the file.

    For the untyped JSON files a job reads by key (the health reports): a file of an older
    layout is refused with the keys it lacks, never a KeyError deep inside the job.
    """
    doc = read_json(path)
    missing = [k for k in required if k not in doc] if isinstance(doc, dict) else list(required)
    if missing:
        raise StoreError(
            f"{path}: {what} lacks {missing} (written by another version of delta-v2a, or "
            "damaged); delete it and rerun"
        )
    return doc


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    payload = dict(arrays)
    payload["meta"] = np.array(json.dumps(meta, sort_keys=True, allow_nan=False))
    with atomic_path(path, ".npz") as tmp:
        # np.savez appends ".npz" when missing; the suffix above makes the name end in it.
        np.savez(tmp, **payload)


def load_npz(path: str | Path, required: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except Exception as err:  # zipfile.BadZipFile, ValueError (pickled), OSError, EOFError
        raise StoreError(
            f"{path}: cannot read array store ({type(err).__name__}: {err}; a damaged or "
            "interrupted write); delete it and rerun"
        ) from err
    missing = [key for key in (*required, "meta") if key not in arrays]
    if missing:
        raise StoreError(
            f"{path}: array store lacks {missing} (written by another version of delta-v2a); "
            "delete it and rerun"
        )
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise StoreError(f"{path}: its meta is not JSON ({err}); delete it and rerun") from err
    if not isinstance(meta, dict):
        raise StoreError(f"{path}: its meta is not an object; delete it and rerun")
    return arrays, meta


#: What every job-written embedding table's meta holds (read by the deltas and merge jobs).
TABLE_META = ("effect", "intensity", "effect_params", "n_cached", "model", "decoding")


@dataclass
class EmbeddingTable:
    """Embeddings of one variant (the originals, or one effect × intensity) of one modality."""

    paths: np.ndarray  # (F,) str
    categories: np.ndarray  # (F,) str
    embeddings: np.ndarray  # (F, D) float32
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        save_npz(
            path,
            {
                "paths": np.asarray(self.paths, dtype=str),
                "categories": np.asarray(self.categories, dtype=str),
                "embeddings": np.asarray(self.embeddings, dtype=np.float32),
            },
            self.meta,
        )

    @classmethod
    def load(cls, path: str | Path, required: Sequence[str] = ()) -> EmbeddingTable:
        """The table, or one line naming the file when it is damaged or of another layout
        (``required``: meta keys the reader needs, e.g. :data:`TABLE_META`)."""
        arrays, meta = load_npz(path, ("paths", "categories", "embeddings"))
        paths, emb = arrays["paths"], arrays["embeddings"]
        rows = emb.shape[0] if emb.ndim else -1
        if paths.shape != (rows,) or arrays["categories"].shape != (rows,):
            raise StoreError(f"{path}: inconsistent array shapes; delete it and rerun")
        missing = [k for k in required if k not in meta]
        if missing:
            raise StoreError(
                f"{path}: embedding table lacks {missing} in its meta (written by another "
                "version of delta-v2a); delete it and rerun"
            )
        return cls(paths, arrays["categories"], emb, meta)


@dataclass
class DeltaStore:
    """All delta records of one modality, columnar.

    Records are rows; labels are stored once and referenced by small integer codes, and the
    originals once per file (``original[file_index]``), so 10^5 records of 768-d cost little
    more than the deltas themselves.
    """

    modality: str
    delta: np.ndarray  # (N, D) float32
    file_index: np.ndarray  # (N,) int64 into files/original
    effect_code: np.ndarray  # (N,) int16 into effects
    intensity_code: np.ndarray  # (N,) int16 into intensities
    files: np.ndarray  # (F,) str
    file_category: np.ndarray  # (F,) str
    original: np.ndarray  # (F, D) float32
    effects: np.ndarray  # (E,) str
    intensities: np.ndarray  # (I,) str, in intensity order
    meta: dict = field(default_factory=dict)

    @property
    def category(self) -> np.ndarray:
        return self.file_category[self.file_index]

    @property
    def effect(self) -> np.ndarray:
        return self.effects[self.effect_code]

    @property
    def intensity(self) -> np.ndarray:
        return self.intensities[self.intensity_code]

    def __len__(self) -> int:
        return int(self.delta.shape[0])

    def save(self, path: str | Path) -> None:
        save_npz(
            path,
            {
                "delta": self.delta.astype(np.float32, copy=False),
                "file_index": self.file_index.astype(np.int64, copy=False),
                "effect_code": self.effect_code.astype(np.int16, copy=False),
                "intensity_code": self.intensity_code.astype(np.int16, copy=False),
                "files": np.asarray(self.files, dtype=str),
                "file_category": np.asarray(self.file_category, dtype=str),
                "original": self.original.astype(np.float32, copy=False),
                "effects": np.asarray(self.effects, dtype=str),
                "intensities": np.asarray(self.intensities, dtype=str),
            },
            {**self.meta, "modality": self.modality, "store_version": STORE_VERSION},
        )

    @classmethod
    def load(cls, path: str | Path) -> DeltaStore:
        keys = ("delta", "file_index", "effect_code", "intensity_code", "files")
        keys += ("file_category", "original", "effects", "intensities")
        arrays, meta = load_npz(path, keys)
        if meta.get("store_version") != STORE_VERSION or "modality" not in meta:
            raise StoreError(
                f"{path}: delta store version {meta.get('store_version')!r}, this version of "
                f"delta-v2a reads version {STORE_VERSION}; delete it and rerun (or use the "
                "version that wrote it)"
            )
        n, f = arrays["delta"].shape[0], arrays["files"].shape[0]
        if arrays["file_index"].shape != (n,) or arrays["original"].shape[0] != f:
            raise StoreError(f"{path}: inconsistent array shapes; delete it and rerun")
        modality = meta.pop("modality")
        meta.pop("store_version")
        return cls(modality=modality, meta=meta, **arrays)


_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json_fields(fields: Mapping[str, str]) -> bytes:
    """``"key":"value",...`` as UTF-8 JSON, any file name exact (orjson refuses surrogates)."""
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return json_text(text)[1:-1].encode("utf-8")


def write_deltas_json(
    fh: BinaryIO,
    store: DeltaStore,
    augmented: np.ndarray,
    *,
    chunk: int = 512,
) -> int:
    """Stream the seed's record list: one JSON object per delta, never the whole list in memory.

    ``augmented`` is passed separately (it is not kept in the compact store) so the JSON holds
    the embeddings exactly as the model produced them. orjson writes each float32 as the
    shortest text that parses back to the same float32 (a test compares the bits) and a
    non-finite value (a degenerate embedding) as ``null``, JSON having no NaN; it is about 20x
    faster than formatting floats in Python. Each file's original embedding is formatted once
    (it recurs in every one of its records; the text costs ~3x the float32 array), and records
    are written ``chunk`` at a time as UTF-8 bytes to ``fh``, a file opened in binary mode.
    """
    effects = [str(e) for e in store.effects]
    intensities = [str(x) for x in store.intensities]
    delta = np.ascontiguousarray(store.delta, dtype=np.float32)
    augmented = np.ascontiguousarray(augmented, dtype=np.float32)
    original = np.ascontiguousarray(store.original, dtype=np.float32)
    tails = [b',"original_embedding":' + orjson.dumps(row, option=_NUMPY) for row in original]
    heads = [
        _json_fields({"category": str(c), "path": str(p)})
        for c, p in zip(store.file_category, store.files, strict=True)
    ]
    modality = orjson.dumps(store.modality)
    fh.write(b"[\n")
    for start in range(0, len(store), chunk):
        parts = []
        for row in range(start, min(start + chunk, len(store))):
            f = int(store.file_index[row])
            label = orjson.dumps(
                {
                    "effect_type": effects[store.effect_code[row]],
                    "intensity": intensities[store.intensity_code[row]],
                }
            )[1:-1]
            parts += [
                b',{"modality":' if row else b'{"modality":',
                modality + b"," + label + b"," + heads[f],
                b',"delta":' + orjson.dumps(delta[row], option=_NUMPY),
                tails[f],
                b',"augmented_embedding":' + orjson.dumps(augmented[row], option=_NUMPY),
                b"}\n",
            ]
        fh.write(b"".join(parts))
    fh.write(b"]\n")
    return len(store)
