"""``sipstats ingest CAPTURE... --to DATASET/``: decode captures once into a Parquet dataset.

Exit status as for the report: 0 every input read, 1 some input damaged or unreadable (named
on stderr), 2 usage error, pyarrow missing, or nothing readable.
"""

from __future__ import annotations

from pathlib import Path

import click

from sipstats.cli import say
from sipstats.cli.options import duplicate_window_option, joined_ports, ports_option, quiet_option
from sipstats.cli.report import fail_on, warn_inputs


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option(
    "--to",
    "dataset",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset folder (created; a re-run adds only new or changed captures).",
)
@ports_option
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Captures decoded at once (default: one per core)."
)
@duplicate_window_option
@quiet_option
def ingest(
    captures: tuple[str, ...],
    dataset: Path,
    ports: tuple[tuple[int, ...], ...],
    jobs: int | None,
    duplicate_window: float,
    quiet: bool,
) -> None:
    """Decode CAPTURE files (files, folders, glob patterns) into a Parquet dataset.

    Report on it later like on a capture: sipstats DATASET/ --report html.
    """
    from sipstats.dataset import ingest as ingest_captures
    from sipstats.report import exit_status

    try:
        result = ingest_captures(
            list(captures),
            dataset,
            ports=joined_ports(ports),
            jobs=jobs,
            duplicate_window_ms=duplicate_window,
        )
    except Exception as error:
        fail_on(error)
    warn_inputs(result.decoded, quiet)
    if not quiet:
        say(
            f"{dataset}: {len(result.decoded)} capture(s) decoded, "
            f"{len(result.skipped)} already stored"
        )
    raise click.exceptions.Exit(exit_status(result.decoded))
