"""Analysis -> matplotlib figures (timeline, classes, outcomes, delays, retries).

Each report figure (:data:`FIGURES`, one :class:`Plot` per name: its data and its drawing)
builds a fresh :class:`matplotlib.figure.Figure` (no pyplot, no global state) and returns it,
so notebooks can show or restyle it. Style and SVG determinism settings live
in a local ``rc_context`` only. Response classes have one colour everywhere: :data:`CLASS_COLOURS`
(:mod:`sipstats.render.colours`).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.backend_bases import RendererBase
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.layout_engine import LayoutEngine
from matplotlib.legend_handler import HandlerPolyCollection
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from sipstats.analyze.breakdown import CHALLENGES, FAILURE_CLASSES
from sipstats.catalogue import STATUS_CLASSES
from sipstats.render import figure_data
from sipstats.render.colours import CLASS_COLOURS
from sipstats.render.figure_data import Failures, FigureData, Histogram, Timeline
from sipstats.render.labels import Lang, category_label, label, outcome_label
from sipstats.schema import OUTCOMES

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Answered 401/407 challenges in the class timeline: a pale 4xx.
CHALLENGE_COLOUR: Final = "#fdd0a2"

#: Call outcome -> colour: answered green, server failure red, busy orange, the callee's own
#: refusals purple, unreachable blue, the rest grey.
OUTCOME_COLOURS: Final = {
    "answered": "#2ca02c",
    "busy": "#ff7f0e",
    "unavailable": "#1f77b4",
    "declined": "#9467bd",
    "cancelled": "#8c8c8c",
    "not_found": "#17becf",
    "redirected": "#bcbd22",
    "auth_failed": "#e377c2",
    "rejected": "#8c564b",
    "server_failure": "#d62728",
    "no_final_response": "#7f7f7f",
    "in_progress": "#c7c7c7",
}

#: Retry decision -> colour (respected reads as good, too early as bad).
RETRY_COLOURS: Final = {
    "honoured": "#2ca02c",
    "too_early": "#d62728",
    "retried_without_ra": "#ff7f0e",
    "not_retried": "#8c8c8c",
}

#: Fonts known to carry Chinese glyphs, tried in order for ``lang="zh"`` figures.
_CJK_FAMILIES: Final = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "SimHei",
)

_STYLE: Final[dict[str, Any]] = {
    "svg.hashsalt": "sipstats",  # stable element ids: the same analysis gives the same SVG
    "svg.fonttype": "path",  # text as outlines: the page needs no font and renders the same
    "font.size": 10.0,
    "axes.titlesize": 12.0,
    "axes.titleweight": "bold",
    # titles at the top of the axes, where matplotlib places them when nothing is above the
    # axes (nothing is, in these figures), without measuring every y axis again per title
    "axes.titley": 1.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "figure.dpi": 100.0,
    "savefig.dpi": 100.0,
}


@cache
def cjk_family() -> str | None:
    """The first installed font family with Chinese glyphs, or None."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((family for family in _CJK_FAMILIES if family in installed), None)


def figure_lang(lang: Lang) -> Lang:
    """The language figure text can be drawn in: Chinese only when a CJK font is installed."""
    return "zh" if lang == "zh" and cjk_family() else "en"


@contextmanager
def _style(lang: Lang = "en") -> Iterator[None]:
    rc = dict(_STYLE)
    if figure_lang(lang) == "zh":
        rc["font.family"] = ["sans-serif"]
        rc["font.sans-serif"] = [cjk_family(), "DejaVu Sans"]
    with mpl.rc_context(cast(Any, rc)):
        yield


class Plot:
    """A report figure: how its data are taken from an analysis
    (:data:`sipstats.render.figure_data.FIGURE_DATA`) and its drawing of them, in its style
    (text objects take their font when they are created). Called with an analysis (and the
    data's options as keywords: its signature shows them), the figure. It pickles as the
    module's name for it, as a function does."""

    def __init__(self, source: FigureData, drawing: Callable[..., Figure]) -> None:
        self.source = source
        self._drawing = drawing
        self.__doc__ = drawing.__doc__
        self.__name__ = drawing.__name__
        self.__signature__ = _called_with(source)

    def draw(self, data: Any, *, lang: Lang = "en") -> Figure:
        """The figure of ``data`` (what ``self.source.take`` returned)."""
        with _style(lang):
            return self._drawing(data, lang=lang)

    def __call__(self, analysis: Analysis, *, lang: Lang = "en", **options: Any) -> Figure:
        return self.draw(self.source.take(analysis, **options), lang=lang)

    def __reduce__(self) -> str:
        return self.__name__


def _called_with(source: FigureData) -> inspect.Signature:
    """A :class:`Plot`'s signature: the analysis, the options its data take, the language."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    taken = inspect.signature(source.take).parameters.values()
    analysis = inspect.Parameter(
        "analysis", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Analysis"
    )
    lang = inspect.Parameter("lang", keyword, default="en", annotation="Lang")
    options = [option for option in taken if option.kind is keyword]
    return inspect.Signature([analysis, *options, lang], return_annotation="Figure")


#: Figure name -> its data and its drawing, in report order; ``--plots`` writes each under
#: its name.
FIGURES: Final[dict[str, Plot]] = {}


def _figure(name: str) -> Callable[[Callable[..., Figure]], Plot]:
    """The drawing of the report figure ``name`` (data -> figure) made its :class:`Plot`."""

    def plot(drawing: Callable[..., Figure]) -> Plot:
        FIGURES[name] = Plot(figure_data.FIGURE_DATA[name], drawing)
        return FIGURES[name]

    return plot


class LaidOutOnce(Figure):
    """A figure that :func:`to_svg` and :func:`save_figures` write drawing each artist once,
    laid out with the renderer that draws it.

    ``savefig`` on a figure with a layout engine draws it twice: once with drawing switched
    off, only so that the layout runs (measuring the text, for SVG and PDF, with a renderer of
    its own; PNG's is the canvas's, which then draws), then for real. Asked to
    (:func:`_saved`), this figure skips that first pass and runs the layout at the start of
    the drawing pass, measuring with the drawing's renderer, which then draws text it has
    measured already: the file is the same, byte for byte, for less CPU in savefig. A pass
    whose renderer draws is drawn in full whatever was asked (should savefig drop its first
    pass, the figure is still drawn); saved any other way it is a plain figure.
    """

    _layout_only = False
    _deferred: LayoutEngine | None = None
    """The layout engine of a skipped first pass, run by the drawing pass."""
    _measuring: Any = None
    """The drawing pass's renderer, while that pass runs the layout."""

    def draw(self, renderer: Any) -> None:
        layout_only, self._layout_only = self._layout_only, False  # the first pass alone
        if layout_only and _drawing_switched_off(renderer):
            self._deferred = self.get_layout_engine()
            return
        engine, self._deferred = self._deferred, None
        with _font_heights_read_once(renderer, self):
            if self.axes and engine is not None:
                self._measuring = renderer
                try:
                    # as Figure.draw: a layout that does not fit is skipped
                    with suppress(ValueError):
                        engine.execute(self)
                finally:
                    self._measuring = None
            super().draw(renderer)

    def _get_renderer(self) -> Any:
        """The renderer the layout measures with: the drawing pass's, while it lays out."""
        if self._measuring is not None:
            return self._measuring
        return super()._get_renderer()  # type: ignore[misc]  # private, missing from the stubs


@cache
def _heights_hook_matches() -> bool:
    """Whether the installed matplotlib is the one whose private arithmetic
    :func:`_font_heights` copies (3.11.x): asked once, at the first drawing."""
    return tuple(mpl.__version_info__[:2]) == (3, 11)


@contextmanager
def _font_heights_read_once(renderer: Any, fig: Figure) -> Iterator[None]:
    """``renderer`` giving the line heights of each font of ``fig`` while it draws, read from
    the font once, not for every text laid out.

    matplotlib 3.11's ``Text._get_layout`` asks the renderer for them
    (``_get_font_height_metrics``, which only its PDF and PS renderers have) and otherwise
    finds the font file and reads two of its tables each time it lays out a text: about a
    sixth of writing the report's SVG figures. The hook and the arithmetic are private:
    on any other matplotlib, or a renderer that takes no attribute, matplotlib reads the
    heights its own way. A renderer with a method of its own keeps it; the one given here
    is gone once ``fig`` is drawn (a canvas's renderer is used again, maybe under other
    fonts).
    """
    if not _heights_hook_matches() or hasattr(renderer, "_get_font_height_metrics"):
        yield
        return
    read: dict[tuple[font_manager.FontProperties, float], _Heights] = {}

    def heights(prop: font_manager.FontProperties) -> _Heights:
        key = (prop.copy(), fig.dpi)  # a copy: the text may change its font later
        if key not in read:
            read[key] = _font_heights(prop, fig.dpi)
        return read[key]

    try:
        renderer._get_font_height_metrics = heights
    except AttributeError:  # slots, or a read-only attribute: matplotlib's own reading
        yield
        return
    try:
        yield
    finally:
        del renderer._get_font_height_metrics


_Heights = tuple[float, float, float] | tuple[None, None, None]
"""A font's ascent, descent and line gap in pixels (None: its file says none of them)."""

#: Where a font file keeps its heights: (table, line gap, ascent, descent), the first there.
_HEIGHT_TABLES: Final = (
    ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
    ("hhea", "lineGap", "ascent", "descent"),
)


def _font_heights(prop: font_manager.FontProperties, dpi: float) -> _Heights:
    """The heights of ``prop``'s font at ``dpi``, as matplotlib 3.11's ``Text._get_layout``
    reads them (the same arithmetic: the same floats)."""
    # Any: the stubs type each table by a literal name, and these names come from a list
    font: Any = font_manager.get_font(font_manager.fontManager._find_fonts_by_props(prop))
    for table_name, gap, ascent, descent in _HEIGHT_TABLES:
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
        scale = 1 / units_per_em * prop.get_size_in_points() * dpi / 72
        return table[ascent] * scale, -table[descent] * scale, table[gap] * scale
    return None, None, None


def _drawing_switched_off(renderer: Any) -> bool:
    """Whether ``renderer`` draws nothing: ``RendererBase._draw_disabled`` replaced its
    drawing methods with no-ops that wrap the base class's. Anything else counts as drawing
    (a later matplotlib that switches drawing off another way gets a full pass)."""
    draw = getattr(renderer, "draw_path", None)
    return getattr(draw, "__wrapped__", None) is RendererBase.draw_path


def _saved(fig: Figure, target: Any, **kwargs: Any) -> None:
    """``fig.savefig(target, **kwargs)``, laid out without the extra drawing when it can be:
    not when savefig crops (``bbox_inches``, or ``savefig.bbox`` in the user's rc), which it
    measures right after its first pass, so that pass lays out."""
    if isinstance(fig, LaidOutOnce) and fig.get_layout_engine() is not None:
        fig._layout_only = not kwargs.get("bbox_inches", mpl.rcParams["savefig.bbox"])
    try:
        fig.savefig(target, **kwargs)
    finally:
        if isinstance(fig, LaidOutOnce):
            fig._layout_only, fig._deferred = False, None


def _new(width: float = 9.0, height: float = 4.0) -> Figure:
    return LaidOutOnce(figsize=(width, height), layout="constrained")


def _counts_axis(axis: Any) -> None:
    """Counts are whole numbers: no 2.5 responses on a tick label."""
    axis.set_major_locator(MaxNLocator(integer=True))


def _counts_figure(
    size: tuple[float, float], title: str, xlabel: str, ylabel: str, lang: Lang
) -> tuple[Figure, Any]:
    """A new figure with one titled axes; the label keys name the axes, y counts things."""
    fig = _new(*size)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(label(xlabel, lang))
    ax.set_ylabel(label(ylabel, lang))
    _counts_axis(ax.yaxis)
    return fig, ax


def _empty(ax: Any, lang: Lang) -> None:
    ax.text(0.5, 0.5, label("no_data", lang), ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


#: Above this many buckets the timeline draws stacked steps instead of bars.
_MAX_BARS: Final = 300


def _bucket_days(interval: str, x: np.ndarray) -> float:
    """Bucket length in matplotlib date units (days): the interval, else the closest buckets."""
    try:
        offset: Any = pd.tseries.frequencies.to_offset(interval)
        return pd.Timedelta(offset) / pd.Timedelta(days=1)
    except (ValueError, TypeError):  # calendar offsets (month, ...) have no fixed length
        return float(np.min(np.diff(x))) if len(x) > 1 else 1.0


def _bars(ax: Any, left: np.ndarray, width: float | np.ndarray, bottom: np.ndarray,
          height: np.ndarray, *, name: str, colour: str) -> None:  # fmt: skip
    """Bars as ``ax.bar(left, height, width, bottom, align="edge")`` draws them (the same
    pixels; the same axis limits to the last bit or so: ``add_collection`` takes the data
    limits through the axes' transform and back), but one artist: ``bar`` makes each bar an
    artist of its own, which updates the data limits and is drawn alone: most of the cost of
    making a timeline of some dozens of buckets. ``width``: one for every bar, or each bar's.
    Their legend entry needs ``handler_map=_BAR_LEGEND`` before matplotlib 3.11."""
    widths = np.broadcast_to(width, np.shape(left))
    boxes = [
        Rectangle((x, y), wide, high)
        for x, y, wide, high in zip(left, bottom, widths, height, strict=True)
    ]
    bars = PatchCollection(boxes, facecolor=colour, edgecolor="none", label=name)
    bars.sticky_edges.y.extend(bottom)  # as bar's: the y axis starts at the bars' foot
    ax.add_collection(bars)
    # as bar ends: the view limits follow the data (add_collection asks for it only from
    # matplotlib 3.11 on; before, it updated the data limits alone)
    ax._request_autoscale_view()


#: The legend handler of :func:`_bars`' bars, which matplotlib 3.11 has as its default and
#: 3.8-3.10 lack (their legends leave a PatchCollection out, with a warning).
_BAR_LEGEND: Final = {PatchCollection: HandlerPolyCollection()}


def _stacked(
    ax: Any, frame: pd.DataFrame, interval: str, groups: dict[str, tuple[str, str]]
) -> tuple[pd.DatetimeIndex, np.ndarray, float]:
    """Stack ``frame``'s columns ``groups`` ({column: (legend name, colour)}) per bucket.

    Returns the bucket starts (naive UTC), their x positions and the bucket width in days.
    """
    starts = pd.DatetimeIndex(frame.index).tz_convert("UTC").tz_localize(None)
    x = mdates.date2num(starts.to_pydatetime())
    width = _bucket_days(interval, x)
    bottom = np.zeros(len(frame))
    for column, (name, colour) in groups.items():
        values = frame[column].to_numpy(dtype=float)
        if len(frame) <= _MAX_BARS:
            _bars(ax, x, 0.85 * width, bottom, values, name=name, colour=colour)
        else:  # thousands of bars make a slow SVG: one filled outline per group instead
            xs = np.column_stack([x, x, x + width, x + width]).ravel()
            top = np.column_stack([bottom, bottom + values, bottom + values, bottom]).ravel()
            ax.fill_between(xs, np.repeat(bottom, 4), top, label=name, color=colour,
                            linewidth=0)  # fmt: skip
        bottom += values
    return starts, x, width


def _clock_axis(ax: Any, starts: pd.DatetimeIndex, interval: str, lang: Lang) -> None:
    """Tick labels as wall-clock times; the date once, in the axis label, when it is one day.

    A capture across midnight (or days) keeps matplotlib's concise labels, which show the
    date where it changes.
    """
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    days = starts.normalize().unique()
    if len(days) != 1:
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return
    seconds = _bucket_days(interval, np.array([0.0])) * 86_400 < 60
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if seconds else "%H:%M"))
    ax.set_xlabel(f"{label('fig_time_axis', lang)}, {days[0]:%Y-%m-%d}")


@_figure("failures")
def failures(data: Failures, *, lang: Lang = "en") -> Figure:
    """Failures (4xx, 5xx, 6xx) per bucket, stacked, with the failure share of the final
    responses on a second axis and each burst's onset and end marked by its finding number."""
    lang = figure_lang(lang)
    frame, interval = data.frame, data.interval
    title = label("fig_failures", lang, interval=interval)
    fig, ax = _counts_figure((9.0, 4.0), title, "fig_time_axis", "fig_failures_count", lang)
    if frame.empty:
        _empty(ax, lang)
        return fig
    present = [c for c in FAILURE_CLASSES if frame[c].any()]
    starts, x, width = _stacked(ax, frame, interval, {c: (c, CLASS_COLOURS[c]) for c in present})
    share = ax.twinx()
    percent = 100.0 * frame["failure_share"].to_numpy(dtype=float)
    share.plot(x + width / 2, percent, color="#1d2330", linewidth=1.2, marker=".", markersize=3,
               label=label("failure_share", lang))  # fmt: skip
    share.set_ylim(0, 105)
    share.set_ylabel(label("fig_failure_share_axis", lang))
    share.grid(False)
    share.spines["right"].set_visible(True)
    for rank, start, end in data.bursts:
        for edge, colour in (("start", "#c0392b"), ("end", "#2c7a2c")):
            at = mdates.date2num(
                (start if edge == "start" else end).tz_convert("UTC").tz_localize(None)
            )
            ax.axvline(at, color=colour, linestyle="--", linewidth=1.0)
            key = "mark_onset" if edge == "start" else "mark_end"
            ax.annotate(label(key, lang, n=rank), (at, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", color=colour,
                        fontsize=8)  # fmt: skip
    _clock_axis(ax, starts, interval, lang)
    handles, names = ax.get_legend_handles_labels(_BAR_LEGEND)
    more, more_names = share.get_legend_handles_labels()
    ax.legend(handles + more, names + more_names, loc="upper left", bbox_to_anchor=(1.08, 1.0),
              handler_map=_BAR_LEGEND)  # fmt: skip
    return fig


#: Colours of the per-category timeline, in order of frequency (matplotlib's tab10 cycle).
CATEGORY_COLOURS: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


@_figure("timeline")
def timeline(data: Timeline, *, lang: Lang = "en") -> Figure:
    """Unique responses per interval, stacked: per class in the class colours, or per category.

    ``by="category"`` stacks the catalogue categories, most frequent at the bottom (colours
    repeat after ten categories).
    """
    lang = figure_lang(lang)
    frame, interval, by = data
    if by == "category":
        order = frame.sum().sort_values(ascending=False, kind="stable").index
        present = [str(c) for c in order if frame[c].any()]
        colours = {c: CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i, c in enumerate(present)}
        names = {c: category_label(c, lang) for c in present}
    else:
        present = [c for c in (*STATUS_CLASSES, CHALLENGES) if c in frame and frame[c].any()]
        colours = {**CLASS_COLOURS, CHALLENGES: CHALLENGE_COLOUR}
        names = {c: c for c in present} | {CHALLENGES: label(CHALLENGES, lang)}
    key = "fig_timeline_category" if by == "category" else "fig_timeline"
    title = label(key, lang, interval=interval)
    fig, ax = _counts_figure((9.0, 4.0), title, "fig_time_axis", "fig_responses_axis", lang)
    if frame.empty:
        _empty(ax, lang)
        return fig
    starts, _, _ = _stacked(ax, frame, interval, {c: (names[c], colours[c]) for c in present})
    _clock_axis(ax, starts, interval, lang)
    legend_title = label("category" if by == "category" else "class", lang)
    ax.legend(title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              handler_map=_BAR_LEGEND)  # fmt: skip
    return fig


@_figure("classes")
def classes(frame: pd.DataFrame, *, lang: Lang = "en") -> Figure:
    """Unique responses per class as bars in the class colours."""
    lang = figure_lang(lang)
    fig, ax = _counts_figure(
        (6.0, 3.5), label("fig_classes", lang), "class", "fig_responses_axis", lang
    )
    if frame.empty:
        _empty(ax, lang)
        return fig
    names = [str(c) for c in frame["status_class"]]
    counts = frame["unique"].to_numpy(dtype=float)
    bars = ax.bar(names, counts, color=[CLASS_COLOURS.get(n, "#333333") for n in names])
    ax.bar_label(bars, labels=[f"{int(c):,}" for c in counts], padding=2)
    ax.margins(y=0.15)
    return fig


@_figure("outcomes")
def outcomes(by_outcome: dict[str, int], *, lang: Lang = "en") -> Figure:
    """Calls per outcome as horizontal bars (answered first, as in schema.OUTCOMES)."""
    lang = figure_lang(lang)
    order = [o for o in OUTCOMES if by_outcome.get(o)]
    fig = _new(7.0, max(2.5, 0.45 * len(order) + 1.2))
    ax = fig.add_subplot()
    ax.set_title(label("fig_outcomes", lang))
    ax.set_xlabel(label("fig_calls_axis", lang))
    _counts_axis(ax.xaxis)
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", visible=False)
    if not order:
        _empty(ax, lang)
        return fig
    names = [outcome_label(o, lang) for o in order][::-1]
    counts = [by_outcome[o] for o in order][::-1]
    colours = [OUTCOME_COLOURS.get(o, "#4c72b0") for o in order][::-1]
    bars = ax.barh(names, counts, color=colours)
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], padding=2)
    ax.margins(x=0.12)
    return fig


def _histogram(data: np.ndarray, marks: dict[str, Any], title: str, axis: str, lang: Lang,
               colour: str) -> Figure:  # fmt: skip
    """Histogram of ``data`` with the analysis' p50/p90/p99 (``marks``) as vertical lines; the
    bars as ``ax.hist`` draws them (:func:`_bars`: one artist, not one per bin)."""
    fig, ax = _counts_figure((5.4, 3.8), label(title, lang), axis, "fig_calls_axis", lang)
    if not len(data):
        _empty(ax, lang)
        return fig
    counts, edges = np.histogram(data, bins=min(40, max(5, int(np.sqrt(len(data))))))
    widths = np.diff(edges)
    # where ax.hist puts a bin's bar: centred on the bin's middle, less half its width
    left = (edges[:-1] + 0.5 * widths) - widths / 2
    _bars(ax, left, widths, np.zeros(len(counts)), counts.astype(float), name="_nolegend_",
          colour=colour)  # fmt: skip
    for key, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        value = marks.get(key)
        if value is not None:
            ax.axvline(value, color="#333333", linestyle=style, linewidth=1,
                       label=f"{key} = {value:,.0f} ms")  # fmt: skip
    # below the axis label, where it cannot hide a bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False)
    return fig


@_figure("pdd")
def pdd(data: Histogram, *, lang: Lang = "en") -> Figure:
    """Distribution of post-dial delay (first INVITE -> first 18x) over calls, with p50/p90/p99."""
    lang = figure_lang(lang)
    return _histogram(*data, "fig_pdd", "fig_pdd_axis", lang, "#4c72b0")


@_figure("answer_time")
def answer_time(data: Histogram, *, lang: Lang = "en") -> Figure:
    """Distribution of time to answer (first INVITE -> 2xx) over answered calls."""
    lang = figure_lang(lang)
    return _histogram(*data, "fig_answer", "fig_answer_axis", lang, CLASS_COLOURS["2xx"])


@_figure("retries")
def retries(frame: pd.DataFrame, *, lang: Lang = "en") -> Figure:
    """Per failure code: attempts retried respecting Retry-After, too early, without it, or not."""
    lang = figure_lang(lang)
    fig, ax = _counts_figure(
        (7.0, 3.8), label("fig_retry", lang), "fig_code_axis", "fig_failures_axis", lang
    )
    if frame.empty:
        _empty(ax, lang)
        return fig
    codes = [str(c) for c in frame["code"]]
    bottom = np.zeros(len(frame))
    columns = {
        "honoured": "honoured",
        "too_early": "too_early",
        "retried_without_ra": "without_retry_after_retried",
        "not_retried": "not_retried",
    }
    for key, column in columns.items():
        values = frame[column].to_numpy(dtype=float)
        ax.bar(codes, values, bottom=bottom, label=label(key, lang), color=RETRY_COLOURS[key])
        bottom += values
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def draw(data: Mapping[str, Any], *, lang: Lang = "en") -> dict[str, Figure]:
    """The figures of ``data`` (:func:`sipstats.render.figure_data.collect`), by name."""
    return {name: FIGURES[name].draw(value, lang=lang) for name, value in data.items()}


def figures(
    analysis: Analysis,
    *,
    lang: Lang = "en",
    skip_empty: bool = False,
    names: Collection[str] | None = None,
) -> dict[str, Figure]:
    """Every report figure by name (or those in ``names``); ``skip_empty`` leaves out those
    with nothing to draw."""
    return draw(figure_data.collect(analysis, skip_empty=skip_empty, names=names), lang=lang)


def to_svg(fig: Figure, *, lang: Lang = "en") -> str:
    """The figure as an SVG element for inlining in HTML (no XML prolog, no date).

    ``lang`` must match the figure's: fonts are looked up when the text is drawn.
    """
    buffer = io.StringIO()
    with _style(lang):
        _saved(fig, buffer, format="svg", metadata={"Date": None, "Creator": "sipstats"})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def save_figures(analysis: Analysis, directory: Path, *, lang: Lang = "en") -> list[Path]:
    """Write each figure that has data as ``<name>.png`` and ``<name>.svg`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures(analysis, lang=lang, skip_empty=True).items():
        stem = directory / name
        with _style(lang):
            _saved(fig, stem.with_suffix(".png"), metadata={"Software": None})
            _saved(fig, stem.with_suffix(".svg"), metadata={"Date": None, "Creator": "sipstats"})
        written += [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    return written
