"""What every job shares: logging, failing with a clear message, loading a model, the health gate.

Job functions (one per workflow rule, in the sibling modules) take ``(inputs, outputs,
settings, threads)``: the rule's named paths and its frozen settings (delta_v2a.settings), so
tests run them without Snakemake. The scripts in workflow/scripts/ are one call of
:func:`run_rule`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from delta_v2a.artifacts.health import HealthReport
from delta_v2a.media import FileChangedError
from delta_v2a.settings import BatchSizes, ModelSpec
from delta_v2a.storage import StoreError

log = logging.getLogger("delta_v2a")


class PipelineError(RuntimeError):
    """A job cannot go on; the message says what to change."""


def job_tag(logfile: str | Path | None, fallback: str = "job") -> str:
    """The job's name for the console, from its log path: ``logs/embed/image/blur/low.log`` ->
    ``embed image/blur/low`` (rule family, then modality / effect / intensity or phase)."""
    if not logfile:
        return fallback
    parts = list(Path(logfile).with_suffix("").parts)
    if "logs" in parts:
        parts = parts[len(parts) - parts[::-1].index("logs") :]
    if not parts:
        return fallback
    return parts[0] if len(parts) == 1 else f"{parts[0]} {'/'.join(parts[1:])}"


def setup_logging(logfile: str | Path | None, tag: str | None = None) -> None:
    """Log to the rule's log file and to stderr (Snakemake shows stderr of failed jobs).

    Every line carries the job's tag, so lines of concurrent jobs on one console can be told
    apart.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w", encoding="utf-8"))
    tag = tag or job_tag(logfile)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{tag.replace('%', '%%')}] %(message)s",
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


class Paths:
    """A rule's named inputs or outputs: ``paths.manifest`` is a path, a list for a list.

    Why not Snakemake's own objects: jobs (and their tests) run without Snakemake, and a
    misspelt name must fail with the names that exist.
    """

    def __init__(self, **named: str | list[str]) -> None:
        self._named = {
            k: v if isinstance(v, str) else [str(x) for x in v] for k, v in named.items()
        }

    @classmethod
    def of(cls, namedlist: Any) -> Paths:
        """From Snakemake's ``input``/``output``: its named entries (every entry has a name)."""
        named = dict(namedlist.items())
        count = sum(len(v) if isinstance(v, list) else 1 for v in named.values())
        if count != len(namedlist):
            raise TypeError(f"every input and output of a rule needs a name; got {named}")
        return cls(**named)

    def __getattr__(self, name: str) -> Any:
        named = self.__dict__.get("_named", {})
        if name not in named:
            raise AttributeError(f"no path named {name!r}; this rule has {sorted(named)}")
        return named[name]

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def names(self) -> list[str]:
        return list(self._named)


def run_rule(smk: Any, job: Any) -> None:
    """What every rule script does: rebuild the job's settings from the rule's ``params``
    (typed by the job's ``settings`` annotation) and run the job with its named paths."""
    import typing

    from delta_v2a.settings import from_params

    kwargs: dict[str, Any] = {"inputs": Paths.of(smk.input), "outputs": Paths.of(smk.output)}
    hints = typing.get_type_hints(job)
    if "settings" in hints:
        kwargs["settings"] = from_params(hints["settings"], smk.params.settings)
    if "threads" in hints:
        kwargs["threads"] = int(smk.threads)
    run_job(smk.log[0], job, **kwargs)


def run_job(logfile: str | Path | None, job, /, **kwargs: Any) -> None:
    """Run one job with logging. A :class:`PipelineError` (bad input, a stated refusal) ends
    the job with its one-line message and no traceback; anything else is a bug and keeps its
    traceback."""
    setup_logging(logfile, job_tag(logfile, job.__name__))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # before huggingface_hub loads
    check_code_origin()
    log.info(
        "%s on %s, SLURM_JOB_ID=%s, process up %.2f s",
        job.__name__,
        socket.gethostname(),
        os.environ.get("SLURM_JOB_ID"),
        process_age_s(),
    )
    try:
        job(**kwargs)
    except PipelineError as err:
        # What a user can fix: the one-line reason, no traceback (finished files stay).
        log.error("%s failed: %s", job.__name__, err)
        raise SystemExit(1) from None
    except (StoreError, FileChangedError) as err:  # a damaged artifact, data changed under
        log.error("%s failed: %s", job.__name__, err)  # the run: the message says what to do
        raise SystemExit(1) from None
    except MemoryError:
        log.error(
            "%s failed: out of memory; give the rule more memory (resources: mem_mb)", job.__name__
        )
        raise SystemExit(1) from None
    except Exception as err:
        if not _is_device_refusal(err):
            log.error("%s failed: %s", job.__name__, err)
            raise
        log.error("%s failed: models.device: %s", job.__name__, err)  # a refusal, as above
        raise SystemExit(1) from None


def _is_device_refusal(err: BaseException) -> bool:
    """A device this machine lacks (models.DeviceError), raised wherever a job resolves it.
    Checked by name in sys.modules: a job that never imported the models module has none."""
    models = sys.modules.get("delta_v2a.models")
    return models is not None and isinstance(err, models.DeviceError)


def process_age_s() -> float:
    """Seconds since this job's process started: with the log's timestamps, what a job spends
    before its first batch (Python start, imports, model load) can be read from its log alone
    (benchmarks/extraction.py reads it as ``job_start_to_first_batch_s``)."""
    import time

    import psutil  # a dependency of Snakemake, so present wherever a job runs

    return time.time() - psutil.Process().create_time()


_LEASES: list[Any] = []  # device leases held until the job's process ends


def quiet_hugging_face() -> None:
    """No Hugging Face progress bars or info chatter inside jobs (one console for many jobs)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def job_device(device: str) -> str:
    """The device this job uses: ``auto``/``cuda`` on a box with several GPUs get a leased one.

    An explicit ``cuda:N`` or ``cpu`` is honoured as given; see delta_v2a.devices.
    """
    import torch

    name = device.strip().lower()
    if name not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    count = torch.cuda.device_count()
    if count <= 1:
        return "cuda" if name == "cuda" else device
    from delta_v2a.devices import pick_device

    lease = pick_device(count)
    _LEASES.append(lease)
    log.info("using cuda:%d of %d visible GPUs (slot %d)", lease.index, count, lease.slot)
    return f"cuda:{lease.index}"


def prefer_item_parallelism(workers: int) -> None:
    """With a pool of ``workers`` preparing items, OpenCV runs each item on one thread.

    Why: OpenCV parallelises one blur over every core by default, so a pool of workers, each
    asking for all cores, oversubscribes them: measured here, 2 workers were no faster than 1
    until OpenCV ran single-threaded, then 1.9x (benchmarks/README.md). Results do not depend
    on OpenCV's thread count (a test compares the bits).
    """
    if workers > 1:
        import cv2

        cv2.setNumThreads(1)


def job_batch_size(batch: BatchSizes, embedder: Any) -> int:
    """Media batch size for the device kind the model runs on (models.batch_size.<kind>)."""
    return batch.for_device(embedder.info.device)


def load_embedder_for_job(model: ModelSpec, threads: int):
    """The model, once per job, on this job's device; a wrong size stops with the key to set."""
    import torch

    from delta_v2a.models import load_embedder

    torch.set_num_threads(max(1, threads))
    quiet_hugging_face()
    try:
        embedder = load_embedder(
            model.modality,
            model.name_or_path,
            device=job_device(model.device),
            dtype=model.dtype,
            normalize=model.normalize,
            revision=model.revision,
            family=model.family,
        )
    except (ValueError, FileNotFoundError, PermissionError) as err:
        raise PipelineError(f"models.{model.modality}: {err}") from err
    if embedder.dim != model.dim:
        raise PipelineError(
            f"models.dim.{model.modality}: the config declares {model.dim}-d embeddings but "
            f"{model.name_or_path} gives {embedder.dim}-d; set models.dim.{model.modality}: "
            f"{embedder.dim} if this is the model you mean"
        )
    return embedder


class _LogLines:
    """A file for tqdm that logs each finished line (no carriage returns in log files)."""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            log.info("%s", line)

    def flush(self) -> None:
        pass


class Progress:
    """Progress lines with count, rate and ETA, by tqdm: ``embedded 64/3000 files (2%)
    31.20files/s ETA 01:34``.

    Each line goes through the job's logger, so its tag comes first (see :func:`setup_logging`)
    and concurrent jobs stay readable. At most one line every ``every_s`` seconds, the start
    and always the last step, so a long job writes a few dozen lines, not one per batch.
    """

    FORMAT = "{desc} {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) {rate_fmt} ETA {remaining}"

    def __init__(self, what: str, unit: str = "files", every_s: float = 10.0) -> None:
        self.what, self.unit, self.every_s = what, unit, every_s
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(
                total=total, desc=self.what, unit=self.unit, file=_LogLines(),
                mininterval=self.every_s, miniters=1, smoothing=0, bar_format=self.FORMAT,
            )  # fmt: skip
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()


def gate_health(
    health_paths: Sequence[str], allow_unhealthy: bool, part: str
) -> list[HealthReport]:
    """Stop before science on a collapsed tower (``part``: 'media' or 'text')."""
    docs = [HealthReport.read(p) for p in health_paths]
    for doc in docs:
        value = doc.mean_pairwise_cosine(part)
        if value is not None and value > doc.limit:
            msg = (
                f"model health check failed for {doc.model_name}: mean pairwise "
                f"cosine of {'contrasting clips' if part == 'media' else 'unrelated prompts'} is "
                f"{value:.4f} > models.health.limit {doc.limit} (a collapsed tower; its "
                f"deltas would be noise). Figures: {doc.modality} health JSON."
            )
            _refuse_unhealthy(msg, allow_unhealthy)
        _gate_batch(doc, part, allow_unhealthy)
    return docs


def _gate_batch(doc: HealthReport, part: str, allow_unhealthy: bool) -> None:
    """The determinism gate: inputs that embed differently alone and in a batch."""
    value = doc.batch_max_cosine_distance.get(part)
    if value is not None and value > doc.batch_limit:
        what = "prompts" if part == "text" else "health inputs"
        msg = (
            f"model health check failed for {doc.model_name}: {what} embedded "
            f"alone and inside a batch differ by a cosine distance of {value:.2e} > "
            f"models.health.batch_limit {doc.batch_limit:g} (a batch effect; it would be noise "
            f"in every delta). Figures: {doc.modality} health JSON."
        )
        _refuse_unhealthy(msg, allow_unhealthy)


def _refuse_unhealthy(msg: str, allow_unhealthy: bool) -> None:
    if not allow_unhealthy:
        raise PipelineError(msg + " Set models.health.allow_unhealthy: true to go on.")
    log.warning("%s (allowed by models.health.allow_unhealthy)", msg)
