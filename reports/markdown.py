"""Render a report Document as Markdown; charts are linked as the PNG files next to report.md."""

from __future__ import annotations

from reports.charts import Chart
from reports.document import Block, Document, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(table: Table) -> str:
    align = ["---:" if table.numeric(i) else "---" for i in range(len(table.headers))]
    lines = ["| " + " | ".join(_cell(h) for h in table.headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _block(block: Block) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Chart):
        return f"![{block.title}]({block.filename})"
    return block


def render(document: Document) -> str:
    """The report as Markdown text."""
    parts = [f"# {document.title}"]
    for section in document.sections:
        parts.append(f"## {section.title}")
        parts += [_block(block) for block in section.blocks]
    return "\n\n".join(parts) + "\n"
