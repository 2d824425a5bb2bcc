"""Settings of Phase 3's jobs: windows, data set, strength curves, training and verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from delta_v2a.phase3.options import Architecture, TrainSettings  # the science's own types
from delta_v2a.phase3.spectral import MelSettings  # the science's own type (no twin)
from delta_v2a.settings.models import BatchSizes, ModelSpec, batch_sizes, cache_dir, model_spec


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
class ValidationSettings:
    max_samples: int
    examples: int
    mel: MelSettings


@dataclass(frozen=True)
class Phase3Settings:
    architecture: Architecture
    optimiser: TrainSettings  # its seed: the first of phase3.seeds (each seed replaces it)
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
        optimiser=TrainSettings(
            epochs=p3["epochs"],
            batch_size=p3["batch_size"],
            lr=p3["lr"],
            weight_decay=p3["weight_decay"],
            seed=training_seeds(p3["seeds"], config["seed"])[0],
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
