"""The data folders' inventory: each file's content hash, computed once per file state.

Why content and not modification times (docs/methods.md §2.1): the manifest rule's staleness
follows this inventory, so a ``touch``, a copy-back or a restore of the same bytes must leave it
unchanged, while one changed byte must change it. Hashing every file at every parse would read
the whole data set each time Snakemake starts (and each SLURM job re-parses the Snakefile), so a
file's SHA-256 is cached under its (path, size, mtime_ns, ctime_ns): a parse over unchanged
files stats them and reads none.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path

from delta_v2a.media import MediaFile, shown_path
from delta_v2a.storage import atomic_path, read_tsv_rows

CACHE_DIR = ".snakemake/delta_v2a/file_hashes"
CACHE_HEADER = "# delta_v2a file hashes v1: path (JSON)\tsize\tmtime_ns\tctime_ns\tsha256"
INVENTORY_HEADER = "path\tsize\tsha256"
UNREADABLE = "unreadable"  # in the sha256 column: permission denied at the parse (never cached)
_SHA256 = re.compile("[0-9a-f]{64}")


class UnreadableFileError(OSError):
    """A data file cannot be stat'ed or read; the message names it and why, on one line."""


def stat_key(path: str) -> tuple[str, int]:
    """What identifies one state of a file without reading it: (cache key, size).

    The key is the cache line's first four fields, path (as a JSON string: any name, tabs
    and undecodable bytes included), size, mtime_ns and ctime_ns. ctime is in it as well as
    mtime because a tool can set mtime back (``touch -r``, ``cp -p`` over a same-length file)
    but never ctime: any write or metadata change moves it.
    """
    try:
        st = os.stat(path)
    except PermissionError as err:
        raise UnreadableFileError(
            err.errno, f"{shown_path(path)}: permission denied (cannot stat the data file)"
        ) from err
    return f"{_json_str(path)}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}", st.st_size


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


def read_cache(path: str | Path) -> dict[str, str]:
    """{state key: sha256} from the cache file; a missing, foreign or damaged file is an empty
    cache (it only costs a re-hash, and every version written is complete: see
    :func:`write_cache`). Lines are split, never parsed: a warm parse at 10^5 files costs
    about as much as the walk itself (benchmarks/inventory.py)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    if not lines or lines[0] != CACHE_HEADER:
        return {}
    out: dict[str, str] = {}
    for line in lines[1:]:
        key, _, sha = line.rpartition("\t")
        if key.count("\t") >= 3 and _SHA256.fullmatch(sha):  # a cut line is a miss, never a
            out[key] = sha  # wrong hash; a damaged key matches no file
    return out


def write_cache(path: str | Path, entries: Mapping[str, str]) -> None:
    """Replace the cache file whole (temporary file + rename).

    Why this is safe with concurrent parses (several SLURM jobs start at once): each writer
    renames a complete file into place, so a reader sees one whole version; the last writer
    wins and a lost entry is only hashed again later.
    """
    lines = [CACHE_HEADER, *(f"{key}\t{sha}" for key, sha in entries.items())]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def content_hashes(
    paths: Sequence[str], cache_file: str | Path | None, workers: int = 4
) -> tuple[list[tuple[int, str]], int]:
    """(size, SHA-256) of each file, reading only files whose state is not in the cache.

    Returns (one pair per path, in order; the number of files hashed). The cache is rewritten
    only when it changed, and holds only the files of this walk (removed files drop out).
    """
    cached = read_cache(cache_file) if cache_file else {}
    states = [stat_key(p) for p in paths]
    missing = [(p, key) for p, (key, _) in zip(paths, states, strict=True) if key not in cached]
    fresh: dict[str, str] = {}
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            hashes = pool.map(sha256_file, [p for p, _ in missing])
            fresh = {key: sha for (_, key), sha in zip(missing, hashes, strict=True)}
    entries = {key: fresh.get(key) or cached[key] for key, _ in states}
    keep = {k: h for k, h in entries.items() if h != UNREADABLE}
    if cache_file and keep != cached:
        write_cache(cache_file, keep)
    return [(size, entries[key]) for key, size in states], len(missing)


def media_inventory(files: Iterable[MediaFile], states: Sequence[tuple[int, str]]) -> str:
    """One line per file: path, size and SHA-256 of its bytes, tab-separated.

    Why a file at all: the manifest rule needs to rerun when a file is added, removed or
    changed, but listing 10^4 files as its ``input:`` makes a console line of hundreds of
    kilobytes. The workflow rewrites this text only when it differs
    (storage.write_if_changed), and names the manifest's vetted output by its digest
    (:func:`inventory_digest`), so the same bytes always map to the same output. Paths are
    written as :func:`~delta_v2a.media.shown_path` text (one line whatever the name holds) in
    csv quoting, and :func:`read_inventory` reads them back with the same rules.
    """
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(INVENTORY_HEADER.split("\t"))
    writer.writerows((f.shown, size, sha) for f, (size, sha) in zip(files, states, strict=True))
    return out.getvalue()


def inventory_of(root: str | Path, modality: str) -> str:
    """The inventory text of a data root as the workflow writes it, without a hash cache (for
    tests, benchmarks and scripts that run the manifest job outside Snakemake)."""
    from delta_v2a.media import discover

    files = discover(root, modality)
    return media_inventory(files, content_hashes([f.path for f in files], None)[0])


def inventory_digest(text: str) -> str:
    """A short name for one inventory's content (16 hex digits: 64 bits, collision-free in
    practice for the handful of data states a project goes through)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_inventory(path: str | Path) -> dict[str, str]:
    """{shown path: sha256} of an inventory file (the manifest job checks the bytes it vets).

    A file that is not an inventory of this version, or a damaged one, is one line naming it.
    """
    rows = read_tsv_rows(path, INVENTORY_HEADER.split("\t"), "an inventory")
    return {p: sha for p, _, sha in rows}


__all__ = [
    "UNREADABLE",
    "UnreadableFileError",
    "cache_path",
    "content_hashes",
    "inventory_digest",
    "inventory_of",
    "media_inventory",
    "read_cache",
    "read_inventory",
    "sha256_file",
    "stat_key",
    "write_cache",
]
