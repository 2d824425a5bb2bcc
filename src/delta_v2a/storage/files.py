"""Files written whole and safely: atomic writes, JSON (any file name exact), and the npz
envelope (named arrays plus a JSON meta) that embedding tables use.

Every writer goes through :func:`atomic_path`, so a job killed mid-write leaves no
half-written file that a later run could trust. Arrays are stored with ``np.savez`` and read
with ``allow_pickle=False``: strings are fixed-width unicode arrays, never pickled objects.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def read_tsv_rows(path: str | Path, header: Sequence[str], what: str) -> list[list[str]]:
    """The rows below ``header`` of a csv-quoted, tab-separated file the workflow wrote (a
    manifest, an inventory), each with one field per header column; a file that is not UTF-8,
    has another header or a short row is one line naming it."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except UnicodeDecodeError as err:
        raise StoreError(f"{path}: not {what} (not UTF-8: {err}); delete it and rerun") from err
    if not rows or tuple(rows[0]) != tuple(header):
        raise StoreError(f"{path}: not {what} (header {rows[:1]}); delete it and rerun")
    bad = next((n for n, row in enumerate(rows[1:], 2) if len(row) != len(header)), None)
    if bad is not None:
        raise StoreError(
            f"{path}: line {bad} does not hold {', '.join(header)} (a damaged file or one of "
            "an older version); delete it and rerun"
        )
    return rows[1:]


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
