"""Analysis keys as integer codes: category codes -> one dense int64 id per distinct key.

Grouping and matching on integers is what keeps the analysis vectorised: a key of several
columns (a dialog is Call-ID + tag, a leg Call-ID + two endpoints) becomes one int64 per
row, and text is looked up only for the few distinct keys a table shows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from sipstats import schema

__all__ = [
    "NAT",
    "categorical",
    "code_texts",
    "codes",
    "codes_at",
    "combine",
    "count_in_group",
    "dialog",
    "dialog_key",
    "dialog_width",
    "distinct_in_group",
    "first_appearances",
    "first_in_group",
    "first_of_each",
    "group_ids",
    "holds",
    "indexable",
    "isin",
    "last_in_group",
    "led_group_ids",
    "lookup",
    "lookup_packed",
    "max_in_group",
    "ns",
    "packed",
    "per_category",
    "pick",
    "ranked_texts",
    "recode",
    "request_key",
    "seconds",
    "senders",
    "sorted_ids",
    "statuses",
    "take",
    "text_ranks",
]


def codes(col: pd.Series) -> np.ndarray:
    """Category codes of ``col`` as int64 (-1 for NA)."""
    return col.cat.codes.to_numpy(dtype=np.int64)


def codes_at(col: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Category codes of ``col`` at ``rows`` as int64 (-1 where a row is -1 or the value NA):
    only those rows are read and widened, not the whole column."""
    return take(col.cat.codes.to_numpy(), rows).astype(np.int64)


def statuses(status: pd.Series | ExtensionArray) -> np.ndarray:
    """Status codes as int16, 0 where there is none (a request, or a response whose code was
    not read), in a quarter of float64's bytes. ``0 < 200`` holds: a test of a range of codes
    that reaches below 100 also asks for a code (``status >= 100``, or the column's NA mask);
    a mask by the rows' kind is not enough, a response whose code was not read is 0 too."""
    return status.to_numpy(dtype=np.int16, na_value=0)


def recode(col: pd.Series, categories: pd.Index, rows: np.ndarray | None = None) -> np.ndarray:
    """Codes of ``col``'s values within ``categories`` (-1 where absent or NA); with ``rows``
    (a mask) only there, -1 elsewhere: only the categories those rows hold are looked up."""
    at = col.cat.codes.to_numpy()  # as narrow as the column holds them: indexes as well
    if rows is not None:
        at = np.where(rows, at, -1)
    if col.cat.categories is categories:
        return at.astype(np.int64)
    held = col.cat.categories
    if rows is None:
        return np.append(categories.get_indexer(held), -1).astype(np.int64)[at]
    used = schema.used_codes(at, len(held))
    mapping = np.full(len(held) + 1, -1, dtype=np.int64)  # the last: code -1 (NA)
    if len(used):  # else no hash table of ``categories`` (every From tag, for To tags)
        mapping[used] = categories.get_indexer(held.take(used))
    return mapping[at]


#: What :func:`ns` gives a missing time (NaT): the least int64.
NAT: Final = np.iinfo(np.int64).min


def ns(times: pd.Series) -> np.ndarray:
    """Times (a datetime column: time-zone aware, else taken as UTC) as int64 nanoseconds
    since the epoch in UTC; a missing time is :data:`NAT`. Nanosecond times are read in place:
    the result is read-only and shares the column's memory (``to_numpy`` copies a time-zone
    aware column, a row-long array per call at the per-Call-ID step's peak memory). Times of
    another unit are converted, and one that nanoseconds cannot hold (before 1677, after 2262)
    raises ``OutOfBoundsDatetime``, where numpy's cast would wrap it silently."""
    if times.dt.unit != "ns":
        times = times.dt.as_unit("ns")
    if not isinstance(times.array, pd.arrays.DatetimeArray):  # Arrow timestamps: converted
        return times.to_numpy(dtype="datetime64[ns]").view(np.int64)
    out = np.asarray(times.array.view("i8"))
    out.flags.writeable = False
    return out


def seconds(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``(later - earlier).dt.total_seconds()`` of :func:`ns` times, NaN where either is
    :data:`NAT`, bit for bit for gaps that fit an int64: whole seconds and the rest are divided
    apart as pandas divides them, on the int64 nanoseconds, without a timedelta Series of each
    step. Gaps beyond 2**53 ns (104 days) go through pandas, which nudges them off whole
    seconds. A gap beyond 2**63 ns (292 years: a pcapng whose signed offsets put times from
    1677 to 2262 in one capture) wraps silently, where pandas raises ``OverflowError``."""
    missing = (later == NAT) | (earlier == NAT)
    delta = np.where(missing, 0, later) - np.where(missing, 0, earlier)
    if np.abs(delta).max(initial=0) > 2**53:
        span = pd.Series(delta.view("timedelta64[ns]")).dt.total_seconds().to_numpy()
        return np.where(missing, np.nan, span)
    whole = delta // 1_000_000_000
    delta -= whole * 1_000_000_000
    out = whole + delta / 1_000_000_000
    out[missing] = np.nan
    return out


def milliseconds(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """:func:`seconds` from ``earlier`` to ``later`` in milliseconds (NaN where either is
    :data:`NAT`), as the tables' ``*_ms`` columns give them."""
    return seconds(later, earlier) * 1000.0


#: Keys below this many per row, plus :data:`_INDEXED_LEAST`, are numbered by tables indexed
#: by key (:func:`group_ids`, :func:`indexable`, :func:`sorted_ids`), not by a hash table of
#: every row.
_INDEXED_PER_ROW: Final = 4
#: Keys below this bound are numbered by tables indexed by key however few the rows.
_INDEXED_LEAST: Final = 1024


def _indexable(bound: int, rows: int) -> bool:
    """Whether keys 0..bound-1 of ``rows`` rows are few enough to index a table by key."""
    return bound <= _INDEXED_PER_ROW * rows + _INDEXED_LEAST


def packed(*parts: np.ndarray) -> np.ndarray:
    """One int64 per row, equal exactly where every one of ``parts`` (any integers or bools) is:
    the parts packed into one integer while it fits in 62 bits; when the next part would not
    fit, what is packed so far is renumbered densely (in order of first appearance, so the
    keys no longer sort as the tuples do). Grouping needs no more, and so does a sort that
    only brings equal keys together; :func:`group_ids` numbers them."""
    key = np.zeros(len(parts[0]), dtype=np.int64)
    if not len(key):
        return key
    bound = 1
    for part in parts:
        # in place on the int64 key: a part may come as int8 codes or bool flags, never widened
        low = int(part.min())
        width = int(part.max()) - low + 1
        if bound * width >= 1 << 62:
            key = pd.factorize(key)[0].astype(np.int64, copy=False)
            bound = int(key.max()) + 1
        key *= width
        key += part
        if low:
            key -= low
        bound *= width
    return key


def group_ids(*parts: np.ndarray) -> np.ndarray:
    """One int64 id per distinct tuple of ``parts`` (any integers), dense, in order of first
    appearance: what ``groupby(parts, sort=False).ngroup()`` numbers, without a groupby.
    Keys that pack below a few times the rows (few distinct values per part) are numbered
    by a table indexed by key, without the hash table of every row ``pd.factorize`` builds.

    The worst case of that table is a distinct key on every row, spread up to the bound
    (:data:`_INDEXED_PER_ROW`): on a million rows 0.16 s CPU and a 107 MiB peak, against
    0.06 s and 56 MiB for ``pd.factorize``; keys of a capture's columns repeat (200 distinct
    keys on a million rows: 0.004 s either way, 16 MiB against 40 MiB)."""
    key = packed(*parts)
    bound = int(key.max(initial=-1)) + 1
    if not _indexable(bound, len(key)):
        return pd.factorize(key)[0].astype(np.int64, copy=False)
    # first rows of the keys of the first few rows, then of the rows of keys not seen there:
    # a key of few values is found at once, and ``minimum.at`` over every row is 10 ns a row
    first = np.full(bound, len(key), dtype=np.int64)
    head = min(len(key), 4096)
    np.minimum.at(first, key[:head], np.arange(head))
    later = head + np.flatnonzero(first[key[head:]] == len(key))
    np.minimum.at(first, key[later], later)
    seen = np.flatnonzero(first < len(key))
    rank = np.empty(bound, dtype=np.int64)
    rank[seen[np.argsort(first[seen])]] = np.arange(len(seen))
    return rank[key]


def led_group_ids(lead: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    """:func:`group_ids` of ``lead`` and ``parts``, for a ``lead`` (codes, -1: missing) that
    nearly decides the group, as a Via branch names one transaction: rows whose key equals
    that of their lead's first row take the lead as their group, so that only the others
    (other methods on a branch, reused branches) are numbered by a hash. Half the work of
    hashing every row's key on the transactions of a large capture."""
    key = packed(lead, *parts)
    n = int(lead.max(initial=-1)) + 1
    has = lead >= 0
    first = first_of_each(lead, n)
    if has.all():  # every row led (every message names a branch): no copies of the rows led
        group = np.where(key == key[first[lead]], lead, -1)
    else:
        group = np.where(has, lead, -1)
        group[has] = np.where(key[has] == key[first[lead[has]]], lead[has], -1)
    # the rows where a group appears first: a lead's first row (its key is the lead's), and
    # the first of each other key
    is_first = np.zeros(len(group), dtype=bool)
    is_first[first[first >= 0]] = True
    other = np.flatnonzero(group < 0)
    if len(other):
        ids = pd.factorize(key[other])[0]
        group[other] = n + ids
        is_first[other[first_appearances(ids)]] = True
    # renumbered in order of first appearance, as group_ids numbers them
    rank = np.full(int(group.max(initial=-1)) + 1, -1, dtype=np.int64)
    rank[group[is_first]] = np.arange(int(is_first.sum()))
    return rank[group]


def indexable(*parts: np.ndarray) -> np.ndarray:
    """Non-negative int64 ids, equal where every one of ``parts`` is, small enough to index a
    per-id table: :func:`packed` as it is while below a few times the rows (no hash table of
    every row), else :func:`group_ids`."""
    key = packed(*parts)
    if not _indexable(int(key.max(initial=-1)) + 1, len(key)):
        return group_ids(key)
    return key


def sorted_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` without sorting every value: non-negative
    signed integers below a few times their count by a table indexed by value, others by
    hashing, which sorts only the distinct values. The table takes less memory than
    ``pd.factorize``'s hash table, which is sized by the values, not the distinct ones: on a
    million values, 11 against 40 MiB for 200 distinct ones, 37 against 56 MiB at the
    table's bound (:data:`_INDEXED_PER_ROW`)."""
    if values.dtype.kind == "i" and len(values) and int(values.min()) >= 0:
        bound = int(values.max()) + 1
        if _indexable(bound, len(values)):
            present = np.zeros(bound, dtype=bool)
            present[values] = True
            rank = np.cumsum(present, dtype=np.int32 if bound < 2**31 else np.int64)
            np.subtract(rank, 1, out=rank)
            distinct = np.flatnonzero(present).astype(values.dtype, copy=False)
            return distinct, rank[values].astype(np.int64)
    ids, distinct = pd.factorize(values)
    order = np.argsort(distinct)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[ids]


def text_ranks(texts: Any) -> np.ndarray:
    """Each of ``texts``' rank in text order (equal texts, equal ranks): a sort key that keeps
    a sort by name on integers (:func:`categorical`'s codes)."""
    index = pd.Index(texts, dtype="str")
    return categorical(index, np.arange(len(index))).codes


def categorical(texts: pd.Index, at: np.ndarray) -> pd.Categorical[str]:
    """``texts[at]`` (NA where ``at`` is -1) as a categorical of the distinct texts it holds,
    sorted: what ``astype("category")`` of those values gives, with each text looked at once.

    ``texts`` may repeat a text (the categories of several columns, one after the other).
    One sort of the texts ``at`` uses numbers them: equal texts sort side by side, so no hash
    of every text is needed, nor pandas' check that the categories are distinct.
    """
    used = schema.used_codes(at, len(texts))
    candidates = texts if len(used) == len(texts) else texts.take(used)
    order = np.asarray(candidates.argsort(), dtype=np.int64)
    in_order = candidates.take(order)
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.asarray(in_order[1:] != in_order[:-1], dtype=bool)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    code = np.full(len(texts) + 1, -1, dtype=np.int64)  # the last: where ``at`` is -1
    code[used] = rank
    distinct = in_order if new.all() else in_order[new]
    dtype: Any = schema.distinct_categories(distinct)  # pandas-stubs: codes of int only
    return pd.Categorical.from_codes(code[at], dtype=dtype, validate=False)


def ranked_texts(column: pd.Series, rows: np.ndarray, missing: str) -> tuple[np.ndarray, list[str]]:
    """The text of each row of ``column`` at ``rows`` (a mask) as its rank among the distinct
    texts those rows hold (a missing value reads ``missing``), and those texts in order: the
    text is read once per category, never per row."""
    column = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    at = codes(column)[rows]
    texts = column.cat.categories.astype("str").to_numpy(dtype=object)
    texts = pd.Index(np.append(texts, missing), dtype="str")  # the last: NA
    named = categorical(texts, np.where(at >= 0, at, len(texts) - 1))
    return np.asarray(named.codes, dtype=np.int64), [str(name) for name in named.categories]


def combine(*parts: np.ndarray) -> np.ndarray:
    """:func:`group_ids` of non-negative codes, -1 where any part is -1 (a missing value)."""
    valid = np.ones(len(parts[0]), dtype=bool)
    for part in parts:
        valid &= part >= 0
    ids = group_ids(*(part[valid] for part in parts))
    out = np.full(len(valid), -1, dtype=np.int64)
    out[valid] = ids
    return out


def dialog(
    call_id: pd.Series, tag: pd.Series, tags: pd.Index, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """:func:`dialog_key` of each row's Call-ID and tag, -1 for a row without a tag (or
    whose tag is not in ``tags``): the key a To tag names a dialog's caller half by.

    ``tags`` are the categories the key counts tags in (the From tags), so that a To tag and
    a From tag of the same text give the same key. ``rows`` (a mask): keys only there, -1
    elsewhere.
    """
    # in place on one int64 array: this runs on every message, at the analysis's peak memory
    key = recode(tag, tags, rows)
    key += 1  # 0: no tag (or not among ``tags``)
    invalid = (call_id.cat.codes.to_numpy() < 0) | (key == 0)
    if rows is not None:
        invalid |= ~rows
    return _pack_dialog(call_id.cat.codes.to_numpy(), key, tags, invalid)


def dialog_width(tags: pd.Index) -> int:
    """Keys of :func:`dialog_key` per Call-ID (one per tag in ``tags``, one for none): the width
    :func:`lookup_packed` takes for them."""
    return len(tags) + 1


def dialog_key(call: np.ndarray, tag: np.ndarray, tags: pd.Index) -> np.ndarray:
    """Call-ID x tag as one int64 from their codes (-1: none; ``tags`` the tags coded): the
    key of a dialog's caller half (RFC 3261 §12). A row without a tag has a key of its own
    per Call-ID, a row without a Call-ID -1. Equal keys are equal dialogs for codes of the
    same Call-ID categories and ``tags``."""
    key = tag.astype(np.int64)  # a copy, changed in place
    key += 1
    return _pack_dialog(call, key, tags, call < 0)


def _pack_dialog(
    call: np.ndarray, key: np.ndarray, tags: pd.Index, invalid: np.ndarray
) -> np.ndarray:
    """The one spelling of a dialog key: ``call * width + key`` (``key``: the tag's code + 1,
    0 for none), -1 where ``invalid``. Changes ``key`` in place and returns it: :func:`dialog`
    runs on every message, at the analysis's peak memory."""
    packed = call.astype(np.int64)  # a copy, changed in place
    packed *= dialog_width(tags)
    key += packed
    key[invalid] = -1
    return key


def senders(messages: pd.DataFrame) -> np.ndarray:
    """Call-ID x From tag of each message as one int32 id (-1 without a Call-ID): the caller's
    half of a dialog (as :func:`dialog_key` keys it) and the client of a request
    (:func:`request_key`), numbered once for every per-Call-ID step that keys on it.

    A Call-ID nearly always carries one From tag (the callee's in-dialog requests add a
    second): :func:`led_group_ids`, not a hash of every row's key. Equal ids are equal pairs;
    the ids are not dense where a Call-ID is missing."""
    call = codes(messages["call_id"])
    ids = led_group_ids(call, codes(messages["from_tag"]))
    ids[call < 0] = -1
    # int32: held through the step, at its peak memory (fewer ids than rows)
    return ids.astype(np.int32 if len(ids) < 2**31 else np.int64)


def request_key(messages: pd.DataFrame, sender: np.ndarray) -> np.ndarray:
    """Call-ID x From tag x CSeq method of each message as :func:`indexable` ids: the requests
    one client sends for one method in one dialog, and the responses to them. Requests name
    their method in the request line, responses in CSeq: the CSeq method is compared.
    ``sender`` is :func:`senders` of the messages: rows without a Call-ID share a key per
    method (what reads the key leaves them out)."""
    return indexable(sender, codes(messages["cseq_method"]))


def first_appearances(ids: np.ndarray) -> np.ndarray:
    """Rows where each id appears first, for ids numbered in that order (:func:`group_ids`):
    a first appearance has an id above all before it."""
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    above = np.empty(len(ids), dtype=bool)
    above[0] = ids[0] > -1
    np.greater(ids[1:], np.maximum.accumulate(ids)[:-1], out=above[1:])
    return np.flatnonzero(above)


def lookup(distinct: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values[i]`` where ``wanted`` equals ``distinct[i]`` (distinct keys), -1 where absent."""
    at = pd.Index(distinct).get_indexer(wanted)
    return np.where(at >= 0, values[at] if len(values) else -1, -1)


def lookup_packed(
    distinct: np.ndarray, values: np.ndarray, wanted: np.ndarray, width: int
) -> np.ndarray:
    """:func:`lookup` of keys packed as ``major * width + minor`` (non-negative, ``distinct``
    sorted), such as a dialog's Call-ID code x tag: each key is compared with the first key
    of its major, and only keys whose major holds several are looked up by hash (most
    Call-IDs hold one dialog). The result has the dtype of ``values``."""
    out = np.full(len(wanted), -1, dtype=values.dtype)
    if not len(distinct):
        return out
    major_of = distinct // width
    major = wanted // width  # -1 (no key) stays -1: the last slot below, which holds -1
    n = int(max(major_of[-1], major.max(initial=-1))) + 1
    starts = np.flatnonzero(np.r_[True, major_of[1:] != major_of[:-1]])
    # int32 and freed early: ``wanted`` is row-long, at the analysis's peak memory
    first = np.full(n + 1, -1, dtype=np.int32 if len(distinct) < 2**31 else np.int64)
    first[major_of[starts]] = starts
    several = np.zeros(n + 1, dtype=bool)
    several[major_of[starts[np.diff(np.r_[starts, len(distinct)]) > 1]]] = True
    shared = np.flatnonzero(several[major])
    candidate = first[major]
    del major
    found = distinct[candidate] == wanted
    found &= candidate >= 0
    out[found] = values[candidate[found]]
    out[shared] = lookup(distinct, values, wanted[shared])
    return out


def holds(column: pd.Series, values: Collection[str]) -> np.ndarray:
    """True where a categorical column holds one of ``values``: each category is looked at
    once, not each row (no hash table of every category is left on them either)."""
    chosen = np.append(column.cat.categories.isin(values), False)  # the last: NA
    return chosen[codes(column)]


def per_category(column: pd.Series, rule: Callable[[str], bool]) -> np.ndarray:
    """``rule`` of each category of a categorical column, then False for NA: indexed by
    :func:`codes`, True where a row's text meets ``rule``. Each category is tested once, as a
    Python ``str``: pandas' ``.str`` methods run Arrow's kernels when pyarrow holds the column
    and Python's otherwise, and the two lower-case, upper-case, strip and match some non-ASCII
    text differently (``"İ".lower()``, ``"ß".upper()``, what ``\\s`` and ``strip`` take for
    blank), so results would depend on what is installed."""
    categories = column.cat.categories
    chosen = np.fromiter(map(rule, categories), dtype=bool, count=len(categories))
    return np.append(chosen, False)


def isin(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """True where ``values`` is one of ``members`` (a hash lookup: ``np.isin`` sorts both)."""
    return pd.Index(pd.unique(members)).get_indexer(values) >= 0


def take(values: np.ndarray, at: np.ndarray, fill: int = -1) -> np.ndarray:
    """``values[at]``, ``fill`` where ``at`` is -1."""
    return np.where(at >= 0, values[np.maximum(at, 0)] if len(values) else fill, fill)


def pick(condition: np.ndarray, yes: np.ndarray | int, no: np.ndarray | int) -> np.ndarray:
    """``np.where(condition, yes, no)`` of a bool ``condition`` and integers (other
    conditions are not ``np.where``'s: a 2 doubles the step), by arithmetic (``no + (yes - no) *
    condition``, exact: int64 wraps around and back), not a branch per row: a condition that
    flips row by row, as requests and responses do, makes ``np.where`` several times slower
    (on the 1M capture's ``is_request``: 12.7 against 4.5 ms)."""
    out = np.subtract(yes, no, dtype=np.result_type(yes, no))
    out *= condition
    out += no
    return out


def first_in_group(group: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1, the first position where ``mask`` holds (-1: none)."""
    # indexed by positions, not by the mask: a boolean index of a mask that alternates (as
    # requests and responses do) is about three times slower than finding the positions and
    # taking them
    rows = np.flatnonzero(mask)
    out = np.full(n, len(group), dtype=np.int64)
    np.minimum.at(out, group[rows], rows)
    out[out == len(group)] = -1
    return out


def first_of_each(ids: np.ndarray, n: int) -> np.ndarray:
    """Per id 0..n-1, the first row holding it (-1: none; ``ids`` of -1 hold none). Codes are
    most often numbered in order of first appearance (the decoder numbers texts as it meets
    them): then those rows are where an id exceeds all before it, found without
    :func:`first_in_group`'s ``minimum.at`` over every row."""
    rows = first_appearances(ids)
    if len(rows) == n and np.array_equal(ids[rows], np.arange(n)):
        return rows
    return first_in_group(ids, ids >= 0, n)


def last_in_group(group: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1, the last position where ``mask`` holds (-1: none)."""
    rows = np.flatnonzero(mask)  # as :func:`first_in_group`
    out = np.full(n, -1, dtype=np.int64)
    np.maximum.at(out, group[rows], rows)
    return out


def count_in_group(group: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1, how many positions ``mask`` holds at."""
    return np.bincount(group[np.flatnonzero(mask)], minlength=n)  # as :func:`first_in_group`


def max_in_group(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1, the largest of ``values`` (float; NaN ignored, NaN for none)."""
    out = np.full(n, -np.inf)
    known = ~np.isnan(values)
    np.maximum.at(out, group[known], values[known])
    return np.where(np.isneginf(out), np.nan, out)


def distinct_in_group(
    group: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int
) -> np.ndarray:
    """Per group 0..n-1, how many distinct ``values`` (non-negative codes) ``mask`` holds at.

    Most groups hold one value (a call's To tag): any one row's value per group is compared
    with all its rows', and only groups where they differ are counted by pairs.
    """
    rows = np.flatnonzero(mask)  # as :func:`first_in_group`
    g, v = group[rows], values[rows]
    out = (np.bincount(g, minlength=n) > 0).astype(np.int64)
    one = np.empty(n, dtype=v.dtype)
    one[g] = v
    several = np.zeros(n, dtype=bool)
    several[g[v != one[g]]] = True
    if several.any():
        rows = several[g]
        pair = combine(g[rows], v[rows])
        group_of_pair = np.zeros(int(pair.max(initial=-1)) + 1, dtype=np.int64)
        group_of_pair[pair] = g[rows]
        out[several] = np.bincount(group_of_pair, minlength=n)[several]
    return out


#: 'CODE' of every code a response can carry (the parser keeps three digits).
_CODE_TEXT = np.array([f"{code:03d}" for code in range(1000)], dtype=object)


def code_texts(group: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group 0..n-1 present in ``group``, in order: its top code ('486', the most
    frequent, the lowest on a tie) and its codes as 'CODExCOUNT|...' texts, most frequent
    first, then the lowest. Each distinct 'CODExCOUNT' is made once; text is joined only
    where a group has several codes (most have one)."""
    if not len(group):
        return np.array([], dtype=object), np.array([], dtype=object)
    pair, count = _pair_counts(group, code)
    pair_group, pair_code = pair // 1000, pair % 1000
    width = int(count.max()) + 1
    order = _by_group_count_code(pair_group, count, pair_code, width)
    pair_group, pair_code, count = pair_group[order], pair_code[order], count[order]
    first = np.flatnonzero(np.r_[True, pair_group[1:] != pair_group[:-1]])
    pieces, piece = sorted_ids(pair_code * width + count)
    made = [f"{key // width:03d}x{key % width}" for key in pieces.tolist()]
    text = np.array(made, dtype=object)[piece]
    later = np.ones(len(text), dtype=bool)
    later[first] = False
    text[later] = "|" + text[later]
    return _CODE_TEXT[pair_code[first]], np.add.reduceat(text, first)


def _by_group_count_code(
    group: np.ndarray, count: np.ndarray, code: np.ndarray, width: int
) -> np.ndarray:
    """The order of pairs by group, then most ``count`` (below ``width``), then lowest code
    (0-999): one key packed while it fits, sorted stably. The pairs come ordered by group
    (:func:`_pair_counts`), so the sort finds long runs (far less work than a lexsort)."""
    bound = (int(group.max(initial=0)) + 1) * width * 1000
    if bound >= 1 << 62:
        return np.lexsort((code, -count, group))
    return np.argsort((group * width + (width - 1 - count)) * 1000 + code, kind="stable")


def _pair_counts(group: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(group * 1000 + code, return_counts=True)`` (groups from 0, codes 0-999):
    counted in a table of group x code held, when that is small (:func:`_indexable`), so
    that no row is sorted. A failure table's groups hold a few codes of a dozen."""
    held = np.flatnonzero(np.bincount(code, minlength=1000))
    bound = (int(group.max()) + 1) * len(held)
    if not _indexable(bound, len(group)):
        return np.unique(group * 1000 + code, return_counts=True)
    column = np.empty(1000, dtype=np.int64)
    column[held] = np.arange(len(held))
    counts = np.bincount(group * len(held) + column[code], minlength=bound)
    pairs = np.flatnonzero(counts)
    return pairs // len(held) * 1000 + held[pairs % len(held)], counts[pairs]
