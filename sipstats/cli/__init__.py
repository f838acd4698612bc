"""Command line: ``sipstats CAPTURE...`` and its subcommands; a thin shell over the library.

Subcommands load lazily (click's documented lazy-group pattern): ``sipstats codes 486`` does
not import pandas' analysis stack, and the report does not import the catalogue command.
"""

from __future__ import annotations

import importlib
from typing import Final

import click

#: Subcommand name -> "module:attribute" of its click command.
SUBCOMMANDS: Final = {
    "calls": "sipstats.cli.calls:calls",
    "codes": "sipstats.cli.codes:codes",
    "diff": "sipstats.cli.diff:diff",
    "extract": "sipstats.cli.extract:extract",
    "flow": "sipstats.cli.flow:flow",
    "ingest": "sipstats.cli.ingest:ingest",
    "report": "sipstats.cli.report:report",
}


class _DefaultToReport(click.Group):
    """A group whose first argument is a subcommand name or, failing that, a report argument.

    ``sipstats capture.pcap --report html`` runs ``report``; ``sipstats codes 486`` runs
    ``codes``; ``sipstats --help`` shows the report's options (the command people run).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module, _, attribute = SUBCOMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in SUBCOMMANDS:
            args = ["report", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToReport, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Turn SIP packet captures into response, call and Retry-After statistics."""
