"""Capture / Analysis -> the compact HTML Jupyter shows for them (``_repr_html_`` delegates here).

Every text taken from a capture (file names, reason phrases, errors) is escaped.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from sipstats.analyze import Analysis
    from sipstats.messages import Capture


def capture_html(capture: Capture) -> str:
    """Messages and packets read, and one row per input file with its damage."""
    rows = [
        (s.name, s.format, s.packets, s.sip_messages, s.malformed_total, "; ".join(s.shown_errors))
        for s in capture.inputs
    ]
    header = ("file", "format", "packets", "SIP messages", "malformed", "errors")
    return (
        f"<p><b>Capture</b>: {capture.selected_messages} SIP messages from "
        f"{capture.packets} packets in {len(capture.inputs)} file(s)</p>" + html_table(header, rows)
    )


def analysis_html(analysis: Analysis) -> str:
    """The summary counts, responses per code, calls per outcome and the metrics."""
    codes = [
        (r["code"], r["reason"], r["reasons_sent"], r["count"], r["unique"])
        for r in analysis.by_code.to_dict("records")
    ]
    outcomes = analysis.end_to_end_calls["outcome"].value_counts()
    metrics = [
        (r["name"], "undefined" if pd.isna(r["value"]) else f"{r['value']:.4g}", r["unit"])
        for r in analysis.metrics.to_dict("records")
    ]
    files = ", ".join(html.escape(i.name) for i in analysis.capture.inputs)
    return (
        f"<div><strong>sipstats analysis</strong> of {files}"
        + html_table(("", ""), list(analysis.summary().items()))
        + html_table(("code", "reason", "sent as", "count", "unique"), codes)
        + html_table(("outcome", "calls"), [(k, v) for k, v in outcomes.items() if v])
        + html_table(("metric", "value", "unit"), metrics)
        + "</div>"
    )


def html_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A bare HTML table; every header and cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
