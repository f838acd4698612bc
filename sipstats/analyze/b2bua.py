"""B2BUA legs: calls -> the calls table with the legs of each end-to-end call linked.

A back-to-back user agent ends the caller's dialog and starts its own towards the callee,
with a new Call-ID: nothing in RFC 3261 ties the two. Deployments add a correlation header
that carries the same value on both sides: ``X-CID``, ``X-Call-ID``, or the IMS charging id
(RFC 7315 §4.6: ``P-Charging-Vector: icid-value=...``). The calls stage keeps the value of
each call's first INVITE (``correlation_id``, :func:`correlation_ids`); :func:`link` then
joins calls across Call-IDs, so it runs once on the merged calls table, after the per-Call-ID
work, whichever engine did that.

Calls with the same correlation id are legs of one end-to-end call when each starts while
an earlier one is still being set up (before its final response; any time when it has none):
a B2BUA starts its leg towards the callee, or its next one after a failure, before it answers
the caller. The earliest leg is the caller's (the A leg); the others name it in
``linked_to``, and every leg carries the outcome the caller saw (``e2e_outcome``). A value
that comes back after the call it marked was answered or failed starts another call.
Tables of calls count end-to-end calls once, on the A leg (:func:`end_to_end`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

import numpy as np
import pandas as pd

from sipstats.analyze import keys
from sipstats.errors import OptionError
from sipstats.vocabulary import CORRELATION_COLUMNS, CORRELATIONS, Correlation

__all__ = ["CORRELATIONS", "Correlation", "correlation_ids", "end_to_end", "legs_of", "link"]

# RFC 7315 §4.6: icid-value = token / quoted-string, among generic parameters.
_ICID: Final = re.compile(r'(?i)(?:^|;)\s*icid-value\s*=\s*"?([^";\s]+)')


def check_correlation(header: str) -> Correlation:
    """``header`` when it is one of :data:`CORRELATIONS`; an OptionError naming them if not."""
    if header not in CORRELATIONS:
        raise OptionError(f"correlation header {header!r}: use one of {', '.join(CORRELATIONS)}")
    return header  # type: ignore[return-value]


def _icid(vector: str) -> str | None:
    """icid-value of a P-Charging-Vector text, None without."""
    found = _ICID.search(vector)
    return found.group(1) if found else None


def correlation_ids(messages: pd.DataFrame, header: Correlation = "auto") -> pd.Categorical[str]:
    """The correlation id of each message (NA without one) from ``header``.

    Each distinct header text is read once, as a Python ``str`` (:func:`keys.per_category`
    says why): the ids are looked up by category code.
    """
    at = np.full(len(messages), -1, dtype=np.int64)
    names = [] if check_correlation(header) == "none" else list(CORRELATION_COLUMNS)
    if header not in ("auto", "none"):
        names = [header]
    texts: list[str | None] = []
    for name in names:
        column = messages[CORRELATION_COLUMNS[name]]
        categories: list[str] = list(column.cat.categories)
        value = [_icid(text) for text in categories] if name == "P-Charging-Vector" else categories
        usable = np.array([bool(text and text.strip()) for text in value] + [False])
        code = keys.codes(column)
        at = np.where((at < 0) & usable[code], code + len(texts), at)
        texts.extend(value)
    return keys.categorical(pd.Index(texts, dtype="str"), at)


def _connected(first: np.ndarray, second: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The rows that share a value of ``first`` or of ``second`` (-1: none) with a row of
    ``start`` or with a row that does, transitively, in row order. A walk that reads each
    value once: a chain of calls, each sharing one value with the next, costs its length,
    not its square (a pass over every row per link did, minutes for a hostile capture)."""
    rows_with = [_rows_with(first), _rows_with(second)]
    reached = np.zeros(len(first), dtype=bool)
    reached[start] = True
    seen: list[set[int]] = [set(), set()]
    todo = start.tolist()
    while todo:
        row = todo.pop()
        for side, values in enumerate((first, second)):
            value = int(values[row])
            if value < 0 or value in seen[side]:
                continue
            seen[side].add(value)
            for other in rows_with[side](value).tolist():
                if not reached[other]:
                    reached[other] = True
                    todo.append(other)
    return np.flatnonzero(reached)


def _rows_with(values: np.ndarray) -> Callable[[int], np.ndarray]:
    """The rows that hold a value, looked up in ``values`` sorted once."""
    order = np.argsort(values, kind="stable")
    in_order = values[order]

    def rows(value: int) -> np.ndarray:
        low, high = np.searchsorted(in_order, [value, value + 1])
        return order[low:high]

    return rows


def link(calls: pd.DataFrame) -> pd.DataFrame:
    """``calls`` (``correlation_id`` set) with ``linked_to`` and ``e2e_outcome`` set.

    Only calls with different Call-IDs are legs of one another: a proxy's legs share theirs
    and are already one call.
    """
    out = calls.copy(deep=False)
    n = len(out)
    key = keys.codes(out["correlation_id"])  # grouped on codes: no text per call
    start = keys.ns(out["start_ts"])
    # A leg is being set up until its final response; without one, to the end of the capture.
    final = keys.ns(out["final_ts"])
    setup_end = np.where(out["final_ts"].isna().to_numpy(), np.iinfo(np.int64).max, final)
    order = pd.DataFrame({"key": key, "start": start, "end": setup_end, "row": np.arange(n)})
    order = order[key >= 0].sort_values(["key", "start", "row"], kind="stable")
    same_key = order["key"].eq(order["key"].shift()).to_numpy()
    running_end = order.groupby("key", sort=False)["end"].cummax()
    open_before = running_end.groupby(order["key"], sort=False).shift().to_numpy()
    joins = same_key & (order["start"].to_numpy() <= open_before)
    group = np.cumsum(~joins)
    head_of_group = order["row"].to_numpy()[np.flatnonzero(~joins)]
    head = np.arange(n)
    head[order["row"].to_numpy()] = head_of_group[group - 1]
    call_id = keys.codes(out["call_id"])
    linked = (head != np.arange(n)) & ((call_id[head] != call_id) | (call_id < 0))
    head = np.where(linked, head, np.arange(n))
    out["linked_to"] = pd.array(out["call"].to_numpy()[head], dtype="Int64")
    out.loc[~linked, "linked_to"] = pd.NA
    out["e2e_outcome"] = pd.Categorical.from_codes(
        keys.codes(out["outcome"])[head], categories=out["outcome"].cat.categories
    )
    return out


def end_to_end(calls: pd.DataFrame) -> pd.DataFrame:
    """Calls counted once per end-to-end call: the A legs and the calls not linked."""
    return calls[calls["linked_to"].isna().to_numpy()]


def legs_of(calls: pd.DataFrame, call_ids: Iterable[str]) -> list[str]:
    """The Call-IDs of every leg of the end-to-end calls these Call-IDs take part in, the
    given ones first, then the linked ones in order of their start.

    Closed: when a leg's Call-ID is also another call's (another From tag), that call's
    messages carry it too, so its end-to-end call's legs are taken as well, until no
    Call-ID brings a new leg. The legs of these legs are then these legs: a flow or an
    extract asked for the Call-IDs a ladder names draws that ladder again.
    """
    given = list(dict.fromkeys(call_ids))
    linked = calls["linked_to"]
    if not linked.notna().to_numpy().any():  # no B2BUA legs: each call is all of itself
        return given
    call_id = calls["call_id"]
    ids = pd.factorize(call_id)[0]
    a_leg = linked.fillna(calls["call"]).to_numpy(dtype=np.int64)
    legs = _connected(ids, a_leg, np.flatnonzero(call_id.isin(given).to_numpy(dtype=bool)))
    ordered = calls.iloc[legs].sort_values(["start_ts", "call"], kind="stable")
    return list(dict.fromkeys([*given, *ordered["call_id"].astype("str")]))
