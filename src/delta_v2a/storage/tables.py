"""Embedding tables: one variant's embeddings of one modality, as an embedding job writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from delta_v2a.storage.files import StoreError, load_npz, save_npz

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
    def of_files(cls, files: Sequence, embeddings: np.ndarray, meta: dict) -> EmbeddingTable:
        """The table of media files (anything with ``path`` and ``category``, row for row)."""
        return cls(
            paths=np.array([f.path for f in files], dtype=str),
            categories=np.array([f.category for f in files], dtype=str),
            embeddings=embeddings,
            meta=meta,
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
