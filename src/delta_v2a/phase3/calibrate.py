"""What ``delta-v2a apply`` accepts (docs/methods.md §6.7): a description whose nearest
reference description is a trained one, of one effect and one level, with a margin over every
reference of another meaning. The references are the trained descriptions and descriptions of
the image effects the decoder was not trained on; the cosine threshold and the margin are
calibrated on validation paraphrases against near-miss and unrelated controls; the test
paraphrases only report the held-out acceptance rate. Pure functions on arrays, no I/O
(logging aside)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from delta_v2a.phase3.dataset import CONTROL_DESCRIPTIONS, describe

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "NEAR_MISS_EFFECTS",
    "apply_calibration",
    "calibrate_on_training",
    "gate_decision",
    "gate_texts",
    "nearest_reference",
    "template_roles",
]

#: Image effects that no config names, as (reference, validation, test) templates: a
#: description of one of them has a reference to be nearest to, so that a decoder refuses it
#: by name instead of mapping it onto the nearest trained effect (docs/methods.md §6.7).
NEAR_MISS_EFFECTS: dict[str, tuple[str, str, str]] = {
    "noise": ("a {level} grainy photo", "a {level} noisy picture", "a {level} speckled photo"),
    "sharpening": (
        "a {level} sharpened photo",
        "a {level} over-sharpened picture",
        "a {level} edge-enhanced photo",
    ),
    "darkening": ("a {level} dark photo", "a {level} underexposed picture", "a {level} dim photo"),
    "pixelation": (
        "a {level} pixelated photo",
        "a {level} blocky picture",
        "a {level} low-resolution photo",
    ),
    "vignetting": (
        "a {level} vignetted photo",
        "a {level} dark-cornered picture",
        "a {level} vignette-framed photo",
    ),
    "rotation": ("a {level} tilted photo", "a {level} rotated picture", "a {level} skewed photo"),
    "sepia": (
        "a {level} sepia-toned photo",
        "a {level} yellowed picture",
        "a {level} antique-toned photo",
    ),
}
#: Probe roles: calibration reads only the ``val_`` ones and the controls.
CALIBRATION_ROLES = ("val_paraphrase", "val_near_miss", "control")
TEST_ROLES = ("test_paraphrase", "test_near_miss")


def template_roles(n: int, heldout: int, validation: int) -> list[str]:
    """Each template's role, counted from the end: the last ``heldout`` are "test", the
    ``validation`` before them "val", the rest "seen" (trained on, or a reference)."""
    roles = ["seen"] * n
    for i in range(n):
        back = n - i
        roles[i] = "test" if back <= heldout else "val" if back <= heldout + validation else "seen"
    return roles


def gate_texts(
    templates: Mapping[str, Sequence[str]],
    trained_effects: Sequence[str],
    level_words: Sequence[str],
    heldout: int,
    validation: int,
) -> list[dict[str, Any]]:
    """Every description the gate reads beside the trained ones, each with its role and
    meaning: references (seen templates of the effects not trained on), validation and test
    paraphrases (trained effects), validation and test near misses (the other effects), the
    unrelated controls. Each text once; the first role wins."""
    plan = {e: (list(t), heldout, validation) for e, t in templates.items()}
    plan |= {e: (list(t), 1, 1) for e, t in NEAR_MISS_EFFECTS.items() if e not in plan}
    rows: list[dict[str, Any]] = []
    for effect, (tpl, held, val) in plan.items():
        trained = effect in trained_effects
        for template, role in zip(tpl, template_roles(len(tpl), held, val), strict=True):
            if role == "seen" and trained:
                continue  # the trained references are the train split's own descriptions
            kind = "paraphrase" if trained else "near_miss"
            name = "reference" if role == "seen" else f"{role}_{kind}"
            for word in level_words:
                text = describe(template, word)
                rows.append({"text": text, "role": name, "effect": effect, "level_word": word})
    rows += [
        {"text": c, "role": "control", "effect": None, "level_word": None}
        for c in CONTROL_DESCRIPTIONS
    ]
    seen: set[str] = set()
    return [r for r in rows if not (r["text"] in seen or seen.add(r["text"]))]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def nearest_reference(
    ref_emb: np.ndarray, meanings: Sequence[tuple[Any, Any]], v: np.ndarray
) -> tuple[int, float, float]:
    """(index, cosine, margin) of the reference nearest to ``v``: the margin is its cosine
    minus the highest cosine of a reference of another meaning (effect, level word), or
    minus -1 where every reference has its meaning."""
    sims = _unit(ref_emb) @ _unit(np.asarray(v).reshape(-1))
    k = int(np.argmax(sims))
    other = [float(s) for s, m in zip(sims, meanings, strict=True) if m != meanings[k]]
    return k, float(sims[k]), float(sims[k] - max(other, default=-1.0))


def named_levels(text: str, level_words: Sequence[str]) -> set[str]:
    """The decoder's level words that ``text`` names, as whole words."""
    return {w for w in level_words if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)}


def gate_decision(
    text: str,
    ref: Mapping[str, Any],
    cosine: float,
    margin: float,
    gate: Mapping[str, Any],
    level_words: Sequence[str],
) -> str:
    """Why a non-exact description is refused, or "accepted": its nearest reference must be
    trained, the level words it names must be that reference's, and its cosine and margin
    must reach the gate's threshold and margin."""
    if not ref["trained"]:
        return "untrained_effect"
    named = named_levels(text, level_words)
    if named and named != {ref["level_word"]}:
        return "other_level"
    if cosine < gate["threshold"]:
        return "cosine"
    if margin < gate["margin"]:
        return "margin"
    return "accepted"


def _probe(
    row: Mapping[str, Any],
    v: np.ndarray,
    refs: Sequence[Mapping[str, Any]],
    ref_emb: np.ndarray,
    gate: Mapping[str, Any],
    level_words: Sequence[str],
) -> dict[str, Any]:
    """One probe under ``gate``: nearest reference, cosine, margin, decision, and whether the
    nearest reference has the probe's own meaning (``same_meaning``)."""
    meanings = [(r["effect"], r["level_word"]) for r in refs]
    k, cos, margin = nearest_reference(ref_emb, meanings, v)
    ref = refs[k]
    reason = gate_decision(row["text"], ref, cos, margin, gate, level_words)
    same = bool(ref["trained"]) and meanings[k] == (row["effect"], row["level_word"])
    return {
        **{key: row[key] for key in ("text", "role", "effect", "level_word")},
        "nearest": ref["text"],
        "nearest_effect": ref["effect"],
        "nearest_level": ref["level_word"],
        "cosine": cos,
        "margin": margin,
        "same_meaning": same,
        "decision": reason,
        "accepted": reason == "accepted",
    }


def choose_gate(correct: Sequence[tuple[float, float]], wrong: Sequence[tuple[float, float]]):
    """(threshold, margin): refuse every wrong (cosine, margin) pair, accept as many correct
    ones as possible, then tighten both to the lowest cosine and margin among the accepted
    (refusing wins where they overlap). Nothing accepted: (2.0, 3.0), above any cosine."""
    best: tuple[float, float, list[tuple[float, float]]] | None = None
    for tau in sorted({-1.0} | {float(np.nextafter(c, 2.0)) for c, _ in wrong}):
        above = [m for c, m in wrong if c >= tau]
        mu = float(np.nextafter(max(above), 3.0)) if above else 0.0
        kept = [(c, m) for c, m in correct if c >= tau and m >= mu]
        if best is None or len(kept) >= len(best[2]):
            best = (tau, mu, kept)
    if best is None or not best[2]:
        return 2.0, 3.0
    return min(c for c, _ in best[2]), min(m for _, m in best[2])


def _summary(probes: Sequence[Mapping[str, Any]], prefix: str) -> dict[str, Any]:
    """Counts for one split's probes: paraphrases accepted with the right meaning, accepted
    with a wrong one, refused; near misses and controls refused."""
    para = [p for p in probes if p["role"] == f"{prefix}_paraphrase"]
    near = [p for p in probes if p["role"] == f"{prefix}_near_miss"]
    good = int(sum(p["accepted"] and p["same_meaning"] for p in para))
    out = {
        "n_paraphrases": len(para),
        "paraphrases_accepted": good,
        "paraphrases_accepted_wrong_meaning": int(
            sum(p["accepted"] and not p["same_meaning"] for p in para)
        ),
        "paraphrases_nearest_other_meaning": int(sum(not p["same_meaning"] for p in para)),
        "acceptance_rate": good / len(para) if para else None,
        "n_near_misses": len(near),
        "near_misses_refused": int(sum(not p["accepted"] for p in near)),
    }
    if prefix == "val":
        ctl = [p for p in probes if p["role"] == "control"]
        out["n_controls"] = len(ctl)
        out["controls_refused"] = int(sum(not p["accepted"] for p in ctl))
    return out


def apply_calibration(
    trained: Sequence[Mapping[str, Any]],
    gate_rows: Sequence[Mapping[str, Any]],
    texts: Sequence[str],
    text_emb: np.ndarray,
    level_words: Sequence[str],
) -> dict[str, Any]:
    """The gate for the model file: references (trained descriptions, each ``{"text",
    "effect", "level_word"}``, and the ``gate_rows`` of role "reference") with their
    embeddings, the threshold and margin chosen on the validation probes and the controls
    alone, and every probe's outcome (validation and test). ``text_emb`` rows follow
    ``texts``."""
    rows = {t: i for i, t in enumerate(texts)}
    keys = ("text", "effect", "level_word")
    refs = [{**{k: r[k] for k in keys}, "trained": True} for r in trained]
    refs += [
        {**{k: r[k] for k in keys}, "trained": False} for r in gate_rows if r["role"] == "reference"
    ]
    ref_emb = np.asarray(text_emb, dtype=np.float64)[[rows[r["text"]] for r in refs]]
    probes = [r for r in gate_rows if r["role"] in CALIBRATION_ROLES + TEST_ROLES]

    def run(gate: Mapping[str, float], roles: Sequence[str]) -> list[dict[str, Any]]:
        return [
            _probe(p, text_emb[rows[p["text"]]], refs, ref_emb, gate, level_words)
            for p in probes
            if p["role"] in roles
        ]

    # Without a threshold: which validation probes the geometry alone would map, right or
    # wrong. Test probes are not read until the gate is fixed (docs/methods.md §6.7).
    first = [
        p for p in run({"threshold": -2.0, "margin": -3.0}, CALIBRATION_ROLES) if p["accepted"]
    ]
    correct = [
        (p["cosine"], p["margin"])
        for p in first
        if p["role"] == "val_paraphrase" and p["same_meaning"]
    ]
    wrong = [(p["cosine"], p["margin"]) for p in first if not p["same_meaning"]]
    threshold, margin = choose_gate(correct, wrong)
    gate = {"threshold": threshold, "margin": margin}
    outcome = run(gate, CALIBRATION_ROLES + TEST_ROLES)
    return {
        **gate,
        "references": refs,
        "reference_embeddings": np.ascontiguousarray(ref_emb, dtype=np.float32),
        "n_trained": len(trained),
        "calibrated_on": "validation paraphrases, validation near misses and unrelated controls",
        "validation": _summary(outcome, "val"),
        "test": _summary(outcome, "test"),
        "probes": outcome,
    }


def calibrate_on_training(
    frame: pd.DataFrame,
    gate_rows: Sequence[Mapping[str, Any]],
    texts: Sequence[str],
    text_emb: np.ndarray,
    level_words: Sequence[str],
) -> dict[str, Any]:
    """:func:`apply_calibration` on the train split's descriptions (``frame``: the phase3
    samples) and pairs.json's gate texts, logged (the phase3 job's apply gate)."""
    train = frame.loc[frame["split"] == "train"].drop_duplicates("description")
    trained = [
        {"text": t, "effect": e, "level_word": w}
        for t, e, w in zip(
            train["description"], train["image_effect"], train["level_word"], strict=True
        )
    ]
    cal = apply_calibration(trained, gate_rows, texts, text_emb, level_words)
    _log_gate(cal)
    return cal


def _log_gate(cal: Mapping[str, Any]) -> None:
    """The apply gate's figures on validation (what chose it) and on the held-out test
    paraphrases (reported, chose nothing); loud where they are poor."""
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
