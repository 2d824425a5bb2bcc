"""Stores round-trip exactly, fail loudly when corrupt, and never half-exist."""

from __future__ import annotations

import io
import json
import os
import re

import numpy as np
import pytest
from seed_spec import SEED_RECORD_KEYS

from delta_v2a.storage import (
    DeltaStore,
    EmbeddingTable,
    StoreError,
    atomic_path,
    write_deltas_json,
    write_if_changed,
)


def make_store(rng, n_files=3, dim=5):
    effects, intensities = np.array(["blur", "contrast"]), np.array(["low", "high"])
    n = n_files * 4
    return DeltaStore(
        modality="image",
        delta=rng.standard_normal((n, dim)).astype(np.float32),
        file_index=np.tile(np.arange(n_files), 4),
        effect_code=np.repeat([0, 0, 1, 1], n_files).astype(np.int16),
        intensity_code=np.repeat([0, 1, 0, 1], n_files).astype(np.int16),
        files=np.array(["a/x y.png", "b/ü.jpg", "c/z.png"][:n_files]),
        file_category=np.array(["a", "b", "c"][:n_files]),
        original=rng.standard_normal((n_files, dim)).astype(np.float32),
        effects=effects,
        intensities=intensities,
        meta={"model": {"name_or_path": "tiny"}},
    )


def test_delta_store_round_trip(tmp_path):
    store = make_store(np.random.default_rng(0))
    store.save(tmp_path / "s.npz")
    back = DeltaStore.load(tmp_path / "s.npz")
    for key in ("delta", "file_index", "effect_code", "intensity_code", "original"):
        np.testing.assert_array_equal(getattr(back, key), getattr(store, key))
    assert back.meta == store.meta and back.modality == "image"
    assert list(back.category[:3]) == ["a", "b", "c"]
    assert list(back.effect[[0, -1]]) == ["blur", "contrast"]


def test_embedding_table_round_trip(tmp_path):
    t = EmbeddingTable(
        np.array(["p1", "p2"]), np.array(["c", "c"]), np.eye(2, dtype=np.float32), {"effect": None}
    )
    t.save(tmp_path / "t.npz")
    back = EmbeddingTable.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.embeddings, t.embeddings)
    assert back.meta == {"effect": None}


def test_corrupt_and_foreign_stores_name_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(StoreError, match="bad.npz"):
        DeltaStore.load(bad)
    store = make_store(np.random.default_rng(1))
    store.save(tmp_path / "ok.npz")
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StoreError, match="cut.npz"):
        DeltaStore.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(StoreError, match="lacks"):
        DeltaStore.load(tmp_path / "other.npz")


def test_pickled_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "p.npz", delta=np.array([{"evil": 1}], dtype=object), meta="{}")
    with pytest.raises(StoreError, match="p.npz"):
        DeltaStore.load(tmp_path / "p.npz")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"


def test_json_records_are_the_seeds_and_float32_exact():
    rng = np.random.default_rng(2)
    store = make_store(rng)
    aug = store.original[store.file_index] + store.delta
    store.delta[1, 2] = np.nan
    fh = io.BytesIO()
    n = write_deltas_json(fh, store, aug)
    records = json.loads(fh.getvalue())
    assert n == len(records) == 12
    assert all(set(r) == SEED_RECORD_KEYS for r in records)
    r0 = records[0]
    assert (r0["effect_type"], r0["intensity"], r0["category"], r0["path"]) == (
        "blur",
        "low",
        "a",
        "a/x y.png",
    )
    np.testing.assert_array_equal(np.float32(r0["delta"]), store.delta[0])
    np.testing.assert_array_equal(np.float32(records[5]["augmented_embedding"]), aug[5])
    assert records[1]["delta"][2] is None  # NaN is written as null, never as invalid JSON
    assert records[4]["path"] == "b/ü.jpg"


def test_json_float32_round_trip_is_bit_exact_at_768d():
    """Parse the seed JSON back and compare bits: extremes, subnormals, -0.0 and random rows."""
    rng = np.random.default_rng(7)
    store = make_store(rng, n_files=3, dim=768)
    special = np.array(
        [np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45, -0.0, 1 / 3, -2.5e-38],
        dtype=np.float32,
    )
    store.delta[0, : len(special)] = special
    store.delta[1:] = rng.standard_normal(store.delta[1:].shape).astype(np.float32) * 1e-3
    aug = (store.original[store.file_index] + store.delta).astype(np.float32)
    fh = io.BytesIO()
    write_deltas_json(fh, store, aug, chunk=5)  # chunks that do not divide the record count
    records = json.loads(fh.getvalue())
    assert len(records) == len(store)
    for row, rec in enumerate(records):
        for key, want in (
            ("delta", store.delta[row]),
            ("original_embedding", store.original[store.file_index[row]]),
            ("augmented_embedding", aug[row]),
        ):
            got = np.asarray(rec[key], dtype=np.float64).astype(np.float32)
            assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist(), (row, key)


def test_write_if_changed_keeps_the_mtime_of_identical_content(tmp_path):
    path = tmp_path / "inv" / "image.inventory.tsv"
    assert write_if_changed(path, "a\n") is True
    stamp = path.stat().st_mtime_ns
    assert write_if_changed(path, "a\n") is False
    assert path.stat().st_mtime_ns == stamp
    assert write_if_changed(path, "b\n") is True and path.read_text() == "b\n"


def test_artifacts_of_another_version_or_a_damaged_run_are_one_line_naming_the_file(tmp_path):
    """Issue 37.4: each message names the file and what to do, on one line."""
    from delta_v2a.artifacts.health import HealthReport
    from delta_v2a.split import read_split
    from delta_v2a.storage import TABLE_META

    def refused(call, *words):
        with pytest.raises(StoreError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and all(w in text for w in words), text
        return text

    t = EmbeddingTable(np.array(["a"]), np.array(["c"]), np.zeros((1, 2), np.float32))
    t.save(tmp_path / "t.npz")  # an older layout: no meta the extraction jobs read
    refused(lambda: EmbeddingTable.load(tmp_path / "t.npz", TABLE_META), "t.npz", "lacks", "delete")
    np.savez(tmp_path / "shapes.npz", paths=np.array(["a", "b"]), categories=np.array(["c"]),
             embeddings=np.zeros((2, 2)), meta="{}")  # fmt: skip
    refused(lambda: EmbeddingTable.load(tmp_path / "shapes.npz"), "shapes.npz", "shapes")
    raw = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[:-40])
    refused(lambda: EmbeddingTable.load(tmp_path / "cut.npz"), "cut.npz", "delete it and rerun")
    store = make_store(np.random.default_rng(2))
    store.meta["store_version"] = 0
    store.save(tmp_path / "s.npz")  # save() writes the current version: rewrite the meta
    with np.load(tmp_path / "s.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = np.array(json.dumps({"modality": "audio", "store_version": 0}))
    np.savez(tmp_path / "old.npz", **arrays)
    refused(
        lambda: DeltaStore.load(tmp_path / "old.npz"), "old.npz", "version 0", "reads version 2"
    )
    (tmp_path / "cut.json").write_text('{"version": 1, "files": {"train": ["a"')
    refused(lambda: read_split(tmp_path / "cut.json"), "cut.json", "not valid JSON", "delete")
    (tmp_path / "split.json").write_text('{"version": 0}')
    refused(lambda: read_split(tmp_path / "split.json"), "split.json", "format 0", "reads format 1")
    (tmp_path / "split.json").write_text('{"version": 1, "files": {"train": []}}')
    refused(lambda: read_split(tmp_path / "split.json"), "split.json", "damaged or incomplete")
    (tmp_path / "health.json").write_text('{"model": {}, "passed": true}')  # untyped, old
    refused(lambda: HealthReport.read(tmp_path / "health.json"), "health.json: not a model_health")


def test_json_and_the_seed_records_carry_any_file_name_exactly(tmp_path):
    """A name that is not UTF-8 (lone surrogates in Python) is written as its escape and read
    back to the same str, so os.fsencode gives the name's bytes."""
    from delta_v2a.storage import read_json, write_json

    odd = 'data/x/caf\udce9 \U0001f3b5\n"q".png'
    write_json(tmp_path / "a.json", {"files": [odd]})
    (tmp_path / "a.json").read_text(encoding="utf-8")  # valid UTF-8
    assert read_json(tmp_path / "a.json") == {"files": [odd]}
    store = make_store(np.random.default_rng(3), n_files=2)
    store.files = np.array([odd, "plain.png"])
    buf = io.BytesIO()
    write_deltas_json(buf, store, store.delta)
    records = json.loads(buf.getvalue().decode("utf-8"))
    assert {os.fsencode(r["path"]) for r in records} == {
        b'data/x/caf\xe9 \xf0\x9f\x8e\xb5\n"q".png',
        b"plain.png",
    }


def test_tsv_rows_are_read_back_exactly_and_a_bad_file_is_one_line(tmp_path):
    """Manifests and inventories share one reader: quoted fields come back as written; another
    header, a short row or bytes that are not UTF-8 are refused naming the file and the line."""
    from delta_v2a.storage import StoreError, read_tsv_rows

    good = tmp_path / "good.tsv"
    good.write_text('path\tsize\n"a\tb.wav"\t3\nc.wav\t4\n', encoding="utf-8")
    assert read_tsv_rows(good, ("path", "size"), "a table") == [["a\tb.wav", "3"], ["c.wav", "4"]]
    for name, data, said in [
        ("header.tsv", b"path\tbytes\nx\t1\n", "not a table (header"),
        ("short.tsv", b"path\tsize\nx\t1\ny\n", "line 3 does not hold path, size"),
        ("latin.tsv", b"path\tsize\n\xe9\t1\n", "not a table (not UTF-8"),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(StoreError, match=re.escape(said)) as err:
            read_tsv_rows(tmp_path / name, ("path", "size"), "a table")
        assert str(err.value).startswith(f"{tmp_path / name}: ") and "\n" not in str(err.value)
