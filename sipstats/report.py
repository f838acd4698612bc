"""Report API: capture paths + options -> Analysis -> reports; the CLI and notebooks call it.

Three entry points, each a superset of the one before::

    capture = read_selected(["sbc.pcap"], ports=[5060], since="+60", peer="10.0.0.5")
    analysis = load(["sbc.pcap"], since="+60", interval="10s")      # read_selected + analyze
    result = run_report(ReportRequest(["sbc.pcap"], formats=("html", "json"), output="out/"))

Every option is checked before a byte is read (:class:`OptionError`, a ``ValueError``), with
the same rules and messages as the command line's usage errors. A run where no input could be
read raises :class:`ReportError`; damaged but readable input is counted, not raised, and
:attr:`ReportResult.exit_status` says 1 for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sipstats.analyze import Analysis, analyze
from sipstats.analyze.b2bua import Correlation, check_correlation
from sipstats.analyze.breakdown import check_interval
from sipstats.analyze.trunks import Trunks, apply_trunks
from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.ports import port_filter
from sipstats.capture.summary import InputSummary
from sipstats.checks import parse_peer
from sipstats.dataset import is_dataset, read_dataset
from sipstats.engines import ENGINES, Engine
from sipstats.errors import EXIT_DAMAGED, EXIT_OK, EXIT_USAGE, OptionError, ReportError
from sipstats.messages import Capture, Progress, capture_stem, job_count
from sipstats.render import RENDERERS, RenderOptions, format_of, write_report
from sipstats.render.labels import LANGS, Lang
from sipstats.select import Bound, filter_capture, time_bound
from sipstats.workers import read_for_report

__all__ = [
    "EXIT_DAMAGED",
    "EXIT_OK",
    "EXIT_USAGE",
    "OutputPlan",
    "ReportHooks",
    "ReportRequest",
    "ReportResult",
    "choose_formats",
    "exit_status",
    "load",
    "plan_outputs",
    "read_selected",
    "run_report",
]


def require_readable(inputs: Sequence[InputSummary]) -> None:
    """:class:`ReportError` unless an input is a capture sipstats could read (even an empty
    one): the run has nothing to report on, and every command exits 2."""
    if not any(summary.readable for summary in inputs):
        raise ReportError("nothing readable: no input is a capture file sipstats can read")


def exit_status(inputs: Iterable[InputSummary], *also: bool) -> int:
    """The exit status of a command that wrote its output: :data:`EXIT_DAMAGED` when an input
    was damaged, unreadable or without SIP (:attr:`InputSummary.flagged`) or any of ``also``
    holds (filters that matched nothing, packets that could not be written); else
    :data:`EXIT_OK`. The report, ingest and the drill-down commands all answer with it."""
    return EXIT_DAMAGED if any(s.flagged for s in inputs) or any(also) else EXIT_OK


def read_selected(
    captures: str | Path | Iterable[str | Path],
    *,
    ports: Iterable[int | str] | None = None,
    since: Bound | str = None,
    until: Bound | str = None,
    peer: str | None = None,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> Capture:
    """Read ``captures`` and keep the selected traffic (:func:`sipstats.select.filter_capture`).

    ``captures`` are capture files, folders and glob patterns, or one dataset folder written
    by :func:`sipstats.ingest` (read with the selection pushed down). Options are checked
    first (:class:`OptionError`). :class:`ReportError` when no input is a readable capture;
    a damaged one is counted in ``Capture.inputs``. ``duplicate_window_ms`` and ``jobs``: see
    :func:`sipstats.read_capture` (a dataset was deduplicated when it was ingested).
    """
    request = ReportRequest(
        [captures] if isinstance(captures, str | Path) else list(captures),
        ports=ports,
        since=since,
        until=until,
        peer=peer,
        duplicate_window_ms=duplicate_window_ms,
        jobs=jobs,
    )
    capture = _read(request, progress)
    require_readable(capture.inputs)
    return capture


def load(
    captures: str | Path | Iterable[str | Path],
    *,
    ports: Iterable[int | str] | None = None,
    since: Bound | str = None,
    until: Bound | str = None,
    peer: str | None = None,
    interval: str = "auto",
    correlation_header: Correlation = "auto",
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    engine: Engine = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    trunks: Trunks | None = None,
) -> Analysis:
    """:func:`read_selected` then :func:`sipstats.analyze` (or the Dask engine), every option
    checked first; ``trunks`` relabels the peers (:func:`sipstats.analyze.trunks.apply_trunks`)."""
    request = ReportRequest(
        [captures] if isinstance(captures, str | Path) else list(captures),
        ports=ports,
        since=since,
        until=until,
        peer=peer,
        interval=interval,
        correlation_header=correlation_header,
        duplicate_window_ms=duplicate_window_ms,
        engine=engine,
        scheduler=scheduler,
        jobs=jobs,
        trunks=trunks,
    )
    return _analyse(request, ReportHooks(), every_message=True)


@dataclass(frozen=True)
class OutputPlan:
    """Where each requested report goes: a path, or None for standard output."""

    targets: list[tuple[str, Path | None]]

    @property
    def uses_stdout(self) -> bool:
        return any(path is None for _, path in self.targets)


def output_stem(captures: Sequence[str | Path]) -> str:
    """Name for default output files: the one capture file's name without capture suffixes."""
    if len(captures) != 1 or not Path(captures[0]).is_file():
        return "sipstats"
    return capture_stem(captures)


def choose_formats(formats: Sequence[str], output: str | None) -> tuple[str, ...]:
    """The formats to write: those asked for, else the one ``output``'s suffix names, else text.

    A single document format whose ``output`` file names another format (``--report json -o
    x.html``) is refused rather than written under a misleading name; so is ``"-"`` (standard
    output) for anything but a single document, which would be written into a directory
    named ``-``.
    """
    named = None if output is None or output == "-" else format_of(output)
    chosen = tuple(dict.fromkeys(formats))
    if not chosen:
        return (named or "text",)
    if _one_document(chosen) and named is not None and named != chosen[0]:
        raise OptionError(f"{output}: the name says {named} but --report {chosen[0]} was asked")
    _check_standard_output(chosen, output)
    return chosen


def _one_document(formats: Sequence[str]) -> bool:
    """Whether ``formats`` make one document (one format, not one file per table)."""
    return len(formats) == 1 and formats[0] in RENDERERS and not RENDERERS[formats[0]].is_directory


def _check_standard_output(formats: Sequence[str], output: str | None) -> None:
    """:class:`OptionError` for ``"-"`` (standard output) with anything but one document,
    which would be written into a directory named ``-``."""
    if output == "-" and not _one_document(formats):
        asked = " ".join(f"--report {fmt}" for fmt in formats)
        raise OptionError(
            f"-o -: standard output takes one document, not {asked}: give a directory"
        )


def plan_outputs(formats: Sequence[str], output: str | None, stem: str) -> OutputPlan:
    """Decide where each report is written.

    One document format: ``output`` is a file (or a directory when it exists or ends with
    ``/``); without it, or with ``"-"``, the report goes to standard output.
    Several formats, or CSV (one file per table): ``output`` is a directory (created);
    without it, the current directory (CSV into ``./<stem>.sipstats-csv/``); not ``"-"``
    (:class:`OptionError`). No format is an :class:`OptionError` too: there is nothing to
    place (:func:`choose_formats` picks the default one).
    """
    if not formats:
        raise OptionError(f"no report format asked: give one or more of {', '.join(RENDERERS)}")
    _check_standard_output(formats, output)
    if _one_document(formats):
        fmt = formats[0]
        name = f"{stem}.sipstats{RENDERERS[fmt].suffix}"
        if output is None or output == "-":
            return OutputPlan([(fmt, None)])
        target = Path(output)
        into_directory = target.is_dir() or output.endswith(("/", os.sep))
        return OutputPlan([(fmt, target / name if into_directory else target)])
    directory = None if output is None else Path(output)
    if directory is not None and directory.exists() and not directory.is_dir():
        raise ReportError(f"{directory}: not a directory (several reports or CSV need a directory)")
    targets: list[tuple[str, Path | None]] = []
    for fmt in formats:
        if RENDERERS[fmt].is_directory:
            path = directory if directory is not None else Path(f"{stem}.sipstats-{fmt}")
        elif fmt == "text" and directory is None:
            path = None  # the terminal report still goes to the terminal
        else:
            path = (directory or Path()) / f"{stem}.sipstats{RENDERERS[fmt].suffix}"
        targets.append((fmt, path))
    return OutputPlan(targets)


@dataclass(frozen=True)
class ReportRequest:
    """Everything one report run needs; checked on construction, so a bad value fails at once.

    ``formats`` are :data:`sipstats.render.RENDERERS` keys (duplicates dropped; none: the
    format ``output``'s suffix names, else text, see :func:`choose_formats`); ``output`` is
    a file, a directory or ``"-"`` (see :func:`plan_outputs`); ``plots`` a directory for
    every figure as PNG and SVG. ``engine="dask"`` analyses on a Dask cluster (``scheduler``
    its address; default a local cluster for the run); ``jobs`` decoding processes for the
    local engine (default one per core); ``trunks`` relabels peers as trunks;
    ``correlation_header`` names the header that links a B2BUA's legs (:func:`sipstats.analyze`).
    """

    captures: Sequence[str | Path]
    formats: Sequence[str] = ()
    output: str | None = None
    lang: Lang = "en"
    top: int = 10
    ports: Iterable[int | str] | None = None
    since: Bound | str = None
    until: Bound | str = None
    peer: str | None = None
    interval: str = "auto"
    correlation_header: Correlation = "auto"
    duplicate_window_ms: float = DEFAULT_WINDOW_MS
    plots: Path | None = None
    engine: Engine = "local"
    scheduler: str | None = None
    jobs: int | None = None
    trunks: Trunks | None = None

    def __post_init__(self) -> None:
        if not self.captures:
            raise OptionError("no capture given")
        unknown = [fmt for fmt in self.formats if fmt not in RENDERERS]
        if unknown:
            raise OptionError(f"unknown report format {unknown[0]!r}: use {', '.join(RENDERERS)}")
        if self.lang not in LANGS:
            raise OptionError(f"unknown language {self.lang!r}: use {', '.join(LANGS)}")
        if self.top < 1:
            raise OptionError(f"top must be at least 1, not {self.top}")
        if self.duplicate_window_ms < 0:
            raise OptionError(f"duplicate window must be 0 or more, not {self.duplicate_window_ms}")
        if self.jobs is not None and self.jobs < 1:
            raise OptionError(f"jobs must be at least 1, not {self.jobs}")
        check_interval(self.interval)
        check_correlation(self.correlation_header)
        ports = port_filter(self.ports)
        if self.peer is not None:
            parse_peer(self.peer)
        captures = [str(capture) for capture in self.captures]
        _check_engine(self.engine, self.scheduler, captures, ports, self.duplicate_window_ms)
        formats = choose_formats(self.formats, self.output)
        if self.engine == "dask" and "csv" in formats:
            raise OptionError(
                "--report csv writes every message, which the Dask engine leaves on its "
                "workers: use the local engine for CSV, or ingest the captures into a dataset "
                "and read its messages with read_dataset"
            )
        normalised = {
            "captures": captures,
            "formats": formats,
            "ports": None if ports is None else tuple(sorted(ports)),
            "since": time_bound(self.since),
            "until": time_bound(self.until),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    def selection(self) -> tuple[frozenset[int] | None, Bound, Bound]:
        """Ports, start and end of the window, as checked when the request was made."""
        return port_filter(self.ports), time_bound(self.since), time_bound(self.until)

    def plan(self) -> OutputPlan:
        """Where the reports go (:func:`plan_outputs`); :class:`ReportError` if it cannot be."""
        return plan_outputs(self.formats, self.output, output_stem(self.captures))

    @property
    def render_options(self) -> RenderOptions:
        return RenderOptions(lang=self.lang, top=self.top, jobs=job_count(self.jobs))


def _check_engine(
    engine: str,
    scheduler: str | None,
    captures: Sequence[str],
    ports: frozenset[int] | None,
    duplicate_window_ms: float,
) -> None:
    """The engine exists and can read what is given; a dataset is read alone, without ports
    or a duplicate window of its own (it was decoded and deduplicated when it was ingested)."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}: use {', '.join(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise OptionError("--scheduler needs --engine dask")
    own = len(captures) != 1 or ports is not None or duplicate_window_ms != DEFAULT_WINDOW_MS
    if own and any(is_dataset(path) for path in captures):
        raise OptionError(
            "a dataset is read alone and without --ports or --duplicate-window "
            "(give those to ingest)"
        )


@dataclass(frozen=True)
class ReportHooks:
    """What a front end may show while a report runs; every hook is optional."""

    reading: Callable[[], AbstractContextManager[Progress | None]] = nullcontext
    """A context reading runs in; it yields ``read_capture``'s progress callback or None."""
    read: Callable[[Capture], object] | None = None
    """Called with the selected capture before the readability check (to warn about damage
    and an empty selection); with the Dask engine, once the cluster has analysed it."""
    stage: Callable[[str], AbstractContextManager[object]] = nullcontext
    """A context a step without progress of its own runs in, given its name (a spinner)."""
    wrote: Callable[[str], None] | None = None
    """Called with one line per report or figure set written to a file."""
    analysed: Callable[[Analysis], object] | None = None
    """Called with the analysis once it is made, before any report is written or drawn."""


@dataclass(frozen=True)
class ReportResult:
    """What a run produced: the analysis, the files written, and the exit status it earns."""

    analysis: Analysis
    written: list[tuple[str, Path]] = field(default_factory=list)
    """(format, path) of each report file or directory, then ("plots", path) per figure file."""

    @property
    def damaged(self) -> list[InputSummary]:
        """Inputs that were damaged, unreadable or without SIP (each named in the report)."""
        return [summary for summary in self.analysis.capture.inputs if summary.flagged]

    @property
    def exit_status(self) -> int:
        """:func:`exit_status`: 1 when an input was flagged or the filters matched nothing."""
        capture = self.analysis.capture
        return exit_status(capture.inputs, capture.selected_nothing)


def run_report(
    request: ReportRequest,
    hooks: ReportHooks | None = None,
    stdout: TextIO | None = None,
    *,
    decoded: Capture | Callable[[], Capture] | None = None,
) -> ReportResult:
    """Read, select, analyse and write every report of ``request``.

    Reports planned for standard output are written to ``stdout`` (default ``sys.stdout``);
    the text report keeps colours there when it is a terminal. ``decoded``: the request's
    capture files already read (:func:`sipstats.workers.read_for_report`), as the command line
    does while the analysis is still being imported; the window and peer still select from it.
    It may be a function that returns them, called once: the command line hands over what its
    reading thread read, so that no reference of its own keeps the messages alive once the
    analysis, which needs them no longer, has been made.
    """
    hooks = hooks or ReportHooks()
    plan = request.plan()
    # CSV writes every analysed message; the other reports read the report's messages only
    every_message = "csv" in request.formats
    analysis = _analyse(request, hooks, every_message=every_message, decoded=decoded)
    if hooks.analysed is not None:
        hooks.analysed(analysis)
    result = ReportResult(analysis)
    options = request.render_options
    for fmt, path in plan.targets:
        if path is None:
            _to_stream(analysis, fmt, options, stdout)
            continue
        files = write_report(analysis, fmt, path, options)
        shown = path if RENDERERS[fmt].is_directory else files[0]
        result.written.append((fmt, shown))
        if hooks.wrote is not None:
            hooks.wrote(f"wrote {fmt} report: {shown}")
    if request.plots is not None:
        from sipstats.render.plots import save_figures  # matplotlib only when figures are asked

        figures = save_figures(analysis, request.plots, lang=request.lang)
        result.written.extend(("plots", path) for path in figures)
        if hooks.wrote is not None:
            hooks.wrote(f"wrote {len(figures)} figure files to {request.plots}")
    return result


def _analyse(
    request: ReportRequest,
    hooks: ReportHooks,
    *,
    every_message: bool,
    decoded: Capture | Callable[[], Capture] | None = None,
) -> Analysis:
    """Read, select and analyse on the request's engine; trunks relabel the result.

    The local engine analyses in ``request.jobs`` processes (:func:`sipstats.analyze`'s
    ``jobs``) unless ``every_message`` is asked for: those stay in one process.
    """
    if request.engine == "dask":
        from sipstats.engines.dask_cluster import analyze_on_dask  # not for the local engine

        ports, since, until = request.selection()
        with hooks.stage("analysing on the Dask cluster"):
            analysis = analyze_on_dask(
                request.captures,
                scheduler=request.scheduler,
                ports=ports,
                since=since,
                until=until,
                peer=request.peer,
                interval=request.interval,
                duplicate_window_ms=request.duplicate_window_ms,
                correlation_header=request.correlation_header,
            )
        _readable_after(analysis.capture, hooks)
    else:
        jobs = 1 if every_message else job_count(request.jobs)
        # handed over (no name here keeps it): without every message, the analysis frees
        # the capture's table once it has analysed it
        read = [_read_checked(request, hooks, decoded)]
        with hooks.stage("analysing"):
            analysis = analyze(
                read.pop(),
                interval=request.interval,
                correlation_header=request.correlation_header,
                jobs=jobs,
                every_message=every_message,
            )
    if request.trunks is not None:
        analysis = apply_trunks(analysis, request.trunks)
    return analysis


def _read_checked(
    request: ReportRequest, hooks: ReportHooks, decoded: Capture | Callable[[], Capture] | None
) -> Capture:
    """The request's captures read (unless ``decoded`` holds them) and selected, shown to
    ``hooks`` and found readable (:func:`require_readable`)."""
    if decoded is not None:
        capture = _read(request, None, decoded)
    elif is_dataset(request.captures[0]):
        with hooks.stage("reading the dataset"):
            capture = _read(request, None)
    else:
        with hooks.reading() as progress:
            capture = _read(request, progress)
    _readable_after(capture, hooks)
    return capture


def _readable_after(capture: Capture, hooks: ReportHooks) -> None:
    if hooks.read is not None:
        hooks.read(capture)
    require_readable(capture.inputs)


def _read(
    request: ReportRequest,
    progress: Progress | None,
    decoded: Capture | Callable[[], Capture] | None = None,
) -> Capture:
    """The request's captures read (unless ``decoded`` holds them or returns them) and
    selected (no readability check)."""
    ports, since, until = request.selection()
    if callable(decoded):
        decoded = decoded()
    if decoded is None and is_dataset(request.captures[0]):
        # The window and peer select while reading: only the row groups they need.
        return read_dataset(request.captures[0], since=since, until=until, peer=request.peer)
    if decoded is None:
        decoded = read_for_report(
            request.captures, ports, request.duplicate_window_ms, request.jobs, progress
        )
    return filter_capture(decoded, since=since, until=until, peer=request.peer)


def _to_stream(analysis: Analysis, fmt: str, options: RenderOptions, stdout: TextIO | None) -> None:
    stream = stdout if stdout is not None else sys.stdout
    if fmt == "text":
        from sipstats.render.text import console_for, print_report  # rich: only for text

        print_report(analysis, console_for(stream), options)
        return
    render = RENDERERS[fmt].render
    assert render is not None  # planned for a stream: a document format
    stream.write(render(analysis, options))
