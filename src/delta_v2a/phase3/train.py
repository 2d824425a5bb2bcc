"""Phase 3 training loop: AdamW on MSE, seeded, resumable from per-epoch checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from delta_v2a.phase3.model import build_decoder
from delta_v2a.storage import atomic_path

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0


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
    split = np.asarray(data.split).astype(str)
    train_idx = torch.as_tensor(np.flatnonzero(split == "train"), dtype=torch.long)
    val_idx = torch.as_tensor(np.flatnonzero(split == "val"), dtype=torch.long)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError("training needs both train and validation samples")
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

    # Seeded inside fork_rng: the caller's global RNG state is left as it was.
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(settings.seed)
        model = build_decoder(arch).to(device)
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        shuffle = torch.Generator().manual_seed(settings.seed + 1)
        history: list[dict[str, float]] = []
        best_epoch, best_val, best_state = 0, math.inf, _cpu_state(model)
        start, resumed_from = 1, None
        state = _load_checkpoint(ckpt_path) if ckpt_path else None
        if state is not None and state.get("fingerprint") != fp:
            log.info(
                "%s: checkpoint %s was made with other inputs or settings; starting afresh",
                kind,
                ckpt_path,
            )
            state = None
        if state is not None:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimizer"])
            shuffle.set_state(state["shuffle_rng"])
            torch.set_rng_state(state["cpu_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            history = list(state["history"])
            best_epoch, best_val = int(state["best_epoch"]), float(state["best_val_loss"])
            best_state = state["best_state"]
            start = resumed_from = int(state["epoch"]) + 1
            log.info(
                "%s: resuming from checkpoint %s after epoch %d of %d",
                kind,
                ckpt_path,
                start - 1,
                settings.epochs,
            )
        last_write = time.perf_counter()
        n_train = len(train_idx)
        for epoch in range(start, settings.epochs + 1):
            e0 = time.perf_counter()
            model.train()
            order = train_idx[torch.randperm(n_train, generator=shuffle)]
            total = 0.0
            for b in range(0, n_train, settings.batch_size):
                x_text, x_audio, y = batch(order[b : b + settings.batch_size])
                loss = nn.functional.mse_loss(model(x_text, x_audio), y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(y)
            train_loss = total / n_train
            val_loss = _mse(model, batch, val_idx)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": time.perf_counter() - e0,
            }
            history.append(record)
            if val_loss < best_val:
                best_epoch, best_val, best_state = epoch, val_loss, _cpu_state(model)
            if epoch % max(1, log_every) == 0 or epoch == settings.epochs:
                log.info(
                    "%s epoch %d/%d: train MSE %.5f, val MSE %.5f (best %.5f at epoch %d), %.2f s",
                    kind,
                    epoch,
                    settings.epochs,
                    train_loss,
                    val_loss,
                    best_val,
                    best_epoch,
                    record["seconds"],
                )
            due = time.perf_counter() - last_write >= checkpoint_interval_s
            if ckpt_path is not None and (due or epoch == settings.epochs):
                last_write = time.perf_counter()
                _save_checkpoint(
                    ckpt_path,
                    {
                        "fingerprint": fp,
                        "epoch": epoch,
                        "model": _cpu_state(model),
                        "optimizer": optimiser.state_dict(),
                        "shuffle_rng": shuffle.get_state(),
                        "cpu_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device)
                        if device.type == "cuda"
                        else None,
                        "history": history,
                        "best_epoch": best_epoch,
                        "best_val_loss": best_val,
                        "best_state": best_state,
                    },
                )
            if on_epoch is not None:
                on_epoch(record)
    return TrainResult(
        kind=kind,
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        best_state=best_state,
        resumed_from=resumed_from,
        epochs_run=max(0, settings.epochs + 1 - start),
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
