"""Analysis stage: a decoded capture -> :class:`Analysis`, every table an operator asks for.

``analyze(capture)`` runs the pipeline: time order -> transactions and retransmission flags
(:mod:`.transactions`) -> catalogue join (:mod:`.join`) -> calls (:mod:`.calls`),
registrations (:mod:`.registrations`), retries (:mod:`.retries`) -> counts, breakdowns and
metrics (:mod:`.counts`, :mod:`.breakdown`, :mod:`.metrics`). Everything is vectorised
pandas; nothing loops over messages in Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, cast, overload

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import (
    b2bua,
    breakdown,
    causes,
    counts,
    dialogs,
    findings,
    keys,
    metrics,
    retries,
    tally,
)
from sipstats.analyze import transactions as tx_stage
from sipstats.analyze import trunks as trunks_stage
from sipstats.analyze.tally import Tally
from sipstats.analyze.trunks import Trunks
from sipstats.errors import ReportError
from sipstats.messages import return_freed_heap
from sipstats.workers import MIN_POOL_PROCESSES, Forked, fork_map

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence

    from sipstats.drill.flow import Flow
    from sipstats.messages import Capture

__all__ = ["Analysis", "BuiltOnRead", "analyze", "assemble", "messages_of_calls"]

#: The key of :attr:`Analysis.end_to_end_calls` among the derived tables (:meth:`Analysis._once`).
_END_TO_END: Final = ("end_to_end_calls",)

#: Report tables :func:`assemble` leaves to be built on read (:class:`BuiltOnRead`): the text,
#: Markdown and HTML reports read both; the JSON and CSV reports neither. On the 1M-packet
#: benchmark capture they took about 12 ms CPU. Each is built from what the analysis holds
#: anyway: the retries, and the columns of the transactions' held frame that the responder
#: table reads (under copy-on-write no copy), so that waiting keeps no other table alive.
_TABLES_ON_READ: Final = ("by_responder", "early_retriers")

#: What :meth:`Analysis.timeline` groups responses by ('class' is short for 'status_class').
TimelineBy = Literal["class", "status_class", "category"]


@dataclass(frozen=True)
class BuiltOnRead:
    """A table of an :class:`Analysis` not built yet: ``build(held)`` is the table, made on its
    first read (:func:`_built_on_read`). For the transactions, ``held`` has every row and what
    is known without that work: enough to count (:meth:`Analysis.summary`); their key is text
    no report reads, which the API, the drill-down and the exports still get. For the tables
    of :data:`_TABLES_ON_READ`, ``held`` is the table they are built from."""

    held: pd.DataFrame
    build: Callable[[pd.DataFrame], pd.DataFrame]

    def then(self, change: Callable[[pd.DataFrame], pd.DataFrame]) -> BuiltOnRead:
        """``change`` of the table, still built on read. ``held`` stays as it is: ``change``
        must not touch what is counted from it (:meth:`Analysis.summary`)."""
        return BuiltOnRead(self.held, partial(_changed, self.build, change))


def _changed(
    build: Callable[[pd.DataFrame], pd.DataFrame],
    change: Callable[[pd.DataFrame], pd.DataFrame],
    held: pd.DataFrame,
) -> pd.DataFrame:
    return change(build(held))


class _BuiltOnReadField:
    """A table field of :class:`Analysis` that may hold a :class:`BuiltOnRead`: built on its
    first read and kept in its place."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, analysis: None, owner: type) -> _BuiltOnReadField: ...
    @overload
    def __get__(self, analysis: Analysis, owner: type) -> pd.DataFrame: ...
    def __get__(self, analysis: Analysis | None, owner: type) -> pd.DataFrame | _BuiltOnReadField:
        if analysis is None:
            return self
        try:
            value = analysis.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        if isinstance(value, BuiltOnRead):
            value = analysis.__dict__[self.name] = value.build(value.held)
        return value

    def __set__(self, analysis: Analysis, value: pd.DataFrame | BuiltOnRead) -> None:
        analysis.__dict__[self.name] = value


def _built_on_read(*names: str) -> Callable[[type[Analysis]], type[Analysis]]:
    """Fields ``names`` of the dataclass may be given a :class:`BuiltOnRead`. Installed after
    ``@dataclass``, so that each stays a plain field in its place (positional, no default)."""

    def install(cls: type[Analysis]) -> type[Analysis]:
        for name in names:
            setattr(cls, name, _BuiltOnReadField(name))
        return cls

    return install


@_built_on_read("transactions", *_TABLES_ON_READ)
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
    messages: pd.DataFrame | None
    """Every analysed message; None from the Dask engine, which keeps them on the cluster, and
    from :func:`analyze` with ``jobs`` > 1 (the report needs only :attr:`report_messages`,
    :attr:`tally` and :attr:`sample_messages`)."""
    report_messages: pd.DataFrame
    """The messages the report reads one by one: unique responses and authenticated INVITEs
    (:func:`sipstats.analyze.tally.report_messages`)."""
    tally: Tally
    """Counts over every message (:class:`sipstats.analyze.tally.Tally`)."""
    transactions: pd.DataFrame
    """``schema.TRANSACTIONS``; :func:`analyze` gives its ``key`` column on the first read
    (:class:`BuiltOnRead`)."""
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
    sample_messages: pd.DataFrame | None = None
    """Without :attr:`messages` (the Dask engine, ``jobs`` > 1): every message of the report's
    sample calls (:func:`sipstats.drill.flow.sample_calls`), which its ladders draw; None
    otherwise."""
    _computed: dict[tuple[str, ...], tuple[pd.DataFrame, pd.DataFrame]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Tables derived from another one, each with what it was derived from (:meth:`_once`):
    :func:`assemble` hands over the end-to-end calls it made, :meth:`replaced` what this
    analysis derived. Not a constructor argument: each analysis starts with its own."""

    def _once(
        self, key: tuple[str, ...], source: pd.DataFrame, derive: Callable[[], pd.DataFrame]
    ) -> pd.DataFrame:
        """``derive()`` of ``source`` the first time it is asked for, kept for the next (the
        JSON, HTML and text reports read the same timeline and end-to-end calls); derived again
        when ``source`` is no longer the table this analysis holds. Each caller gets a shallow
        copy: under copy-on-write, what it changes stays its own."""
        held = self._computed.get(key)
        if held is None or held[0] is not source:
            held = self._computed[key] = (source, derive())
        return held[1].copy(deep=False)

    def _held(self, name: str) -> pd.DataFrame:
        """Every row of table ``name``, built or not (:class:`BuiltOnRead`): enough to count."""
        value = self.__dict__[name]
        return value.held if isinstance(value, BuiltOnRead) else value

    def replaced(self, **changes: Any) -> Analysis:
        """:func:`dataclasses.replace` that builds no :class:`BuiltOnRead` table (``replace``
        reads every field, which would build them in this analysis and in its copy)."""
        given = {f.name: self.__dict__[f.name] for f in dataclasses.fields(self) if f.init}
        copy = Analysis(**(given | changes))
        tables = {id(value) for value in copy.__dict__.values()}
        copy._computed.update(  # what was derived from a table replaced is not held on to
            (key, held) for key, held in self._computed.items() if id(held[0]) in tables
        )
        return copy

    def changed(
        self, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> pd.DataFrame | BuiltOnRead:
        """``change`` of table ``name``, for :meth:`replaced`: still built on read if it is."""
        value = self.__dict__[name]
        return value.then(change) if isinstance(value, BuiltOnRead) else change(value)

    def timeline(self, interval: str | None = None, by: TimelineBy = "class") -> pd.DataFrame:
        """Unique responses per time bucket (pandas offset alias or "auto"), per class or category.

        ``by="class"``: columns '1xx'..'6xx'; ``by="category"``: one column per catalogue
        category seen (see :func:`sipstats.analyze.breakdown.timeline`).
        """
        if by not in ("class", "status_class", "category"):
            raise ValueError(f"timeline by {by!r}: use 'class' or 'category'")
        group: breakdown.TimelineBy = "category" if by == "category" else "status_class"
        bucket = self.bucket(interval)
        return self._once(
            ("timeline", bucket, group),
            self.report_messages,
            partial(breakdown.timeline, self.report_messages, bucket, by=group),
        )

    def bucket(self, interval: str | None = None) -> str:
        """The timeline bucket for ``interval``: this analysis's when None, resolved if "auto"."""
        return breakdown.resolve_interval(self.tally.runs, interval or self.interval)

    def messages_of(self, call_ids: Sequence[str]) -> pd.DataFrame:
        """Every analysed message with one of these Call-IDs, in capture order: what a ladder
        or an extract of a call draws. Without :attr:`messages` (the Dask engine, ``jobs`` > 1)
        only the report's sample calls are here; another Call-ID is a :class:`ReportError`."""
        wanted = set(call_ids)
        m = self.messages
        if m is None:
            m = self.sample_messages
            if m is None or not wanted <= set(m["call_id"].astype("str")):
                raise ReportError(
                    "this analysis holds no messages but those of its sample calls (the Dask "
                    "engine keeps them on the cluster; jobs > 1 in its worker processes): "
                    "analyse the capture with sipstats.analyze(capture) for the ladder or "
                    "extract of any call"
                )
        return m[keys.holds(m["call_id"], wanted)]

    def flow(self, call_id: str | Iterable[str]) -> Flow:
        """The ladder of a call (every message with the Call-ID, or several Call-IDs drawn
        together): ``print()`` it for text; Jupyter shows it as SVG."""
        from sipstats.drill.flow import call_flow

        return call_flow(self, call_id)

    @property
    def end_to_end_calls(self) -> pd.DataFrame:
        """The calls counted once per end-to-end call: a B2BUA's other legs left out.

        Derived again when :attr:`calls` is another table (assigned, or :meth:`replaced`), not
        when the table is changed in place: assign the changed copy."""
        return self._once(_END_TO_END, self.calls, partial(b2bua.end_to_end, self.calls))

    @property
    def transactions_without_final(self) -> int:
        """Transactions whose request was seen but no final response (RFC 3261 §17 timeouts).

        ACK is left out: it is never answered (RFC 3261 §17.1.1.3, §13.2.2.4).
        """
        t = self._held("transactions")  # no key is read: none is made
        waiting = ~t["has_final"] & t["request_ts"].notna() & (t["method"] != "ACK")
        return int(waiting.sum())

    def summary(self) -> dict[str, int]:
        """Packets, messages, requests, responses, retransmissions, malformed, calls, ..."""
        count = self.tally
        return {
            "packets": int(self.capture.packets),
            "sip_messages": count.messages,
            "requests": count.requests,
            "responses": count.responses,
            "retransmissions": count.retransmissions,
            "duplicates": sum(s.duplicates for s in self.capture.inputs),
            "malformed": sum(s.malformed_total for s in self.capture.inputs),
            "calls": len(self.end_to_end_calls),
            "transactions": len(self._held("transactions")),
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


def _in_window(longer: dialogs.Dialogs, calls: int, end: pd.Timestamp) -> pd.DataFrame:
    """The window's retry table, its verdicts read on the window and what followed it.

    ``longer`` holds the dialogs of the window's messages and those after it (``end`` is
    the first time after the window); the window's calls are the first ``calls`` of it
    (numbered by first INVITE).
    """
    end_to_end = b2bua.end_to_end(b2bua.link(longer.calls))
    table = retries.retry_table(end_to_end, longer.messages, transactions=longer.wide)
    return retries.within_window(table, calls, end)


def analyze(
    capture: Capture,
    *,
    interval: str = "auto",
    correlation_header: b2bua.Correlation = "auto",
    jobs: int = 1,
    every_message: bool = True,
) -> Analysis:
    """Run the whole analysis on a decoded capture (see the module docstring).

    ``interval`` is the timeline bucket (a pandas offset alias such as ``10s``); ``"auto"``
    picks a round one for the capture's length (:func:`breakdown.auto_interval`). When the
    capture is a time window (``Capture.after`` holds the messages after it), retry verdicts
    look beyond the window's end. ``correlation_header`` links the legs of a B2BUA
    (:mod:`.b2bua`): "X-CID", "X-Call-ID", "P-Charging-Vector", "auto" (the first of them
    present) or "none".

    ``jobs`` > 1 builds some report tables in a forked process meanwhile (:func:`assemble`).
    From :data:`sipstats.workers.MIN_POOL_PROCESSES` on, the per-Call-ID step runs on Call-ID
    partitions in that many processes when the capture is large enough to gain from it
    (:func:`_partitioned`): the same tables and report, but :attr:`Analysis.messages` is None
    and :attr:`Analysis.sample_messages` holds the messages of the report's sample calls, as
    with the Dask engine. Every message is kept only by one process: ask for that
    (``jobs=1``) to extract or draw any call.

    ``every_message=False`` keeps no table of every message (the reports read
    :attr:`Analysis.report_messages` and :attr:`Analysis.tally` only): ``messages`` is None,
    ``sample_messages`` holds the messages of the report's sample calls, and the analysis's
    capture holds no messages (``Capture.held_elsewhere`` counts them). When the caller hands
    ``capture`` over (keeps no reference to it), its table is freed before the report tables
    are built.
    """
    correlation = b2bua.check_correlation(correlation_header)
    m = _in_time_order(schema.conform(capture.messages, schema.MESSAGES))
    partitions = min(jobs, len(m) // MIN_PARTITION_MESSAGES)
    after = capture.after
    if partitions >= MIN_POOL_PROCESSES and (after is None or after.empty):
        analysis = _partitioned(capture, m, partitions, interval, correlation)
        if every_message:
            return analysis
        return analysis.replaced(capture=_without_messages(analysis.capture))
    parts = dialogs.analyze_dialogs(m, correlation=correlation)
    ahead = None
    if after is not None and not after.empty:
        everything = pd.concat([capture.messages, after], ignore_index=True)
        longer = dialogs.analyze_dialogs(
            _in_time_order(schema.conform(everything, schema.MESSAGES)), correlation=correlation
        )
        ahead = (dialogs.reported(longer), pd.Timestamp(after["ts"].min()))
    if every_message:
        counted = tally.tally(parts.messages)
        analysis = assemble(
            capture, dialogs.reported(parts), counted, interval=interval, ahead=ahead, jobs=jobs
        )
        return analysis.replaced(messages=parts.messages)
    samples = _sample_messages(parts.messages, b2bua.link(parts.calls))
    # the last references to every message (the caller handed ``capture`` over) but the
    # columns the counts and the report's messages read: the others are freed before those
    # are taken, and with them what the per-Call-ID step freed
    capture = _without_messages(capture)
    del m, after
    parts = dataclasses.replace(parts, messages=tally.counted_columns(parts.messages))
    return_freed_heap(len(parts.messages))
    counted = tally.tally(parts.messages)
    parts = dialogs.reported(parts)
    return_freed_heap(counted.messages)  # else the report tables grow past what it freed
    analysis = assemble(capture, parts, counted, interval=interval, ahead=ahead, jobs=jobs)
    return analysis.replaced(sample_messages=samples)


def _without_messages(capture: Capture) -> Capture:
    """``capture`` holding no messages: they are counted (``held_elsewhere``), not held."""
    return dataclasses.replace(
        capture,
        messages=schema.empty(schema.MESSAGES),
        after=None,
        held_elsewhere=capture.selected_messages,
    )


def _sample_messages(messages: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``messages`` of the report's sample calls among ``calls`` (B2BUA legs
    linked), every leg of each."""
    from sipstats.drill.flow import sample_call_ids  # layering: drill reads an Analysis

    return messages_of_calls(messages, sample_call_ids(calls))


def messages_of_calls(messages: pd.DataFrame, call_ids: Collection[str]) -> pd.DataFrame:
    """The rows of ``messages`` with one of ``call_ids``, in their order, holding only their
    own categories: what an analysis without every message keeps of its sample calls."""
    return schema.used_categories(messages[keys.holds(messages["call_id"], call_ids)])


#: Messages below which :func:`assemble` builds every table itself even with ``jobs`` > 1:
#: on the RTP-heavy benchmark capture (64k SIP messages) the forked process cost 0.07-0.1 s
#: CPU and no wall time; on the 1M-packet one (700k) its tables take about 0.3 s.
MIN_FORKED_MESSAGES: Final = 200_000

#: Messages per Call-ID partition below which another process costs more than it saves:
#: forking, sending the partition's tables back and merging them cost about what the
#: per-Call-ID step takes on this many messages.
MIN_PARTITION_MESSAGES: Final = 200_000


def _partitioned(
    capture: Capture,
    m: pd.DataFrame,
    partitions: int,
    interval: str,
    correlation: b2bua.Correlation,
) -> Analysis:
    """:func:`analyze` of the time-ordered messages ``m`` over Call-ID partitions: each in a
    forked process (this one takes the first), which sends back its dialog tables with the
    report's messages only and the counts of all its messages (as a Dask worker does); they
    are merged and assembled here. The sample calls' messages are analysed again here, alone:
    the per-Call-ID step gives each message the same columns in any partition that holds its
    Call-ID whole."""
    end = m["ts"].max()
    # the codes of the Call-ID categories: each Call-ID whole in one partition
    partition = m["call_id"].cat.codes.to_numpy() % partitions
    # While the partitions are merged, each message's row stands in for its frame: messages
    # of one frame (a TCP segment with several) keep the order one pass gives them.
    frames = m["frame"].to_numpy()
    numbered = m.assign(frame=np.arange(len(m), dtype=np.int64))

    def part(k: int) -> tuple[dialogs.Dialogs, Tally]:
        held = dialogs.analyze_dialogs(
            numbered[partition == k].reset_index(drop=True),
            capture_end=end,
            correlation=correlation,
        )
        return dialogs.reported(held), tally.tally(held.messages)

    done = fork_map(part, partitions)
    files = [summary.file for summary in capture.inputs]
    merged = dialogs.merge([parts for parts, _ in done], files)
    merged = dataclasses.replace(
        merged,
        messages=merged.messages.assign(frame=frames[merged.messages["frame"].to_numpy()]),
        first_seen=merged.first_seen.assign(frame=frames[merged.first_seen["frame"].to_numpy()]),
    )
    counted = tally.combine([counted for _, counted in done])
    analysis = assemble(capture, merged, counted, interval=interval, jobs=partitions)
    sampled = _sample_messages(m, analysis.calls)
    samples = dialogs.analyze_dialogs(sampled, capture_end=end, correlation=correlation)
    return analysis.replaced(sample_messages=samples.messages)


def assemble(
    capture: Capture,
    parts: dialogs.Dialogs,
    counted: tally.Tally,
    *,
    interval: str = "auto",
    ahead: tuple[dialogs.Dialogs, pd.Timestamp] | None = None,
    jobs: int = 1,
) -> Analysis:
    """The :class:`Analysis` from the dialog tables of ``capture`` and the counts of its messages.

    ``parts.messages`` need only hold the report's messages (:func:`tally.report_messages`):
    :func:`analyze` computes ``parts`` and ``counted`` in one go; a distributed engine per
    Call-ID partition, and merges them (:func:`sipstats.analyze.dialogs.merge`,
    :func:`tally.combine`) first. ``ahead``: for a time window, the dialogs of the window and
    of the messages after it, with the first time after it (retry verdicts look there).
    The analysis's ``messages`` is None: :func:`analyze` sets it. B2BUA legs are linked
    here, across Call-IDs (:func:`b2bua.link`, on each call's ``correlation_id``, which
    :func:`dialogs.analyze_dialogs` took from the header asked for); call-level figures
    count each end-to-end call once. With ``jobs`` > 1 and at least :data:`MIN_FORKED_MESSAGES`
    messages, the tables that need neither the retry table nor the transactions
    (:func:`_breakdowns`) are built in a forked process meanwhile.
    """
    m, wide = parts.messages, parts.wide
    calls = b2bua.link(parts.calls)
    end_to_end = b2bua.end_to_end(calls)
    interval = breakdown.resolve_interval(counted.runs, interval)
    regs = parts.registrations
    uris = retries.UriKeys()  # the URI keys, made once for the retries, failures and findings
    breakdowns = partial(_breakdowns, m, counted, end_to_end, wide, regs, uris)
    forked = jobs > 1 and counted.messages >= MIN_FORKED_MESSAGES
    apart = Forked(breakdowns) if forked else None
    try:
        if ahead is None:
            retry = retries.retry_table(end_to_end, m, uris, wide)
        else:
            longer, end = ahead
            retry = _in_window(longer, len(calls), end)
        storms = retries.storms(retry)
        found = findings.detect(
            messages=m,
            runs=counted.runs,
            transactions=wide,  # the columns of schema.TRANSACTIONS but the key, and helpers
            calls=end_to_end,
            registrations=regs,
            retries=retry,
            storms=storms,
            interval=interval,
            inputs=capture.inputs,
            uris=uris,
        )
        aggregates = {
            "retry_after": retries.retry_after_summary(m, retry),
            "storms": storms,
            "retries_by_retry_after": retries.by_retry_after(retry),
            "retry_gaps": retries.gap_summary(retry),
        }
        analysis = Analysis(
            capture=capture,
            messages=None,
            report_messages=m,
            tally=counted,
            transactions=cast("pd.DataFrame", BuiltOnRead(wide, tx_stage.table)),  # _built_on_read
            calls=calls,
            registrations=regs,
            retries=retry,
            **_conformed(aggregates),
            **(breakdowns() if apart is None else apart.result()),
            **_on_read(
                by_responder=(trunks_stage.by_responder, wide[trunks_stage.RESPONDER_COLUMNS]),
                early_retriers=(retries.early_retriers, retry),
            ),
            findings=found,
            interval=interval,
            trunks=None,
        )
        analysis._computed[_END_TO_END] = (calls, end_to_end)  # made here: handed over
        return analysis
    finally:
        if apart is not None:  # ended if this process failed or was interrupted first
            apart.close()


def _breakdowns(
    m: pd.DataFrame,
    counted: Tally,
    end_to_end: pd.DataFrame,
    wide: pd.DataFrame,
    regs: pd.DataFrame,
    uris: retries.UriKeys,
) -> dict[str, pd.DataFrame]:
    """The report tables of :func:`assemble` that need neither the retry table nor the
    transactions table, conformed."""
    peers, failures = breakdown.peer_tables(m, uris)
    return _conformed(
        {
            "by_code": counts.by_code(counted.groups),
            "by_method": counts.by_method(counted.groups),
            "by_class": breakdown.by_class(counted.groups),
            "by_category": breakdown.by_category(counted.groups),
            "by_peer": peers,
            "metrics": metrics.compute(end_to_end, wide, regs),
            "code_shares": breakdown.code_shares(counted.groups),
            "failures_by_method": breakdown.failures_by_method(m),
            "user_agents": counts.user_agents(counted.software),
            **{f"failures_by_{by}": table for by, table in failures.items()},
            "code_by_cause": causes.code_by_cause(end_to_end),
            "agents_by_outcome": causes.agents_by_outcome(end_to_end),
        }
    )


def _conformed(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The small tables take their columns and dtypes from one place, empty or not."""
    return {name: schema.conform(t, schema.ANALYSIS_TABLES[name]) for name, t in tables.items()}


def _on_read(
    **tables: tuple[Callable[[pd.DataFrame], pd.DataFrame], pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """Each table of :data:`_TABLES_ON_READ` as ``build(source)``, conformed, built on read
    (typed as the table it stands for: :func:`_built_on_read` installs the fields)."""
    assert tables.keys() == set(_TABLES_ON_READ)
    return {
        name: cast("pd.DataFrame", BuiltOnRead(source, partial(_conformed_table, name, build)))
        for name, (build, source) in tables.items()
    }


def _conformed_table(
    name: str, build: Callable[[pd.DataFrame], pd.DataFrame], source: pd.DataFrame
) -> pd.DataFrame:
    return schema.conform(build(source), schema.ANALYSIS_TABLES[name])
