"""Aggregate stage: analysed messages -> failures by class, category, code, method, peer, time.

Every table counts responses twice: ``count`` is every packet, ``unique`` leaves
retransmissions out; shares are of unique responses, so a retransmitted 503 weighs once.
A response's class is its first digit (RFC 3261 §7.2; an unknown x99 keeps its digit);
a code outside 100-699 has none and is left out of the class tables.
A *failure* here is a 4xx, 5xx or 6xx response (RFC 3261 §21.4-§21.6); 3xx redirects the
request and is not counted as one, nor is a 401/407 challenge that the client answered with
credentials (:mod:`.challenges`): the failure tables leave those out and count them apart
(``challenges`` columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Tick

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.responses import response_rows
from sipstats.analyze.retries import UriKeys
from sipstats.analyze.tally import time_runs, weights
from sipstats.analyze.transactions import codes, endpoints
from sipstats.catalogue import STATUS_CLASSES as CLASSES
from sipstats.checks import MAX_INTERVAL_DAYS
from sipstats.errors import OptionError
from sipstats.ranking import most_first_order

FAILURE_CLASSES = ("4xx", "5xx", "6xx")
#: The class timeline's column of answered 401/407 challenges (kept out of '4xx').
CHALLENGES = "challenges"
#: Most rows :func:`timeline` fills in with empty buckets.
MAX_BUCKETS = 100_000
TimelineBy = Literal["status_class", "category"]
#: Round bucket sizes :func:`auto_interval` picks from, shortest first.
INTERVAL_LADDER: tuple[str, ...] = ("1s", "2s", "5s", "10s", "15s", "30s", "1min", "2min")
INTERVAL_LADDER += ("5min", "10min", "15min", "30min", "1h", "2h", "3h", "6h", "12h", "1D")
#: Buckets :func:`auto_interval` aims to stay within.
AUTO_BUCKETS = 60
#: Longest timeline bucket :func:`check_interval` accepts (``checks.MAX_INTERVAL_DAYS``).
MAX_INTERVAL = pd.Timedelta(days=MAX_INTERVAL_DAYS)


def _class_codes(code: np.ndarray) -> np.ndarray:
    """Each code's position in :data:`CLASSES` (-1: a code outside 100-699)."""
    return np.where((code >= 100) & (code <= 699), code // 100 - 1, -1)


def _tally(
    messages: pd.DataFrame, keep: np.ndarray, group: np.ndarray, names: Sequence[str], name: str
) -> pd.DataFrame:
    """count / unique / share per group 0..len(names)-1 of the responses at ``keep`` (``group``
    of each, -1: in none); share of unique responses, NaN when there are none."""
    n = weights(messages).to_numpy(dtype=np.int64)[keep]
    unique = np.where(messages["retransmission"].to_numpy(dtype=bool)[keep], 0, n)
    counted = group >= 0

    def per_group(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(group[counted], weights=values[counted], minlength=len(names))
        return sums.astype(np.int64)

    count, unique_count = per_group(n), per_group(unique)
    total = unique_count.sum()
    return pd.DataFrame(
        {
            name: pd.array(list(names), dtype="str"),
            "count": count,
            "unique": unique_count,
            "share": unique_count / total if total else np.full(len(names), np.nan),
        }
    )


def by_class(messages: pd.DataFrame) -> pd.DataFrame:
    """status_class ('1xx'..'6xx', all six), count, unique, share (of unique responses).

    ``messages`` (here and in :func:`by_category`, :func:`code_shares`): analysed messages,
    or message groups (:attr:`~sipstats.analyze.tally.Tally.groups`).
    """
    keep, code = response_rows(messages)
    return _tally(messages, keep, _class_codes(code), CLASSES, "status_class")


def by_category(messages: pd.DataFrame) -> pd.DataFrame:
    """category (the catalogue's), count, unique, share; most frequent first."""
    keep, _ = response_rows(messages)
    group, names = _categories(messages, keep)
    table = _tally(messages, keep, group, names, "category")
    order = most_first_order(table["category"].tolist(), table["unique"].tolist())
    return table.take(order).reset_index(drop=True)


def _categories(messages: pd.DataFrame, keep: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The catalogue category of each row at ``keep`` as a position in the sorted names of
    those the rows hold (a missing one is 'unknown'), and those names. Merged groups may
    hold the column as text."""
    return keys.ranked_texts(messages["category"], keep, "unknown")


def code_shares(messages: pd.DataFrame) -> pd.DataFrame:
    """code ('486'), status_class, count, unique, share (of unique responses); by code."""
    keep, code = response_rows(messages)
    distinct, group = np.unique(code, return_inverse=True)
    texts = [f"{c:03d}" for c in distinct.tolist()]
    table = _tally(messages, keep, group.astype(np.int64), texts, "code")
    classes = pd.Series([f"{c // 100}xx" for c in distinct.tolist()], dtype="str")
    table.insert(1, "status_class", classes)
    return table


def failures_by_method(messages: pd.DataFrame) -> pd.DataFrame:
    """Per request method (the response's CSeq method): unique responses per class.

    Columns: method, responses (unique), '1xx'..'6xx' (unique), failures (unique 4xx-6xx),
    failure_share (failures / unique finals, i.e. responses of class 2xx-6xx; NaN if none),
    challenges (answered 401/407, left out of every other column).
    """
    keep, code = response_rows(messages, unique=True)  # read as arrays: no frame of them
    column = messages["cseq_method"]
    text = np.asarray(column.cat.categories.astype("str"), dtype=object)
    group, names = _named_groups(codes(column)[keep], text)
    n, width = len(names), len(CLASSES)
    cls = _class_codes(code)  # -1: a code outside 100-699
    challenge = messages["challenge"].to_numpy(dtype=bool)[keep]
    counted = ~challenge & (cls >= 0)
    per_class = np.bincount(group[counted] * width + cls[counted], minlength=n * width)
    seen = np.flatnonzero(np.bincount(group, minlength=n))
    # summed on the array and the table made once, in its order: no step on a frame
    per_class = per_class.reshape(n, width)[seen].astype(np.int64)
    failures = per_class[:, [CLASSES.index(c) for c in FAILURE_CLASSES]].sum(axis=1)
    finals = per_class[:, 1:].sum(axis=1)
    # most failures first, then by method (the names are distinct)
    order = most_first_order(names[seen].tolist(), failures.tolist())
    return pd.DataFrame(
        {
            "method": pd.array(names[seen][order], dtype="str"),
            "responses": per_class.sum(axis=1)[order],
            **{cls: per_class[order, at] for at, cls in enumerate(CLASSES)},
            "failures": failures[order],
            "failure_share": (failures / np.where(finals > 0, finals, np.nan))[order],
            "challenges": np.bincount(group[challenge], minlength=n)[seen][order].astype(np.int64),
        }
    )


def by_peer(messages: pd.DataFrame) -> pd.DataFrame:
    """Who sent failures to whom, most failures first.

    responder = ``address:port`` that sent the 4xx-6xx, requester = where it went;
    failures (unique), share (of all unique failures), top_code (most frequent, lowest code
    on a tie), codes ('486x3|480x2', most frequent first). Answered 401/407 challenges are
    left out.
    """
    finals = _finals(messages)
    return _by_peer(finals, _endpoints_of(finals))


def peer_tables(
    messages: pd.DataFrame, uris: UriKeys | None = None
) -> tuple[pd.DataFrame, dict[FailureKey, pd.DataFrame]]:
    """:func:`by_peer` and :func:`failures_by` from one pick of the final responses and one
    naming of their endpoints: the failures :func:`by_peer` counts are final responses."""
    finals = _finals(messages)
    ends = _endpoints_of(finals)
    return _by_peer(finals, ends), _failures_by(finals, ends, uris)


def _by_peer(
    finals: pd.DataFrame, ends: dict[FailureKey, tuple[np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """:func:`by_peer` of the final responses ``finals`` (:func:`_finals`) and the groups of
    their endpoints (:func:`_endpoints_of`)."""
    code = finals["code"].to_numpy(dtype=np.int64)
    failed = (code >= 400) & ~finals["challenge"].to_numpy(dtype=bool)
    if not failed.any():
        return schema.empty(schema.BY_PEER)
    (responder, responders), (requester, requesters) = ends["responder"], ends["requester"]
    pair = responder[failed] * len(requesters) + requester[failed]
    pair_ids, group = np.unique(pair, return_inverse=True)
    top_code, code_texts = keys.code_texts(group, code[failed])
    failures = np.bincount(group, minlength=len(pair_ids)).astype(np.int64)
    of_responder, of_requester = pair_ids // len(requesters), pair_ids % len(requesters)
    # most failures first, then by responder and requester: the table made in that order
    order = np.lexsort(
        (
            keys.text_ranks(requesters)[of_requester],
            keys.text_ranks(responders)[of_responder],
            -failures,
        )
    )
    return pd.DataFrame(
        {
            "responder": pd.array(responders[of_responder[order]], dtype="str"),
            "requester": pd.array(requesters[of_requester[order]], dtype="str"),
            "failures": failures[order],
            "share": (failures / failures.sum())[order],
            "top_code": pd.array(top_code[order], dtype="str"),
            "codes": pd.array(code_texts[order], dtype="str"),
        }
    )


def _endpoint_groups(resp: pd.DataFrame, address: str, port: str) -> tuple[np.ndarray, np.ndarray]:
    """Group of each row's ``address:port`` and the groups' text (see :func:`_named_groups`)."""
    values = endpoints(resp[address], resp[port])
    return _named_groups(values.codes.astype(np.int64), np.asarray(values.categories))


#: What :func:`failures_by` groups final responses by.
FailureKey = Literal["responder", "requester", "caller", "callee"]


def _named_groups(row_codes: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group of each row and the groups' names from category codes and each category's text
    (code -1 and NA text grouped as 'unknown'); categories with the same text share a group."""
    text = np.append(text, np.array([None], dtype=object))  # code -1: no value
    group, names = pd.factorize(np.where(pd.isna(text), "unknown", text))
    return group[row_codes], np.asarray(names, dtype=object)


#: :func:`failures_by`'s keys from an address and port, and from a URI.
_BY_ENDPOINT: tuple[tuple[FailureKey, str, str], ...] = (
    ("responder", "src", "sport"),
    ("requester", "dst", "dport"),
)
_BY_URI: tuple[tuple[FailureKey, str], ...] = (("caller", "from_uri"), ("callee", "to_uri"))
#: The columns :func:`failures_by` and :func:`by_peer` read.
_FAILURE_COLUMNS = ("src", "sport", "dst", "dport", "from_uri", "to_uri", "client_leg", "challenge")


def _finals(messages: pd.DataFrame) -> pd.DataFrame:
    """The final responses (2xx-6xx, unique) :func:`failures_by` and :func:`by_peer` count:
    the columns they read (rows picked before any column is copied) and each one's ``code``."""
    keep, code = response_rows(messages, unique=True, lowest=200, highest=699)
    return messages.loc[keep, list(_FAILURE_COLUMNS)].assign(code=code)


def _endpoints_of(finals: pd.DataFrame) -> dict[FailureKey, tuple[np.ndarray, np.ndarray]]:
    """The responder and requester group of each final response, and the groups' names."""
    return {by: _endpoint_groups(finals, address, port) for by, address, port in _BY_ENDPOINT}


def failures_by(
    messages: pd.DataFrame, uris: UriKeys | None = None
) -> dict[FailureKey, pd.DataFrame]:
    """Final responses (2xx-6xx, unique) per responder, requester, caller and callee: a
    table for each (the final responses are picked once for the four).

    Columns: the key, finals, failures (4xx-6xx), failure_share (failures / finals of that
    row), share_of_failures (of all failures in the capture), top_code, codes
    ('503x12|486x2'). Rows that had a failure only, most failures first. Responders and
    requesters are per hop (each leg at a proxy has its own): ``address:port`` of the
    response's source or destination. Callers and callees are the From and To URIs as
    ``user@host`` like the retries table (``uris``: the keys already made), and count what
    the caller got, a relayed response once, on the client's leg (``client_leg``). NA keys
    are grouped as 'unknown'; text is made once per distinct category.
    """
    finals = _finals(messages)
    return _failures_by(finals, _endpoints_of(finals), uris)


def _failures_by(
    finals: pd.DataFrame,
    ends: dict[FailureKey, tuple[np.ndarray, np.ndarray]],
    uris: UriKeys | None,
) -> dict[FailureKey, pd.DataFrame]:
    """:func:`failures_by` of the final responses ``finals`` (:func:`_finals`) and the groups
    of their endpoints (:func:`_endpoints_of`)."""
    code = finals["code"].to_numpy(dtype=np.int64)
    client = finals["client_leg"].to_numpy(dtype=bool)
    uris = UriKeys() if uris is None else uris
    out: dict[FailureKey, pd.DataFrame] = {}
    for by, (group, names) in ends.items():
        out[by] = _failures_of(by, group, names, code)
    client_code = code[client]
    for by, column in _BY_URI:
        ids = uris.ids(finals[column])[client]
        group, names = _named_groups(ids, uris.names.to_numpy(dtype=object))
        out[by] = _failures_of(by, group, names, client_code)
    return out


def _failures_of(
    by: FailureKey, group: np.ndarray, names: np.ndarray, code: np.ndarray
) -> pd.DataFrame:
    """:func:`failures_by`'s table for one key: ``group`` of each final response (``code``,
    2xx-6xx), ``names`` of the groups."""
    failed = code >= 400
    failed_group = group[failed]  # read twice: picked once
    total = np.bincount(group, minlength=len(names))
    failures = np.bincount(failed_group, minlength=len(names))
    if not failures.any():
        return schema.empty(schema.FAILURES_BY[by])
    shown = np.flatnonzero(failures > 0)
    # most failures first, then by name (names are distinct)
    shown = shown[most_first_order(names[shown].tolist(), failures[shown].tolist())]
    position = np.full(len(names), -1, dtype=np.int64)
    position[shown] = np.arange(len(shown))
    # the failed rows' groups are the shown ones, numbered in table order
    top_code, code_texts = keys.code_texts(position[failed_group], code[failed])
    out = pd.DataFrame(
        {
            by: pd.array(names[shown], dtype="str"),
            "finals": total[shown].astype(np.int64),
            "failures": failures[shown].astype(np.int64),
            "failure_share": failures[shown] / total[shown],
            "share_of_failures": failures[shown] / failures.sum(),
            "top_code": pd.array(top_code, dtype="str"),
            "codes": pd.array(code_texts, dtype="str"),
        }
    )
    return schema.conform(out, schema.FAILURES_BY[by])


def with_failure_share(timeline_table: pd.DataFrame) -> pd.DataFrame:
    """A class timeline plus ``finals`` (2xx-6xx), ``failures`` (4xx-6xx) and
    ``failure_share`` (failures / finals of the bucket; NaN in a bucket without finals)."""
    out = timeline_table.copy()
    finals = out[[c for c in CLASSES[1:] if c in out.columns]].sum(axis=1)
    failures = out[[c for c in FAILURE_CLASSES if c in out.columns]].sum(axis=1)
    out["finals"] = finals.astype("int64")
    out["failures"] = failures.astype("int64")
    out["failure_share"] = failures / finals.where(finals > 0)
    return out


def auto_interval(messages: pd.DataFrame) -> str:
    """The shortest round bucket that spreads the capture over at most :data:`AUTO_BUCKETS`
    (:func:`interval_for_runs` of the messages' times)."""
    return interval_for_runs(time_runs(messages["ts"]))


def interval_for_runs(runs: pd.DataFrame) -> str:
    """The shortest round bucket that spreads the capture over at most :data:`AUTO_BUCKETS`.

    A 50 s capture gets 1 s buckets and a day 30 min ones, so the timeline shows when a
    failure began whatever the capture's length. The span is that of the largest run of
    messages with no pause of a day or more between them (``runs``:
    :func:`~sipstats.analyze.tally.time_runs`), so a damaged timestamp (a record stamped 1970)
    cannot stretch it while bursty traffic with quiet hours still counts whole.
    """
    if runs.empty:
        return INTERVAL_LADDER[0]
    largest = runs.iloc[int(runs["messages"].to_numpy().argmax())]
    span = pd.Timedelta(largest["end"] - largest["start"])
    for interval in INTERVAL_LADDER:
        if span <= pd.Timedelta(interval) * AUTO_BUCKETS:
            return interval
    return INTERVAL_LADDER[-1]


def check_interval(interval: str) -> str:
    """``interval`` when it is "auto" or a positive fixed-length offset (``10s``, ``1min``, ``1h``).

    Refused with :class:`OptionError` before any work: text that is no offset ("bananas"),
    calendar offsets ("1ME", "1W": buckets of unequal length), zero or negative lengths and
    lengths over :data:`MAX_INTERVAL`, which would fail deep inside the timeline instead
    (a bucket must end before pandas' last timestamp, in 2262).
    """
    if interval == "auto":
        return interval
    hint = "(e.g. 10s, 1min, 1h, or auto)"
    try:
        nanos = to_offset(interval).nanos
    except (ValueError, TypeError):
        raise OptionError(f"not a fixed interval: {interval!r} {hint}") from None
    if nanos <= 0:
        raise OptionError(f"interval must be longer than zero: {interval!r} {hint}")
    if nanos > MAX_INTERVAL.value:
        raise OptionError(f"interval too long: {interval!r} (at most {MAX_INTERVAL.days} days)")
    return interval


def fixed_step(runs: pd.DataFrame, interval: str) -> pd.Timedelta:
    """``interval`` (checked, "auto" resolved) as a length: every accepted one is fixed."""
    return pd.Timedelta(to_offset(resolve_interval(runs, interval)).nanos)


def resolve_interval(runs: pd.DataFrame, interval: str) -> str:
    """``interval`` checked (:func:`check_interval`), or :func:`interval_for_runs` if "auto".

    ``runs``: the capture's time runs (:func:`~sipstats.analyze.tally.time_runs`).
    """
    return interval_for_runs(runs) if check_interval(interval) == "auto" else interval


def without_gaps(table: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """``table`` (one row per bucket start that holds data) with empty buckets as zero rows.

    The number of buckets is worked out before any is made: when it exceeds
    :data:`MAX_BUCKETS` (a record stamped 1970 in a 2026 capture would need 1.8 billion 1 s
    buckets, 13 GiB) ``table`` comes back as it is.
    """
    if table.empty:
        return table
    if (table.index[-1] - table.index[0]) // step >= MAX_BUCKETS:
        return table
    full = pd.date_range(table.index[0], table.index[-1], freq=step)
    return table.reindex(full, fill_value=0)


def timeline(
    messages: pd.DataFrame, interval: str = "1min", *, by: TimelineBy = "status_class"
) -> pd.DataFrame:
    """Unique responses per time bucket: index = bucket start (UTC), one column per group.

    ``by="status_class"`` gives columns '1xx'..'6xx' (all six; '4xx' without the answered
    401/407 challenges) and ``challenges``; ``by="category"`` one column
    per catalogue category seen. ``interval`` is a pandas offset alias ('10s', '1min', '1h').
    Buckets run without gaps from the first to the last response (empty ones hold zeros),
    unless that would take more than :data:`MAX_BUCKETS` rows (a damaged record stamped 1970
    in a 2024 capture): then only the buckets that hold responses are listed.
    """
    if by not in ("status_class", "category"):
        raise ValueError(f"timeline by {by!r}: use 'status_class' or 'category'")
    offset = to_offset(interval)
    keep, code = response_rows(messages, unique=True)
    if by == "status_class":
        names = [*CLASSES, CHALLENGES]
        cls = _class_codes(code)  # -1: counted in no class
        # answered 401/407 are challenges, not 4xx failures: a column of their own
        challenge = np.flatnonzero(messages["challenge"].to_numpy(dtype=bool)[keep])
        counted = cls.copy()
        counted[challenge[cls[challenge] == CLASSES.index("4xx")]] = -1
        rows = np.r_[np.arange(len(cls)), challenge]
        column = np.r_[counted, np.full(len(challenge), len(CLASSES))]
    else:
        column, names = _categories(messages, keep)
        rows = np.arange(len(column))
    ns = keys.ns(messages["ts"])[keep]
    if not len(ns):
        index = pd.DatetimeIndex([], dtype=schema.UTC_TS, name="bucket")
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in names}, index=index)
    if isinstance(offset, Tick):
        step = pd.Timedelta(offset)
        start, counts = _bucket_counts(ns, step, rows, column, len(names))
        table = without_gaps(pd.DataFrame(counts, index=start, columns=names), step)
    else:  # calendar offsets ('1D' is a Tick; 'MS', 'W' are not) have few buckets
        counts = np.zeros((len(ns), len(names)), dtype=np.int64)
        counted = column >= 0
        np.add.at(counts, (rows[counted], column[counted]), 1)
        index = pd.DatetimeIndex(pd.to_datetime(ns, utc=True))
        table = pd.DataFrame(counts, index=index, columns=names)
        table = table.resample(offset).sum()
    table.index.name = "bucket"
    return table.astype("int64")


def _bucket_counts(
    ns: np.ndarray, step: pd.Timedelta, rows: np.ndarray, column: np.ndarray, width: int
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The buckets of ``step`` that hold a time of ``ns`` (UTC nanoseconds; NaT in none)
    and, per bucket, how many of ``rows`` (positions in ``ns``) each ``column``
    (0..width-1; -1: none) holds: only the distinct buckets are sorted."""
    known = ns != keys.NAT
    floored = ns[known] - ns[known] % step.value
    start, slot = keys.sorted_ids(floored)
    bucket = np.full(len(ns), -1, dtype=np.int64)
    bucket[known] = slot
    counted = (column >= 0) & (bucket[rows] >= 0)
    per_bucket = np.bincount(
        bucket[rows[counted]] * width + column[counted], minlength=len(start) * width
    ).reshape(len(start), width)
    return pd.DatetimeIndex(pd.to_datetime(start, utc=True)), per_bucket.astype(np.int64)
