"""Analysis stage: a decoded capture -> :class:`Analysis`, every table an operator asks for.

``analyze(capture)`` runs the pipeline: time order -> transactions and retransmission flags
(:mod:`.transactions`) -> catalogue join (:mod:`.join`) -> calls (:mod:`.calls`),
registrations (:mod:`.registrations`), retries (:mod:`.retries`) -> counts, breakdowns and
metrics (:mod:`.counts`, :mod:`.breakdown`, :mod:`.metrics`). Everything is vectorised
pandas; nothing loops over messages in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

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

__all__ = ["Analysis", "analyze", "assemble"]

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

    def summary(self) -> dict[str, int]:
        """Packets, messages, requests, responses, retransmissions, malformed, calls, ..."""
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

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form (``sipstats.report/1``): JSON-safe, no NaN, 3-digit codes.

        Built by the renderer (:func:`sipstats.render.document.report_document`); kept here
        because the public API promises it.
        """
        from sipstats.render.document import report_document  # layering: see test_architecture

        return report_document(self)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<Analysis {s['sip_messages']} SIP messages, {s['transactions']} transactions, "
            f"{s['calls']} calls, {s['registrations']} registrations, "
            f"{s['retransmissions']} retransmissions>"
        )

    def _repr_html_(self) -> str:
        """Compact summary for Jupyter, drawn by :func:`sipstats.render.notebook.analysis_html`."""
        from sipstats.render.notebook import analysis_html  # layering: see test_architecture

        return analysis_html(self)


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
    aggregates = {
        "by_code": counts.by_code(m),
        "by_method": counts.by_method(m),
        "by_class": breakdown.by_class(m),
        "by_category": breakdown.by_category(m),
        "by_peer": breakdown.by_peer(m),
        "retry_after": retries.retry_after_summary(m, retry),
        "early_retriers": retries.early_retriers(retry),
        "storms": storms,
        "metrics": metrics.compute(calls, wide, regs),
        "code_shares": breakdown.code_shares(m),
        "failures_by_method": breakdown.failures_by_method(m),
        "retries_by_retry_after": retries.by_retry_after(retry),
        "retry_gaps": retries.gap_summary(retry),
        "user_agents": counts.user_agents(m),
        "failures_by_responder": breakdown.failures_by(m, "responder"),
        "failures_by_requester": breakdown.failures_by(m, "requester"),
        "failures_by_caller": breakdown.failures_by(m, "caller"),
        "failures_by_callee": breakdown.failures_by(m, "callee"),
        "code_by_cause": causes.code_by_cause(calls),
        "agents_by_outcome": causes.agents_by_outcome(calls),
        "by_responder": trunks_stage.by_responder(transactions),
    }
    return Analysis(
        capture=capture,
        messages=m,
        transactions=transactions,
        calls=calls,
        registrations=regs,
        retries=retry,
        # the small tables take their columns and dtypes from one place, empty or not
        **{name: schema.conform(t, schema.ANALYSIS_TABLES[name]) for name, t in aggregates.items()},
        findings=found,
        interval=interval,
        trunks=None,
    )
