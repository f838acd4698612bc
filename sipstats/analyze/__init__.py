"""Analysis stage: a decoded capture -> :class:`Analysis`, every table an operator asks for.

``analyze(capture)`` runs the pipeline: time order -> transactions and retransmission flags
(:mod:`.transactions`) -> catalogue join (:mod:`.join`) -> calls (:mod:`.calls`),
registrations (:mod:`.registrations`), retries (:mod:`.retries`) -> counts, breakdowns and
metrics (:mod:`.counts`, :mod:`.breakdown`, :mod:`.metrics`). Everything is vectorised
pandas; nothing loops over messages in Python.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import breakdown, causes, counts, dialogs, findings, metrics, retries
from sipstats.analyze import transactions as tx_stage
from sipstats.analyze import trunks as trunks_stage
from sipstats.analyze.trunks import Trunks

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sipstats.drill.flow import Flow
    from sipstats.messages import Capture

__all__ = ["SCHEMA_ID", "Analysis", "analyze", "assemble"]

#: Identifier of the JSON form; bump the suffix on an incompatible change.
SCHEMA_ID = "sipstats.report/1"

#: What :meth:`Analysis.timeline` groups responses by ('class' is short for 'status_class').
TimelineBy = Literal["class", "status_class", "category"]


@dataclass(repr=False)
class Analysis:
    """Every table computed from one capture; see ``schema`` for the column meanings.

    ``messages`` is ``schema.ANALYZED_MESSAGES``; ``transactions``, ``calls``,
    ``registrations`` and ``retries`` follow their schemas; ``by_code``/``by_method`` come
    from :mod:`sipstats.analyze.counts`, ``by_class``/``by_category``/``by_peer`` from
    :mod:`sipstats.analyze.breakdown`, ``retry_after``/``early_retriers``/``storms`` from
    :mod:`sipstats.analyze.retries` and ``metrics`` from :mod:`sipstats.analyze.metrics`.

    Also: ``code_shares`` (share of unique responses per code) and ``failures_by_method``
    (unique responses per class per CSeq method) from :mod:`~sipstats.analyze.breakdown`;
    ``retries_by_retry_after`` (verdicts per code and Retry-After value) and ``retry_gaps``
    (gap to the retry per verdict) from :mod:`~sipstats.analyze.retries`; ``user_agents``
    (User-Agent/Server values and how many messages carried each) from
    :mod:`~sipstats.analyze.counts`; ``failures_by_responder`` / ``_requester`` / ``_caller``
    / ``_callee`` (final responses and failures per each, :func:`breakdown.failures_by`);
    ``findings`` (what went wrong, ranked: ``schema.FINDINGS``)
    from :mod:`~sipstats.analyze.findings`. ``interval`` is the timeline bucket in force, resolved
    (never "auto"). ``code_by_cause`` (final code x Q.850 cause, contradictions flagged) and
    ``agents_by_outcome`` (caller and responder software x outcome) come from
    :mod:`~sipstats.analyze.causes`; ``by_responder`` (final codes per INVITE responder) from
    :mod:`~sipstats.analyze.trunks`.
    """

    capture: Capture
    messages: pd.DataFrame
    transactions: pd.DataFrame
    calls: pd.DataFrame
    registrations: pd.DataFrame
    retries: pd.DataFrame
    by_code: pd.DataFrame
    by_method: pd.DataFrame
    by_class: pd.DataFrame
    by_category: pd.DataFrame
    by_peer: pd.DataFrame
    retry_after: pd.DataFrame
    early_retriers: pd.DataFrame
    storms: pd.DataFrame
    metrics: pd.DataFrame
    code_shares: pd.DataFrame
    failures_by_method: pd.DataFrame
    retries_by_retry_after: pd.DataFrame
    retry_gaps: pd.DataFrame
    user_agents: pd.DataFrame
    failures_by_responder: pd.DataFrame
    failures_by_requester: pd.DataFrame
    failures_by_caller: pd.DataFrame
    failures_by_callee: pd.DataFrame
    findings: pd.DataFrame
    interval: str
    code_by_cause: pd.DataFrame
    agents_by_outcome: pd.DataFrame
    by_responder: pd.DataFrame
    trunks: Trunks | None = None
    """Peer names in force (:func:`sipstats.analyze.trunks.apply_trunks`), None without."""

    def timeline(self, interval: str | None = None, by: TimelineBy = "class") -> pd.DataFrame:
        """Unique responses per time bucket (pandas offset alias or "auto"), per class or category.

        ``by="class"``: columns '1xx'..'6xx'; ``by="category"``: one column per catalogue
        category seen (see :func:`sipstats.analyze.breakdown.timeline`).
        """
        if by not in ("class", "status_class", "category"):
            raise ValueError(f"timeline by {by!r}: use 'class' or 'category'")
        group: breakdown.TimelineBy = "category" if by == "category" else "status_class"
        return breakdown.timeline(self.messages, self.bucket(interval), by=group)

    def bucket(self, interval: str | None = None) -> str:
        """The timeline bucket for ``interval``: this analysis's when None, resolved if "auto"."""
        return breakdown.resolve_interval(self.messages, interval or self.interval)

    def flow(self, call_id: str | Iterable[str]) -> Flow:
        """The ladder of a call (every message with the Call-ID, or several Call-IDs drawn
        together): ``print()`` it for text; Jupyter shows it as SVG."""
        from sipstats.drill.flow import call_flow

        return call_flow(self, call_id)

    @property
    def transactions_without_final(self) -> int:
        """Transactions whose request was seen but no final response (RFC 3261 §17 timeouts).

        ACK is left out: it is never answered (RFC 3261 §17.1.1.3, §13.2.2.4).
        """
        t = self.transactions
        waiting = ~t["has_final"] & t["request_ts"].notna() & (t["method"] != "ACK")
        return int(waiting.sum())

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form (``sipstats.report/1``): JSON-safe, no NaN, 3-digit codes."""
        share = dict(zip(self.code_shares["code"], self.code_shares["share"], strict=True))
        return _json_safe(
            {
                "schema": SCHEMA_ID,
                "findings": self._findings_list(),
                "selection": self.selection_dict(),
                "summary": self._summary(),
                "requests_by_method": {
                    row["method"]: {
                        "count": row["count"],
                        "unique": row["unique"],
                        "retransmission_ratio": row["retransmission_ratio"],
                    }
                    for row in self.by_method.to_dict("records")
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
                    for row in self.by_code.to_dict("records")
                },
                "responses_by_class": _keyed(self.by_class, "status_class"),
                "responses_by_category": _keyed(self.by_category, "category"),
                "failures_by_method": _keyed(self.failures_by_method, "method"),
                "failures_by_peer": self.by_peer.to_dict("records"),
                "failures_by_responder": self.failures_by_responder.to_dict("records"),
                "failures_by_requester": self.failures_by_requester.to_dict("records"),
                "failures_by_caller": self.failures_by_caller.to_dict("records"),
                "failures_by_callee": self.failures_by_callee.to_dict("records"),
                "calls": self.calls_summary(),
                "registrations": self._registrations_dict(),
                "retry_after": self._retry_after_dict(),
                "retry_gaps": _keyed(self.retry_gaps, "verdict"),
                "user_agents": {
                    header: dict(zip(group["value"], group["messages"], strict=True))
                    for header, group in self.user_agents.groupby("header", sort=False)
                },
                "timeline": self._timeline_dict(),
                "metrics": dict(zip(self.metrics["name"], self.metrics["value"], strict=True)),
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
                    for row in self.metrics.itertuples(index=False)
                },
                "inputs": [summary.to_dict() for summary in self.capture.inputs],
            }
        )

    def selection_dict(self) -> dict[str, Any]:
        """What was counted: the filters in force, the window the selected messages cover, and
        how many messages the window and peer kept (JSON ``selection``)."""
        selection = self.capture.selection
        ts = self.messages["ts"]
        return {
            "filters": selection.filters,
            "window": {
                "start": _iso(ts.min()) if not ts.empty else None,
                "end": _iso(ts.max()) if not ts.empty else None,
            },
            "messages_before_selection": selection.messages_before,
            "messages": len(self.messages),
            "matched_nothing": self.capture.selected_nothing,
        }

    def _findings_list(self) -> list[dict[str, Any]]:
        """Findings, most severe first, with ISO 8601 UTC ``start``/``end``."""
        return [
            {str(k): v for k, v in row.items()}
            | {"start": _iso(row["start"]), "end": _iso(row["end"])}
            for row in self.findings.to_dict("records")
        ]

    def _retry_after_dict(self) -> dict[str, Any]:
        out = retries.retries_to_dict(self.messages, self.retries)
        for code, group in self.retries_by_retry_after.groupby("code", sort=True):
            by_value = _keyed(
                group.drop(columns="code").astype({"retry_after": "str"}), "retry_after"
            )
            out.setdefault(str(code), {})["by_value_s"] = by_value
        return out

    def _timeline_dict(self) -> dict[str, Any]:
        """Unique responses per class per bucket: ``{"interval", "buckets": [{start, 1xx..}]}``.

        Each bucket also has ``finals`` (2xx-6xx), ``failures`` (4xx-6xx) and
        ``failure_share`` = failures / finals (null without finals).
        """
        table = breakdown.with_failure_share(self.timeline())
        buckets = [
            {"start": ts.isoformat(), **row}
            for ts, row in zip(table.index, table.to_dict("records"), strict=True)
        ]
        return {"interval": self.interval, "buckets": buckets}

    def _summary(self) -> dict[str, Any]:
        m = self.messages
        requests = int(m["is_request"].sum())
        return {
            "packets": int(self.capture.packets),
            "sip_messages": len(m),
            "requests": requests,
            "responses": len(m) - requests,
            "retransmissions": int(m["retransmission"].sum()),
            "duplicates": sum(s.duplicates for s in self.capture.inputs),
            "malformed": sum(s.malformed_total for s in self.capture.inputs),
            "calls": len(self.calls),
            "transactions": len(self.transactions),
            "transactions_without_final": self.transactions_without_final,
            "registrations": len(self.registrations),
        }

    def calls_summary(self) -> dict[str, Any]:
        """Calls per outcome and final code, PDD/answer/duration percentiles (JSON ``calls``).

        Public so that a figure needs only this part, not the whole :meth:`to_dict`.
        """
        c = self.calls
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
            "pdd_ms": _percentiles(c["pdd_ms"]),
            "answer_ms": _percentiles(c["answer_ms"]),
            "duration_s": _percentiles(c["duration_s"]),
        }

    def _registrations_dict(self) -> dict[str, Any]:
        r = self.registrations
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

    def __repr__(self) -> str:
        s = self._summary()
        return (
            f"<Analysis {s['sip_messages']} SIP messages, {s['transactions']} transactions, "
            f"{s['calls']} calls, {s['registrations']} registrations, "
            f"{s['retransmissions']} retransmissions>"
        )

    def _repr_html_(self) -> str:
        """Compact summary for Jupyter; every value from the capture is escaped."""
        codes = [
            (r["code"], r["reason"], r["reasons_sent"], r["count"], r["unique"])
            for r in self.by_code.to_dict("records")
        ]
        outcomes = self.calls["outcome"].value_counts()
        metrics = [
            (r["name"], "undefined" if pd.isna(r["value"]) else f"{r['value']:.4g}", r["unit"])
            for r in self.metrics.to_dict("records")
        ]
        files = ", ".join(html.escape(i.file) for i in self.capture.inputs)
        return (
            f"<div><strong>sipstats analysis</strong> of {files}"
            + _html_table(("", ""), list(self._summary().items()))
            + _html_table(("code", "reason", "sent as", "count", "unique"), codes)
            + _html_table(("outcome", "calls"), [(k, v) for k, v in outcomes.items() if v])
            + _html_table(("metric", "value", "unit"), metrics)
            + "</div>"
        )


def _html_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _keyed(frame: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    """Rows of ``frame`` as ``{row[key]: {other columns}}``, in the frame's order."""
    records = frame.to_dict("records")
    return {str(row[key]): {str(k): v for k, v in row.items() if k != key} for row in records}


def _iso(value: Any) -> str | None:
    """A UTC timestamp as ISO 8601 with ``Z`` (None when missing)."""
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    """NaN/NA -> None, numpy scalars -> Python, recursively."""
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


def _in_time_order(messages: pd.DataFrame) -> pd.DataFrame:
    """The messages sorted by time, without capture duplicates kept as rows: those are one
    message seen twice, never a retransmission (:mod:`sipstats.capture.duplicates`)."""
    copies = messages["duplicate"].to_numpy()
    if copies.any():
        messages = messages[~copies]
    if messages["ts"].is_monotonic_increasing:
        return messages.reset_index(drop=True)
    return messages.sort_values("ts", kind="stable").reset_index(drop=True)


def _retries_looking_ahead(window: pd.DataFrame, after: pd.DataFrame, calls: int) -> pd.DataFrame:
    """The window's retry table, its verdicts read on the window and the messages after it.

    The window's calls are the first ``calls`` of the longer run (numbered by first INVITE).
    """
    longer = pd.concat([window, after], ignore_index=True)
    parts = dialogs.analyze_dialogs(_in_time_order(schema.conform(longer, schema.MESSAGES)))
    table = retries.retry_table(parts.calls, parts.messages)
    return retries.within_window(table, calls, after["ts"].min())


def analyze(capture: Capture, *, interval: str = "auto") -> Analysis:
    """Run the whole analysis on a decoded capture (see the module docstring).

    ``interval`` is the timeline bucket (a pandas offset alias such as ``10s``); ``"auto"``
    picks a round one for the capture's length (:func:`breakdown.auto_interval`). When the
    capture is a time window (``Capture.after`` holds the messages after it), retry verdicts
    look beyond the window's end.
    """
    m = _in_time_order(schema.conform(capture.messages, schema.MESSAGES))
    return assemble(capture, dialogs.analyze_dialogs(m), interval=interval)


def assemble(capture: Capture, parts: dialogs.Dialogs, *, interval: str = "auto") -> Analysis:
    """The :class:`Analysis` from the dialog tables of every message of ``capture``.

    :func:`analyze` computes ``parts`` in one go; a distributed engine computes them per
    Call-ID partition and merges them (:func:`sipstats.analyze.dialogs.merge`) first.
    """
    m, wide, calls = parts.messages, parts.wide, parts.calls
    interval = breakdown.resolve_interval(m, interval)
    regs = parts.registrations
    retry = retries.retry_table(calls, m)
    after = getattr(capture, "after", None)
    if after is not None and not after.empty:
        retry = _retries_looking_ahead(capture.messages, after, len(calls))
    transactions = tx_stage.table(wide)
    storms = retries.storms(retry)
    found = findings.detect(
        messages=m,
        transactions=transactions,
        calls=calls,
        registrations=regs,
        retries=retry,
        storms=storms,
        interval=interval,
        inputs=capture.inputs,
    )
    return Analysis(
        capture=capture,
        messages=m,
        transactions=transactions,
        calls=calls,
        registrations=regs,
        retries=retry,
        by_code=counts.by_code(m),
        by_method=counts.by_method(m),
        by_class=breakdown.by_class(m),
        by_category=breakdown.by_category(m),
        by_peer=breakdown.by_peer(m),
        retry_after=retries.retry_after_summary(m, retry),
        early_retriers=retries.early_retriers(retry),
        storms=storms,
        metrics=metrics.compute(calls, wide, regs),
        code_shares=breakdown.code_shares(m),
        failures_by_method=breakdown.failures_by_method(m),
        retries_by_retry_after=retries.by_retry_after(retry),
        retry_gaps=retries.gap_summary(retry),
        user_agents=counts.user_agents(m),
        failures_by_responder=breakdown.failures_by(m, "responder"),
        failures_by_requester=breakdown.failures_by(m, "requester"),
        failures_by_caller=breakdown.failures_by(m, "caller"),
        failures_by_callee=breakdown.failures_by(m, "callee"),
        findings=found,
        interval=interval,
        code_by_cause=causes.code_by_cause(calls),
        agents_by_outcome=causes.agents_by_outcome(calls),
        by_responder=trunks_stage.by_responder(transactions),
    )
