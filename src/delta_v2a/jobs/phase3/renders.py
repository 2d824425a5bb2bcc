"""The phase3 job's listening test: render the target and every baseline's prediction from
A_raw on (a seeded subset of) the test samples, their log-mel distances, example WAVs and
predictions.tsv (docs/methods.md §6.5)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.jobs.common import log
from delta_v2a.phase3.paramspace import ParamSpace
from delta_v2a.phase3.spectral import (
    MelSettings,
    both_log_mels,
    example_order,
    rendered_subset,
    spectral_distance,
)
from delta_v2a.phase3.windows import WindowSpec
from delta_v2a.storage import NAMES, atomic_path

#: The two log-mel distances (docs/methods.md §6.6): peak-relative with top_db, and gain-aware.
SPECTRAL_METRICS = ("logmel_db", "logmel_gain_db")


def _write_examples(
    ex_dir: Path, label: str, clips: Mapping[str, np.ndarray], sample_rate: int
) -> None:
    import soundfile as sf

    for kind, y in clips.items():
        with atomic_path(ex_dir / f"{label}_{kind}.wav", ".wav") as tmp:
            sf.write(tmp, y, sample_rate, subtype="FLOAT", format="WAV")


def _spectral_validation(
    test_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spec: WindowSpec,
    preroll: int,
    validation: Mapping[str, Any],
    out_dir: Path,
    seed: int,
) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Render A_aug and every candidate from A_raw; per candidate both log-mel distances
    (NaN where not rendered): ``logmel_db`` in dB re each clip's peak with top_db, and
    ``logmel_gain_db`` in dB re a common reference, which sees a gain error (§6.6).

    At most ``validation["max_samples"]`` test samples are rendered (a seeded subset); the
    first ``validation["examples"]`` of them, one pair after another, are written as WAVs.
    """
    from delta_v2a.media import load_audio

    sr, mel = spec.sample_rate, MelSettings(**validation["mel"])
    pick = rendered_subset(len(test_frame), validation["max_samples"], seed)
    dist = {k: {m: np.full(len(test_frame), np.nan) for m in SPECTRAL_METRICS} for k in candidates}
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    chosen_examples = example_order(test_frame, pick, validation["examples"])
    # Per file, one rendering per distinct effective parameter set: the mean-parameter and
    # no-effect baselines render once per file, a description's prediction once per file.
    mels: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def log_mel_of(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = json.dumps(space.physical(vec), sort_keys=True)
        if key not in mels:
            mels[key] = both_log_mels(space.render(raw, sr, vec, preroll), sr, mel)
        return mels[key]

    raw_path = None
    for done, i in enumerate(pick, 1):
        row = test_frame.loc[i]
        if row["path"] != raw_path:  # samples are grouped by file: one file in memory at a time
            raw, raw_path, mels = load_audio(row["path"], sr, spec.window, preroll), row["path"], {}
        target_db = log_mel_of(truth[i])
        for name, vecs in candidates.items():
            for k, metric in enumerate(SPECTRAL_METRICS):
                dist[name][metric][i] = spectral_distance(log_mel_of(vecs[i])[k], target_db[k])
        if i in chosen_examples:
            label = (
                f"{chosen_examples.index(i):02d}_{Path(row['path']).stem}_"
                f"{row['image_effect']}-{row['audio_effect']}_{row['level_word']}"
            )
            clips = {
                "raw": raw[preroll:],
                "target": space.render(raw, sr, truth[i], preroll),
                "predicted": space.render(raw, sr, candidates["decoder"][i], preroll),
            }
            _write_examples(ex_dir, label, clips, sr)
        if done % 50 == 0 or done == len(pick):
            log.info("rendered %d/%d test samples", done, len(pick))
    return dist, len(pick)


def _write_predictions(
    test_frame: pd.DataFrame,
    truth: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    space: ParamSpace,
    spectral: Mapping[str, Mapping[str, np.ndarray]],
    out_dir: Path,
    mse: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Every test sample with each candidate's prediction and, in ``param_mse:<name>``, the
    per-sample error the figures and the verdict use: for ``shuffled_audio`` the mean over
    all derangements (its ``pred_`` columns show the first, the one rendered), with their SD
    across derangements in ``param_mse_sd:shuffled_audio``, so the table and the summary
    agree."""
    cols = ["sample", "path", "category", "image_effect", "audio_effect", "level", "level_word"]
    cols += ["split", "held_out", "template", "description", "target_strength", "u_star"]
    out = test_frame[cols + ["unreachable"]].copy()
    for j, axis in enumerate(space.axes):
        out[f"true:{axis.name}"] = truth[:, j]
        for name, pred in candidates.items():
            if name != "oracle":
                out[f"pred_{name}:{axis.name}"] = pred[:, j]
    for j, axis in enumerate(space.axes):
        # Physical values as rendered (a bypassed effect shows its neutral value).
        out[f"true_value:{axis.name}"] = [_phys(space, v, j) for v in truth]
        out[f"pred_value:{axis.name}"] = [_phys(space, v, j) for v in candidates["decoder"]]
    for name, values in (mse or {}).items():
        out[f"param_mse:{name}" if not name.endswith("_sd") else f"param_mse_sd:{name[:-3]}"] = (
            values
        )
    for metric in SPECTRAL_METRICS:
        for name, d in spectral.items():
            out[f"{metric}:{name}"] = d[metric]
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.tsv") as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g", errors=NAMES)


def _phys(space: ParamSpace, vec: np.ndarray, j: int) -> float:
    axis = space.axes[j]
    params = space.physical(vec)[axis.effect]
    return axis.neutral if params is None else float(params[axis.param])


def render_test(
    ctx: Mapping[str, Any],
    test: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    spec: WindowSpec,
    preroll: int,
    validation: Mapping[str, Any],
    predictions_dir: str,
    seed: int,
    extra: Mapping[str, np.ndarray] | None = None,
    mse: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Both log-mel distances of every baseline's render on (a seeded subset of) the test
    samples, and predictions.tsv with every test sample. ``extra`` (the other training
    seeds' predictions) is rendered and measured on the same samples, not written."""
    data, space = ctx["data"], ctx["space"]
    test_frame = ctx["frame"].iloc[test].reset_index(drop=True)
    t0 = time.perf_counter()
    spectral, rendered = _spectral_validation(
        test_frame,
        data.targets[test],
        {**candidates, **(extra or {})},
        space,
        spec,
        preroll,
        validation,
        Path(predictions_dir),
        seed,
    )
    seconds = time.perf_counter() - t0
    written = {k: spectral[k] for k in candidates}
    _write_predictions(
        test_frame, data.targets[test], candidates, space, written, Path(predictions_dir), mse
    )
    return {
        "spectral": spectral,
        "n_rendered": rendered,
        "seconds": seconds,
        "mel": dict(validation["mel"]),
    }
