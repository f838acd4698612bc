"""``sipstats extract CAPTURE... (--call-id X | --outcome O | --code N | --since T) -o F``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from sipstats.cli import say
from sipstats.cli.calls import load_analysis
from sipstats.cli.options import correlation_option, ports_option, quiet_option
from sipstats.cli.report import fail_on
from sipstats.cli.selection import call_selection
from sipstats.errors import OptionError, ReportError

if TYPE_CHECKING:
    from sipstats.vocabulary import Correlation


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@call_selection
@click.option(
    "--with-media", is_flag=True, help="Add RTP/RTCP to and from the SDP-negotiated ports."
)
@ports_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Capture file to write.",
)
@quiet_option
@correlation_option
def extract(
    captures: tuple[str, ...],
    call_ids: tuple[str, ...],
    outcomes: tuple[str, ...],
    codes: tuple[int, ...],
    since: str | None,
    until: str | None,
    with_media: bool,
    ports: tuple[tuple[int, ...], ...],
    output: Path,
    quiet: bool,
    correlation_header: Correlation,
) -> None:
    """Write the original packets of the selected calls to a pcap (pcapng for mixed links).

    Every frame that carried their messages is written: all legs with the Call-ID and the
    B2BUA legs linked to the call by a correlation header, every TCP segment and IP fragment,
    HEP packets as captured. CAPTURE may be a dataset (sipstats
    ingest): the packets are read again from the capture files it was made from, which must
    still be where and as they were.
    Exit status: 0 all input read; 1 written but some input damaged; 2 nothing selected.
    """
    from sipstats.dataset import is_dataset, unavailable_sources
    from sipstats.drill.calls import select_calls
    from sipstats.drill.extract import extract_calls
    from sipstats.report import exit_status

    try:
        if not (call_ids or outcomes or codes or since is not None or until is not None):
            raise OptionError("choose calls: --call-id, --outcome, --code, --since or --until")
        analysis = load_analysis(captures, ports, quiet, correlation_header=correlation_header)
        selected = select_calls(
            analysis,
            outcomes=outcomes,
            codes=codes,
            call_ids=call_ids,
            since=since,
            until=until,
        )
        if selected.empty:
            raise ReportError("no call matches the selection; nothing written")
        # A dataset holds no packets: they are read again from the captures ingest read.
        unavailable = unavailable_sources(captures[0]) if is_dataset(captures[0]) else None
        result = extract_calls(
            analysis, selected, output, with_media=with_media, unavailable=unavailable
        )
        for problem in result.problems:
            say(f"sipstats: warning: {problem}")
        if not quiet:
            media = f" ({result.media_packets} RTP/RTCP)" if with_media else ""
            legs = f" and {result.linked_legs} linked B2BUA legs" if result.linked_legs else ""
            say(
                f"wrote {result.packets} packets{media} of {result.calls} calls{legs} "
                f"({result.messages} SIP messages) to {output} ({result.format})"
            )
    except Exception as error:
        fail_on(error)
    raise click.exceptions.Exit(exit_status(analysis.capture.inputs, bool(result.problems)))
