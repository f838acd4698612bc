"""Retry behaviour after failed calls: calls + analysed messages -> retries table and summaries.

An *attempt* is one row of the calls table (an INVITE call). A *failed attempt* ended with a
final 3xx-6xx and was never answered; a 401/407 challenge that the caller answered with an
authenticated INVITE in the same call is not a failure of the call (RFC 3261 §22.2).

The *retry* of a failed attempt is the first attempt of the same caller to the same target
that starts at or after the failure's final response: caller = From URI and target =
request-URI (To URI when the request-URI is missing), both reduced to ``user@host`` (scheme,
port, parameters and headers dropped; host compared case-insensitively, user as sent,
RFC 3261 §19.1.4). Attempts are linked by caller and target, never by Call-ID text: a UA
that retries starts a new call with a new Call-ID, From tag and branch. An attempt that
started before the failure arrived cannot be a reaction to it, so it is not its retry.

``gap_s`` = first INVITE of the retry − first copy of the failure response. The retry
*honoured* Retry-After when ``gap_s >= N`` (N = delta-seconds, RFC 3261 §20.33) and came
*too early* when ``gap_s < N``. A failure without a usable Retry-After value (absent or
malformed) has no verdict (``honoured`` is NA).

A 503's Retry-After speaks for the server, not the callee (RFC 3261 §21.5.4): for 503 the
``server_*`` columns also follow the next INVITE from the same client host (any port, any
caller) to the same server address:port.

Retry-After figures count unique responses (retransmissions removed), every method, as the
clients got them: at a proxy a relayed response counts once, on the client's leg
(:mod:`.legs`), and a failure that stopped at the proxy (a 503 it turned into 500) not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.keys import codes
from sipstats.analyze.responses import response_rows
from sipstats.ranking import most_first

#: Codes that invite a retry, listed first in the summaries (RFC 3261 §21.4.18, §21.4.25, §21.5.4).
RETRY_CODES = (480, 486, 503)

_URI = (
    r"^\s*<?\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?"  # scheme
    r"(?:(?P<user>[^@;?>]*)@)?"  # userinfo
    r"(?P<host>\[[^\]]*\]|[^:;?>\s]*)"  # host (IPv6 reference or name / IPv4)
)


_URI_PATTERN = re.compile(_URI)
_PASSWORD = re.compile(r":.*")  # RFC 3261 §19.1.1: user:password


def _uri_keys(uris: list[str]) -> list[str | None]:
    """``user@host`` of each URI text (see :func:`uri_key`): one regex match per text, in one
    pass; the host lower-cased by Python's ``str.lower`` (:func:`keys.per_category` says why
    not pandas')."""
    search, password = _URI_PATTERN.search, _PASSWORD.sub
    out: list[str | None] = []
    for uri in uris:
        found = search(uri)  # every part is optional: it always matches
        user, host = found.group("user", "host") if found else (None, "")
        if user and ":" in user:
            user = password("", user)
        out.append(_key(user, host.lower()))
    return out


def _key(user: str | None, host: str) -> str | None:
    """``user@host``, the host alone without a user, None without either."""
    return (f"{user}@{host}" if user else host) or None


class UriKeys:
    """:func:`uri_key` of categorical URI columns as ids in one space (equal keys, equal ids).

    Each set of categories is read once however many columns and tables ask: the calls'
    callers and callees share the messages' From and To URI categories, and the retry table,
    the failure tables and the findings all key on them.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._of_uri: dict[str, int] = {}  # each URI text read: its key's id (-1: no key)
        self._read: list[tuple[pd.Index, np.ndarray]] = []
        self._names: pd.Index = pd.Index([], dtype="str")

    def ids(self, column: pd.Series) -> np.ndarray:
        """The key id of each row of a URI column (-1: NA, or no key); categorical columns
        share the work of their categories."""
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("category")
        return self._of(column.cat.categories)[codes(column)]

    @property
    def names(self) -> pd.Index:
        """Each id's key text (made again only when keys were added since: ids only grow)."""
        if len(self._names) != len(self._ids):
            self._names = pd.Index(list(self._ids), dtype="str")
        return self._names

    def _of(self, categories: pd.Index) -> np.ndarray:
        """The id of each category, and -1 last (the slot code -1 picks). A text read with
        other categories (the report's messages hold a subset of the calls' URIs) is not
        parsed again."""
        for held, ids in self._read:
            if held is categories:
                return ids
        number, of_uri = self._ids.setdefault, self._of_uri
        uris = categories.astype("str").tolist()
        new = [uri for uri in uris if uri not in of_uri]
        for uri, key in zip(new, _uri_keys(new), strict=True):
            of_uri[uri] = -1 if key is None else number(key, len(self._ids))
        ids = np.array([*map(of_uri.__getitem__, uris), -1], dtype=np.int64)
        self._read.append((categories, ids))
        return ids


def uri_key(uris: pd.Series) -> pd.Series:
    """``user@host`` of each URI (scheme, password, port, parameters dropped; host lower-case).

    A URI without a user gives its host; NA and empty stay NA. Text is made once per
    distinct value the rows hold (:class:`UriKeys` reads whole sets of categories).
    """
    column = uris if isinstance(uris.dtype, pd.CategoricalDtype) else uris.astype("category")
    row_codes = codes(column)
    categories = column.cat.categories
    used = schema.used_codes(row_codes, len(categories))
    lookup = np.full(len(categories) + 1, None, dtype=object)  # the last: code -1
    lookup[used] = _uri_keys(categories.take(used).astype("str").tolist())
    return pd.Series(lookup[row_codes], index=uris.index, dtype="str")


def _host_of(text: pd.Series) -> pd.Series:
    """Host part of ``address:port`` strings (``[v6]:port`` or ``v6:port`` alike)."""
    hosts = [value.rsplit(":", 1)[0] if ":" in value else value for value in text.tolist()]
    return pd.Series(hosts, index=text.index, dtype="str")


def _ids(
    func: Callable[[pd.Series], pd.Series], *columns: pd.Series
) -> tuple[list[np.ndarray], pd.Index]:
    """``func`` of categorical columns' values as ids in one space, and each id's text.

    ``func`` runs once per category a column holds (a column taken from a larger table
    keeps that table's categories), never per row; equal results share an id, whichever
    column or category they come from; NA (a missing value, or NA from ``func``) is -1.
    """
    rows, texts = [], []
    for column in columns:
        row_codes = codes(column)
        categories = column.cat.categories
        used = schema.used_codes(row_codes, len(categories))
        dense = np.full(len(categories) + 1, -1, dtype=np.int64)  # the last slot: code -1
        dense[used] = np.arange(len(used))
        rows.append(dense[row_codes])
        texts.append(func(pd.Series(categories[used].astype("str"), dtype="str")))
    ids, names = pd.factorize(pd.concat([pd.Series([], dtype="str"), *texts], ignore_index=True))
    out, at = [], 0
    for row_ids, text in zip(rows, texts, strict=True):
        out.append(np.append(ids[at : at + len(text)], -1)[row_ids])
        at += len(text)
    return out, pd.Index(names, dtype="str")


def _categorical(ids: np.ndarray, names: pd.Index) -> pd.Categorical[Any]:
    """``names[ids]`` (-1: NA) as ``astype("category")`` gives it: the values used, sorted."""
    if not (ids >= 0).any():  # as from all-NA
        return pd.Categorical.from_codes(ids, categories=pd.Index([], dtype=object))
    return keys.categorical(names, ids)


def _category_of(column: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """A categorical column's values at ``rows`` as ``astype("str").astype("category")``."""
    return _categorical(codes(column)[rows], column.cat.categories.astype("str"))


def _as_sent(text: pd.Series) -> pd.Series:
    return text


def _tag(text: pd.Series) -> pd.Series:
    """A From tag as a key: an empty one is no tag."""
    return text.where(text != "")


def _dialog_keys(
    messages: pd.DataFrame,
    rows: np.ndarray,
    calls: pd.DataFrame,
    call_rows: np.ndarray,
    transactions: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Call-ID x From tag of the messages at ``rows`` (a mask) and of the calls at
    ``call_rows`` (positions) as :func:`keys.dialog_key` keys: equal where both texts are
    (an empty tag is none); -1 without a Call-ID, whatever the tag.

    The calls' codes are the keys when each message's texts are those of its transaction
    (``transactions``, whose categories the calls share, :func:`_through_transactions`);
    else the texts of both sides are numbered afresh (:func:`_ids`)."""
    call_ids, tags = calls["call_id"].iloc[call_rows], calls["from_tag"].iloc[call_rows]
    through = _through_transactions(messages, rows, calls, transactions)
    if through is None:
        (message_call, call), _ = _ids(_as_sent, messages["call_id"][rows], call_ids)
        (message_tag, tag), names = _ids(_tag, messages["from_tag"][rows], tags)
    else:
        (message_call, message_tag), names = through
        call, tag = codes(call_ids), codes(tags)
        empty = _empty_codes(names)  # an empty tag is none
        message_tag[np.isin(message_tag, empty)] = -1
        tag[np.isin(tag, empty)] = -1
    return keys.dialog_key(message_call, message_tag, names), keys.dialog_key(call, tag, names)


def _through_transactions(
    messages: pd.DataFrame,
    rows: np.ndarray,
    calls: pd.DataFrame,
    transactions: pd.DataFrame | None,
) -> tuple[tuple[np.ndarray, np.ndarray], pd.Index] | None:
    """Call-ID and From tag codes of the messages at ``rows`` in the categories of the calls,
    read through each message's transaction (row ``transaction`` of ``transactions``, which
    shares the calls' categories), and the tags coded: no text is hashed. None, and every
    row goes back to hashing the texts, when any row's text is not its transaction's (a From
    tag that differs from its INVITE's; each category is checked once, side by side). A
    message without a transaction is refused too, though the pipeline gives each message one
    (stray responses their own): a cheap guard for other callers."""
    if transactions is None or "transaction" not in messages.columns:
        return None
    number = transactions["transaction"].to_numpy()
    if not np.array_equal(number, np.arange(len(transactions))):
        return None
    at = messages["transaction"].to_numpy(dtype=np.int64)[rows]
    if len(at) and (at.min() < 0 or at.max() >= len(transactions)):
        return None
    out = []
    for name in ("call_id", "from_tag"):
        held = transactions[name].cat.categories
        if calls[name].cat.categories is not held:
            return None
        column = messages[name]
        own = column.cat.codes.to_numpy()[rows].astype(np.int64)
        mapping = _category_mapping(own, codes(transactions[name])[at])
        if mapping is None or not _same_texts(column.cat.categories, held, mapping):
            return None
        out.append(mapping[own])
    call, tag = out
    return (call, tag), held


def _category_mapping(own: np.ndarray, other: np.ndarray) -> np.ndarray | None:
    """For row codes ``own`` and ``other`` of one value each (-1: NA), the ``other`` code of
    each ``own`` code (the last slot: -1 for NA; -2: a code no row holds); None when rows
    of one ``own`` code hold several ``other`` codes, or NA on one side only."""
    mapping = np.full(int(own.max(initial=-1)) + 2, -2, dtype=np.int64)
    mapping[own] = other
    if not np.array_equal(mapping[own], other) or mapping[-1] not in (-1, -2):
        return None
    mapping[-1] = -1
    return mapping


def _same_texts(own: pd.Index, other: pd.Index, mapping: np.ndarray) -> bool:
    """Whether each category of ``own`` that ``mapping`` maps is the text of the ``other``
    category it maps to (compared side by side, not hashed)."""
    used = np.flatnonzero(mapping[:-1] != -2)
    target = mapping[used]
    if (target < 0).any():
        return False
    return bool(np.all(np.asarray(own.take(used).array == other.take(target).array, dtype=bool)))


def _empty_codes(tags: pd.Index) -> np.ndarray:
    """The code of an empty tag among ``tags`` (none, or one: categories are distinct)."""
    return np.flatnonzero(np.asarray(tags.array == "", dtype=bool))


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps by position as UTC, also when a merge left them all missing (object dtype)."""
    out = values.reset_index(drop=True)
    if str(out.dtype) != schema.UTC_TS:
        out = pd.to_datetime(out, utc=True).astype(schema.UTC_TS)
    return out


def _gap_s(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """``later - earlier`` in seconds (NaN where either is missing), by position, as pandas'
    ``total_seconds`` gives them (bit for bit: it splits whole seconds from the rest)."""
    return (_utc(later) - _utc(earlier)).dt.total_seconds().to_numpy(dtype="float64")


def _failures(
    attempts: pd.DataFrame,
    calls: pd.DataFrame,
    messages: pd.DataFrame,
    transactions: pd.DataFrame | None,
) -> pd.DataFrame:
    """Failed attempts (rows of ``attempts``, ``row`` their position in ``calls``) with the
    failure response's Retry-After."""
    status = attempts["final_status"]
    ended = attempts["answer_ts"].isna() & attempts["final_ts"].notna()
    failed = attempts[(status.ge(300).fillna(False) & ended).to_numpy(dtype=bool)]
    m = messages
    auth = (m["is_request"] & (m["method"] == "INVITE") & m["has_auth"]).to_numpy(dtype=bool)
    answers = response_rows(m, unique=True, client=True, lowest=300)[0]
    answers &= (m["cseq_method"] == "INVITE").to_numpy(dtype=bool)
    read = auth | answers
    keys_read, failed_keys = _dialog_keys(m, read, calls, failed["row"].to_numpy(), transactions)
    dialog = np.full(len(m), -1, dtype=np.int64)
    dialog[read] = keys_read
    failed = _drop_answered_challenges(failed.assign(dialog=failed_keys), m, auth, dialog)
    return _attach_retry_after(failed, m, answers, dialog)


def _drop_answered_challenges(
    failed: pd.DataFrame, messages: pd.DataFrame, auth: np.ndarray, dialog: np.ndarray
) -> pd.DataFrame:
    """RFC 3261 §22.2: a 401/407 answered by an authenticated INVITE (``auth``: the
    messages that are one) is part of the call; ``dialog``: the messages' dialog keys."""
    challenged = failed["final_status"].isin([401, 407]).to_numpy(dtype=bool)
    if not challenged.any() or not auth.any():
        return failed
    last_auth = pd.Series(messages["ts"].array[auth]).groupby(dialog[auth]).max()
    at = last_auth.index.get_indexer(pd.Index(failed["dialog"].to_numpy()))
    answered = challenged & (at >= 0)
    last = last_auth.array[at[answered]]
    answered[answered] = np.asarray(last > failed["final_ts"].array[answered], dtype=bool)
    return failed[~answered]


def _attach_retry_after(
    failed: pd.DataFrame, messages: pd.DataFrame, rows: np.ndarray, dialog: np.ndarray
) -> pd.DataFrame:
    """Retry-After (value and text) of the response copy nearest to each failure's final_ts,
    among the failure responses at ``rows`` (a mask of ``messages``) of the same dialog and
    code: the last at or before it, unless the first after it is nearer (as
    ``pandas.merge_asof(direction="nearest")`` picks). A response without a time is at no
    distance from anything: it is left out (NaT as the least int64 would win every match)."""
    message_ts = keys.ns(messages["ts"])
    rows = rows & (message_ts != keys.NAT)
    if not rows.any():
        nothing = np.full(len(failed), -1, dtype=np.int64)
        return (
            failed.assign(
                retry_after=messages["retry_after"].array.take(nothing, allow_fill=True),
                retry_after_raw=nothing,
            )
            .sort_values("call", kind="stable")
            .reset_index(drop=True)
        )
    status = messages["status"].array[rows].to_numpy(dtype=np.int64, na_value=0)
    response_key = dialog[rows] * 1000 + status
    failure_key = failed["dialog"].to_numpy() * 1000 + failed["final_status"].to_numpy(
        dtype=np.int64
    )
    response_ts, failure_ts = message_ts[rows], keys.ns(failed["final_ts"])
    # keys numbered over both sides, so that one int64 sorts by key, then time
    key = pd.factorize(np.concatenate([response_key, failure_key]))[0].astype(np.int64)
    when, width = _ordered(np.concatenate([response_ts, failure_ts]), int(key.max()) + 1)
    packed = key * width + when
    order = np.argsort(packed[: len(status)], kind="stable")
    responses, wanted = packed[: len(status)][order], packed[len(status) :]
    before = np.searchsorted(responses, wanted, side="right") - 1
    after = np.searchsorted(responses, wanted, side="left")
    group = key[: len(status)][order]
    wanted_key = key[len(status) :]
    has_before = (before >= 0) & (group[np.maximum(before, 0)] == wanted_key)
    has_after = (after < len(order)) & (group[np.minimum(after, len(order) - 1)] == wanted_key)
    ts = response_ts[order]
    nearer_after = has_after & (
        ~has_before
        | (
            ts[np.minimum(after, len(order) - 1)] - failure_ts
            < failure_ts - ts[np.maximum(before, 0)]
        )
    )
    pick = np.where(nearer_after, after, np.where(has_before, before, -1))
    at = np.flatnonzero(rows)[np.where(pick >= 0, order[np.maximum(pick, 0)], 0)]
    found = pick >= 0
    raw = messages["retry_after_raw"].cat.codes.to_numpy()[at].astype(np.int64)
    out = failed.assign(
        retry_after=messages["retry_after"].array.take(np.where(found, at, -1), allow_fill=True),
        retry_after_raw=np.where(found, raw, -1),
    )
    return out.sort_values("call", kind="stable").reset_index(drop=True)


def _next_attempt(failed: pd.DataFrame, attempts: pd.DataFrame, by: str) -> pd.DataFrame:
    """For each failure, the first attempt with the same ``by`` key (an int, -1: none)
    starting at/after final_ts: its ``row`` in ``attempts`` (-1: none) and start.

    The attempts are sorted by key, then start (in their order on a tie); each failure's
    key and time, as one int64 (:func:`_ordered` times over both sides), is searched there.
    """
    right_key = attempts[by].to_numpy()
    right_ts = keys.ns(attempts["start_ts"])
    usable = np.flatnonzero(right_key >= 0)
    order = usable[np.lexsort((right_ts[usable], right_key[usable]))]
    left_key = failed[by].to_numpy()
    # times over both sides, a failure before an attempt that starts at its time
    both = np.concatenate([keys.ns(failed["final_ts"]), right_ts[order]])
    bound = max(int(right_key.max(initial=-1)), int(left_key.max(initial=-1))) + 1
    when, width = _ordered(both, 2 * bound)
    when *= 2
    when[len(left_key) :] += 1
    right = right_key[order] * (2 * width) + when[len(left_key) :]
    at = np.searchsorted(right, left_key * (2 * width) + when[: len(left_key)])
    found = (left_key >= 0) & (at < len(order))
    found[found] = right_key[order[at[found]]] == left_key[found]
    pick = np.where(found, order[np.minimum(at, len(order) - 1)] if len(order) else -1, -1)
    return pd.DataFrame(
        {
            "next_row": np.where(found, attempts["row"].to_numpy()[np.maximum(pick, 0)], -1),
            "next_ts": attempts["start_ts"].array.take(pick, allow_fill=True),
        },
        index=pd.Index(failed["call"], name="call"),
    )


def _ordered(times: np.ndarray, key_count: int) -> tuple[np.ndarray, int]:
    """``times`` (int64 ns; NaT, the least int64, first) as integers 0..bound-1 that order as
    they do, equal where they are, and ``bound``, so that ``key * bound + time`` fits in an
    int64 for ``key_count`` keys (from 0): the offsets from the earliest time where they fit
    (no sort; keys x span below 2**62 ns: a million keys over 77 minutes, about 50,000 over a
    day), else dense ranks (a sort)."""
    if not len(times):
        return np.zeros(0, dtype=np.int64), 1
    low = int(times.min())
    bound = int(times.max()) - low + 1
    if max(key_count, 1) * bound < 1 << 62:
        return times - low, bound
    distinct, rank = np.unique(times, return_inverse=True)
    return rank.reshape(-1).astype(np.int64), len(distinct)


def retry_table(
    calls: pd.DataFrame,
    messages: pd.DataFrame,
    uris: UriKeys | None = None,
    transactions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per failed INVITE attempt with its retry (if any), conforming to ``schema.RETRIES``.

    ``calls`` conforms to ``schema.CALLS``; ``messages`` is the analysed messages table
    (``schema.MESSAGES`` + ``retransmission``). See the module docstring for the rules.
    Callers, targets, client hosts and servers are integer ids (text made once per
    category), which the attempts are linked on; ``uris`` holds the URI keys already made.
    ``transactions`` (the messages' transactions, by row) lets messages be matched to calls
    on the calls' codes (:func:`_dialog_keys`).
    """
    if calls.empty:
        return schema.empty(schema.RETRIES)
    uris = UriKeys() if uris is None else uris
    caller, callee = uris.ids(calls["caller"]), uris.ids(calls["callee"])
    request_uri = uris.ids(calls["request_uri"])
    target = np.where(request_uri >= 0, request_uri, callee)
    uri_names = uris.names
    (client,), _ = _ids(_host_of, calls["src"])
    attempts = pd.DataFrame(
        {
            "row": np.arange(len(calls)),
            "call": calls["call"].to_numpy(),
            "start_ts": calls["start_ts"].array,
            "final_ts": calls["final_ts"].array,
            "answer_ts": calls["answer_ts"].array,
            "final_status": calls["final_status"].array,
            "caller_target": keys.combine(caller, target),
            "client_server": keys.combine(client, codes(calls["dst"])),
        }
    )
    failed = _failures(attempts, calls, messages, transactions)
    if failed.empty:
        return schema.empty(schema.RETRIES)

    retry = _next_attempt(failed, attempts, "caller_target")
    is_503 = (failed["final_status"] == 503).fillna(False).to_numpy(dtype=bool)
    server = _next_attempt(failed[is_503], attempts, "client_server").reindex(failed["call"])
    server["next_row"] = server["next_row"].fillna(-1).astype(np.int64)

    row = failed["row"].to_numpy()
    n = pd.Series(failed["retry_after"].array, dtype="Int64")
    gap = _gap_s(retry["next_ts"], failed["final_ts"])
    server_gap = _gap_s(server["next_ts"], failed["final_ts"])
    retry_row, server_row = retry["next_row"].to_numpy(), server["next_row"].to_numpy()
    retried = retry_row >= 0
    server_retried = pd.array(server_row >= 0, dtype="boolean")
    server_retried[~is_503] = pd.NA
    call_numbers = calls["call"].to_numpy()
    raw = messages["retry_after_raw"]

    out = pd.DataFrame(
        {
            "call": failed["call"].to_numpy(),
            "call_id": _category_of(calls["call_id"], row),
            "caller": _categorical(caller[row], uri_names),
            "callee": _categorical(target[row], uri_names),
            "src": _category_of(calls["src"], row),
            "dst": _category_of(calls["dst"], row),
            "status": pd.array(failed["final_status"].array, dtype="Int16"),
            "final_ts": _utc(failed["final_ts"]),
            "retry_after": n.array,
            "retry_after_raw": _categorical(
                failed["retry_after_raw"].to_numpy(), raw.cat.categories.astype("str")
            ),
            "retried": retried,
            "retry_call": _call_numbers(call_numbers, retry_row),
            "retry_call_id": _categorical(
                np.where(retried, codes(calls["call_id"])[retry_row], -1),
                calls["call_id"].cat.categories.astype("str"),
            ),
            "retry_ts": _utc(retry["next_ts"]),
            "gap_s": gap,
            "honoured": _verdict(gap, n),
            "server_retried": server_retried,
            "server_retry_call": _call_numbers(call_numbers, server_row),
            "server_retry_ts": _utc(server["next_ts"]),
            "server_gap_s": server_gap,
            "server_honoured": _verdict(server_gap, n),
        }
    )
    return schema.conform(out.sort_values("final_ts", kind="stable"), schema.RETRIES)


def _call_numbers(numbers: np.ndarray, rows: np.ndarray) -> pd.arrays.IntegerArray:
    """``numbers`` at ``rows`` (-1: NA) as Int64."""
    out = pd.array(numbers[np.maximum(rows, 0)], dtype="Int64")
    out[rows < 0] = pd.NA
    return out


def within_window(table: pd.DataFrame, calls: int, end: pd.Timestamp) -> pd.DataFrame:
    """Rows of a retry table built on a window and what followed it, for the window alone.

    Keeps the failures of the window's ``calls`` (the first calls) whose final came before
    ``end``. A retry after the window keeps its time and gap but no call number
    (``retry_call``/``server_retry_call`` NA): that call is not in the window's calls table.
    """
    out = table[(table["call"] < calls) & (table["final_ts"] < end)].copy()
    for column in ("retry_call", "server_retry_call"):
        out[column] = out[column].where(out[column] < calls)
    return schema.conform(out, schema.RETRIES)


def _verdict(gap: np.ndarray, retry_after: pd.Series) -> pd.arrays.BooleanArray:
    """gap >= Retry-After; NA without a gap or without a Retry-After value."""
    limit = retry_after.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(gap) | np.isnan(limit)
    honoured = np.zeros(len(gap), dtype=bool)
    honoured[~missing] = gap[~missing] >= limit[~missing]
    return pd.arrays.BooleanArray(honoured, missing)


def _unique_responses(
    messages: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Responses as their clients got them: no retransmission, no relayed copy on another leg,
    a status. Their code, Retry-After value (0 where none), whether it had one and whether
    the header was there (usable or not): what the summaries read."""
    keep, status = response_rows(messages, unique=True, client=True)
    rows = np.flatnonzero(keep)  # read before any column is converted
    value = messages["retry_after"].array.take(rows)
    return (
        status,
        value.to_numpy(dtype=np.int64, na_value=0),
        ~value.isna(),
        ~messages["retry_after_raw"].array.take(rows).isna(),
    )


def _runs_of(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts rows by ``columns`` (the first leads) and where each run of equal
    rows starts in it."""
    order = np.lexsort(columns[::-1])
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for column in columns:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    return order, np.flatnonzero(new)


def retry_after_values(messages: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Retry-After delta-seconds per code over unique responses: ``{"503": {"10": 59}}``.

    Malformed values (header present, no delta-seconds) are not guessed; see
    :func:`retry_after_summary` for their count.
    """
    status, value, usable, _ = _unique_responses(messages)
    return _values_per_code(status[usable], value[usable])


def _values_per_code(code: np.ndarray, value: np.ndarray) -> dict[str, dict[str, int]]:
    """:func:`retry_after_values` of the responses with these codes and values."""
    order, starts = _runs_of(code, value)
    counts = np.diff(np.append(starts, len(order)))
    out: dict[str, dict[str, int]] = {}
    firsts = order[starts]
    for c, v, n in zip(code[firsts].tolist(), value[firsts].tolist(), counts.tolist(), strict=True):
        out.setdefault(f"{c:03d}", {})[str(v)] = n
    return out


def _values_text(values: dict[str, int]) -> str:
    """``{"60": 88, "10": 2}`` -> ``'60x88|10x2'`` (most frequent first, then by value)."""
    ranked = most_first((int(value), count) for value, count in values.items())
    return "|".join(f"{value}x{count}" for value, count in ranked)


def _verdicts(retries: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Where a verdict column (boolean, NA: none) says yes, and where it says no."""
    verdict = retries[column]
    return verdict.fillna(False).to_numpy(dtype=bool), (~verdict).fillna(False).to_numpy(dtype=bool)


def retry_after_summary(messages: pd.DataFrame, retries: pd.DataFrame) -> pd.DataFrame:
    """Per code (480, 486, 503 first, then every other code): Retry-After and retry figures.

    Rows: every code whose unique responses carried Retry-After, and every code of a failed
    attempt. Columns: ``schema.RETRY_AFTER``. Counted per code with one bincount a column.
    """
    status, value, usable, header = _unique_responses(messages)
    failure = retries["status"].to_numpy(dtype=np.int64)
    listed = sorted(
        set(np.unique(status[header]).tolist()) | set(np.unique(failure).tolist()),
        key=lambda c: (c not in RETRY_CODES, c),
    )
    if not listed:
        return schema.empty(schema.RETRY_AFTER)
    row = pd.Index(listed)
    response_row, failure_row = _rows_of(status, listed), _rows_of(failure, listed)

    def per_code(at: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        picked = at if mask is None else at[mask]
        return np.bincount(picked[picked >= 0], minlength=len(listed)).astype(np.int64)

    retried = retries["retried"].to_numpy(dtype=bool)
    honoured, too_early = _verdicts(retries, "honoured")
    without_value = retries["retry_after"].isna().to_numpy(dtype=bool)
    values = _values_per_code(status[usable], value[usable])
    table = pd.DataFrame(
        {
            "code": pd.array([f"{c:03d}" for c in listed], dtype="str"),
            "responses": per_code(response_row),
            "with_retry_after": per_code(response_row, header),
            "malformed": per_code(response_row, header & ~usable),
            "values": pd.array(
                [_values_text(values.get(f"{c:03d}", {})) for c in listed], dtype="str"
            ),
            "failures": per_code(failure_row),
            "retried": per_code(failure_row, retried),
            "honoured": per_code(failure_row, honoured),
            "too_early": per_code(failure_row, too_early),
            "without_retry_after_retried": per_code(failure_row, retried & without_value),
            "not_retried": per_code(failure_row, ~retried),
        }
    )
    # 503 only (RFC 3261 §21.5.4: the server's own retry figures); NA on every other code
    is_503 = failure == 503
    server_retried = retries["server_retried"].fillna(False).to_numpy(dtype=bool)
    server_honoured, server_too_early = _verdicts(retries, "server_honoured")
    for name, mask in (
        ("server_retried", server_retried),
        ("server_honoured", server_honoured),
        ("server_too_early", server_too_early),
    ):
        column = pd.array(per_code(failure_row, is_503 & mask), dtype="Int64")
        column[np.asarray(row != 503)] = pd.NA
        table[name] = column
    return schema.conform(table, schema.RETRY_AFTER)


def _rows_of(code: np.ndarray, listed: list[int]) -> np.ndarray:
    """Each code's position in ``listed`` (codes, at least one; -1: not there), by a table
    indexed by code from the lowest listed rather than a hash of each row."""
    low = min(listed)
    at = np.full(max(listed) - low + 1, -1, dtype=np.int64)
    at[np.asarray(listed) - low] = np.arange(len(listed))
    offset = code - low
    inside = (offset >= 0) & (offset < len(at))
    return np.where(inside, at[np.where(inside, offset, 0)], -1)


def early_retriers(retries: pd.DataFrame) -> pd.DataFrame:
    """Callers that retried before Retry-After, most too-early retries first.

    Columns: caller, retries_too_early, retries (all their retries), worst_gap_s (the
    shortest gap of a too-early retry). Counted on the callers' category codes.
    """
    column = retries["caller"]
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    caller = codes(column)
    done = retries["retried"].to_numpy(dtype=bool) & (caller >= 0)
    early = done & _verdicts(retries, "honoured")[1]
    n = len(column.cat.categories)
    too_early = np.bincount(caller[early], minlength=n)
    worst = np.full(n, np.inf)
    np.fmin.at(worst, caller[early], retries["gap_s"].to_numpy(dtype="float64")[early])
    shown = np.flatnonzero(too_early > 0)
    names = pd.Index(column.cat.categories.take(shown).astype("str"), dtype="str")
    worst = np.where(np.isinf(worst[shown]), np.nan, worst[shown])  # no gap known: NaN
    # most too-early retries first, then the shortest gap (NaN last), then by name
    order = np.lexsort((keys.text_ranks(names), worst, -too_early[shown]))
    return pd.DataFrame(
        {
            "caller": pd.array(names.take(order), dtype="str"),
            "retries_too_early": too_early[shown][order].astype(np.int64),
            "retries": np.bincount(caller[done], minlength=n)[shown][order].astype(np.int64),
            "worst_gap_s": worst[order].astype(np.float64),
        }
    )


def by_retry_after(retries: pd.DataFrame) -> pd.DataFrame:
    """Retry verdicts per code and Retry-After value (failures with a usable value only).

    Columns: code ('503'), retry_after (s), failures, honoured, too_early, not_retried;
    by code, then value. Shows whether callers respect a long value as well as a short one.
    """
    known = retries["retry_after"].notna().to_numpy(dtype=bool)
    if not known.any():
        return schema.empty(schema.RETRIES_BY_RETRY_AFTER)
    code = retries["status"].to_numpy(dtype=np.int64, na_value=0)[known]
    value = retries["retry_after"].to_numpy(dtype=np.int64, na_value=0)[known]
    honoured, too_early = (verdict[known] for verdict in _verdicts(retries, "honoured"))
    not_retried = ~retries["retried"].to_numpy(dtype=bool)[known]
    order, starts = _runs_of(code, value)

    def per_run(flag: np.ndarray) -> np.ndarray:
        return np.add.reduceat(flag[order].astype(np.int64), starts)

    return pd.DataFrame(
        {
            "code": pd.array([f"{c:03d}" for c in code[order][starts].tolist()], dtype="str"),
            "retry_after": value[order][starts],
            "failures": np.diff(np.append(starts, len(order))).astype(np.int64),
            "honoured": per_run(honoured),
            "too_early": per_run(too_early),
            "not_retried": per_run(not_retried),
        }
    )


#: Verdicts that :func:`gap_summary` describes, in its row order.
GAP_VERDICTS = ("honoured", "too_early", "without_retry_after")


def gap_summary(retries: pd.DataFrame) -> pd.DataFrame:
    """Gaps to the retry per verdict: how long callers waited, and in multiples of Retry-After.

    One row per :data:`GAP_VERDICTS` entry: verdict, retries, min_s, median_s, mean_s, p90_s,
    p95_s, max_s (nearest-rank percentiles), min_ratio, median_ratio, max_ratio (gap / N;
    NaN without Retry-After).
    """
    done = retries["retried"].to_numpy(dtype=bool)
    honoured, too_early = (verdict[done] for verdict in _verdicts(retries, "honoured"))
    gap = retries["gap_s"].to_numpy(dtype="float64", na_value=np.nan)[done]
    with np.errstate(divide="ignore", invalid="ignore"):  # Retry-After: 0 gives inf or NaN
        ratio = gap / retries["retry_after"].to_numpy(dtype="float64", na_value=np.nan)[done]
    rows = []
    for name, rows_of in zip(
        GAP_VERDICTS, (honoured, too_early & ~honoured, ~honoured & ~too_early), strict=True
    ):
        gaps, ratios = gap[rows_of], ratio[rows_of]
        rows.append(
            {
                "verdict": name,
                "retries": len(gaps),
                **_spread(gaps, "s", ("min", "median", "mean", "p90", "p95", "max")),
                **_spread(ratios, "ratio", ("min", "median", "max")),
            }
        )
    return pd.DataFrame(rows).astype({"verdict": "str", "retries": "int64"})


def _spread(values: np.ndarray, unit: str, stats: tuple[str, ...]) -> dict[str, float]:
    """``stats`` of ``values`` as pandas gives them (NaN skipped; NaN when none is left):
    the mean sums with NaN as 0, the percentiles take the nearest rank."""
    known = values[~np.isnan(values)]
    if not len(known):
        return {f"{stat}_{unit}": float("nan") for stat in stats}
    figures = {
        "min": known.min(),
        "median": np.median(known),
        "mean": np.where(np.isnan(values), 0.0, values).sum() / len(known),
        "p90": np.percentile(known, 0.9 * 100.0, method="nearest"),
        "p95": np.percentile(known, 0.95 * 100.0, method="nearest"),
        "max": known.max(),
    }
    return {f"{stat}_{unit}": float(figures[stat]) for stat in stats}


def storms(retries: pd.DataFrame, *, window: str = "10s", threshold: int = 10) -> pd.DataFrame:
    """Retry storms: at least ``threshold`` pressing retries to one server within ``window``.

    The default (10 in 10 s: one pressing retry per second, sustained) flags a server that
    is being hammered, not the odd impatient caller (:func:`early_retriers` lists those).

    A *pressing* retry came too early (gap < Retry-After) or followed a 503 that gave no
    Retry-After (the server was overloaded and asked for nothing, RFC 3261 §21.5.4).
    Every window of ``window`` length that starts at a pressing retry and holds at least
    ``threshold`` of them marks its retries; overlapping marked windows merge into one storm.
    Columns: ``schema.STORMS``.
    """
    early = (~retries["honoured"]).fillna(False).astype(bool)
    after_bare_503 = (retries["status"] == 503).fillna(False) & retries["retry_after"].isna()
    pressing = retries[retries["retried"] & (early | after_bare_503)]
    if not _storms_possible(pressing["dst"], threshold):
        return schema.empty(schema.STORMS)
    events = pd.DataFrame(
        {
            "target": pressing["dst"].astype("str"),
            "ts": pressing["retry_ts"],
            "early": early[pressing.index],
            "caller": pressing["caller"].astype("str"),
        }
    ).sort_values(["target", "ts"], kind="stable")
    span = pd.Timedelta(window).value
    rows = []
    for target, group in events.groupby("target", sort=True):
        rows.extend(_storms_of(str(target), group, span, threshold))
    table = schema.conform(pd.DataFrame(rows, columns=list(schema.STORMS)), schema.STORMS)
    return table.sort_values(["start_ts", "target"], kind="stable").reset_index(drop=True)


def _storms_possible(targets: pd.Series, threshold: int) -> bool:
    """Whether one target got at least ``threshold`` of the pressing retries (their
    ``targets``, categorical): without, no window can hold a storm."""
    if not isinstance(targets.dtype, pd.CategoricalDtype):
        targets = targets.astype("category")
    at = codes(targets)
    return bool(np.bincount(at[at >= 0], minlength=1).max() >= threshold)


def _storms_of(target: str, group: pd.DataFrame, span: int, threshold: int) -> list[dict[str, Any]]:
    """Storms towards one target: windows marked with searchsorted, then merged."""
    t = keys.ns(group["ts"])
    first = np.arange(len(t))
    last = np.searchsorted(t, t + span, side="right") - 1
    hot = (last - first + 1) >= threshold
    if not hot.any():
        return []
    starts, ends = first[hot], last[hot]
    reach = np.maximum.accumulate(ends)
    new = np.r_[True, starts[1:] > reach[:-1]]
    out = []
    for begin, end in zip(
        starts[new], np.r_[reach[np.flatnonzero(new)[1:] - 1], reach[-1]], strict=True
    ):
        part = group.iloc[begin : end + 1]
        out.append(
            {
                "start_ts": part["ts"].iloc[0],
                "end_ts": part["ts"].iloc[-1],
                "target": target,
                "retries": len(part),
                "early_retries": int(part["early"].sum()),
                "callers": part["caller"].nunique(),
            }
        )
    return out
