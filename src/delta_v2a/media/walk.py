"""Discovery: the files under a data root that the decoders read, in a stable order."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from delta_v2a.media.files import ROOT_KEYS, MediaFile, shown_path
from delta_v2a.media.formats import MODALITY_EXTENSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Walk:
    """What one walk of a data root found: the media, and the files it leaves out by name."""

    files: list[MediaFile]  # media of the modality, sorted by (category, path)
    others: list[MediaFile]  # files the decoders do not read (by extension), sorted by path
    at_root: list[str]  # media directly in the root (no category folder)


def discover(root: str | Path, modality: str) -> list[MediaFile]:
    """The media files of :func:`walk_root`, sorted by (category, path)."""
    return walk_root(root, modality).files


def walk_root(root: str | Path, modality: str) -> Walk:
    """Find ``root/<category>/**/*.<ext>`` files (``ext``: :mod:`delta_v2a.media.formats`).

    Extensions match case-insensitively; hidden files and folders (leading ".") and files
    directly in ``root`` (no category) are skipped. Symlinks are followed; a link back to one of
    its own ancestors is skipped so the walk always ends. Directories are walked in sorted
    order so the result is the same on every filesystem. Unreadable folders raise OSError
    rather than silently shrinking the data set.
    """
    if modality not in MODALITY_EXTENSIONS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_EXTENSIONS)}, not {modality!r}")
    root_path = Path(root)
    if not root_path.is_dir():
        what = "is not a directory" if root_path.exists() else "does not exist"
        raise FileNotFoundError(f"{ROOT_KEYS[modality]} root '{root}' {what}")
    extensions = MODALITY_EXTENSIONS[modality]
    media = tuple({e for exts in MODALITY_EXTENSIONS.values() for e in exts})
    found: list[MediaFile] = []
    others: list[MediaFile] = []
    at_root: list[str] = []
    for path, parts in _walk(root_path, (), frozenset({_dir_key(root_path)})):
        if not path.name.lower().endswith(extensions):
            # Media of the other modality (one folder for both) are not "other" files.
            if not path.name.lower().endswith(media):
                category = shown_path(parts[0]) if len(parts) > 1 else ""
                others.append(MediaFile(path.as_posix(), category, modality))
            continue
        if len(parts) == 1:
            at_root.append(path.name)
            continue
        found.append(MediaFile(path.as_posix(), shown_path(parts[0]), modality))
    if at_root:
        log.warning(
            "%s: ignoring %d file(s) directly in the root (no category folder): %s",
            root,
            len(at_root),
            ", ".join(shown_path(n) for n in sorted(at_root)[:5])
            + (" ..." if len(at_root) > 5 else ""),
        )
    found.sort(key=lambda f: (f.category, f.path))
    return Walk(found, others, at_root)


def _dir_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino)


def _walk(
    directory: Path, parts: tuple[str, ...], ancestors: frozenset[tuple[int, int]]
) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Yield (file path, path parts below the root) depth-first in sorted name order."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror or exc
        raise OSError(
            exc.errno,
            f"cannot list folder '{shown_path(directory.as_posix())}': {why}; give the "
            "workflow's user read and execute permission on it, or move it out of the data root",
        ) from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = directory / entry.name
        try:
            st = os.stat(path)  # follows symlinks
        except OSError:
            log.warning("skipping broken link or unreadable entry: %s", shown_path(str(path)))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                log.warning("skipping symlink loop: %s", shown_path(path.as_posix()))
                continue
            yield from _walk(path, (*parts, entry.name), ancestors | {key})
        elif stat.S_ISREG(st.st_mode):
            yield path, (*parts, entry.name)
