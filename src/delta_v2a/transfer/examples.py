"""The demo transfer pages: the (photo pair, song) examples rendered by the ``transfer_examples``
rule, as Markdown and HTML (docs/methods.md §7). Pure: the job writes the text."""

from __future__ import annotations

import html
from pathlib import Path

from delta_v2a.artifacts.transfer import TransferExamples


def example_pages(doc: TransferExamples) -> tuple[str, str]:
    """README.md and index.html (audio players, for the report) giving the same account."""

    note = doc.note
    md = ["# Delta transfer examples", "", note, ""]
    page = ["<html><body><h2>Delta transfer examples</h2>", f"<p><b>{note}</b></p>"]
    for k, rec in enumerate(doc.examples):
        title = (
            f"Example {k}: {Path(rec['song']).name} ({rec['split']} split), photo edited by "
            f"{rec['edit_effect']} at {rec['edit_level']} {rec['edit_params']}"
        )
        md += [f"## {title}", ""]
        page += [
            f"<h3>{html.escape(title)}</h3>",
            '<img src="before.png" width="160">',
            f'<img src="after{k}.png" width="160">',
            f'<p>original <audio controls src="example{k}_original.wav"></audio></p>',
        ]
        for route in ("decoder", "exact"):
            r = rec[route]
            head = f"{route} route" + (
                f" (refused: {r['refused']}; forced)" if r["refused"] else ""
            )
            md += [f"### {head}", "", "```", *rec["report"][route], "```", ""]
            player = f' <audio controls src="{r["wav"]}"></audio>' if r["wav"] else ""
            page += [
                f"<p>{html.escape(head)}{player}</p>",
                "<pre>" + html.escape("\n".join(rec["report"][route])) + "</pre>",
            ]

    return "\n".join(md) + "\n", "\n".join([*page, "</body></html>"]) + "\n"
