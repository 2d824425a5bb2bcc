"""Phase 1: which image effect corresponds to which audio effect? (pure math, no I/O)

For every image effect ``i`` and audio effect ``j``::

    sim1[i]    = cos(image prototype_i, image text anchor_i)          in CLIP space
    sim2[j]    = cos(audio prototype_j, audio text anchor_j)          in CLAP space
    sim3[i, j] = cos(image text anchor_i, audio text anchor_j)        in ONE text space (bridge)
    score      = max(sim1, 0) · max(sim2, 0) · max(sim3, 0)           (clip_negative on)

A prototype is ``p(t, s) = mean(Δe / ‖Δe‖)`` over the deltas of one effect (per intensity, and
pooled over the effect's intensities). A text anchor is the mean, over synonyms × contexts, of
``embed(effect prompt) − embed(neutral prompt)`` with unit-normalised text embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from delta_v2a import metrics

#: Why sim3 needs a bridge (also written into discovery_labels.json).
SIM3_REASON = (
    "The seed computes sim3 = cosine(image text anchor, audio text anchor), but the image anchor "
    "lives in CLIP's text space (768-d for ViT-L/14) and the audio anchor in CLAP's (512-d): a "
    "cosine between vectors of different spaces (and sizes) is undefined, and even at equal size "
    "the axes of two independently trained models mean different things. Both anchors are "
    "therefore built again in one shared text space and compared there (text_bridge: clap = "
    "CLAP's text tower, clip = CLIP's text tower, both = mean of the two cosines)."
)

#: Why factors are clipped at 0 before the product (also written into the labels file).
CLIP_REASON = (
    "score = sim1 × sim2 × sim3 is meant as AND logic (all three must agree); two negative "
    "factors would multiply to a positive score, so each factor is clipped at 0 first "
    "(clip_negative: true). The raw factors are saved beside the score."
)

TEXT_BRIDGES = ("clap", "clip", "both")
EmbedTexts = Callable[[list[str]], np.ndarray]


# --------------------------------------------------------------------------- prototypes


@dataclass(frozen=True)
class Prototypes:
    """Effect prototypes of one modality: per intensity and pooled over intensities.

    ``per_intensity[k, e]`` is NaN where (effect e, intensity k) has no usable delta.
    """

    effects: list[str]
    intensities: list[str]
    per_intensity: np.ndarray  # (I, E, D) float64
    pooled: np.ndarray  # (E, D) float64: mean of ALL unit deltas of the effect
    counts: np.ndarray  # (I, E) int: usable (finite, non-zero) deltas behind each prototype


def prototypes(
    delta: np.ndarray,
    effect_code: np.ndarray,
    intensity_code: np.ndarray,
    effects: Sequence[str],
    intensities: Sequence[str],
) -> Prototypes:
    """``p = mean(Δe/‖Δe‖)`` per (effect, intensity) and per effect (pooled).

    Pooled is the mean over every unit delta of the effect, whatever its intensity (so an
    intensity with more usable deltas weighs more), not the mean of the per-intensity means.
    Zero-norm and non-finite deltas have no direction and are left out (``metrics.screen``).
    """
    n_e, n_i, dim = len(effects), len(intensities), int(np.asarray(delta).shape[1])
    per = np.full((n_i, n_e, dim), np.nan)
    sums = np.zeros((n_e, dim))
    counts = np.zeros((n_i, n_e), dtype=np.int64)
    for (e, k), rows in metrics.group_indices(effect_code, intensity_code):
        units = metrics.screen(delta[rows]).units
        counts[k, e] = units.shape[0]
        if units.shape[0]:
            per[k, e] = metrics.prototype(units)
            sums[e] += units.sum(axis=0)
    total = counts.sum(axis=0)
    pooled = np.full((n_e, dim), np.nan)
    pooled[total > 0] = sums[total > 0] / total[total > 0, None]
    return Prototypes(list(effects), list(intensities), per, pooled, counts)


# --------------------------------------------------------------------------- text anchors


def readable(name: str) -> str:
    """A folder name as it reads in a prompt: ``hip_hop`` -> ``hip hop``."""
    return " ".join(name.replace("_", " ").split())


@dataclass(frozen=True)
class AnchorSpec:
    """How one modality's effects are put into words.

    ``effect_template`` has ``{synonym}`` and may have ``{<context_field>}``; the neutral one the
    context only. ``synonyms`` maps each effect (in row/column order) to its synonym list.
    """

    effect_template: str
    neutral_template: str
    context_field: str  # "category" (image) or "genre" (audio)
    synonyms: Mapping[str, Sequence[str]]
    contexts: Sequence[str]

    def pairs(self) -> dict[str, list[tuple[str, str]]]:
        """effect -> [(effect prompt, neutral prompt)] over synonyms × contexts."""
        out: dict[str, list[tuple[str, str]]] = {}
        for effect, syns in self.synonyms.items():
            out[effect] = [
                (
                    self.effect_template.format(synonym=syn, **{self.context_field: ctx}),
                    self.neutral_template.format(**{self.context_field: ctx}),
                )
                for syn in syns
                for ctx in self.contexts
            ]
        return out


@dataclass(frozen=True)
class Anchors:
    effects: list[str]
    vectors: np.ndarray  # (E, D) float64: mean of (effect − neutral) unit text embeddings
    n_pairs: list[int]  # prompt pairs averaged per effect (synonyms × contexts)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > metrics.ZERO_NORM)


def text_anchors(
    embed_texts: EmbedTexts, specs: Mapping[str, AnchorSpec]
) -> tuple[dict[str, Anchors], int]:
    """Anchors of every spec in ONE text space, with one batched embedding call.

    Every distinct prompt of every spec (effect and neutral, all synonyms × contexts) is
    collected first and embedded exactly once; embeddings are unit-normalised here whatever the
    model's setting, so each difference is one between directions. Returns the anchors per spec
    name and the number of distinct prompts embedded.
    """
    pairs = {name: spec.pairs() for name, spec in specs.items()}
    prompts = list(
        dict.fromkeys(
            p
            for per_effect in pairs.values()
            for ps in per_effect.values()
            for pair in ps
            for p in pair
        )
    )
    if not prompts:
        raise ValueError("no prompts: every effect needs at least one synonym and context")
    emb = _unit_rows(embed_texts(prompts))
    if emb.shape[0] != len(prompts):
        raise ValueError(f"embed_texts returned {emb.shape[0]} rows for {len(prompts)} prompts")
    row = {p: i for i, p in enumerate(prompts)}
    out = {}
    for name, per_effect in pairs.items():
        vectors, n_pairs = [], []
        for effect_pairs in per_effect.values():
            if not effect_pairs:
                raise ValueError(f"{name}: an effect has no (synonym, context) prompt pair")
            eff = np.array([row[e] for e, _ in effect_pairs])
            neu = np.array([row[n] for _, n in effect_pairs])
            vectors.append((emb[eff] - emb[neu]).mean(axis=0))
            n_pairs.append(len(effect_pairs))
        out[name] = Anchors(list(per_effect), np.stack(vectors), n_pairs)
    return out, len(prompts)


# --------------------------------------------------------------------------- similarities


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a[k], b[k]) for each row pair; NaN where either row is zero or NaN."""
    if a.shape != b.shape:
        raise ValueError(f"rowwise cosine needs equal shapes (one space), got {a.shape}, {b.shape}")
    return np.array([metrics.cosine(x, y) for x, y in zip(a, b, strict=True)], dtype=np.float64)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a[i], b[j]) for all i, j; both sets must live in the same space."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"cosine between {a.shape[1]}-d and {b.shape[1]}-d vectors is undefined: they are "
            "different spaces (see SIM3_REASON)"
        )
    return np.array([[metrics.cosine(x, y) for y in b] for x in a], dtype=np.float64)


def bridge_sim3(
    image_anchor_clap: np.ndarray | None,
    audio_anchor_clap: np.ndarray | None,
    image_anchor_clip: np.ndarray | None,
    audio_anchor_clip: np.ndarray | None,
    text_bridge: str,
) -> dict[str, np.ndarray]:
    """sim3 in the chosen shared text space(s): keys ``clap``/``clip`` (computed ones) and
    ``sim3`` (the one used: the bridge's cosine, or the mean of both for ``both``)."""
    if text_bridge not in TEXT_BRIDGES:
        raise ValueError(f"text_bridge must be one of {TEXT_BRIDGES}, got {text_bridge!r}")
    out: dict[str, np.ndarray] = {}
    if text_bridge in ("clap", "both"):
        out["clap"] = cosine_matrix(image_anchor_clap, audio_anchor_clap)
    if text_bridge in ("clip", "both"):
        out["clip"] = cosine_matrix(image_anchor_clip, audio_anchor_clip)
    out["sim3"] = (out["clap"] + out["clip"]) / 2 if text_bridge == "both" else out[text_bridge]
    return out


def combine(
    sim1: np.ndarray, sim2: np.ndarray, sim3: np.ndarray, clip_negative: bool = True
) -> np.ndarray:
    """score[..., i, j] = sim1[..., i] · sim2[..., j] · sim3[i, j].

    Why clip: the product is an AND of three agreements; without clipping, two negative factors
    (say the image prototype opposes its anchor AND the bridge opposes the pair) would multiply
    to a confident positive score. Clipping at 0 makes any disagreement a zero. NaN (no usable
    prototype) stays NaN. Leading axes of sim1/sim2 (e.g. intensity) broadcast together.
    """
    s1 = np.asarray(sim1, dtype=np.float64)[..., :, None]
    s2 = np.asarray(sim2, dtype=np.float64)[..., None, :]
    s3 = np.asarray(sim3, dtype=np.float64)
    if clip_negative:
        s1, s2, s3 = (np.where(s < 0, 0.0, s) for s in (s1, s2, s3))
    return s1 * s2 * s3


# --------------------------------------------------------------------------- summary


def best_matches(
    score: np.ndarray, image_effects: Sequence[str], audio_effects: Sequence[str]
) -> list[dict]:
    """For each image effect: its best audio effect, the score, and the margin over the runner-up.

    NaN cells are ignored; ``tie`` is true when the runner-up scores the same (e.g. every cell
    clipped to 0), so the "best" one is then arbitrary.
    """
    rows = []
    for i, name in enumerate(image_effects):
        row = np.asarray(score[i], dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.argsort(-row[finite], kind="stable")]
        rec: dict = {"image_effect": name, "best": None, "score": None}
        rec |= {"runner_up": None, "runner_up_score": None, "margin": None, "tie": None}
        if order.size:
            rec |= {"best": audio_effects[order[0]], "score": float(row[order[0]])}
        if order.size > 1:
            second = float(row[order[1]])
            rec |= {
                "runner_up": audio_effects[order[1]],
                "runner_up_score": second,
                "margin": float(row[order[0]]) - second,
                "tie": bool(row[order[0]] == second),
            }
        rows.append(rec)
    return rows
