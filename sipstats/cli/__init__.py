"""Command line: ``sipstats CAPTURE...`` and its subcommands; a thin shell over the library.

Subcommands load lazily (click's documented lazy-group pattern): ``sipstats codes 486`` does
not import pandas' analysis stack, and the report does not import the catalogue command.
"""

from __future__ import annotations

import atexit
import errno
import importlib
import io
import os
import sys
import threading
from typing import Final, NoReturn

import click

from sipstats.errors import EXIT_CLOSED_OUTPUT
from sipstats.textsafe import visible

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

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # click would exit 1, which here means damaged input
            output_closed()


def output_closed() -> NoReturn:
    """The output's reader is gone (``sipstats F | head -1``): the command ends quietly with
    :data:`~sipstats.errors.EXIT_CLOSED_OUTPUT`. What is still buffered for standard output
    goes to the null device, as Python's note on SIGPIPE advises: flushing it at exit would
    fail again."""
    _to_null(sys.stdout.fileno())
    raise click.exceptions.Exit(EXIT_CLOSED_OUTPUT)


def say(message: str) -> None:
    """``message`` on standard error (a warning, an error, a "wrote" line), each line's control
    characters spelled out (a file name or a capture's text must not run a terminal escape),
    dropped when it cannot be written there (``2>&-``, a closed pipe): messages are not the
    output, the command goes on and its exit status still speaks of the input (a failed write
    escaping as :class:`BrokenPipeError` would be taken for the report's own output closing).
    What follows goes to the null device, as the failed message still buffered does at exit."""
    try:
        shown = "\n".join(visible(line) for line in message.split("\n"))
        click.echo(shown, err=True)  # nothing when there is no stderr at all (``2>&-``)
    except OSError:
        _to_null(sys.stderr.fileno())


def _to_null(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


#: Whether the command runs in a process of its own (:func:`run`), which ends once it has
#: run, rather than in a caller's (:func:`main` called by a test or a program): only there may
#: what it builds live until the exit (:func:`sipstats.cli.report._frozen`).
own_process = False


@click.group(cls=_DefaultToReport, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Turn SIP packet captures into response, call and Retry-After statistics."""


def run() -> None:
    """The ``sipstats`` program (console script, ``python -m sipstats``): :func:`main` in a
    process of its own, which it leaves without the interpreter's teardown (:func:`_leave`)."""
    # numpy's OpenBLAS starts a thread per core as it loads, and that thread spins on the core
    # the capture is read on (about 0.03 s CPU); the command does no linear algebra
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    global own_process
    own_process = True
    if sys.stdout is None:  # started with ``>&-``
        sys.stdout = _ClosedOutput()
    try:
        main(prog_name="sipstats")
    except SystemExit as done:
        if isinstance(done.code, int) or done.code is None:
            _leave(done.code or 0)
        raise


class _ClosedOutput(io.TextIOBase):
    """Standard output of a program started without one (``>&-``), for which Python gives
    None: a command would trip on it as an internal error (``None.write``) or write nothing and
    exit 0. Each write fails as a write to a pipe nobody reads does, which every command
    answers with :data:`~sipstats.errors.EXIT_CLOSED_OUTPUT`."""

    def write(self, text: str) -> int:
        if not text:  # nothing to deliver, as a buffered stream would take it
            return 0
        raise BrokenPipeError(errno.EPIPE, "standard output is closed")

    def fileno(self) -> int:
        return 1  # what :func:`output_closed` points at the null device


def _leave(status: int) -> None:
    """End the process with ``status`` once the atexit functions have run and the standard
    streams are flushed, as a normal exit would, but without tearing the interpreter down:
    freeing every module and object of pandas, numpy and pyarrow one by one (collections
    included) costs about 0.09 s CPU, which the system does at once. Returns, for the normal
    exit, while a thread that is not a daemon runs (the normal exit waits for it), while a
    profiler, tracer or debugger follows the program (:func:`_watched`) or when a stream
    cannot be flushed (a closed pipe: the normal exit reports it)."""
    main_thread = threading.main_thread()
    if any(not t.daemon for t in threading.enumerate() if t is not main_thread) or _watched():
        return
    # Private, but the one call that runs the atexit functions as the exit would. What the exit
    # runs before them, threading._shutdown, is skipped: it joins non-daemon threads (none now,
    # see above) and runs threading._register_atexit hooks, which only tell such threads, those
    # of concurrent.futures' executors, to stop.
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(status)


def _watched() -> bool:
    """Whether a profiler, tracer, debugger or coverage tool follows the program (``python -m
    cProfile -o``, ``-m trace``, coverage, ``-m pdb`` while a breakpoint is set: without one
    pdb stops tracing): it writes its results once the program has returned to it, which
    ``os._exit`` would skip."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: cProfile and coverage use it
    return monitoring is not None and any(monitoring.get_tool(tool) for tool in range(6))
