"""Phase 3 training loop: AdamW on MSE, seeded, resumable from per-epoch checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from delta_v2a.phase3.model import build_decoder
from delta_v2a.phase3.options import TrainSettings
from delta_v2a.storage import atomic_path

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- training


@dataclass
class TrainData:
    """Everything training reads, as arrays: no audio model, no file I/O per step."""

    text: np.ndarray  # (n_descriptions, Dt)
    audio: np.ndarray  # (n_files, K, Da)
    desc_index: np.ndarray  # (N,) into text
    file_index: np.ndarray  # (N,) into audio
    targets: np.ndarray  # (N, P) in [0, 1]
    split: np.ndarray  # (N,) "train" / "val" / "test": training never reads "test"

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("text", "audio", "desc_index", "file_index", "targets", "split"):
            arr = np.ascontiguousarray(getattr(self, name))
            digest.update(f"{name}{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())
        return digest.hexdigest()


@dataclass
class TrainResult:
    kind: str
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    best_state: dict[str, torch.Tensor]
    resumed_from: int | None
    epochs_run: int  # epochs trained in this call (a resumed run counts only its own)

    @property
    def train_seconds(self) -> float:
        """Time spent in the epochs (all runs, a resumed one included; not evaluation)."""
        return float(sum(r["seconds"] for r in self.history))

    @property
    def epochs_per_s(self) -> float | None:
        return len(self.history) / self.train_seconds if self.train_seconds > 0 else None


def _fingerprint(arch: Mapping[str, Any], settings: TrainSettings, data: TrainData) -> str:
    blob = json.dumps({"arch": dict(arch), "settings": asdict(settings)}, sort_keys=True)
    return hashlib.sha256((blob + data.fingerprint()).encode()).hexdigest()


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged checkpoint is not the truth: start afresh
        log.warning("cannot read checkpoint %s (%s); starting afresh", path, err)
        return None


@dataclass
class _Run:
    """The mutable state of one training run: exactly what a checkpoint saves and restores."""

    model: nn.Module
    optimiser: torch.optim.Optimizer
    shuffle: torch.Generator
    device: torch.device
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    epoch: int = 0  # the last finished epoch

    def snapshot(self, fingerprint: str) -> dict[str, Any]:
        cuda = self.device.type == "cuda"
        return {
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": _cpu_state(self.model),
            "optimizer": self.optimiser.state_dict(),
            "shuffle_rng": self.shuffle.get_state(),
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val,
            "best_state": self.best_state,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimizer"])
        self.shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["cpu_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.history = list(state["history"])
        self.best_epoch, self.best_val = int(state["best_epoch"]), float(state["best_val_loss"])
        self.best_state = state["best_state"]
        self.epoch = int(state["epoch"])


def _batcher(data: TrainData, device: torch.device) -> Callable:
    """All arrays on the device once; a batch is an index gather (no per-batch copies)."""
    text, audio, desc, files, targets = (
        torch.tensor(np.array(a), dtype=t, device=device)
        for a, t in (
            (data.text, torch.float32),
            (data.audio, torch.float32),
            (data.desc_index, torch.long),
            (data.file_index, torch.long),
            (data.targets, torch.float32),
        )
    )

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = idx.to(device)
        return text[desc[idx]], audio[files[idx]], targets[idx]

    return batch


def _resumable_state(ckpt_path: Path | None, fingerprint: str, kind: str) -> dict[str, Any] | None:
    """The checkpoint's state when it was made with the same inputs and settings, else None."""
    state = _load_checkpoint(ckpt_path) if ckpt_path else None
    if state is not None and state.get("fingerprint") != fingerprint:
        log.info(
            "%s: checkpoint %s was made with other inputs or settings; starting afresh",
            kind,
            ckpt_path,
        )
        return None
    return state


def _train_epoch(run: _Run, batch: Callable, train_idx: torch.Tensor, batch_size: int) -> float:
    """One pass over the training samples in a seeded order; the mean training MSE."""
    run.model.train()
    n_train = len(train_idx)
    order = train_idx[torch.randperm(n_train, generator=run.shuffle)]
    total = 0.0
    for b in range(0, n_train, batch_size):
        x_text, x_audio, y = batch(order[b : b + batch_size])
        loss = nn.functional.mse_loss(run.model(x_text, x_audio), y)
        run.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        run.optimiser.step()
        total += float(loss.detach()) * len(y)
    return total / n_train


def _split_indices(data: TrainData) -> tuple[torch.Tensor, torch.Tensor]:
    split = np.asarray(data.split).astype(str)
    train_idx = torch.as_tensor(np.flatnonzero(split == "train"), dtype=torch.long)
    val_idx = torch.as_tensor(np.flatnonzero(split == "val"), dtype=torch.long)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError("training needs both train and validation samples")
    return train_idx, val_idx


def _new_or_resumed(
    arch: Mapping[str, Any],
    settings: TrainSettings,
    device: torch.device,
    ckpt_path: Path | None,
    fp: str,
) -> tuple[_Run, int | None]:
    """A seeded fresh run (call inside ``fork_rng``), restored from the checkpoint when it
    was made with the same inputs and settings; with the epoch it resumes from (or None)."""
    torch.manual_seed(settings.seed)
    model = build_decoder(arch).to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    shuffle = torch.Generator().manual_seed(settings.seed + 1)
    run = _Run(model, optimiser, shuffle, device, best_state=_cpu_state(model))
    state = _resumable_state(ckpt_path, fp, arch["kind"])
    if state is None:
        return run, None
    run.restore(state)
    log.info(
        "%s: resuming from checkpoint %s after epoch %d of %d",
        arch["kind"],
        ckpt_path,
        run.epoch,
        settings.epochs,
    )
    return run, run.epoch + 1


def train_decoder(
    arch: Mapping[str, Any],
    data: TrainData,
    settings: TrainSettings,
    *,
    checkpoint: str | Path | None = None,
    checkpoint_interval_s: float = 0.0,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    log_every: int = 1,
) -> TrainResult:
    """Train one decoder; resume from ``checkpoint`` when it was made with the same inputs and
    settings (a fingerprint of both is stored in it), else start afresh.

    The checkpoint is rewritten atomically with the model, optimiser and RNG states, the
    history and the best epoch's weights, so an interrupted run resumed from it gives the same
    result as one that never stopped. It is written after the last epoch and after any epoch
    that ends at least ``checkpoint_interval_s`` after the previous write (0: every epoch).
    ``on_epoch`` sees each epoch's record; every ``log_every``-th epoch (and the last) is
    logged here. The epoch is chosen on the "val" samples; "test" samples are never read.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # one definite GPU for the RNG states
        device = torch.device("cuda", torch.cuda.current_device())
    kind = arch["kind"]
    ckpt_path = Path(checkpoint) if checkpoint else None
    fp = _fingerprint(arch, settings, data)
    train_idx, val_idx = _split_indices(data)
    batch = _batcher(data, device)
    # Seeded inside fork_rng: the caller's global RNG state is left as it was.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        run, resumed_from = _new_or_resumed(arch, settings, device, ckpt_path, fp)
        start, last_write = run.epoch + 1, time.perf_counter()
        for epoch in range(start, settings.epochs + 1):
            e0 = time.perf_counter()
            train_loss = _train_epoch(run, batch, train_idx, settings.batch_size)
            val_loss = _mse(run.model, batch, val_idx)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": time.perf_counter() - e0,
            }
            run.history.append(record)
            run.epoch = epoch
            if val_loss < run.best_val:
                run.best_epoch, run.best_val = epoch, val_loss
                run.best_state = _cpu_state(run.model)
            if epoch % max(1, log_every) == 0 or epoch == settings.epochs:
                _log_epoch(kind, record, settings.epochs, run)
            due = time.perf_counter() - last_write >= checkpoint_interval_s
            if ckpt_path is not None and (due or epoch == settings.epochs):
                last_write = time.perf_counter()
                _save_checkpoint(ckpt_path, run.snapshot(fp))
            if on_epoch is not None:
                on_epoch(record)
    return TrainResult(
        kind=kind,
        history=run.history,
        best_epoch=run.best_epoch,
        best_val_loss=run.best_val,
        best_state=run.best_state,
        resumed_from=resumed_from,
        epochs_run=max(0, settings.epochs + 1 - start),
    )


def _log_epoch(kind: str, record: Mapping[str, float], epochs: int, run: _Run) -> None:
    log.info(
        "%s epoch %d/%d: train MSE %.5f, val MSE %.5f (best %.5f at epoch %d), %.2f s",
        kind,
        record["epoch"],
        epochs,
        record["train_loss"],
        record["val_loss"],
        run.best_val,
        run.best_epoch,
        record["seconds"],
    )


def _save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    with atomic_path(path, ".pt") as tmp:
        torch.save(dict(state), tmp)


@torch.no_grad()
def _mse(model: nn.Module, batch: Callable, idx: torch.Tensor, chunk: int = 1024) -> float:
    model.eval()
    total = 0.0
    for b in range(0, len(idx), chunk):
        x_text, x_audio, y = batch(idx[b : b + chunk])
        total += float(((model(x_text, x_audio) - y) ** 2).mean(dim=1).sum())
    return total / len(idx)
