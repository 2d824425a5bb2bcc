"""The end-of-run summary: every phase's verdict in one place, loud on failures.

Pure functions of the phases' own records (each phase already applied its gates); the
``summary`` job reads them and writes ``results/summary.{json,txt}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delta_v2a.artifacts.discovery import DiscoveryLabels
from delta_v2a.artifacts.phase0 import CrossCategoryVariance, LinearityResults, SensitivityResults
from delta_v2a.artifacts.training_log import TrainingLog, Verdict
from delta_v2a.phase3.strength import unreachable_line
from delta_v2a.report.rows import phase3_choice


def _verdict(name: str, ok: bool | None | str, lines: Sequence[str]) -> dict[str, Any]:
    """``ok``: True, False, None (not applicable) or "inconclusive" (too little data to test:
    never a pass, and not a failure of the method either)."""
    status = (
        "INCONCLUSIVE" if ok == "inconclusive" else {True: "ok", False: "FAILED", None: "n/a"}[ok]
    )
    return {"phase": name, "status": status, "lines": list(lines)}


def _why_first(verdict: dict[str, Any], why: Sequence[str]) -> dict[str, Any]:
    """A FAILED (or INCONCLUSIVE) verdict opens with why (the report shows the first line
    beside the status; "24 of 24 variants sensitive" beside FAILED reads as a contradiction).
    A reason that already starts with the status is not prefixed again."""
    status = verdict["status"]
    if status in ("FAILED", "INCONCLUSIVE") and why:
        text = "; ".join(why)
        first = text if text.startswith(status) else f"{status} because: {text}"
        verdict["lines"] = [first, *(line for line in verdict["lines"] if line != text)]
    return verdict


def _phase1_verdict(discovery: np.ndarray, labels: DiscoveryLabels) -> dict[str, Any]:
    """Phase 1: the pairs Phase 1 chose (its ``chosen_pairs``, the one decision of
    significance; docs/methods.md §5), copied, never decided again; loud when there is none."""
    chosen = labels.chosen_pairs
    lines = [
        f"{len(chosen)} of {len(labels.image_effects)} image effects paired "
        f"({labels.correction}-adjusted p <= {labels.alpha:g}, score > 0)"
    ]
    lines += [
        f"{c['image_effect']} -> {c['audio_effect']} (score {c['score']:.3g}, "
        f"p_adjusted {c['p_adjusted']:.3g}"
        + (f", rank {c['rank_in_row']} in its row" if "rank_in_row" in c else "")
        + ")"
        for c in chosen
    ]
    paired = {c["image_effect"] for c in chosen}
    p_adj = labels.p_adjusted_matrix()
    for i, name in enumerate(labels.image_effects):
        if name in paired or not np.isfinite(discovery[i]).any():
            continue
        j = int(np.nanargmax(discovery[i]))
        lines.append(
            f"{name}: no pair (none significant; best score: "
            f"{labels.audio_effects[j]}, {discovery[i, j]:.3g}, p_adjusted {p_adj[i, j]:.3g})"
        )
    if not chosen:
        lines.append("!!! NO significant pair: Phase 3 has nothing to learn !!!")
    why = [
        f"no significant pair ({labels.correction}-adjusted p <= {labels.alpha:g}): "
        "nothing for Phase 3"
    ]
    return _why_first(_verdict("phase 1 discovery", bool(chosen), lines), why)


def _pairs_line(choice: Mapping[str, Any]) -> str:
    """Which pairs Phase 3 trained on and why, in the words of the tables and the report
    (one source: ``report.rows.phase3_choice``)."""
    if not choice["pairs"]:
        return "Phase 3 trained on no pair"
    pairs = ", ".join(f"{i} -> {a}" for i, a in choice["pairs"])
    return f"Phase 3 trained on: {pairs} ({choice['basis']})"


def _fig(f: Mapping[str, Any] | None, digits: int = 4) -> str:
    if not f or f.get("mean") is None:
        return "n/a"
    return f"{f['mean']:.{digits}g} [{f['low']:.{digits}g}, {f['high']:.{digits}g}]"


def _shuffled_line(spread: Mapping[str, Any]) -> str:
    """The shuffled baseline's MSE and its SD across derangements, per training seed (one
    number each when the log has one seed)."""
    means, sds = (list(np.atleast_1d(spread[k])) for k in ("mean", "sd"))
    per = "" if len(means) == 1 else " per seed"
    return (
        f"shuffled audio over {spread['n_derangements']} derangements: MSE{per} "
        f"{', '.join(f'{m:.3g}' for m in means)} (SD {', '.join(f'{x:.3g}' for x in sds)} "
        "across derangements)"
    )


def _seed_lines(v: Verdict, figures: Mapping[str, Any]) -> list[str]:
    """Which training seeds passed, and the decoder's test MSE as mean ± SD over seeds."""
    seeds = v.seeds
    if not seeds:
        return []
    dec = figures.get("decoder", {}).get("param_mse", {})
    per_seed = ", ".join(f"{x:.3g}" for x in dec.get("per_seed") or [])
    return [
        f"training seeds {seeds}: passed {v.seeds_passed or []} (the verdict needs all)",
        f"decoder test MSE over {len(seeds)} seeds: {dec.get('mean', float('nan')):.3g} ± "
        f"{dec.get('seed_sd') or 0.0:.2g} (SD over seeds; per seed {per_seed})",
    ]


def _phase3_verdict(training_log: TrainingLog) -> dict[str, Any]:
    """Phase 3: the audio-dependence figure, the verdict ("uses the audio" or not), which
    baselines the decoder beats on test and which it does not, test MSE of each with its
    95 % interval over test files (docs/methods.md section 6.5)."""
    if not training_log.trained or training_log.test is None:
        message = training_log.message or str(training_log.status)
        return _verdict("phase 3 decoder", False, [message])
    v, dep = training_log.verdict, training_log.audio_dependence or {}
    inference_seeds = v.seed_comparisons()
    tests = [
        (f"seed {seed['seed']} " if len(inference_seeds) > 1 else "")
        + f"{c['name']}: decoder better on {c.get('wins', '?')} of {c['n_files']} files, "
        f"sign test p {c['p']:.3g} (Holm {c['p_holm']:.3g}); mean difference {c['mean']:.3g}"
        + ("" if c["gating"] else ", reported")
        for seed in inference_seeds
        for c in seed["comparisons"]
    ]
    spread = training_log.test.shuffled_spread
    sig = training_log.pairs.significance
    lines = [
        f"target: {training_log.target}; audio dependence: {dep.get('message', 'n/a')}",
        *([unreachable_line(dep)] if "n_unreachable" in dep else []),
        v.message,
        *tests,
        *([_shuffled_line(spread)] if spread else []),
        *([f"!!! pairs: {sig.note} !!!"] if sig is not None and sig.required is False else []),
        f"beats: {', '.join(v.beats or []) or 'none'}; does not beat: "
        f"{', '.join(v.does_not_beat or []) or 'none'}",
        f"text-only ({v.text_only_baseline}) − decoder, test MSE: "
        f"{_fig(v.difference_text_only_minus_decoder, 3)}; shuffled − decoder: "
        f"{_fig(v.difference_shuffled_minus_decoder, 3)}",
    ]
    figures = training_log.test.figures
    lines += _seed_lines(v, figures)
    lines += [
        f"test {name}: MSE {_fig(f['param_mse'], 3)}, strength error "
        f"{_fig(f['strength_error'], 3)}, log-mel {_fig(f['logmel_db'], 3)} dB"
        + (f", gain-aware {_fig(f['logmel_gain_db'], 3)} dB" if "logmel_gain_db" in f else "")
        for name, f in figures.items()
    ]
    search = (training_log.cost or {}).get("text2fx_search", {})
    if "budget" in search:
        lines.append(
            f"text2fx_search: budget {search['budget']} CLAP calls per clip beyond the "
            f"{search['grid_points_free']}-point grid, {search['search_calls_per_clip']:.3g} "
            f"used per clip, {search['seconds_per_sample']:.3g} s per sample"
        )
    ok = "inconclusive" if v.status == "inconclusive" else bool(v.uses_audio)
    return _why_first(_verdict("phase 3 decoder", ok, lines), [v.message])


def _gated(name: str, why: Sequence[str], lines: Sequence[str]) -> dict[str, Any]:
    """A phase that passes when none of its gates gave a reason to fail, opening with why."""
    return _why_first(_verdict(name, not why, lines), why)


def _sensitivity_verdict(sensitivity: SensitivityResults) -> dict[str, Any]:
    """Phase 0-a: every variant moves its embedding (docs/methods.md §4), no degenerate delta."""
    degenerate = sum(len(v) for v in sensitivity.meta.get("degenerate_deltas", {}).values())
    rows = sensitivity.results
    insensitive = [r for r in rows if r.sensitive is False]
    lines = [f"{len(rows) - len(insensitive)} of {len(rows)} variants sensitive"]
    lines += [f"insensitive: {r.variant} (mean ||Δe|| {r.mean:.3g})" for r in insensitive]
    if degenerate:
        lines.append(f"{degenerate} degenerate delta(s) (zero norm or non-finite)")
    why = [f"{len(insensitive)} variant(s) insensitive"] if insensitive else []
    why += [f"{degenerate} degenerate delta(s) (zero norm or non-finite)"] if degenerate else []
    return _gated("phase 0-a sensitivity", why, lines)


def _linearity_verdict(linearity: LinearityResults, cross: CrossCategoryVariance) -> dict[str, Any]:
    """Phase 0-b: each variant consistent within categories and invariant across them."""
    summ = linearity.summary
    inconsistent = [s for s in summ if s.consistent is False]
    varying = [c for c in cross.results if c.invariant is False]
    undetermined = [s for s in summ if s.consistent is None]
    lines = [
        f"{len(summ) - len(inconsistent) - len(undetermined)} of {len(summ)} variants consistent"
    ]
    lines += [
        f"inconsistent: {s.variant} ({s.n_consistent} of "
        f"{s.n_categories - s.n_undetermined} categories)"
        for s in inconsistent
    ]
    lines += [f"not invariant across categories: {c.variant}" for c in varying]
    if undetermined:
        lines.append(f"{len(undetermined)} variant(s) undetermined (too few files per category)")
    why = [f"{len(inconsistent)} variant(s) inconsistent within categories"] if inconsistent else []
    why += [f"{len(varying)} variant(s) not invariant across categories"] if varying else []
    return _gated("phase 0-b linearity", why, lines)


def summarise(
    *,
    health: Sequence[Mapping[str, Any]],
    sensitivity: SensitivityResults,
    linearity: LinearityResults,
    cross: CrossCategoryVariance,
    discovery: np.ndarray,
    labels: DiscoveryLabels,
    training_log: TrainingLog,
) -> dict[str, Any]:
    """Per-phase verdicts from the phases' own results (each phase already applied its gates)."""
    bad_health = [h for h in health if not h.get("passed", True)]
    phases = [
        _verdict(
            "health",
            not bad_health,
            [h.get("message", "") for h in bad_health]
            or [f"{len(health)} model(s) passed the collapse check"],
        ),
        _sensitivity_verdict(sensitivity),
        _linearity_verdict(linearity, cross),
        _phase1_verdict(discovery, labels),
    ]
    choice = phase3_choice(training_log)
    phases[-1]["lines"].append(_pairs_line(choice))
    phases.append(_phase3_verdict(training_log))
    failed = [p["phase"] for p in phases if p["status"] == "FAILED"]
    return {
        "not_science": bool(sensitivity.meta.get("not_science")),
        "note": sensitivity.meta.get("note", ""),
        "phases": phases,
        "failed": failed,
        "phase3_pairs": {"pairs": [list(p) for p in choice["pairs"]], "basis": choice["basis"]},
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    bar = "=" * 78
    out = [bar, "Delta V2A: summary of every phase", bar]
    if summary["not_science"]:
        out.append(summary["note"])
    for p in summary["phases"]:
        out.append(f"{p['status']:>7}  {p['phase']}")
        out += [f"         {line}" for line in p["lines"]]
    out.append(bar)
    if summary["failed"]:
        out.append(
            f"!!! WARNING: {len(summary['failed'])} phase(s) FAILED their checks: "
            + ", ".join(summary["failed"])
            + " !!!"
        )
    else:
        out.append("every phase passed its checks")
    out.append(bar)
    return "\n".join(out)
