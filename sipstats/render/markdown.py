"""Analysis -> Markdown: the text report's tables as pipe tables, for pasting into a ticket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sipstats.render.labels import label
from sipstats.render.options import RenderOptions
from sipstats.render.tables import Table, report_tables

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Characters that would change a Markdown table or inline markup if left alone.
_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|~"} | {"\n": " ", "\r": " "})


def md_cell(value: str) -> str:
    """A cell whose text cannot open a link, an HTML tag or a new table column."""
    return value.translate(_SPECIAL)


def md_table(table: Table) -> str:
    """One table as a titled pipe table (an italic line instead when it is empty)."""
    lines = [f"## {md_cell(table.title)}", ""]
    if table.rows:
        lines.append("| " + " | ".join(md_cell(c) for c in table.columns) + " |")
        lines.append("|" + "|".join("---:" if n else "---" for n in table.numeric) + "|")
        lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in table.rows]
        lines.append("")
    if table.note:
        lines += [f"*{md_cell(table.note)}*", ""]
    return "\n".join(lines)


def render_markdown(analysis: Analysis, options: RenderOptions) -> str:
    """The whole Markdown report."""
    parts = [f"# {md_cell(label('title', options.lang))}", ""]
    tables = report_tables(analysis, options.lang, options.top)
    parts += [md_table(t) for t in tables if not t.hidden]
    return "\n".join(parts).rstrip() + "\n"
