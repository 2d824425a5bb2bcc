"""Typed settings of every job, built once from the validated config (README: Layout).

Why one module: each decision the config makes (which model, which batch size, which alpha)
has one owner here, and every job receives a frozen object instead of unpacking the config
dict again. The rule files call the ``*_settings`` builders in ``common.smk`` and hand the
result to the job as plain data (:func:`to_params`), because Snakemake reruns a job when a
``params`` value's ``repr`` changes only for builtin types; inside the job
:func:`from_params` rebuilds the same frozen object. Nothing here has a default: defaults live
in the schema alone (workflow/schemas/config.schema.yaml).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from delta_v2a.config import MODALITIES, effect_names, effect_params
from delta_v2a.media import MAX_DECODE_BYTES
from delta_v2a.phase1.discovery import Options
from delta_v2a.phase3.spectral import MelSettings  # the science's own type (no twin)

T = TypeVar("T")

# --------------------------------------------------------------------------- models


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


# --------------------------------------------------------------------------- extraction


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
    seed_json: str = "full"  # extract.seed_json: full | gzip | none (docs/methods.md §2.3)


@dataclass(frozen=True)
class HealthSettings:
    model: ModelSpec
    limit: float
    batch_limit: float


def manifest_settings(
    config: Mapping[str, Any], modality: str, version: str, shard: int = 0
) -> ManifestSettings:
    key = {"image": "images", "audio": "audio"}[modality]
    windows = config["phase3"]["windows"]
    return ManifestSettings(
        modality=modality,
        root=config["data"][key],
        key=f"data.{key}",
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
        seed_json=config["extract"].get("seed_json", "full"),
    )


def health_settings(config: Mapping[str, Any], modality: str) -> HealthSettings:
    health = config["models"]["health"]
    return HealthSettings(
        model=model_spec(config, modality),
        limit=health["limit"],
        batch_limit=health["batch_limit"],
    )


# --------------------------------------------------------------------------- Phase 0


@dataclass(frozen=True)
class SensitivitySettings:
    min_distance: float
    allow_unhealthy: bool


@dataclass(frozen=True)
class LinearitySettings:
    min_cosine: float
    max_cv: float
    max_variance: float
    allow_unhealthy: bool


def sensitivity_settings(config: Mapping[str, Any]) -> SensitivitySettings:
    return SensitivitySettings(
        min_distance=config["sensitivity"]["min_distance"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    )


def linearity_settings(config: Mapping[str, Any]) -> LinearitySettings:
    lin = config["linearity"]
    return LinearitySettings(
        min_cosine=lin["min_cosine"],
        max_cv=lin["max_cv"],
        max_variance=lin["max_variance"],
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
    )


# --------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class SplitSettings:
    fractions: dict[str, float]  # val and test shares of audio files; the rest trains
    seed: int


def split_settings(config: Mapping[str, Any]) -> SplitSettings:
    return SplitSettings(fractions=dict(config["phase3"]["split"]), seed=config["seed"])


# --------------------------------------------------------------------------- Phase 1


@dataclass(frozen=True)
class Phase1Settings:
    models: dict[str, ModelSpec]  # text towers only: a media batch size does not rerun it
    templates: dict[str, dict[str, str]]
    synonyms: dict[str, dict[str, tuple[str, ...]]]
    options: Options  # the statistics' choices: phase1.Options, one type
    allow_unhealthy: bool
    text_batch_size: int
    stability_seeds: int  # the pair choice rerun over this many seeds (discovery_labels.json)


#: Prompts per text forward pass: text is cheap and short, so one size serves every device.
TEXT_BATCH_SIZE = 64


def phase1_settings(config: Mapping[str, Any]) -> Phase1Settings:
    p1 = config["phase1"]
    return Phase1Settings(
        models={m: model_spec(config, m) for m in MODALITIES},
        templates={m: dict(p1["templates"][m]) for m in MODALITIES},
        synonyms={
            m: {e: tuple(p1["synonyms"][m][e]) for e in effect_names(config, m)} for m in MODALITIES
        },
        options=Options.from_config(p1),
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
        text_batch_size=TEXT_BATCH_SIZE,
        stability_seeds=p1["stability_seeds"],
    )


# --------------------------------------------------------------------------- Phase 3


@dataclass(frozen=True)
class WindowsSettings:
    model: ModelSpec
    batch: BatchSizes
    count: int
    hop_s: float
    cache_dir: str | None


@dataclass(frozen=True)
class PairRule:
    """How Phase 3 uses Phase 1's decision (Phase 1 alone decides significance)."""

    threshold: float  # a used pair's score must be strictly above it
    require_significant: bool  # false: score-only pairs, every output says not evidence


@dataclass(frozen=True)
class DatasetSettings:
    model: ModelSpec
    allow_unhealthy: bool
    pairs: PairRule
    intensities: tuple[str, ...]
    audio_effects: dict[str, dict[str, Any]]  # effects.audio: fixed values and levels
    level_words: tuple[str, ...]
    descriptions: dict[str, tuple[str, ...]]
    heldout_templates: int
    validation_templates: int  # before the held-out ones: apply's validation paraphrases
    levels_per_pair: int
    bypass_below: float
    seed: int


@dataclass(frozen=True)
class StrengthSettings:
    model: ModelSpec
    batch: BatchSizes
    intensities: tuple[str, ...]
    grid_size: int
    preroll_s: float
    target: str
    min_sd: float
    cache_dir: str | None
    kappa_percentile: float  # κ from this percentile of the train files' strongest norms


@dataclass(frozen=True)
class Architecture:
    d_model: int
    heads: int
    hidden: int
    dropout: float


@dataclass(frozen=True)
class Optimiser:
    """Phase 3's training budget and seed; ``phase3.train.TrainSettings`` is this same type
    (one type). The workflow fills every field from config (the schema's defaults); these
    defaults serve direct library use and equal the schema's."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0  # the training seed; config's phase3.seeds gives one run per seed


@dataclass(frozen=True)
class ValidationSettings:
    max_samples: int
    examples: int
    mel: MelSettings


@dataclass(frozen=True)
class Phase3Settings:
    architecture: Architecture
    optimiser: Optimiser
    validation: ValidationSettings
    target: str
    seed: int
    bootstrap: int
    log_every: int
    preroll_s: float
    checkpoint_dir: str  # per-epoch checkpoints outside the outputs: a restarted job resumes
    checkpoint_interval_s: float
    device: str
    u_grid: int
    alpha: float  # one-sided level of the verdict's sign tests (Holm over its two gates)
    min_test_files: int  # below it the verdict is inconclusive, never positive
    seeds: tuple[int, ...]  # training seeds; the first is the designated one (model file, renders)
    text2fx_budget: int  # CLAP calls per test sample of the continuous Text2FX search (0: grid)
    model: ModelSpec  # the CLAP the Text2FX search renders and embeds with


def training_seeds(value: int | Sequence[int], base_seed: int) -> tuple[int, ...]:
    """``phase3.seeds`` as a tuple: a count n gives ``base_seed, base_seed + 1, …`` (so the
    first, designated seed is the run's own ``seed`` and a one-seed run trains what it always
    did), a list is taken as given."""
    if isinstance(value, int):
        return tuple(base_seed + k for k in range(value))
    return tuple(int(s) for s in value)


def windows_settings(config: Mapping[str, Any]) -> WindowsSettings:
    windows = config["phase3"]["windows"]
    return WindowsSettings(
        model=model_spec(config, "audio"),
        batch=batch_sizes(config, "audio"),
        count=windows["count"],
        hop_s=windows["hop_s"],
        cache_dir=cache_dir(config),
    )


def pair_rule(config: Mapping[str, Any]) -> PairRule:
    p3 = config["phase3"]
    return PairRule(
        threshold=p3["pair_threshold"], require_significant=p3["require_significant_pairs"]
    )


def dataset_settings(config: Mapping[str, Any]) -> DatasetSettings:
    """The parameter space comes from the audio effects alone: a changed image-effect level
    does not rerun the data set (it reruns Phase 1, and what depends on it, anyway)."""
    p3 = config["phase3"]
    descriptions = {
        k: (v,) if isinstance(v, str) else tuple(v) for k, v in p3["descriptions"].items()
    }
    return DatasetSettings(
        model=model_spec(config, "audio"),
        allow_unhealthy=config["models"]["health"]["allow_unhealthy"],
        pairs=pair_rule(config),
        intensities=tuple(config["intensities"]),
        audio_effects=dict(config["effects"]["audio"]),
        level_words=tuple(p3["level_words"]),
        descriptions=descriptions,
        heldout_templates=p3["heldout_templates"],
        validation_templates=p3["validation_templates"],
        levels_per_pair=p3["levels_per_pair"],
        bypass_below=p3["bypass_below"],
        seed=config["seed"],
    )


def strength_settings(config: Mapping[str, Any]) -> StrengthSettings:
    p3 = config["phase3"]
    return StrengthSettings(
        model=model_spec(config, "audio"),
        batch=batch_sizes(config, "audio"),
        intensities=tuple(config["intensities"]),
        grid_size=p3["u_grid"],
        preroll_s=config["preprocessing"]["audio"]["preroll_s"],
        target=p3["target"],
        min_sd=p3["audio_dependence_min_sd"],
        cache_dir=cache_dir(config),
        kappa_percentile=p3["kappa_percentile"],
    )


def phase3_settings(config: Mapping[str, Any], checkpoint_dir: str) -> Phase3Settings:
    p3 = config["phase3"]
    val = p3["validation"]
    return Phase3Settings(
        architecture=Architecture(**p3["model"]),
        optimiser=Optimiser(
            **{f.name: p3[f.name] for f in dataclasses.fields(Optimiser) if f.name != "seed"}
        ),
        validation=ValidationSettings(
            max_samples=val["max_samples"], examples=val["examples"], mel=MelSettings(**val["mel"])
        ),
        target=p3["target"],
        seed=config["seed"],
        bootstrap=p3["bootstrap"],
        log_every=p3["log_every"],
        preroll_s=config["preprocessing"]["audio"]["preroll_s"],
        checkpoint_dir=checkpoint_dir,
        checkpoint_interval_s=p3["checkpoint_interval_s"],
        device=config["models"]["device"],
        u_grid=p3["u_grid"],
        alpha=p3["alpha"],
        min_test_files=p3["min_test_files"],
        seeds=training_seeds(p3["seeds"], config["seed"]),
        text2fx_budget=p3["text2fx_budget"],
        model=model_spec(config, "audio"),
    )


# --------------------------------------------------------------------------- transfer


@dataclass(frozen=True)
class ExamplesSettings:
    edit_levels: dict[str, dict[str, dict[str, float]]]  # image effect -> intensity -> params
    n_examples: int
    device: str


#: Transfer examples in the report: two held-out songs keep the page light.
N_TRANSFER_EXAMPLES = 2


def examples_settings(config: Mapping[str, Any]) -> ExamplesSettings:
    return ExamplesSettings(
        edit_levels={
            e: {i: effect_params(config, "image", e, i) for i in config["intensities"]}
            for e in effect_names(config, "image")
        },
        n_examples=N_TRANSFER_EXAMPLES,
        device=config["models"]["device"],
    )


# --------------------------------------------------------------------------- generic plumbing


def to_params(settings: Any) -> dict[str, Any]:
    """Plain builtin data for a rule's ``params`` (tuples become lists: Snakemake compares
    params by ``repr``, and JSON-like data reads the same in every log)."""
    return _plain(dataclasses.asdict(settings))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_params(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a settings object from :func:`to_params`'s data, checking every field.

    A missing or unknown field is a programming error between a rule and its job, so it
    raises at once rather than running with a half-built object.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    missing, extra = names - set(data), set(data) - names
    if missing or extra:
        raise TypeError(f"{cls.__name__}: missing {sorted(missing)}, unknown {sorted(extra)}")
    return cls(**{name: _build(hints[name], data[name]) for name in names})


def _build(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_params(hint, value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(_build(args[0], v) for v in value)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in dict(value).items()}
    if origin is list:
        return [_build(args[0], v) for v in value]
    return value  # scalars as the config gave them (an int level stays an int in the meta)
