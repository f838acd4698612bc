"""``sipstats diff BEFORE AFTER``: what changed between two captures, datasets or reports."""

from __future__ import annotations

from pathlib import Path

import click

from sipstats.cli.report import error_line
from sipstats.drill.diff import compare, load_side
from sipstats.render.diffout import DIFF_RENDERERS
from sipstats.report import EXIT_USAGE, exit_status


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("before")
@click.argument("after")
@click.option(
    "--report",
    "fmt",
    type=click.Choice(list(DIFF_RENDERERS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def diff(before: str, after: str, fmt: str, output: Path | None) -> None:
    """Compare BEFORE and AFTER: each a capture (file, directory, glob), a dataset or a
    saved JSON report. Per outcome, code, category, class, method, responder and metric:
    counts, rates, change and a named significance test; what changed first.

    Exit status: 0 both read cleanly; 1 written but some input damaged or without SIP;
    2 unusable input.
    """
    try:
        old, new = load_side([before]), load_side([after])
        document = DIFF_RENDERERS[fmt](old, new, compare(old.report, new.report))
        if output is None:
            click.echo(document, nl=False)
        else:
            output.write_text(document, encoding="utf-8")
    except Exception as error:
        click.echo(f"sipstats: error: {error_line(error)}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    raise click.exceptions.Exit(exit_status((), old.flagged, new.flagged))
