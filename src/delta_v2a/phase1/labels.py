"""Phase 1's decision: corrections across the matrix, the intersection-union cell p, the
bridge combination, the one rule for a significant pair, and the record of it all
(``discovery_labels.json``: :func:`discovery_labels`) (docs/methods.md §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.health import HealthReport
from delta_v2a.phase1.anchors import CLIP_REASON, SIM3_REASON
from delta_v2a.phase1.foils import FOILS_FILE

if TYPE_CHECKING:  # discovery imports this module: the type is for annotations only
    from delta_v2a.phase1.discovery import Options

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


CORRECTIONS = ("holm", "bh")


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted p-values
    over every finite entry of ``p`` (the whole matrix is one family); NaN stays NaN.

    Kept here rather than statsmodels' ``multipletests`` (same numbers): two lines of
    arithmetic, checked against a hand computation, do not justify a new dependency."""
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


def bridge_value(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """sim3 of the configured bridge; for ``both`` the smaller of the two cosines.

    Why the minimum: the score is an AND of agreements, and ``both`` claims that BOTH text
    towers put the two lists close; the minimum is positive only when both cosines are. It is
    a plain cosine (no seed, no null inside), unlike the mean of z-scores it replaces."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmin(per_bridge["audio"], per_bridge["image"])


def bridge_pvalue(per_bridge: Mapping[str, np.ndarray], text_bridge: str) -> np.ndarray:
    """p of sim3 for the configured bridge; for ``both`` the larger of the two bridges' p
    (intersection-union: both must reject). Each is a rank among the SAME foil draws, so the
    combination moves with the seed only as much as one Monte-Carlo p does."""
    if text_bridge != "both":
        return per_bridge[text_bridge]
    return np.fmax(per_bridge["audio"], per_bridge["image"])


# --------------------------------------------------------------------------- the record


#: What each array of discovery_components.npz holds (copied into discovery_labels.json).
COMPONENTS = {
    "score": "(n_image, n_audio) pooled final score (anchors centred when center_anchors); "
    "identical to discovery_matrix.npy",
    "score_raw": "(n_image, n_audio) the same score from raw (uncentred) anchors",
    "score_no_shared": "score with sim3 from synonyms without a shared image/audio word",
    "score_per_intensity": "(n_int, n_image, n_audio): score from the prototypes of ONE "
    "intensity on both sides (image level k with audio level k); sim3 does not depend on it",
    "score_lo / score_hi": "bootstrap-over-files basic interval of the score",
    "sim1 / sim1_raw": "(n_image,) cos(pooled image prototype, centred / raw image anchor), CLIP",
    "sim2 / sim2_raw": "(n_audio,) cos(pooled audio prototype, centred / raw audio anchor), CLAP",
    "sim1_lo / sim1_hi / sim2_lo / sim2_hi": "bootstrap-over-files basic intervals",
    "sim3": "(n_image, n_audio) sim3 used in the score: the bridge's cosine (audio | image "
    "text tower) or, "
    "for both, the smaller of the two bridges' cosines",
    "sim3_raw": "sim3 as above from raw (uncentred) anchors",
    "sim3_audio / sim3_image": "each bridge's cosine in the audio / image model's text tower "
    "(centred anchors when center_anchors)",
    "sim3_audio_raw / sim3_image_raw": "each bridge's cosine from raw anchors",
    "z_audio / z_image": "(both) each bridge's cosine standardised against its foil null",
    "bridge_sign_agreement": "(both) whether the two bridges' cosines have the same sign",
    "sim3_no_shared[_clap|_clip]": "sim3 with shared-word synonyms left out",
    "p_sim1 / p_sim2": "foil-concept p-value of sim1 / sim2 per effect (the claim's null): "
    "(1 + concepts at least as extreme) / (K + 1)",
    "k_sim1 / k_sim2 / k_sim3_audio / k_sim3_image": "K, the foil concepts behind each p-value "
    "(its smallest value is 1/(K + 1))",
    "p_sim1_label / p_sim2_label": "label permutation of per-file effect blocks (secondary: "
    "tests that effects differ, not that the prototype points along its anchor)",
    "p_sim3": "foil-set p-value of sim3 per cell (both: the larger of the two bridges')",
    "p_sim3_audio / p_sim3_image": "each bridge's foil-concept p-value",
    "*_no_shared": "(shared_words: warn) the same figures without shared-word synonyms",
    "p": "cell p-value: max(p_sim1[i], p_sim2[j], p_sim3[i, j]) (intersection-union)",
    "p_adjusted": "p adjusted across the matrix (phase1.correction: holm | bh)",
    "sim1_per_intensity / sim2_per_intensity": "(n_int, n_effects) sim per intensity",
    "image_prototypes / audio_prototypes": "(n_effects, D) pooled; *_per_intensity (n_int, ...)",
    "image_anchor / audio_anchor": "anchors used by sim1 / sim2 (centred if set), each in its "
    "own model's text tower; image_anchor_audio_tower / audio_anchor_image_tower: the same "
    "effects' anchors in the other tower (bridges)",
    "image_effects / audio_effects / intensities": "axis labels, as in discovery_labels.json",
}


@dataclass(frozen=True)
class RunRecord:
    """What ``discovery_labels.json`` says about the run besides the result: the axes, what was
    embedded (templates, synonyms as used, contexts, prompt counts), the models, their health
    and provenance, and which audio files the choice was made on."""

    effects: Mapping[str, Sequence[str]]  # per modality, in the matrix's order
    intensities: Sequence[str]
    templates: Mapping[str, Mapping[str, str]]
    synonyms: Mapping[str, Mapping[str, Sequence[str]]]  # as embedded (after shared-word drop)
    contexts: Mapping[str, Sequence[str]]  # image categories, audio genres
    n_prompts: Mapping[str, int]  # distinct prompts embedded per text tower
    n_pairs: Mapping[str, Sequence[int]]  # prompt pairs averaged per effect, its own tower
    text_models: Mapping[str, Any]  # each text tower's model info
    health_docs: Sequence[HealthReport]
    meta: Mapping[str, Any]  # the delta stores' merged model meta
    components_file: str
    n_audio_used: int  # Phase 3's train + validation files
    n_audio_held_out: int  # its test files


def discovery_labels(
    res: Mapping[str, Any],
    run: RunRecord,
    opts: Options,
    words: Mapping[str, list[str]],
    stability: Mapping[str, Any],
    foils: Mapping[str, Sequence[str]],
) -> DiscoveryLabels:
    """discovery_labels.json from the discovery result ``res``: axes, how each number was made,
    the p-values and chosen pairs, the inputs, the figures, and where the rest lives."""
    fields = _method(run, opts) | {"null_model": res.get("null_model")} | _settings(opts)
    fields |= {
        "p_adjusted": _jsonable(res["p_adjusted"]),
        "p": _jsonable(res["p"]),
        "chosen_pairs": res["chosen_pairs"],
        "shared_words": words,
    }
    fields |= _inputs(run) | _figures(res, run)
    fields |= {
        "components_file": run.components_file,
        "components": COMPONENTS,
        "health": _health_figures(run.health_docs),
        "meta": {**run.meta, "text_models": run.text_models},
        "stability": stability,
        "foils": _foil_summary(foils, res, opts),
        "audio_files": {
            "chosen_on": "Phase 3's train + validation files (results/split.json); test held out",
            "n_used": run.n_audio_used,
            "n_held_out": run.n_audio_held_out,
        },
    }
    return DiscoveryLabels.build(fields)


#: How the cell p-value is made (discovery_labels.json's ``p_value``).
P_VALUE = (
    "max(p_sim1[i], p_sim2[j], p_sim3[i, j]) (intersection-union). Each is "
    "(1 + concepts at least as extreme) / (K + 1) over K foil concepts (one-sided WordNet "
    "adjective clusters), each concept contributing the share of its size- and "
    "coherence-matched foil sets that beat the observed cosine. p_sim1 / p_sim2: foil sets "
    "in the effect's place, centred the same way; p_sim3: foil-set pairs of two different "
    "concepts, the same draws in both towers (both = the larger of the two towers' p). "
    "p_sim1_label / p_sim2_label: the label permutation (effects differ), reported, not "
    "used (docs/methods.md §5)"
)


def _method(run: RunRecord, opts: Options) -> dict[str, Any]:
    """The axes and how the score and its p-value are made."""
    return {
        "image_effects": run.effects["image"],
        "audio_effects": run.effects["audio"],
        "matrix": "discovery_matrix.npy: rows = image_effects, columns = audio_effects, pooled "
        "over intensities, after clipping",
        "intensities": run.intensities,
        "score": "sim1[i] × sim2[j] × sim3[i, j]"
        + (" with each factor clipped at 0" if opts.clip_negative else " (raw factors)"),
        "sim3_definition": sim3_label(opts),
        "center_anchors": opts.center_anchors,
        "text_bridge": opts.text_bridge,
        "sim3_reason": SIM3_REASON,
        "clip_negative": opts.clip_negative,
        "clip_negative_reason": CLIP_REASON,
        "alpha": opts.alpha,
        "correction": opts.correction,
        "p_value": P_VALUE,
    }


def _settings(opts: Options) -> dict[str, Any]:
    return {
        "n_foil_draws": opts.n_foil_draws,
        "shared_words_mode": opts.shared_words,
        "n_permutations": opts.n_permutations,
        "n_bootstrap": opts.n_bootstrap,
        "ci_level": opts.ci_level,
        "seed": opts.seed,
    }


def _inputs(run: RunRecord) -> dict[str, Any]:
    """What was embedded: templates, synonyms, contexts and prompt counts."""
    return {
        "templates": {m: dict(run.templates[m]) for m in run.effects},
        "synonyms": {m: {e: list(v) for e, v in s.items()} for m, s in run.synonyms.items()},
        "contexts": {
            "image_categories": run.contexts["image"],
            "audio_genres": run.contexts["audio"],
        },
        "prompts": {
            "distinct_prompts_embedded": run.n_prompts,
            "pairs_per_effect": {
                m: dict(zip(run.synonyms[m], n, strict=True)) for m, n in run.n_pairs.items()
            },
        },
    }


def _figures(res: Mapping[str, Any], run: RunRecord) -> dict[str, Any]:
    """The components, scores, best matches and prototype sizes a reader looks at first."""
    img_fx, aud_fx = run.effects["image"], run.effects["audio"]
    return {
        "sim1": dict(zip(img_fx, _jsonable(res["sim1"]), strict=True)),
        "sim2": dict(zip(aud_fx, _jsonable(res["sim2"]), strict=True)),
        "sim3": _jsonable(res["sim3"]),
        "scores": _jsonable(res["score"]),
        "scores_raw": _jsonable(res["score_raw"]),
        "best_matches": best_matches(res["score"], img_fx, aud_fx),
        "prototypes": {m: _prototypes(res, run, m) for m in run.effects},
    }


def _prototypes(res: Mapping[str, Any], run: RunRecord, m: str) -> dict[str, Any]:
    """Deltas behind each prototype (per intensity) and its pooled norm."""
    effects, counts = run.effects[m], res["counts"][m]
    norms = np.linalg.norm(res[f"{m}_prototypes"], axis=1)
    return {
        "n_deltas": {
            e: dict(zip(run.intensities, counts[:, j].tolist(), strict=True))
            for j, e in enumerate(effects)
        },
        # |p| in [0, 1]: 1 when every delta of the effect points the same way
        "pooled_norm": dict(zip(effects, _jsonable(norms), strict=True)),
    }


def sim3_label(opts: Options) -> str:
    centring = "centred anchors" if opts.center_anchors else "raw (uncentred) anchors"
    if opts.text_bridge == "both":
        return (
            f"sim3 = the smaller of the audio and image text towers' cosines ({centring}): both "
            "towers must agree; its p-value is the larger of the two towers' foil-null "
            "p-values; the towers' sign agreement is reported per cell"
        )
    return f"sim3 = cosine in the {opts.text_bridge} model's text tower ({centring})"


def cell_rows(
    res: Mapping[str, Any], img_fx: Sequence[str], aud_fx: Sequence[str], alpha: float
) -> list[dict[str, Any]]:
    """The rows of results/discovery.tsv: one per (image effect, audio effect) cell, every
    component, interval and p-value; columns that do not apply to the run's bridge are left
    out."""
    chosen = {(c["image_effect"], c["audio_effect"]) for c in res["chosen_pairs"]}
    per_row = ("sim1", "sim1_lo", "sim1_hi", "sim1_raw", "p_sim1", "k_sim1", "p_sim1_label")
    per_col = ("sim2", "sim2_lo", "sim2_hi", "sim2_raw", "p_sim2", "k_sim2", "p_sim2_label")
    cells = ["score", "score_lo", "score_hi", "score_raw", "score_no_shared", "sim3", "sim3_raw"]
    cells += [k for k in res if k.startswith(("sim3_audio", "sim3_image", "z_", "sim3_no_shared"))]
    cells += ["bridge_sign_agreement", "p_sim3", "p_sim3_audio", "p_sim3_image"]
    cells += ["k_sim3_audio", "k_sim3_image", "p", "p_adjusted"]
    cells += [k for k in res if k.endswith("_no_shared") and k.startswith("p")]
    rows = []
    for i, a in enumerate(img_fx):
        for j, b in enumerate(aud_fx):
            rec: dict[str, Any] = {"image_effect": a, "audio_effect": b}
            rec |= {k: res[k][i] for k in per_row if k in res}
            rec |= {k: res[k][j] for k in per_col if k in res}
            rec |= {k: res[k][i, j] for k in dict.fromkeys(cells) if k in res}
            p = res["p_adjusted"][i, j]
            rec["significant"] = bool(np.isfinite(p) and p <= alpha)
            rec["chosen"] = (a, b) in chosen
            rows.append(rec)
    return rows


def _health_figures(health_docs: Sequence[HealthReport]) -> dict[str, Any]:
    return {d.modality: d.figures() for d in health_docs}


def _foil_summary(
    foils: Mapping[str, Sequence[str]], res: Mapping[str, Any], opts: Options
) -> dict[str, Any]:
    """What the foil nulls drew from (the package's foil vocabulary, minus every foil sharing
    a content word with a configured synonym, and clusters too small for every list) and K,
    the concepts behind each p-value: the smallest p is 1/(K + 1)."""
    k = [res[f"k_sim{n}"] for n in "12"] + [v for key, v in res.items() if key.startswith("k_sim3")]
    k_min = min((int(np.min(v)) for v in k if np.size(v)), default=0)
    return {
        "vocabulary": f"delta_v2a/{FOILS_FILE}",
        "source": "WordNet 3.0 adjective clusters (scripts/build_foils.py)",
        "n_words": sum(len(w) for w in foils.values()),
        "n_clusters": len(foils),
        "coherence_band_sd": opts.coherence_band,
        "min_concepts": opts.min_concepts,
        "max_concepts": opts.max_concepts,
        "k_sim1": _jsonable(res["k_sim1"]),
        "k_sim2": _jsonable(res["k_sim2"]),
        "k_min": k_min,
        "smallest_p": 1.0 / (k_min + 1) if k_min else None,
    }


def _jsonable(x: Any) -> Any:
    """Arrays and floats as JSON values, NaN (undefined) as null."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return float(arr) if np.isfinite(arr) else None
    return [_jsonable(v) for v in arr]
