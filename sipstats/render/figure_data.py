"""What each report figure shows, as tables taken from the analysis, without matplotlib.

Apart from the drawing (:mod:`sipstats.render.plots`) so that the data are taken once, where
the analysis is: the HTML report with ``jobs`` > 1 takes them before it forks the processes
that draw (:func:`sipstats.render.html.render_html`), which inherit them (nothing is sent).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import numpy as np
import pandas as pd

from sipstats.analyze.breakdown import with_failure_share
from sipstats.render.document import calls_section

if TYPE_CHECKING:
    from sipstats.analyze import Analysis


class Failures(NamedTuple):
    """The failure timeline: failures per class per bucket, with their share of the finals."""

    frame: pd.DataFrame
    """:meth:`Analysis.timeline` by class, with ``failure_share``."""
    interval: str
    """The bucket, resolved."""
    bursts: list[tuple[int, pd.Timestamp, pd.Timestamp]]
    """(rank among the findings, start, end) of each failure burst."""


class Timeline(NamedTuple):
    """Unique responses per bucket, per class or per catalogue category."""

    frame: pd.DataFrame
    interval: str
    by: Literal["class", "category"]


class Histogram(NamedTuple):
    """A delay per call (milliseconds, none missing) and the analysis' percentiles of it."""

    values: np.ndarray
    marks: dict[str, Any]
    """``p50``, ``p90`` and ``p99`` (None where there is no value)."""


def failures(analysis: Analysis) -> Failures:
    interval = analysis.bucket()
    bursts = [
        (rank, pd.Timestamp(row["start"]), pd.Timestamp(row["end"]))
        for rank, row in enumerate(analysis.findings.to_dict("records"), start=1)
        if row["kind"] == "failure_burst"
    ]
    return Failures(with_failure_share(analysis.timeline(interval)), interval, bursts)


def timeline(
    analysis: Analysis, *, interval: str | None = None, by: Literal["class", "category"] = "class"
) -> Timeline:
    bucket = analysis.bucket(interval)
    return Timeline(analysis.timeline(bucket, by=by), bucket, by)


def classes(analysis: Analysis) -> pd.DataFrame:
    """Unique responses per class (``status_class``, ``unique``)."""
    return analysis.by_class


def outcomes(analysis: Analysis, calls: dict[str, Any] | None = None) -> dict[str, int]:
    """End-to-end calls per outcome (``calls``: the analysis' :func:`calls_section`, if
    already made)."""
    by_outcome: dict[str, int] = (calls or calls_section(analysis))["by_outcome"]
    return by_outcome


def _histogram(analysis: Analysis, column: str, calls: dict[str, Any] | None) -> Histogram:
    values = analysis.end_to_end_calls[column].dropna().to_numpy(dtype=float)
    return Histogram(values, (calls or calls_section(analysis))[column])


def pdd(analysis: Analysis, calls: dict[str, Any] | None = None) -> Histogram:
    """Post-dial delay per end-to-end call."""
    return _histogram(analysis, "pdd_ms", calls)


def answer_time(analysis: Analysis, calls: dict[str, Any] | None = None) -> Histogram:
    """Time to answer per answered end-to-end call."""
    return _histogram(analysis, "answer_ms", calls)


def retries(analysis: Analysis) -> pd.DataFrame:
    """Retry verdicts per failure code (:attr:`Analysis.retry_after`)."""
    return analysis.retry_after


def _has_responses(analysis: Analysis) -> bool:
    return bool(analysis.by_class["unique"].sum())


def _has_calls(analysis: Analysis) -> bool:
    return not analysis.end_to_end_calls.empty


def _has_delay(column: str) -> Callable[[Analysis], bool]:
    return lambda analysis: bool(analysis.end_to_end_calls[column].notna().any())


class FigureData(NamedTuple):
    """How a report figure's data are taken from an analysis."""

    take: Callable[..., Any]
    """Analysis -> the data (the figure's options as keywords)."""
    has_data: Callable[[Analysis], bool]
    """Whether there is anything to draw, read from what ``take`` reads."""
    from_calls: bool = False
    """``take`` reads the calls section of the report (:func:`calls_section`), made once for
    every such figure when given as its second argument."""


#: Figure name -> how its data are taken, in report order: the report's figures
#: (:data:`sipstats.render.plots.FIGURES` pairs each with its drawing).
FIGURE_DATA: Final[dict[str, FigureData]] = {
    "failures": FigureData(failures, _has_responses),
    "timeline": FigureData(timeline, _has_responses),
    "classes": FigureData(classes, _has_responses),
    "outcomes": FigureData(outcomes, _has_calls, from_calls=True),
    "pdd": FigureData(pdd, _has_delay("pdd_ms"), from_calls=True),
    "answer_time": FigureData(answer_time, _has_delay("answer_ms"), from_calls=True),
    "retries": FigureData(retries, lambda analysis: not analysis.retry_after.empty),
}


def collect(
    analysis: Analysis, *, skip_empty: bool = False, names: Collection[str] | None = None
) -> dict[str, Any]:
    """The data of every report figure by name (or of those in ``names``), in report order;
    ``skip_empty`` leaves out those with nothing to draw."""
    wanted = {
        name: figure
        for name, figure in FIGURE_DATA.items()
        if (names is None or name in names) and (not skip_empty or figure.has_data(analysis))
    }
    from_calls = any(figure.from_calls for figure in wanted.values())
    calls = calls_section(analysis) if from_calls else None
    return {
        name: figure.take(analysis, calls) if figure.from_calls else figure.take(analysis)
        for name, figure in wanted.items()
    }
