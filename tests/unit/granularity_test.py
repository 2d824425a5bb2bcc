"""Job granularity (docs/methods.md §2.2): batch-aligned file shards, and the streaming merge of
shards giving the same bits as one table per variant."""

from __future__ import annotations

import numpy as np
import pytest

from delta_v2a.extract import gather, gather_parts, shard_rows
from delta_v2a.storage import EmbeddingTable


@pytest.mark.parametrize(
    ("n", "shards", "batch", "expected"),
    [
        (10, 0, 4, [(0, 10)]),  # off: every row in one job
        (10, 2, 4, [(0, 8), (8, 10)]),  # 3 batches: 2 + 1, whole batches per shard
        (10, 3, 4, [(0, 4), (4, 8), (8, 10)]),
        (10, 4, 4, [(0, 4), (4, 8), (8, 10), (10, 10)]),  # more shards than batches: one empty
        (7, 2, 16, [(0, 7), (7, 7)]),  # one batch: the second shard is empty
        (0, 2, 4, [(0, 0), (0, 0)]),
    ],
)
def test_shards_hold_whole_batches_and_cover_every_row_once(n, shards, batch, expected):
    got = [shard_rows(n, shards, k, batch) for k in range(max(1, shards))]
    assert [(r.start, r.stop) for r in got] == expected
    rows = [i for r in got for i in r]
    assert rows == list(range(n))
    assert all(r.start % batch == 0 for r in got if len(r))


def test_a_shard_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="shard 2 of 2"):
        shard_rows(10, 2, 2, 4)


def _tables(rng, n_files=7, dim=5, n_variants=3):
    paths = np.array([f"data/images/c/{i}.png" for i in range(n_files)])
    cats = np.array(["c"] * n_files)
    orig = EmbeddingTable(paths, cats, rng.standard_normal((n_files, dim)).astype(np.float32))
    variants = [
        (e, i, EmbeddingTable(paths, cats, rng.standard_normal((n_files, dim)).astype(np.float32)))
        for e, i in [("blur", "low"), ("blur", "high"), ("contrast", "low")][:n_variants]
    ]
    return orig, variants


def _split(table: EmbeddingTable, cuts: list[int]) -> list[EmbeddingTable]:
    edges = [0, *cuts, len(table.paths)]
    return [
        EmbeddingTable(table.paths[a:b], table.categories[a:b], table.embeddings[a:b])
        for a, b in zip(edges, edges[1:], strict=False)
    ]


def test_merging_shards_gives_the_same_bits_as_whole_tables():
    orig, variants = _tables(np.random.default_rng(0))
    effects, levels = ["blur", "contrast"], ["low", "high"]
    whole, aug = gather("image", orig, variants, effects, levels, {"m": 1})
    parts = [(e, i, iter(_split(t, [4, 4]))) for e, i, t in variants]  # an empty middle shard
    merged, aug_parts = gather_parts("image", orig, parts, effects, levels, {"m": 1})
    for name in ("delta", "file_index", "effect_code", "intensity_code", "original", "files"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    assert merged.delta.tobytes() == whole.delta.tobytes()
    assert aug_parts.tobytes() == aug.tobytes()
    # the known answer: row v * F + f is variant v's file f minus the original of f
    v, f = 2, 5
    expected = variants[v][2].embeddings[f] - orig.embeddings[f]
    assert merged.delta[v * 7 + f].tobytes() == expected.tobytes()
    assert merged.effect_code[v * 7 + f] == 1 and merged.intensity_code[v * 7 + f] == 0


def test_a_missing_or_misplaced_shard_is_named():
    orig, variants = _tables(np.random.default_rng(1), n_variants=1)
    e, i, t = variants[0]
    first, second = _split(t, [3])
    with pytest.raises(ValueError, match="3 of the originals' 7 files; a shard is missing"):
        gather_parts("image", orig, [(e, i, iter([first]))], ["blur"], ["low"], {})
    with pytest.raises(ValueError, match="its files differ from the originals'"):
        gather_parts("image", orig, [(e, i, iter([second, first]))], ["blur"], ["low"], {})
