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
    example_order,
    log_mel,
    rendered_subset,
    spectral_distance,
)
from delta_v2a.phase3.windows import WindowSpec
from delta_v2a.storage import atomic_path


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
) -> tuple[dict[str, np.ndarray], int]:
    """Render A_aug and every candidate from A_raw; log-mel distances in dB re each clip's
    peak with top_db (NaN where not rendered).

    At most ``validation["max_samples"]`` test samples are rendered (a seeded subset); the
    first ``validation["examples"]`` of them, one pair after another, are written as WAVs.
    """
    from delta_v2a.media import load_audio

    sr, mel = spec.sample_rate, MelSettings(**validation["mel"])
    pick = rendered_subset(len(test_frame), validation["max_samples"], seed)
    dist = {k: np.full(len(test_frame), np.nan) for k in candidates}
    ex_dir = out_dir / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    chosen_examples = example_order(test_frame, pick, validation["examples"])
    # Per file, one rendering per distinct effective parameter set: the mean-parameter and
    # no-effect baselines render once per file, a description's prediction once per file.
    mels: dict[str, np.ndarray] = {}

    def log_mel_of(vec: np.ndarray) -> np.ndarray:
        key = json.dumps(space.physical(vec), sort_keys=True)
        if key not in mels:
            mels[key] = log_mel(space.render(raw, sr, vec, preroll), sr, mel)
        return mels[key]

    raw_path = None
    for done, i in enumerate(pick, 1):
        row = test_frame.loc[i]
        if row["path"] != raw_path:  # samples are grouped by file: one file in memory at a time
            raw, raw_path, mels = load_audio(row["path"], sr, spec.window, preroll), row["path"], {}
        target_db = log_mel_of(truth[i])
        for name, vecs in candidates.items():
            dist[name][i] = spectral_distance(log_mel_of(vecs[i]), target_db)
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
    spectral: Mapping[str, np.ndarray],
    out_dir: Path,
) -> None:
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
    for name, d in spectral.items():
        out[f"logmel_db:{name}"] = d
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "predictions.tsv") as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


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
) -> dict[str, Any]:
    """Log-mel distances of every baseline's render on (a seeded subset of) the test
    samples, and predictions.tsv with every test sample."""
    data, space = ctx["data"], ctx["space"]
    test_frame = ctx["frame"].iloc[test].reset_index(drop=True)
    t0 = time.perf_counter()
    spectral, rendered = _spectral_validation(
        test_frame,
        data.targets[test],
        candidates,
        space,
        spec,
        preroll,
        validation,
        Path(predictions_dir),
        seed,
    )
    seconds = time.perf_counter() - t0
    _write_predictions(
        test_frame, data.targets[test], candidates, space, spectral, Path(predictions_dir)
    )
    return {
        "spectral": spectral,
        "n_rendered": rendered,
        "seconds": seconds,
        "mel": dict(validation["mel"]),
    }
