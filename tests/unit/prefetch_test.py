"""Parallel preparation: order, bounded look-ahead, errors, and bits equal to one worker."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from delta_v2a.extract import Decoding, embed_variant
from delta_v2a.jobs.common import prefer_item_parallelism
from delta_v2a.media import MediaFile
from delta_v2a.prefetch import ordered_map, prefetched_batches


def _slow_square(x: int) -> int:
    time.sleep(0.001 * ((x * 7) % 5))  # finish out of order on purpose
    return x * x


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_batches_in_order_whatever_the_workers(workers):
    items = list(range(23))
    got = list(prefetched_batches(items, _slow_square, batch_size=5, workers=workers))
    assert [len(b) for b in got] == [5, 5, 5, 5, 3]
    assert sum(got, []) == [x * x for x in items]


def test_process_pool_gives_the_same():
    items = list(range(11))
    got = list(prefetched_batches(items, _slow_square, 4, 2, kind="process"))
    assert sum(got, []) == [x * x for x in items]
    assert list(ordered_map(_slow_square, items, 2, kind="process")) == [x * x for x in items]


def test_look_ahead_is_bounded():
    """At most (depth + 1) batches are ever submitted beyond what was consumed."""
    started, lock = [], threading.Lock()

    def fn(x):
        with lock:
            started.append(x)
        return x

    consumed = 0
    for batch in prefetched_batches(list(range(100)), fn, batch_size=4, workers=2, depth=2):
        consumed += len(batch)
        time.sleep(0.002)
        with lock:
            assert len(started) <= consumed + 2 * 4
    assert consumed == 100


def test_ordered_map_reads_a_lazy_iterable_only_as_far_as_needed():
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    it = ordered_map(lambda x: x + 1, source(), workers=2, ahead=3)
    assert [next(it) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert len(pulled) <= 5 + 3
    it.close()
    assert list(ordered_map(lambda x: -x, range(7), workers=1)) == [0, -1, -2, -3, -4, -5, -6]


def test_error_surfaces_at_its_item_and_bad_arguments_are_refused():
    def fn(x):
        if x == 6:
            raise ValueError("item 6 is bad")
        return x

    it = prefetched_batches(list(range(20)), fn, 4, 2)
    assert next(it) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="item 6"):
        next(it)
    with pytest.raises(ValueError, match="batch_size"):
        list(prefetched_batches([1], fn, 0, 2))
    with pytest.raises(ValueError, match="pool kind"):
        list(prefetched_batches([1, 2], fn, 1, 2, kind="fibres"))


def _media(tmp_path, modality: str, n: int) -> list[MediaFile]:
    rng = np.random.default_rng(3)
    files = []
    for i in range(n):
        if modality == "image":
            path = tmp_path / "cat" / f"im{i}.jpg"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (300 + i, 260, 3), dtype=np.uint8)).save(path)
        else:
            path = tmp_path / "gen" / f"a{i}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, 0.2 * rng.standard_normal(48_000 * 12).astype(np.float32), 48_000)
        files.append(MediaFile(path=str(path), category=path.parent.name, modality=modality))
    return files


def test_parallel_embedding_is_bit_identical_to_one_worker(tmp_path, clip_embedder, clap_embedder):
    """The job's pool (decode + effect + model preprocessing) changes no bit of the result."""
    cases = [
        (
            clip_embedder,
            Decoding("image", image_size=clip_embedder.input_size),
            "blur",
            {"sigma": 2.0},
        ),
        (
            clap_embedder,
            Decoding("audio", sampling_rate=48_000, window=480_000, preroll=48_000),
            "lpf",
            {"cutoff_hz": 2000.0, "order": 4},
        ),
    ]
    for embedder, decoding, effect, params in cases:
        files = _media(tmp_path, decoding.modality, 5)
        one = embed_variant(embedder, files, decoding, effect, params, batch_size=2, workers=1)
        seen = []
        cv_threads = cv2.getNumThreads()
        prefer_item_parallelism(3)  # what the job does: OpenCV on one thread per item
        many = embed_variant(
            embedder,
            files,
            decoding,
            effect,
            params,
            2,
            workers=3,
            progress=lambda d, t, seen=seen: seen.append((d, t)),
        )
        cv2.setNumThreads(cv_threads)
        assert one.shape == (5, embedder.dim)
        assert one.tobytes() == many.tobytes(), decoding.modality
        assert seen == [(2, 5), (4, 5), (5, 5)]


def test_per_item_preparation_equals_batched_preprocessing(clip_embedder, clap_embedder):
    rng = np.random.default_rng(0)
    images = [rng.random((224, 224, 3), dtype=np.float32) for _ in range(3)]
    batched = clip_embedder.preprocess(images)
    single = np.stack([clip_embedder.prepare(im).numpy() for im in images])
    assert single.tobytes() == batched.numpy().tobytes()
    clips = [0.1 * rng.standard_normal(480_000).astype(np.float32) for _ in range(2)]
    feats = clap_embedder.preprocess(clips)
    per = [clap_embedder.prepare(c) for c in clips]
    assert (
        np.stack([p[0].numpy() for p in per]).tobytes() == feats["input_features"].numpy().tobytes()
    )
    assert [bool(p[1]) for p in per] == [bool(x) for x in feats["is_longer"].reshape(-1)]
