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


def choose_significant(
    score: np.ndarray,
    p_adjusted: np.ndarray,
    alpha: float,
    image_effects: Sequence[str],
    audio_effects: Sequence[str],
) -> list[dict]:
    """For each image effect its best-scoring audio effect, kept only when that cell's
    adjusted p-value is below alpha and its score is positive (docs/methods.md §5)."""
    out = []
    for i, name in enumerate(image_effects):
        row = np.asarray(score[i], dtype=np.float64)
        if not np.isfinite(row).any():
            continue
        j = int(np.nanargmax(row))
        p = float(p_adjusted[i, j])
        if row[j] > 0 and np.isfinite(p) and p < alpha:
            out.append(
                {
                    "image_effect": name,
                    "audio_effect": audio_effects[j],
                    "score": float(row[j]),
                    "p_adjusted": p,
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


@dataclass(frozen=True)
class Options:
    text_bridge: str = "both"
    center_anchors: bool = True
    clip_negative: bool = True
    n_permutations: int = 1000
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    correction: str = "holm"
    alpha: float = 0.05
    seed: int = 0


def anchor_of(synonym_vectors: Sequence[np.ndarray], centred: bool) -> np.ndarray:
    """Anchors = mean of each effect's synonym vectors, centred over the effects if asked."""
    raw = np.stack([v.mean(axis=0) for v in synonym_vectors])
    return center(raw) if centred else raw


def _sim3_observed(bridges, centred: bool, keep=None) -> dict[str, np.ndarray]:
    """Observed sim3 per bridge; with ``keep`` (image mask, audio mask) the synonyms that
    share a word with the other modality are left out first."""
    out = {}
    for name, (img, aud) in bridges.items():
        if keep is None:
            a, b = anchor_of(img, centred), anchor_of(aud, centred)
        else:
            a, b = masked_anchors(img, keep[0]), masked_anchors(aud, keep[1])
            a, b = (center_finite(a), center_finite(b)) if centred else (a, b)
        out[name] = batched_cosine_matrix(a, b)
    return out


def _combine_bridges(obs: dict, null: dict, text_bridge: str) -> tuple[np.ndarray, np.ndarray]:
    """sim3 and its null for the chosen bridge; for ``both`` each bridge is first standardised
    against its own null (z), then the two z are averaged (draw by draw for the null)."""
    if text_bridge != "both":
        return obs[text_bridge], null[text_bridge]
    z = {b: standardise(obs[b], null[b]) for b in ("clap", "clip")}
    return (z["clap"][0] + z["clip"][0]) / 2, (z["clap"][1] + z["clip"][1]) / 2


def _side_stats(side: Side, anchors: np.ndarray, opts: Options, rng) -> dict[str, np.ndarray]:
    """sim per effect (pooled, per intensity), its bootstrap draws and its permutation p."""
    protos = prototypes(
        side.delta, side.effect_code, side.intensity_code, side.effects, side.intensities
    )
    sim = batched_rowwise_cosine(protos.pooled, anchors)
    sim_k = batched_rowwise_cosine(protos.per_intensity, anchors[None])
    fs = file_sums(side.delta, side.file_index, side.effect_code, side.n_files, len(side.effects))
    boot = bootstrap_sim(fs, anchors, opts.n_bootstrap, rng)
    strata = np.asarray(side.file_index) * len(side.intensities) + np.asarray(side.intensity_code)
    null = label_permutation_sim(
        side.delta, side.effect_code, strata, anchors, opts.n_permutations, rng
    )
    return {"sim": sim, "sim_k": sim_k, "boot": boot, "p": perm_pvalue(sim, null), "protos": protos}


def _bridge_stats(bridges, keep, opts: Options, rng) -> dict[str, np.ndarray]:
    """sim3 (centred as configured, and raw), its synonym-shuffle null and p-value, and sim3
    without the shared-word synonyms. Text only: no delta and no model call is involved."""
    out: dict[str, np.ndarray] = {}
    state = rng.bit_generator.state
    for centred, tag in ((opts.center_anchors, ""), (False, "_raw")):
        rng.bit_generator.state = state  # raw and centred use the same word relabellings
        obs = _sim3_observed(bridges, centred)
        img = {b: v[0] for b, v in bridges.items()}
        aud = {b: v[1] for b, v in bridges.items()}
        null = synonym_shuffle_sim3(img, aud, opts.n_permutations, rng, centred)
        sim3, sim3_null = _combine_bridges(obs, null, opts.text_bridge)
        out |= {f"sim3_{b}{tag}": v for b, v in obs.items()}
        out[f"sim3{tag}"] = sim3
        if not tag:
            out["p_sim3"] = perm_pvalue(sim3, sim3_null)
            if opts.text_bridge == "both":
                out |= {f"z_{b}": standardise(obs[b], null[b])[0] for b in obs}
                out["bridge_sign_agreement"] = np.sign(obs["clap"]) == np.sign(obs["clip"])
            if keep is not None:
                no = _sim3_observed(bridges, centred, keep)
                if opts.text_bridge == "both":  # standardise with the full-vocabulary null
                    z = [standardise(no[b], null[b])[0] for b in ("clap", "clip")]
                    out["sim3_no_shared"] = (z[0] + z[1]) / 2
                else:
                    out["sim3_no_shared"] = no[opts.text_bridge]
                out |= {f"sim3_no_shared_{b}": v for b, v in no.items()}
    return out


def discover(
    image: Side,
    audio: Side,
    image_synonyms: Sequence[np.ndarray],
    audio_synonyms: Sequence[np.ndarray],
    bridges: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    opts: Options,
    keep: tuple[Sequence[Sequence[bool]], Sequence[Sequence[bool]]] | None = None,
) -> dict:
    """The discovery matrix with every component, interval and p-value (docs/methods.md §5).

    ``image_synonyms`` are the image effects' synonym vectors in CLIP's text space (sim1),
    ``audio_synonyms`` the audio effects' in CLAP's (sim2); ``bridges[name]`` both sides'
    synonym vectors in that bridge's text space (sim3); ``keep`` the shared-word masks.
    One seeded generator drives every resampling, so a run is reproducible.
    """
    rng = np.random.default_rng(opts.seed)
    anchors = {
        "image": anchor_of(image_synonyms, opts.center_anchors),
        "audio": anchor_of(audio_synonyms, opts.center_anchors),
    }
    s1 = _side_stats(image, anchors["image"], opts, rng)
    s2 = _side_stats(audio, anchors["audio"], opts, rng)
    b = _bridge_stats(bridges, keep, opts, rng)
    out: dict = {}
    out["sim1"], out["sim2"], out["sim3"] = s1["sim"], s2["sim"], b["sim3"]
    out |= {k: v for k, v in b.items() if k != "sim3"}
    out["sim1_per_intensity"], out["sim2_per_intensity"] = s1["sim_k"], s2["sim_k"]
    out["score"] = combine(s1["sim"], s2["sim"], b["sim3"], opts.clip_negative)
    out["score_per_intensity"] = combine(s1["sim_k"], s2["sim_k"], b["sim3"], opts.clip_negative)
    raw1 = batched_rowwise_cosine(s1["protos"].pooled, anchor_of(image_synonyms, False))
    raw2 = batched_rowwise_cosine(s2["protos"].pooled, anchor_of(audio_synonyms, False))
    out["sim1_raw"], out["sim2_raw"] = raw1, raw2
    out["score_raw"] = combine(raw1, raw2, b["sim3_raw"], opts.clip_negative)
    if "sim3_no_shared" in b:
        out["score_no_shared"] = combine(
            s1["sim"], s2["sim"], b["sim3_no_shared"], opts.clip_negative
        )
    boot_score = combine(s1["boot"], s2["boot"], b["sim3"], opts.clip_negative)
    score_bounds = (0.0, np.inf) if opts.clip_negative else (-np.inf, np.inf)
    for name, draws, bounds in (
        ("sim1", s1["boot"], (-1.0, 1.0)),
        ("sim2", s2["boot"], (-1.0, 1.0)),
        ("score", boot_score, score_bounds),
    ):
        out[f"{name}_lo"], out[f"{name}_hi"] = basic_interval(
            out[name], draws, opts.ci_level, bounds
        )
    out["p_sim1"], out["p_sim2"] = s1["p"], s2["p"]
    out["p"] = intersection_union(s1["p"][:, None], s2["p"][None, :], b["p_sim3"])
    out["p_adjusted"] = adjust(out["p"], opts.correction)
    out["image_prototypes"], out["audio_prototypes"] = s1["protos"].pooled, s2["protos"].pooled
    out["image_prototypes_per_intensity"] = s1["protos"].per_intensity
    out["audio_prototypes_per_intensity"] = s2["protos"].per_intensity
    out["counts"] = {"image": s1["protos"].counts, "audio": s2["protos"].counts}
    out["image_anchor"], out["audio_anchor"] = anchors["image"], anchors["audio"]
    out["chosen_pairs"] = choose_significant(
        out["score"], out["p_adjusted"], opts.alpha, image.effects, audio.effects
    )
    return out
