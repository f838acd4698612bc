"""Analysis -> the report document: the stable JSON form (``sipstats.report/1``) as plain dicts.

The analysis computes tables; this module only arranges them under the documented keys
(3-digit code strings, percentiles, no NaN). The JSON renderer writes it as it is; the text,
HTML and Markdown reports read their summary, outcome, delay and registration figures from
it, so every format shows the same numbers. ``Analysis.to_dict()`` delegates here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze.breakdown import with_failure_share
from sipstats.analyze.retries import retry_after_values
from sipstats.schema import REPORT_ID

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

__all__ = ["calls_section", "report_document", "retry_after_section", "selection_section"]


def report_document(analysis: Analysis) -> dict[str, Any]:
    """The whole JSON form: JSON-safe (no NaN, plain Python numbers), codes as 3-digit keys."""
    a = analysis
    share = dict(zip(a.code_shares["code"], a.code_shares["share"], strict=True))
    return _json_safe(
        {
            "schema": REPORT_ID,
            "findings": _findings(a),
            "selection": selection_section(a),
            "summary": a.summary(),
            "requests_by_method": {
                row["method"]: {
                    "count": row["count"],
                    "unique": row["unique"],
                    "retransmission_ratio": row["retransmission_ratio"],
                }
                for row in a.by_method.to_dict("records")
            },
            "responses_by_code": {
                row["code"]: {
                    "count": row["count"],
                    "unique": row["unique"],
                    "share": share.get(row["code"]),
                    "retransmission_ratio": row["retransmission_ratio"],
                    "reason": row["reason"],
                    "class": row["status_class"],
                    "category": row["category"],
                }
                for row in a.by_code.to_dict("records")
            },
            "responses_by_class": _keyed(a.by_class, "status_class"),
            "responses_by_category": _keyed(a.by_category, "category"),
            "failures_by_method": _keyed(a.failures_by_method, "method"),
            # frames: their rows become records column by column (_json_safe)
            "failures_by_peer": a.by_peer,
            "failures_by_responder": a.failures_by_responder,
            "failures_by_requester": a.failures_by_requester,
            "failures_by_caller": a.failures_by_caller,
            "failures_by_callee": a.failures_by_callee,
            "calls": calls_section(a),
            "registrations": _registrations(a),
            "retry_after": retry_after_section(
                a.report_messages, a.retry_after, a.retries_by_retry_after
            ),
            "retry_gaps": _keyed(a.retry_gaps, "verdict"),
            "user_agents": {
                header: dict(zip(group["value"], group["messages"], strict=True))
                for header, group in a.user_agents.groupby("header", sort=False)
            },
            "timeline": _timeline(a),
            "metrics": dict(zip(a.metrics["name"], a.metrics["value"], strict=True)),
            # RFC 6076 §3: report the clock offsets with the measurements. One capture has
            # one clock: 0 between messages, unknown against UTC.
            "metric_clock": {"relative_offset_ms": 0.0, "utc_offset_ms": None},
            "metric_definitions": {
                row.name: {
                    "unit": row.unit,
                    "samples": row.samples,
                    "definition": row.definition,
                    "reference": row.reference,
                }
                for row in a.metrics.itertuples(index=False)
            },
            "inputs": [summary.to_dict() for summary in a.capture.inputs],
        }
    )


def selection_section(analysis: Analysis) -> dict[str, Any]:
    """What was counted: the filters in force, the window the selected messages cover, and
    how many messages the window and peer kept (JSON ``selection``)."""
    selection = analysis.capture.selection
    return {
        "filters": selection.filters,
        "window": {"start": _iso(analysis.tally.first), "end": _iso(analysis.tally.last)},
        "messages_before_selection": selection.messages_before,
        "messages": analysis.tally.messages,
        "matched_nothing": analysis.capture.selected_nothing,
    }


def calls_section(analysis: Analysis) -> dict[str, Any]:
    """Calls per outcome and final code, PDD/answer/duration percentiles (JSON ``calls``).

    Counts end-to-end calls: a B2BUA's other legs (``linked_to``) are left out and counted
    in ``b2bua_legs``. Apart from :func:`report_document` so that a figure needs only this part.
    """
    c = analysis.end_to_end_calls
    outcome = c["outcome"].value_counts().reindex(list(schema.OUTCOMES), fill_value=0)
    final = c["final_status"].dropna().astype("int64").value_counts().sort_index()
    by_final = {f"{code:03d}": int(n) for code, n in final.items()}
    missing = int(c["final_status"].isna().sum())
    if missing:
        by_final["none"] = missing
    return {
        "total": len(c),
        "by_outcome": {name: int(n) for name, n in outcome.items()},
        "by_final_code": by_final,
        "answer_missing": int(c["answer_missing"].sum()),
        "b2bua_legs": len(analysis.calls) - len(c),
        "pdd_ms": _percentiles(c["pdd_ms"]),
        "answer_ms": _percentiles(c["answer_ms"]),
        "duration_s": _percentiles(c["duration_s"]),
    }


def _registrations(analysis: Analysis) -> dict[str, Any]:
    r = analysis.registrations
    return {
        "total": len(r),
        "by_outcome": {k: int(v) for k, v in r["outcome"].value_counts().items() if v},
        "by_final_code": {
            f"{code:03d}": int(n)
            for code, n in r["final_status"].dropna().astype("int64").value_counts().items()
        },
        "final_sequences": {k: int(v) for k, v in r["finals"].value_counts().items()},
        "challenged": int((r["challenges"] > 0).sum()),
        "challenges_answered": int(r["challenge_answered"].fillna(False).sum()),
        "interval_too_brief": int(r["interval_too_brief"].sum()),
        "min_expires_s": {
            str(v): int(n) for v, n in r["min_expires"].dropna().value_counts().items()
        },
        "rrd_ms": _percentiles(r["rrd_ms"]),
    }


def retry_after_section(
    messages: pd.DataFrame, summary: pd.DataFrame, by_value: pd.DataFrame
) -> dict[str, Any]:
    """Per 3-digit code: Retry-After on unique responses and what the callers did after them.

    ``summary`` and ``by_value`` are ``Analysis.retry_after`` and ``retries_by_retry_after``.
    """
    values = retry_after_values(messages)
    out: dict[str, Any] = {}
    for row in summary.to_dict("records"):
        code = row["code"]
        entry = {
            "responses": int(row["responses"]),
            "with_retry_after": int(row["with_retry_after"]),
            "without_retry_after": int(row["responses"] - row["with_retry_after"]),
            "malformed": int(row["malformed"]),
            "values_s": values.get(code, {}),
            "failures": int(row["failures"]),
            "retries": int(row["retried"]),
            "retries_honoured": int(row["honoured"]),
            "retries_too_early": int(row["too_early"]),
            "retries_without_retry_after": int(row["without_retry_after_retried"]),
            "not_retried": int(row["not_retried"]),
        }
        if code == "503":
            entry["server"] = {
                "retries": int(row["server_retried"]),
                "retries_honoured": int(row["server_honoured"]),
                "retries_too_early": int(row["server_too_early"]),
            }
        out[code] = entry
    # rows by code, then value (retries.by_retry_after): read once, a few, so not grouped by
    # pandas (a groupby, drop and astype per code cost ~2 ms each)
    for row in by_value.to_dict("records"):
        code, value = str(row.pop("code")), str(row.pop("retry_after"))
        keyed = out.setdefault(code, {}).setdefault("by_value_s", {})
        keyed[value] = {str(k): v for k, v in row.items()}
    return out


def _findings(analysis: Analysis) -> list[dict[str, Any]]:
    """Findings, most severe first, with ISO 8601 UTC ``start``/``end``."""
    return [
        {str(k): v for k, v in row.items()} | {"start": _iso(row["start"]), "end": _iso(row["end"])}
        for row in analysis.findings.to_dict("records")
    ]


def _iso(value: Any) -> str | None:
    """A UTC timestamp as ISO 8601 with ``Z`` (None when missing)."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timeline(analysis: Analysis) -> dict[str, Any]:
    """Unique responses per class per bucket: ``{"interval", "buckets": [{start, 1xx..}]}``.

    Each bucket also has ``finals`` (2xx-6xx), ``failures`` (4xx-6xx) and
    ``failure_share`` = failures / finals (null without finals).
    """
    table = with_failure_share(analysis.timeline())
    buckets = [
        {"start": ts.isoformat(), **row}
        for ts, row in zip(table.index, table.to_dict("records"), strict=True)
    ]
    return {"interval": analysis.interval, "buckets": buckets}


def _keyed(frame: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    """Rows of ``frame`` as ``{row[key]: {other columns}}``, in the frame's order."""
    records = frame.to_dict("records")
    return {str(row[key]): {str(k): v for k, v in row.items() if k != key} for row in records}


def _percentiles(values: pd.Series) -> dict[str, float | None]:
    v = values.dropna()
    if v.empty:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "count": 0}
    q = v.quantile([0.5, 0.9, 0.99]).to_numpy()
    return {
        "p50": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "mean": float(v.mean()),
        "count": len(v),
    }


def _json_safe(value: Any) -> Any:
    """NaN/NA -> None, numpy scalars -> Python, recursively; a frame -> its rows as records."""
    if isinstance(value, pd.DataFrame):
        return _records(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-safe records: each column converted at once, not each
    value on its own (the failure tables have a row per caller, callee, peer)."""
    names = [str(name) for name in frame.columns]
    columns = [_json_column(frame[name]) for name in frame.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_column(column: pd.Series) -> list[Any]:
    """A column as Python values, missing and non-finite numbers as None."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        values = column.to_numpy()
        safe = values.astype(object)
        safe[~np.isfinite(values)] = None
        return list(safe.tolist())
    objects = column.to_numpy(dtype=object, copy=True)
    objects[column.isna().to_numpy()] = None
    return list(objects.tolist())
