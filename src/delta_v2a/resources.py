"""What each job after extraction asks the scheduler for: memory and time from its inputs' sizes.

The cost model of docs/methods.md §2.4, in one place: every rule's ``mem_mb`` and ``runtime``
call :func:`mem_mb` and :func:`runtime_min` with Snakemake's ``input.size_files_mb`` (the
sizes of the rule's inputs, in input order), so a SLURM job asks for what its data needs, not
a constant that is too small at 10^6 files and too large at 10^3. The coefficients were
measured with ``benchmarks/scale.py`` (peak RSS of each job function in its own process, at
three sizes; benchmarks/README.md) and carry a margin; a test checks each declaration against
the measured peak at two sizes (tests/unit/scale_test.py).

Pure functions of numbers: no Snakemake, no I/O, so the benchmark and the tests call exactly
what the rules call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: A job process before it reads data: Python, numpy, pandas, matplotlib and Snakemake's script
#: preamble (measured: 170 MB for the Phase 0 job's imports; Snakemake's own imports on top).
BASE_MB = 500


@dataclass(frozen=True)
class Cost:
    """A rule's cost model: ``base + per_mb · (the inputs' MB that are in memory at once)``
    MB and ``fixed + minutes_per_gb · (every input GB)`` minutes."""

    base_mb: float
    per_mb: float
    fixed_min: float
    min_per_gb: float


#: Measured with benchmarks/scale.py at 10^3 to 10^5 files (benchmarks/README.md): peak minus
#: the process's imports, per MB held at once, was at most 2.5 (deltas), 4.7 (Phase 0) and 4.6
#: (Phase 1); the coefficients carry a margin of 1.5x or more. Minutes per GB: twice the rate
#: measured on a 2-core machine at load 15-18 (Phase 1 at its default resampling counts, about
#: ten times the benchmark's). "At once" per rule: see :func:`resident_mb`.
COSTS = {
    "deltas": Cost(BASE_MB, 4.0, 10, 6.0),
    "sensitivity": Cost(BASE_MB, 8.0, 10, 4.0),
    "linearity": Cost(BASE_MB, 8.0, 10, 6.0),
    "split": Cost(BASE_MB, 30.0, 5, 10.0),
    # + 5000 MB: one text tower at a time (CLIP ViT-L/14 fp32 1.7 GB) and the foil banks (2.2 GB
    # measured with 10 categories and stub towers, whatever the number of files)
    "phase1": Cost(BASE_MB + 5000, 7.0, 20, 60.0),
}


def resident_mb(rule: str, sizes_mb: Sequence[float], variants: int, effects: int) -> float:
    """The inputs' MB a job holds at once (before its coefficient), by what it reads at a time:

    - ``deltas``: the originals (first input) and one variant part (the largest other input);
    - ``sensitivity``/``linearity``: one effect of the largest store (``variants / effects``
      variants) and its originals (one variant's worth): ``(variants / effects + 1)`` shares of
      ``variants + 1`` in the store (a bound: the jobs hold one variant, or one effect for the
      across-intensity table, without the originals);
    - ``split``: the whole manifest (one row per file);
    - ``phase1``: both stores whole (its file sums and resamplings are over every delta).
    """
    sizes = [float(s) for s in sizes_mb] or [0.0]
    if rule == "deltas":
        return sizes[0] + max(sizes[1:], default=0.0)
    if rule in ("sensitivity", "linearity"):
        share = (variants / max(1, effects) + 1) / (variants + 1)
        return max(sizes) * share
    if rule in ("split", "phase1"):
        return sum(sizes)
    raise KeyError(f"no cost model for rule {rule!r}")


def mem_mb(rule: str, sizes_mb: Sequence[float], variants: int = 1, effects: int = 1) -> int:
    """The ``mem_mb`` a job of ``rule`` declares for inputs of ``sizes_mb`` (rounded up to
    100 MB so a small change of the data does not change the declaration)."""
    held = resident_mb(rule, sizes_mb, variants, effects)
    cost = COSTS[rule]
    need = cost.base_mb + cost.per_mb * held
    return int(math.ceil(need / 100.0) * 100)


def runtime_min(rule: str, sizes_mb: Sequence[float]) -> int:
    """The ``runtime`` (minutes) a job of ``rule`` declares: a fixed start plus a rate per GB
    read, measured on a loaded 2-core machine (a cluster core is not slower)."""
    cost = COSTS[rule]
    return int(math.ceil(cost.fixed_min + cost.min_per_gb * sum(sizes_mb) / 1024.0))


def vet_runtime_min(
    n_files: int, shards: int, threads: int = 2, seconds_per_decode: float = 0.0275
) -> int:
    """Minutes one vetting job declares: its files (all, or one shard's) decoded on ``threads``
    at ``seconds_per_decode`` (27.5 ms, measured on a 12 MP JPEG; benchmarks/README.md), twice
    that for margin, plus 10 minutes for the walk and the start."""
    per_job = n_files / max(1, shards)
    return int(math.ceil(10 + 2 * per_job * seconds_per_decode / max(1, threads) / 60.0))


def wall_on_nodes(stages: Sequence[tuple[int, float]], nodes: int, slots_per_node: int) -> float:
    """Predicted wall minutes of stages run one after another, each ``(jobs, minutes per job)``
    with ``nodes × slots_per_node`` jobs at once (whole waves; no queueing delay)."""
    slots = max(1, nodes * slots_per_node)
    return sum(math.ceil(jobs / slots) * minutes for jobs, minutes in stages)
