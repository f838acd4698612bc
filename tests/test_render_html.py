"""The HTML report and the figures: self-contained, escaped, deterministic, no global state."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from sipstats.analyze import Analysis, analyze
from sipstats.messages import read_capture
from sipstats.render import RENDERERS, RenderOptions, write_report
from sipstats.render import plots as plots_module
from sipstats.render.labels import Lang, label
from sipstats.render.plots import CLASS_COLOURS, FIGURES, save_figures, to_svg
from sipstats.select import filter_capture
from tests.report_captures import FORMULA, MARKUP, SCRIPT, mixed_analysis, mixed_capture


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return mixed_analysis(tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="module")
def page(analysis: Analysis) -> str:
    return RENDERERS["html"].render(analysis, RenderOptions())


def test_html_escapes_everything_from_the_capture(page: str) -> None:
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "[bold red]alarm[/bold red]" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page  # the User-Agent, as text
    assert "=HYPERLINK(&#34;http://evil.example/&#34;,&#34;click&#34;)" in page
    assert FORMULA not in page  # the quotes are entities, the text is intact
    assert SCRIPT not in page
    assert MARKUP in page


def test_html_is_self_contained(page: str) -> None:
    for tag in re.finditer(r"<[A-Za-z][^>]*>", page):  # real tags; capture text is escaped
        for link in re.finditer(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", tag[0]):
            assert link[1].startswith(("#", "data:")), tag[0]
    assert "<link" not in page
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)
    assert "<svg" in page


def test_html_has_every_section_and_card(analysis: Analysis, page: str) -> None:
    for key in ("by_code", "by_class", "by_category", "timeline", "outcomes", "delays",
                "retry_after", "early_retriers", "storms", "by_peer", "registrations",
                "metrics", "inputs"):  # fmt: skip
        assert label(key) in page, key
    for card in ("messages", "calls", "asr", "ser", "seer", "isa", "retrans"):
        assert f'id="card-{card}"' in page
    summary = analysis.to_dict()["summary"]
    assert f">{summary['sip_messages']:,}<" in page
    for name in analysis.metrics["name"]:
        assert f"<td>{name}</td>" in page


def test_code_rows_carry_the_catalogue_meaning(analysis: Analysis, page: str) -> None:
    row = analysis.by_code.set_index("code").loc["486"]
    meaning = row["description"].replace("'", "&#39;").replace('"', "&#34;")
    assert f'<tr class="code" title="{meaning}" id="code-486">' in page
    assert f"<summary>{label('meaning')}</summary>{meaning}</details>" in page


def test_every_class_colour_reaches_the_page(page: str) -> None:
    for name, colour in CLASS_COLOURS.items():
        assert f".cls-{name} {{ background: {colour}; }}" in page


def test_html_is_deterministic(analysis: Analysis, page: str) -> None:
    assert RENDERERS["html"].render(analysis, RenderOptions()) == page


def test_html_in_chinese(analysis: Analysis) -> None:
    out = RENDERERS["html"].render(analysis, RenderOptions(lang="zh"))
    assert '<html lang="zh-Hans">' in out
    assert label("title", "zh") in out
    assert analysis.by_code.set_index("code").loc["486", "description_zh"] in out
    if plots_module.figure_lang("zh") == "en":
        assert label("note_figure_text", "zh") in out


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_have_titles_and_axis_labels(analysis: Analysis, name: str) -> None:
    before = dict(mpl.rcParams)
    fig = FIGURES[name](analysis)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title()
    assert ax.get_xlabel()
    assert dict(mpl.rcParams) == before  # styles stay local to the figure


def test_figure_titles_sit_on_the_axes_unmeasured(analysis: Analysis) -> None:
    """A report figure's title sits at the top of its axes (``axes.titley`` in the style),
    where matplotlib's own placement leaves it in these figures, which put nothing above
    the axes: matplotlib then does not measure every y axis again for each title, in the
    layout and in the drawing. Ticks moved above the axes do not move the title."""
    fig = plots_module.timeline(analysis)
    ax = fig.axes[0]
    ax.xaxis.tick_top()
    to_svg(fig)
    assert ax.title.get_position()[1] == 1.0


@pytest.mark.parametrize("name", ["timeline", "failures"])
def test_figure_titles_clear_a_y_offset_text(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Millions of responses per bucket put an offset text ('1e6') above the y axis, the
    one thing in these figures that matplotlib's automatic placement would move a title
    for: it sits clear of the title, so the pinned title gives the same SVG."""
    data = plots_module.figure_data.FIGURE_DATA[name].take(analysis)
    counts = data.frame.columns.drop("failure_share", errors="ignore")
    huge = data._replace(frame=data.frame.assign(**{c: data.frame[c] * 10**6 for c in counts}))
    pinned = FIGURES[name].draw(huge)
    svg = to_svg(pinned)
    assert pinned.axes[0].yaxis.offsetText.get_text().startswith("1e")
    monkeypatch.setitem(plots_module._STYLE, "axes.titley", None)  # matplotlib's placement
    assert svg == to_svg(FIGURES[name].draw(huge))


def test_timeline_draws_the_analysis_buckets(analysis: Analysis) -> None:
    fig = plots_module.timeline(analysis, interval="1s")
    groups = fig.axes[0].collections  # one artist of bars per class
    frame = analysis.timeline("1s")
    heights = [np.ptp(bar.vertices[:, 1]) for group in groups for bar in group.get_paths()]
    assert sum(heights) == pytest.approx(frame.to_numpy().sum())
    colours = {mpl.colors.to_hex(group.get_facecolor()[0]) for group in groups}
    assert colours <= set(CLASS_COLOURS.values())
    assert len(colours) == len(groups)


@pytest.fixture(params=["3.11", "3.8-3.10"])
def matplotlib_of(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The matplotlib CI installs, and one that acts as 3.8-3.10 do where the timelines' bars
    differ: add_collection updates the data limits alone (not the view), and legends have no
    handler for a PatchCollection."""
    if request.param == "3.8-3.10":
        from functools import partialmethod

        from matplotlib.axes import Axes
        from matplotlib.collections import PatchCollection
        from matplotlib.legend import Legend

        older = partialmethod(Axes.add_collection, autolim="_datalim_only")
        monkeypatch.setattr(Axes, "add_collection", older)
        monkeypatch.delitem(Legend._default_handler_map, PatchCollection, raising=False)
    return str(request.param)


def test_bars_in_one_artist_look_as_matplotlib_bars(matplotlib_of: str) -> None:
    """The stacked bars of the timelines, one artist per group, give the PNG, axis limits
    and legend ``ax.bar`` gives with a Rectangle per bar, zero heights included, on any
    matplotlib the package allows."""
    left = np.arange(6, dtype=float) + 20_000.0
    low = np.array([0.0, 1.0, 0.0, 5.0, 2.0, 0.0])
    high = np.array([3.0, 0.0, 4.0, 1.0, 2.0, 7.0])

    def drawn(bars: Callable[[Any, np.ndarray, np.ndarray, str, str], None]) -> tuple[bytes, Any]:
        fig = Figure(figsize=(4.0, 3.0), layout="constrained")
        ax = fig.add_subplot()
        bars(ax, np.zeros(6), low, "first", "#d62728")
        bars(ax, low, high, "second", "#1f77b4")
        ax.legend(loc="upper left", handler_map=plots_module._BAR_LEGEND)
        png = io.BytesIO()
        fig.savefig(png, format="png", metadata={"Software": None})
        return png.getvalue(), (ax.get_xlim(), ax.get_ylim(), len(ax.patches))

    def patches(ax: Any, bottom: np.ndarray, height: np.ndarray, name: str, colour: str) -> None:
        ax.bar(left, height, width=0.85, bottom=bottom, align="edge", label=name, color=colour)

    def one_artist(ax: Any, bottom: np.ndarray, height: np.ndarray, name: str, colour: str) -> None:
        plots_module._bars(ax, left, 0.85, bottom, height, name=name, colour=colour)

    (expected, (xlim, ylim, _)), (png, limits) = drawn(patches), drawn(one_artist)
    assert limits == (xlim, ylim, 0)  # no Rectangle per bar
    assert png == expected


@pytest.mark.parametrize(("size", "whole_ms"), [(1, False), (7, False), (2_000, False), (51, True)])
def test_a_delay_histogram_looks_as_matplotlib_hist(
    matplotlib_of: str, size: int, whole_ms: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PDD and answer-time histograms, their bars one artist, give the PNG of the same
    figure with ``ax.hist``'s Rectangle per bin, and its axis limits to the last bit or so:
    ``add_collection`` takes the data limits through the axes' transform and back (one value,
    a few, many, whole milliseconds with an outlier, as captures give)."""
    values = np.random.default_rng(7).gamma(2.0, 300.0, size) + 80.0
    if whole_ms:
        values = np.append(np.round(values[:-1]), 30_000.0)
    marks = {"p50": float(np.median(values)), "p90": None, "p99": float(values.max())}

    def drawn() -> tuple[bytes, Any]:
        fig = plots_module.pdd.draw((values, marks))
        png = io.BytesIO()
        fig.savefig(png, format="png", metadata={"Software": None})
        ax = fig.axes[0]
        return png.getvalue(), (ax.get_xlim(), ax.get_ylim(), len(ax.patches))

    png, (xlim, ylim, rectangles) = drawn()
    assert rectangles == 0

    def hist(ax: Any, left: Any, width: Any, bottom: Any, height: Any, **kwargs: Any) -> None:
        ax.hist(values, bins=len(height), color=kwargs["colour"])

    monkeypatch.setattr(plots_module, "_bars", hist)
    expected, (hist_xlim, hist_ylim, bins) = drawn()
    assert [*xlim, *ylim] == pytest.approx([*hist_xlim, *hist_ylim], rel=1e-12)
    assert bins == min(40, max(5, int(np.sqrt(size))))
    assert png == expected


@pytest.mark.parametrize("name", ["timeline", "failures"])
def test_bar_figures_scale_and_name_their_bars(
    analysis: Analysis, matplotlib_of: str, name: str
) -> None:
    """The timeline and failure figures' axes show every bar and their legends name each
    group of bars, on any matplotlib the package allows."""
    ax = FIGURES[name](analysis).axes[0]
    corners = np.concatenate(
        [bar.vertices for group in ax.collections for bar in group.get_paths()]
    )
    shown = np.array([ax.get_xlim(), ax.get_ylim()])  # [[left, right], [bottom, top]]
    assert np.all(shown[:, 0] <= corners.min(axis=0))
    assert np.all(corners.max(axis=0) <= shown[:, 1])
    names = [text.get_text() for text in ax.get_legend().get_texts()]
    assert names[: len(ax.collections)] == [group.get_label() for group in ax.collections]


def test_figure_files(analysis: Analysis, tmp_path: Path) -> None:
    written = save_figures(analysis, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{name}.{ext}" for name in FIGURES for ext in ("png", "svg")
    )
    svg = (tmp_path / "timeline.svg").read_text()
    assert "<dc:date>" not in svg
    assert svg.endswith(to_svg(plots_module.timeline(analysis)))  # same figure, plus a prolog


def test_figures_are_deterministic(analysis: Analysis) -> None:
    for build in (plots_module.timeline, plots_module.retries):
        assert to_svg(build(analysis)) == to_svg(build(analysis))


@pytest.fixture(scope="module")
def empty_analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    capture = read_capture([mixed_capture(tmp_path_factory.mktemp("empty") / "mixed.pcap")])
    return analyze(filter_capture(capture, peer="192.0.2.7"))


_SAVES: dict[str, dict[str, Any]] = {
    "svg": {"format": "svg", "metadata": {"Date": None, "Creator": "sipstats"}},
    "png": {"format": "png", "metadata": {"Software": None}},
}


@pytest.mark.parametrize(
    ("data", "lang", "fmt"),
    [
        ("analysis", "en", "svg"),
        ("analysis", "zh", "svg"),
        ("analysis", "en", "png"),
        ("empty_analysis", "en", "svg"),
    ],
)
@pytest.mark.parametrize("name", list(FIGURES))
def test_a_figure_laid_out_once_is_the_figure_savefig_writes(
    request: pytest.FixtureRequest, name: str, data: str, lang: Lang, fmt: str
) -> None:
    """Saved for the report (``_saved``: to_svg, save_figures) a figure runs the layout
    without savefig's extra drawing: the same file as a plain savefig of the same figure, in
    either language, as SVG or PNG, with or without data; and it is drawn once."""
    import io

    analysis = request.getfixturevalue(data)
    plain = io.BytesIO()
    with plots_module._style(lang):
        Figure.savefig(FIGURES[name](analysis, lang=lang), plain, **_SAVES[fmt])
    drawn: list[object] = []
    draw = Figure.draw

    def counted(self: Figure, renderer: Any) -> None:
        drawn.append(renderer)
        draw(self, renderer)

    laid_out = io.BytesIO()
    with plots_module._style(lang):
        fig = FIGURES[name](analysis, lang=lang)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Figure, "draw", counted)
            plots_module._saved(fig, laid_out, **_SAVES[fmt])
    assert laid_out.getvalue() == plain.getvalue()
    assert len(drawn) == 1  # one full drawing: the layout pass drew no artist


@pytest.mark.parametrize("fmt", list(_SAVES))
def test_a_figure_laid_out_once_measures_with_the_renderer_that_draws_it(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The layout of a report figure measures its text with the renderer that then draws
    it (each text measured once for both), not with a renderer of its own."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    measured: list[object] = []
    drawn: list[object] = []
    execute, draw = ConstrainedLayoutEngine.execute, Figure.draw

    def recorded(self: ConstrainedLayoutEngine, fig: Figure) -> Any:
        measured.append(fig._get_renderer())  # type: ignore[attr-defined]
        return execute(self, fig)

    def counted(self: Figure, renderer: Any) -> None:
        drawn.append(renderer)
        draw(self, renderer)

    monkeypatch.setattr(ConstrainedLayoutEngine, "execute", recorded)
    monkeypatch.setattr(Figure, "draw", counted)
    with plots_module._style("en"):
        plots_module._saved(plots_module.timeline(analysis), io.BytesIO(), **_SAVES[fmt])
    assert len(measured) == len(drawn) == 1
    assert measured[0] is drawn[0]


_CROPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "rc tight": ({"savefig.bbox": "tight"}, {}),
    "asked tight": ({}, {"bbox_inches": "tight"}),
    "asked box": ({}, {"bbox_inches": Bbox.from_bounds(0.5, 0.5, 6, 3)}),
}


@pytest.mark.parametrize("fmt", list(_SAVES))
@pytest.mark.parametrize("name", ["timeline", "pdd"])
@pytest.mark.parametrize("crop", list(_CROPS))
def test_a_figure_cropped_to_its_extent_is_laid_out_before_it_is_measured(
    analysis: Analysis, name: str, fmt: str, crop: str
) -> None:
    """When savefig crops (``savefig.bbox: tight`` in the user's rc, or a ``bbox_inches``),
    it measures the figure after its first pass: a report figure is laid out in that pass,
    so the file is a plain savefig's, not one cut to the figure before its layout."""
    rc, asked = _CROPS[crop]
    plain, laid_out = io.BytesIO(), io.BytesIO()
    with plots_module._style("en"), mpl.rc_context(rc):
        Figure.savefig(FIGURES[name](analysis), plain, **_SAVES[fmt], **asked)
        plots_module._saved(FIGURES[name](analysis), laid_out, **_SAVES[fmt], **asked)
    assert laid_out.getvalue() == plain.getvalue()


def test_a_figure_whose_layout_fails_is_saved_as_savefig_saves_it(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layout that raises ValueError is skipped, as Figure.draw skips it, not raised."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    def cannot_fit(self: object, fig: Figure) -> None:
        raise ValueError("no room")

    monkeypatch.setattr(ConstrainedLayoutEngine, "execute", cannot_fit)
    assert to_svg(plots_module.timeline(analysis)).startswith("<svg")


def test_a_figure_drawn_for_real_when_asked_for_its_layout_is_drawn(analysis: Analysis) -> None:
    """Should savefig draw a report figure once, for real, without a pass that draws nothing
    first, that pass is not taken for the layout pass: the figure is drawn, not blank."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plots_module.timeline(analysis)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig._layout_only = True  # type: ignore[attr-defined]
    fig.draw(renderer)
    pixels = np.asarray(renderer.buffer_rgba())[..., :3]
    assert (pixels < 128).any()  # text and bars, not a white page


def test_an_empty_selection_renders_every_format(tmp_path: Path) -> None:
    capture = read_capture([mixed_capture(tmp_path / "mixed.pcap")])
    empty = analyze(filter_capture(capture, peer="192.0.2.7"))
    for fmt in RENDERERS:
        (written, *_) = write_report(empty, fmt, tmp_path / f"empty-{fmt}")
        assert written.exists()
    page = (tmp_path / "empty-html").read_text(encoding="utf-8")
    assert "<svg" not in page  # figures with nothing to draw are left out
    assert label("no_data") in page
    assert plots_module.figures(empty, skip_empty=True) == {}
    assert len(plots_module.figures(empty)) == len(FIGURES)  # notebooks still get every figure


def test_timeline_with_many_buckets_draws_one_outline_per_class(analysis: Analysis) -> None:
    frame = analysis.timeline("10ms")
    assert len(frame) > 300
    ax = plots_module.timeline(analysis, interval="10ms").axes[0]
    assert not ax.patches
    present = [c for c in CLASS_COLOURS if c in frame.columns and frame[c].any()]
    assert [c.get_label() for c in ax.collections] == present


@pytest.mark.parametrize(("name", "key"), [("pdd", "pdd_ms"), ("answer_time", "answer_ms")])
def test_delay_figures_mark_the_analysis_percentiles(
    analysis: Analysis, name: str, key: str
) -> None:
    pct = analysis.to_dict()["calls"][key]
    ax = FIGURES[name](analysis).axes[0]
    marked = [line.get_xdata()[0] for line in ax.lines]
    assert marked == pytest.approx([pct["p50"], pct["p90"], pct["p99"]])


def test_count_axes_have_whole_ticks(analysis: Analysis) -> None:
    ax = plots_module.timeline(analysis, interval="1s").axes[0]
    ticks = ax.get_yticks()
    assert len(ticks) > 1
    assert all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("jobs", [2, len(FIGURES) + 1])
def test_figures_drawn_in_forked_processes_give_the_same_page(
    analysis: Analysis, page: str, jobs: int
) -> None:
    """With ``jobs`` the figures are dealt out to forked processes (never more processes than
    figures): every figure comes back, in the page's place for it."""
    forked = RENDERERS["html"].render(analysis, RenderOptions(jobs=jobs))
    assert forked == page
    assert page.count("<figure id=") == len(plots_module.figures(analysis, skip_empty=True))


def test_a_drawing_process_that_dies_leaves_its_figures_drawn_here(
    analysis: Analysis, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drawing process killed before it sent its figures (out of memory, say): the page
    draws that share itself and is the same."""
    from sipstats.render import html

    parent, draw = os.getpid(), html._figures

    def dies_in_the_child(*args: Any) -> Any:
        if os.getpid() != parent:
            os._exit(9)
        return draw(*args)

    monkeypatch.setattr(html, "_figures", dies_in_the_child)
    assert RENDERERS["html"].render(analysis, RenderOptions(jobs=2)) == page


def test_a_page_that_fails_ends_its_drawing_processes(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page fails after the drawing processes started: they are ended and reaped, not
    left running as long as the session that asked for the page."""
    from sipstats.render import html

    started: list[Any] = []

    def drawing(*args: Any) -> Any:
        shares = draw(*args)
        started.extend(share.drawing for share in shares)
        return shares

    def fails(self: Analysis) -> None:
        raise RuntimeError("the page failed")

    draw = html._drawing
    monkeypatch.setattr(html, "_drawing", drawing)
    monkeypatch.setattr(Analysis, "to_dict", fails)
    with pytest.raises(RuntimeError, match="the page failed"):
        RENDERERS["html"].render(analysis, RenderOptions(jobs=2))
    assert len(started) == 2
    assert all(child._process.exitcode is not None for child in started)


def test_a_fork_that_fails_ends_the_drawing_processes_already_started(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second drawing process cannot be started (out of processes, say): the first, still
    drawing, is ended and reaped, and the error reaches the caller."""
    import signal
    import time

    from sipstats.render import html
    from sipstats.workers import Forked

    started: list[Forked[object]] = []

    def forked(task: Callable[[], object]) -> Forked[object]:
        if started:
            raise OSError("fork: Resource temporarily unavailable")
        started.append(Forked(task))
        return started[-1]

    monkeypatch.setattr(html, "Forked", forked)
    monkeypatch.setattr(html, "_figures", lambda *_: time.sleep(60))
    with pytest.raises(OSError, match="fork"):
        RENDERERS["html"].render(analysis, RenderOptions(jobs=2))
    assert len(started) == 1
    assert started[0]._process is not None
    assert started[0]._process.exitcode == -signal.SIGTERM


def test_every_figure_pairs_its_data_with_its_drawing_in_report_order() -> None:
    from sipstats.render import figure_data

    assert list(FIGURES) == list(figure_data.FIGURE_DATA)
    assert all(plot.source is figure_data.FIGURE_DATA[name] for name, plot in FIGURES.items())


def test_a_figure_function_shows_its_options_and_pickles_as_a_function_does() -> None:
    """``plots.timeline`` and the others, called with an analysis: their signature names the
    options their data take (help() in a notebook shows them), and they pickle by name (a
    process pool can be handed one)."""
    import inspect
    import pickle

    timeline = inspect.signature(plots_module.timeline).parameters
    assert list(timeline) == ["analysis", "interval", "by", "lang"]
    assert "category" in str(timeline["by"].annotation)
    assert list(inspect.signature(plots_module.outcomes).parameters) == ["analysis", "lang"]
    for plot in FIGURES.values():
        assert pickle.loads(pickle.dumps(plot)) is plot


def test_a_figure_is_left_out_when_what_it_draws_is_empty(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls figures draw the end-to-end calls: their check reads those, not every leg."""
    from sipstats.render import figure_data

    assert {"outcomes", "pdd", "answer_time"} <= set(figure_data.collect(analysis, skip_empty=True))
    no_calls = analysis.end_to_end_calls.iloc[:0]
    monkeypatch.setattr(Analysis, "end_to_end_calls", property(lambda self: no_calls))
    assert not analysis.calls.empty
    left = figure_data.collect(analysis, skip_empty=True)
    assert not {"outcomes", "pdd", "answer_time"} & set(left)
    assert {"failures", "timeline", "classes"} <= set(left)


def test_the_drawing_processes_inherit_matplotlib(
    analysis: Analysis, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drawing is imported once, before the processes that draw are forked, not once in
    each of them (a report made through the API, where nothing imported it yet)."""
    import sys

    import sipstats.render
    from sipstats.render import html

    monkeypatch.delitem(sys.modules, "sipstats.render.plots")
    monkeypatch.delattr(sipstats.render, "plots")
    imported: list[bool] = []
    forked = html.Forked

    def forked_after_import(task: Callable[[], Any]) -> Any:
        imported.append("sipstats.render.plots" in sys.modules)
        return forked(task)

    monkeypatch.setattr(html, "Forked", forked_after_import)
    assert RENDERERS["html"].render(analysis, RenderOptions(jobs=2)) == page
    assert imported == [True, True]


def test_drawing_the_figures_leaves_the_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library does not freeze or unfreeze the cycle collector (the command does, in a
    process of its own): a freeze made while the figures are drawn, by another thread of a
    pre-forking server for example, is still there afterwards."""
    import gc

    from sipstats.render import html

    frozen_while_drawing: list[int] = []
    draw = plots_module.draw

    def drawing(*args: Any, **kwargs: Any) -> Any:
        frozen_while_drawing.append(gc.get_freeze_count())
        gc.freeze()  # as another thread would
        return draw(*args, **kwargs)

    monkeypatch.setattr(plots_module, "draw", drawing)
    before = gc.get_freeze_count()
    try:
        assert html._figures({}, "en").svg == {}
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
    assert frozen_while_drawing == [before]


@pytest.mark.parametrize(("lang", "fmt"), [("en", "svg"), ("zh", "svg"), ("en", "png")])
@pytest.mark.parametrize("name", list(FIGURES))
def test_a_figure_reads_each_font_s_heights_once_for_the_same_file(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch, name: str, lang: Lang, fmt: str
) -> None:
    """While a report figure draws, its renderer gives each font's line heights, read from
    the font once (matplotlib 3.11 reads them for every text it lays out otherwise): the same
    file, byte for byte, as matplotlib's own reading; the canvas's renderer, used again by a
    later drawing, is left without them."""
    from contextlib import nullcontext

    from matplotlib.text import Text

    read: list[object] = []
    laid_out: list[object] = []
    drawn_by: list[object] = []
    heights, layout, draw = plots_module._font_heights, Text._get_layout, Figure.draw

    def counted_heights(prop: Any, dpi: float) -> Any:
        read.append(prop)
        return heights(prop, dpi)

    def counted_layout(self: Text, renderer: Any) -> Any:
        laid_out.append(self)
        return layout(self, renderer)

    def counted_draw(self: Figure, renderer: Any) -> None:
        drawn_by.append(renderer)
        draw(self, renderer)

    def saved(fig: Figure) -> bytes:
        out = io.BytesIO()
        with plots_module._style(lang):
            plots_module._saved(fig, out, **_SAVES[fmt])
        return out.getvalue()

    monkeypatch.setattr(plots_module, "_font_heights", counted_heights)
    monkeypatch.setattr(Text, "_get_layout", counted_layout)
    monkeypatch.setattr(Figure, "draw", counted_draw)
    once = saved(FIGURES[name](analysis, lang=lang))
    assert 0 < len(read) < len(laid_out) // 4
    assert drawn_by
    assert not any(hasattr(renderer, "_get_font_height_metrics") for renderer in drawn_by)
    monkeypatch.setattr(plots_module, "_font_heights_read_once", lambda *_: nullcontext())
    assert once == saved(FIGURES[name](analysis, lang=lang))


@pytest.fixture
def matplotlib_version(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the matplotlib version the font-height hook checks (asked again after the test)."""

    def set_version(*version: int) -> None:
        monkeypatch.setattr(mpl, "__version_info__", (*version, 0, "final", 0))
        plots_module._heights_hook_matches.cache_clear()

    yield set_version
    plots_module._heights_hook_matches.cache_clear()


@pytest.mark.parametrize(
    ("version", "hooked"), [((3, 11), True), ((3, 10), False), ((3, 12), False), ((4, 0), False)]
)
def test_the_font_heights_hook_is_given_on_matplotlib_3_11_only(
    matplotlib_version: Any, version: tuple[int, int], hooked: bool
) -> None:
    """The hook copies matplotlib 3.11's private arithmetic: another version lays text out
    its own way."""
    from types import SimpleNamespace

    matplotlib_version(*version)
    renderer = SimpleNamespace()
    with plots_module._font_heights_read_once(renderer, Figure()):
        assert hasattr(renderer, "_get_font_height_metrics") is hooked
    assert not hasattr(renderer, "_get_font_height_metrics")


def test_a_renderer_that_takes_no_attribute_draws_without_the_hook(
    matplotlib_version: Any,
) -> None:
    class Slotted:
        __slots__ = ()

    matplotlib_version(3, 11)
    with plots_module._font_heights_read_once(Slotted(), Figure()):
        pass


def test_another_matplotlib_draws_the_same_figure_without_the_hook(
    analysis: Analysis, monkeypatch: pytest.MonkeyPatch, matplotlib_version: Any
) -> None:
    read: list[object] = []
    heights = plots_module._font_heights

    def counted_heights(prop: Any, dpi: float) -> Any:
        read.append(prop)
        return heights(prop, dpi)

    monkeypatch.setattr(plots_module, "_font_heights", counted_heights)
    hooked = to_svg(FIGURES["timeline"](analysis))
    assert read
    read.clear()
    matplotlib_version(3, 12)
    assert to_svg(FIGURES["timeline"](analysis)) == hooked
    assert not read
