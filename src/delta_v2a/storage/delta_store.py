"""The compact delta store (version 2, docs/methods.md §2.3): every delta record of one
modality, columnar, in an uncompressed npz written one variant at a time
(:class:`DeltaStoreWriter`) and read by row ranges (:class:`StoreReader`), so no job after
extraction needs every variant of a modality in memory at once."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from delta_v2a.storage.files import StoreError, atomic_path

#: 2: members stored uncompressed and read by row ranges; rows variant-major (every variant's
#: F files in manifest order, then the next variant), written one variant at a time.
STORE_VERSION = 2


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
        """Write the store (any row order) through the same writer the deltas job streams to."""
        meta = dict(self.meta)
        with DeltaStoreWriter(
            path,
            self.modality,
            files=self.files,
            file_category=self.file_category,
            original=self.original,
            effects=self.effects,
            intensities=self.intensities,
            n_rows=len(self),
        ) as out:
            out.add(self.delta, self.file_index, self.effect_code, self.intensity_code)
            out.meta = meta

    @classmethod
    def load(cls, path: str | Path) -> DeltaStore:
        """The whole store in memory (every row); :func:`open_store` reads parts of it."""
        return open_store(path).store()


DELTA_COLUMNS = ("delta", "file_index", "effect_code", "intensity_code")
FILE_COLUMNS = ("files", "file_category", "original", "effects", "intensities")
_ROW_DTYPES = {"file_index": np.int64, "effect_code": np.int16, "intensity_code": np.int16}
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip member's local file header


def _member_layout(path: Path) -> dict[str, tuple[int, np.dtype, tuple[int, ...]]]:
    """{member: (byte offset of its data, dtype, shape)} of an uncompressed npz, read from the
    zip directory and each member's .npy header (nothing is read into memory)."""
    try:
        return _read_member_layout(path)
    except StoreError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error) as err:  # cut or damaged
        raise StoreError(
            f"{path}: cannot read array store ({type(err).__name__}: {err}; a damaged or "
            "interrupted write); delete it and rerun"
        ) from err


def _read_member_layout(path: Path) -> dict[str, tuple[int, np.dtype, tuple[int, ...]]]:
    layout = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise StoreError(f"{path}: member {info.filename} is compressed")
            fh.seek(info.header_offset)
            head = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
            if head[0] != b"PK\x03\x04":
                raise StoreError(f"{path}: broken zip member {info.filename}")
            fh.seek(info.header_offset + _LOCAL_HEADER.size + head[9] + head[10])
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            if fortran or dtype.hasobject:
                raise StoreError(f"{path}: member {info.filename} is not a plain C array")
            end = fh.tell() + int(np.prod(shape)) * dtype.itemsize
            if end > info.header_offset + info.file_size + 4096 + len(info.filename) * 2:
                raise StoreError(f"{path}: member {info.filename} is cut short")
            layout[info.filename.removesuffix(".npy")] = (fh.tell(), dtype, tuple(shape))
    return layout


class StoreReader:
    """A delta store on disk, read in parts: the file columns and row codes are small, the
    deltas are read by row ranges (``os.pread``, no memory map, so a read costs exactly the
    rows asked for and nothing stays resident after them)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.layout = _member_layout(self.path)
        except FileNotFoundError:
            raise
        except StoreError:
            raise
        except Exception as err:  # zipfile.BadZipFile, ValueError (bad .npy header), OSError
            raise StoreError(
                f"{path}: cannot read array store ({err}); delete it and rerun"
            ) from err
        missing = [k for k in (*DELTA_COLUMNS, *FILE_COLUMNS, "meta") if k not in self.layout]
        if missing:
            raise StoreError(
                f"{path}: array store lacks {missing}; it was written by another version"
            )
        meta = json.loads(str(self.read("meta")))
        if meta.get("store_version") != STORE_VERSION or "modality" not in meta:
            raise StoreError(
                f"{path}: delta store version {meta.get('store_version')!r}, this version of "
                f"delta-v2a reads version {STORE_VERSION}; delete it and rerun the deltas rule "
                "(or use the version that wrote it)"
            )
        self.modality = str(meta.pop("modality"))
        meta.pop("store_version")
        self.meta = meta
        self.n_rows, self.dim = self.layout["delta"][2]
        shapes = {k: self.layout[k][2] for k in (*DELTA_COLUMNS, "files", "original")}
        if any(shapes[k] != (self.n_rows,) for k in DELTA_COLUMNS[1:]) or shapes["original"] != (
            shapes["files"][0],
            self.dim,
        ):
            raise StoreError(f"{path}: inconsistent array shapes; delete it and rerun")

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of one member (all of it by default), as a new array."""
        offset, dtype, shape = self.layout[name]
        n = shape[0] if shape else 1
        stop = n if stop is None else min(stop, n)
        start = min(max(0, start), stop)
        row = int(np.prod(shape[1:])) * dtype.itemsize if shape else dtype.itemsize
        out = np.empty((stop - start, *shape[1:]) if shape else (), dtype=dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8)) if out.size else memoryview(b"")
        with open(self.path, "rb") as fh:
            got = os.preadv(fh.fileno(), [buf], offset + start * row) if out.size else 0
        if got != out.nbytes:
            raise StoreError(f"{self.path}: member {name} is cut short; delete it and rerun")
        return out

    def rows(self, index: np.ndarray, *, block: int = 65536) -> np.ndarray:
        """The deltas at sorted row ``index``: read block by block over the span they cover."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((index.size, self.dim), dtype=np.float32)
        done = 0
        while done < index.size:
            lo = int(index[done])
            hi = min(lo + block, self.n_rows)
            take = int(np.searchsorted(index, hi, side="left")) - done
            out[done : done + take] = self.read("delta", lo, hi)[index[done : done + take] - lo]
            done += take
        return out

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's effect and intensity code (2 bytes a row each)."""
        return self.read("effect_code"), self.read("intensity_code")

    def store(self, index: np.ndarray | None = None, *, originals: bool = True) -> DeltaStore:
        """A :class:`DeltaStore` of the rows at sorted ``index`` (every row when None), with
        every file column (the originals, paths, categories) whole; ``originals=False`` leaves
        the originals out (an empty array: a reader that needs only deltas saves one
        variant's worth of memory)."""
        if index is None:
            cols = {k: self.read(k) for k in DELTA_COLUMNS}
        else:
            index = np.asarray(index, dtype=np.int64)
            cols = {k: self.read(k)[index] for k in DELTA_COLUMNS[1:]}
            cols["delta"] = self.rows(index)
        files = {k: self.read(k) for k in FILE_COLUMNS if originals or k != "original"}
        files.setdefault("original", np.zeros((0, self.dim), dtype=np.float32))
        return DeltaStore(modality=self.modality, meta=dict(self.meta), **cols, **files)

    def variant_rows(self) -> list[tuple[int, int, np.ndarray]]:
        """[(effect code, intensity code, sorted row index)] per variant, in store order."""
        eff, inten = self.codes()
        key = eff.astype(np.int64) * (int(inten.max(initial=0)) + 1) + inten
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        return [
            (int(eff[first[g]]), int(inten[first[g]]), np.flatnonzero(inverse == g)) for g in order
        ]


def open_store(path: str | Path) -> StoreReader:
    """The one reader of delta stores: checks the version and shapes, reads nothing large."""
    return StoreReader(path)


class DeltaStoreWriter:
    """Write a delta store a chunk of rows at a time (docs/methods.md §2.3).

    Why: at 10^6 files × 12 variants the deltas are 37 GB of float32 (image); the deltas job
    writes each variant's rows as it computes them, so its memory is the originals plus one
    variant's part. ``n_rows`` is fixed up front (the .npy header carries the shape); the row
    codes are kept (12 bytes a row) and written after the deltas, then ``meta`` (settable until
    the writer closes). Atomic like every writer here.
    """

    def __init__(
        self,
        path: str | Path,
        modality: str,
        *,
        files: np.ndarray,
        file_category: np.ndarray,
        original: np.ndarray,
        effects: Sequence[str],
        intensities: Sequence[str],
        n_rows: int,
    ) -> None:
        self.path, self.modality, self.n_rows = Path(path), modality, int(n_rows)
        self.dim = int(np.asarray(original).shape[1])
        self._files = {
            "files": np.asarray(files, dtype=str),
            "file_category": np.asarray(file_category, dtype=str),
            "original": np.asarray(original, dtype=np.float32),
            "effects": np.asarray(list(effects), dtype=str),
            "intensities": np.asarray(list(intensities), dtype=str),
        }
        self._codes: dict[str, list] = {k: [] for k in _ROW_DTYPES}
        self.meta: dict = {}
        self.written = 0

    def __enter__(self) -> DeltaStoreWriter:
        self._atomic = atomic_path(self.path, ".npz")
        tmp = self._atomic.__enter__()
        self._zip = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        self._delta = self._zip.open("delta.npy", "w", force_zip64=True)
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.n_rows, self.dim)}
        np.lib.format.write_array_header_2_0(self._delta, header)
        return self

    def add(self, delta, file_index, effect_code, intensity_code) -> None:
        """Append rows: their deltas (rows × dim) and each row's file, effect and intensity.

        A code may be one number for every row and ``file_index`` a ``range``: they are kept
        as such (a few bytes per call), not as a row each."""
        delta = np.ascontiguousarray(delta, dtype="<f4")
        if delta.ndim != 2 or delta.shape[1] != self.dim:
            raise ValueError(f"{self.path}: rows of shape {delta.shape}, dim {self.dim}")
        if self.written + delta.shape[0] > self.n_rows:
            raise ValueError(f"{self.path}: more than the {self.n_rows} rows declared")
        n = delta.shape[0]
        for key, col in zip(_ROW_DTYPES, (file_index, effect_code, intensity_code), strict=True):
            if isinstance(col, range):
                if len(col) != n:
                    raise ValueError(f"{self.path}: {key} of {len(col)} rows for {n}")
                self._codes[key].append(col)
            elif np.ndim(col) == 0:
                self._codes[key].append((int(col), n))
            else:
                col = np.asarray(col, dtype=_ROW_DTYPES[key])
                if col.shape != (n,):
                    raise ValueError(f"{self.path}: {key} of shape {col.shape} for {n} rows")
                self._codes[key].append(col.copy())
        self._delta.write(memoryview(delta.reshape(-1).view(np.uint8)))
        self.written += delta.shape[0]

    def __exit__(self, kind, value, tb) -> None:
        try:
            self._delta.close()
            if kind is None:
                if self.written != self.n_rows:
                    raise ValueError(f"{self.path}: {self.written} of {self.n_rows} rows written")
                for key in _ROW_DTYPES:
                    self._code_member(key, self._codes[key])
                for key, arr in self._files.items():
                    self._member(key, arr)
                meta = {**self.meta, "modality": self.modality, "store_version": STORE_VERSION}
                self._member("meta", np.array(json.dumps(meta, sort_keys=True, allow_nan=False)))
        finally:
            self._zip.close()
            self._atomic.__exit__(kind, value, tb)

    def _code_member(self, key: str, parts: list) -> None:
        """One row column, written part by part (a constant or range expanded per part)."""
        dtype = np.dtype(_ROW_DTYPES[key]).newbyteorder("<")
        header = {"descr": dtype.str, "fortran_order": False, "shape": (self.n_rows,)}
        with self._zip.open(f"{key}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_2_0(fh, header)
            for part in parts:
                if isinstance(part, range):
                    part = np.arange(part.start, part.stop, part.step)
                elif isinstance(part, tuple):
                    part = np.full(part[1], part[0])
                fh.write(np.ascontiguousarray(part, dtype=dtype).tobytes())

    def _member(self, name: str, arr: np.ndarray) -> None:
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asarray(arr, order="C"), allow_pickle=False)
