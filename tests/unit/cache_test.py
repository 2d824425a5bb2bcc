"""The embedding cache: keyed by content and variant, never trusted when damaged."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
from seed_spec import ORIGINAL_VARIANT

from delta_v2a.cache import EmbeddingCache, model_fingerprint, variant_key
from delta_v2a.settings import BatchSizes, EmbedSettings, ManifestSettings, ModelSpec

MODEL = ModelSpec("audio", "x", None, "cpu", "fp32", True, 512)


def key(**kw):
    args = dict(
        modality="audio",
        model=MODEL,
        device_type="cpu",
        effect="lpf",
        effect_params={"cutoff_hz": 800.0, "order": 4},
        preroll_s=1.0,
    )
    return variant_key(**(args | kw))


def test_shard_round_trip_and_lookup(tmp_path):
    cache = EmbeddingCache.open(tmp_path / "s.npz")
    assert cache.lookup(["a"])[0] is None
    cache.add(["a", "b"], np.array([[1, 0], [0, 1]], np.float32), {"model": {"m": 1}})
    cache.save()
    back = EmbeddingCache.open(tmp_path / "s.npz")
    emb, hit = back.lookup(["b", "zz", "a"])
    assert hit.tolist() == [True, False, True]
    np.testing.assert_array_equal(emb[[0, 2]], [[0, 1], [1, 0]])
    back.add(["a", "c"], np.array([[9, 9], [5, 5]], np.float32), {"model": {"m": 1}})
    assert back.hashes == ["a", "b", "c"]  # known content is never overwritten
    np.testing.assert_array_equal(back.lookup(["a"])[0], [[1, 0]])


def test_damaged_shard_is_ignored_not_trusted(tmp_path):
    (tmp_path / "s.npz").write_bytes(b"garbage")
    cache = EmbeddingCache.open(tmp_path / "s.npz")
    assert cache.lookup(["a"])[1].tolist() == [False]


def test_key_depends_on_everything_but_the_file():
    base = key()
    assert key() == base
    assert key(effect_params={"cutoff_hz": 801.0, "order": 4}) != base
    assert key(effect="highshelf") != base
    assert key(device_type="cuda") != base
    assert key(model=dataclasses.replace(MODEL, dtype="bf16")) != base
    assert key(model=dataclasses.replace(MODEL, device="cuda")) == base  # the device kind counts
    assert key(preroll_s=0.5) != base
    assert key(modality="image", preroll_s=0.5) == key(modality="image", preroll_s=1.0)


def test_regenerated_local_model_changes_fingerprint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = model_fingerprint(str(tmp_path))
    assert model_fingerprint(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(b"123")
    assert model_fingerprint(str(tmp_path)) != first
    assert model_fingerprint("org/model").startswith("hub:org/model")


def test_fill_embeds_only_misses_merges_and_saves(tmp_path):
    from delta_v2a.cache import fill

    shard = tmp_path / "s.npz"
    calls = []

    def embed(rows):
        calls.append(list(rows))
        return np.array([[float(i), 1.0] for i in rows], np.float32), {"model": {"m": 1}}

    first = fill(shard, ["a", "b"], embed)
    assert calls == [[0, 1]] and first.hit.tolist() == [False, False]
    second = fill(shard, ["c", "b", "a"], embed)  # only c is new: row 0 of this call
    assert calls[-1] == [0]
    np.testing.assert_array_equal(second.embeddings, [[0, 1], [1, 1], [0, 1]])
    assert second.hit.tolist() == [False, True, True] and second.meta == {"model": {"m": 1}}
    n = len(calls)
    third = fill(shard, ["a", "c"], embed)  # everything cached: the model is never asked
    assert len(calls) == n and third.hit.all()
    assert third.meta == {"model": {"m": 1}}


def test_fill_without_a_cache_embeds_everything_and_checks_row_count(tmp_path):
    import pytest

    from delta_v2a.cache import fill

    out = fill(None, ["a", "a"], lambda rows: (np.ones((len(rows), 3)), {"k": 1}))
    assert out.embeddings.shape == (2, 3) and not out.hit.any()
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="returned 1 rows for 2 misses"):
        fill(None, ["a", "b"], lambda rows: (np.ones((1, 3)), {}))


def test_identical_files_in_one_batch_are_stored_once(tmp_path):
    cache = EmbeddingCache.open(tmp_path / "s.npz")
    cache.add(["x", "x", "y"], np.array([[1, 1], [1, 1], [2, 2]], np.float32), {})
    assert cache.hashes == ["x", "y"]


def test_changed_file_cannot_poison_the_cache(tmp_path, tiny_clip_dir):
    """The issue's case: a photo's bytes replaced between vetting and embedding."""
    import pytest
    from PIL import Image

    from delta_v2a.extract import read_manifest
    from delta_v2a.inventory import inventory_digest, inventory_of
    from delta_v2a.jobs.common import Paths
    from delta_v2a.jobs.embed import run_embed
    from delta_v2a.jobs.manifest import run_manifest
    from delta_v2a.media import FileChangedError
    from delta_v2a.storage import EmbeddingTable

    rng = np.random.default_rng(0)
    root = tmp_path / "img"
    for name in ("a", "b"):
        (root / "cat").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(
            root / "cat" / f"{name}.png"
        )
    out = tmp_path / "m"
    out.mkdir()
    inventory = out / "image.inventory.tsv"
    inventory.write_text(inventory_of(root, "image"), encoding="utf-8")
    vetted = out / f"image.{inventory_digest(inventory.read_text(encoding='utf-8'))}.tsv"
    run_manifest(
        inputs=Paths(inventory=str(inventory)),
        outputs=Paths(manifest=str(vetted), skipped=str(out / "skipped.tsv")),
        settings=ManifestSettings(
            "image", str(root), "data.images", "error", 1.0, 0.0, "test", 640
        ),
        threads=1,
    )
    shutil.copyfile(vetted, out / "image.tsv")  # what manifest_current does
    original_a = (root / "cat/a.png").read_bytes()
    (root / "cat/a.png").write_bytes((root / "cat/b.png").read_bytes())  # replaced mid-run
    model = ModelSpec("image", str(tiny_clip_dir), None, "cpu", "fp32", True, 768)
    settings = EmbedSettings(
        model,
        BatchSizes(2, 2),
        1.0,
        **ORIGINAL_VARIANT,
        cache_dir=str(tmp_path / "cache"),
        shards=0,
        shard=0,
        decode_budget_mib=640,
    )
    inputs = Paths(manifest=str(out / "image.tsv"))

    def embed(name, settings=settings):
        outputs = Paths(embeddings=str(tmp_path / name))
        run_embed(inputs=inputs, outputs=outputs, settings=settings, threads=1)

    with pytest.raises(FileChangedError, match=r"cat/a\.png: file changed while the workflow"):
        embed("e1.npz")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.npz"))
    (root / "cat/a.png").write_bytes(original_a)  # restored: the same manifest is right again
    embed("e2.npz")
    cached = EmbeddingTable.load(tmp_path / "e2.npz")
    embed("e3.npz", dataclasses.replace(settings, cache_dir=None))
    np.testing.assert_array_equal(
        cached.embeddings, EmbeddingTable.load(tmp_path / "e3.npz").embeddings
    )
    assert [f.sha256 for f in read_manifest(out / "image.tsv")][0] == __import__("hashlib").sha256(
        original_a
    ).hexdigest()


def test_planted_models_are_fingerprinted_by_their_version(monkeypatch):
    import delta_v2a.planted as planted

    first = model_fingerprint("planted:image", "planted")
    monkeypatch.setattr(planted, "PLANTED_VERSION", planted.PLANTED_VERSION + 1)
    assert model_fingerprint("planted:image", "planted") != first  # new geometry, new shards
