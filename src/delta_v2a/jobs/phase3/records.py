"""What the phase3 job writes besides renders: training_log.json (every figure from the test
split, every baseline, the verdict), decoder_model.pt (what ``apply`` and ``transfer`` read,
weights_only-safe) and the two figures (docs/methods.md §6.6-6.7)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from delta_v2a.jobs.common import PipelineError, log
from delta_v2a.phase3.artifact import portable_model, save_decoder
from delta_v2a.phase3.baselines import BASELINES, TRAINED_KINDS
from delta_v2a.phase3.calibrate import apply_calibration
from delta_v2a.phase3.evaluate import METRICS
from delta_v2a.phase3.train import TrainResult, TrainSettings
from delta_v2a.storage import EmbeddingTable


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _history(result: TrainResult) -> list[dict[str, float]]:
    return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in result.history]


def calibrate_apply(ctx: Mapping[str, Any], text_emb: np.ndarray) -> dict[str, Any]:
    """:func:`~delta_v2a.phase3.calibrate.apply_calibration` on the train split's descriptions
    and pairs.json's gate texts, logged, with a tensor for the model file."""
    frame, pairs = ctx["frame"], ctx["pairs"]
    if "gate_texts" not in pairs:
        raise PipelineError("pairs.json has no gate_texts (an older phase3_dataset): rerun it")
    train = frame.loc[frame["split"] == "train"].drop_duplicates("description")
    trained = [
        {"text": t, "effect": e, "level_word": w}
        for t, e, w in zip(
            train["description"], train["image_effect"], train["level_word"], strict=True
        )
    ]
    cal = apply_calibration(
        trained, pairs["gate_texts"], ctx["texts"], text_emb, pairs["level_words"]
    )
    val, test = cal["validation"], cal["test"]
    accepted_any = val["paraphrases_accepted"] > 0
    (log.info if accepted_any else log.warning)(
        "apply gate: cosine >= %.4f and margin >= %.4f, calibrated on validation: %d of %d "
        "paraphrases accepted (%d nearest to another level or effect), %d of %d near misses "
        "and %d of %d unrelated controls refused%s",
        cal["threshold"],
        cal["margin"],
        val["paraphrases_accepted"],
        val["n_paraphrases"],
        val["paraphrases_nearest_other_meaning"],
        val["near_misses_refused"],
        val["n_near_misses"],
        val["controls_refused"],
        val["n_controls"],
        "" if accepted_any else " (NO paraphrase accepted: apply takes trained descriptions only)",
    )
    clean = test["paraphrases_accepted_wrong_meaning"] == 0
    clean = clean and test["near_misses_refused"] == test["n_near_misses"]
    (log.info if clean else log.warning)(
        "apply gate on the held-out test paraphrases (reported, chose nothing): %d of %d "
        "accepted, %d accepted with another meaning; %d of %d near misses refused",
        test["paraphrases_accepted"],
        test["n_paraphrases"],
        test["paraphrases_accepted_wrong_meaning"],
        test["near_misses_refused"],
        test["n_near_misses"],
    )
    return {**cal, "reference_embeddings": torch_tensor(cal["reference_embeddings"])}


def gate_section(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """training_log.json's "apply": the gate and its figures, without the embeddings."""
    return {k: v for k, v in calibration.items() if k != "reference_embeddings"}


def torch_tensor(arr: np.ndarray) -> Any:
    import torch

    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def _portable_audio_model(table: EmbeddingTable, model_out: str) -> dict[str, Any]:
    """The CLAP id or path for ``apply`` (:func:`~delta_v2a.phase3.artifact.portable_model`)."""
    info = {**table.meta["model"], "normalize": bool(table.meta.get("normalize", True))}
    return portable_model(info, model_out)


def write_figures(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    run: TrainRun,
    candidates: Mapping[str, np.ndarray],
    training_figure: str,
    predictions_figure: str,
) -> None:
    """Learning curves with the test figures, and the decoder's test predictions (seen
    templates) against the targets."""
    from delta_v2a.plots import decoder_prediction_figure, decoder_training_figure

    note = ctx["pairs"]["meta"].get("note", "")
    histories = {k: r.history for k, r in run.results.items()}
    figures = run.evaluation["figures"]["test"]
    decoder_training_figure(histories, figures, training_figure, note)
    seen = ctx["data"].split[test] == "test"
    decoder_prediction_figure(
        ctx["frame"].iloc[test][seen],
        ctx["data"].targets[test][seen],
        candidates["decoder"][seen],
        ctx["space"].names,
        predictions_figure,
        note,
        space=ctx["space"],  # axes in Hz, dB, ... (the parameter space's own units)
    )


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


@dataclass(frozen=True)
class TrainRun:
    """What one phase3 job measured, for the records it writes."""

    results: Mapping[str, TrainResult]
    base_arch: Mapping[str, Any]
    settings: TrainSettings
    dependence: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    renders: Mapping[str, Any]
    cost: Mapping[str, Any]
    timing: Mapping[str, Any]
    calibration: Mapping[str, Any]
    target: str
    device: str
    preroll: int
    transfer: Mapping[str, Any] | None = None
    #: every training seed's models (the designated seed's are ``results`` too)
    seed_results: Mapping[int, Mapping[str, TrainResult]] | None = None


def _data_section(ctx: Mapping[str, Any]) -> dict[str, Any]:
    p, frame, data = ctx["pairs"], ctx["frame"], ctx["data"]
    return {
        "n_samples": len(frame),
        "samples_per_split": {
            k: int((data.split == k).sum()) for k in ("train", "val", "test", "heldout")
        },
        "n_files": int(frame["path"].nunique()),
        **{k: p[k] for k in ("split", "levels_per_pair", "level_words", "templates")},
        "heldout_templates": p["heldout_templates"],
        "n_unreachable_targets": int(frame["unreachable"].sum()),
    }


def _training_section(run: TrainRun) -> dict[str, Any]:
    return {
        **asdict(run.settings),
        "optimizer": "AdamW",
        "loss": "MSE on the normalised parameter vector",
        "device": run.device,
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
            for name, r in run.results.items()
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
            for s, models in (run.seed_results or {run.settings.seed: run.results}).items()
        },
    }


def _test_section(run: TrainRun) -> dict[str, Any]:
    figures = run.evaluation["figures"]
    return {
        "figures": figures["test"],
        "paraphrase_figures": figures["paraphrase"],
        "interval": "95 % percentile bootstrap over test files of the per-sample values "
        "averaged over training seeds (description; the verdict is the exact sign test over "
        "files in verdict.inference, per seed); per_seed / seed_sd: each seed's mean and their "
        "SD across seeds",
        "shuffled_spread": run.evaluation.get("shuffled_spread"),
        "n_rendered": run.renders["n_rendered"],
        "render_seconds": run.renders["seconds"],
        "mel": dict(run.renders["mel"]),
        "metrics": METRICS,
        "baselines": BASELINES,
        "text_lookup_unseen_keys": run.timing["text_lookup_unseen_keys"],
    }


def training_log(ctx: Mapping[str, Any], run: TrainRun) -> dict[str, Any]:
    """training_log.json: every figure from the test split, every baseline, the verdict."""
    p, main = ctx["pairs"], run.results["decoder"]
    return {
        "meta": p["meta"],
        "status": "trained",
        "target": run.target,
        "verdict": run.evaluation["verdict"],
        "audio_dependence": dict(run.dependence),
        "pairs": {k: p[k] for k in ("threshold", "significance", "rows", "chosen")},
        "seeds": {
            "seed": int(run.settings.seed),
            "training_seeds": [int(s) for s in (run.seed_results or {run.settings.seed: 0})],
            "designated": int(run.settings.seed),
            "designated_why": DESIGNATED_WHY,
            **SEED_STREAMS,
        },
        "data": _data_section(ctx),
        "paramspace": ctx["space"].to_dict(),
        "windows": {**ctx["table"].meta["windows"], "hop_s": ctx["table"].meta.get("hop_s")},
        "architecture": {"kind": "attention", **run.base_arch},
        "training": _training_section(run),
        "best_epoch": main.best_epoch,
        "best_val_loss": main.best_val_loss,
        "test": _test_section(run),
        "apply": gate_section(run.calibration),
        "cost": dict(run.cost),
    }


def _compact(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: {m: {k: v for k, v in f.items()} for m, f in metrics.items()}
        for name, metrics in figures.items()
    }


def save_model(model_out: str, ctx: Mapping[str, Any], run: TrainRun) -> None:
    """decoder_model.pt: plain values and tensors only (weights_only=True), with the optional
    "transfer" entry (prototypes, strength curves, pairs) that ``delta-v2a transfer`` reads."""
    p, main, ev = ctx["pairs"], run.results["decoder"], run.evaluation
    meta = p["meta"]
    save_decoder(
        model_out,
        {
            "status": "trained",
            "arch": {"kind": "attention", **run.base_arch},
            "state_dict": main.best_state,
            "paramspace": ctx["space"].to_dict(),
            "level_words": list(p["level_words"]),
            "templates": dict(p["templates"]),
            "heldout_templates": dict(p["heldout_templates"]),
            "validation_templates": dict(p.get("validation_templates", {})),
            "pairs": list(p["chosen"]),
            "target": run.target,
            "audio_model": _portable_audio_model(ctx["table"], model_out),
            "windows": {k: int(v) for k, v in ctx["table"].meta["windows"].items()},
            "preroll": run.preroll,
            "best_epoch": main.best_epoch,
            "best_val_loss": main.best_val_loss,
            "test_figures": _compact(ev["figures"]["test"]),
            "verdict": {k: ev["verdict"][k] for k in ("uses_audio", "message")},
            "apply": dict(run.calibration),
            "seed": int(run.settings.seed),
            "training_seeds": [int(s) for s in (run.seed_results or {run.settings.seed: 0})],
            "not_science": bool(meta.get("not_science", False)),
            "note": meta.get("note", ""),
            **({"transfer": dict(run.transfer)} if run.transfer else {}),
        },
    )
