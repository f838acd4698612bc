"""``sipstats calls CAPTURE...``: one line per call, filtered, as text, CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sipstats.cli import say
from sipstats.cli.options import (
    correlation_option,
    format_option,
    joined_ports,
    output_file_option,
    ports_option,
    quiet_option,
)
from sipstats.cli.report import fail_on, warn_inputs
from sipstats.cli.selection import call_selection
from sipstats.cli.trunks import trunks_option
from sipstats.render import CALL_RENDERERS

if TYPE_CHECKING:
    from sipstats.analyze import Analysis
    from sipstats.analyze.trunks import Trunks
    from sipstats.vocabulary import Correlation


def load_analysis(
    captures: tuple[str, ...],
    ports: tuple[tuple[int, ...], ...],
    quiet: bool,
    trunks: Trunks | None = None,
    correlation_header: Correlation = "auto",
) -> Analysis:
    """Read and analyse ``captures`` (capture files, or one dataset made by ``sipstats
    ingest``), warning about flagged inputs; ReportError when nothing is readable (shared by
    the drill-down commands)."""
    from sipstats.analyze import analyze  # the library loads when a command runs, not for --help
    from sipstats.analyze.trunks import apply_trunks
    from sipstats.report import read_selected

    capture = read_selected(list(captures), ports=joined_ports(ports))
    warn_inputs(capture.inputs, quiet)
    analysis = analyze(capture, correlation_header=correlation_header)
    return analysis if trunks is None else apply_trunks(analysis, trunks)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@call_selection
@click.option("--caller", help="Only calls whose From URI contains this text (any case).")
@click.option("--callee", help="Only calls whose To URI contains this text (any case).")
@ports_option
@format_option(CALL_RENDERERS)
@output_file_option
@trunks_option
@correlation_option
@quiet_option
def calls(
    captures: tuple[str, ...],
    outcomes: tuple[str, ...],
    codes: tuple[int, ...],
    caller: str | None,
    callee: str | None,
    call_ids: tuple[str, ...],
    since: str | None,
    until: str | None,
    ports: tuple[tuple[int, ...], ...],
    fmt: str,
    output: Path | None,
    trunks: Trunks | None,
    correlation_header: Correlation,
    quiet: bool,
) -> None:
    """One line per call in CAPTURE files: start, caller, callee, outcome, code, PDD, Call-ID.

    Exit status: 0 all input read; 1 list written but some input damaged; 2 nothing readable.
    """
    from sipstats.drill.calls import call_list, select_calls
    from sipstats.report import exit_status

    try:
        analysis = load_analysis(captures, ports, quiet, trunks, correlation_header)
        selected = select_calls(
            analysis,
            outcomes=outcomes,
            codes=codes,
            caller=caller,
            callee=callee,
            call_ids=call_ids,
            since=since,
            until=until,
        )
        document = CALL_RENDERERS[fmt](call_list(selected))
        if output is None:
            click.echo(document, nl=False)
        else:
            output.write_text(document, encoding="utf-8")
            if not quiet:
                say(f"wrote {len(selected)} calls: {output}")
    except Exception as error:
        fail_on(error)
    raise click.exceptions.Exit(exit_status(analysis.capture.inputs))
