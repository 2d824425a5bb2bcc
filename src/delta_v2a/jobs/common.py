"""What every job shares: logging, failing with a clear message, loading a model, the health gate.

Job functions (one per workflow rule, in the sibling modules) take plain values, so tests can run
them without Snakemake; the scripts in workflow/scripts/ only unpack ``snakemake`` and call them.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from delta_v2a.storage import read_json

log = logging.getLogger("delta_v2a")


class PipelineError(RuntimeError):
    """A job cannot go on; the message says what to change."""


def setup_logging(logfile: str | Path | None) -> None:
    """Log to the rule's log file and to stderr (Snakemake shows stderr of failed jobs)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )


SRC_VARIABLE = "DELTA_V2A_SRC"


def export_own_src(src: str | Path) -> None:
    """Put the workflow's ``src/`` first on ``PYTHONPATH`` for every job this process starts.

    Called by common.smk at parse time; a SLURM job re-parses the Snakefile, so it gets the
    same. :func:`check_code_origin` then verifies it inside each job.
    """
    src = str(Path(src).resolve())
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join([src, *rest])
    os.environ[SRC_VARIABLE] = src


def check_code_origin() -> None:
    """The package a job imports must be the workflow's own ``src/`` (set by common.smk).

    Parse-time checks and job code must be one version: an installed copy from another
    checkout would otherwise run silently in place of the edited workflow.
    """
    import delta_v2a

    expected = os.environ.get(SRC_VARIABLE)
    if not expected:
        return  # called outside Snakemake (tests, the CLI): nothing to compare with
    here = Path(delta_v2a.__file__).resolve().parent
    want = (Path(expected) / "delta_v2a").resolve()
    if here != want:
        raise PipelineError(
            f"this job imported delta_v2a from {here}, not the workflow's own {want}; remove "
            "the other installation or run the Snakefile of the checkout it came from"
        )


def run_job(logfile: str | Path | None, job, /, **kwargs: Any) -> None:
    """Run one job with logging; a failure is logged (message first) and re-raised."""
    setup_logging(logfile)
    check_code_origin()
    log.info(
        "%s on %s, SLURM_JOB_ID=%s",
        job.__name__,
        socket.gethostname(),
        os.environ.get("SLURM_JOB_ID"),
    )
    try:
        job(**kwargs)
    except Exception as err:
        log.error("%s failed: %s", job.__name__, err)
        raise


def load_embedder_for_job(modality: str, model: Mapping[str, Any], threads: int):
    import torch

    from delta_v2a.models import load_embedder

    torch.set_num_threads(max(1, threads))
    try:
        embedder = load_embedder(
            modality,
            model["name_or_path"],
            device=model["device"],
            dtype=model["dtype"],
            normalize=model["normalize"],
            revision=model.get("revision"),
        )
    except (ValueError, FileNotFoundError) as err:
        raise PipelineError(f"models.{modality}: {err}") from err
    expected = model.get("dim")
    if expected is not None and embedder.dim != expected:
        raise PipelineError(
            f"models.dim.{modality}: the config declares {expected}-d embeddings but "
            f"{model['name_or_path']} gives {embedder.dim}-d; set models.dim.{modality}: "
            f"{embedder.dim} if this is the model you mean"
        )
    return embedder


def gate_health(health_paths: Sequence[str], allow_unhealthy: bool, part: str) -> list[dict]:
    """Stop before science on a collapsed tower (``part``: 'media' or 'text')."""
    docs = [read_json(p) for p in health_paths]
    key = "audio_mean_pairwise_cosine" if part == "media" else "text_mean_pairwise_cosine"
    for doc in docs:
        value = doc.get(key)
        if value is not None and value > doc["limit"]:
            msg = (
                f"model health check failed for {doc['model']['name_or_path']}: mean pairwise "
                f"cosine of {'contrasting clips' if part == 'media' else 'unrelated prompts'} is "
                f"{value:.4f} > models.health.limit {doc['limit']} (a collapsed tower; its "
                f"deltas would be noise). Figures: {doc.get('modality')} health JSON."
            )
            if not allow_unhealthy:
                raise PipelineError(msg + " Set models.health.allow_unhealthy: true to go on.")
            log.warning("%s (allowed by models.health.allow_unhealthy)", msg)
    return docs
