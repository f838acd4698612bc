"""Analysis -> the terminal report: rich tables that fit 100 columns, no colour when piped.

Every cell is a :class:`rich.text.Text`, never markup: a reason phrase such as ``[bold red]``
taken from a capture is shown as typed, not interpreted.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from sipstats.render.labels import label
from sipstats.render.options import RenderOptions
from sipstats.render.tables import Table, report_tables

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Width the report is laid out for (terminals and pasted text alike).
WIDTH = 100


def _header(name: str, width: int) -> str:
    """``name`` broken between words into lines of at most ``width`` (or its longest word)."""
    lines: list[str] = []
    for word in name.split():
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def _longest_token(values: list[str]) -> int:
    """Length of the longest whitespace-separated token among ``values`` (0 when none)."""
    return max((cell_len(token) for value in values for token in value.split()), default=0)


def _text_widths(
    table: Table, least: list[int], text_columns: list[int], spare: int
) -> dict[int, int]:
    """Width of each text column: its longest token, plus a share of the ``spare`` columns
    in proportion to how much wider its longest cell is (never more than that cell)."""
    natural = {
        i: max(cell_len(table.columns[i]), *(cell_len(row[i]) for row in table.rows))
        for i in text_columns
    }
    want = {i: natural[i] - least[i] for i in text_columns}
    total = sum(want.values())
    widths = {i: least[i] for i in text_columns}
    if spare <= 0 or total == 0:
        return widths
    for i in text_columns:
        widths[i] += min(want[i], spare * want[i] // total)
    return widths


def rich_table(table: Table, width: int = WIDTH) -> RichTable:
    """One report table as a rich table whose cells are plain text, never a token broken.

    Number columns never wrap; in a table wider than ``width`` their headers break between
    words to the width of their widest value. Text columns wrap between words only: each is
    at least as wide as its longest token (an address, a path, a code list). When those
    minimums cannot all fit in ``width``, the text column with the longest token instead
    shortens its cells with an ellipsis.
    """
    natural = sum(
        3 + max(cell_len(name), *(cell_len(row[i]) for row in table.rows))
        for i, name in enumerate(table.columns)
    )
    numeric_widths = [
        max(cell_len(name) if natural <= width else _longest_token([name]),
            *(cell_len(row[i]) for row in table.rows))
        for i, name in enumerate(table.columns)
    ]  # fmt: skip
    tokens = [
        _longest_token([name, *(row[i] for row in table.rows)])
        for i, name in enumerate(table.columns)
    ]
    least = [numeric_widths[i] if numeric else tokens[i] for i, numeric in enumerate(table.numeric)]
    tight = natural > width  # one space between columns instead of two
    gap = 2 if tight else 3
    text_columns = [i for i, numeric in enumerate(table.numeric) if not numeric]
    widths = _text_widths(table, least, text_columns, width - 1 - sum(gap + w for w in least))
    shorten = -1
    if sum(gap + w for w in least) > width and text_columns:
        shorten = max(text_columns, key=lambda i: tokens[i])
        room = width - 1 - sum(gap + w for i, w in enumerate(least) if i != shorten) - gap
        widths[shorten] = max(8, room)
    out = RichTable(
        title=Text(table.title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption=Text(table.note) if table.note else None,
        caption_justify="left",
        show_edge=False,
        collapse_padding=tight,
    )
    # rich takes the first column's left padding out of a fixed width when padding collapses:
    # the cell spared above pays for it
    first = {0: 1} if tight else {}
    for index, (name, numeric) in enumerate(zip(table.columns, table.numeric, strict=True)):
        if numeric:
            widest = max((cell_len(row[index]) for row in table.rows), default=1)
            header = _header(name, widest) if tight else name
            out.add_column(Text(header), justify="right", no_wrap=True)
        elif index == shorten:
            out.add_column(
                Text(name),
                justify="left",
                overflow="ellipsis",
                no_wrap=True,
                width=widths[index] + first.get(index, 0),
            )
        else:
            width_of = widths[index] + first.get(index, 0)
            out.add_column(Text(name), justify="left", overflow="fold", width=width_of)
    for row in table.rows:
        out.add_row(*(Text(cell) for cell in row))
    return out


def print_report(analysis: Analysis, console: Console, options: RenderOptions) -> None:
    """Print every report table to ``console`` (the CLI passes one bound to the terminal)."""
    console.print(Text(label("title", options.lang), style="bold underline"))
    for table in report_tables(analysis, options.lang, options.top, definitions=False):
        if table.hidden:
            continue
        if table.rows:
            console.print(rich_table(table, console.width))
            console.print()
        else:
            console.print(Text(table.title, style="bold"))
            console.print(Text(f"  {table.note}"), end="\n\n")


def console_for(stream: TextIO) -> Console:
    """A console on ``stream``: a terminal keeps its colours (at most :data:`WIDTH` wide),
    anything else gets plain text at :data:`WIDTH` columns."""
    if stream.isatty():
        console = _Console(file=stream)
        console.width = min(console.width, WIDTH)
        return console
    return _Console(file=stream, width=WIDTH, force_terminal=False, color_system=None)


class _Console(Console):
    """A console that leaves a closed output to its caller (rich's own ends the program with
    status 1, which sipstats gives damaged input)."""

    def on_broken_pipe(self) -> None:
        raise  # the BrokenPipeError rich is handling


def render_text(analysis: Analysis, options: RenderOptions) -> str:
    """The text report as a string: 100 columns, no colour, no terminal control codes."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=WIDTH, force_terminal=False, color_system=None, emoji=False
    )
    print_report(analysis, console, options)
    return buffer.getvalue()
