"""The data-size gate: whether the discovered audio is enough for the split and for a Phase 3
verdict, said at parse time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Phase 3's training needs test files from at least this many audio files: the shuffled-
#: audio baseline and the intervals over test files need two. The one place of that rule:
#: the experiment (delta_v2a.phase3.experiment.test_rows) refuses by it too.
MIN_TEST_FILES_TO_RUN = 2


def check_data_size(
    config: Mapping[str, Any], n_audio: int, stage: str = "phase3"
) -> tuple[str | None, str | None]:
    """(refusal, warning) for ``n_audio`` discovered audio files before ``stage`` ("split": the
    split Phases 1 and 3 read; "phase3": its training and verdict), from the split's own rule
    (delta_v2a.phase3.dataset.split_counts, fractions ``phase3.split``) and the verdict's size
    (``phase3.min_test_files``). Why: too few songs otherwise fail at the last job (hours later
    with real models) or give an INCONCLUSIVE verdict nobody was told to expect.

    Refusal: the split or Phase 3's training cannot run at all. Warning: it runs, but the test
    split is smaller than a verdict needs. Each names the numbers and how many songs to add
    (counted from the discovered files; files that fail vetting count less).
    """
    from delta_v2a.phase3.dataset import split_counts

    if n_audio < 3:
        return (
            f"data.audio: {n_audio} audio file(s): the split that Phases 1 and 3 read needs at "
            "least 3 (train, val, test); Phase 0 (the `sensitivity` and `linearity` targets) "
            "runs with fewer",
            None,
        )
    if stage == "split":
        return None, None
    fractions = config["phase3"]["split"]
    need = int(config["phase3"]["min_test_files"])

    def test_files(n: int) -> int:
        return split_counts(n, fractions)["test"]

    def songs_for(k: int) -> int:
        n = n_audio
        while test_files(n) < k:
            n += 1
        return n

    have = test_files(n_audio)
    gives = (
        f"{n_audio} audio file(s) give {have} test file(s) (split {fractions['val']:g} val / "
        f"{fractions['test']:g} test by file)"
    )
    verdict = songs_for(need)
    if have < MIN_TEST_FILES_TO_RUN:
        run = songs_for(MIN_TEST_FILES_TO_RUN)
        return (
            f"data.audio: too little audio for Phase 3: {gives}; its training needs "
            f"{MIN_TEST_FILES_TO_RUN} test files ({run} songs: add {run - n_audio}) and a verdict "
            f"needs {need} (phase3.min_test_files: {verdict} songs, add {verdict - n_audio}); "
            "Phase 0 and 1 alone run with fewer (e.g. the `phase1` target)",
            None,
        )
    if have < need:
        return None, (
            f"data.audio: {gives}; a Phase 3 verdict needs {need} (phase3.min_test_files), so it "
            f"will say INCONCLUSIVE: add {verdict - n_audio} song(s) ({verdict} in all) for one"
        )
    return None, None
