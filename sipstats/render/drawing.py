"""Where the HTML report's figures are drawn: in this process, in processes forked from it
once the analysis is done, or in a :class:`FigureProcess` started before the capture is read.

matplotlib is the report's slowest part: importing it takes about 0.3 s and 30 MiB, drawing
the figures about 1 s of CPU. A figure process started first imports it while this process
reads and analyses the capture, so neither the import nor its memory are this process's; it
is then sent the little the figures read (:func:`figure_inputs`) and draws them in as many
processes as it was started for. This module imports no matplotlib itself.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
from collections.abc import Collection
from functools import partial
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sipstats.render.labels import Lang
from sipstats.workers import Forked, InThread, can_fork, fork_map

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from sipstats.analyze import Analysis


class Figures(NamedTuple):
    """Some of the report's figures as drawn (here or in another process, which sends them)."""

    svg: dict[str, str]
    """Each figure's inline SVG, by name."""
    lang: Lang
    """The language their text is in: English for a Chinese report without a CJK font."""


def draw(analysis: Analysis, lang: Lang, names: Collection[str] | None = None) -> Figures:
    """Every figure with data (of ``names``), drawn in the report's language where a font
    allows it."""
    from sipstats.render import plots  # matplotlib loads only when a figure is drawn

    drawn = plots.figures(analysis, lang=lang, skip_empty=True, names=names)
    svg = {name: plots.to_svg(fig, lang=lang) for name, fig in drawn.items()}
    return Figures(svg, plots.figure_lang(lang))


def _shares(processes: int) -> list[list[str]]:
    """The figure names dealt out in turn to ``processes`` (the two slowest, failures and
    timeline, come first and go to different processes)."""
    from sipstats.render.plots import FIGURES

    names = list(FIGURES)
    return [names[k::processes] for k in range(min(processes, len(names)))]


def draw_forked(analysis: Analysis, lang: Lang, processes: int) -> list[Forked[Figures]]:
    """The figures drawn in ``processes`` processes forked from this one, dealt out in turn."""
    return [Forked(partial(draw, analysis, lang, share)) for share in _shares(processes)]


def draw_here_and_forked(analysis: Analysis, lang: Lang, processes: int) -> list[Figures]:
    """The figures drawn by this process and ``processes`` - 1 forks of it, dealt out in turn."""
    shares = _shares(processes)
    return fork_map(lambda k: draw(analysis, lang, shares[k]), len(shares))


#: The tables of an analysis the figures read (:mod:`sipstats.render.plots`), whole.
FIGURE_TABLES: Final = ("findings", "by_class", "retry_after")

#: The columns of the calls the figures read (outcomes, delays; end-to-end calls only).
CALL_COLUMNS: Final = (
    "outcome", "final_status", "answer_missing", "pdd_ms", "answer_ms", "duration_s", "linked_to",
)  # fmt: skip

#: The columns of the report's messages the timelines read.
TIMELINE_COLUMNS: Final = ("ts", "status", "is_request", "retransmission", "challenge", "category")


def figure_inputs(analysis: Analysis) -> Analysis:
    """``analysis`` holding only what its figures read: :data:`FIGURE_TABLES`, the counts
    (``tally``) and ``interval``, and some columns of the calls and of the report's messages;
    every other table empty (its columns only), no messages. What a :class:`FigureProcess` is
    sent, pickled: about 10 MiB for 700,000 SIP messages, against 90 for the whole analysis."""
    import pandas as pd

    from sipstats.analyze import without_messages

    kept = {*FIGURE_TABLES, "calls", "report_messages", "messages", "sample_messages"}
    emptied: dict[str, Any] = {
        field.name: pd.DataFrame(columns=getattr(analysis, field.name).columns)
        for field in dataclasses.fields(analysis)
        if field.init
        and field.name not in kept
        and isinstance(getattr(analysis, field.name), pd.DataFrame)
    }
    return dataclasses.replace(
        analysis,
        **emptied,
        capture=without_messages(analysis.capture),
        calls=analysis.calls[list(CALL_COLUMNS)],
        report_messages=analysis.report_messages[list(TIMELINE_COLUMNS)],
        messages=None,
        sample_messages=None,
    )


class FigureProcess:
    """A forked process that imports matplotlib at once, then draws the figures of the one
    analysis :meth:`draw` sends it, in itself and ``processes`` - 1 forks of itself.

    Start it before any other thread runs (a fork copies only the forking thread, and a lock
    another one held would stay held in the child), and :meth:`close` it when the command
    ends. Where there is no fork, draw the figures another way (:func:`can_fork`).
    """

    def __init__(self, processes: int) -> None:
        if not can_fork():
            raise RuntimeError("a figure process needs fork")
        receive, self._send = multiprocessing.get_context("fork").Pipe(duplex=False)
        # not daemonic: it forks the processes that draw with it
        task = partial(_draw_when_sent, receive, self._send, processes)
        self._drawing: Forked[list[Figures]] | None = Forked(task, daemon=False)
        self._sent = False
        receive.close()

    def draw(self, analysis: Analysis, lang: Lang) -> None:
        """Send the figures' inputs; the process draws them from now on."""
        self._send.send((figure_inputs(analysis), lang))
        self._send.close()
        self._sent = True

    def result(self) -> list[Figures]:
        """The figures drawn since :meth:`draw`, one part per process (asked for once)."""
        if self._drawing is None:
            raise RuntimeError("the figure process was closed")
        drawing, self._drawing = self._drawing, None
        return drawing.result()

    def close(self) -> None:
        """End the process if it is still there: at once when it was sent nothing (it has
        no children yet), else once it has drawn."""
        if self._drawing is None:
            return
        if self._sent:
            self.result()
        else:
            self._send.close()
            self._drawing.cancel()
            self._drawing = None


def _draw_when_sent(receive: Connection, send: Connection, processes: int) -> list[Figures]:
    """In the figure process: import matplotlib, wait for the analysis, draw its figures."""
    send.close()  # this process's copy: the parent's end alone keeps the pipe open
    # read in a thread meanwhile: the parent's send would otherwise wait for the import
    sent = InThread(receive.recv_bytes)
    from sipstats.render import plots  # noqa: F401  (what the process is started early for)

    try:
        analysis, lang = pickle.loads(sent.result())
    except EOFError:  # the command ended without an HTML report to draw for
        return []
    finally:
        receive.close()
    return draw_here_and_forked(analysis, lang, processes)
