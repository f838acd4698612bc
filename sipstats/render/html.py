"""Analysis -> one self-contained HTML file: inline CSS, inline SVG figures, no script, no fetch.

Everything from a capture is untrusted: the Jinja2 environment autoescapes every value, and
the only markup inserted unescaped is the SVG matplotlib wrote for our own figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from sipstats.analyze.breakdown import FAILURE_CLASSES
from sipstats.drill.flow import sample_flows
from sipstats.drill.ladder import ladder_svg
from sipstats.ranking import most_first_order
from sipstats.render.colours import CLASS_COLOURS
from sipstats.render.figure_data import collect
from sipstats.render.labels import Lang, label, malformed_label, outcome_label
from sipstats.render.options import RenderOptions
from sipstats.render.tables import (
    DASH,
    capture_window,
    filters_text,
    finding_rows,
    fmt_clock,
    fmt_int,
    fmt_metric,
    fmt_ts,
    metric_row,
    report_tables,
    retransmission_ratio,
    selected_window,
)
from sipstats.textsafe import visible
from sipstats.workers import Forked, WorkerGone

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

_ENV = Environment(
    loader=PackageLoader("sipstats.render", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
#: Compiled once, when the module loads: the command line loads it while the capture is read.
_TEMPLATE = _ENV.get_template("report.html.j2")


def _key_figures(analysis: Analysis, lang: Lang) -> list[tuple[str, str, str, str]]:
    """(id, label, value, detail) of the first-screen cards: what failed, where, since when."""
    calls = analysis.end_to_end_calls
    failed = calls["final_status"].ge(400).fillna(False) | (calls["outcome"] == "no_final_response")
    codes = analysis.by_code[analysis.by_code["status_class"].isin(FAILURE_CLASSES)]
    top_code = DASH
    if not codes.empty:
        worst = codes.iloc[most_first_order(codes["code"].tolist(), codes["unique"].tolist())[0]]
        top_code = f"{worst['code']} × {int(worst['unique']):,}"
    responders = analysis.failures_by_responder
    worst_responder, worst_failures = DASH, ""
    if not responders.empty:
        first = responders.iloc[0]
        worst_responder = str(first["responder"])
        worst_failures = label("n_failures", lang, n=f"{int(first['failures']):,}")
    bursts = analysis.findings[analysis.findings["kind"] == "failure_burst"]
    onset = fmt_clock(bursts["start"].min()) if not bursts.empty else DASH
    asr = metric_row(analysis, "ASR")
    answered_of = "" if asr is None else label("of_settled", lang, n=fmt_int(asr["samples"]))
    return [
        ("calls", label("calls", lang), fmt_int(len(calls)), ""),
        ("asr", label("card_answered", lang), fmt_metric(analysis, "ASR", lang), answered_of),
        ("failed", label("card_failed_calls", lang), fmt_int(int(failed.sum())), ""),
        ("top_failure", label("card_top_failure", lang), top_code, ""),
        ("worst_responder", label("card_worst_responder", lang), worst_responder, worst_failures),
        ("onset", label("card_onset", lang), onset, ""),
    ]


def _cards(analysis: Analysis, data: dict[str, Any], lang: Lang) -> list[tuple[str, str, str]]:
    """(id, label, value) of the other summary cards."""
    s = data.get("summary", {})
    return [
        ("messages", label("sip_messages", lang), fmt_int(s.get("sip_messages"))),
        ("ser", "SER", fmt_metric(analysis, "SER", lang)),
        ("seer", "SEER", fmt_metric(analysis, "SEER", lang)),
        ("isa", "ISA", fmt_metric(analysis, "ISA", lang)),
        ("retrans", label("retransmission_ratio", lang), retransmission_ratio(s)),
        ("malformed", label("malformed", lang), fmt_int(s.get("malformed"))),
        (
            "unanswered",
            label("transactions_without_final", lang),
            fmt_int(s.get("transactions_without_final")),
        ),
    ]


#: Where the evidence behind each kind of finding is in the report (an element id).
FINDING_ANCHORS: Final[dict[str, str]] = {
    "failure_burst": "timeline",
    "failure_level": "by_code",
    "retry_storm": "t-storms",
    "retry_after_ignored": "t-early_retriers",
    "timeouts": "summary",
    "auth_loop": "registrations",
    "pdd_degradation": "t-delays",
    "icmp_unreachable": "inputs",
}


def _findings(analysis: Analysis, lang: Lang) -> list[tuple[str, str, str, str]]:
    """(severity key, severity label, sentence, anchor) per finding, most severe first."""
    severities = analysis.findings["severity"].astype("str").tolist()
    return [
        (severity, shown, sentence, FINDING_ANCHORS[kind])
        for severity, (kind, shown, sentence) in zip(
            severities, finding_rows(analysis, lang), strict=True
        )
    ]


class Figures(NamedTuple):
    """The report's figures as drawn (in this process or a forked one, which sends them back)."""

    svg: dict[str, str]
    """Each figure's inline SVG, by name."""
    lang: Lang
    """The language their text is in: English for a Chinese report without a CJK font."""


def _figures(data: Mapping[str, Any], lang: Lang) -> Figures:
    """The figures of ``data`` (:func:`sipstats.render.figure_data.collect`) drawn, in the
    report's language where a font allows it."""
    from sipstats.render import plots  # matplotlib loads only where figures are drawn

    svg = {name: plots.to_svg(fig, lang=lang) for name, fig in plots.draw(data, lang=lang).items()}
    return Figures(svg, plots.figure_lang(lang))


class _Share(NamedTuple):
    """Some of the figures, drawn in a forked process."""

    data: dict[str, Any]
    drawing: Forked[Figures]


def _drawing(data: Mapping[str, Any], lang: Lang, processes: int) -> list[_Share]:
    """The figures of ``data`` drawn in up to ``processes`` forked processes, which inherit
    their data (nothing is sent) and matplotlib (imported here first, not once in each),
    dealt out in turn: the two slowest, failures and timeline, come first and go to
    different processes."""
    from sipstats.render import plots  # noqa: F401  # matplotlib imported once, here: inherited

    names = list(data)
    shares = [names[k::processes] for k in range(min(processes, len(names)))]
    started: list[_Share] = []
    try:
        for share in shares:
            part = {name: data[name] for name in share}
            started.append(_Share(part, Forked(partial(_figures, part, lang))))
    except BaseException:  # a fork that failed: the processes already started are ended
        for done in started:
            done.drawing.close()
        raise
    return started


def _drawn(data: Mapping[str, Any], lang: Lang, shares: list[_Share]) -> Figures:
    """The figures of ``data`` as the forked processes drew them (none: drawn here); a share
    whose process ended without its figures (killed) is drawn here instead."""
    if not shares:
        return _figures(data, lang)
    parts = []
    for share in shares:
        try:
            parts.append(share.drawing.result())
        except WorkerGone:
            parts.append(_figures(share.data, lang))
    svg = {name: part.svg[name] for part in parts for name in part.svg}
    return Figures({name: svg[name] for name in data}, parts[0].lang)


def _ladders(analysis: Analysis, lang: Lang) -> list[tuple[str, str, Markup]]:
    """(title, Call-ID, SVG) of each sample call flow; the SVG escapes all capture text."""
    out = []
    for name, flow in sample_flows(analysis):
        title = label(name, lang) if name == "slowest_pdd" else outcome_label(name, lang)
        out.append((title, visible(", ".join(flow.call_ids)), Markup(ladder_svg(flow))))
    return out


def render_html(analysis: Analysis, options: RenderOptions) -> str:
    """The HTML report as one string (UTF-8 when written).

    With ``options.jobs`` > 1 the figures (matplotlib, the slowest part) are drawn in that
    many forked processes while this one writes the rest of the page; they inherit the
    figures' data (:func:`sipstats.render.figure_data.collect`, taken here first) and are
    ended if the page fails.
    """
    lang = options.lang
    figure_data = collect(analysis, skip_empty=True)
    shares = _drawing(figure_data, lang, options.jobs) if options.jobs > 1 else []
    try:
        return _page(analysis, options, figure_data, shares)
    finally:
        for share in shares:  # ended if the page failed before it took their figures
            share.drawing.close()


def _page(
    analysis: Analysis, options: RenderOptions, figure_data: dict[str, Any], shares: list[_Share]
) -> str:
    """The page, with the figures of ``shares`` (none: drawn here)."""
    lang = options.lang
    data = analysis.to_dict()
    first, last = capture_window(analysis)
    context: dict[str, Any] = {
        "lang": lang,
        "L": lambda key, **kw: label(key, lang, **kw),
        "files": [visible(i.name) for i in analysis.capture.inputs],
        "window": f"{fmt_ts(first)} → {fmt_ts(last)}",
        "filters": filters_text(analysis, lang),
        "selected_window": selected_window(analysis),
        "key_figures": _key_figures(analysis, lang),
        "cards": _cards(analysis, data, lang),
        "findings": _findings(analysis, lang),
        "ladders": _ladders(analysis, lang),
        "colours": CLASS_COLOURS,
        "interval": analysis.interval,
        # the tables by key, as the template places them (the same tables as the text report)
        "t": {t.key: t for t in report_tables(analysis, lang, options.top, data=data)},
        "anomalies": [
            (i.name, malformed_label(reason, lang), a.count, a.frames, visible(a.detail))
            for i in analysis.capture.inputs
            for reason, a in sorted(i.malformed.items())
        ],
    }
    # our own matplotlib SVG, trusted: figure text is drawn as paths from fixed labels
    drawn = _drawn(figure_data, lang, shares)
    context["figures"] = {name: Markup(svg) for name, svg in drawn.svg.items()}
    context["figure_note"] = label("note_figure_text", lang) if drawn.lang != lang else ""
    return _TEMPLATE.render(context)
