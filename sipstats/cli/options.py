"""Options several commands take, each declared once: the same spelling, type and help."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import click

from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.ports import parse_ports
from sipstats.checks import plain_time
from sipstats.errors import OptionError
from sipstats.vocabulary import CORRELATIONS

_F = TypeVar("_F", bound=Callable[..., object])


class TimeBound(click.ParamType):
    """``--since``/``--until``: ISO 8601 time (UTC by default) or ``+SECONDS`` offset.

    The value stays text, checked: :func:`sipstats.select.parse_time` reads it where the
    selection is made. Only a form :func:`sipstats.checks.plain_time` does not know loads
    pandas here, before the capture's reading starts.
    """

    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value)
        if plain_time(text):
            return text
        from sipstats.select import parse_time

        try:
            parse_time(text)
        except OptionError as error:
            self.fail(str(error), param, ctx)
        return text


class Ports(click.ParamType):
    """``--ports 5060,5080``: comma-separated port numbers (the option may repeat)."""

    name = "PORTS"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_ports(str(value))
        except OptionError as error:
            self.fail(str(error), param, ctx)


def joined_ports(groups: tuple[tuple[int, ...], ...]) -> tuple[int, ...] | None:
    """Every ``--ports`` given, in one tuple; None (any port) when there was none."""
    return tuple(port for group in groups for port in group) or None


#: ``--ports``: SIP on these ports only (repeatable, comma-separated).
ports_option = click.option(
    "--ports", type=Ports(), multiple=True, help="SIP ports, e.g. 5060,5080."
)

#: ``--duplicate-window``: the capture-duplicate rule, for every command that decodes captures.
duplicate_window_option = click.option(
    "--duplicate-window",
    type=click.FloatRange(min=0),
    default=DEFAULT_WINDOW_MS,
    show_default=True,
    metavar="MS",
    help="The same SIP bytes between the same endpoints within MS ms are one message (0: off).",
)

#: ``--correlation-header``: for every command that builds calls (B2BUA legs are linked by it).
correlation_option = click.option(
    "--correlation-header",
    type=click.Choice(CORRELATIONS),
    default="auto",
    show_default=True,
    help="Header that links a B2BUA's legs (auto: the first of X-CID, X-Call-ID, "
    "P-Charging-Vector icid-value present; none: do not link).",
)

#: ``-q``: the drill-down commands and ingest print only errors.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")

#: ``-o FILE`` of a command that writes one document, to standard output without it.
output_file_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)


def format_option(formats: Iterable[str]) -> Callable[[_F], _F]:
    """``--report FORMAT`` of a command that writes one document (default text)."""
    return click.option(
        "--report",
        "fmt",
        type=click.Choice(list(formats)),
        default="text",
        show_default=True,
        help="Output format.",
    )
