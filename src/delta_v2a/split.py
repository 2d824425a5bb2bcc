"""The split of audio files into train / val / test, decided once for the whole study
(docs/methods.md §6.1): Phase 1 chooses pairs on the train and validation files only, Phase 3
trains on train, chooses on validation and reports on test. One writer, one reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from delta_v2a.phase3.dataset import SPLITS, split_files
from delta_v2a.storage import StoreError, read_json, write_json

SPLIT_VERSION = 1


@dataclass(frozen=True)
class Split:
    """Each audio file's split, in manifest order."""

    paths: tuple[str, ...]
    assignment: tuple[str, ...]  # "train" | "val" | "test" per path
    fractions: dict[str, float]
    seed: int

    def files(self, *names: str) -> list[str]:
        """The files of the named splits, in manifest order."""
        return [p for p, s in zip(self.paths, self.assignment, strict=True) if s in names]

    def of(self, paths: Sequence[str], where: str) -> np.ndarray:
        """The split of each of ``paths`` (each must be in this split)."""
        known = dict(zip(self.paths, self.assignment, strict=True))
        missing = [p for p in paths if p not in known]
        if missing:
            raise ValueError(
                f"{where}: {len(missing)} file(s) not in the split (first: {missing[0]}); "
                "the split and the manifest are from different runs: rerun the split rule"
            )
        return np.array([known[p] for p in paths], dtype=str)


def make_split(
    paths: Sequence[str], categories: Sequence[str], fractions: Mapping[str, float], seed: int
) -> Split:
    """Each file's split by :func:`~delta_v2a.phase3.dataset.split_files`.

    Why not sklearn's ``train_test_split(..., stratify=genres)``: it refuses a test or
    validation split smaller than the number of genres (6 test files of 8 genres is a study
    size the workflow allows), and ``GroupShuffleSplit`` holds out whole genres, another
    design; the study's interleaved per-genre cut draws each split from as many genres as its
    size allows, and keeps every file where earlier runs put it.
    """
    assignment = split_files(categories, fractions, seed)
    return Split(tuple(map(str, paths)), tuple(map(str, assignment)), dict(fractions), seed)


def write_split(path: str | Path, split: Split) -> None:
    write_json(
        path,
        {
            "version": SPLIT_VERSION,
            "fractions": split.fractions,
            "seed": split.seed,
            "counts": {k: split.assignment.count(k) for k in SPLITS},
            "files": {k: split.files(k) for k in SPLITS},
        },
    )


def read_split(path: str | Path) -> Split:
    """The split file, or a one-line ValueError naming it and what is wrong."""
    doc = read_json(path)
    version = doc.get("version") if isinstance(doc, Mapping) else None
    if version != SPLIT_VERSION:
        raise StoreError(
            f"{path}: split format {version!r}, this version of delta-v2a reads format "
            f"{SPLIT_VERSION}; delete it and rerun (or use the version that wrote it)"
        )
    try:
        paths, assignment = [], []
        for name in SPLITS:
            files = [str(p) for p in doc["files"][name]]
            paths += files
            assignment += [name] * len(files)
        return Split(tuple(paths), tuple(assignment), dict(doc["fractions"]), int(doc["seed"]))
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(
            f"{path}: split file is damaged or incomplete ({type(err).__name__}: {err}); "
            "delete it and rerun"
        ) from err
