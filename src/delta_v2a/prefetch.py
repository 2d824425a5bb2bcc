"""Ordered, bounded-memory parallel preparation for every job that feeds media to a model.

Why: a model job alternates CPU work (decode, effect, the model's own preprocessing) with the
forward pass. Run on one thread the CPU half dominates on a GPU box (one thread decodes a 12 MP
JPEG in ~28 ms; a GPU embeds hundreds of images a second). Here a pool of the job's ``threads``
workers prepares items while the model runs, results come back in input order, and at most
``depth`` batches are in flight, so memory stays O(batch) however many files there are.

Results are exactly those of one worker: each item is prepared by the same pure function,
independently of the others, and placed by its index (docs/methods.md §2). Threads
are the default: decoding (PIL, libsndfile, soxr), filtering (scipy, pedalboard) and numpy
release the GIL, and threads share the loaded processor without pickling it;
``kind="process"`` exists for comparison (benchmarks/extraction.py measures both) and needs a
picklable ``fn``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ordered_map", "prefetched_batches"]


def _executor(kind: str, workers: int) -> Executor:
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare")
    if kind == "process":
        return ProcessPoolExecutor(max_workers=workers)
    raise ValueError(f"unknown pool kind {kind!r}; use 'thread' or 'process'")


def prefetched_batches(
    items: Sequence[T],
    fn: Callable[[T], R],
    batch_size: int,
    workers: int,
    *,
    depth: int = 2,
    kind: str = "thread",
) -> Iterator[list[R]]:
    """Yield ``[fn(x) for x in batch]`` for consecutive batches of ``items``, in order.

    ``workers <= 1`` runs inline (no pool: one worker, the reference the pool must equal).
    Otherwise up to ``depth`` batches are submitted ahead of the one being consumed. An error
    in ``fn`` surfaces at its item's turn; the pending work is cancelled.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    batches = (items[i : i + batch_size] for i in range(0, len(items), batch_size))
    if workers <= 1:
        for batch in batches:
            yield [fn(x) for x in batch]
        return
    pool = _executor(kind, workers)
    try:
        pending: deque[list[Future[R]]] = deque()
        for batch in batches:
            pending.append([pool.submit(fn, x) for x in batch])
            if len(pending) > depth:
                yield [fut.result() for fut in pending.popleft()]
        while pending:
            yield [fut.result() for fut in pending.popleft()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    ahead: int | None = None,
    kind: str = "thread",
) -> Iterator[R]:
    """``map(fn, items)`` in a pool, in order, with at most ``ahead`` results outstanding.

    For jobs that consume one item at a time (window sequences, strength curves); ``items``
    may be a lazy iterable, read only as far as ``ahead`` (default ``2 * workers``) allows.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    limit = ahead if ahead is not None else 2 * workers
    if limit < 1:
        raise ValueError(f"ahead must be >= 1, got {limit}")
    pool = _executor(kind, workers)
    try:
        pending: deque[Future[R]] = deque()
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
