"""``--trunks FILE``: the option every command that names peers shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sipstats.analyze.trunks import Trunks


def _load(ctx: click.Context, param: click.Parameter, value: str | None) -> Trunks | None:
    if value is None:
        return None
    from sipstats.analyze.trunks import load_trunks  # when a file is given: --help loads no pandas

    try:
        return load_trunks(value)
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error)) from None


trunks_option = click.option(
    "--trunks",
    type=click.Path(dir_okay=False),
    callback=_load,
    help="CSV of 'CIDR or IP[:port],name' lines: peers are named in every table.",
)
