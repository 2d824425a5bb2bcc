"""Phase 1 end to end on embeddings: observed similarities, every seed-dependent test, the
decision, intervals (docs/methods.md §5)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from delta_v2a.phase1.anchors import (
    anchor_of,
    batched_cosine_matrix,
    batched_rowwise_cosine,
    combine,
    prototypes,
)
from delta_v2a.phase1.foils import Foils
from delta_v2a.phase1.labels import (
    adjust,
    bridge_pvalue,
    bridge_value,
    choose_significant,
    intersection_union,
)
from delta_v2a.phase1.nulls import Band, foil_anchor_null, foil_sim3_null, pvalues
from delta_v2a.phase1.resampling import (
    basic_interval,
    bootstrap_sim,
    file_permutation_sim,
    file_sums,
    perm_pvalue,
    standardise,
    synonym_shuffle_sim3,
)

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
    """The statistics' choices: one type, read from the config's ``phase1`` section
    (settings.Phase1Settings composes it); the defaults live in the config schema only."""

    text_bridge: str  # audio | image | both: which text tower(s) compare the two anchors
    center_anchors: bool
    clip_negative: bool
    n_permutations: int  # label permutations (secondary p_sim*_label; legacy sim3 null)
    n_bootstrap: int
    ci_level: float
    correction: str
    alpha: float  # a pair needs p_adjusted <= alpha
    seed: int
    n_foil_draws: int  # foil sets per effect (sim1, sim2, each side of sim3)
    shared_words: str  # warn | error: report without them too; drop: build without
    coherence_band: float  # foil sets within this many SDs of the list's coherence ...
    min_concepts: int  # ... widened until this many concepts are in the band
    max_concepts: int  # 0: every eligible foil concept is embedded; N: the first N (fixed order)

    @classmethod
    def from_config(cls, phase1: Mapping[str, Any]) -> Options:
        """From a validated config's ``phase1`` section (schema defaults filled in)."""
        return cls(**{f.name: phase1[f.name] for f in dataclasses.fields(cls)})

    @property
    def band(self) -> Band:
        return Band(self.coherence_band, self.min_concepts)


@dataclass(frozen=True)
class Inputs:
    """What ``discover`` and ``seed_stability`` read: each modality's deltas, each effect's
    synonym vectors in its own tower (sim1: image tower, sim2: audio tower) and, per bridge,
    both sides' synonym vectors in that tower (sim3); ``keep`` the shared-word masks (what is
    done with them: ``Options.shared_words``); ``foils`` the foil banks (without them: the
    legacy nulls, with a warning)."""

    image: Side
    audio: Side
    image_synonyms: Sequence[np.ndarray]
    audio_synonyms: Sequence[np.ndarray]
    bridges: Mapping[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray]]]
    keep: tuple[Sequence[Sequence[bool]], Sequence[Sequence[bool]]] | None = None
    foils: Foils | None = None


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


def _observe(inp: Inputs, opts: Options) -> _Observed:
    """Prototypes, anchors and observed cosines. Under ``shared_words: drop`` every synonym
    holding a shared word is left out of every anchor (sim1, sim2 and sim3 alike)."""
    if opts.shared_words not in SHARED_WORDS:
        raise ValueError(f"shared_words must be one of {SHARED_WORDS}, got {opts.shared_words!r}")
    image, audio, bridges, keep = inp.image, inp.audio, inp.bridges, inp.keep
    image_synonyms, audio_synonyms = inp.image_synonyms, inp.audio_synonyms
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
    """Per-bridge concept-level p of sim3 (one set of draws for every bridge), the number of
    concepts behind it, and the z of the observed cosine against that null (a reported scale,
    not a test)."""
    nulls = foil_sim3_null(
        bridge_sets, foils.bridges, opts.n_foil_draws, rng, opts.band, opts.center_anchors
    )
    out = {}
    for b, cells in nulls.items():
        obs = obs_sims[f"sim3_{tag}{b}"]
        out[f"p_sim3_{tag}{b}"], out[f"k_sim3_{tag}{b}"] = pvalues(obs, cells)
        z = np.full(obs.shape, np.nan)
        for (i, j), null in cells.items():
            z[i, j] = standardise(obs[i, j], null.values[:, None])[0][0]
        out[f"z_{tag}{b}"] = z
    return out


def _legacy_tests(ob: _Observed, opts: Options, rngs) -> dict:
    """Without foils: sim1/sim2 from the label permutation, sim3 from the synonym regrouping
    (weaker nulls, docs/methods.md §5), with a warning; the output says which null was used."""
    if opts.shared_words == "drop":
        raise ValueError("shared_words: drop needs the foil null (pass foils)")
    warnings.warn("Phase 1 without foils: legacy nulls (label, regroup)", stacklevel=4)
    out = {}
    img = {b: v[0] for b, v in ob.sets["bridges"].items()}
    aud = {b: v[1] for b, v in ob.sets["bridges"].items()}
    null = synonym_shuffle_sim3(img, aud, opts.n_permutations, rngs["foil"], opts.center_anchors)
    out |= {f"p_sim3_{b}": perm_pvalue(ob.sims[f"sim3_{b}"], v) for b, v in null.items()}
    out |= {f"z_{b}": standardise(ob.sims[f"sim3_{b}"], v)[0] for b, v in null.items()}
    out["null_model"] = "legacy: label permutation (sim1, sim2), synonym regrouping (sim3)"
    return out


def _tests(ob: _Observed, opts: Options, foils: Foils | None, rngs, label: bool = True) -> dict:
    """Every seed-dependent p-value: the label permutation (secondary) and the foil nulls.

    ``label=False`` skips the label permutation where only the decision is wanted and the foil
    nulls decide (it is the costliest part and its own random stream, so the other p-values do
    not change)."""
    out = {}
    for m, k in (("image", "1"), ("audio", "2")) if label or foils is None else ():
        null = file_permutation_sim(ob.fsums[m], ob.anchors[m], opts.n_permutations, rngs["label"])
        out[f"p_sim{k}_label"] = perm_pvalue(ob.sims[f"sim{k}"], null)
    if foils is None:
        out |= _legacy_tests(ob, opts, rngs)
        out["p_sim1"], out["p_sim2"] = out["p_sim1_label"], out["p_sim2_label"]
    else:
        for m, k, bank in (("image", "1", foils.image), ("audio", "2", foils.audio)):
            nulls = foil_anchor_null(
                ob.protos[m].pooled,
                ob.sets[m],
                bank,
                opts.n_foil_draws,
                rngs["foil"],
                opts.band,
                opts.center_anchors,
            )
            out[f"p_sim{k}"], out[f"k_sim{k}"] = pvalues(ob.sims[f"sim{k}"], nulls)
        out |= _sim3_foil_p(ob.sets["bridges"], foils, ob.sims, "", opts, rngs["foil"])
        if ob.no_shared is not None:
            out |= _sim3_foil_p(ob.no_shared, foils, ob.sims, "no_shared_", opts, rngs["foil"])
        out["null_model"] = (
            "foil concepts: size- and coherence-matched sets of one-sided WordNet adjective "
            "clusters; p counts concepts, smallest 1/(K + 1) (sim1, sim2, sim3)"
        )
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


def discover(inp: Inputs, opts: Options) -> dict:
    """The discovery matrix with every component, interval and p-value (docs/methods.md §5).
    The seed drives independent streams per resampling."""
    rngs = _streams(opts.seed)
    ob = _observe(inp, opts)
    t = _tests(ob, opts, inp.foils, rngs)
    d = _decide(ob, t, opts, (inp.image.effects, inp.audio.effects))
    out: dict = {"sim1": ob.sims["sim1"], "sim2": ob.sims["sim2"], "sim3": d["sim3"]}
    out |= {k: v for k, v in ob.sims.items() if k.startswith("sim3_")}
    out |= _raw_and_no_shared(ob, opts)
    out["sim1_per_intensity"], out["sim2_per_intensity"] = ob.sims["sim1_k"], ob.sims["sim2_k"]
    out["score"] = d["score"]
    out["score_per_intensity"] = combine(
        ob.sims["sim1_k"], ob.sims["sim2_k"], d["sim3"], opts.clip_negative
    )
    if opts.text_bridge == "both":
        out["bridge_sign_agreement"] = np.sign(ob.sims["sim3_audio"]) == np.sign(
            ob.sims["sim3_image"]
        )
    out |= _intervals(ob, d["sim3"], opts, rngs["bootstrap"])
    out |= {k: v for k, v in t.items() if k.startswith(("p_", "z_", "k_")) or k == "null_model"}
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


def seed_stability(inp: Inputs, opts: Options, n_seeds: int = 5) -> dict:
    """The pair choice rerun for seeds ``opts.seed … opts.seed + n_seeds − 1``: per pair chosen
    in any of them, in how many (for discovery_labels.json).

    Why: a pair chosen at one seed only sits on the Monte-Carlo edge of alpha; the score does
    not depend on the seed, only the p-values, so only the tests are rerun (seed s gives
    exactly what ``discover`` gives with ``seed=s``).
    """
    ob = _observe(inp, opts)
    seeds = [opts.seed + k for k in range(n_seeds)]
    tally: dict[tuple[str, str], list[int]] = {}
    for s in seeds:
        t = _tests(ob, opts, inp.foils, _streams(s), label=False)
        for c in _decide(ob, t, opts, (inp.image.effects, inp.audio.effects))["chosen_pairs"]:
            tally.setdefault((c["image_effect"], c["audio_effect"]), []).append(s)
    pairs = [
        {"image_effect": a, "audio_effect": b, "n_seeds_chosen": len(v), "seeds_chosen": v}
        for (a, b), v in sorted(tally.items())
    ]
    return {"seeds": seeds, "n_seeds": n_seeds, "pairs": pairs}
