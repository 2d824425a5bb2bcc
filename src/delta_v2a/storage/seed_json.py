"""The seed's JSON record list, streamed: one object per delta, the embeddings' float32 bits
exact, never the whole list in memory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import BinaryIO

import numpy as np
import orjson

from delta_v2a.storage.delta_store import DeltaStore
from delta_v2a.storage.files import json_text

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _json_fields(fields: Mapping[str, str]) -> bytes:
    """``"key":"value",...`` as UTF-8 JSON, any file name exact (orjson refuses surrogates)."""
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return json_text(text)[1:-1].encode("utf-8")


class SeedJsonWriter:
    """The seed's record list, streamed: one JSON object per delta, never the whole list in
    memory (docs/methods.md §2.3).

    The embeddings are written exactly as the model produced them: orjson writes each float32
    as the shortest text that parses back to the same float32 (a test compares the bits) and a
    non-finite value (a degenerate embedding) as ``null``, JSON having no NaN; it is about 20x
    faster than formatting floats in Python. Records go out ``chunk`` at a time as UTF-8 bytes
    to ``fh``, a file opened in binary mode (plain or gzip); nothing per file is kept between
    calls, so memory is one chunk of text whatever the study's size.
    """

    def __init__(self, fh: BinaryIO, modality: str, *, chunk: int = 512) -> None:
        self.fh, self.chunk, self.n = fh, chunk, 0
        self._modality = b'{"modality":' + orjson.dumps(modality) + b","
        fh.write(b"[\n")

    def write(
        self,
        effect: str,
        intensity: str,
        files: Sequence[str],
        categories: Sequence[str],
        delta: np.ndarray,
        original: np.ndarray,
        augmented: np.ndarray,
    ) -> None:
        """Records of one variant's rows: row r is file ``files[r]`` (its original embedding
        ``original[r]``), its delta and augmented embedding."""
        label = orjson.dumps({"effect_type": str(effect), "intensity": str(intensity)})[1:-1]
        head = self._modality + label + b","
        for start in range(0, len(delta), self.chunk):
            parts = []
            for r in range(start, min(start + self.chunk, len(delta))):
                names = _json_fields({"category": str(categories[r]), "path": str(files[r])})
                parts += [
                    b"," if self.n else b"",
                    head + names,
                    b',"delta":' + orjson.dumps(delta[r], option=_NUMPY),
                    b',"original_embedding":' + orjson.dumps(original[r], option=_NUMPY),
                    b',"augmented_embedding":' + orjson.dumps(augmented[r], option=_NUMPY),
                    b"}\n",
                ]
                self.n += 1
            self.fh.write(b"".join(parts))

    def close(self) -> int:
        self.fh.write(b"]\n")
        return self.n


def write_deltas_json(
    fh: BinaryIO,
    store: DeltaStore,
    augmented: np.ndarray,
    *,
    chunk: int = 512,
) -> int:
    """A whole in-memory store as the seed's record list (:class:`SeedJsonWriter`), in row
    order; ``augmented`` is passed separately (it is not kept in the compact store)."""
    out = SeedJsonWriter(fh, store.modality, chunk=chunk)
    f32 = np.float32
    delta, original = store.delta.astype(f32, copy=False), store.original.astype(f32, copy=False)
    augmented = np.asarray(augmented, dtype=f32)
    for r in range(len(store)):  # one row at a time: labels may change from row to row
        f = int(store.file_index[r])
        out.write(
            str(store.effects[store.effect_code[r]]),
            str(store.intensities[store.intensity_code[r]]),
            [store.files[f]],
            [store.file_category[f]],
            delta[r : r + 1],
            original[f : f + 1],
            augmented[r : r + 1],
        )
    return out.close()
