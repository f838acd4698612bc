"""Analysis stage, dialog part: messages -> transactions, calls and registrations.

Everything here looks only at messages of the same Call-ID (an RFC 3261 §17 transaction key
holds the Call-ID, calls are Call-ID + From tag, registrations Call-ID + From tag), so it
runs on any partition of the messages that keeps each Call-ID whole: the whole capture in
one process, or one Call-ID hash partition on a cluster worker. :func:`merge` joins the
partitions' tables into what one run over all messages gives: ids renumbered in order of
first appearance, messages in capture order. :func:`reported` keeps of the messages only
those the report reads one by one, so that a partition's tables grow with its transactions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from sipstats import schema
from sipstats.analyze import b2bua, challenges, keys, legs, registrations
from sipstats.analyze import calls as calls_stage
from sipstats.analyze import transactions as tx_stage
from sipstats.analyze.join import join_catalogue
from sipstats.analyze.tally import report_messages
from sipstats.messages import in_capture_order

__all__ = ["Dialogs", "analyze_dialogs", "concat", "merge", "reported"]


@dataclass
class Dialogs:
    """The per-Call-ID tables of some messages (all of them, or one partition)."""

    messages: pd.DataFrame
    """``schema.ANALYZED_MESSAGES``, in capture order."""
    wide: pd.DataFrame
    """:func:`sipstats.analyze.transactions.build`'s frame, one row per transaction."""
    calls: pd.DataFrame
    registrations: pd.DataFrame
    first_seen: pd.DataFrame
    """ts, file, frame of each transaction's first message, in transaction order: where the
    transaction stands in capture order, which :func:`merge` numbers transactions by."""


def analyze_dialogs(
    messages: pd.DataFrame,
    *,
    capture_end: pd.Timestamp | None = None,
    correlation: b2bua.Correlation = "auto",
) -> Dialogs:
    """Transactions, retransmission flags, catalogue join, calls and registrations.

    ``messages`` conforms to ``schema.MESSAGES`` and is in capture order; it holds every
    message of each Call-ID it holds. ``capture_end`` is the last message time of the whole
    capture (a partition's own last message is earlier: calls still ringing at the end of
    the capture are told apart by it); None takes the last time in ``messages``.
    ``correlation`` is the header each call's ``correlation_id`` comes from (B2BUA legs are
    linked later, across partitions: :func:`sipstats.analyze.b2bua.link`).
    """
    transaction, retransmission = tx_stage.assign(messages)
    m = messages.assign(transaction=transaction, retransmission=retransmission)
    sender = keys.senders(m)  # read by the request key and by the calls
    request_key = keys.request_key(m, sender)
    m["client_leg"] = legs.client_leg(m, request_key)
    m["challenge"] = challenges.answered_challenge(m, request_key)
    # the frame holds copies: row-long arrays kept to the end add to the peak memory (but
    # sender, int32, kept for the calls)
    del transaction, retransmission, request_key
    m = schema.conform(join_catalogue(m), schema.ANALYZED_MESSAGES)
    wide = tx_stage.build(m)
    calls = calls_stage.build(m, wide, sender, capture_end=capture_end, correlation=correlation)
    # transaction ids count up in order of first message
    first = keys.first_appearances(m["transaction"].to_numpy())
    return Dialogs(
        messages=m,
        wide=wide,
        calls=calls,
        registrations=registrations.build(wide),
        first_seen=m[["ts", "file", "frame"]].iloc[first].reset_index(drop=True),
    )


def reported(parts: Dialogs) -> Dialogs:
    """``parts`` with only the messages the report reads one by one
    (:func:`sipstats.analyze.tally.report_messages`)."""
    return dataclasses.replace(parts, messages=report_messages(parts.messages))


def concat(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Rows of several frames of one schema; categorical columns keep a union of categories."""
    frames = [frame for frame in frames if len(frame)] or list(frames[:1])
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    columns = {}
    for name in frames[0].columns:
        if isinstance(frames[0][name].dtype, pd.CategoricalDtype):
            columns[name] = pd.Series(union_categoricals([frame[name] for frame in frames]))
        else:
            columns[name] = pd.concat([frame[name] for frame in frames], ignore_index=True)
    return pd.DataFrame(columns)


def merge(parts: Sequence[Dialogs], files: Sequence[str]) -> Dialogs:
    """One :class:`Dialogs` from the partitions' (each Call-ID in one of them), each
    :func:`reported` (its messages ``schema.REPORT_MESSAGES``).

    Messages come in capture order (``files`` is the input order); transaction, call and
    registration ids are renumbered as one run over all messages numbers them.
    """
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(part.wide) for part in parts[:-1]])
    # Transactions are numbered in order of their first message (tx_stage.assign); the
    # partitions' first messages, ranked in capture order, give that numbering.
    firsts = concat([part.first_seen for part in parts])
    ranked = in_capture_order(firsts.assign(old=np.arange(len(firsts))), files)
    new_id = np.empty(len(firsts), dtype=np.int64)
    new_id[ranked["old"].to_numpy()] = np.arange(len(firsts))
    messages = concat(
        [
            p.messages.assign(transaction=new_id[p.messages["transaction"].to_numpy() + o])
            for p, o in zip(parts, offsets, strict=True)
        ]
    )
    wide = concat(
        [
            p.wide.assign(transaction=new_id[p.wide["transaction"].to_numpy() + o])
            for p, o in zip(parts, offsets, strict=True)
        ]
    )
    messages = in_capture_order(messages, files)
    wide = wide.sort_values("transaction").reset_index(drop=True)
    calls = concat([part.calls for part in parts]).sort_values("start_ts", kind="stable")
    calls["call"] = np.arange(len(calls), dtype=np.int64)
    regs = concat([part.registrations for part in parts])
    regs = regs.sort_values(["call_id", "start_ts"], key=_as_text, kind="stable")
    regs["registration"] = np.arange(len(regs), dtype=np.int64)
    return Dialogs(
        messages=schema.conform(messages, schema.REPORT_MESSAGES),
        wide=wide,
        calls=schema.conform(calls, schema.CALLS),
        registrations=schema.conform(regs, schema.REGISTRATIONS),
        first_seen=ranked.drop(columns="old"),
    )


def _as_text(column: pd.Series) -> pd.Series:
    """Sort key: categories by their text (their codes differ between partitions)."""
    return column.astype("str") if isinstance(column.dtype, pd.CategoricalDtype) else column
