"""``sipstats [OPTIONS] CAPTURE...``: read, select, analyse, render; errors become one clear line.

Exit status: 0 every input was read cleanly; 1 the report was written but some input was
damaged, skipped or without SIP (one line per file on stderr says what); 2 usage error or
nothing readable.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final, NoReturn

import click
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from sipstats.analyze import Analysis, analyze
from sipstats.analyze.breakdown import check_interval
from sipstats.analyze.trunks import Trunks, apply_trunks
from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.ports import parse_ports
from sipstats.capture.summary import InputSummary
from sipstats.cli.trunks import trunks_option
from sipstats.dataset import is_dataset, read_dataset
from sipstats.engines import ENGINES, Engine
from sipstats.engines.dask_cluster import analyze_on_dask
from sipstats.errors import OptionError, SipstatsError
from sipstats.messages import capture_stem, read_capture
from sipstats.render import RENDERERS, RenderOptions, format_of, write_report
from sipstats.render.labels import LANGS
from sipstats.render.tables import input_problems, no_sip_note
from sipstats.render.text import WIDTH, print_report
from sipstats.select import filter_capture, parse_peer, parse_time

EXIT_OK: Final = 0
EXIT_DAMAGED: Final = 1
EXIT_USAGE: Final = 2


class _Failure(Exception):
    """Stop with one line on stderr and exit status 2."""


class _TimeBound(click.ParamType):
    """``--since``/``--until``: ISO 8601 time (UTC by default) or ``+SECONDS`` offset."""

    name = "TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> pd.Timestamp | pd.Timedelta:
        if isinstance(value, pd.Timestamp | pd.Timedelta):
            return value
        try:
            return parse_time(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


#: ``--duplicate-window``: the capture-duplicate rule, for every command that decodes captures.
duplicate_window_option = click.option(
    "--duplicate-window",
    type=click.FloatRange(min=0),
    default=DEFAULT_WINDOW_MS,
    show_default=True,
    metavar="MS",
    help="The same SIP bytes between the same endpoints within MS ms are one message (0: off).",
)


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


def _interval(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_interval(value)
    except OptionError as error:
        raise click.BadParameter(str(error)) from None


def _peer(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_peer(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


class _ReportContext(click.Context):
    """The report is what ``sipstats`` runs: usage lines and error hints name the program.

    Without this, click's hint after a usage error reads ``Try 'sipstats report --help'``
    although the user typed ``sipstats FILE`` (the group inserted ``report``).
    """

    @property
    def command_path(self) -> str:
        return self.find_root().info_name or "sipstats"


class _ReportCommand(click.Command):
    """The report is what ``sipstats`` runs by default: its usage line says so.

    click's usage line and error hint both read ``ctx.command_path``, which the context
    class answers with the program name.
    """

    context_class = _ReportContext


def _version() -> str:
    try:
        return metadata.version("sipstats")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@dataclass(frozen=True)
class _Plan:
    """Where each requested report goes: a path, or None for standard output."""

    targets: list[tuple[str, Path | None]]

    @property
    def uses_stdout(self) -> bool:
        return any(path is None for _, path in self.targets)


def _stem(captures: Sequence[str]) -> str:
    """Name for default output files: the capture's name without capture suffixes."""
    if len(captures) != 1 or not Path(captures[0]).is_file():
        return "sipstats"
    return capture_stem(captures)


def choose_formats(formats: Sequence[str], output: str | None) -> list[str]:
    """The formats to write: those asked for, else the one ``-o``'s suffix names, else text.

    A single document format whose ``-o`` file names another format (``--report json -o
    x.html``) is refused rather than written under a misleading name.
    """
    named = None if output is None or output == "-" else format_of(output)
    chosen = list(dict.fromkeys(formats))
    if not chosen:
        return [named or "text"]
    single = len(chosen) == 1 and not RENDERERS[chosen[0]].is_directory
    if single and named is not None and named != chosen[0]:
        raise _Failure(f"{output}: the name says {named} but --report {chosen[0]} was asked")
    return chosen


def plan_outputs(formats: Sequence[str], output_arg: str | None, stem: str) -> _Plan:
    """Decide where each report is written.

    One document format: ``-o FILE`` (or into ``-o DIR`` when DIR exists or ends with ``/``);
    without ``-o`` (or with ``-o -``) it goes to standard output.
    Several formats, or CSV (one file per table): ``-o`` is a directory (created); without it,
    the current directory (CSV into ``./<stem>.sipstats-csv/``).
    """
    single = len(formats) == 1 and not RENDERERS[formats[0]].is_directory
    if single:
        fmt = formats[0]
        name = f"{stem}.sipstats{RENDERERS[fmt].suffix}"
        if output_arg is None or output_arg == "-":
            return _Plan([(fmt, None)])
        target = Path(output_arg)
        into_directory = target.is_dir() or output_arg.endswith(("/", os.sep))
        return _Plan([(fmt, target / name if into_directory else target)])
    output = None if output_arg is None else Path(output_arg)
    if output is not None and output.exists() and not output.is_dir():
        raise _Failure(f"{output}: not a directory (several reports or CSV need a directory)")
    targets: list[tuple[str, Path | None]] = []
    for fmt in formats:
        if RENDERERS[fmt].is_directory:
            path = output if output is not None else Path(f"{stem}.sipstats-{fmt}")
        elif fmt == "text" and output is None:
            path = None  # the terminal report still goes to the terminal
        else:
            path = (output or Path()) / f"{stem}.sipstats{RENDERERS[fmt].suffix}"
        targets.append((fmt, path))
    return _Plan(targets)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int, int], None] | None]:
    """A rich progress bar on stderr: bytes read and packets/s, from ``read_capture``'s callback."""
    if not enabled:
        yield None
        return
    console = Console(file=sys.stderr, force_terminal=True)
    columns = (
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[packets]:,} packets, {task.fields[rate]:,.0f}/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("read", total=None, packets=0, rate=0.0)

        def update(done: int, total: int, packets: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = packets / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total or None, packets=packets, rate=rate)

        yield update


@contextmanager
def _spinner(enabled: bool, what: str) -> Iterator[None]:
    """A transient spinner on stderr for a stage that reports no progress of its own."""
    if not enabled:
        yield
        return
    with Console(file=sys.stderr, force_terminal=True).status(what):
        yield


def warn_inputs(inputs: Sequence[InputSummary], quiet: bool) -> bool:
    """One stderr line per damaged or unreadable input, and one per input read without
    finding SIP (with what it held instead); True when there was any."""
    damaged = [summary for summary in inputs if summary.damaged]
    without_sip = [summary for summary in inputs if summary.no_sip is not None]
    if not quiet:
        for summary in damaged:
            click.echo(f"sipstats: warning: {summary.file}: {input_problems(summary)}", err=True)
        for summary in without_sip:
            click.echo(f"sipstats: warning: {summary.file}: {no_sip_note(summary)}", err=True)
    return bool(damaged or without_sip)


def _readable(inputs: Sequence[InputSummary]) -> bool:
    """At least one input was a capture we could read (even an empty one)."""
    return any(summary.format and (summary.packets or not summary.errors) for summary in inputs)


def _terminal_console() -> Console:
    stdout = sys.stdout
    if stdout.isatty():
        console = Console(file=stdout)
        console.width = min(console.width, WIDTH)
        return console
    return Console(file=stdout, width=WIDTH, force_terminal=False, color_system=None)


def _emit(analysis: Analysis, plan: _Plan, options: RenderOptions, quiet: bool) -> None:
    for fmt, path in plan.targets:
        renderer = RENDERERS[fmt]
        if path is None:
            if fmt == "text":
                print_report(analysis, _terminal_console(), options)
            else:
                assert renderer.render is not None
                click.echo(renderer.render(analysis, options), nl=False)
            continue
        written = write_report(analysis, fmt, path, options)
        if not quiet:
            shown = path if renderer.is_directory else written[0]
            click.echo(f"wrote {fmt} report: {shown}", err=True)


def _run(
    captures: Sequence[str],
    *,
    formats: Sequence[str],
    output: str | None,
    options: RenderOptions,
    ports: tuple[int, ...] | None,
    since: pd.Timestamp | pd.Timedelta | None,
    until: pd.Timestamp | pd.Timedelta | None,
    peer: str | None,
    interval: str,
    engine: Engine,
    scheduler: str | None,
    plots: Path | None,
    quiet: bool,
    progress: bool,
    duplicate_window: float,
    jobs: int | None = None,
    trunks: Trunks | None = None,
) -> int:
    plan = plan_outputs(formats, output, _stem(captures))
    from_dataset = any(is_dataset(path) for path in captures)
    if from_dataset and (len(captures) != 1 or ports or duplicate_window != DEFAULT_WINDOW_MS):
        raise _Failure(
            "a dataset is read alone and without --ports or --duplicate-window "
            "(give those to ingest)"
        )
    if scheduler is not None and engine != "dask":
        raise _Failure("--scheduler needs --engine dask")
    if engine == "dask":
        if from_dataset:
            raise _Failure("--engine dask reads capture files; report on a dataset without it")
        with _spinner(progress, "analysing on the Dask cluster"):
            analysis = analyze_on_dask(
                list(captures),
                scheduler=scheduler,
                ports=ports,
                since=since,
                until=until,
                peer=peer,
                interval=interval,
                duplicate_window_ms=duplicate_window,
            )
        inputs = analysis.capture.inputs
    else:
        if from_dataset:
            with _spinner(progress, "reading the dataset"):
                # The window and peer select while reading: only the row groups they need.
                capture = read_dataset(captures[0], since=since, until=until, peer=peer)
        else:
            with _progress_bar(progress) as update:
                capture = read_capture(
                    list(captures),
                    ports=ports,
                    progress=update,
                    duplicate_window_ms=duplicate_window,
                    jobs=jobs,
                )
            capture = filter_capture(capture, since=since, until=until, peer=peer)
        inputs = capture.inputs
    damaged = warn_inputs(inputs, quiet)
    if not _readable(inputs):
        raise _Failure("nothing readable: no input is a capture file sipstats can read")
    if engine != "dask":
        with _spinner(progress, "analysing"):
            analysis = analyze(capture, interval=interval)
    if analysis.capture.selected_nothing:
        damaged = True
        if not quiet:
            given = ", ".join(
                f"--{name} {value}" for name, value in analysis.capture.selection.filters.items()
            )
            click.echo(f"sipstats: warning: {given}: no SIP message matched", err=True)
    if trunks is not None:
        analysis = apply_trunks(analysis, trunks)
    _emit(analysis, plan, options, quiet)
    if plots is not None:
        from sipstats.render.plots import save_figures  # matplotlib only when figures are asked for

        written = save_figures(analysis, plots, lang=options.lang)
        if not quiet:
            click.echo(f"wrote {len(written)} figure files to {plots}", err=True)
    return EXIT_DAMAGED if damaged else EXIT_OK


def error_line(error: Exception) -> str:
    """The one stderr line for an error: what failed, without a traceback."""
    if isinstance(error, OSError):
        return f"{error.filename}: {error.strerror}" if error.filename else str(error)
    if isinstance(error, _Failure | SipstatsError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error} (run with --debug for details)"


def fail(message: str) -> NoReturn:
    click.echo(f"sipstats: error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


@click.command(
    cls=_ReportCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Also: 'sipstats codes CODE' explains a status code (sipstats codes --help).",
)
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option(
    "--report",
    "formats",
    type=click.Choice(list(RENDERERS)),
    multiple=True,
    help="Report format; repeat for several. Default: text to the terminal.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Output file, or directory for several reports or CSV ('-': standard output).",
)
@click.option(
    "--lang", type=click.Choice(LANGS), default="en", show_default=True, help="Report language."
)
@click.option("--ports", type=Ports(), multiple=True, help="SIP ports, e.g. 5060,5080.")
@click.option("--since", type=_TimeBound(), help="Start of the window: ISO time (UTC) or +SECONDS.")
@click.option("--until", type=_TimeBound(), help="End of the window (exclusive), same forms.")
@click.option("--peer", metavar="ADDR[:PORT]", callback=_peer, help="Only traffic to/from ADDR.")
@click.option(
    "--interval",
    default="auto",
    show_default=True,
    callback=_interval,
    help="Timeline bucket (pandas offset: 10s, 1min, 1h; auto: at most 60 for the capture).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="Where the analysis runs: this process, or a Dask cluster (the 'dask' extra).",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Dask scheduler to use with --engine dask (default: a local cluster for the run).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Rows in ranked tables.",
)
@duplicate_window_option
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write every figure as PNG and SVG into this directory.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes decoding at once (files, parts of large pcap files). Default: one per core.",
)
@trunks_option
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.version_option(version=_version(), prog_name="sipstats", message="%(prog)s %(version)s")
def report(
    captures: tuple[str, ...],
    formats: tuple[str, ...],
    output: str | None,
    lang: str,
    ports: tuple[tuple[int, ...], ...],
    since: pd.Timestamp | pd.Timedelta | None,
    until: pd.Timestamp | pd.Timedelta | None,
    peer: str | None,
    interval: str,
    engine: Engine,
    scheduler: str | None,
    top: int,
    duplicate_window: float,
    plots: Path | None,
    jobs: int | None,
    trunks: Trunks | None,
    quiet: bool,
    no_progress: bool,
    debug: bool,
) -> None:
    """Statistics of SIP responses, calls and Retry-After in CAPTURE files.

    CAPTURE: pcap/pcapng files (also .gz/.bz2/.xz), directories or glob patterns.
    Exit status: 0 all input read; 1 report written but some input damaged, skipped or
    without SIP; 2 usage error or nothing readable.
    """
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        status = _run(
            captures,
            formats=choose_formats(formats, output),
            output=output,
            options=RenderOptions(lang="zh" if lang == "zh" else "en", top=top),
            ports=tuple(p for group in ports for p in group) or None,
            since=since,
            until=until,
            peer=peer,
            interval=interval,
            engine=engine,
            scheduler=scheduler,
            plots=plots,
            quiet=quiet,
            duplicate_window=duplicate_window,
            progress=not (quiet or no_progress) and _stderr_is_terminal(),
            jobs=jobs,
            trunks=trunks,
        )
    except Exception as error:
        if debug:
            raise
        fail(error_line(error))
    raise click.exceptions.Exit(status)
