"""What ``delta-v2a apply`` accepts (docs/methods.md §6.7): a description near enough to a
trained one. The cosine threshold is calibrated on the held-out paraphrases and floored by
unrelated control descriptions, so a text tower that cannot tell them apart refuses rather
than accepts. Pure functions on arrays, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.phase3.dataset import CONTROL_DESCRIPTIONS

__all__ = ["apply_calibration"]


def _paraphrase_hits(
    frame: pd.DataFrame, trained: Sequence[str], t_emb: np.ndarray, text_emb: np.ndarray, rows
) -> list[dict[str, Any]]:
    """Each held-out paraphrase: its nearest trained description, the cosine, and whether
    that description has the same meaning (image effect and level word)."""
    held = frame.loc[frame["held_out"]].drop_duplicates("description")
    meaning = frame.drop_duplicates("description").set_index("description")
    calib = []
    for desc, effect, word in zip(
        held["description"], held["image_effect"], held["level_word"], strict=True
    ):
        sims = t_emb @ text_emb[rows[desc]]
        k = int(np.argmax(sims))
        near = meaning.loc[trained[k]]
        calib.append(
            {
                "paraphrase": desc,
                "nearest": trained[k],
                "cosine": float(sims[k]),
                "same_meaning": bool((near["image_effect"], near["level_word"]) == (effect, word)),
            }
        )
    return calib


def apply_calibration(
    frame: pd.DataFrame, texts: Sequence[str], text_emb: np.ndarray
) -> dict[str, Any]:
    """The trained descriptions and the cosine threshold to the nearest one: the lowest
    nearest-trained similarity among the held-out paraphrases (so each would pass), raised
    just above the highest that an unrelated control description reaches. ``text_emb`` rows
    follow ``texts``; ``frame`` is the sample list (description, split, held_out, meaning)."""
    trained = sorted(set(frame.loc[frame["split"] == "train", "description"]))
    rows = {t: i for i, t in enumerate(texts)}
    t_emb = text_emb[[rows[t] for t in trained]]
    calib = _paraphrase_hits(frame, trained, t_emb, text_emb, rows)
    paraphrase_floor = min((c["cosine"] for c in calib), default=1.0)
    known = set(frame["description"])
    controls = [t for t in CONTROL_DESCRIPTIONS if t in rows and t not in known]
    control_sims = [float(np.max(t_emb @ text_emb[rows[t]])) for t in controls]
    control_ceiling = max(control_sims, default=-1.0)
    # Accept what the held-out paraphrases reach, but never what an unrelated description
    # reaches: where the two overlap the text tower cannot separate them, and refusing wins.
    threshold = max(paraphrase_floor, float(np.nextafter(control_ceiling, 2.0)))
    return {
        "threshold": float(threshold),
        "trained_descriptions": trained,
        "trained_embeddings": np.ascontiguousarray(t_emb, dtype=np.float32),
        "calibration": calib,
        "n_same_meaning": int(sum(c["same_meaning"] for c in calib)),
        "paraphrase_floor": float(paraphrase_floor),
        "control_ceiling": float(control_ceiling),
        "controls": [{"text": t, "cosine": c} for t, c in zip(controls, control_sims, strict=True)],
        "separable": bool(control_ceiling < paraphrase_floor),
        "paraphrases_accepted": int(sum(c["cosine"] >= threshold for c in calib)),
    }
