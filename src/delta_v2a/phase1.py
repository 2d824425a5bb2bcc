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

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

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


# --------------------------------------------------------------------------- bootstrap over files


@dataclass(frozen=True)
class FileSums:
    """Unit deltas summed per (file, effect), pooled over intensities (one modality).

    The bootstrap resamples files, so a resampled prototype is ``Σ_f c_f S[f, e] / Σ_f c_f
    n[f, e]`` with multinomial counts c: one matrix product per batch of draws, no re-screening.
    """

    sums: np.ndarray  # (F, E, D) float32
    counts: np.ndarray  # (F, E) float64


def usable_units(delta: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Unit deltas at every row (zeros where unusable) and the usable mask, by the same rule as
    ``metrics.screen`` (finite and norm > ZERO_NORM), keeping row positions for resampling."""
    d = np.asarray(delta)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", d, d, dtype=np.float64))
    ok = np.isfinite(norms) & (norms > metrics.ZERO_NORM)
    units = np.zeros(d.shape, dtype=dtype)
    units[ok] = d[ok] / norms[ok, None]
    return units, ok


def file_sums(
    delta: np.ndarray, file_index: np.ndarray, effect_code: np.ndarray, n_files: int, n_effects: int
) -> FileSums:
    units, ok = usable_units(delta)
    key = np.asarray(file_index) * n_effects + np.asarray(effect_code)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    sums = np.zeros((n_files * n_effects, delta.shape[1]), dtype=np.float64)
    if order.size:
        sums[ks[starts]] = np.add.reduceat(units[order], starts, axis=0)
    counts = np.bincount(key, weights=ok.astype(np.float64), minlength=n_files * n_effects)
    return FileSums(
        sums.reshape(n_files, n_effects, -1).astype(np.float32),
        counts.reshape(n_files, n_effects),
    )


def bootstrap_sim(
    fs: FileSums, anchors: np.ndarray, n_boot: int, rng: np.random.Generator, batch: int = 128
) -> np.ndarray:
    """(n_boot, E) draws of cos(prototype_e, anchor_e) with files resampled with replacement.

    Files, not deltas, are the unit: the deltas of one file share its content, so resampling
    deltas would understate the spread. A draw in which an effect has no delta gives NaN.
    """
    n_files, n_eff, dim = fs.sums.shape
    flat = fs.sums.reshape(n_files, n_eff * dim)
    out = np.empty((n_boot, n_eff))
    for start in range(0, n_boot, batch):
        b = min(batch, n_boot - start)
        c = rng.multinomial(n_files, np.full(n_files, 1.0 / n_files), size=b).astype(np.float32)
        tot = (c @ flat).reshape(b, n_eff, dim).astype(np.float64)
        n = c.astype(np.float64) @ fs.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n[..., None] > 0, tot / n[..., None], np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out


def percentile_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN draws; NaN where every draw is NaN."""
    q = (1 - level) / 2
    if np.isfinite(draws).all():  # the common case; nanquantile is a slow per-column loop
        return np.quantile(draws, q, axis=0), np.quantile(draws, 1 - q, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
        return np.nanquantile(draws, q, axis=0), np.nanquantile(draws, 1 - q, axis=0)


def basic_interval(
    estimate: np.ndarray,
    draws: np.ndarray,
    level: float,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[np.ndarray, np.ndarray]:
    """Basic (reverse-percentile) bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo], kept in ``bounds``.

    Why not the plain percentile interval: the cosine of a noisy mean is shrunk toward 0, and
    the bootstrap draws are shrunk once more, so percentile intervals sit on the wrong side of
    the truth (measured in tests/unit/phase1_stats_test.py: 81 % coverage for a nominal 90 %;
    basic: 88 %). The basic interval reflects the draws about the estimate, which removes that
    first-order bias.
    """
    q_lo, q_hi = percentile_interval(draws, level)
    lo, hi = 2 * estimate - q_hi, 2 * estimate - q_lo
    return np.clip(lo, *bounds), np.clip(hi, *bounds)


# --------------------------------------------------------------------------- permutation nulls


def strata_permutations(strata: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """(n_perm, N) index arrays, each a uniform random permutation WITHIN every stratum."""
    strata = np.asarray(strata)
    n = strata.size
    keys = rng.random((n_perm, n)) + strata[None, :].astype(np.float64) * 2.0
    order = np.argsort(keys, axis=1, kind="stable")  # rows sorted by stratum, random within
    base = np.argsort(strata, kind="stable")  # the stratum-sorted identity
    perm = np.empty((n_perm, n), dtype=np.int64)
    np.put_along_axis(perm, np.broadcast_to(base, (n_perm, n)).copy(), order, axis=1)
    return perm


def label_permutation_sim(
    delta: np.ndarray,
    effect_code: np.ndarray,
    strata: np.ndarray,
    anchors: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
    batch: int | None = None,
) -> np.ndarray:
    """(n_perm, E) null draws of cos(prototype_e, anchor_e) with effect labels permuted within
    strata (file × intensity): the null "the deltas do not depend on which effect made them".

    Prototypes of a permutation are one sparse-free matrix product of a one-hot label matrix
    with the unit deltas, batched so the deltas are read once per ``batch`` permutations.
    """
    units, ok = usable_units(delta, np.float32)
    ok = ok.astype(np.float32)
    codes = np.asarray(effect_code)
    n_eff = anchors.shape[0]
    out = np.empty((n_perm, n_eff))
    # ~64 MB of one-hot labels per batch: 40 permutations at 10^5 deltas × 4 effects
    batch = batch or int(np.clip(16_000_000 // max(codes.size * n_eff, 1), 1, n_perm))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        perm = strata_permutations(strata, b, rng)
        # (b·E, N) one-hot of each delta's new label (unusable deltas count nowhere)
        onehot = np.zeros((b, n_eff, codes.size), dtype=np.float32)
        rows = np.broadcast_to(np.arange(b)[:, None], perm.shape)
        cols = np.broadcast_to(np.arange(codes.size)[None, :], perm.shape)
        onehot[rows, codes[perm], cols] = ok[None, :]
        onehot = onehot.reshape(b * n_eff, -1)
        tot = (onehot @ units).reshape(b, n_eff, -1).astype(np.float64)
        n = onehot.sum(axis=1).reshape(b, n_eff, 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n > 0, tot / n, np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out


def regroup(
    synonym_vectors: Sequence[np.ndarray], n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_perm, E, D) anchors from the modality's synonyms shuffled across its effects (group
    sizes kept): the null "these words are not grouped by effect"."""
    pool = np.concatenate(synonym_vectors, axis=0)
    sizes = np.array([v.shape[0] for v in synonym_vectors])
    group = np.repeat(np.arange(len(sizes)), sizes)
    perm = np.argsort(rng.random((n_perm, pool.shape[0])), axis=1)
    weights = np.zeros((n_perm, len(sizes), pool.shape[0]))
    rows = np.arange(n_perm)[:, None]
    weights[rows, group[None, :], perm] = 1.0 / sizes[group][None, :]
    return weights @ pool


def synonym_shuffle_sim3(
    image_vectors: Mapping[str, Sequence[np.ndarray]],
    audio_vectors: Mapping[str, Sequence[np.ndarray]],
    n_perm: int,
    rng: np.random.Generator,
    centred: bool,
) -> dict[str, np.ndarray]:
    """Null draws of sim3 per bridge: (n_perm, I, J), both sides' synonyms regrouped.

    ``image_vectors[bridge]`` are the image synonyms' vectors in that bridge's text space. The
    SAME regrouping is used in every bridge (a draw is one relabelling of the words), so a
    combination of bridges has a null built from matched draws.
    """
    out = {}
    state = rng.bit_generator.state
    for bridge in image_vectors:
        rng.bit_generator.state = state  # same word relabelling in every bridge
        a = regroup(image_vectors[bridge], n_perm, rng)
        b = regroup(audio_vectors[bridge], n_perm, rng)
        if centred:
            a, b = center(a), center(b)
        out[bridge] = batched_cosine_matrix(a, b)
    return out


def standardise(obs: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(obs − null mean) / null SD per cell, for the observed value and every null draw."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell with no null: NaN
        mu = np.nanmean(null, axis=0)
        sd = np.nanstd(null, axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (obs - mu) / sd, (null - mu) / sd


def perm_pvalue(obs: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided permutation p-value (1 + #{null ≥ obs}) / (1 + R) per cell (never 0).

    The +1 counts the observed labelling as one of the permutations (it is one), which keeps
    the test exact at level alpha. NaN where obs is NaN.
    """
    obs = np.asarray(obs, dtype=np.float64)
    valid = np.isfinite(null)
    ge = (null >= obs[None] - 1e-12) & valid
    r = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1.0 + ge.sum(axis=0)) / (1.0 + r)
    return np.where(np.isfinite(obs) & (r > 0), p, np.nan)


CORRECTIONS = ("holm", "bh")


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values
    over every finite entry of ``p`` (the whole matrix is one family); NaN stays NaN."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    p = np.asarray(p, dtype=np.float64)
    flat = p.ravel()
    idx = np.flatnonzero(np.isfinite(flat))
    out = np.full(flat.shape, np.nan)
    m = idx.size
    if m == 0:
        return out.reshape(p.shape)
    order = idx[np.argsort(flat[idx], kind="stable")]
    ps = flat[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ps)
    else:
        adj = np.minimum.accumulate((m / np.arange(1, m + 1) * ps)[::-1])[::-1]
    out[order] = np.minimum(adj, 1.0)
    return out.reshape(p.shape)


def intersection_union(*p: np.ndarray) -> np.ndarray:
    """p of "every one of these nulls is false" = the largest p (Berger 1982): a pair needs its
    image effect, its audio effect AND the bridge to be significant; no correction is needed
    among the three because the cell is rejected only when all three are."""
    return np.fmax.reduce(np.broadcast_arrays(*p)) if len(p) > 1 else np.asarray(p[0])


def file_permutation_sim(
    fs: FileSums, anchors: np.ndarray, n_perm: int, rng: np.random.Generator, batch: int = 0
) -> np.ndarray:
    """(n_perm, E) draws of cos(prototype_e, anchor_e) with effect labels permuted within each
    file, a file's (effect) block moving whole across its intensities.

    The null "the deltas do not depend on which effect made them" (secondary figure
    ``p_sim*_label``). Permuting whole per-file blocks is a subgroup of the within-file ×
    intensity permutations, so it is exact under the same null, and it works on the per-file
    sums of the bootstrap: one (b·E, F·E) one-hot product per batch, no pass over the deltas.
    """
    n_files, n_eff, dim = fs.sums.shape
    flat = fs.sums.reshape(n_files * n_eff, dim)
    counts = fs.counts.reshape(-1).astype(np.float32)
    out = np.empty((n_perm, n_eff))
    # ~64 MB of float32 one-hot per batch
    batch = batch or int(np.clip(16_000_000 // max(n_files * n_eff * n_eff, 1), 1, n_perm))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        src = np.argsort(rng.random((b, n_files, n_eff)), axis=2)  # label e <- block src
        onehot = np.zeros((b, n_eff, n_files, n_eff), dtype=np.float32)
        bi, fi, ei = np.meshgrid(np.arange(b), np.arange(n_files), np.arange(n_eff), indexing="ij")
        onehot[bi, ei, fi, src] = 1.0
        onehot = onehot.reshape(b * n_eff, -1)
        tot = (onehot @ flat).reshape(b, n_eff, dim).astype(np.float64)
        n = (onehot @ counts).reshape(b, n_eff, 1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            proto = np.where(n > 0, tot / n, np.nan)
        out[start : start + b] = batched_rowwise_cosine(proto, anchors[None])
    return out


# --------------------------------------------------------------------------- foil vocabulary

#: Package data: adjectives in coherent clusters that name no configured effect.
FOILS_FILE = "phase1_foils.tsv"


def parse_foils(text: str, exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """cluster -> words from a ``cluster<TAB>word`` table, without every foil that shares a
    content word with a phrase of ``exclude`` (the configured synonyms).

    Why exclude: a foil that shares a word with a real synonym is not unrelated to that effect,
    and a null made of the claim's own words would hide a real pair (or, across modalities,
    plant one).
    """
    banned = set().union(*(content_words(s) for s in exclude))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].split("\t") != ["cluster", "word"]:
        raise ValueError("a foil table needs the header 'cluster<TAB>word'")
    out: dict[str, list[str]] = {}
    for ln in lines[1:]:
        cluster, word = (x.strip() for x in ln.split("\t"))
        if not content_words(word) & banned and word not in out.get(cluster, []):
            out.setdefault(cluster, []).append(word)
    return out


def load_foils(exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """The package's foil vocabulary (the one file Phase 1 reads), minus ``exclude``'s words."""
    text = resources.files("delta_v2a").joinpath(FOILS_FILE).read_text(encoding="utf-8")
    return parse_foils(text, exclude)


@dataclass(frozen=True)
class FoilBank:
    """Foil words put through one modality's templates, in one text space.

    ``vectors[w]`` is made exactly like a synonym vector (mean over contexts of effect prompt −
    neutral prompt), so the mean of a foil set is made exactly like an anchor.
    """

    words: list[str]
    cluster: np.ndarray  # (W,) int: cluster code of each word
    vectors: np.ndarray  # (W, D)


@dataclass(frozen=True)
class Foils:
    """Every foil bank Phase 1 needs: sim1's (CLIP, image templates), sim2's (CLAP, audio
    templates) and, per bridge, (image templates, audio templates) in that bridge's space. All
    banks hold the same words in the same order, so one draw means the same words everywhere."""

    image: FoilBank
    audio: FoilBank
    bridges: Mapping[str, tuple[FoilBank, FoilBank]] = field(default_factory=dict)


def foil_spec(spec: AnchorSpec, foils: Mapping[str, Sequence[str]]) -> AnchorSpec:
    """``spec`` with the foil clusters in place of the effects (same templates and contexts):
    add it to the specs of ``text_anchors`` so foils are embedded in the same batched call."""
    return replace(spec, synonyms={c: list(w) for c, w in foils.items()})


def foil_bank(foils: Mapping[str, Sequence[str]], anchors: Anchors) -> FoilBank:
    """The bank from the ``Anchors`` that ``text_anchors`` made of ``foil_spec(..., foils)``."""
    sizes = [len(w) for w in foils.values()]
    if [v.shape[0] for v in anchors.synonym_vectors] != sizes:
        raise ValueError("foil anchors were not made from these foils")
    words = [w for ws in foils.values() for w in ws]
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    return FoilBank(words, cluster, np.concatenate(anchors.synonym_vectors).astype(np.float64))


def embed_foils(
    embed_texts: EmbedTexts, spec: AnchorSpec, foils: Mapping[str, Sequence[str]]
) -> FoilBank:
    """Every foil prompt embedded once (one batched call); draws then only index the bank."""
    anchors, _ = text_anchors(embed_texts, {"foils": foil_spec(spec, foils)})
    return foil_bank(foils, anchors["foils"])


# --------------------------------------------------------------------------- foil draws


def _members(cluster: np.ndarray) -> np.ndarray:
    """(C, largest cluster) word indices per cluster code, padded with −1."""
    codes = np.asarray(cluster, dtype=np.int64)
    sizes = np.bincount(codes)
    out = np.full((sizes.size, sizes.max()), -1, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    out[codes[order], np.arange(codes.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = order
    return out


def foil_draws(
    cluster: np.ndarray,
    size: int,
    n_draws: int,
    rng: np.random.Generator,
    avoid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(n_draws, size) word indices, each row ``size`` distinct words of ONE cluster, and the
    (n_draws,) cluster of each row.

    One cluster per set, so a foil set is as coherent as a synonym list (words of one meaning);
    the cluster is uniform over the clusters with at least ``size`` words, except ``avoid[r]``
    (the other side's cluster in a sim3 draw: the two sides must not be the same words).
    """
    members = _members(cluster)
    ok = np.flatnonzero((members >= 0).sum(axis=1) >= size)
    if ok.size < 1 + (avoid is not None):
        raise ValueError(f"the foil vocabulary has too few clusters of {size} or more words")
    if avoid is None:
        choice = ok[rng.integers(ok.size, size=n_draws)]
    else:
        hit = np.searchsorted(ok, avoid)
        inside = ok[np.minimum(hit, ok.size - 1)] == avoid
        k = np.floor(rng.random(n_draws) * (ok.size - inside)).astype(np.int64)
        choice = ok[k + (inside & (k >= hit))]  # uniform over the eligible clusters but avoid
    keys = rng.random((n_draws, members.shape[1]))
    keys[members[choice] < 0] = 2.0  # padding sorts last
    pos = np.argsort(keys, axis=1)[:, :size]
    return np.take_along_axis(members[choice], pos, axis=1), choice


def _set_mean(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean of ``values[..., w]`` over each draw's word set: (n, S) -> (n, ...)."""
    return values[idx].mean(axis=1)


def _set_sq_norm(gram: np.ndarray, idx: np.ndarray, offset_proj: np.ndarray, oo: float):
    """|mean(V[set]) − o|² from the Gram matrix (no D-wide vector per draw):
    mean of the S×S Gram block − 2 · mean(V[set]·o) + |o|²."""
    s = idx.shape[1]
    block = gram[idx[:, :, None], idx[:, None, :]].sum(axis=(1, 2)) / (s * s)
    return block - 2.0 * _set_mean(offset_proj, idx) + oo


def _offset(raw: np.ndarray, e: int, centred: bool, dim: int) -> np.ndarray | None:
    """What centring subtracts from effect e's anchor, up to a positive factor: the mean of the
    OTHER defined anchors (with the foil in e's place, centred foil = (E−1)/E · (foil − that)).
    Zero without centring; None where centring leaves nothing (no other effect)."""
    if not centred:
        return np.zeros(dim)
    others = np.isfinite(raw).all(axis=1)
    others[e] = False
    return raw[others].mean(axis=0) if others.any() else None


def _div(num: np.ndarray, sq: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sq > metrics.ZERO_NORM**2, num / np.sqrt(np.maximum(sq, 0)), np.nan)


def foil_anchor_null(
    proto: np.ndarray,
    raw_anchors: np.ndarray,
    sizes: Sequence[int],
    bank: FoilBank,
    n_draws: int,
    rng: np.random.Generator,
    centred: bool = True,
    chunk: int = 65_536,
) -> np.ndarray:
    """(n_draws, E) null draws of cos(prototype_e, anchor_e): a foil set of effect e's size
    from one cluster is put in e's place among the raw anchors, centred as the real one.

    The null "this prototype points along its words no more than along unrelated coherent
    words", which an effect that moves embeddings orthogonally to every anchor satisfies (the
    label permutation rejects it: effects differ). The cosine is computed from projections
    and the foil Gram matrix, so a draw costs O(S²), not O(D).
    """
    v = bank.vectors
    gram = v @ v.T
    n_eff, dim = proto.shape
    out = np.full((n_draws, n_eff), np.nan)
    for e in range(n_eff):
        p, o = proto[e], _offset(raw_anchors, e, centred, dim)
        if sizes[e] < 1 or o is None or not np.isfinite(p).all():
            continue
        vp, vo, po = v @ p, v @ o, float(p @ o)
        idx_all, _ = foil_draws(bank.cluster, int(sizes[e]), n_draws, rng)
        for a in range(0, n_draws, chunk):
            idx = idx_all[a : a + chunk]
            num = (_set_mean(vp, idx) - po) / np.linalg.norm(p)
            out[a : a + chunk, e] = _div(num, _set_sq_norm(gram, idx, vo, float(o @ o)))
    return out


def foil_pair_draws(
    image_sizes: Sequence[int],
    audio_sizes: Sequence[int],
    cluster: np.ndarray,
    n_draws: int,
    rng: np.random.Generator,
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Per cell (i, j): (image foil sets, audio foil sets), size-matched to the two effects'
    synonym lists, each from one cluster, the two sides from DIFFERENT clusters. Drawn once
    and used in every bridge, so the bridges' nulls are matched draw by draw."""
    out = {}
    for i, si in enumerate(image_sizes):
        for j, sj in enumerate(audio_sizes):
            if si >= 1 and sj >= 1:
                img, c = foil_draws(cluster, int(si), n_draws, rng)
                aud, _ = foil_draws(cluster, int(sj), n_draws, rng, avoid=c)
                out[(i, j)] = (img, aud)
    return out


def foil_sim3_null(
    image_raw: np.ndarray,
    audio_raw: np.ndarray,
    banks: tuple[FoilBank, FoilBank],
    draws: Mapping[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    n_draws: int,
    centred: bool = True,
) -> np.ndarray:
    """(n_draws, I, J) null draws of sim3[i, j] in one bridge: foil sets in image effect i's
    and audio effect j's places, each side centred with the foil among its real anchors.

    The null "these two synonym lists are no closer than two unrelated coherent word sets";
    words that cluster in a low-dimensional subspace cluster in the foils too, which the old
    regrouping of the real words across effects did not reproduce. Gram-based, O(S_i·S_j).
    """
    vi, va = banks[0].vectors, banks[1].vectors
    if vi.shape[1] != va.shape[1] or banks[0].words != banks[1].words:
        raise ValueError("a bridge's image and audio foil banks must share words and space")
    gi, ga, cross = vi @ vi.T, va @ va.T, vi @ va.T
    dim = vi.shape[1]
    out = np.full((n_draws, image_raw.shape[0], audio_raw.shape[0]), np.nan)
    for (i, j), (fi, fa) in draws.items():
        o, q = _offset(image_raw, i, centred, dim), _offset(audio_raw, j, centred, dim)
        if o is None or q is None:
            continue
        fg = cross[fi[:, :, None], fa[:, None, :]].mean(axis=(1, 2))
        num = fg - _set_mean(vi @ q, fi) - _set_mean(va @ o, fa) + float(o @ q)
        sq = _set_sq_norm(gi, fi, vi @ o, float(o @ o)) * _set_sq_norm(ga, fa, va @ q, float(q @ q))
        out[:, i, j] = _div(num, sq)
    return out


# --------------------------------------------------------------------------- pair choice


def choose_significant(
    score: np.ndarray,
    p_adjusted: np.ndarray,
    alpha: float,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
) -> list[dict]:
    """The ONE rule for "significant pair": per image effect, the best-scoring cell among the
    cells with ``p_adjusted ≤ alpha`` AND ``score > 0`` (docs/methods.md §5).

    A runner-up can be chosen when the row's best score is not significant: the test, not the
    ranking, is the evidence, and the highest score may rest on one noisy factor. ``≤ alpha``
    (not <) everywhere, so a p of exactly alpha counts as in the level-alpha test. Each pair
    records ``rank_in_row`` (1 = best score in the row) and a short ``reason``.
    """
    out = []
    for i, name in enumerate(image_effects):
        row = np.asarray(score[i], dtype=np.float64)
        p_row = np.asarray(p_adjusted[i], dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.argsort(-row[finite], kind="stable")]
        ok = [j for j in order if row[j] > 0 and np.isfinite(p_row[j]) and p_row[j] <= alpha]
        if not ok:
            continue
        j = int(ok[0])
        rank = int(np.flatnonzero(order == j)[0]) + 1
        best = int(order[0])
        reason = f"best score in row, p_adjusted {p_row[j]:.3g} <= alpha {alpha:g}"
        if rank > 1:
            reason = (
                f"rank {rank} in row: higher-scoring {audio_effects[best]} "
                f"(score {row[best]:.3g}) has p_adjusted {p_row[best]:.3g} > alpha {alpha:g}; "
                f"this cell's p_adjusted {p_row[j]:.3g} <= alpha"
            )
        out.append(
            {
                "image_effect": name,
                "audio_effect": audio_effects[j],
                "score": float(row[j]),
                "p_adjusted": float(p_row[j]),
                "rank_in_row": rank,
                "reason": reason,
            }
        )
    return out


# --------------------------------------------------------------------------- the whole analysis


@dataclass(frozen=True)
class Side:
    """One modality's deltas as Phase 1 needs them (a view of a DeltaStore, no I/O)."""

    delta: np.ndarray  # (N, D)
    effect_code: np.ndarray  # (N,)
    intensity_code: np.ndarray  # (N,)
    file_index: np.ndarray  # (N,)
    n_files: int
    effects: list[str]
    intensities: list[str]


SHARED_WORDS = ("warn", "error", "drop")


@dataclass(frozen=True)
class Options:
    text_bridge: str = "both"
    center_anchors: bool = True
    clip_negative: bool = True
    n_permutations: int = 1000  # label permutations (secondary p_sim*_label; legacy sim3 null)
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    correction: str = "holm"
    alpha: float = 0.05  # a pair needs p_adjusted <= alpha
    seed: int = 0
    n_foil_draws: int = 10_000  # foil sets per effect (sim1, sim2) and per cell (sim3)
    shared_words: str = "warn"  # warn | error: report without them too; drop: build without


def anchor_of(synonym_vectors: Sequence[np.ndarray], centred: bool) -> np.ndarray:
    """Anchors = mean of each effect's synonym vectors (NaN where an effect keeps none),
    centred over the defined effects if asked."""
    dim = max(v.shape[1] for v in synonym_vectors)
    raw = np.stack(
        [v.mean(axis=0) if v.shape[0] else np.full(dim, np.nan) for v in synonym_vectors]
    )
    return center_finite(raw) if centred else raw


def _kept(vectors: Sequence[np.ndarray], mask: Sequence[Sequence[bool]] | None) -> list:
    """Each effect's synonym vectors without the masked-out (shared-word) synonyms."""
    if mask is None:
        return list(vectors)
    return [v[np.asarray(m, dtype=bool)] for v, m in zip(vectors, mask, strict=True)]


def _sim3_observed(bridges, centred: bool, keep=None) -> dict[str, np.ndarray]:
    """Observed sim3 per bridge; with ``keep`` (image mask, audio mask) the synonyms that
    share a word with the other modality are left out first."""
    masks = keep or (None, None)
    return {
        name: batched_cosine_matrix(
            anchor_of(_kept(img, masks[0]), centred), anchor_of(_kept(aud, masks[1]), centred)
        )
        for name, (img, aud) in bridges.items()
    }


def bridge_value(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """sim3 of the configured bridge; for ``both`` the smaller of the two cosines.

    Why the minimum: the score is an AND of agreements, and ``both`` claims that BOTH text
    towers put the two lists close; the minimum is positive only when both cosines are. It is
    a plain cosine (no seed, no null inside), unlike the mean of z-scores it replaces."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmin(per_bridge["clap"], per_bridge["clip"])


def bridge_pvalue(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """p of sim3 for the configured bridge; for ``both`` the larger of the two bridges' p
    (intersection-union: both must reject). Each is a rank among the SAME foil draws, so the
    combination moves with the seed only as much as one Monte-Carlo p does."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmax(per_bridge["clap"], per_bridge["clip"])


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators per resampling, so the foil tests of seed s are the same whether
    run inside ``discover`` or alone in ``seed_stability``."""
    kids = np.random.SeedSequence(seed).spawn(3)
    return dict(zip(("bootstrap", "label", "foil"), map(np.random.default_rng, kids), strict=True))


@dataclass(frozen=True)
class _Observed:
    """Everything in Phase 1 that does not depend on the seed."""

    sets: dict  # image / audio: synonym vectors (sim1 / sim2); bridges: name -> (img, aud)
    no_shared: dict | None  # bridges without shared-word synonyms (warn mode with shared words)
    protos: dict  # image / audio: Prototypes
    fsums: dict  # image / audio: FileSums
    anchors: dict  # image / audio: anchors of sim1 / sim2 (centred if set)
    sims: dict  # sim1, sim2, sim1_k, sim2_k, sim3_<bridge>[, sim3_no_shared_<bridge>]


def _observe(image, audio, image_synonyms, audio_synonyms, bridges, opts, keep) -> _Observed:
    """Prototypes, anchors and observed cosines. Under ``shared_words: drop`` every synonym
    holding a shared word is left out of every anchor (sim1, sim2 and sim3 alike)."""
    if opts.shared_words not in SHARED_WORDS:
        raise ValueError(f"shared_words must be one of {SHARED_WORDS}, got {opts.shared_words!r}")
    drop = keep if opts.shared_words == "drop" and keep is not None else (None, None)
    sets = {"image": _kept(image_synonyms, drop[0]), "audio": _kept(audio_synonyms, drop[1])}
    sets["bridges"] = {b: (_kept(i, drop[0]), _kept(a, drop[1])) for b, (i, a) in bridges.items()}
    no_shared = None
    if keep is not None and opts.shared_words != "drop":
        no_shared = {b: (_kept(i, keep[0]), _kept(a, keep[1])) for b, (i, a) in bridges.items()}
    protos, fsums, anchors, sims = {}, {}, {}, {}
    for m, side, k in (("image", image, "1"), ("audio", audio, "2")):
        protos[m] = prototypes(
            side.delta, side.effect_code, side.intensity_code, side.effects, side.intensities
        )
        n_eff = len(side.effects)
        fsums[m] = file_sums(side.delta, side.file_index, side.effect_code, side.n_files, n_eff)
        anchors[m] = anchor_of(sets[m], opts.center_anchors)
        sims[f"sim{k}"] = batched_rowwise_cosine(protos[m].pooled, anchors[m])
        sims[f"sim{k}_k"] = batched_rowwise_cosine(protos[m].per_intensity, anchors[m][None])
    sims |= {
        f"sim3_{b}": v for b, v in _sim3_observed(sets["bridges"], opts.center_anchors).items()
    }
    if no_shared is not None:
        obs = _sim3_observed(no_shared, opts.center_anchors)
        sims |= {f"sim3_no_shared_{b}": v for b, v in obs.items()}
    return _Observed(sets, no_shared, protos, fsums, anchors, sims)


def _sizes(sets: Sequence[np.ndarray]) -> list[int]:
    return [int(v.shape[0]) for v in sets]


def _raw(sets: Sequence[np.ndarray]) -> np.ndarray:
    return anchor_of(sets, False)


def _sim3_foil_p(bridge_sets, foils: Foils, obs_sims, tag, opts, rng) -> dict:
    """Per-bridge foil-pair p of sim3 (one set of draws for every bridge) and the z of the
    observed cosine against that null (a reported scale, not a test)."""
    img0, aud0 = next(iter(bridge_sets.values()))
    cluster = next(iter(foils.bridges.values()))[0].cluster
    draws = foil_pair_draws(_sizes(img0), _sizes(aud0), cluster, opts.n_foil_draws, rng)
    out = {}
    for b, (img, aud) in bridge_sets.items():
        if b not in foils.bridges:
            raise ValueError(f"no foil banks for the {b} bridge")
        null = foil_sim3_null(
            _raw(img), _raw(aud), foils.bridges[b], draws, opts.n_foil_draws, opts.center_anchors
        )
        obs = obs_sims[f"sim3_{tag}{b}"]
        out[f"p_sim3_{tag}{b}"] = perm_pvalue(obs, null)
        out[f"z_{tag}{b}"] = standardise(obs, null)[0]
    return out


def _tests(ob: _Observed, opts: Options, foils: Foils | None, rngs, label: bool = True) -> dict:
    """Every seed-dependent p-value: the label permutation (secondary) and the foil nulls.

    Without ``foils`` (a caller not yet giving them) sim1/sim2 fall back to the label
    permutation and sim3 to the synonym regrouping, with a warning: those nulls are weaker
    (docs/methods.md §5) and the output says which null was used. ``label=False`` skips the
    label permutation where only the decision is wanted and the foil nulls decide (it is the
    costliest part and its own random stream, so the other p-values do not change)."""
    out = {}
    for m, k in (("image", "1"), ("audio", "2")) if label or foils is None else ():
        null = file_permutation_sim(ob.fsums[m], ob.anchors[m], opts.n_permutations, rngs["label"])
        out[f"p_sim{k}_label"] = perm_pvalue(ob.sims[f"sim{k}"], null)
    if foils is None:
        if opts.shared_words == "drop":
            raise ValueError("shared_words: drop needs the foil null (pass foils)")
        warnings.warn("Phase 1 without foils: legacy nulls (label, regroup)", stacklevel=3)
        out["p_sim1"], out["p_sim2"] = out["p_sim1_label"], out["p_sim2_label"]
        img = {b: v[0] for b, v in ob.sets["bridges"].items()}
        aud = {b: v[1] for b, v in ob.sets["bridges"].items()}
        null = synonym_shuffle_sim3(
            img, aud, opts.n_permutations, rngs["foil"], opts.center_anchors
        )
        out |= {f"p_sim3_{b}": perm_pvalue(ob.sims[f"sim3_{b}"], v) for b, v in null.items()}
        out |= {f"z_{b}": standardise(ob.sims[f"sim3_{b}"], v)[0] for b, v in null.items()}
        out["null_model"] = "legacy: label permutation (sim1, sim2), synonym regrouping (sim3)"
    else:
        for m, k, bank in (("image", "1", foils.image), ("audio", "2", foils.audio)):
            null = foil_anchor_null(
                ob.protos[m].pooled,
                _raw(ob.sets[m]),
                _sizes(ob.sets[m]),
                bank,
                opts.n_foil_draws,
                rngs["foil"],
                opts.center_anchors,
            )
            out[f"p_sim{k}"] = perm_pvalue(ob.sims[f"sim{k}"], null)
        out |= _sim3_foil_p(ob.sets["bridges"], foils, ob.sims, "", opts, rngs["foil"])
        if ob.no_shared is not None:
            out |= _sim3_foil_p(ob.no_shared, foils, ob.sims, "no_shared_", opts, rngs["foil"])
        out["null_model"] = "foil: size-matched one-cluster foil sets (sim1, sim2, sim3)"
    bridges = list(ob.sets["bridges"])
    out["p_sim3"] = bridge_pvalue({b: out[f"p_sim3_{b}"] for b in bridges}, opts.text_bridge)
    if "p_sim3_no_shared_" + bridges[0] in out:
        per = {b: out[f"p_sim3_no_shared_{b}"] for b in bridges}
        out["p_sim3_no_shared"] = bridge_pvalue(per, opts.text_bridge)
    return out


def _decide(ob: _Observed, t: dict, opts: Options, effects) -> dict:
    """Cell p (intersection-union), adjusted p and the chosen pairs (main and no-shared)."""
    out = {}
    sim3 = bridge_value({b: ob.sims[f"sim3_{b}"] for b in ob.sets["bridges"]}, opts.text_bridge)
    score = combine(ob.sims["sim1"], ob.sims["sim2"], sim3, opts.clip_negative)
    for tag in ("", "_no_shared"):
        if f"p_sim3{tag}" not in t:
            continue
        p = intersection_union(t["p_sim1"][:, None], t["p_sim2"][None, :], t[f"p_sim3{tag}"])
        out[f"p{tag}"], out[f"p_adjusted{tag}"] = p, adjust(p, opts.correction)
    out["sim3"], out["score"] = sim3, score
    out["chosen_pairs"] = choose_significant(score, out["p_adjusted"], opts.alpha, *effects)
    return out


def _intervals(ob: _Observed, sim3: np.ndarray, opts: Options, rng) -> dict:
    """Basic bootstrap intervals (files resampled) of sim1, sim2 and the score."""
    boot = {
        k: bootstrap_sim(ob.fsums[m], ob.anchors[m], opts.n_bootstrap, rng)
        for m, k in (("image", "sim1"), ("audio", "sim2"))
    }
    boot["score"] = combine(boot["sim1"], boot["sim2"], sim3, opts.clip_negative)
    est = {"sim1": ob.sims["sim1"], "sim2": ob.sims["sim2"]}
    est["score"] = combine(est["sim1"], est["sim2"], sim3, opts.clip_negative)
    bounds = {"sim1": (-1.0, 1.0), "sim2": (-1.0, 1.0), "score": (-np.inf, np.inf)}
    if opts.clip_negative:
        bounds["score"] = (0.0, np.inf)
    out = {}
    for k in ("sim1", "sim2", "score"):
        out[f"{k}_lo"], out[f"{k}_hi"] = basic_interval(est[k], boot[k], opts.ci_level, bounds[k])
    return out


def _raw_and_no_shared(ob: _Observed, opts: Options) -> dict:
    """The same figures from raw (uncentred) anchors, and sim3 / score without shared words."""
    out = {}
    raw1 = batched_rowwise_cosine(ob.protos["image"].pooled, _raw(ob.sets["image"]))
    raw2 = batched_rowwise_cosine(ob.protos["audio"].pooled, _raw(ob.sets["audio"]))
    raw3 = _sim3_observed(ob.sets["bridges"], False)
    out |= {"sim1_raw": raw1, "sim2_raw": raw2} | {f"sim3_{b}_raw": v for b, v in raw3.items()}
    out["sim3_raw"] = bridge_value(raw3, opts.text_bridge)
    out["score_raw"] = combine(raw1, raw2, out["sim3_raw"], opts.clip_negative)
    if ob.no_shared is not None:
        per = {b: ob.sims[f"sim3_no_shared_{b}"] for b in ob.no_shared}
        out["sim3_no_shared"] = bridge_value(per, opts.text_bridge)
        out["score_no_shared"] = combine(
            ob.sims["sim1"], ob.sims["sim2"], out["sim3_no_shared"], opts.clip_negative
        )
    return out


def discover(
    image: Side,
    audio: Side,
    image_synonyms: Sequence[np.ndarray],
    audio_synonyms: Sequence[np.ndarray],
    bridges: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    opts: Options,
    keep: tuple[Sequence[Sequence[bool]], Sequence[Sequence[bool]]] | None = None,
    foils: Foils | None = None,
) -> dict:
    """The discovery matrix with every component, interval and p-value (docs/methods.md §5).

    ``image_synonyms`` are the image effects' synonym vectors in CLIP's text space (sim1),
    ``audio_synonyms`` the audio effects' in CLAP's (sim2); ``bridges[name]`` both sides'
    synonym vectors in that bridge's text space (sim3); ``keep`` the shared-word masks (what
    is done with them: ``opts.shared_words``); ``foils`` the foil banks of the nulls (without
    them: the legacy nulls, with a warning). The seed drives independent streams per resampling.
    """
    rngs = _streams(opts.seed)
    ob = _observe(image, audio, image_synonyms, audio_synonyms, bridges, opts, keep)
    t = _tests(ob, opts, foils, rngs)
    d = _decide(ob, t, opts, (image.effects, audio.effects))
    out: dict = {"sim1": ob.sims["sim1"], "sim2": ob.sims["sim2"], "sim3": d["sim3"]}
    out |= {k: v for k, v in ob.sims.items() if k.startswith("sim3_")}
    out |= _raw_and_no_shared(ob, opts)
    out["sim1_per_intensity"], out["sim2_per_intensity"] = ob.sims["sim1_k"], ob.sims["sim2_k"]
    out["score"] = d["score"]
    out["score_per_intensity"] = combine(
        ob.sims["sim1_k"], ob.sims["sim2_k"], d["sim3"], opts.clip_negative
    )
    if opts.text_bridge == "both":
        out["bridge_sign_agreement"] = np.sign(ob.sims["sim3_clap"]) == np.sign(
            ob.sims["sim3_clip"]
        )
    out |= _intervals(ob, d["sim3"], opts, rngs["bootstrap"])
    out |= {k: v for k, v in t.items() if k.startswith(("p_", "z_")) or k == "null_model"}
    out |= {k: v for k, v in d.items() if k.startswith("p")}
    out["n_synonyms_image"] = np.array(_sizes(ob.sets["image"]))
    out["n_synonyms_audio"] = np.array(_sizes(ob.sets["audio"]))
    out["image_prototypes"] = ob.protos["image"].pooled
    out["audio_prototypes"] = ob.protos["audio"].pooled
    out["image_prototypes_per_intensity"] = ob.protos["image"].per_intensity
    out["audio_prototypes_per_intensity"] = ob.protos["audio"].per_intensity
    out["counts"] = {"image": ob.protos["image"].counts, "audio": ob.protos["audio"].counts}
    out["image_anchor"], out["audio_anchor"] = ob.anchors["image"], ob.anchors["audio"]
    out["chosen_pairs"] = d["chosen_pairs"]
    return out


def seed_stability(
    image: Side,
    audio: Side,
    image_synonyms: Sequence[np.ndarray],
    audio_synonyms: Sequence[np.ndarray],
    bridges: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    opts: Options,
    keep: tuple[Sequence[Sequence[bool]], Sequence[Sequence[bool]]] | None = None,
    foils: Foils | None = None,
    n_seeds: int = 5,
) -> dict:
    """The pair choice rerun for seeds ``opts.seed … opts.seed + n_seeds − 1``: per pair chosen
    in any of them, in how many (for discovery_labels.json).

    Why: a pair chosen at one seed only sits on the Monte-Carlo edge of alpha; the score does
    not depend on the seed, only the p-values, so only the tests are rerun (seed s gives
    exactly what ``discover`` gives with ``seed=s``).
    """
    ob = _observe(image, audio, image_synonyms, audio_synonyms, bridges, opts, keep)
    seeds = [opts.seed + k for k in range(n_seeds)]
    tally: dict[tuple[str, str], list[int]] = {}
    for s in seeds:
        t = _tests(ob, opts, foils, _streams(s), label=False)
        for c in _decide(ob, t, opts, (image.effects, audio.effects))["chosen_pairs"]:
            tally.setdefault((c["image_effect"], c["audio_effect"]), []).append(s)
    pairs = [
        {"image_effect": a, "audio_effect": b, "n_seeds_chosen": len(v), "seeds_chosen": v}
        for (a, b), v in sorted(tally.items())
    ]
    return {"seeds": seeds, "n_seeds": n_seeds, "pairs": pairs}
