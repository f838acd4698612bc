"""``sipstats diff BEFORE AFTER``: what changed between two captures, datasets or reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sipstats.cli import say
from sipstats.cli.options import format_option, output_file_option
from sipstats.cli.report import fail_on, warn_inputs
from sipstats.render import DIFF_RENDERERS

if TYPE_CHECKING:
    from sipstats.drill.diff import Side


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("before")
@click.argument("after")
@format_option(DIFF_RENDERERS)
@output_file_option
def diff(before: str, after: str, fmt: str, output: Path | None) -> None:
    """Compare BEFORE and AFTER: each a capture (file, directory, glob), a dataset or a
    saved JSON report. Per outcome, code, category, class, method, responder and metric:
    counts, rates, change and a named significance test; what changed first.

    Exit status: 0 both read cleanly; 1 written but some input damaged or without SIP;
    2 unusable input.
    """
    from sipstats.drill.diff import compare, load_side
    from sipstats.report import exit_status

    try:
        old, new = load_side([before]), load_side([after])
        document = DIFF_RENDERERS[fmt](old, new, compare(old.report, new.report))
        if output is None:
            click.echo(document, nl=False)
        else:
            output.write_text(document, encoding="utf-8")
    except Exception as error:
        fail_on(error)
    _warn(old)
    _warn(new)
    raise click.exceptions.Exit(exit_status((), old.flagged, new.flagged))


def _warn(side: Side) -> None:
    """Name on stderr what makes the exit status 1: the side's flagged inputs, or a saved
    report that recorded one."""
    warn_inputs(side.inputs, quiet=False)
    if side.flagged and not side.inputs:
        say(
            f"sipstats: warning: {side.name}: the saved report records an input that was "
            "damaged, unreadable or held no SIP"
        )
