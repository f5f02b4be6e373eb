"""Render a report Document as one self-contained HTML page: inline CSS, charts as base64 data URIs."""

from __future__ import annotations

import base64
from html import escape

from reports.charts import Chart
from reports.document import Block, Document, Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f0f0f0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.flag td { background: #fde2e2; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
p.caption { color: #555; font-size: 0.9em; }
"""
NUMBER = ' class="n"'


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    numeric = [table.numeric(i) for i in range(len(table.headers))]
    rows = []
    for row in table.rows:
        cells = "".join(f"<td{NUMBER if numeric[i] else ''}>{escape(cell)}</td>" for i, cell in enumerate(row))
        flagged = ' class="flag"' if "REGRESSION" in row else ""
        rows.append(f"<tr{flagged}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _chart(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return f'<img alt="{escape(chart.title)}" src="data:image/png;base64,{data}">'


def _block(block: Block) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Chart):
        return _chart(block)
    return f'<p class="caption">{escape(block)}</p>'


def render(document: Document) -> str:
    """The report as a standalone HTML page (no external CSS, scripts or images)."""
    body = [f"<h1>{escape(document.title)}</h1>"]
    for section in document.sections:
        body.append(f"<h2>{escape(section.title)}</h2>")
        body += [_block(block) for block in section.blocks]
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(document.title)}'
        f"</title>\n<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
