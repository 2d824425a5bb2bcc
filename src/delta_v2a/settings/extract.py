"""Settings of the extraction jobs: manifest (vetting), embedding, deltas, model health."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from delta_v2a.config import data_root, effect_names, effect_params
from delta_v2a.media import MAX_DECODE_BYTES, ROOT_KEYS
from delta_v2a.settings.models import BatchSizes, ModelSpec, batch_sizes, cache_dir, model_spec


@dataclass(frozen=True)
class ManifestSettings:
    modality: str
    root: str
    key: str  # the config key naming the root, for messages
    on_bad_file: str
    preroll_s: float
    lead_s: float  # Phase 3's window sequence reaches this far before the centred window
    version: str  # a new package version reruns the manifest (formats may change)
    decode_budget_mib: int  # preprocessing.image.decode_budget_mib: larger images are refused
    shards: int = 0  # extract.shard_files: vetting in this many jobs (0: one job)
    shard: int = 0  # which of them this job is


@dataclass(frozen=True)
class EmbedSettings:
    model: ModelSpec
    batch: BatchSizes
    preroll_s: float
    effect: str | None  # None: the originals
    intensity: str | None
    effect_params: dict[str, float]
    cache_dir: str | None
    shards: int  # extract.shard_files: file shards per variant (0: off, one job per variant)
    shard: int  # which of them this job embeds (0 when off)
    decode_budget_mib: int  # the manifest's budget: every vetted file decodes here too


@dataclass(frozen=True)
class ExtractSettings:
    """How extraction is cut into jobs (docs/methods.md §2.2): ``group`` is what one model job
    embeds (``variant``, ``effect``: every intensity of one effect, ``modality``: the originals
    and every variant of one modality, the model loaded once); ``shard_files`` splits every
    variant's files into that many jobs (0: off)."""

    group: str
    shard_files: int


@dataclass(frozen=True)
class EmbedGroupSettings:
    """One grouped model job: its variants, in the order of the rule's outputs."""

    variants: tuple[EmbedSettings, ...]


@dataclass(frozen=True)
class DeltasSettings:
    modality: str
    effects: tuple[str, ...]
    intensities: tuple[str, ...]
    shards: int  # extract.shard_files: each variant's table comes in this many parts (0: one)
    seed_json: str  # extract.seed_json: full | gzip | none (docs/methods.md §2.3)


@dataclass(frozen=True)
class HealthSettings:
    model: ModelSpec
    limit: float
    batch_limit: float


def manifest_settings(
    config: Mapping[str, Any], modality: str, version: str, shard: int = 0
) -> ManifestSettings:
    windows = config["phase3"]["windows"]
    return ManifestSettings(
        modality=modality,
        root=data_root(config, modality),
        key=ROOT_KEYS[modality],
        on_bad_file=config["on_bad_file"],
        preroll_s=config["preprocessing"]["audio"]["preroll_s"],
        lead_s=(windows["count"] - 1) * windows["hop_s"],
        version=version,
        decode_budget_mib=decode_budget_mib(config, modality),
        shards=extract_settings(config).shard_files,
        shard=shard,
    )


#: The schema's default for preprocessing.image.decode_budget_mib (a test keeps them equal): the
#: budget the rules' declared memory (manifest 2000 MB for two decodes, embedding 8000 MB) fits.
DEFAULT_DECODE_BUDGET_MIB = MAX_DECODE_BYTES // 2**20


def decode_budget_mib(config: Mapping[str, Any], modality: str) -> int:
    """The most memory one image decode may need (MiB): larger images are refused when vetted.

    Audio jobs get 0 (they decode no image), so a changed budget reruns no audio job.
    """
    if modality != "image":
        return 0
    return int(config["preprocessing"]["image"]["decode_budget_mib"])


def decode_mem_mb(config: Mapping[str, Any], modality: str, base_mb: int, decodes: int) -> int:
    """A decoding job's ``mem_mb``: what it declares at the default budget (``base_mb``) plus
    ``decodes`` (the files it decodes at once: its threads) times the budget above the default,
    so raising ``preprocessing.image.decode_budget_mib`` asks the scheduler for the memory it
    needs (docs/methods.md §8)."""
    extra = max(0, decode_budget_mib(config, modality) - DEFAULT_DECODE_BUDGET_MIB)
    return base_mb + decodes * extra


def extract_settings(config: Mapping[str, Any]) -> ExtractSettings:
    extract = config["extract"]
    return ExtractSettings(group=extract["group"], shard_files=extract["shard_files"])


def embed_settings(
    config: Mapping[str, Any],
    modality: str,
    effect: str | None,
    intensity: str | None,
    shard: int = 0,
) -> EmbedSettings:
    params = effect_params(config, modality, effect, intensity) if effect else {}
    shards = extract_settings(config).shard_files
    if not 0 <= shard < max(1, shards):
        raise ValueError(f"shard {shard} of extract.shard_files: {shards}")
    return EmbedSettings(
        model=model_spec(config, modality),
        batch=batch_sizes(config, modality),
        preroll_s=config["preprocessing"]["audio"]["preroll_s"],
        effect=effect,
        intensity=intensity,
        effect_params=params,
        cache_dir=cache_dir(config),
        shards=shards,
        shard=shard,
        decode_budget_mib=decode_budget_mib(config, modality),
    )


def embed_group_settings(
    config: Mapping[str, Any],
    modality: str,
    variants: Sequence[tuple[str | None, str | None]],
    shard: int = 0,
) -> EmbedGroupSettings:
    """The settings of every ``(effect, intensity)`` a grouped job embeds (``(None, None)``:
    the originals), each exactly what its own per-variant job would get."""
    return EmbedGroupSettings(
        variants=tuple(embed_settings(config, modality, e, i, shard) for e, i in variants)
    )


def deltas_settings(config: Mapping[str, Any], modality: str) -> DeltasSettings:
    return DeltasSettings(
        modality=modality,
        effects=tuple(effect_names(config, modality)),
        intensities=tuple(config["intensities"]),
        shards=extract_settings(config).shard_files,
        seed_json=config["extract"]["seed_json"],
    )


def health_settings(config: Mapping[str, Any], modality: str) -> HealthSettings:
    health = config["models"]["health"]
    return HealthSettings(
        model=model_spec(config, modality),
        limit=health["limit"],
        batch_limit=health["batch_limit"],
    )
