"""Model loading and embedding for CLIP (images) and CLAP (audio), in one place.

Why one module: every number in the study is a distance between embeddings, so the way media
reach the model (normalisation, audio window, padding, dtype) must be identical everywhere and
visible in one file. Callers hand over media that are already resized / cropped / resampled;
this module only applies the model's own normalisation and runs the model.

Decisions worth knowing:

* Images arrive as float32 RGB in [0, 1] at the processor's crop size. The image processor is
  asked for the PIL backend explicitly and told not to resize, crop or rescale, so the model
  sees exactly ``(img - image_mean) / image_std`` (a test checks this), and installing
  torchvision later cannot silently change preprocessing.
* Audio arrives as exactly one model window (10 s at 48 kHz for CLAP). Feature extraction uses
  ``truncation="rand_trunc"`` on clips of exactly the window length, so no random crop happens;
  fusion is never used, because the feature extractor then marks a random batch item as
  "longer" and results would depend on the batch. For fusion checkpoints this means the global
  branch only, which is what those models do for clips that are not longer than the window.
* Text is padded to the longest prompt of the batch (not to the maximum length), which is
  faster and, with attention masks, gives the same embeddings.
* Nothing global is set (threads, seeds, environment); models run in eval mode under
  ``torch.inference_mode``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoProcessor, ClapModel, CLIPModel

from delta_v2a.config import local_revision, looks_like_local_path
from delta_v2a.metrics import mean_pairwise_cosine_units
from delta_v2a.tiny_models import TINY_MARKER, TINY_NOTE

__all__ = [
    "HEALTH_PROMPTS",
    "ClapEmbedder",
    "ClipEmbedder",
    "ModelInfo",
    "health_check",
    "load_embedder",
    "mean_pairwise_cosine",
    "resolve_device",
    "resolve_dtype",
    "to_device",
]

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

_OFFLINE_HINT = (
    "If this machine cannot download from the Hugging Face hub, use a local directory: "
    "`python -m delta_v2a.tiny_models OUT_ROOT` writes offline test models "
    "(OUT_ROOT/tiny-clip, OUT_ROOT/tiny-clap)."
)


# --------------------------------------------------------------------------- device and dtype


class DeviceError(ValueError):
    """A device the config or command names that this machine does not have: a refusal the
    user fixes (``models.device``), ended with its one line by the jobs and the CLI."""


def resolve_device(device: str) -> torch.device:
    """Turn "auto" / "cpu" / "cuda" / "cuda:N" into a device, failing loudly if CUDA is absent.

    Why: a run configured for a GPU must not fall back to the CPU silently (it would be slow
    and, in half precision, numerically different).
    """
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {device!r} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) are visible"
            )
    elif dev.type != "cpu":
        raise DeviceError(f"unsupported device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    return dev


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """Map "fp32" / "bf16" / "fp16" / "auto" to a torch dtype.

    "auto" is fp32 on CPU (half precision is slow there and changes the numbers) and, on CUDA,
    bf16 where the GPU supports it, else fp16. Explicit names are honoured as given.
    """
    name = dtype.strip().lower()
    if name in _DTYPES:
        return _DTYPES[name]
    if name != "auto":
        raise ValueError(f"unknown dtype {dtype!r}; use one of fp32, bf16, fp16, auto")
    dev = torch.device(device) if isinstance(device, str) else device
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# --------------------------------------------------------------------------- model info


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, for provenance files: id, where it resolved to, precision, device."""

    name_or_path: str
    resolved_path: str | None
    dtype: str
    device: str
    dim: int
    tiny: bool
    note: str
    #: hub commit: the pinned models.revision, else what the files on disk record
    revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_local(name_or_path: str) -> None:
    """Fail with a clear message for missing local paths before transformers tries the hub."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(
                f"model path {name_or_path!r} exists but is not a directory; "
                "pass the directory written by save_pretrained"
            )
        _check_readable(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"model directory {name_or_path!r} has no config.json; it is not a saved "
                f"model. {_OFFLINE_HINT}"
            )
        return
    if looks_like_local_path(name_or_path):
        raise FileNotFoundError(f"model directory {name_or_path!r} does not exist. {_OFFLINE_HINT}")


def _check_readable(path: Path) -> None:
    """The folder and every file in it must be readable by this user.

    Why: transformers reports an unreadable folder or weights file (another user's 0600
    ``model.safetensors``) as a missing one ("the local directory is incomplete (No such file
    or directory)"); the user needs the path and the words permission denied. ``os.access``
    asks the kernel with this process's real ids (root passes, as it reads everything).
    """
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionError(f"model directory '{path}': permission denied (cannot list it)")
    for item in sorted(path.iterdir()):
        if item.is_file() and not os.access(item, os.R_OK):
            raise PermissionError(f"model file '{item}': permission denied (cannot read it)")


def _resolved_dir(name_or_path: str) -> Path | None:
    """The directory the files came from: the local dir, or the hub cache snapshot."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local.resolve()
    try:
        from transformers.utils import cached_file

        cfg = cached_file(name_or_path, "config.json", _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None
    return Path(cfg).parent.resolve() if cfg else None


def _disk_revision(resolved: Path | None) -> str | None:
    """The commit the files came from: hf download's record, or a hub-cache snapshot's name."""
    if resolved is None:
        return None
    if resolved.parent.name == "snapshots":
        return resolved.name
    return local_revision(resolved)


def _tiny_note(resolved: Path | None) -> tuple[bool, str]:
    if resolved is None or not (resolved / TINY_MARKER).is_file():
        return False, ""
    try:
        note = json.loads((resolved / TINY_MARKER).read_text()).get("note") or TINY_NOTE
    except (OSError, ValueError):
        note = TINY_NOTE
    return True, str(note)


def _load(
    name_or_path: str,
    model_cls: type,
    model_type: str,
    device: str,
    dtype: str,
    revision: str | None = None,
    **proc_kw: Any,
) -> tuple[Any, Any, ModelInfo]:
    """Shared loading path for hub ids and local directories (both go through from_pretrained)."""
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    _check_local(name_or_path)
    rev = {"revision": revision} if revision else {}
    try:
        config = AutoConfig.from_pretrained(name_or_path, **rev)
        if config.model_type != model_type:
            raise ValueError(
                f"{name_or_path!r} is a {config.model_type!r} model, expected {model_type!r}"
            )
        model = model_cls.from_pretrained(name_or_path, config=config, dtype=torch_dtype, **rev)
        processor = AutoProcessor.from_pretrained(name_or_path, **rev, **proc_kw)
    except OSError as err:
        first_line = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        where = (
            "the local directory is incomplete"
            if Path(name_or_path).expanduser().is_dir()
            else "it is not a local directory and could not be found in the Hugging Face "
            "cache or hub"
        )
        raise ValueError(
            f"could not load model {name_or_path!r}: {where} ({first_line}). {_OFFLINE_HINT}"
        ) from err
    model = model.to(dev).eval()
    resolved = _resolved_dir(name_or_path)
    tiny, note = _tiny_note(resolved)
    info = ModelInfo(
        name_or_path=str(name_or_path),
        resolved_path=str(resolved) if resolved is not None else None,
        dtype=_DTYPE_NAMES[torch_dtype],
        device=str(dev),
        dim=int(config.projection_dim),
        tiny=tiny,
        note=note,
        revision=revision or _disk_revision(resolved),
    )
    return model, processor, info


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _finish(chunks: list[torch.Tensor], dim: int, normalize: bool) -> np.ndarray:
    """Concatenate batch outputs as float32 numpy, L2-normalised in float32 if asked."""
    if not chunks:
        return np.zeros((0, dim), dtype=np.float32)
    out = torch.cat(chunks).float()
    if normalize:
        out = F.normalize(out, dim=-1)
    return out.cpu().numpy().astype(np.float32, copy=False)


def _text_max_length(tokenizer: Any, limit_from_config: int) -> int:
    """Truncation length: the tokenizer's limit, capped by the model's position table."""
    tok_max = getattr(tokenizer, "model_max_length", None) or limit_from_config
    return int(min(tok_max, limit_from_config))


def to_device(
    tensor: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Host batch -> model device; on CUDA through pinned memory with a non-blocking copy.

    Why: a pageable host tensor makes the copy synchronous (the GPU waits for the CPU);
    pinned, the copy is a DMA the caching host allocator keeps alive until it is done, and the
    cast to the model's dtype happens on the device. On the CPU this is a plain ``.to``.
    """
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
        return tensor if dtype is None else tensor.to(dtype)
    return tensor.to(device) if dtype is None else tensor.to(device, dtype=dtype)


# --------------------------------------------------------------------------- shared base


class _Embedder:
    """What CLIP and CLAP embedders share: loading, device and dtype, text and batch loops.

    Media embedding is split in two so callers can parallelise the CPU half: ``prepare`` (one
    item -> the exact tensor the model receives; pure, thread-safe, run in a worker pool) and
    ``forward`` (a list of prepared items -> features on the device). ``embed`` is both in one
    loop; per-item preparation gives the same bits as batched preparation (a test checks).
    """

    model_cls: type
    model_type: str
    processor_kw: dict[str, Any] = {}

    def __init__(self, model: Any, processor: Any, info: ModelInfo, normalize: bool) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.info = info
        self.normalize = normalize
        self.dim = info.dim

    @classmethod
    def load(
        cls,
        name_or_path: str,
        *,
        device: str = "auto",
        dtype: str = "fp32",
        normalize: bool = True,
        revision: str | None = None,
    ) -> Any:
        """Load a checkpoint (hub id or local dir, at a pinned hub ``revision`` if given);
        extra loading options belong in ``_load``."""
        model, processor, info = _load(
            name_or_path,
            cls.model_cls,
            cls.model_type,
            device,
            dtype,
            revision,
            **cls.processor_kw,
        )
        return cls(model, processor, info, normalize)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def prepare(self, item: np.ndarray, index: int = 0) -> Any:
        raise NotImplementedError

    def forward(self, prepared: Sequence[Any]) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, items: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        """(n, dim) float32 embeddings of media items, ``batch_size`` per forward pass."""
        _check_batch_size(batch_size)
        chunks: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                chunks.append(
                    self.forward([self.prepare(x, start + i) for i, x in enumerate(batch)])
                )
        return _finish(chunks, self.dim, self.normalize)

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """One forward pass over items already ``prepare``d (in a worker pool, say)."""
        with torch.inference_mode():
            chunks = [self.forward(prepared)] if len(prepared) else []
        return _finish(chunks, self.dim, self.normalize)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 text embeddings; padded to the longest prompt of each batch."""
        _check_batch_size(batch_size)
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        chunks: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tok = self.tokenizer(
                    list(texts[start : start + batch_size]),
                    padding="longest",
                    truncation=True,
                    max_length=self._text_max_length,
                    return_tensors="pt",
                )
                out = self.model.get_text_features(
                    input_ids=to_device(tok["input_ids"], self._device),
                    attention_mask=to_device(tok["attention_mask"], self._device),
                )
                chunks.append(out.pooler_output)
        return _finish(chunks, self.dim, self.normalize)


#: The CLIP image processor's work that is left to it: mean/std normalisation only, on float
#: RGB in [0, 1], channels last. Geometry (resize, crop) and rescaling belong to the callers.
_NORMALISE_ONLY = {
    "do_resize": False,
    "do_center_crop": False,
    "do_rescale": False,
    "do_normalize": True,
    "input_data_format": "channels_last",
    "return_tensors": "pt",
}


def _finite_float32(label: str, arr: np.ndarray, expected: str) -> np.ndarray:
    """``arr`` as float32, refusing integer input (its scale is ambiguous) and NaN or inf."""
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{label}: expected {expected}, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{label}: contains NaN or inf")
    return arr


# --------------------------------------------------------------------------- CLIP


class ClipEmbedder(_Embedder):
    """CLIP image and text embeddings for preprocessed images (see module docstring)."""

    model_cls = CLIPModel
    model_type = "clip"
    processor_kw = {"backend": "pil"}

    def __init__(self, model: CLIPModel, processor: Any, info: ModelInfo, normalize: bool) -> None:
        super().__init__(model, processor, info, normalize)
        self.image_processor = processor.image_processor
        crop = self.image_processor.crop_size
        # a SizeDict in transformers 5 (attribute access), a plain dict in older versions
        height = getattr(crop, "height", None) or crop["height"]
        width = getattr(crop, "width", None) or crop["width"]
        if height != width or height != model.config.vision_config.image_size:
            raise ValueError(
                f"processor crop size {height}x{width} does not match the model's image size "
                f"{model.config.vision_config.image_size}"
            )
        self.input_size: int = int(height)
        text_cfg = model.config.text_config
        self._text_max_length = _text_max_length(self.tokenizer, text_cfg.max_position_embeddings)

    def _check_image(self, i: int, img: np.ndarray) -> np.ndarray:
        arr = np.asarray(img)
        size = self.input_size
        if arr.shape != (size, size, 3):
            raise ValueError(
                f"image {i}: expected shape ({size}, {size}, 3) (already resized and cropped), "
                f"got {arr.shape}"
            )
        arr = _finite_float32(f"image {i}", arr, "float RGB in [0, 1]")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"image {i}: values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return arr

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The exact pixel_values the model receives: (img - mean) / std, channels first.

        Resizing, cropping and rescaling are switched off: callers own geometry.
        """
        arrays = [self._check_image(i, img) for i, img in enumerate(images)]
        out = self.image_processor(images=arrays, **_NORMALISE_ONLY)
        return out["pixel_values"]

    def prepare(self, item: np.ndarray, index: int = 0) -> torch.Tensor:
        """One image's pixel_values (3, H, W); errors name the image by ``index``."""
        self._check_image(index, item)
        return self.preprocess([item])[0]

    def forward(self, prepared: Sequence[torch.Tensor]) -> torch.Tensor:
        pixels = to_device(torch.stack(list(prepared)), self._device, self._dtype)
        return self.model.get_image_features(pixel_values=pixels).pooler_output

    def embed_images(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """(n, dim) float32 image embeddings; unit-norm rows when `normalize`."""
        return self.embed(images, batch_size)


# --------------------------------------------------------------------------- CLAP


class ClapEmbedder(_Embedder):
    """CLAP audio and text embeddings for clips of exactly one model window."""

    model_cls = ClapModel
    model_type = "clap"

    def __init__(self, model: ClapModel, processor: Any, info: ModelInfo, normalize: bool) -> None:
        super().__init__(model, processor, info, normalize)
        self.feature_extractor = processor.feature_extractor
        self.sampling_rate: int = int(self.feature_extractor.sampling_rate)
        self.window_samples: int = int(self.feature_extractor.nb_max_samples)
        text_cfg = model.config.text_config
        # RoBERTa positions start after the padding index.
        positions = text_cfg.max_position_embeddings - (text_cfg.pad_token_id or 0) - 1
        self._text_max_length = _text_max_length(self.tokenizer, positions)

    def _check_clip(self, i: int, clip: np.ndarray) -> np.ndarray:
        arr = np.asarray(clip)
        if arr.ndim != 1:
            raise ValueError(f"clip {i}: expected a 1-D mono waveform, got shape {arr.shape}")
        if arr.shape[0] != self.window_samples:
            raise ValueError(
                f"clip {i}: expected exactly {self.window_samples} samples "
                f"({self.window_samples / self.sampling_rate:g} s at {self.sampling_rate} Hz), "
                f"got {arr.shape[0]}"
            )
        return _finite_float32(f"clip {i}", arr, "a float waveform")

    def preprocess(self, clips: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Log-mel features and is_longer flags, without random cropping or fusion."""
        arrays = [self._check_clip(i, c) for i, c in enumerate(clips)]
        out = self.feature_extractor(
            arrays,
            sampling_rate=self.sampling_rate,
            truncation="rand_trunc",  # a no-op on clips of exactly the window length
            padding="repeatpad",
            return_tensors="pt",
        )
        return {"input_features": out["input_features"], "is_longer": out["is_longer"]}

    def prepare(self, item: np.ndarray, index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip's (input_features, is_longer); errors name the clip by ``index``."""
        self._check_clip(index, item)
        feats = self.preprocess([item])
        return feats["input_features"][0], feats["is_longer"][0]

    def forward(self, prepared: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        features = torch.stack([p[0] for p in prepared])
        is_longer = torch.stack([p[1] for p in prepared])
        out = self.model.get_audio_features(
            input_features=to_device(features, self._device, self._dtype),
            is_longer=to_device(is_longer, self._device),
        )
        return out.pooler_output

    def embed_audio(self, clips: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """(n, dim) float32 audio embeddings of exactly-one-window clips."""
        return self.embed(clips, batch_size)


def load_embedder(modality: str, name_or_path: str, **kw: Any) -> ClipEmbedder | ClapEmbedder:
    """Dispatch on modality: image -> ClipEmbedder, audio -> ClapEmbedder; `kw` go to `load`.

    ``planted:image`` / ``planted:audio`` give the known-answer stand-ins (delta_v2a.planted).
    """
    if name_or_path.startswith("planted:"):
        from delta_v2a.planted import load_planted

        return load_planted(modality, name_or_path, **kw)  # type: ignore[return-value]
    if modality == "image":
        return ClipEmbedder.load(name_or_path, **kw)
    if modality == "audio":
        return ClapEmbedder.load(name_or_path, **kw)
    raise ValueError(f"unknown modality {modality!r}; use 'image' or 'audio'")


# --------------------------------------------------------------------------- health check


def mean_pairwise_cosine(emb: np.ndarray) -> float:
    """Mean cosine over pairs i<j, via (||sum u||^2 - n) / (n (n - 1)) on unit-normalised rows.

    Why: a model whose embeddings of unrelated inputs all point the same way (mean near 1)
    cannot show meaningful deltas; this is the cheap collapse detector.
    """
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a 2-D array with at least 2 rows, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(norms > 0) or not np.isfinite(norms).all():
        raise ValueError("rows must be finite and non-zero to compute cosines")
    return mean_pairwise_cosine_units(x / norms)


HEALTH_PROMPTS: tuple[str, ...] = (
    "a photo of a dog",
    "a violin concerto",
    "heavy traffic noise",
    "a bowl of ramen on a wooden table",
    "rain falling on a tin roof",
    "a crowd cheering in a stadium",
    "an abstract oil painting",
    "a solo jazz piano",
)


class _HasTextEmbeddings(Protocol):
    info: ModelInfo

    def embed_texts(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray: ...


def health_check(
    embedder: _HasTextEmbeddings,
    *,
    prompts: Sequence[str] = HEALTH_PROMPTS,
    clips: Sequence[np.ndarray] | None = None,
    limit: float = 0.95,
) -> dict[str, Any]:
    """Report whether unrelated prompts (and optional clips) embed to distinct directions.

    Passes when every measured mean pairwise cosine is <= `limit`. Only reports: the caller
    decides whether a failure stops the run.
    """
    if len(prompts) < 2:
        raise ValueError("health_check needs at least 2 prompts")
    name = embedder.info.name_or_path
    text_cos = mean_pairwise_cosine(embedder.embed_texts(list(prompts)))
    audio_cos: float | None = None
    if clips is not None:
        embed_audio = getattr(embedder, "embed_audio", None)
        if embed_audio is None:
            raise TypeError(f"{type(embedder).__name__} has no embed_audio; pass clips=None")
        audio_cos = mean_pairwise_cosine(embed_audio(list(clips)))
    figures = [("text", text_cos)] + ([("audio", audio_cos)] if audio_cos is not None else [])
    bad = [(kind, v) for kind, v in figures if not v <= limit]
    summary = ", ".join(f"{kind} mean pairwise cosine {v:.4f}" for kind, v in figures)
    if bad:
        worst = ", ".join(kind for kind, _ in bad)
        message = (
            f"{name}: FAILED health check: {summary} (limit {limit}); {worst} embeddings of "
            "unrelated inputs are nearly collapsed onto one direction"
        )
    else:
        message = f"{name}: passed health check: {summary} (limit {limit})"
    if embedder.info.tiny:
        message += f" [{embedder.info.note}]"
    return {
        "model": embedder.info.to_dict(),
        "text_mean_pairwise_cosine": text_cos,
        "audio_mean_pairwise_cosine": audio_cos,
        "limit": limit,
        "passed": not bad,
        "message": message,
    }
