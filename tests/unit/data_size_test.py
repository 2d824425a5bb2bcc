"""How much audio a run needs, said at parse time (delta_v2a.config.check_data_size): the
numbers come from the split's own rule and ``phase3.min_test_files``, never a copy of them."""

from __future__ import annotations

import pytest
from workflow_utils import ROOT

from delta_v2a.config import MIN_TEST_FILES_TO_RUN, check_data_size, load_config
from delta_v2a.phase3.dataset import split_counts, split_files

CONFIG = load_config(ROOT / "workflow/schemas/config.schema.yaml", ROOT / "config/config.yaml")


@pytest.mark.parametrize("n", [3, 4, 7, 8, 15, 47, 48, 101])
def test_split_counts_are_the_split_files_rule(n):
    """The parse-time count equals what the split job will do, for any genre layout."""
    fractions = CONFIG["phase3"]["split"]
    genres = [f"g{k % 3}" for k in range(n)]
    made = list(split_files(genres, fractions, seed=1))
    assert split_counts(n, fractions) == {s: made.count(s) for s in ("train", "val", "test")}


def test_seven_songs_are_refused_with_the_numbers():
    """The issue's case: 7 songs split 5/1/1 failed only at the phase3 job."""
    refusal, warning = check_data_size(CONFIG, 7)
    assert warning is None and refusal is not None
    assert "7 audio file(s) give 1 test file(s)" in refusal
    # 8 songs give the 2 test files training needs; 48 the 10 a verdict needs (defaults)
    assert f"needs {MIN_TEST_FILES_TO_RUN} test files (8 songs: add 1)" in refusal
    assert "a verdict needs 10 (phase3.min_test_files: 48 songs, add 41)" in refusal


def test_inconclusive_sizes_warn_and_count_from_the_config():
    refusal, warning = check_data_size(CONFIG, 15)  # the demo's 15 songs: 3 test files
    assert refusal is None and "15 audio file(s) give 3 test file(s)" in warning
    assert "INCONCLUSIVE: add 33 song(s) (48 in all)" in warning
    assert check_data_size(CONFIG, 48) == (None, None)
    # the need is read from the config: a larger min_test_files or test share moves it
    more = {**CONFIG, "phase3": {**CONFIG["phase3"], "min_test_files": 12}}  # round(0.2 * 58)
    assert "add 10 song(s) (58 in all)" in check_data_size(more, 48)[1]
    share = {**CONFIG, "phase3": {**CONFIG["phase3"], "split": {"val": 0.2, "test": 0.4}}}
    assert check_data_size(share, 25) == (None, None)  # round(0.4 * 25) = 10


def test_the_split_itself_needs_three_files_and_phase0_none():
    refusal, _ = check_data_size(CONFIG, 2, stage="split")
    assert "needs at least 3 (train, val, test)" in refusal and "Phase 0" in refusal
    assert check_data_size(CONFIG, 3, stage="split") == (None, None)
    assert check_data_size(CONFIG, 7, stage="split") == (None, None)  # Phase 1 runs on 7


def test_relative_paths_are_read_from_the_working_directory(tmp_path, monkeypatch):
    """Data roots and model folders: one rule, the working directory (Snakemake's
    --directory), and the refusal names it; a folder that exists there is found."""
    from delta_v2a.config import ConfigError, check_data_roots, check_models

    monkeypatch.chdir(tmp_path)
    cfg = {**CONFIG, "models": {**CONFIG["models"], "image": "./models/clip"}}
    with pytest.raises(ConfigError, match="working directory " + str(tmp_path.resolve())):
        check_models(cfg)
    (tmp_path / "models/clip").mkdir(parents=True)
    (tmp_path / "models/clap").mkdir(parents=True)
    check_models({**cfg, "models": {**cfg["models"], "audio": "./models/clap"}})
    with pytest.raises(ConfigError, match=r"data root 'x' does not exist \(relative paths"):
        check_data_roots({**CONFIG, "data": {"images": "x", "audio": "y"}})


def test_readme_how_much_data_table_follows_the_defaults():
    """The README's table is the defaults' numbers: recomputed here, so a new default for
    phase3.min_test_files or phase3.split fails this test until the table follows."""
    fractions, need = CONFIG["phase3"]["split"], CONFIG["phase3"]["min_test_files"]
    first = {}  # fewest songs giving k test files
    for n in range(3, 1000):
        first.setdefault(split_counts(n, fractions)["test"], n)
    train, verdict = first[MIN_TEST_FILES_TO_RUN], min(n for k, n in first.items() if k >= need)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| 3 to {train - 1} | 1 |" in readme
    assert f"| {train} to {verdict - 1} | {MIN_TEST_FILES_TO_RUN} to {need - 1} |" in readme
    assert f"| {verdict} or more | {need} or more |" in readme
    assert f"needs `phase3.min_test_files` of them (default {need})" in readme
