"""The call-selection options ``sipstats calls`` and ``sipstats extract`` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from sipstats.cli.options import TimeBound
from sipstats.vocabulary import OUTCOMES

_F = TypeVar("_F", bound=Callable[..., object])


def call_selection(command: _F) -> _F:
    """--outcome, --code, --call-id, --since, --until (each filter narrows the selection)."""
    options = (
        click.option(
            "--outcome",
            "outcomes",
            type=click.Choice(OUTCOMES),
            multiple=True,
            help="Calls with this outcome (repeatable).",
        ),
        click.option(
            "--code",
            "codes",
            type=click.IntRange(100, 699),
            multiple=True,
            help="Calls whose final status is CODE (repeatable).",
        ),
        click.option("--call-id", "call_ids", multiple=True, help="This Call-ID (repeatable)."),
        click.option(
            "--since",
            type=TimeBound(),
            help="Calls started at or after: ISO time (UTC) or +SECONDS.",
        ),
        click.option("--until", type=TimeBound(), help="Calls started before, same forms."),
    )
    for option in reversed(options):
        command = option(command)
    return command
