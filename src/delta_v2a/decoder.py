"""Phase 3: a decoder from a description of an image effect to audio DSP parameters.

Pieces, in the order the workflow uses them:

* :func:`choose_pairs` - from the discovery matrix, each image effect's best audio effect whose
  score passes a threshold.
* :func:`build_samples` - the data set: audio file × pair × random level ``u`` in [0, 1]; the
  target is the pair's audio effect at ``u`` in the normalised parameter space
  (:mod:`delta_v2a.paramspace`), the condition a description of the image effect at that level
  ("a slightly blurry photo" … "an extremely blurry photo"). Files are split into training and
  validation *before* samples are drawn, so no file is on both sides.
* :func:`window_clips` / :func:`embed_windows` - the audio side is a sequence: CLAP embeddings of
  ``count`` windows of the model's length, each ``hop`` samples before the next, ending with the
  centred window extraction embeds (reused from ``original.npz``). Each file is embedded once
  and cached; training never runs the audio model.
* :class:`DecoderNet` - the text embedding attends over the window sequence (cross-attention),
  an MLP head regresses the parameter vector; ``kind="concat"`` is the ablation without
  attention (text and mean window embedding concatenated, same head).
* :func:`train_decoder` - AdamW on MSE, seeded, with a checkpoint after every epoch (plain
  tensors and values, written atomically) from which an interrupted run resumes; the best
  epoch by validation loss is kept.
* :func:`log_mel` / :func:`spectral_distance` - validation renders the raw audio with the
  predicted parameters and compares it with the target rendering on log-mel spectrograms.
* :func:`save_decoder` / :func:`load_decoder` - ``decoder_model.pt``, loadable with
  ``torch.load(path, weights_only=True)`` and usable without the workflow's config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from delta_v2a.media import load_audio
from delta_v2a.paramspace import ParamSpace
from delta_v2a.storage import atomic_path

log = logging.getLogger(__name__)

FORMAT = "delta_v2a.decoder"
FORMAT_VERSION = 1
KINDS = ("attention", "concat")
SAMPLE_COLUMNS = (
    "sample",
    "file_index",
    "path",
    "category",
    "split",
    "image_effect",
    "audio_effect",
    "level",
    "level_word",
    "description",
)


# --------------------------------------------------------------------------- pairs


def choose_pairs(
    matrix: np.ndarray,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
    threshold: float,
) -> list[dict[str, Any]]:
    """One row per image effect: its best audio effect, its score, and whether it passes.

    A pair passes when its score is strictly above ``threshold``. NaN scores (no usable
    prototype) never win. Two image effects may pick the same audio effect.
    """
    score = np.asarray(matrix, dtype=np.float64)
    if score.shape != (len(image_effects), len(audio_effects)):
        raise ValueError(
            f"discovery matrix has shape {score.shape}, labels say "
            f"{len(image_effects)} image × {len(audio_effects)} audio effects"
        )
    rows = []
    for i, image_effect in enumerate(image_effects):
        finite = np.isfinite(score[i])
        if not finite.any():
            rows.append(
                {
                    "image_effect": image_effect,
                    "audio_effect": None,
                    "score": None,
                    "chosen": False,
                    "reason": "no finite score in its row",
                }
            )
            continue
        j = int(np.argmax(np.where(finite, score[i], -np.inf)))
        best = float(score[i, j])
        chosen = best > threshold
        rows.append(
            {
                "image_effect": image_effect,
                "audio_effect": str(audio_effects[j]),
                "score": best,
                "chosen": chosen,
                "reason": None if chosen else f"best score {best:.4g} <= threshold {threshold:g}",
            }
        )
    return rows


# --------------------------------------------------------------------------- descriptions


def level_word(level: float, words: Sequence[str]) -> str:
    """The word for a level in [0, 1]: equal bins, weakest word first."""
    n = len(words)
    return words[min(int(level * n), n - 1)]


def describe(template: str, word: str) -> str:
    """Fill ``{level}``; "a" before a vowel becomes "an" ("an extremely blurry photo")."""
    text = template.format(level=word)
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


# --------------------------------------------------------------------------- data set


def split_files(n_files: int, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation files: ``round(val_fraction * n)`` of them, at least one on
    each side, chosen by a seeded permutation."""
    if n_files < 2:
        raise ValueError(
            f"Phase 3 needs at least 2 audio files to hold one out for validation, got {n_files}"
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = min(max(1, round(val_fraction * n_files)), n_files - 1)
    perm = np.random.default_rng([seed, 101]).permutation(n_files)
    is_val = np.zeros(n_files, dtype=bool)
    is_val[perm[:n_val]] = True
    return is_val


def build_samples(
    paths: Sequence[str],
    categories: Sequence[str],
    pairs: Sequence[Mapping[str, Any]],
    *,
    levels_per_pair: int,
    level_words: Sequence[str],
    templates: Mapping[str, str],
    val_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """The sample list: file × pair × ``levels_per_pair`` levels.

    Levels are stratified: the k-th level of a (file, pair) is uniform in
    ``[k / n, (k + 1) / n)``, so every level word is drawn equally often for every file.
    """
    is_val = split_files(len(paths), val_fraction, seed)
    rng = np.random.default_rng([seed, 202])
    rows = []
    for f, (path, category) in enumerate(zip(paths, categories, strict=True)):
        for pair in pairs:
            levels = (np.arange(levels_per_pair) + rng.uniform(size=levels_per_pair)) / (
                levels_per_pair
            )
            for u in levels:
                word = level_word(float(u), level_words)
                rows.append(
                    {
                        "sample": len(rows),
                        "file_index": f,
                        "path": str(path),
                        "category": str(category),
                        "split": "val" if is_val[f] else "train",
                        "image_effect": pair["image_effect"],
                        "audio_effect": pair["audio_effect"],
                        "level": float(u),
                        "level_word": word,
                        "description": describe(templates[pair["image_effect"]], word),
                    }
                )
    return pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))


def targets_for(samples: pd.DataFrame, space: ParamSpace) -> np.ndarray:
    """(N, dim) normalised target vectors of the sample list."""
    out = np.zeros((len(samples), space.dim), dtype=np.float32)
    for i, (effect, level) in enumerate(
        zip(samples["audio_effect"], samples["level"], strict=True)
    ):
        out[i] = space.target(effect, float(level))
    return out


# --------------------------------------------------------------------------- audio windows


@dataclass(frozen=True)
class WindowSpec:
    """``count`` windows of ``window`` samples, each ``hop`` samples after the previous; the
    last one is the centred window extraction embeds (the file is periodic before its start,
    as for the pre-roll)."""

    count: int
    hop: int
    window: int
    sample_rate: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.hop < 1 or self.window < 1 or self.sample_rate < 1:
            raise ValueError(f"invalid window spec {self}")

    @property
    def lead(self) -> int:
        """Samples before the centred window that the sequence needs."""
        return (self.count - 1) * self.hop

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def window_clips(path: str | Path, spec: WindowSpec) -> list[np.ndarray]:
    """The ``count`` clips of one file, oldest first; the last is extraction's window."""
    span = load_audio(path, spec.sample_rate, spec.window, preroll=spec.lead)
    return [span[k * spec.hop : k * spec.hop + spec.window] for k in range(spec.count)]


def embed_windows(
    embedder: Any,
    paths: Sequence[str],
    spec: WindowSpec,
    *,
    last: np.ndarray | None = None,
    batch_size: int = 8,
) -> np.ndarray:
    """(F, count, D) window embeddings. ``last`` (F, D), when given, are the centred windows'
    embeddings already made by extraction: those windows are not embedded again."""
    from delta_v2a.extract import prefetched_batches

    k_new = spec.count - (1 if last is not None else 0)
    out = np.zeros((len(paths), spec.count, embedder.dim), dtype=np.float32)
    if last is not None:
        out[:, -1] = last
    if k_new == 0:
        return out
    per_batch = max(1, batch_size // k_new)
    done = 0
    for batch in prefetched_batches(
        list(paths), lambda p: window_clips(p, spec)[:k_new], per_batch, workers=1
    ):
        clips = [c for file_clips in batch for c in file_clips]
        emb = embedder.embed_audio(clips, batch_size=batch_size)
        out[done : done + len(batch), :k_new] = emb.reshape(len(batch), k_new, -1)
        done += len(batch)
        log.info("embedded windows of %d/%d files", done, len(paths))
    return out


# --------------------------------------------------------------------------- model


class DecoderNet(nn.Module):
    """Text condition (B, Dt) × window sequence (B, K, Da) -> parameter vector (B, P).

    ``attention``: the projected text embedding is the single query of a multi-head
    cross-attention over the projected windows (plus a learned position per window); the
    attended vector is added to the query (residual), normalised, and fed to the MLP head.
    ``concat``: the ablation - text embedding and mean window embedding concatenated,
    projected, normalised, same head.
    """

    def __init__(
        self,
        *,
        kind: str,
        text_dim: int,
        audio_dim: int,
        n_windows: int,
        n_params: int,
        d_model: int,
        heads: int,
        hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"decoder kind must be one of {KINDS}, got {kind!r}")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.kind = kind
        if kind == "attention":
            self.query = nn.Linear(text_dim, d_model)
            self.key_value = nn.Linear(audio_dim, d_model)
            self.position = nn.Parameter(torch.zeros(n_windows, d_model))
            self.attention = nn.MultiheadAttention(
                d_model, heads, dropout=dropout, batch_first=True
            )
        else:
            self.project = nn.Linear(text_dim + audio_dim, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_params),
        )

    def forward(self, text: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if self.kind == "attention":
            q = self.query(text).unsqueeze(1)
            kv = self.key_value(audio) + self.position
            attended, _ = self.attention(q, kv, kv, need_weights=False)
            h = self.norm(q + attended).squeeze(1)
        else:
            h = self.norm(self.project(torch.cat([text, audio.mean(dim=1)], dim=-1)))
        return self.head(h)


def build_decoder(arch: Mapping[str, Any]) -> DecoderNet:
    return DecoderNet(**dict(arch))


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
    is_val: np.ndarray  # (N,) bool

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("text", "audio", "desc_index", "file_index", "targets", "is_val"):
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
    seconds: float  # spent in this call (a resumed run counts only its own epochs)
    epochs_run: int  # epochs trained in this call
    extra: dict[str, Any] = field(default_factory=dict)

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
) -> TrainResult:
    """Train one decoder; resume from ``checkpoint`` when it was made with the same inputs and
    settings (a fingerprint of both is stored in it), else start afresh.

    The checkpoint is rewritten atomically with the model, optimiser and RNG states, the
    history and the best epoch's weights, so an interrupted run resumed from it gives the same
    result as one that never stopped. It is written after the last epoch and after any epoch
    that ends at least ``checkpoint_interval_s`` after the previous write (0: every epoch).
    ``on_epoch`` sees each epoch's record.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # one definite GPU for the RNG states
        device = torch.device("cuda", torch.cuda.current_device())
    kind = arch["kind"]
    ckpt_path = Path(checkpoint) if checkpoint else None
    fp = _fingerprint(arch, settings, data)
    train_idx = torch.as_tensor(np.flatnonzero(~data.is_val), dtype=torch.long)
    val_idx = torch.as_tensor(np.flatnonzero(data.is_val), dtype=torch.long)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError("training needs samples on both sides of the split")
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
        t0 = last_write = time.perf_counter()
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
        seconds = time.perf_counter() - t0
    return TrainResult(
        kind=kind,
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        best_state=best_state,
        resumed_from=resumed_from,
        seconds=seconds,
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


@torch.no_grad()
def predict(
    model: nn.Module, text: np.ndarray, audio: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """(N, P) raw predictions (not clipped) for rows of text (N, Dt) and windows (N, K, Da)."""
    model.eval()
    device = torch.device(device)
    out = model(
        torch.as_tensor(text, dtype=torch.float32, device=device),
        torch.as_tensor(audio, dtype=torch.float32, device=device),
    )
    return out.to("cpu").numpy().astype(np.float32)


def model_with_state(
    arch: Mapping[str, Any], state: Mapping[str, torch.Tensor], device: str | torch.device = "cpu"
) -> DecoderNet:
    model = build_decoder(arch)
    model.load_state_dict(dict(state))
    return model.to(device).eval()


# --------------------------------------------------------------------------- spectrograms


@dataclass(frozen=True)
class MelSettings:
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    amin: float = 1e-10  # power floor before the log (librosa's default: -100 dB)


def log_mel(audio: np.ndarray, sr: int, mel: MelSettings) -> np.ndarray:
    """(n_mels, frames) log-mel power spectrogram in dB (absolute: ref = 1.0)."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32),
        sr=sr,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        n_mels=mel.n_mels,
        power=2.0,
    )
    return 10.0 * np.log10(np.maximum(power, mel.amin))


def spectral_distance(a_db: np.ndarray, b_db: np.ndarray) -> float:
    """Mean absolute difference of two log-mel spectrograms, in dB."""
    if a_db.shape != b_db.shape:
        raise ValueError(f"spectrogram shapes differ: {a_db.shape} vs {b_db.shape}")
    return float(np.mean(np.abs(a_db - b_db)))


# --------------------------------------------------------------------------- decoder_model.pt


def save_decoder(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``decoder_model.pt`` atomically after checking it holds only plain values."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    _check_plain(doc, "decoder_model")
    with atomic_path(path, ".pt") as tmp:
        torch.save(doc, tmp)


def _check_plain(value: Any, where: str) -> None:
    if (
        isinstance(value, torch.Tensor)
        or value is None
        or isinstance(value, (bool, int, float, str))
    ):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a plain value (weights_only load)")


@dataclass
class Decoder:
    """A loaded ``decoder_model.pt``: the network and everything needed to use it."""

    model: DecoderNet
    space: ParamSpace
    windows: WindowSpec
    preroll: int
    doc: dict[str, Any]

    @property
    def audio_model(self) -> dict[str, Any]:
        return self.doc["audio_model"]

    def predict(self, text: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """(N, P) predictions clipped to [0, 1]."""
        device = next(self.model.parameters()).device
        return np.clip(predict(self.model, text, windows, device), 0.0, 1.0)


def load_decoder(path: str | Path, device: str | torch.device = "cpu") -> Decoder:
    """Load ``decoder_model.pt`` (``weights_only=True``) and rebuild the network."""
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, not a torch file, pickled classes
        raise ValueError(
            f"{path}: cannot read the decoder ({type(err).__name__}: {str(err)[:200]}); it is "
            "damaged or not a decoder_model.pt: rerun phase3 to write it again"
        ) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path}: not a Delta V2A decoder (format {fmt!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: decoder format version {doc.get('format_version')}, this code reads "
            f"{FORMAT_VERSION}"
        )
    if doc.get("status") != "trained":
        raise ValueError(f"{path}: holds no trained decoder ({doc.get('message', doc['status'])})")
    model = model_with_state(doc["arch"], doc["state_dict"], device)
    return Decoder(
        model=model,
        space=ParamSpace.from_dict(doc["paramspace"]),
        windows=WindowSpec(**doc["windows"]),
        preroll=int(doc["preroll"]),
        doc=doc,
    )


# --------------------------------------------------------------------------- use


def load_whole(path: str | Path, sr: int) -> np.ndarray:
    """A whole file as float32 mono at ``sr`` (the same decoder and resampler as extraction)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        frames, rate = int(info.frames), int(info.samplerate)
    except Exception:  # exotic encodings: let librosa tell the duration
        import librosa

        rate = sr
        frames = int(round(librosa.get_duration(path=str(path)) * sr))
    n_out = max(1, frames * sr // rate)
    return load_audio(path, sr, n_out, preroll=0)


def apply_decoder(
    decoder: Decoder, embedder: Any, audio_path: str | Path, description: str
) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, float] | None]]:
    """Predict parameters for ``description`` on this file and render the whole file with them.

    Returns (rendered float32 mono audio at the space's rate, the normalised vector, the
    physical parameters per effect, None where bypassed).
    """
    spec = decoder.windows
    if embedder.sampling_rate != spec.sample_rate or embedder.window_samples != spec.window:
        raise ValueError(
            f"the audio model runs at {embedder.sampling_rate} Hz with {embedder.window_samples}-"
            f"sample windows; the decoder was trained on {spec.sample_rate} Hz / {spec.window}"
        )
    windows = embed_windows(embedder, [str(audio_path)], spec)
    text = embedder.embed_texts([description])
    vector = decoder.predict(text, windows)[0]
    audio = load_whole(audio_path, spec.sample_rate)
    rendered = decoder.space.render(audio, spec.sample_rate, vector)
    return rendered, vector, decoder.space.physical(vector)
