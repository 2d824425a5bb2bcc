"""Tidy exports and the report's results section, from the phases' own JSON outputs.

Each ``results/tables/*.tsv`` has one row per unit (a variant, a category of a variant, a pair
of effects, a figure of a candidate) and opens with one ``pandas.read_csv(path, sep="\\t")``;
the columns are documented in docs/tables.md. Nothing is recomputed here: every value is copied
from the phase that computed it, so a table can never disagree with its JSON.

Keys that later versions of a phase add (Phase 1's ``p_adjusted`` and ``chosen_pairs``, Phase
3's test split) are read when present and left empty when not.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.jobs.common import Paths, log
from delta_v2a.storage import atomic_path, read_json, write_json

#: Seconds of each example WAV embedded (16-bit) in the report; the full files stay on disk.
REPORT_AUDIO_SECONDS = 5.0
EXAMPLE_ROLES = ("raw", "target", "predicted")
#: Longest ``detail`` of verdicts.tsv: one screen line of the report's verdict table.
DETAIL_CHARS = 200
#: Each table's name and what one of its rows is (the report's caption).
TABLES = {
    "verdicts": "every phase's verdict and its headline (from results/summary.json)",
    "verdict_lines": "every line of every phase's verdict, one row per line (summary.json)",
    "phase0_sensitivity": "Phase 0-a, one row per (modality, effect, intensity)",
    "phase0_consistency": "Phase 0-b, one row per (modality, effect, intensity, category)",
    "phase0_invariance": "Phase 0-b, one row per (modality, effect, intensity)",
    "phase1_discovery": "Phase 1, one row per (image effect, audio effect)",
    "phase3_results": "Phase 3, one row per (split, metric, candidate)",
}


# --------------------------------------------------------------------------- rows


def _short(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, "…" marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


def verdict_rows(summary: Mapping[str, Any], limit: int = DETAIL_CHARS) -> pd.DataFrame:
    """One row per phase: its status and a ``detail`` of at most ``limit`` characters (the
    verdict's first line, then how many more lines ``verdict_lines.tsv`` holds), so that the
    table is read at a glance; the lists themselves are in :func:`verdict_line_rows`."""
    rows = []
    for p in summary.get("phases", []):
        lines = list(p.get("lines", []))
        more = f" (+{len(lines) - 1} more: verdict_lines.tsv)" if len(lines) > 1 else ""
        head = _short(lines[0], limit - len(more)) if lines else ""
        rows.append({"phase": p["phase"], "status": p["status"], "detail": head + more})
    return pd.DataFrame(rows, columns=["phase", "status", "detail"])


def verdict_line_rows(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per line of each phase's verdict (the summary's lists: insensitive variants,
    pairs, baselines), numbered from 1 in the summary's order."""
    rows = [
        {"phase": p["phase"], "status": p["status"], "line": i, "text": text}
        for p in summary.get("phases", [])
        for i, text in enumerate(p.get("lines", []), start=1)
    ]
    return pd.DataFrame(rows, columns=["phase", "status", "line", "text"])


def _gate_rows(
    records: Sequence[Mapping[str, Any]],
    cols: Sequence[str],
    copy: Sequence[str],
    thresholds: Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
    derived: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
) -> pd.DataFrame:
    """One row per record of a Phase 0 gate: the variant, the record's own values (``copy``
    as they are, ``renamed`` table name <- record key), the gate's thresholds and any
    ``derived`` columns. Values are copied, never recomputed."""
    rows = [
        {
            **_variant(r),
            **{k: r.get(k) for k in copy},
            **{new: r.get(old) for new, old in (renamed or {}).items()},
            **thresholds,
            **{k: f(r) for k, f in (derived or {}).items()},
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(cols))


def sensitivity_rows(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (modality, effect, intensity): statistics of ‖Δe‖ and the verdict."""
    cols = ["modality", "effect", "intensity", "n", "n_zero_norm", "n_nonfinite", "mean_norm",
            "std_norm", "min_norm", "max_norm", "min_distance", "sensitive", "reason"]  # fmt: skip
    return _gate_rows(
        doc.get("results", []),
        cols,
        copy=("n", "n_zero_norm", "n_nonfinite", "sensitive", "reason"),
        thresholds={"min_distance": doc.get("min_distance")},
        renamed={f"{k}_norm": k for k in ("mean", "std", "min", "max")},
    )


def consistency_rows(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (modality, effect, intensity, category): direction and magnitude
    consistency of the deltas within the category, and the gate's verdict."""
    th = doc.get("thresholds", {})
    cols = ["modality", "effect", "intensity", "category", "n", "mean_cosine", "cv",
            "min_cosine", "max_cv", "consistent", "reason"]  # fmt: skip
    return _gate_rows(
        doc.get("within_category", []),
        cols,
        copy=("category", "n", "mean_cosine", "cv", "consistent", "reason"),
        thresholds={k: th.get(k) for k in ("min_cosine", "max_cv")},
    )


def invariance_rows(doc: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (modality, effect, intensity): variance of the category prototypes'
    pairwise cosines (cross-category invariance) and the gate's verdict."""
    cols = ["modality", "effect", "intensity", "n_categories", "n_pairs", "mean_cosine",
            "variance", "max_variance", "invariant", "reason"]  # fmt: skip
    return _gate_rows(
        doc.get("results", []),
        cols,
        copy=("mean_cosine", "variance", "invariant", "reason"),
        thresholds={"max_variance": doc.get("thresholds", {}).get("max_variance")},
        derived={
            "n_categories": lambda r: len(r.get("categories", [])),
            "n_pairs": lambda r: len(r.get("pairs", [])),
        },
    )


def _variant(r: Mapping[str, Any]) -> dict[str, Any]:
    return {"modality": r["modality"], "effect": r["effect_type"], "intensity": r["intensity"]}


def phase1_pairs(labels: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(image effect, audio effect) pairs Phase 1 chose (its ``chosen_pairs``: the one
    decision of significance, docs/methods.md §5); empty when its labels carry none."""
    return {
        (p["image_effect"], p["audio_effect"]) if isinstance(p, Mapping) else (p[0], p[1])
        for p in labels.get("chosen_pairs") or []
    }


def phase3_choice(training_log: Mapping[str, Any]) -> dict[str, Any]:
    """The pairs Phase 3 trained on and what they rest on, from the training log's copy of
    ``pairs.json`` (its ``chosen`` and ``significance``; docs/methods.md §6.1): the one source
    that the tables, the report and the summary all quote. ``basis`` is ``significant``
    (Phase 1's corrected p-value, ``p_adjusted <= alpha``), ``score only`` with why (the demo's
    ``phase3.require_significant_pairs: false``, or no p-values), or ``none`` (no pair)."""
    block = training_log.get("pairs")
    block = block if isinstance(block, Mapping) else {}
    pairs = [(r["image_effect"], r["audio_effect"]) for r in block.get("chosen") or []]
    sig = block.get("significance") or {}
    if not pairs:
        basis = "none"
    elif not sig.get("available", True):
        basis = "score only: discovery_labels.json has no p-values"
    elif not sig.get("required", True):
        basis = "score only: phase3.require_significant_pairs is false (not evidence)"
    else:
        basis = f"significant: p_adjusted <= {sig.get('alpha', float('nan')):g}"
    return {"pairs": pairs, "basis": basis}


def phase3_pairs(training_log: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Pairs Phase 3 trained on (:func:`phase3_choice`): Phase 1's significant pairs above
    phase3.pair_threshold, or the score-only pairs of the exercise mode."""
    return set(phase3_choice(training_log)["pairs"])


def _matrix_or_none(value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == shape else None


def discovery_rows(
    matrix: np.ndarray, labels: Mapping[str, Any], training_log: Mapping[str, Any]
) -> pd.DataFrame:
    """One row per (image effect, audio effect) cell of the discovery matrix: the score, its
    three factors, the adjusted p-value where Phase 1 gives one, best match, Phase 1's choice
    (``chosen``), whether Phase 3 trained on it (``used_by_phase3``) and why
    (``phase3_basis``, :func:`phase3_choice`)."""
    rows_e, cols_e = list(labels["image_effects"]), list(labels["audio_effects"])
    shape = (len(rows_e), len(cols_e))
    sim3 = _matrix_or_none(labels.get("sim3"), shape)
    p_adj = _matrix_or_none(labels.get("p_adjusted"), shape)
    best = {b["image_effect"]: b["best"] for b in labels.get("best_matches", [])}
    chosen, choice = phase1_pairs(labels), phase3_choice(training_log)
    used = set(choice["pairs"])
    out = []
    for i, img in enumerate(rows_e):
        for j, aud in enumerate(cols_e):
            out.append(
                {
                    "image_effect": img,
                    "audio_effect": aud,
                    "score": float(matrix[i, j]),
                    "sim1": (labels.get("sim1") or {}).get(img),
                    "sim2": (labels.get("sim2") or {}).get(aud),
                    "sim3": None if sim3 is None else float(sim3[i, j]),
                    "p_adjusted": None if p_adj is None else float(p_adj[i, j]),
                    "best_match": best.get(img) == aud,
                    "chosen": (img, aud) in chosen,
                    "used_by_phase3": (img, aud) in used,
                    "phase3_basis": choice["basis"] if (img, aud) in used else None,
                }
            )
    return pd.DataFrame(out)


def phase3_rows(training_log: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (split, candidate, metric) of the Phase 3 test figures: the decoder and
    every baseline on the test files (``test``) and on the held-out paraphrases
    (``paraphrases``), each a mean with its bootstrap interval over test files, and its SD
    over the training seeds (0 for what no seed changes)."""
    cols = ["split", "candidate", "metric", "mean", "low", "high", "n_files", "seed_sd"]
    cols += ["n_seeds", "status"]
    rows = []
    test = training_log.get("test")
    blocks = (
        {"test": test.get("figures", {}), "paraphrases": test.get("paraphrase_figures", {})}
        if isinstance(test, Mapping)
        else {}
    )
    for split, figures in blocks.items():
        for candidate, metrics in (figures or {}).items():
            for metric, fig in metrics.items():
                if isinstance(fig, Mapping):
                    rows.append(
                        {"split": split, "candidate": candidate, "metric": metric,
                         **{k: fig.get(k) for k in ("mean", "low", "high", "n_files", "seed_sd")},
                         "n_seeds": len(fig.get("per_seed") or []) or None,
                         "status": training_log.get("status")}
                    )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- report HTML


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def html_table(frame: pd.DataFrame, caption: str, table_id: str) -> str:
    """A plain HTML table (escaped), one row per row of ``frame``."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False)
    )
    return (
        f'<table class="dv2a" id="{table_id}"><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def matrix_table(frame: pd.DataFrame) -> str:
    """The discovery matrix as a grid: the score in each cell, ★ on the pairs Phase 1 chose
    (significant), ◆ on the pairs Phase 3 trained on (they differ in the score-only exercise
    mode), bold on each row's best match, the adjusted p-value beneath where there is one."""
    rows_e = list(dict.fromkeys(frame["image_effect"]))
    cols_e = list(dict.fromkeys(frame["audio_effect"]))
    cell = {(r.image_effect, r.audio_effect): r for r in frame.itertuples(index=False)}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols_e)
    body = []
    for img in rows_e:
        tds = []
        for aud in cols_e:
            r = cell[(img, aud)]
            text = f"{r.score:.3g}"
            if r.p_adjusted is not None and np.isfinite(r.p_adjusted):
                text += f"<br><small>p<sub>adj</sub> = {r.p_adjusted:.3g}</small>"
            flags = (("chosen", r.chosen), ("used", r.used_by_phase3), ("best", r.best_match))
            cls = " ".join(c for c, on in flags if on)
            mark = ("★ " if r.chosen else "") + ("◆ " if r.used_by_phase3 else "")
            inner = f"<b>{mark}{text}</b>" if r.best_match else f"{mark}{text}"
            tds.append(f'<td class="{cls}">{inner}</td>')
        body.append(f"<tr><th>{html.escape(img)}</th>{''.join(tds)}</tr>")
    return (
        '<table class="dv2a" id="discovery-matrix"><caption>Discovery matrix (rows: image '
        "effects, columns: audio effects); ★ = significant pair chosen by Phase 1, ◆ = pair "
        "Phase 3 trained on, bold = row's best match"
        f"</caption><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def pairs_html(frame: pd.DataFrame) -> str:
    """One sentence above the matrix: the pairs Phase 3 trained on (◆) and why, the same
    rows and words as ``phase1_discovery.tsv`` and the summary (:func:`phase3_choice`)."""
    used = frame[frame["used_by_phase3"].astype(bool)]
    if used.empty:
        return '<p id="phase3-pairs">Phase 3 trained on no pair.</p>'
    names = ", ".join(f"◆ {r.image_effect} → {r.audio_effect}" for r in used.itertuples())
    basis = "; ".join(dict.fromkeys(used["phase3_basis"].astype(str)))
    return (
        f'<p id="phase3-pairs">Phase 3 trained on: {html.escape(names)} ({html.escape(basis)}).</p>'
    )


def example_groups(folder: str | Path) -> dict[str, dict[str, Path]]:
    """``examples/<stem>_{raw,target,predicted}.wav`` grouped by stem (complete triples only)."""
    groups: dict[str, dict[str, Path]] = {}
    for path in sorted(Path(folder).glob("*.wav")):
        m = re.match(rf"^(.*)_({'|'.join(EXAMPLE_ROLES)})$", path.stem)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = path
    return {k: v for k, v in groups.items() if set(v) == set(EXAMPLE_ROLES)}


def audio_data_uri(path: Path, seconds: float = REPORT_AUDIO_SECONDS) -> str:
    """The first ``seconds`` of a WAV as a 16-bit PCM data URI (small enough to embed)."""
    import soundfile as sf

    with sf.SoundFile(path) as fh:
        data = fh.read(frames=int(seconds * fh.samplerate), dtype="float32")
        sr = fh.samplerate
    buf = io.BytesIO()
    sf.write(buf, np.clip(data, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def examples_html(groups: Mapping[str, Mapping[str, Path]]) -> str:
    """One row per example: raw, target (the description's true parameters), predicted."""
    if not groups:
        return "<p>No listening examples (Phase 3 trained nothing or wrote none).</p>"
    head = "".join(f"<th>{r}</th>" for r in EXAMPLE_ROLES)
    rows = []
    for stem, files in groups.items():
        players = "".join(
            f'<td><audio controls preload="none" src="{audio_data_uri(files[r])}"></audio></td>'
            for r in EXAMPLE_ROLES
        )
        rows.append(f"<tr><th>{html.escape(stem)}</th>{players}</tr>")
    return (
        f'<table class="dv2a" id="examples"><caption>Listening examples: the first '
        f"{REPORT_AUDIO_SECONDS:g} s of each, 16-bit (full files: "
        "results/parameter_predictions/examples/)</caption>"
        f"<thead><tr><th>example</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


#: The report's own CSS, shipped inside its results section so that a plain ``snakemake
#: --report`` gets it. Snakemake 9's report page (its content component) centres
#: its content box vertically (``items-center``) inside a fixed-height overflow box, so a
#: description taller than the screen starts above the page top where no scroll reaches it, and
#: puts the description beside the rule graph in a 32 rem column. These rules start the box at
#: the top, stack description and graph, let the description use the width, and give each wide
#: table a horizontal scroll box of its own; tests/workflow/report_test.py measures the result.
STYLE = (
    "<style>"
    "#app div.grow.h-screen.overflow-auto{align-items:flex-start!important;"
    "justify-content:flex-start!important;min-width:0}"
    "#app div.grow.h-screen>div.grow.flex.items-start{flex-direction:column;"
    "align-items:stretch!important;min-width:0;width:100%}"
    "#app div.grow.h-screen>div.grow.flex.items-start>div{min-width:0;max-width:100%}"
    "#app .prose.max-w-lg{max-width:none!important}"
    "#app .prose table.dv2a{margin:0.6em 0;font-size:0.8rem}"
    "table.dv2a{display:block;max-width:100%;overflow-x:auto;border-collapse:collapse;"
    "margin:1em 0}"
    "table.dv2a td,table.dv2a th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "table.dv2a caption{text-align:left;font-weight:bold}"
    "table.dv2a td.chosen{background:#fff3b0}"
    "table.verdicts td,table.verdicts th{text-align:left;vertical-align:top}"
    "table.verdicts td.FAILED,table.verdicts td.INCONCLUSIVE{color:#b00;font-weight:bold}"
    "details.verdict-lines{display:inline;margin-left:0.4em}"
    "details.verdict-lines summary{display:inline;cursor:pointer;color:#555}"
    "details.verdict-lines ol{margin:0.2em 0 0.2em 1.5em;padding:0}"
    "#not-science{border:2px solid #b00;padding:0.3em 0.6em;color:#b00;margin:0.5em 0}"
    "</style>"
)


def _verdict_cell(lines: Sequence[str]) -> str:
    """A phase's first verdict line (for a FAILED phase: why), then the rest folded in a
    ``<details>`` element the reader opens in the page (no trip to verdict_lines.tsv)."""
    if not lines:
        return ""
    head = html.escape(_short(str(lines[0]), DETAIL_CHARS))
    if len(lines) == 1 and len(str(lines[0])) <= DETAIL_CHARS:
        return head
    items = "".join(f"<li>{html.escape(str(t))}</li>" for t in lines)
    return (
        f'{head}<details class="verdict-lines"><summary>all {len(lines)} lines</summary>'
        f"<ol>{items}</ol></details>"
    )


def verdicts_table(frame: pd.DataFrame, lines: pd.DataFrame | None = None) -> str:
    """The verdict table the report opens with: one row per phase, its status (FAILED in red),
    its first line and, folded, every line of its verdict (``lines``: verdict_lines.tsv's
    rows; without them the short detail of verdicts.tsv)."""
    rows = []
    for r in frame.itertuples(index=False):
        own = [] if lines is None else lines.loc[lines["phase"] == r.phase, "text"].tolist()
        cell = _verdict_cell(own) if own else html.escape(str(r.detail))
        rows.append(
            f'<tr><th>{html.escape(str(r.phase))}</th><td class="{html.escape(str(r.status))}">'
            f"{html.escape(str(r.status))}</td><td>{cell}</td></tr>"
        )
    return (
        '<table class="dv2a verdicts" id="verdicts"><caption>Verdicts: every phase '
        "(results/summary.json; the same lines: results/tables/verdict_lines.tsv and "
        "results/summary.txt)</caption><thead><tr><th>phase</th><th>status</th><th>detail</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _image_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def transfer_html(folder: str | Path) -> str:
    """The Transfer section: each demo example's photos (before, after), the song and both
    routes' renderings as players, each preceded by the printed report (transfer_examples'
    examples.json); or the one line saying why there are none."""
    folder = Path(folder)
    doc = read_json(folder / "examples.json") if (folder / "examples.json").is_file() else {}
    if doc.get("status") != "ok":
        why = doc.get("message", "the transfer_examples rule wrote nothing")
        return f'<p id="transfer">No transfer examples: {html.escape(str(why))}</p>'

    def player(name: str | None) -> str:
        if not name or not (folder / name).is_file():
            return ""
        return f'<audio controls preload="none" src="{audio_data_uri(folder / name)}"></audio>'

    parts = ['<div id="transfer">']
    if doc.get("not_science"):
        parts.append(f"<p><b>{html.escape(str(doc.get('note', '')))}</b></p>")
    for k, rec in enumerate(doc["examples"]):
        parts.append(
            f"<h3>Example {k}: {html.escape(Path(rec['song']).name)} ({rec['split']} split), "
            f"photo edited by {html.escape(rec['edit_effect'])} at "
            f"{html.escape(str(rec['edit_level']))} {html.escape(str(rec['edit_params']))}</h3>"
        )
        pics = [folder / "before.png", folder / f"after{k}.png"]
        parts.append(
            "".join(f'<img width="140" src="{_image_data_uri(p)}">' for p in pics if p.is_file())
        )
        parts.append(f"<p>original {player(f'example{k}_original.wav')}</p>")
        for route in ("decoder", "exact"):
            r = rec[route]
            forced = f" (refused: {r['refused']}; rendered with --force)" if r["refused"] else ""
            parts.append(f"<p>{route} route{html.escape(forced)} {player(r.get('wav'))}</p>")
            parts.append(f"<pre>{html.escape(chr(10).join(rec['report'][route]))}</pre>")
    parts.append(
        f"<p>The first {REPORT_AUDIO_SECONDS:g} s of each, 16-bit; full files: "
        "results/transfer/</p></div>"
    )
    return "\n".join(parts)


def front_page(
    frames: Mapping[str, pd.DataFrame], examples: str, meta: Mapping, transfer: str = ""
) -> str:
    """The report's results section: the not-science banner, the verdict table first (the
    report's first screen), then the Phase 0, 1 and 3 tables and the listening examples."""
    models = meta.get("models", {})
    provenance = "; ".join(
        f"{m}: {html.escape(str(info.get('name_or_path')))} @ "
        f"{html.escape(str(info.get('revision') or 'unpinned'))} ({info.get('dtype')})"
        for m, info in models.items()
    )
    parts = [STYLE]
    if meta.get("not_science"):
        parts.append(f'<p id="not-science"><b>{html.escape(meta.get("note", ""))}</b></p>')
    parts.append(verdicts_table(frames["verdicts"], frames.get("verdict_lines")))
    parts.append(f"<p>Models: {provenance or 'unknown'}.</p>")
    sens = frames["phase0_sensitivity"]
    parts.append("<h2>Phase 0-a: sensitivity</h2>")
    parts.append(html_table(sens, "Mean ‖Δe‖ per variant", "phase0-sensitivity"))
    cons = frames["phase0_consistency"]
    per_variant = (
        cons.groupby(["modality", "effect", "intensity"], sort=False)
        .agg(
            categories=("category", "size"),
            consistent=("consistent", lambda s: int(s.sum())),
            mean_cosine=("mean_cosine", "mean"),
            mean_cv=("cv", "mean"),
        )  # fmt: skip
        .reset_index()
        if len(cons)
        else cons
    )
    parts.append("<h2>Phase 0-b: consistency within categories</h2>")
    parts.append(html_table(per_variant, "Consistent categories per variant (per category: "
                            "phase0_consistency.tsv)", "phase0-consistency"))  # fmt: skip
    parts.append("<h2>Phase 0-b: invariance across categories</h2>")
    inv = frames["phase0_invariance"]
    parts.append(
        html_table(inv, "Variance of the category prototypes' cosines", "phase0-invariance")
    )
    parts.append("<h2>Phase 1: discovery matrix</h2>")
    parts.append(pairs_html(frames["phase1_discovery"]))
    parts.append(matrix_table(frames["phase1_discovery"]))
    parts.append("<h2>Phase 3: held-out figures</h2>")
    p3 = frames["phase3_results"]
    if len(p3):
        shown = p3.assign(
            figure=[
                f"{m:.4g} [{lo:.4g}, {hi:.4g}]" if pd.notna(m) else ""
                for m, lo, hi in zip(p3["mean"], p3["low"], p3["high"], strict=True)
            ]
        )
        wide = shown.pivot_table(index=["split", "metric"], columns="candidate", values="figure",
                                 aggfunc="first", sort=False).reset_index()  # fmt: skip
        parts.append(
            html_table(
                wide,
                "Decoder vs baselines on the test files: mean [95 % bootstrap interval over "
                "files]; lower is better",
                "phase3-results",
            )
        )
    else:
        parts.append('<p id="phase3-results">Phase 3 trained nothing (see the verdicts).</p>')
    parts.append("<h2>Listening examples</h2>")
    parts.append(examples)
    if transfer:
        parts.append("<h2>Transfer: edit a photo, and the song follows</h2>")
        parts.append(transfer)
    return "\n".join(parts)


# --------------------------------------------------------------------------- job


def run_tables(*, inputs: Paths, outputs: Paths) -> None:
    """Write every TSV, their provenance and the report's results section."""
    log_doc = read_json(inputs.training_log)
    labels_doc = read_json(inputs.labels)
    frames = {
        "verdicts": verdict_rows(summary := read_json(inputs.summary)),
        "verdict_lines": verdict_line_rows(summary),
        "phase0_sensitivity": sensitivity_rows(sens := read_json(inputs.sensitivity)),
        "phase0_consistency": consistency_rows(read_json(inputs.linearity)),
        "phase0_invariance": invariance_rows(read_json(inputs.cross)),
        "phase1_discovery": discovery_rows(np.load(inputs.matrix), labels_doc, log_doc),
        "phase3_results": phase3_rows(log_doc),
    }
    tables = {name: outputs[name] for name in TABLES}
    for name, frame in frames.items():
        with atomic_path(tables[name], ".tsv") as tmp:
            frame.to_csv(tmp, sep="\t", index=False, na_rep="")
        log.info("%s: %d rows", tables[name], len(frame))
    meta = dict(sens.get("meta", {}))
    write_json(outputs.provenance, {"meta": meta, "tables": tables})
    examples = examples_html(example_groups(Path(inputs.predictions) / "examples"))
    transfer = transfer_html(inputs.transfer) if "transfer" in inputs.names() else ""
    with atomic_path(outputs.front, ".html") as tmp:
        Path(tmp).write_text(front_page(frames, examples, meta, transfer), encoding="utf-8")
    if "transfer" in outputs.names():
        with atomic_path(outputs.transfer, ".html") as tmp:
            Path(tmp).write_text(STYLE + transfer, encoding="utf-8")
