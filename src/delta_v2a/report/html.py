"""The report's results section as HTML: the verdict table, the Phase 0/1/3 tables, the
discovery matrix and the listening examples (docs/tables.md; tests/workflow/report_test.py)."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delta_v2a.artifacts.transfer import TransferExamples
from delta_v2a.report.rows import DETAIL_CHARS, _short

#: Seconds of each example WAV embedded (16-bit) in the report; the full files stay on disk.
REPORT_AUDIO_SECONDS = 5.0
EXAMPLE_ROLES = ("raw", "target", "predicted")


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


def transfer_html(doc: TransferExamples | None, folder: str | Path) -> str:
    """The Transfer section from the ``transfer_examples`` rule's examples.json (``doc``; None
    where it wrote none) and its folder: each example's photos (before, after), the song and
    both routes' renderings as players, each preceded by the printed report; or the one line
    saying why there are none."""
    folder = Path(folder)
    if doc is None or not doc.ok:
        why = doc.message if doc is not None else "the transfer_examples rule wrote nothing"
        return f'<p id="transfer">No transfer examples: {html.escape(str(why))}</p>'

    def player(name: str | None) -> str:
        if not name or not (folder / name).is_file():
            return ""
        return f'<audio controls preload="none" src="{audio_data_uri(folder / name)}"></audio>'

    parts = ['<div id="transfer">']
    if doc.not_science:
        parts.append(f"<p><b>{html.escape(doc.note)}</b></p>")
    for k, rec in enumerate(doc.examples):
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
