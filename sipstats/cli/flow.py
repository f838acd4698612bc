"""``sipstats flow CAPTURE... --call-id X``: the ladder diagram of one call in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sipstats.cli.calls import load_analysis
from sipstats.cli.options import correlation_option, ports_option, quiet_option
from sipstats.cli.report import fail, fail_on
from sipstats.cli.trunks import trunks_option

if TYPE_CHECKING:
    from sipstats.analyze.trunks import Trunks
    from sipstats.vocabulary import Correlation


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option(
    "--call-id",
    "call_ids",
    multiple=True,
    required=True,
    help="Call-ID to draw (repeat to draw several legs together).",
)
@ports_option
@click.option(
    "--svg",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the ladder as SVG to this file.",
)
@trunks_option
@correlation_option
@quiet_option
def flow(
    captures: tuple[str, ...],
    call_ids: tuple[str, ...],
    ports: tuple[tuple[int, ...], ...],
    svg: Path | None,
    trunks: Trunks | None,
    correlation_header: Correlation,
    quiet: bool,
) -> None:
    """Ladder diagram of a call: hosts as columns, one arrow per message, time offsets.

    '*' marks a retransmission, '(sdp)' a message with an SDP body. Every message with the
    Call-ID is drawn, so a capture at a proxy shows both legs, and so is every B2BUA leg
    linked to the call by a correlation header. CAPTURE may also be a dataset (sipstats
    ingest).
    """
    from sipstats.drill.flow import call_flow, render_ladder
    from sipstats.drill.ladder import ladder_svg
    from sipstats.report import exit_status

    try:
        analysis = load_analysis(captures, ports, quiet, trunks, correlation_header)
        ladder = call_flow(analysis, call_ids)
        click.echo(render_ladder(ladder), nl=False)
        if svg is not None:
            svg.write_text(ladder_svg(ladder), encoding="utf-8")
    except KeyError as error:
        fail(str(error.args[0]))
    except Exception as error:
        fail_on(error)
    raise click.exceptions.Exit(exit_status(analysis.capture.inputs))
