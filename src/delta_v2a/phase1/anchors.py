"""Phase 1 anchors: effect prototypes, text anchors, cosines, centring and shared words (pure
math, no I/O; docs/methods.md §5).

For every image effect ``i`` and audio effect ``j``::

    sim1[i]    = cos(image prototype_i, image text anchor_i)   in the image model's text tower
    sim2[j]    = cos(audio prototype_j, audio text anchor_j)   in the audio model's text tower
    sim3[i, j] = cos(image text anchor_i, audio text anchor_j) in ONE text tower (the bridge)
    score      = max(sim1, 0) · max(sim2, 0) · max(sim3, 0)    (clip_negative on)

A prototype is ``p(t, s) = mean(Δe / ‖Δe‖)`` over the deltas of one effect (per intensity, and
pooled over the effect's intensities). A text anchor is the mean, over synonyms × contexts, of
``embed(effect prompt) − embed(neutral prompt)`` with unit-normalised text embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from delta_v2a import metrics

#: Why sim3 needs a bridge (also written into discovery_labels.json).
SIM3_REASON = (
    "The seed computes sim3 = cosine(image text anchor, audio text anchor), but the image anchor "
    "lives in CLIP's text space (768-d for ViT-L/14) and the audio anchor in CLAP's (512-d): a "
    "cosine between vectors of different spaces (and sizes) is undefined, and even at equal size "
    "the axes of two independently trained models mean different things. Both anchors are "
    "therefore built again in one shared text space and compared there (text_bridge: audio = "
    "the audio model's (CLAP's) text tower, image = the image model's (CLIP's), both = both "
    "towers must agree: the smaller of the two cosines)."
)

#: Why factors are clipped at 0 before the product (also written into the labels file).
CLIP_REASON = (
    "score = sim1 × sim2 × sim3 is meant as AND logic (all three must agree); two negative "
    "factors would multiply to a positive score, so each factor is clipped at 0 first "
    "(clip_negative: true). The raw factors are saved beside the score."
)

#: Which text tower compares the two anchors: the audio model's, the image model's, or both.
TEXT_BRIDGES = ("audio", "image", "both")
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
    #: per effect, (S_e, D): each synonym's mean over contexts of (effect − neutral); the
    #: anchor is their mean (every synonym has the same contexts). The permutation null
    #: regroups these rows, so no model call is needed inside a permutation.
    synonym_vectors: list[np.ndarray] = field(default_factory=list)


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
        vectors, n_pairs, per_syn = [], [], []
        n_ctx = max(len(specs[name].contexts), 1)
        for effect_pairs in per_effect.values():
            if not effect_pairs:
                raise ValueError(f"{name}: an effect has no (synonym, context) prompt pair")
            eff = np.array([row[e] for e, _ in effect_pairs])
            neu = np.array([row[n] for _, n in effect_pairs])
            diff = emb[eff] - emb[neu]  # synonym-major: pairs() loops synonyms, then contexts
            vectors.append(diff.mean(axis=0))
            per_syn.append(diff.reshape(-1, n_ctx, diff.shape[1]).mean(axis=1))
            n_pairs.append(len(effect_pairs))
        out[name] = Anchors(list(per_effect), np.stack(vectors), n_pairs, per_syn)
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


# --------------------------------------------------------------------------- centring


def center(vectors: np.ndarray) -> np.ndarray:
    """Subtract the modality's mean anchor over its effects (docs/methods.md §5).

    Every "A {x} photo of {c}" − "A photo of {c}" shares a part that does not depend on the
    effect (the template's "an adjective was added"); left in, it makes every anchor look like
    every other and sim3 positive for all pairs. Works on (E, D) or batched (..., E, D).
    """
    v = np.asarray(vectors, dtype=np.float64)
    return v - v.mean(axis=-2, keepdims=True)


# --------------------------------------------------------------------------- shared words

#: Function words that do not carry an effect's meaning (a shared "of" is not a shortcut).
STOPWORDS = frozenset(
    "a an the of in on at to and or with without out for by like very too more less".split()
)


def content_words(phrase: str) -> set[str]:
    """Lower-case word tokens of a synonym, split at anything but letters/digits, minus
    STOPWORDS: "low-contrast" -> {"low", "contrast"}, "out of focus" -> {"focus"}."""
    tokens = "".join(ch if ch.isalnum() else " " for ch in phrase.lower()).split()
    return {t for t in tokens if t not in STOPWORDS}


def shared_words(
    image_synonyms: Mapping[str, Sequence[str]], audio_synonyms: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Every content word used by an image-side AND an audio-side synonym.

    Returns word -> the synonyms that contain it, as "image.<effect>: <synonym>" /
    "audio.<effect>: <synonym>" (sorted), so a message can name each one.
    """
    where: dict[str, dict[str, list[str]]] = {}
    for modality, table in (("image", image_synonyms), ("audio", audio_synonyms)):
        for effect, syns in table.items():
            for syn in syns:
                for word in content_words(syn):
                    where.setdefault(word, {}).setdefault(modality, []).append(
                        f"{modality}.{effect}: {syn}"
                    )
    return {
        w: sorted(d["image"] + d["audio"])
        for w, d in sorted(where.items())
        if "image" in d and "audio" in d
    }


def without_shared(
    synonyms: Mapping[str, Sequence[str]], words: Mapping[str, object]
) -> dict[str, list[bool]]:
    """Per effect, a keep-mask over its synonyms: False where the synonym has a shared word."""
    return {e: [not (content_words(s) & set(words)) for s in syns] for e, syns in synonyms.items()}


def masked_anchors(synonym_vectors: Sequence[np.ndarray], keep: Sequence[Sequence[bool]]):
    """Anchors from the kept synonyms only; NaN row where an effect keeps none."""
    dim = synonym_vectors[0].shape[1]
    out = np.full((len(synonym_vectors), dim), np.nan)
    for e, (vec, mask) in enumerate(zip(synonym_vectors, keep, strict=True)):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            out[e] = vec[mask].mean(axis=0)
    return out


def center_finite(vectors: np.ndarray) -> np.ndarray:
    """``center`` over the effects whose anchor is defined (NaN rows stay NaN)."""
    v = np.asarray(vectors, dtype=np.float64)
    ok = np.isfinite(v).all(axis=1)
    out = np.full_like(v, np.nan)
    if ok.any():
        out[ok] = v[ok] - v[ok].mean(axis=0)
    return out


# --------------------------------------------------------------------------- vectorised cosines


def _unit_last(x: np.ndarray) -> np.ndarray:
    """Unit rows along the last axis; a zero row becomes NaN (no direction, no cosine)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > metrics.ZERO_NORM, x / n, np.nan)


def batched_rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a[..., e, :], b[..., e, :]) for batched stacks (broadcasting leading axes)."""
    return np.einsum("...ed,...ed->...e", _unit_last(a), _unit_last(b))


def batched_cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a[..., i, :], b[..., j, :]) -> (..., I, J); both sets must live in one space."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"cosine between {a.shape[-1]}-d and {b.shape[-1]}-d vectors is undefined: they are "
            "different spaces (see SIM3_REASON)"
        )
    return np.einsum("...id,...jd->...ij", _unit_last(a), _unit_last(b))


def anchor_of(synonym_vectors: Sequence[np.ndarray], centred: bool) -> np.ndarray:
    """Anchors = mean of each effect's synonym vectors (NaN where an effect keeps none),
    centred over the defined effects if asked."""
    dim = max(v.shape[1] for v in synonym_vectors)
    raw = np.stack(
        [v.mean(axis=0) if v.shape[0] else np.full(dim, np.nan) for v in synonym_vectors]
    )
    return center_finite(raw) if centred else raw
