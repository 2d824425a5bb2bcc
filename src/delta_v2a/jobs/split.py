"""Rule ``split``: the audio files' train / val / test split, once for Phases 1 and 3
(docs/methods.md §6.1)."""

from __future__ import annotations

from delta_v2a.extract import read_manifest
from delta_v2a.jobs.common import Paths, PipelineError, log
from delta_v2a.settings import SplitSettings
from delta_v2a.split import make_split, write_split


def run_split(*, inputs: Paths, outputs: Paths, settings: SplitSettings) -> None:
    """Split by file, seeded, stratified by genre; the counts go to the log."""
    files = read_manifest(inputs.manifest)
    try:
        split = make_split(
            [f.path for f in files], [f.category for f in files], settings.fractions, settings.seed
        )
    except ValueError as err:
        raise PipelineError(f"phase3.split: {err}") from err
    write_split(outputs.split, split)
    log.info(
        "split of %d audio files: train %d / val %d / test %d (Phase 1 chooses on train + val)",
        len(files),
        *(split.assignment.count(k) for k in ("train", "val", "test")),
    )
