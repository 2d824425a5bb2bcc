"""The data folders' inventory: each file's content hash, computed once per file state.

Why content and not modification times (docs/methods.md §2.1): the manifest rule's staleness
follows this inventory, so a ``touch``, a copy-back or a restore of the same bytes must leave it
unchanged, while one changed byte must change it. Hashing every file at every parse would read
the whole data set each time Snakemake starts (and each SLURM job re-parses the Snakefile), so a
file's SHA-256 is cached under its (path, size, mtime_ns, ctime_ns): a parse over unchanged
files stats them and reads none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from delta_v2a.media import MediaFile, shown_path
from delta_v2a.storage import atomic_path

CACHE_DIR = ".snakemake/delta_v2a/file_hashes"
CACHE_HEADER = "# delta_v2a file hashes v1: path (JSON)\tsize\tmtime_ns\tctime_ns\tsha256"
INVENTORY_HEADER = "path\tsize\tsha256"
UNREADABLE = "unreadable"  # in the sha256 column: permission denied at the parse (never cached)
StatKey = tuple[str, int, int, int]
_SHA256 = re.compile("[0-9a-f]{64}")


class UnreadableFileError(OSError):
    """A data file cannot be stat'ed or read; the message names it and why, on one line."""


def stat_key(path: str) -> StatKey:
    """What identifies one state of a file without reading it.

    ctime is in the key as well as mtime because a tool can set mtime back (``touch -r``,
    ``cp -p`` over a same-length file) but never ctime: any write or metadata change moves it.
    """
    try:
        st = os.stat(path)
    except PermissionError as err:
        raise UnreadableFileError(
            err.errno, f"{shown_path(path)}: permission denied (cannot stat the data file)"
        ) from err
    return (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: str) -> str:
    """The SHA-256 of a file's bytes, or :data:`UNREADABLE` for a file the user cannot read.

    Why not an error: an unreadable file is a bad file like any other; the manifest job skips
    it or stops on it (``on_bad_file``) with its reason, and the walk goes on.
    """
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except PermissionError:
        return UNREADABLE


def cache_path(root: str | Path, modality: str, base: str | Path = CACHE_DIR) -> Path:
    """One cache file per (data root, modality), so switching configs keeps each one warm.

    Under ``.snakemake/`` (the working directory's Snakemake state): it survives
    ``rm -rf results`` and ``--delete-all-output`` (a cache is worth keeping across those) and
    no rule declares it, so it can never make a job stale.
    """
    digest = hashlib.sha256(os.fsencode(os.path.abspath(root))).hexdigest()[:16]
    return Path(base) / f"{modality}-{digest}.tsv"


def read_cache(path: str | Path) -> dict[StatKey, str]:
    """The cached hashes; a missing, foreign or damaged file is an empty cache (it only costs
    a re-hash, and every version written is complete: see :func:`write_cache`)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    if not lines or lines[0] != CACHE_HEADER:
        return {}
    out: dict[StatKey, str] = {}
    for line in lines[1:]:
        fields = line.split("\t")
        try:
            name, size, mtime, ctime, sha = fields
            key = (json.loads(name), int(size), int(mtime), int(ctime))
        except (ValueError, TypeError):
            continue  # a damaged line is a miss, never a wrong hash
        if isinstance(key[0], str) and _SHA256.fullmatch(sha):
            out[key] = sha
    return out


def write_cache(path: str | Path, entries: Mapping[StatKey, str]) -> None:
    """Replace the cache file whole (temporary file + rename).

    Why this is safe with concurrent parses (several SLURM jobs start at once): each writer
    renames a complete file into place, so a reader sees one whole version; the last writer
    wins and a lost entry is only hashed again later.
    """
    lines = [CACHE_HEADER]
    lines += [f"{json.dumps(p)}\t{s}\t{m}\t{c}\t{h}" for (p, s, m, c), h in entries.items()]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def content_hashes(
    paths: Sequence[str], cache_file: str | Path | None, workers: int = 4
) -> tuple[list[tuple[int, str]], int]:
    """(size, SHA-256) of each file, reading only files whose state is not in the cache.

    Returns (one pair per path, in order; the number of files hashed). The cache is rewritten only
    when it changed, and holds only the files of this walk (removed files drop out).
    """
    cached = read_cache(cache_file) if cache_file else {}
    keys = [stat_key(p) for p in paths]
    missing = [k for k in keys if k not in cached]
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            fresh = dict(zip(missing, pool.map(sha256_file, [k[0] for k in missing]), strict=True))
    else:
        fresh = {}
    entries = {k: fresh.get(k) or cached[k] for k in keys}
    keep = {k: h for k, h in entries.items() if h != UNREADABLE}
    if cache_file and keep != cached:
        write_cache(cache_file, keep)
    return [(k[1], entries[k]) for k in keys], len(missing)


def media_inventory(files: Iterable[MediaFile], states: Sequence[tuple[int, str]]) -> str:
    """One line per file: path, size and SHA-256 of its bytes, tab-separated.

    Why a file at all: the manifest rule needs to rerun when a file is added, removed or
    changed, but listing 10^4 files as its ``input:`` makes a console line of hundreds of
    kilobytes. The workflow rewrites this text only when it differs
    (storage.write_if_changed), and names the manifest's vetted output by its digest
    (:func:`inventory_digest`), so the same bytes always map to the same output.
    """
    lines = [INVENTORY_HEADER]
    for f, (size, sha) in zip(files, states, strict=True):
        lines.append(f"{f.shown}\t{size}\t{sha}")  # names need not be UTF-8
    return "\n".join(lines) + "\n"


def inventory_digest(text: str) -> str:
    """A short name for one inventory's content (16 hex digits: 64 bits, collision-free in
    practice for the handful of data states a project goes through)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_inventory(path: str | Path) -> dict[str, str]:
    """{shown path: sha256} of an inventory file (the manifest job checks the bytes it vets)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != INVENTORY_HEADER:
        raise ValueError(f"{path}: not an inventory (header {lines[:1]}); delete it and rerun")
    return {p: sha for p, _, sha in (line.split("\t") for line in lines[1:])}


__all__ = [
    "UNREADABLE",
    "UnreadableFileError",
    "cache_path",
    "content_hashes",
    "inventory_digest",
    "media_inventory",
    "read_cache",
    "read_inventory",
    "sha256_file",
    "stat_key",
    "write_cache",
]
