"""Analysis -> titled tables of formatted cells, shared by the text, Markdown and HTML reports.

The tables only lay out and format what the analysis computed (counts, shares, percentiles);
they never recompute a statistic, so every report shows the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import pandas as pd

from sipstats.analyze.breakdown import FailureKey, with_failure_share
from sipstats.analyze.findings import describe
from sipstats.catalogue import STATUS_CLASSES
from sipstats.ranking import most_first
from sipstats.render.labels import (
    Lang,
    category_label,
    label,
    malformed_label,
    metric_definition,
    outcome_label,
    reference_label,
    registration_label,
)
from sipstats.schema import OUTCOMES
from sipstats.textsafe import visible

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Placeholder for a missing or undefined value.
DASH = "–"


@dataclass(frozen=True)
class Table:
    """One report table: a stable ``key``, a translated title, columns and formatted rows."""

    key: str
    title: str
    columns: tuple[str, ...]
    numeric: tuple[bool, ...]
    """Per column: right-align (numbers) or not."""
    rows: Sequence[tuple[str, ...]] = ()
    details: Sequence[str] = ()
    """Per row, an optional longer explanation (the HTML report shows it on hover/expand)."""
    note: str = ""
    optional: bool = False
    """Leave the table out altogether when it has no rows (it would only say 'nothing')."""

    @property
    def hidden(self) -> bool:
        """An optional table without rows: reports leave it out."""
        return self.optional and not self.rows


# -- formatting ---------------------------------------------------------------------------------


def fmt_int(value: Any) -> str:
    """An integer with thousands separators, or a dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return DASH
    return f"{int(value):,}"


def fmt_pct(part: float, whole: float) -> str:
    """``part`` as a share of ``whole`` in percent, one decimal; a dash when ``whole`` is 0."""
    return f"{100.0 * part / whole:.1f} %" if whole else DASH


def fmt_num(value: Any, unit: str = "", digits: int = 1) -> str:
    """A float with ``digits`` decimals and its unit; a dash for NaN/None."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return DASH
    text = f"{float(value):,.{digits}f}"
    return f"{text} {unit}".rstrip() if unit else text


def fmt_ts(ns: int | None) -> str:
    """A capture time (ns since the epoch) as ISO 8601 UTC with milliseconds."""
    if ns is None:
        return DASH
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def fmt_timestamp(value: Any) -> str:
    """A pandas timestamp (UTC) in the report's time format."""
    if value is None or value is pd.NaT or pd.isna(value):
        return DASH
    return fmt_ts(pd.Timestamp(value).value)


def fmt_clock(value: Any) -> str:
    """A bucket start as ``HH:MM:SS`` (the table's note gives the date once)."""
    return pd.Timestamp(value).strftime("%H:%M:%S")


def fmt_codes(codes: Any) -> str:
    """Codes with counts ``'503x12|486x2'`` as ``'503×12, 486×2'``."""
    return (
        DASH
        if not isinstance(codes, str) or not codes
        else codes.replace("x", "×").replace("|", ", ")
    )


def fmt_values(values: str) -> str:
    """Retry-After values ``'60x88|10x2'`` as ``'60 s × 88, 10 s × 2'``."""
    if not values:
        return DASH
    parts = []
    for item in str(values).split("|"):
        seconds, _, times = item.partition("x")
        parts.append(f"{seconds} s × {times}" if times else item)
    return ", ".join(parts)


#: Longest table cell: a 30 KB header value is cut here (the DataFrames keep it whole).
MAX_CELL = 300


def cell(value: str) -> str:
    """A table cell made inert and short: C0 controls and DEL spelled out (an ESC from a
    packet must not clear a terminal), at most :data:`MAX_CELL` characters."""
    value = visible(value)
    return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"


def text(value: Any) -> str:
    """A cell from capture data: the value as text, a dash when missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return str(value)


def _labels(keys: Sequence[str], lang: Lang) -> tuple[str, ...]:
    """Column headers: each label key in ``lang``."""
    return tuple(label(key, lang) for key in keys)


#: Tables that count each hop's copy of a relayed message (a capture at a proxy holds the same
#: response once per leg), and tables of what the callers got, counted once on the caller's
#: leg (``client_leg``, calls measured on their first INVITE's leg): the title says which.
EVERY_LEG: Final = frozenset(
    {
        "by_method",
        "by_code",
        "by_class",
        "by_category",
        "failures_by_method",
        "failure_timeline",
        "by_peer",
        "failures_by_responder",
        "failures_by_requester",
        "by_responder",
        "software",
    }
)
CALLERS_LEG: Final = frozenset(
    {
        "outcomes",
        "retry_after",
        "server_retries",
        "retry_by_value",
        "retry_gaps",
        "early_retriers",
        "storms",
        "failures_by_caller",
        "failures_by_callee",
        "code_by_cause",
        "agents_by_outcome",
    }
)


def table_title(key: str, lang: Lang) -> str:
    """The label ``key``, with the leg it counts on for a table of :data:`EVERY_LEG` or
    :data:`CALLERS_LEG`."""
    leg = "every_leg" if key in EVERY_LEG else "callers_leg" if key in CALLERS_LEG else None
    return label(key, lang) if leg is None else f"{label(key, lang)} {label(leg, lang)}"


def _table(
    key: str,
    lang: Lang,
    columns: tuple[str, ...],
    numeric: tuple[bool, ...],
    rows: Sequence[tuple[str, ...]],
    *,
    details: Sequence[str] = (),
    note: str = "",
    optional: bool = False,
) -> Table:
    """A table titled by the label ``key``; with no rows its note says 'no data' instead.

    One place for the rules, so no report shows an empty table without saying why, and no
    cell reaches a terminal or a document with control characters or 30 KB of text.
    """
    note = note if rows else label("no_data", lang)
    rows = [tuple(cell(value) for value in row) for row in rows]
    details = [cell(value) for value in details]
    return Table(key, table_title(key, lang), columns, numeric, rows, details, note, optional)


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples (attribute access by column name)."""
    return cast(Iterator[Any], frame.itertuples(index=False))


# -- lookups ------------------------------------------------------------------------------------


def metric_row(analysis: Analysis, name: str) -> dict[str, Any] | None:
    """The metrics table's row for ``name``, or None when the analysis has no such metric."""
    found = analysis.metrics[analysis.metrics["name"] == name]
    return None if found.empty else cast(dict[str, Any], found.iloc[0].to_dict())


def fmt_quantity(value: Any, unit: str) -> str:
    """A metric value with its unit, precise enough to read: 0.27 ms, 43.8 %, 2.41 s, 151 ms."""
    if unit == "%":
        return fmt_num(value, unit, digits=1)
    magnitude = abs(float(value))
    digits = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
    return fmt_num(value, unit, digits=digits)


def fmt_metric(analysis: Analysis, name: str, lang: Lang) -> str:
    """A metric's value with its unit, or 'undefined' (e.g. SER without any INVITE)."""
    row = metric_row(analysis, name)
    if row is None or pd.isna(row["value"]):
        return label("undefined", lang)
    return fmt_quantity(row["value"], str(row["unit"]))


def fmt_metric_of(analysis: Analysis, name: str, lang: Lang) -> str:
    """A ratio metric with its denominator: ``50.5 % of 295`` (the samples it was taken over)."""
    row = metric_row(analysis, name)
    value = fmt_metric(analysis, name, lang)
    if row is None or pd.isna(row["value"]):
        return value
    return label("ratio_of", lang, value=value, n=fmt_int(row["samples"]))


def capture_window(analysis: Analysis) -> tuple[int | None, int | None]:
    """First and last packet time (ns) over every input file."""
    firsts = [i.first_ts_ns for i in analysis.capture.inputs if i.first_ts_ns is not None]
    lasts = [i.last_ts_ns for i in analysis.capture.inputs if i.last_ts_ns is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def filters_text(analysis: Analysis, lang: Lang) -> str:
    """The filters in force as ``since=…, peer=…`` with what they kept, or 'none'."""
    capture = analysis.capture
    filters = capture.selection.filters
    if not filters:
        return label("no_filters", lang)
    shown = {name: fmt_timestamp(value) if name in ("since", "until") else value
             for name, value in filters.items()}  # fmt: skip
    text = ", ".join(f"{name} {value}" for name, value in shown.items())
    before = capture.selection.messages_before
    if capture.selected_nothing:
        return f"{text} ({label('matched_nothing', lang)})"
    if before is not None:
        kept = label(
            "selected_of", lang, kept=fmt_int(analysis.tally.messages), before=fmt_int(before)
        )
        return f"{text} ({kept})"
    return text


def report_date(analysis: Analysis) -> str:
    """The UTC date of the first analysed message, said once for the times of a section."""
    first = analysis.tally.first
    return DASH if first is None else first.strftime("%Y-%m-%d")


def selected_window(analysis: Analysis) -> str:
    """First → last selected message: the window the figures actually cover."""
    first, last = analysis.tally.first, analysis.tally.last
    if first is None or last is None:
        return DASH
    return f"{fmt_timestamp(first)} → {fmt_timestamp(last)}"


def retransmission_ratio(summary: dict[str, Any]) -> str:
    """Retransmitted messages as a share of all SIP messages."""
    return fmt_pct(summary.get("retransmissions", 0), summary.get("sip_messages", 0))


# -- tables -------------------------------------------------------------------------------------


def finding_rows(analysis: Analysis, lang: Lang) -> list[tuple[str, str, str]]:
    """(kind, severity label, sentence) per finding, most severe first."""
    return [
        (str(row["kind"]), label(f"severity_{row['severity']}", lang), describe(row, lang))
        for row in cast(list[dict[str, Any]], analysis.findings.to_dict("records"))
    ]


def findings_table(analysis: Analysis, lang: Lang) -> Table:
    """What went wrong, ranked; 'No anomaly found.' when nothing passed a detector's minimum."""
    rows = [  # a sentence names callers and peers from the capture: controls spelled out
        (str(rank), severity, visible(sentence))
        for rank, (_, severity, sentence) in enumerate(finding_rows(analysis, lang), start=1)
    ]
    note = (
        label("note_findings", lang, date=report_date(analysis))
        if rows
        else label("no_anomaly", lang)
    )
    columns = ("#", label("severity", lang), label("finding", lang))
    return Table("findings", label("findings", lang), columns, (True, False, False), rows,
                 note=note)  # fmt: skip


def _files_without_sip(analysis: Analysis, lang: Lang) -> list[tuple[str, str]]:
    """A summary row naming the files in which no SIP was found (none: no row)."""
    files = [visible(i.name) for i in analysis.capture.inputs if i.no_sip is not None]
    return [(label("files_without_sip", lang), ", ".join(files))] if files else []


def selection_table(analysis: Analysis, lang: Lang) -> Table:
    """What was counted: the inputs, the window they span, the filters, the window analysed."""
    first, last = capture_window(analysis)
    names = ", ".join(visible(i.name) for i in analysis.capture.inputs)
    rows = [
        (label("generated_from", lang), names),
        (label("capture_window", lang), f"{fmt_ts(first)} → {fmt_ts(last)}"),
        (label("filters", lang), filters_text(analysis, lang)),
        (label("selected_window", lang), selected_window(analysis)),
    ]
    columns = (label("item", lang), label("value", lang))
    return Table("selection", label("selection", lang), columns, (False, False), rows)


def summary_table(analysis: Analysis, data: dict[str, Any], lang: Lang) -> Table:
    """The capture at a glance: window, message counts, calls and the headline ratios."""
    s = data.get("summary", {})
    rows = [
        (label("files", lang), fmt_int(len(analysis.capture.inputs))),
        (label("packets", lang), fmt_int(s.get("packets"))),
        (label("sip_messages", lang), fmt_int(s.get("sip_messages"))),
        (label("requests", lang), fmt_int(s.get("requests"))),
        (label("responses", lang), fmt_int(s.get("responses"))),
        (
            label("retransmissions", lang),
            f"{fmt_int(s.get('retransmissions'))} ({retransmission_ratio(s)})",
        ),
        (label("duplicates", lang), fmt_int(s.get("duplicates"))),
        *_files_without_sip(analysis, lang),
        (label("malformed", lang), fmt_int(s.get("malformed"))),
        (label("transactions", lang), fmt_int(s.get("transactions"))),
        (label("transactions_without_final", lang), fmt_int(s.get("transactions_without_final"))),
        (label("calls", lang), fmt_int(s.get("calls"))),
        (label("answer_ratio", lang), fmt_metric_of(analysis, "ASR", lang)),
        ("SER", fmt_metric_of(analysis, "SER", lang)),
        ("SEER", fmt_metric_of(analysis, "SEER", lang)),
        ("ISA", fmt_metric_of(analysis, "ISA", lang)),
    ]
    return Table("summary", label("summary", lang), (label("item", lang), label("value", lang)),
                 (False, True), rows)  # fmt: skip


def method_table(analysis: Analysis, lang: Lang) -> Table:
    """Requests per method; count against unique shows retransmission storms."""
    rows = [
        (
            text(r.method),
            fmt_int(r.count),
            fmt_int(r.unique),
            fmt_int(r.retransmissions),
            fmt_num(100.0 * r.retransmission_ratio, "%"),
        )
        for r in _rows(analysis.by_method)
    ]
    cols = ("method", "count", "unique", "retrans", "ratio")
    return _table("by_method", lang, _labels(cols, lang), (False, True, True, True, True), rows)


def code_table(analysis: Analysis, lang: Lang) -> Table:
    """Responses by code with the catalogue's reason; the phrase actually sent when it differs."""
    rows, details = [], []
    for r in _rows(analysis.by_code):
        reason = text(r.reason_zh if lang == "zh" else r.reason)
        sent = str(r.reasons_sent) if isinstance(r.reasons_sent, str) else ""
        differs = sent and sent.lower() != str(r.reason).lower()
        rows.append(
            (
                text(r.code),
                reason,
                sent.replace("|", " | ") if differs else "",
                fmt_int(r.count),
                fmt_int(r.unique),
                fmt_int(r.retransmissions),
                text(r.status_class),
                category_label(text(r.category), lang),
            )
        )
        details.append(text(r.description_zh if lang == "zh" else r.description))
    cols = ("code", "reason", "sent_as", "count", "unique", "retrans", "class", "category")
    return _table(
        "by_code",
        lang,
        _labels(cols, lang),
        (True, False, False, True, True, True, False, False),
        rows,
        details=details,
        note=label("note_unique", lang),
    )


def share_table(frame: pd.DataFrame, key: str, first: str, lang: Lang) -> Table:
    """Counts, unique counts and share for the class or category breakdown."""
    rows = []
    for r in _rows(frame):
        name = text(getattr(r, first))
        if first == "category":
            name = category_label(name, lang)
        rows.append((name, fmt_int(r.count), fmt_int(r.unique), fmt_num(100.0 * r.share, "%")))
    cols = (first if first == "category" else "class", "count", "unique", "share")
    return _table(key, lang, _labels(cols, lang), (False, True, True, True), rows)


def outcome_table(data: dict[str, Any], lang: Lang) -> Table:
    """Calls per outcome in ``schema.OUTCOMES`` order, then any other outcome by name."""
    calls = data.get("calls", {})
    total = calls.get("total", 0)
    by_outcome = calls.get("by_outcome", {})
    order = [o for o in OUTCOMES if by_outcome.get(o)] + sorted(
        o for o in by_outcome if o not in OUTCOMES and by_outcome[o]
    )
    rows = [
        (outcome_label(o, lang), fmt_int(by_outcome[o]), fmt_pct(by_outcome[o], total))
        for o in order
    ]
    cols = ("outcome", "calls", "share")
    missing, legs = calls.get("answer_missing", 0), calls.get("b2bua_legs", 0)
    notes = [label("note_answer_missing", lang, n=fmt_int(missing))] if missing else []
    notes += [label("note_b2bua_legs", lang, n=fmt_int(legs))] if legs else []
    note = " ".join(notes)
    return _table("outcomes", lang, _labels(cols, lang), (False, True, True), rows, note=note)


def delay_table(data: dict[str, Any], lang: Lang) -> Table:
    """PDD, answer time and registration delay percentiles as the analysis computed them."""
    sources = (
        (data.get("calls", {}).get("pdd_ms"), "pdd"),
        (data.get("calls", {}).get("answer_ms"), "answer_time"),
        (data.get("registrations", {}).get("rrd_ms"), "rrd"),
    )
    rows = [
        (
            label(name, lang),
            fmt_int(pct.get("count")),
            fmt_num(pct.get("p50"), digits=0 if (pct.get("p50") or 0) >= 100 else 1),
            fmt_num(pct.get("p90"), digits=0 if (pct.get("p90") or 0) >= 100 else 1),
            fmt_num(pct.get("p99"), digits=0 if (pct.get("p99") or 0) >= 100 else 1),
        )
        for pct, name in sources
        if pct and pct.get("count")
    ]
    columns = (*_labels(("measure", "samples"), lang), "p50", "p90", "p99")
    return _table("delays", lang, columns, (False, True, True, True, True), rows)


def respected_share(honoured: Any, too_early: Any) -> str:
    """Retries that waited the Retry-After time, as a share of the retries it could judge."""
    return fmt_pct(int(honoured), int(honoured) + int(too_early))


def retry_after_table(analysis: Analysis, lang: Lang) -> Table:
    """Per failure code: how often Retry-After was sent, its values, what callers did next."""
    rows = []
    for r in _rows(analysis.retry_after):
        rows.append(
            (
                text(r.code),
                fmt_int(r.responses),
                fmt_int(r.with_retry_after),
                fmt_values(r.values),
                fmt_int(r.honoured),
                fmt_int(r.too_early),
                fmt_int(r.without_retry_after_retried),
                fmt_int(r.not_retried),
                respected_share(r.honoured, r.too_early),
            )
        )
    cols = (
        "code",
        "responses",
        "with_retry_after",
        "values_s",
        "honoured",
        "too_early",
        "retried_without_ra",
        "not_retried",
        "respected_share",
    )
    return _table(
        "retry_after",
        lang,
        _labels(cols, lang),
        (True, True, True, False, True, True, True, True, True),
        rows,
        note=label("note_retry_after", lang),
    )


def server_retry_table(analysis: Analysis, lang: Lang) -> Table:
    """503 seen from the server's side: any next INVITE from the client host to that server.

    RFC 3261 §21.5.4: a 503's Retry-After asks the client to keep away from the server, not
    only from one callee.
    """
    rows = []
    frame = analysis.retry_after
    if "server_retried" in frame.columns:
        for r in _rows(frame[frame["server_retried"].notna()]):
            rows.append(
                (
                    text(r.code),
                    fmt_int(r.failures),
                    fmt_int(r.server_retried),
                    fmt_int(r.server_honoured),
                    fmt_int(r.server_too_early),
                    respected_share(r.server_honoured, r.server_too_early),
                )
            )
    cols = ("code", "failures", "server_next_invite", "server_waited", "server_during",
            "server_waited_share")  # fmt: skip
    return _table(
        "server_retries",
        lang,
        _labels(cols, lang),
        (True, True, True, True, True, True),
        rows,
        note=label("note_server_retries", lang),
        optional=True,
    )


def early_retrier_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """The callers that retried before Retry-After ran out, worst first (top ``top``)."""
    frame = analysis.early_retriers
    rows = [
        (
            text(r.caller),
            fmt_int(r.retries_too_early),
            fmt_int(r.retries),
            fmt_num(r.worst_gap_s, digits=3),
        )
        for r in _rows(frame.head(top))
    ]
    cols = ("caller", "too_early", "retries", "worst_gap")
    note = label("note_top", lang, n=top) if len(frame) > top else ""
    return _table(
        "early_retriers", lang, _labels(cols, lang), (False, True, True, True), rows, note=note
    )


def storm_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """Bursts of retries towards one target, as the analysis found them (top ``top``)."""
    rows = [
        (
            fmt_timestamp(r.start_ts),
            fmt_timestamp(r.end_ts),
            text(r.target),
            fmt_int(r.retries),
            fmt_int(r.early_retries),
            fmt_int(r.callers),
        )
        for r in _rows(analysis.storms.head(top))
    ]
    cols = ("start", "end", "target", "retries", "early_retries", "callers")
    return _table(
        "storms", lang, _labels(cols, lang), (False, False, False, True, True, True), rows
    )


def peer_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """Which responder failed which requester most, with its most frequent code."""
    frame = analysis.by_peer
    rows = [
        (
            text(r.responder),
            text(r.requester),
            fmt_int(r.failures),
            text(r.top_code),
            fmt_codes(r.codes),
        )
        for r in _rows(frame.head(top))
    ]
    cols = ("responder", "requester", "failures", "top_code", "codes")
    notes = [label("note_top", lang, n=top)] if len(frame) > top else []
    m = analysis.report_messages
    challenges = int((m["challenge"] & ~m["retransmission"]).sum())
    if challenges:
        notes.append(label("note_challenges_apart", lang, n=fmt_int(challenges)))
    note = " ".join(notes)
    return _table(
        "by_peer", lang, _labels(cols, lang), (False, False, True, True, False), rows, note=note
    )


def failures_by_table(analysis: Analysis, by: FailureKey, lang: Lang, top: int) -> Table:
    """Failures per responder, requester, caller or callee, most first (top ``top``)."""
    frame: pd.DataFrame = getattr(analysis, f"failures_by_{by}")
    rows = [
        (
            text(getattr(r, by)),
            fmt_int(r.finals),
            fmt_int(r.failures),
            fmt_num(100.0 * r.failure_share, "%"),
            fmt_num(100.0 * r.share_of_failures, "%"),
            text(r.top_code),
            fmt_codes(r.codes),
        )
        for r in _rows(frame.head(top))
    ]
    cols = (by, "finals", "failures", "failure_share", "share_of_failures", "top_code", "codes")
    total = int(frame["failures"].sum()) if not frame.empty else 0
    note = label("note_failures_by", lang, failures=f"{total:,}")
    if len(frame) > top:
        note = f"{note} ({label('note_top', lang, n=top)})"
    numeric = (False, True, True, True, True, True, False)
    return _table(f"failures_by_{by}", lang, _labels(cols, lang), numeric, rows, note=note)


def failure_timeline_table(analysis: Analysis, lang: Lang) -> Table:
    """Final responses per bucket by class with the failure share, burst onsets and ends marked.

    Buckets without a final response are left out, so a quiet night costs no rows.
    """
    table = with_failure_share(analysis.timeline())
    table = table[table["finals"] > 0]
    marks: dict[pd.Timestamp, list[str]] = {}
    step = pd.Timedelta(analysis.bucket())
    for rank, row in enumerate(analysis.findings.to_dict("records"), start=1):
        if row["kind"] != "failure_burst":
            continue
        for edge in ("start", "end"):
            bucket = pd.Timestamp(row[edge]).floor(step)
            key = "mark_onset" if edge == "start" else "mark_end"
            marks.setdefault(bucket, []).append(label(key, lang, n=rank))
    classes = [c for c in STATUS_CLASSES[1:] if c in table.columns]
    rows = [
        (
            fmt_clock(ts),
            *(fmt_int(values[c]) for c in classes),
            fmt_num(100.0 * values["failure_share"], "%"),
            ", ".join(marks.get(ts, [])),
        )
        for ts, values in zip(table.index, table.to_dict("records"), strict=True)
    ]
    date = report_date(analysis)
    note = label("note_failure_timeline", lang, interval=analysis.bucket(), date=date)
    columns = (label("bucket_start", lang), *classes, *_labels(("failure_share", "mark"), lang))
    numeric = (False, *([True] * len(classes)), True, False)
    return _table("failure_timeline", lang, columns, numeric, rows, note=note)


def software_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """User-Agent and Server header values with the number of messages that carried each.

    The analysis counts them (``Analysis.user_agents``); the top ``top`` values per header.
    """
    rows = [
        (text(r.header), text(r.value), fmt_int(r.messages))
        for _, group in analysis.user_agents.groupby("header", sort=False)
        for r in _rows(group.head(top))
    ]
    cols = ("header", "value", "sip_messages")
    return _table("software", lang, _labels(cols, lang), (False, False, True), rows, optional=True)


def cause_table(analysis: Analysis, lang: Lang) -> Table:
    """Calls per final code and Q.850 cause, with the code RFC 3398 maps the cause to."""
    rows = [
        (
            fmt_int(r.final_status),
            fmt_int(r.cause) + (" !" if r.contradicts else ""),
            text(r.cause_text),
            fmt_int(r.expected),
            fmt_int(r.calls),
        )
        for r in _rows(analysis.code_by_cause)
    ]
    cols = ("code", "cause", "cause_text", "rfc3398_code", "calls")
    return _table(
        "code_by_cause",
        lang,
        _labels(cols, lang),
        (True, True, False, True, True),
        rows,
        note=label("code_by_cause_note", lang),
        optional=True,
    )


def agent_outcome_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """Calls per caller / responder software, split by outcome (the outcomes seen)."""
    frame = analysis.agents_by_outcome
    outcomes = [o for o in OUTCOMES if frame[o].any()]
    rows = [
        (
            label(f"side_{record['side']}", lang),
            text(record["software"]),
            fmt_int(record["calls"]),
            *(fmt_int(record[o]) for o in outcomes),
        )
        for _, group in frame.groupby("side", sort=False)
        for record in group.head(top).to_dict("records")
    ]
    columns = (
        *_labels(("side", "software_name", "calls"), lang),
        *(outcome_label(o, lang) for o in outcomes),
    )
    numeric = (False, False, True, *(True for _ in outcomes))
    return _table("agents_by_outcome", lang, columns, numeric, rows, optional=True)


def responder_table(analysis: Analysis, lang: Lang, top: int) -> Table:
    """Final responses to INVITE transactions per responder (trunk names with --trunks)."""
    rows = [
        (
            text(r.responder),
            fmt_int(r.invites),
            fmt_pct(r.answered * r.invites, r.invites),
            text(r.codes),
        )
        for r in _rows(analysis.by_responder.head(top))
    ]
    cols = ("responder", "invites", "answered_share", "codes")
    return _table("by_responder", lang, _labels(cols, lang), (False, True, True, False), rows)


def failures_by_method_table(analysis: Analysis, lang: Lang) -> Table:
    """Unique responses per class for each request method, failures (4xx-6xx) and their share."""
    rows = [
        (
            text(r["method"]),
            fmt_int(r["responses"]),
            *(fmt_int(r[c]) for c in STATUS_CLASSES),
            fmt_int(r["failures"]),
            fmt_num(100.0 * r["failure_share"], "%"),
            fmt_int(r["challenges"]),
        )
        for r in analysis.failures_by_method.to_dict("records")
    ]
    columns = (*_labels(("method", "responses"), lang), *STATUS_CLASSES,
               *_labels(("failures", "failure_share", "challenges"), lang))  # fmt: skip
    note = label("note_failures_by_method", lang)
    return _table("failures_by_method", lang, columns, (False, *([True] * 10)), rows, note=note)


def retry_by_value_table(analysis: Analysis, lang: Lang) -> Table:
    """Retry verdicts per code and Retry-After value: is a long value respected as well?"""
    rows = [
        (
            text(r.code),
            fmt_int(r.retry_after),
            fmt_int(r.failures),
            fmt_int(r.honoured),
            fmt_int(r.too_early),
            fmt_int(r.not_retried),
            respected_share(r.honoured, r.too_early),
        )
        for r in _rows(analysis.retries_by_retry_after)
    ]
    cols = ("code", "retry_after_s", "failures", "honoured", "too_early", "not_retried",
            "respected_share")  # fmt: skip
    return _table(
        "retry_by_value", lang, _labels(cols, lang), (True,) * len(cols), rows, optional=True
    )


def retry_gap_table(analysis: Analysis, lang: Lang) -> Table:
    """How long callers waited before retrying, per verdict, in seconds and × Retry-After."""
    rows = [
        (
            label(f"verdict_{r.verdict}", lang),
            fmt_int(r.retries),
            fmt_num(r.min_s, digits=3),
            fmt_num(r.median_s, digits=3),
            fmt_num(r.p90_s, digits=3),
            fmt_num(r.max_s, digits=3),
            fmt_num(r.median_ratio, digits=2),
        )
        for r in _rows(analysis.retry_gaps)
        if r.retries
    ]
    cols = ("verdict", "retries", "min_s", "median_s", "p90_s", "max_s", "median_ratio")
    return _table(
        "retry_gaps",
        lang,
        _labels(cols, lang),
        (False,) + (True,) * (len(cols) - 1),
        rows,
        optional=True,
    )


def _count_table(
    key: str, first: str, counts: dict[str, int], lang: Lang, *, optional: bool = False
) -> Table:
    """A ``name -> count`` mapping as rows with shares, largest first."""
    total = sum(counts.values())
    ordered = most_first(counts.items())
    rows = [(name, fmt_int(n), fmt_pct(n, total)) for name, n in ordered if n]
    columns = _labels((first, "attempts", "share"), lang)
    return _table(key, lang, columns, (False, True, True), rows, optional=optional)


def registration_table(data: dict[str, Any], lang: Lang) -> Table:
    """Registration attempts per outcome (registered, failed, challenge unanswered, ...)."""
    by_outcome = data.get("registrations", {}).get("by_outcome", {})
    named = {registration_label(str(k), lang): int(v) for k, v in by_outcome.items()}
    return _count_table("registrations", "outcome", named, lang)


def sequence_table(data: dict[str, Any], lang: Lang) -> Table:
    """Registration attempts per sequence of final responses, e.g. ``423-401-200``."""
    sequences = data.get("registrations", {}).get("final_sequences", {})
    counts = {str(k): int(v) for k, v in sequences.items()}
    return _count_table("reg_sequences", "sequence", counts, lang, optional=True)


def metric_table(analysis: Analysis, lang: Lang, definitions: bool = True) -> Table:
    """Every metric; ``definitions=False`` leaves the definition column out (terminal width)."""
    rows, details = [], []
    for r in _rows(analysis.metrics):
        value = label("undefined", lang) if pd.isna(r.value) else fmt_quantity(r.value, r.unit)
        definition = metric_definition(str(r.name), str(r.definition), lang)
        reference = reference_label(text(r.reference), lang)
        row = (str(r.name), value, fmt_int(r.samples), definition, reference)
        rows.append(row if definitions else row[:3] + row[4:])
        details.append(definition)
    cols: tuple[str, ...] = ("metric", "value", "samples", "definition", "reference")
    numeric: tuple[bool, ...] = (False, True, True, False, False)
    if not definitions:
        cols, numeric = cols[:3] + cols[4:], numeric[:3] + numeric[4:]
    return _table("metrics", lang, _labels(cols, lang), numeric, rows, details=details)


def input_problems(summary: Any, lang: Lang = "en") -> str:
    """One file's damage as ``reason: count`` items and error lines, or an empty string."""
    parts = [
        f"{malformed_label(reason, lang)}: {a.count}"
        for reason, a in sorted(summary.malformed.items())
    ]
    parts += [f"{kind}: {n}" for kind, n in sorted(summary.not_decodable.items())]
    parts += [f"{kind}: {n}" for kind, n in sorted(summary.unsupported.items())]
    parts += [error.removeprefix(f"{summary.name}: ") for error in summary.shown_errors]
    return "; ".join(parts)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {fmt_int(n)}" for name, n in counts.items())


def no_sip_note(summary: Any, lang: Lang = "en") -> str:
    """For a file read without finding SIP: what it held instead; else an empty string."""
    survey = summary.no_sip
    if survey is None:
        return ""
    if not survey.packets:
        return label("no_sip_none", lang)
    key = "no_sip_whole" if survey.whole_file else "no_sip_first"
    seen = _counted(survey.seen) or label("none", lang)
    note = label(key, lang, packets=fmt_int(survey.packets), seen=seen)
    if survey.tunnels_not_decoded:
        tunnels = _counted(survey.tunnels_not_decoded)
        note += "; " + label("tunnels_not_decoded", lang, tunnels=tunnels)
    return note


def input_notes(summary: Any, lang: Lang = "en") -> str:
    """What one file showed besides its messages that is not damage: capture duplicates, ICMP
    errors about SIP, tunnels unwrapped; an empty string when nothing."""
    parts = []
    if summary.duplicates:
        parts.append(label("duplicates_note", lang, count=fmt_int(summary.duplicates)))
    parts += [
        label("icmp_unreachable", lang, destination=dest, count=fmt_int(a.count), reason=a.detail)
        for dest, a in sorted(summary.icmp_unreachable.items(), key=lambda item: -item[1].count)
    ]
    if summary.tunnels:
        tunnels = _counted(dict(sorted(summary.tunnels.items())))
        parts.append(label("tunnels_unwrapped", lang, tunnels=tunnels))
    return "; ".join(parts)


def input_table(analysis: Analysis, lang: Lang) -> Table:
    """One row per input file: what was read, what was damaged or skipped, what else it showed."""
    rows = [
        (
            i.name,
            text(i.format or DASH),
            fmt_int(i.packets),
            fmt_int(i.sip_messages),
            fmt_int(i.malformed_total),
            "; ".join(
                filter(None, (no_sip_note(i, lang), input_problems(i, lang), input_notes(i, lang)))
            )
            or label("no_problems", lang),
        )
        for i in analysis.capture.inputs
    ]
    cols = ("file", "format", "packets", "sip_messages", "malformed", "problems")
    return _table(
        "inputs", lang, _labels(cols, lang), (False, False, True, True, True, False), rows
    )


def report_tables(
    analysis: Analysis,
    lang: Lang = "en",
    top: int = 10,
    definitions: bool = True,
    data: dict[str, Any] | None = None,
) -> list[Table]:
    """Every report table, in reading order (each ``key`` unique).

    ``definitions=False`` (the terminal) keeps the metric names and references only;
    ``data`` is ``analysis.to_dict()`` when the caller has it already.
    """
    data = analysis.to_dict() if data is None else data
    return [
        findings_table(analysis, lang),
        selection_table(analysis, lang),
        summary_table(analysis, data, lang),
        failure_timeline_table(analysis, lang),
        failures_by_table(analysis, "responder", lang, top),
        failures_by_table(analysis, "requester", lang, top),
        failures_by_table(analysis, "caller", lang, top),
        failures_by_table(analysis, "callee", lang, top),
        method_table(analysis, lang),
        code_table(analysis, lang),
        share_table(analysis.by_class, "by_class", "status_class", lang),
        share_table(analysis.by_category, "by_category", "category", lang),
        failures_by_method_table(analysis, lang),
        outcome_table(data, lang),
        delay_table(data, lang),
        retry_after_table(analysis, lang),
        retry_by_value_table(analysis, lang),
        retry_gap_table(analysis, lang),
        server_retry_table(analysis, lang),
        early_retrier_table(analysis, lang, top),
        storm_table(analysis, lang, top),
        peer_table(analysis, lang, top),
        responder_table(analysis, lang, top),
        software_table(analysis, lang, top),
        agent_outcome_table(analysis, lang, top),
        cause_table(analysis, lang),
        registration_table(data, lang),
        sequence_table(data, lang),
        metric_table(analysis, lang, definitions),
        input_table(analysis, lang),
    ]
