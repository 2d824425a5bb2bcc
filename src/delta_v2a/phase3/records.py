"""What a Phase 3 experiment records (docs/methods.md §6.6-6.7): training_log.json (every
figure from the test split, every baseline, the verdict) as a
:class:`~delta_v2a.artifacts.training_log.TrainingLog`, and the contents of decoder_model.pt
(what ``apply`` and ``transfer`` read: plain values and tensors, weights_only-safe). Built
from an :class:`~delta_v2a.phase3.experiment.Experiment`; the phase3 job writes them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from delta_v2a.artifacts.dependence import AudioDependence
from delta_v2a.artifacts.training_log import PairsChoice, TestSection, TrainingLog, Verdict
from delta_v2a.phase3.baselines import BASELINES, TRAINED_KINDS
from delta_v2a.phase3.evaluate import METRICS
from delta_v2a.phase3.experiment import Experiment, TrainingInputs
from delta_v2a.phase3.train import TrainResult
from delta_v2a.transfer.types import TransferPayload

#: Where each random stream starts (docs/methods.md §6.3), written into every training log.
SEED_STREAMS = {
    "split_and_levels": "numpy default_rng([seed, 101]) / ([seed, 202])",
    "init": "torch.manual_seed(s) for each training seed s",
    "shuffle": "torch.Generator().manual_seed(s + 1) for each training seed s",
    "spectral_subsample": "numpy default_rng([seed, 303])",
    "bootstrap": "numpy default_rng([seed, 404])",
    "audio_shuffle": "numpy default_rng([seed, 505])",
}

#: Why the model file, renders and predictions come from the first training seed.
DESIGNATED_WHY = (
    "the first of phase3.seeds, fixed before training: choosing the best seed on test would "
    "be a choice from test, and the first seed's artifact does not change when seeds are added"
)

#: What the test section says of its intervals.
INTERVAL = (
    "95 % percentile bootstrap over test files of the per-sample values "
    "averaged over training seeds (description; the verdict is the exact sign test over "
    "files in verdict.inference, per seed); per_seed / seed_sd: each seed's mean and their "
    "SD across seeds"
)


@dataclass(frozen=True)
class RunFacts:
    """What the job knows of the run beside the experiment: its target, device, the strength
    job's audio-dependence figure and the preroll the renders used (samples)."""

    target: str
    device: str
    dependence: AudioDependence
    preroll: int


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _history(result: TrainResult) -> list[dict[str, float]]:
    return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in result.history]


def _data_section(inputs: TrainingInputs) -> dict[str, Any]:
    ds, frame, data = inputs.dataset, inputs.frame, inputs.data
    return {
        "n_samples": len(frame),
        "samples_per_split": {
            k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")
        },
        "n_files": int(frame["path"].nunique()),
        "split": asdict(ds.split),
        "levels_per_pair": ds.levels_per_pair,
        "level_words": list(inputs.pairs.level_words),
        "templates": ds.templates,
        "heldout_templates": ds.heldout_templates,
        "n_unreachable_targets": int(frame["unreachable"].sum()),
    }


def _training_section(exp: Experiment, device: str) -> dict[str, Any]:
    return {
        **asdict(exp.settings),
        "optimizer": "AdamW",
        "loss": "MSE on the normalised parameter vector",
        "device": device,
        "epoch_chosen_on": "validation files",
        "models": {
            name: {
                "kind": TRAINED_KINDS[name],
                "best_epoch": r.best_epoch,
                "best_val_loss": r.best_val_loss,
                "train_seconds": r.train_seconds,
                "epochs_per_s": _finite(r.epochs_per_s),
                "epochs_this_run": r.epochs_run,
                "resumed_from_epoch": r.resumed_from,
                "history": _history(r),
            }
            for name, r in exp.results.items()
        },
        "per_seed": {
            str(s): {
                name: {
                    "best_epoch": r.best_epoch,
                    "best_val_loss": r.best_val_loss,
                    "train_seconds": r.train_seconds,
                }
                for name, r in models.items()
            }
            for s, models in exp.seed_results.items()
        },
    }


def _test_section(exp: Experiment) -> TestSection:
    figures = exp.evaluation["figures"]
    return TestSection(
        figures=figures["test"],
        paraphrase_figures=figures["paraphrase"],
        interval=INTERVAL,
        shuffled_spread=exp.evaluation.get("shuffled_spread"),
        n_rendered=exp.renders.n_rendered,
        render_seconds=exp.renders.seconds,
        mel=dict(exp.renders.mel),
        metrics=METRICS,
        baselines=BASELINES,
        text_lookup_unseen_keys=exp.timing["text_lookup_unseen_keys"],
    )


def _seeds_section(exp: Experiment) -> dict[str, Any]:
    return {
        "seed": int(exp.settings.seed),
        "training_seeds": [int(s) for s in exp.seed_results],
        "designated": int(exp.settings.seed),
        "designated_why": DESIGNATED_WHY,
        **SEED_STREAMS,
    }


def training_log(inputs: TrainingInputs, exp: Experiment, facts: RunFacts) -> TrainingLog:
    """training_log.json: every figure from the test split, every baseline, the verdict."""
    main = exp.results["decoder"]
    return TrainingLog(
        meta=inputs.pairs.meta,
        status="trained",
        target=facts.target,
        verdict=Verdict(**exp.evaluation["verdict"]),
        audio_dependence=facts.dependence.to_json(),
        pairs=PairsChoice.of(inputs.pairs),
        seeds=_seeds_section(exp),
        data=_data_section(inputs),
        paramspace=inputs.space.to_dict(),
        windows={**inputs.windows, "hop_s": inputs.hop_s},
        architecture={"kind": "attention", **exp.base_arch},
        training=_training_section(exp, facts.device),
        best_epoch=main.best_epoch,
        best_val_loss=main.best_val_loss,
        test=_test_section(exp),
        apply={k: v for k, v in exp.calibration.items() if k != "reference_embeddings"},
        cost=dict(exp.cost),
    )


def _compact(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: {m: {k: v for k, v in f.items()} for m, f in metrics.items()}
        for name, metrics in figures.items()
    }


def _tensor(arr: np.ndarray) -> Any:
    import torch

    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def decoder_payload(
    inputs: TrainingInputs,
    exp: Experiment,
    facts: RunFacts,
    audio_model: Mapping[str, Any],
    transfer: TransferPayload | None = None,
) -> dict[str, Any]:
    """decoder_model.pt's contents: plain values and tensors only (weights_only=True), with
    the optional "transfer" entry (prototypes, strength curves, pairs) that ``delta-v2a
    transfer`` reads; ``audio_model``: the CLAP id or path, portable."""
    p, ds, main, ev = inputs.pairs, inputs.dataset, exp.results["decoder"], exp.evaluation
    meta, cal = p.meta, exp.calibration
    return {
        "status": "trained",
        "arch": {"kind": "attention", **exp.base_arch},
        "state_dict": main.best_state,
        "paramspace": inputs.space.to_dict(),
        "level_words": list(p.level_words),
        "templates": dict(ds.templates),
        "heldout_templates": dict(ds.heldout_templates),
        "validation_templates": dict(ds.validation_templates),
        "pairs": [asdict(c) for c in p.chosen],
        "target": facts.target,
        "audio_model": dict(audio_model),
        "windows": {k: int(v) for k, v in inputs.windows.items()},
        "preroll": facts.preroll,
        "best_epoch": main.best_epoch,
        "best_val_loss": main.best_val_loss,
        "test_figures": _compact(ev["figures"]["test"]),
        "verdict": {k: ev["verdict"][k] for k in ("uses_audio", "message")},
        "apply": {**cal, "reference_embeddings": _tensor(cal["reference_embeddings"])},
        "seed": int(exp.settings.seed),
        "training_seeds": [int(s) for s in exp.seed_results],
        "not_science": bool(meta.get("not_science", False)),
        "note": meta.get("note", ""),
        **({"transfer": transfer.to_dict()} if transfer is not None else {}),
    }
