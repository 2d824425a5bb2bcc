"""The model layer's front door: load an embedder of any family, and check its health.

The embedders themselves are plug-ins, one module per model family in
``delta_v2a.embedders`` (CLIP, SigLIP, CLAP through transformers, the original LAION-CLAP
checkpoint converted, the planted world); this module re-exports what callers need and holds
the health check, the science that decides whether a model can be used at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from delta_v2a.constants import MODALITIES
from delta_v2a.embedders import AUTO, family_of
from delta_v2a.embedders import load_embedder as _load_family
from delta_v2a.embedders.base import (
    DeviceError,
    ModelInfo,
    resolve_device,
    resolve_dtype,
    to_device,
)
from delta_v2a.metrics import mean_pairwise_cosine_units

__all__ = [
    "AUTO",
    "HEALTH_PROMPTS",
    "DeviceError",
    "ModelInfo",
    "batch_deviation",
    "contrasting_clips",
    "contrasting_images",
    "family_of",
    "fetch_models",
    "health_check",
    "load_embedder",
    "mean_pairwise_cosine",
    "resolve_device",
    "resolve_dtype",
    "to_device",
]


def load_embedder(modality: str, name_or_path: str, family: str | None = AUTO, **kw: Any) -> Any:
    """The ``modality`` tower ("image" or "audio") of a model, loaded by its family
    (``family``, else read from the model folder's config: delta_v2a.embedders); ``kw``
    (device, dtype, normalize, revision) go to the family."""
    return _load_family(modality, name_or_path, family_name=family, **kw)


# --------------------------------------------------------------------------- health check


# --------------------------------------------------------------------------- fetching

#: the tokenizer the original LAION-CLAP checkpoints were trained with
ROBERTA = "FacebookAI/roberta-base"


def fetch_models(configfile: str | Path) -> list[str]:
    """Download every model ``configfile`` names that is not on disk yet; one line per tower.

    Where a model comes from: a hub id is fetched into the Hugging Face cache at its pinned
    ``models.revision``; a local folder from ``models.source.<modality>``: a hub repository
    (downloaded into the folder, as ``hf download --local-dir``), or a checkpoint file in one
    (``org/name/file.pt``: downloaded, then converted by ``convert-clap``). Needs network.
    """
    from delta_v2a.config import load_config, looks_like_local_path

    root = Path(__file__).resolve().parents[2]
    schema = root / "workflow/schemas/config.schema.yaml"
    base = [p for p in (root / "config/config.yaml",) if p.is_file()]
    if not Path(configfile).is_file():
        raise FileNotFoundError(f"--configfile {configfile}: no such file")
    models = load_config(schema, *base, configfile)["models"]
    lines = []
    for modality in MODALITIES:
        name, family = models[modality], models["family"][modality]
        revision, source = models["revision"][modality], models["source"][modality]
        if family == "planted":
            lines.append(
                f"models.{modality}: {name} is built from code (planted): nothing to fetch"
            )
        elif not looks_like_local_path(name):
            lines.append(f"models.{modality}: {_fetch_hub(name, revision, None)}")
        elif (Path(name) / "config.json").is_file():
            lines.append(f"models.{modality}: {name} is already there")
        elif not source:
            raise ValueError(
                f"models.source.{modality}: not set, so the missing folder {name} cannot be "
                "fetched; set it to the hub repository (org/name) or checkpoint (org/name/file.pt)"
            )
        else:
            lines.append(f"models.{modality}: {_fetch_into(Path(name), source, revision)}")
    return lines


def _fetch_hub(repo: str, revision: str | None, local_dir: Path | None) -> str:
    """snapshot_download, with the network's failure said in one line."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(repo, revision=revision, local_dir=local_dir)
    except Exception as err:  # offline, unknown repo or revision: huggingface_hub's many errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot download {repo!r} ({first[:160]})") from None
    return f"{repo}@{revision or 'latest'} -> {path}"


def _fetch_into(folder: Path, source: str, revision: str | None) -> str:
    """A hub repository into ``folder``, or a checkpoint file converted into it."""
    parts = source.split("/")
    if len(parts) == 2:
        return _fetch_hub(source, revision, folder)
    from huggingface_hub import hf_hub_download

    from delta_v2a.embedders.laion_clap import convert

    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        checkpoint = hf_hub_download(repo, filename)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot download {source!r} ({first[:160]})") from None
    receipt = convert(Path(checkpoint), folder, ROBERTA)
    return f"{source} -> {folder} (converted; {receipt['sha256_note']})"


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


#: the default of models.health.batch_limit (the schema's; a test keeps them equal)
BATCH_LIMIT = 1e-4


def batch_deviation(alone: np.ndarray, batched: np.ndarray) -> float:
    """Largest cosine distance ``1 - cos`` between each input embedded alone and the same
    input embedded inside a batch.

    Why: a model whose embedding of an input depends on what else is in its batch (padding,
    batch-dependent kernels, fusion's random "longer" flag) adds noise of that size to every
    delta; the study measures small deltas, so the health check stops such a model.
    """
    a = np.asarray(alone, dtype=np.float64)
    b = np.asarray(batched, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or not len(a):
        raise ValueError(f"need two equal 2-D arrays of rows, got {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if not (np.all(na > 0) and np.all(nb > 0)):
        raise ValueError("rows must be non-zero to compute cosines")
    cos = np.einsum("ij,ij->i", a, b) / (na * nb)
    return float(np.max(1.0 - cos))


def _batch_figures(
    embedder: Any, prompts: Sequence[str], media: Sequence[np.ndarray] | None
) -> dict[str, float]:
    """Each input embedded alone against all of them in one batch: text, and media if given."""
    texts = list(prompts)
    out = {
        "text": batch_deviation(
            np.concatenate([embedder.embed_texts([t], batch_size=1) for t in texts]),
            embedder.embed_texts(texts, batch_size=len(texts)),
        )
    }
    if media is not None:
        items = list(media)
        alone = np.concatenate([embedder.embed([x], 1) for x in items])
        out["media"] = batch_deviation(alone, embedder.embed(items, len(items)))
    return out


def health_check(
    embedder: _HasTextEmbeddings,
    *,
    prompts: Sequence[str] = HEALTH_PROMPTS,
    clips: Sequence[np.ndarray] | None = None,
    images: Sequence[np.ndarray] | None = None,
    limit: float = 0.95,
    batch_limit: float = BATCH_LIMIT,
) -> dict[str, Any]:
    """Report whether unrelated prompts (and optional clips) embed to distinct directions, and
    whether inputs embed the same alone as inside a batch.

    Passes when every measured mean pairwise cosine is <= ``limit`` and every input's cosine
    distance alone vs batched is <= ``batch_limit`` (the determinism gate, over the prompts and
    the clips or ``images``). Only reports: the caller decides whether a failure stops the run.
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
    batch = _batch_figures(embedder, prompts, clips if clips is not None else images)
    figures = [("text", text_cos)] + ([("audio", audio_cos)] if audio_cos is not None else [])
    bad = [(kind, v) for kind, v in figures if not v <= limit]
    unstable = [(kind, v) for kind, v in batch.items() if not v <= batch_limit]
    summary = ", ".join(f"{kind} mean pairwise cosine {v:.4f}" for kind, v in figures)
    summary += f" (limit {limit}); alone vs batched: " + ", ".join(
        f"{kind} {v:.2e}" for kind, v in batch.items()
    )
    summary += f" (limit {batch_limit:g})"
    problems = []
    if bad:
        worst = ", ".join(kind for kind, _ in bad)
        problems.append(
            f"{worst} embeddings of unrelated inputs are nearly collapsed onto one direction"
        )
    if unstable:
        which = ", ".join(kind for kind, _ in unstable)
        problems.append(
            f"{which} embeddings change with the batch they are in (models.health.batch_limit)"
        )
    if problems:
        message = f"{name}: FAILED health check: {summary}; " + "; ".join(problems)
    else:
        message = f"{name}: passed health check: {summary}"
    if embedder.info.tiny:
        message += f" [{embedder.info.note}]"
    return {
        "model": embedder.info.to_dict(),
        "text_mean_pairwise_cosine": text_cos,
        "audio_mean_pairwise_cosine": audio_cos,
        "limit": limit,
        "batch_max_cosine_distance": batch,
        "batch_limit": batch_limit,
        "passed": not bad and not unstable,
        "message": message,
    }


# --------------------------------------------------------------------------- probes


def contrasting_clips(sr: int, window: int) -> list[np.ndarray]:
    """Deterministic clips that any working audio tower should tell apart."""
    t = np.arange(window, dtype=np.float64) / sr
    rng = np.random.default_rng(0)
    clips = [
        0.3 * np.sin(2 * np.pi * 440 * t),  # a pure tone
        0.1 * rng.standard_normal(window),  # white noise
        0.5 * (np.arange(window) % (sr // 4) < 40),  # a click train
        sum(0.1 * np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0)),  # a low chord
        0.3 * np.sign(np.sin(2 * np.pi * 3000 * t)),  # a bright square wave
    ]
    return [c.astype(np.float32) for c in clips]


def contrasting_images(size: int) -> list[np.ndarray]:
    """Deterministic float RGB images in [0, 1] that differ in every way a photo can: for the
    determinism gate (each alone vs all in one batch), not for a collapse figure."""
    ramp = np.linspace(0.0, 1.0, size)
    rng = np.random.default_rng(0)
    checker = ((np.arange(size)[:, None] // 16 + np.arange(size)[None, :] // 16) % 2).astype(float)
    images = [
        np.stack([np.tile(ramp, (size, 1))] * 3, axis=-1),  # a grey horizontal ramp
        rng.random((size, size, 3)),  # colour noise
        np.repeat(checker[..., None], 3, axis=-1),  # a checkerboard
        np.broadcast_to([0.8, 0.3, 0.1], (size, size, 3)),  # a flat orange
    ]
    return [np.ascontiguousarray(i, dtype=np.float32) for i in images]
