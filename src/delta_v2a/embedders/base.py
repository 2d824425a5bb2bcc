"""What every embedder shares: the info record, device and dtype, and the Hugging Face path.

Why one module: every number in the study is a distance between embeddings, so the way media
reach a model (normalisation, audio window, padding, dtype) must be identical everywhere and
visible in a few files. Callers hand over media that are already resized / cropped /
resampled; an embedder only applies the model's own normalisation and runs the model.

An embedder (any family, see ``delta_v2a.embedders``) offers ``embed_texts``, ``embed`` (and
``embed_images`` or ``embed_audio``), ``prepare`` / ``embed_prepared`` (the CPU half and the
model half, so callers can prepare in a worker pool), ``dim`` and ``info`` (:class:`ModelInfo`),
plus ``input_size`` (image towers) or ``sampling_rate`` and ``window_samples`` (audio towers).
Nothing global is set (threads, seeds, environment); models run in eval mode under
``torch.inference_mode``. Text is padded to the longest prompt of the batch unless a family
says otherwise (SigLIP was trained on text padded to its full length).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoProcessor

from delta_v2a.config import local_revision, looks_like_local_path

TINY_MARKER = "delta_v2a_tiny.json"
TINY_NOTE = "tiny randomly initialised model: results are not science"
FETCH_HINT = (
    "`delta-v2a fetch-models --configfile CONFIG` downloads every model a config names (where "
    "there is network); offline, `python -m delta_v2a.tiny_models OUT_ROOT` writes tiny test "
    "models of every family"
)

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

_OFFLINE_HINT = FETCH_HINT + "."


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
    """What was loaded, for provenance files: id, where it resolved to, precision, device,
    family, and the input the model takes (image size, or sample rate and window)."""

    name_or_path: str
    resolved_path: str | None
    dtype: str
    device: str
    dim: int
    tiny: bool
    note: str
    #: hub commit: the pinned models.revision, else what the files on disk record
    revision: str | None = None
    #: registry key of the family that loaded it (delta_v2a.embedders)
    family: str | None = None
    #: image towers: the square side in pixels the model takes
    input_size: int | None = None
    #: audio towers: the sample rate and the window in samples the model takes
    sampling_rate: int | None = None
    window_samples: int | None = None

    @property
    def science(self) -> bool:
        """False for tiny random and planted models: their numbers test the pipeline only."""
        return not self.tiny

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Embedder(Protocol):
    """The interface every family implements (see the module docstring)."""

    info: ModelInfo
    dim: int
    normalize: bool

    def embed_texts(self, texts: Sequence[str], batch_size: int = ...) -> np.ndarray: ...

    def embed(self, items: Sequence[np.ndarray], batch_size: int) -> np.ndarray: ...

    def prepare(self, item: np.ndarray, index: int = 0) -> Any: ...

    def embed_prepared(self, prepared: Sequence[Any]) -> np.ndarray: ...


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
    model_types: tuple[str, ...],
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
        if config.model_type not in model_types:
            raise ValueError(
                f"{name_or_path!r} is a {config.model_type!r} model, expected "
                f"{' or '.join(repr(t) for t in model_types)}"
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
        dim=_projection_dim(config),
        tiny=tiny,
        note=note,
        revision=revision or _disk_revision(resolved),
    )
    return model, processor, info


def _projection_dim(config: Any) -> int:
    """The embedding size: ``projection_dim`` (CLIP, CLAP), else the text width (SigLIP)."""
    dim = getattr(config, "projection_dim", None)
    return int(dim if dim else config.text_config.hidden_size)


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


class HFEmbedder:
    """What the transformers families share: loading, device and dtype, text and batch loops.

    Media embedding is split in two so callers can parallelise the CPU half: ``prepare`` (one
    item -> the exact tensor the model receives; pure, thread-safe, run in a worker pool) and
    ``forward`` (a list of prepared items -> features on the device). ``embed`` is both in one
    loop; per-item preparation gives the same bits as batched preparation (a test checks).
    """

    #: registry key, config.json ``model_type`` values it claims, towers it offers
    family: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]] = ()
    modalities: ClassVar[tuple[str, ...]] = ()
    model_cls: type
    processor_kw: ClassVar[dict[str, Any]] = {}
    #: text padding: "longest" (same embeddings with attention masks, faster) or "max_length"
    text_padding: ClassVar[str] = "longest"

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
            cls.model_types,
            device,
            dtype,
            revision,
            **cls.processor_kw,
        )
        return cls(model, processor, dataclasses.replace(info, family=cls.family), normalize)

    @classmethod
    def open(cls, modality: str, name_or_path: str, **kw: Any) -> Any:
        """The registry's entry point: this family's tower of ``modality`` (its only one)."""
        return cls.load(name_or_path, **kw)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def text_forward(self, tok: Any) -> torch.Tensor:
        """Text features of one tokenised batch (attention mask where the tokenizer gives one)."""
        kw = {"input_ids": to_device(tok["input_ids"], self._device)}
        if "attention_mask" in tok:
            kw["attention_mask"] = to_device(tok["attention_mask"], self._device)
        return self.model.get_text_features(**kw).pooler_output

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
                    padding=self.text_padding,
                    truncation=True,
                    max_length=self._text_max_length,
                    return_tensors="pt",
                )
                chunks.append(self.text_forward(tok))
        return _finish(chunks, self.dim, self.normalize)


def _finite_float32(label: str, arr: np.ndarray, expected: str) -> np.ndarray:
    """``arr`` as float32, refusing integer input (its scale is ambiguous) and NaN or inf."""
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{label}: expected {expected}, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{label}: contains NaN or inf")
    return arr
