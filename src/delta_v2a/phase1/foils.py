"""Phase 1's foil vocabulary: one-sided concepts (WordNet adjective clusters), the banks of
their embedded words, size-matched draws of foil sets and their coherence (docs/methods.md §5)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources

import numpy as np

from delta_v2a.phase1.anchors import Anchors, AnchorSpec, EmbedTexts, content_words, text_anchors

# --------------------------------------------------------------------------- foil vocabulary

#: Package data: WordNet adjective clusters that name no configured effect
#: (scripts/build_foils.py writes it; lines starting with # are its provenance and licence).
FOILS_FILE = "phase1_foils.tsv"


def parse_foils(text: str, exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """cluster -> words from a ``cluster<TAB>word`` table, without every foil that shares a
    content word with a phrase of ``exclude`` (the configured synonyms).

    Why exclude: a foil that shares a word with a real synonym is not unrelated to that effect,
    and a null made of the claim's own words would hide a real pair (or, across modalities,
    plant one).
    """
    banned = set().union(*(content_words(s) for s in exclude))
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0].split("\t") != ["cluster", "word"]:
        raise ValueError("a foil table needs the header 'cluster<TAB>word'")
    out: dict[str, list[str]] = {}
    for ln in lines[1:]:
        cluster, word = (x.strip() for x in ln.split("\t"))
        if not content_words(word) & banned and word not in out.get(cluster, []):
            out.setdefault(cluster, []).append(word)
    return out


def load_foils(
    exclude: Iterable[str] = (), min_words: int = 1, max_concepts: int = 0
) -> dict[str, list[str]]:
    """The package's foil vocabulary (the one file Phase 1 reads), minus ``exclude``'s words,
    keeping the clusters that still hold ``min_words`` words (a smaller one is never drawn);
    with ``max_concepts`` > 0 only that many, the first in a fixed order that does not depend
    on the names' spelling (a hash of each name), so a cap is a random subset, not "a-" words.
    The cap exists for CPU-bound pipeline runs: every concept's words are embedded through every
    template and context, and K (the p-value's resolution) can be no larger than the cap."""
    text = resources.files("delta_v2a").joinpath(FOILS_FILE).read_text(encoding="utf-8")
    out = {c: w for c, w in parse_foils(text, exclude).items() if len(w) >= min_words}
    if max_concepts > 0:
        order = sorted(out, key=lambda c: hashlib.sha256(c.encode()).hexdigest())
        out = {c: out[c] for c in sorted(order[:max_concepts], key=list(out).index)}
    return out


@dataclass(frozen=True)
class FoilBank:
    """Foil words put through one modality's templates, in one text space.

    ``vectors[w]`` is made exactly like a synonym vector (mean over contexts of effect prompt −
    neutral prompt), so the mean of a foil set is made exactly like an anchor.
    """

    words: list[str]
    cluster: np.ndarray  # (W,) int: cluster code of each word
    vectors: np.ndarray  # (W, D)

    @cached_property
    def blocks(self) -> Blocks:
        """Within-cluster Gram and cosine blocks (computed once per bank)."""
        return _blocks(self.cluster, self.vectors)


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


# --------------------------------------------------------------------------- draws and coherence


@dataclass(frozen=True)
class Blocks:
    """A bank's clusters as padded blocks: draws index positions inside one cluster, so a set's
    squared mean norm and its coherence are O(S²) lookups, never a D-wide vector per draw.

    ``cos`` holds cosines between words after the bank's mean word vector is subtracted: the
    part every foil and synonym shares through the template is not what makes a set coherent.
    """

    members: np.ndarray  # (C, L) word index per cluster position, −1 padding
    gram: np.ndarray  # (C, L, L) raw dot products within a cluster
    cos: np.ndarray  # (C, L, L) cosines of bank-centred words within a cluster
    mean: np.ndarray  # (D,) the bank's mean word vector


def _members(cluster: np.ndarray) -> np.ndarray:
    """(C, largest cluster) word indices per cluster code, padded with −1."""
    codes = np.asarray(cluster, dtype=np.int64)
    sizes = np.bincount(codes)
    out = np.full((sizes.size, sizes.max()), -1, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    out[codes[order], np.arange(codes.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = order
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 1e-12)


def _blocks(cluster: np.ndarray, vectors: np.ndarray) -> Blocks:
    members = _members(cluster)
    v = np.asarray(vectors, dtype=np.float64)
    pad = np.vstack([v, np.zeros((1, v.shape[1]))])  # index −1 -> a zero row
    x = pad[members]  # (C, L, D)
    mean = v.mean(axis=0)
    u = _unit(np.where((members >= 0)[..., None], x - mean, 0.0))
    return Blocks(members, np.einsum("cld,cmd->clm", x, x), np.einsum("cld,cmd->clm", u, u), mean)


@dataclass(frozen=True)
class Draws:
    """Foil sets: ``idx`` (n, S) word indices, ``pos`` (n, S) their positions in the cluster,
    ``concept`` (n,) the cluster of each set (the exchangeable unit of the p-value)."""

    idx: np.ndarray
    pos: np.ndarray
    concept: np.ndarray

    def take(self, rows: np.ndarray) -> Draws:
        return Draws(self.idx[rows], self.pos[rows], self.concept[rows])


def concept_draws(bank: FoilBank, size: int, n_draws: int, rng: np.random.Generator) -> Draws:
    """About ``n_draws`` foil sets of ``size`` distinct words, each from ONE cluster, the same
    number from every cluster with at least ``size`` words (so every concept is weighed alike).

    One cluster per set, so a foil set is a concept like a synonym list; every eligible cluster
    gets ``ceil(n_draws / K)`` sets, so each concept's null summary rests on several sets."""
    members = bank.blocks.members
    counts = (members >= 0).sum(axis=1)
    ok = np.flatnonzero(counts >= size)
    if size < 1 or ok.size < 2:
        raise ValueError(f"the foil vocabulary has too few clusters of {size} or more words")
    concept = np.repeat(ok, -(-n_draws // ok.size))
    keys = rng.random((concept.size, members.shape[1]))
    keys[members[concept] < 0] = 2.0  # padding sorts last
    pos = np.argsort(keys, axis=1)[:, :size]
    return Draws(np.take_along_axis(members[concept], pos, axis=1), pos, concept)


def set_coherence(bank: FoilBank, d: Draws) -> np.ndarray:
    """(n,) mean pairwise cosine of each set's bank-centred words (NaN for one word)."""
    s = d.pos.shape[1]
    if s < 2:
        return np.full(d.concept.size, np.nan)
    block = bank.blocks.cos[d.concept[:, None, None], d.pos[:, :, None], d.pos[:, None, :]]
    return (block.sum(axis=(1, 2)) - np.trace(block, axis1=1, axis2=2)) / (s * (s - 1))


def list_coherence(bank: FoilBank, vectors: np.ndarray) -> float:
    """Coherence of a synonym list, made exactly like a foil set's (same bank mean removed)."""
    s = vectors.shape[0]
    if s < 2:
        return float("nan")
    u = _unit(np.asarray(vectors, dtype=np.float64) - bank.blocks.mean)
    g = u @ u.T
    return float((g.sum() - np.trace(g)) / (s * (s - 1)))


def set_sq_norm(bank: FoilBank, d: Draws) -> np.ndarray:
    """(n,) squared norm of each set's mean vector, from the within-cluster Gram blocks."""
    block = bank.blocks.gram[d.concept[:, None, None], d.pos[:, :, None], d.pos[:, None, :]]
    return block.mean(axis=(1, 2))


def coherence_band(
    coherence: np.ndarray, concept: np.ndarray, observed: float, width_sd: float, min_concepts: int
) -> np.ndarray:
    """Mask of the foil sets whose coherence lies within ``width_sd`` SDs (of the foil sets'
    coherence) of the synonym list's, widened until ``min_concepts`` concepts have a set in it.

    Why: a set of loosely related words has a noisier mean, so its cosines spread less than a
    tight synonym list's, and a null made of them is too narrow (tight lists gave false pairs).
    The floor on concepts keeps the smallest p, 1/(K + 1), where Holm over the matrix can
    reach it; where the vocabulary has no set as tight as the list, the band is the
    ``min_concepts`` nearest concepts, and the report shows how far that was."""
    c = np.asarray(coherence, dtype=np.float64)
    if not np.isfinite(observed) or not np.isfinite(c).all() or c.size < 2:
        return np.ones(c.size, dtype=bool)
    dist = np.abs(c - observed)
    width = width_sd * float(c.std())
    codes, inv = np.unique(concept, return_inverse=True)
    nearest = np.full(codes.size, np.inf)
    np.minimum.at(nearest, inv, dist)
    k = min(int(min_concepts), codes.size)
    if k > 0 and np.sum(nearest <= width) < k:
        width = float(np.sort(nearest)[k - 1])
    return dist <= width
