"""Command line: ``sipstats CAPTURE... [OPTIONS]`` and ``sipstats codes``; a thin shell over the library."""

from __future__ import annotations

import click

from sipstats.cli.codes import codes


class _DefaultToReport(click.Group):
    """A group whose first argument is a subcommand name or, failing that, a capture path.

    ``sipstats capture.pcap`` runs the report; ``sipstats codes 486`` runs ``codes``.
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return "report", self.commands["report"], args


@click.group(cls=_DefaultToReport, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sipstats")
def main() -> None:
    """Turn SIP packet captures into response, call and Retry-After statistics."""


main.add_command(codes)
