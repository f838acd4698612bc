"""``sipstats [OPTIONS] CAPTURE...``: read, select, analyse, render; errors become one clear line.

Exit status: 0 every input was read cleanly; 1 the report was written but some input was
damaged, skipped or without SIP (one line per file on stderr says what); 2 usage error or
nothing readable; 141 the output's reader went away (a closed pipe).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from click.core import ParameterSource

from sipstats import cli
from sipstats.checks import plain_interval
from sipstats.cli import output_closed, say
from sipstats.cli.options import (
    TimeBound,
    correlation_option,
    duplicate_window_option,
    joined_ports,
    ports_option,
)
from sipstats.cli.trunks import trunks_option
from sipstats.engines import ENGINES, Engine
from sipstats.errors import EXIT_USAGE, OptionError, SipstatsError
from sipstats.render import RENDERERS, load_renderers
from sipstats.render.labels import LANGS

if TYPE_CHECKING:
    from rich.live import Live

    from sipstats.analyze import Analysis
    from sipstats.analyze.trunks import Trunks
    from sipstats.capture.summary import InputSummary
    from sipstats.messages import Capture
    from sipstats.report import ReportHooks
    from sipstats.vocabulary import Correlation
    from sipstats.workers import SharedRead


def _checked(
    check: str, plain: Callable[[str], bool] | None = None
) -> Callable[[click.Context, click.Parameter, str], str]:
    """A click callback that runs the library's check ``"module:function"`` on a value given
    on the command line, so a bad one is a usage error. The module is imported then, not for
    ``--help``, a default or a value ``plain`` accepts without pandas (the capture is read
    while pandas loads, and decoding workers forked after it would carry it)."""
    module, _, name = check.partition(":")

    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        given = ctx.get_parameter_source(param.name or "") is not ParameterSource.DEFAULT
        if value is not None and given and not (plain is not None and plain(value)):
            try:
                getattr(importlib.import_module(module), name)(value)
            except OptionError as error:
                raise click.BadParameter(str(error)) from None
        return value

    return callback


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
    from importlib import metadata  # 10-40 ms of start-up that only --version needs

    try:
        return metadata.version("sipstats")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: the package metadata is read only when it is asked for (reading it
    costs every run's start-up 5-25 ms)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"sipstats {_version()}")
        ctx.exit()


def _stderr_is_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()  # None: started with ``2>&-``


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int, int], None] | None]:
    """A rich progress bar on stderr: bytes read and packets/s, from ``read_capture``'s callback."""
    if not enabled:
        yield None
        return
    # rich is imported only when a bar is shown (stderr is a terminal): start-up stays short
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(file=sys.stderr, force_terminal=True)
    columns = (
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[packets]:,} packets, {task.fields[rate]:,.0f}/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar, _held_at_fork(bar.live):
        task = bar.add_task("read", total=None, packets=0, rate=0.0)

        def update(done: int, total: int, packets: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = packets / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total or None, packets=packets, rate=rate)

        yield update


def _all_files(captures: Sequence[str]) -> bool:
    """Whether every capture argument is a file: no folder (a dataset) or pattern among them."""
    return all(Path(capture).is_file() for capture in captures)


#: Bytes of capture files from which ``str`` in Arrow pays for loading pyarrow: Arrow keeps
#: a text in its bytes and an offset, Python in an object of about 50 bytes more, and the
#: messages table holds a text per Call-ID, tag and branch. Measured on the benchmark's
#: captures (json, ``--jobs 1``): without pyarrow the peak is 20 MiB lower at 383 MB (708k
#: SIP messages) and 73 MiB higher at 1.5 GB (2.8M); the two cross at about 620 MB.
ARROW_TEXT_FROM = 512 * 2**20


def _small_capture_files(captures: Sequence[str]) -> bool:
    """Whether every capture argument is a file (no folder, which may be a dataset, nor a
    pattern) and together they hold less than :data:`ARROW_TEXT_FROM` bytes."""
    return _all_files(captures) and sum(Path(c).stat().st_size for c in captures) < ARROW_TEXT_FROM


@contextmanager
def _pyarrow_hidden(hidden: bool) -> Iterator[None]:
    """pyarrow hidden from pandas while it loads (in this thread or in the one reading early),
    when ``hidden`` and neither is loaded yet. pandas 3 imports pyarrow as it loads, when
    installed (about 0.05 s of CPU and 50 MiB), only to keep ``str`` columns in Arrow, which
    pays for itself only on large captures (:data:`ARROW_TEXT_FROM`). A report of capture
    files on the local engine reads and writes no Parquet, and its tables are the same with
    ``str`` in Python objects, as on an install without pyarrow: every rule of the analysis
    that folds case or reads Unicode runs on Python ``str``
    (:func:`sipstats.analyze.keys.per_category`). Only the
    ``sipstats`` program does this: a caller of :func:`sipstats.cli.main` keeps the pandas it
    would have had."""
    if not hidden or "pandas" in sys.modules or "pyarrow" in sys.modules:
        yield
        return
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # pandas' probe: not installed
    try:
        yield
    finally:
        del sys.modules["pyarrow"]  # a later import finds it, if anything asks


@contextmanager
def _read_early(
    captures: Sequence[str],
    ports: tuple[tuple[int, ...], ...],
    duplicate_window: float,
    engine: Engine,
    jobs: int | None,
    progress: bool,
) -> Iterator[SharedRead | None]:
    """The capture files being read in a thread (with the progress bar) while the caller
    imports pandas and the analysis (then helps read, :class:`sipstats.workers.SharedRead`),
    when that can overlap: the local engine, capture files
    (a folder may be a dataset), and ``--jobs`` that uses more than one core but no pool of
    processes (forked while another thread imports, a child could inherit a held lock).
    None otherwise: the report reads them itself."""
    from sipstats.messages import job_count
    from sipstats.workers import MIN_POOL_PROCESSES, SharedRead, read_for_report

    overlap = 1 < job_count(jobs) < MIN_POOL_PROCESSES
    if engine != "local" or not overlap or not _all_files(captures):
        yield None
        return
    with _progress_bar(progress) as tick:
        read = partial(
            read_for_report, list(captures), joined_ports(ports), duplicate_window, jobs, tick
        )
        yield SharedRead(read)


@contextmanager
def _spinner(enabled: bool, what: str) -> Iterator[None]:
    """A transient spinner on stderr for a stage that reports no progress of its own."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner

    console = Console(file=sys.stderr, force_terminal=True)
    spinner = Spinner("dots", text=what, style="status.spinner")  # what Console.status shows
    live = Live(spinner, console=console, refresh_per_second=12.5, transient=True)
    with live, _held_at_fork(live):
        yield


#: The live displays running (a progress bar, a spinner).
_SHOWN: list[Live] = []


class _Holds(threading.local):
    """The displays a thread holds while it forks: its own list, so that two threads forking
    at once let go of what each took (the second waits for the first to let go)."""

    held: tuple[Live, ...] = ()


_HOLDS = _Holds()


@contextmanager
def _held_at_fork(live: Live) -> Iterator[None]:
    """``live``, running, held while this process forks (its refresh thread kept out)."""
    _SHOWN.append(live)
    try:
        yield
    finally:
        _SHOWN.remove(live)


def _hold_displays() -> None:
    """Before a fork: wait until no display's refresh thread is drawing and keep it from
    starting, so that the child inherits no lock held by a thread it does not have (its
    first write to stderr, or its exit, which flushes stderr, would wait forever)."""
    _HOLDS.held = ()
    for live in tuple(_SHOWN):
        live._lock.acquire()  # the lock its refresh thread draws under
        _HOLDS.held += (live,)  # as each is taken: interrupted, the hook lets go of those


def _let_go_displays() -> None:
    """After a fork, in the parent and in the child (the thread that forked): the displays
    it held are let go."""
    for live in reversed(_HOLDS.held):
        live._lock.release()
    _HOLDS.held = ()


if hasattr(os, "register_at_fork"):  # POSIX: wherever a report forks
    os.register_at_fork(
        before=_hold_displays, after_in_parent=_let_go_displays, after_in_child=_let_go_displays
    )


def warn_inputs(inputs: Sequence[InputSummary], quiet: bool) -> None:
    """One stderr line per damaged or unreadable input, and one per input read without
    finding SIP (with what it held instead): the inputs that make the exit status 1."""
    if quiet:
        return
    from sipstats.render.tables import input_problems, no_sip_note

    for summary in inputs:
        if summary.damaged:
            say(f"sipstats: warning: {summary.file}: {input_problems(summary)}")
    for summary in inputs:
        if summary.no_sip is not None:
            say(f"sipstats: warning: {summary.file}: {no_sip_note(summary)}")


def warn_selection(capture: Capture, quiet: bool) -> bool:
    """One stderr line when filters were given and no SIP message passed them; True then."""
    if not capture.selected_nothing:
        return False
    if not quiet:
        given = ", ".join(f"--{name} {value}" for name, value in capture.selection.filters.items())
        say(f"sipstats: warning: {given}: no SIP message matched")
    return True


def _warn(capture: Capture, quiet: bool) -> None:
    warn_inputs(capture.inputs, quiet)
    warn_selection(capture, quiet)


def _hooks(quiet: bool, progress: bool, formats: Sequence[str]) -> ReportHooks:
    """Progress bar, warnings, spinners and "wrote" lines (on stderr), as the options ask."""
    from sipstats.report import ReportHooks

    return ReportHooks(
        reading=lambda: _progress_bar(progress),
        read=lambda capture: _warn(capture, quiet),
        stage=lambda what: _spinner(progress, what),
        wrote=None if quiet else say,
        analysed=partial(_frozen, formats) if cli.own_process else None,
    )


def _frozen(formats: Sequence[str], analysis: Analysis) -> None:
    """Every object made so far, the analysis's among them, left out of the cycle collector's
    collections from now on (:func:`gc.freeze`), in the command's own process only: there the
    analysis lives until the process ends, and writing the reports and drawing the figures set
    off full collections that walk all its objects (its object columns' elements too) and free
    none of them. The renderers of ``formats`` are imported first, with the collector paused,
    unless start-up did (``--jobs`` 1): importing matplotlib and Jinja2 with it running set
    off collections that walked their new objects for nothing (23-36 ms CPU).
    The renderers' objects are frozen before the pause ends: else the collection the next
    object sets off walked them all (16-17 ms CPU on the RTP-heavy benchmark capture)."""
    from sipstats.messages import collector_paused

    with collector_paused():
        load_renderers(formats)
        gc.freeze()


def _past_start_up() -> None:
    """The objects start-up made moved into the cycle collector's oldest generation at once,
    as if they had survived its young collections: made while it was paused
    (:func:`sipstats.messages.collector_paused`), the modules, classes and functions of
    pandas, numpy and pyarrow were all still young, and the first two collections after the
    pause walked them all for next to nothing (55-58 ms and 17-25 ms CPU on the benchmark
    captures). In the command's own process only: ``gc.unfreeze`` would also thaw what a
    calling program froze."""
    gc.freeze()
    gc.unfreeze()


def error_line(error: Exception) -> str:
    """The one stderr line for an error: what failed, without a traceback."""
    if isinstance(error, OSError):
        return f"{error.filename}: {error.strerror}" if error.filename else str(error)
    if isinstance(error, SipstatsError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error} (run with --debug for details)"


def fail(message: str) -> NoReturn:
    """One error line on stderr, then the usage-error exit status."""
    say(f"sipstats: error: {message}")
    raise click.exceptions.Exit(EXIT_USAGE)


def fail_on(error: Exception) -> NoReturn:
    """A command's failure: its error line (:func:`fail`), or a quiet end when what failed
    is a write to a reader that went away (:func:`sipstats.cli.output_closed`)."""
    if isinstance(error, BrokenPipeError):
        output_closed()
    fail(error_line(error))


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
@ports_option
@click.option("--since", type=TimeBound(), help="Start of the window: ISO time (UTC) or +SECONDS.")
@click.option("--until", type=TimeBound(), help="End of the window (exclusive), same forms.")
@click.option(
    "--peer",
    metavar="ADDR[:PORT]",
    callback=_checked("sipstats.checks:parse_peer"),
    help="Only traffic to/from ADDR.",
)
@click.option(
    "--interval",
    default="auto",
    show_default=True,
    callback=_checked("sipstats.analyze.breakdown:check_interval", plain_interval),
    help="Timeline bucket (pandas offset: 10s, 1min, 1h; auto: at most 60 for the capture).",
)
@correlation_option
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
    help="Cores to use (default: all): report tables and figures in a fork from 2; files, "
    "parts of large pcap files and Call-ID partitions in worker processes from 3.",
)
@trunks_option
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr; no progress bar.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def report(
    captures: tuple[str, ...],
    formats: tuple[str, ...],
    output: str | None,
    lang: str,
    ports: tuple[tuple[int, ...], ...],
    since: str | None,
    until: str | None,
    peer: str | None,
    interval: str,
    correlation_header: Correlation,
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
        show_progress = not (quiet or no_progress) and _stderr_is_terminal()
        from sipstats.messages import collector_paused

        with (
            _pyarrow_hidden(
                cli.own_process and engine == "local" and _small_capture_files(captures)
            ),
            _read_early(captures, ports, duplicate_window, engine, jobs, show_progress) as early,
            collector_paused(),  # start-up: importing pandas sets off collections that find nothing
        ):
            from sipstats.report import ReportRequest, run_report  # while ``early`` reads

            request = ReportRequest(
                captures,
                formats=formats,
                output=output,
                lang="zh" if lang == "zh" else "en",
                top=top,
                ports=joined_ports(ports),
                since=since,
                until=until,
                peer=peer,
                interval=interval,
                correlation_header=correlation_header,
                duplicate_window_ms=duplicate_window,
                plots=plots,
                engine=engine,
                scheduler=scheduler,
                jobs=jobs,
                trunks=trunks,
            )
            decoded: list[Capture] = []  # handed over: the report frees what it no longer needs
            if early is not None:
                load_renderers(request.formats)  # matplotlib too for HTML, while ``early`` reads
                decoded.append(early.result())
            if cli.own_process:
                _past_start_up()
        hooks = _hooks(quiet, show_progress, request.formats)
        status = run_report(request, hooks, decoded=decoded.pop if decoded else None).exit_status
    except Exception as error:
        if debug and not isinstance(error, BrokenPipeError):
            raise
        if debug:  # the traceback, then 141 as without --debug
            say(traceback.format_exc().rstrip("\n"))
        fail_on(error)
    raise click.exceptions.Exit(status)
