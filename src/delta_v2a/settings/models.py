"""Which model a job embeds with (:class:`ModelSpec`: what changes its embeddings) and how
many media go through it per forward pass; shared by every phase's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What identifies a model and changes its embeddings (a change reruns the job and
    misses the embedding cache). The batch size is not part of it (:class:`BatchSizes`)."""

    modality: str
    name_or_path: str
    revision: str | None
    device: str
    dtype: str
    normalize: bool
    dim: int
    #: the model family that loads it (delta_v2a.embedders), or "auto": read from its config
    family: str = "auto"


@dataclass(frozen=True)
class BatchSizes:
    """Media per forward pass by device kind; the job picks the kind it runs on."""

    cpu: int
    cuda: int

    def for_device(self, device: str) -> int:
        return self.cuda if device.split(":")[0] == "cuda" else self.cpu


def model_spec(config: Mapping[str, Any], modality: str) -> ModelSpec:
    models = config["models"]
    return ModelSpec(
        modality=modality,
        name_or_path=models[modality],
        revision=models["revision"][modality],
        device=models["device"],
        dtype=models["dtype"],
        normalize=models["normalize"],
        dim=models["dim"][modality],
        family=models["family"][modality],
    )


def batch_sizes(config: Mapping[str, Any], modality: str) -> BatchSizes:
    sizes = config["models"]["batch_size"]
    return BatchSizes(cpu=sizes["cpu"][modality], cuda=sizes["cuda"][modality])


def cache_dir(config: Mapping[str, Any]) -> str | None:
    """The content-addressed embedding cache, or None when ``cache.enabled`` is false."""
    return config["cache"]["dir"] if config["cache"]["enabled"] else None
