"""The embedding cache: keyed by content and variant, never trusted when damaged."""

from __future__ import annotations

import numpy as np

from delta_v2a.cache import EmbeddingCache, model_fingerprint, variant_key

MODEL = {"name_or_path": "x", "dtype": "fp32", "normalize": True}


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
    assert key(model=MODEL | {"dtype": "bf16"}) != base
    assert key(preroll_s=0.5) != base
    assert key(modality="image", preroll_s=0.5) == key(modality="image", preroll_s=1.0)


def test_regenerated_local_model_changes_fingerprint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = model_fingerprint(str(tmp_path))
    assert model_fingerprint(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(b"123")
    assert model_fingerprint(str(tmp_path)) != first
    assert model_fingerprint("org/model").startswith("hub:org/model")
