"""Transactions stage: messages -> transaction id and retransmission flag per row, TRANSACTIONS.

RFC 3261 §17.1.3 / §17.2.3 match a message to its transaction by the top Via branch and the
CSeq method, where an ACK to a non-2xx final shares the INVITE's branch and so its
transaction, while CANCEL (same branch, own CSeq method) and the ACK to a 2xx (new branch)
are transactions of their own. The Call-ID and CSeq number are part of the key as well: they
never differ within a correct transaction and they keep apart user agents that reuse a branch.
Branches without the RFC 3261 magic cookie ``z9hG4bK`` are matched the RFC 2543 way
(§17.2.3): Call-ID, CSeq, From tag, top Via sent-by and method; the messages table has no
sent-by, so the client's IP address (source of requests, destination of responses) stands
for it. A proxy's two legs carry different branches and so never share a transaction.

A transaction lives 64·T1 = 32 s at most without a message (RFC 3261 §17.1.1.2 Timer B,
§17.1.2.2 Timer F, §17.2.1 Timer H, §17.2.2 Timer J): a request that comes later than that
after the last message of its key starts a new transaction (a replayed or looped capture, a
reused branch), and a copy that comes later than that after the previous identical copy is
no retransmission.

All work is vectorised on category codes: rows must be in capture-time order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.keys import codes, recode

MAGIC_COOKIE = "z9hG4bK"

#: RFC 3261 §17.1.1.2: 64·T1 with T1 = 500 ms, the longest a transaction waits in silence.
LIFETIME = pd.Timedelta(seconds=32)


def endpoints(ip: pd.Series, port: pd.Series) -> pd.Categorical:
    """``ip:port`` (``[v6]:port`` for IPv6) as a categorical, NA where the address or the
    port is missing (no endpoint is made up); the categories are the endpoints the rows hold.

    Text is built once per distinct address and port, not once per row.
    """
    ip = ip.astype("category")
    ip_code = ip.cat.codes.to_numpy()
    port_number = port.to_numpy(dtype=np.int64, na_value=-1)
    valid = (ip_code >= 0) & (port_number >= 0)
    every = bool(valid.all())
    if not every:
        ip_code, port_number = ip_code[valid], port_number[valid]
    # address x port as one int64 that sorts as the pair, spanning only the ports held (few
    # keys: numbered by a table, not a hash); made in place: this runs on every transaction
    # and on the calls' SDP, at the per-Call-ID step's peak memory
    low = int(port_number.min()) if len(port_number) else 0
    width = int(port_number.max(initial=0)) - low + 1
    key = ip_code.astype(np.int64)
    key *= width
    key += port_number
    key -= low
    del port_number
    distinct, inverse = keys.sorted_ids(key)
    del key
    # a plain list: indexing a pandas string array one item at a time is slow
    host = [_host(address) for address in ip.cat.categories.astype("str").tolist()]
    labels = [_label(host[value // width], low + value % width) for value in distinct.tolist()]
    if every:
        out = inverse
    else:
        out = np.full(len(valid), -1, dtype=np.int64)
        out[valid] = inverse
    # distinct (address, port) pairs name distinct endpoints: no check of that by hashing
    dtype: Any = schema.distinct_categories(pd.Index(labels, dtype="str"))  # stubs: int codes
    return pd.Categorical.from_codes(out, dtype=dtype, validate=False)


def endpoint_label(address: str | None, port: int | None) -> str:
    """One endpoint as :func:`endpoints` names it, ``ip:port`` (``[v6]:port`` for IPv6), with
    ``?`` for a missing address or port: a ladder names each host it draws, also one that
    lacks a part, and keeps hosts that differ in the part they have apart."""
    return _label(_host(address), "?" if port is None else port)


def _label(host: str, port: int | str) -> str:
    """An endpoint's name from its host's (:func:`_host`) and its port: ``host:port``."""
    return f"{host}:{port}"


def _host(address: str | None) -> str:
    """An address as :func:`endpoint_label` names it: IPv6 in brackets, ``?`` for none."""
    return "?" if address is None else f"[{address}]" if ":" in address else address


def _client_ip(messages: pd.DataFrame) -> np.ndarray:
    """Codes of the client address: the request's source, the response's destination."""
    cats = messages["src"].cat.categories.union(messages["dst"].cat.categories)
    src = recode(messages["src"], cats)
    dst = recode(messages["dst"], cats)
    return np.where(messages["is_request"].to_numpy(), src, dst)


def _key_method(messages: pd.DataFrame) -> np.ndarray:
    """CSeq method codes with ACK mapped onto INVITE (RFC 3261 §17.2.3)."""
    method = codes(messages["cseq_method"])
    cats = list(messages["cseq_method"].cat.categories)
    if "ACK" in cats:
        invite = cats.index("INVITE") if "INVITE" in cats else -2
        method = np.where(method == cats.index("ACK"), invite, method)
    return method


def _cookie(messages: pd.DataFrame) -> np.ndarray:
    """True where the top Via branch carries the RFC 3261 magic cookie."""
    per_category = messages["branch"].cat.categories.str.startswith(MAGIC_COOKIE)
    branch = codes(messages["branch"])
    lookup = np.append(np.asarray(per_category, dtype=bool), False)  # index -1 -> False
    return lookup[branch]


def assign(messages: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Transaction id and retransmission flag for every row (rows in time order).

    Ids number transactions in order of their first message. A retransmission repeats an
    earlier message of the same transaction in the same direction: the same method for a
    request, the same status and To tag for a response (two 200s with different To tags are
    forked answers, RFC 3261 §13.2.2.4, not copies).
    """
    if messages.empty:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    legacy = ~_cookie(messages)
    # RFC 2543 fallback: From tag and the client's address join the key (where no branch
    # carries the cookie, they would join it as a constant: left out, the key is the same)
    fallback = (
        (
            np.where(legacy, codes(messages["from_tag"]), -1),
            np.where(legacy, _client_ip(messages), -1),
        )
        if legacy.any()
        else ()
    )
    key_id = keys.led_group_ids(
        codes(messages["branch"]),
        _key_method(messages),
        codes(messages["call_id"]),
        messages["cseq"].to_numpy(dtype=np.int64, na_value=-1),
        *fallback,
    )
    del legacy, fallback
    ts = keys.ns(messages["ts"])
    is_request = messages["is_request"].to_numpy()
    # A request after LIFETIME of silence on its key opens a new transaction on that key:
    # only keys heard over more than LIFETIME can hold such a silence.
    last = np.zeros(int(key_id.max()) + 1, dtype=np.int64)
    np.maximum.at(last, key_id, ts)
    long_lived = (last - ts[keys.first_appearances(key_id)] > LIFETIME.value)[key_id]
    late = is_request & (_gap_ns(key_id, ts, long_lived) > LIFETIME.value)
    if late.any():
        instance = pd.Series(late).groupby(key_id).cumsum().to_numpy(dtype=np.int64)
        transaction = keys.group_ids(key_id, instance)
    else:
        transaction = key_id
    # A copy repeats its transaction, kind (a request's method, below -1, or a response's
    # status, zero or more; NA: 0), To tag and address pair. Rows whose transaction, kind and
    # To tag no other row holds are first copies: only the others (a few) have their address
    # pair numbered (few distinct pairs, so that the key packs into one int64) and are sorted.
    kind = keys.pick(
        is_request,
        -2 - codes(messages["method"]),
        messages["status"].to_numpy(dtype=np.int64, na_value=0),
    )
    lead = keys.packed(transaction, kind, codes(messages["to_tag"]))
    del kind
    rows = np.flatnonzero(_maybe_repeated(lead))
    copy_id = keys.packed(
        lead[rows],
        keys.group_ids(
            keys.codes_at(messages["src"], rows),
            messages["sport"].to_numpy()[rows],
            keys.codes_at(messages["dst"], rows),
            messages["dport"].to_numpy()[rows],
        ),
    )
    del lead
    # gap to the previous identical copy; -1 for the first copy
    gap = np.full(len(ts), -1, dtype=np.int64)
    gap[rows] = _gap_ns(copy_id, ts[rows])
    return transaction, (gap >= 0) & (gap <= LIFETIME.value)


def _gap_ns(group: np.ndarray, ts: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """ns since the previous row of the same group (rows in time order); -1 for a group's first
    row and outside ``rows`` (a mask of whole groups). Only rows whose group may repeat
    (:func:`_maybe_repeated`) are sorted: most of a capture's copy keys are seen once."""
    if rows is None:
        at = np.flatnonzero(_maybe_repeated(group))
    else:
        at = np.flatnonzero(rows)
        at = at[_maybe_repeated(group[at])]
    order = at[np.argsort(group[at], kind="stable")]
    g = group[order]
    gap = np.full(len(group), -1, dtype=np.int64)
    same = np.flatnonzero(g[1:] == g[:-1]) + 1
    later, earlier = order[same], order[same - 1]
    gap[later] = ts[later] - ts[earlier]
    return gap


#: Fibonacci hashing's multiplier (2**64 / the golden ratio): spreads keys over the table.
_SPREAD = np.uint64(0x9E3779B97F4A7C15)


def _maybe_repeated(values: np.ndarray) -> np.ndarray:
    """True for every row whose value appears on another row, and for some others: values
    hashed into a table of one to two slots per row (the power of two at or above the row
    count), where a row alone in its slot holds a value seen once. At that load about half
    the rows share a slot, as with random keys: 48 % of the 1M capture's copy keys, of which
    2-4 % repeat. Counting slots costs a third of sorting every value."""
    bits = max(1, (len(values) - 1).bit_length())
    slot = (values.astype(np.int64, copy=False).view(np.uint64) * _SPREAD) >> np.uint64(64 - bits)
    slot = slot.astype(np.intp)
    return np.bincount(slot, minlength=1 << bits)[slot] > 1


#: The columns a transaction takes from its first request (else its first message).
HEAD_COLUMNS = (
    *("is_request", "src", "sport", "dst", "dport", "call_id", "cseq", "branch"),
    *("from_tag", "to_tag", "to_uri", "expires", "has_auth"),
)


def build(messages: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction from analysed messages (with ``transaction``/``retransmission``).

    Returns ``schema.TRANSACTIONS`` columns but ``key`` plus helper columns used by later steps
    (``from_tag``, ``to_uri``, ``expires``, ``has_auth``, ``min_expires``, ``in_dialog``: the
    request carried a To tag; ``branch`` and ``client_ip``, which the key is made of);
    :func:`table` adds the key and trims it to the schema. The key is text of every
    transaction, which no report reads: it is made only when the table is asked for.
    """
    if messages.empty:
        return _empty_wide()
    m = messages
    tx = m["transaction"].to_numpy()
    is_request = m["is_request"].to_numpy()
    # Work on codes of the CSeq method categories (plus one for ACK if it is missing).
    names = m["cseq_method"].cat.categories
    if "ACK" not in names:
        names = names.append(pd.Index(["ACK"], dtype=names.dtype))
    ack_code = int(np.flatnonzero(names == "ACK")[0])
    cseq_method = recode(m["cseq_method"], names)
    request_method = recode(m["method"], names)
    non_ack = cseq_method != ack_code
    # A transaction's method is its non-ACK CSeq method (one per transaction: it is part of
    # the key); a transaction of ACKs alone is the ACK to a 2xx (RFC 3261 §17.1.1.3: that
    # ACK is sent outside the INVITE transaction).
    n = int(tx.max()) + 1
    per_tx = np.full(n, -1, dtype=np.int64)
    np.maximum.at(per_tx, tx, keys.pick(non_ack, cseq_method, -1))
    per_tx = np.where(per_tx < 0, ack_code, per_tx)
    row_method = per_tx[tx]
    main = is_request & (request_method == row_method)
    ack = is_request & ~non_ack & (row_method != ack_code)
    status = keys.statuses(m["status"])
    response = ~is_request
    # a response whose code was not read (0, as a request) is neither provisional nor final
    prov = response & (status < 200) & m["status"].notna().to_numpy(dtype=bool)
    final = response & (status >= 200)
    retransmission = m["retransmission"].to_numpy()
    ts = m["ts"].array

    def first(mask: np.ndarray) -> np.ndarray:
        return keys.first_in_group(tx, mask, n)

    def count(mask: np.ndarray) -> np.ndarray:
        return keys.count_in_group(tx, mask, n).astype(np.int32)  # schema.TRANSACTIONS

    # the first copy of the request: the earliest, NaT (the smallest int64) when none was seen
    never = np.iinfo(np.int64).max
    earliest = np.full(n, never, dtype=np.int64)
    row_ns = keys.ns(m["ts"])
    at = np.flatnonzero(main)  # positions, not a boolean index twice (:func:`keys.first_in_group`)
    np.minimum.at(earliest, tx[at], row_ns[at])
    del at
    earliest[earliest == never] = keys.NAT
    prov_row, final_row = first(prov), first(final)
    provisional_ms = keys.milliseconds(keys.take(row_ns, prov_row, keys.NAT), earliest)
    final_ms = keys.milliseconds(keys.take(row_ns, final_row, keys.NAT), earliest)
    del row_ns
    del cseq_method, request_method, row_method, status  # an int64 per message each
    min_expires = m["min_expires"]
    out = pd.DataFrame(
        {
            "transaction": np.arange(n, dtype=np.int64),
            "request_ts": pd.array(earliest.view("datetime64[ns]")).tz_localize(ts.tz),
            "first_provisional_ts": ts.take(prov_row, allow_fill=True),
            "first_provisional_status": m["status"].array.take(prov_row, allow_fill=True),
            "final_ts": ts.take(final_row, allow_fill=True),
            "final_status": m["status"].array.take(final_row, allow_fill=True),
            "min_expires": min_expires.array.take(
                first(final & min_expires.notna().to_numpy()), allow_fill=True
            ),
            "requests": count(main),
            "acks": count(ack),
            "responses": count(response),
            "retransmissions": count(retransmission),
        },
        copy=False,  # the columns as they are: no copy of them into blocks (peak memory)
    )
    # Identity columns come from the first copy of the request, else from the first message.
    request_row = first(main & ~retransmission)
    # transactions are numbered in order of their first message (:func:`assign`)
    head_rows = np.where(request_row >= 0, request_row, keys.first_appearances(tx))
    # the endpoints first, while the other columns of the head rows are not held (peak memory)
    ends = m[["is_request", "src", "sport", "dst", "dport"]].iloc[head_rows]
    req = ends["is_request"].to_numpy()
    ips = ends["src"].cat.categories.union(ends["dst"].cat.categories)
    src_ip, dst_ip = recode(ends["src"], ips), recode(ends["dst"], ips)
    sport, dport = ends["sport"].to_numpy(), ends["dport"].to_numpy()
    del ends

    def side(ip_codes: np.ndarray, port: np.ndarray) -> pd.Categorical:
        ip = pd.Series(pd.Categorical.from_codes(ip_codes, categories=ips))
        return endpoints(ip, pd.Series(port))

    client = side(np.where(req, src_ip, dst_ip), np.where(req, sport, dport))
    server = side(np.where(req, dst_ip, src_ip), np.where(req, dport, sport))
    del sport, dport
    head = m[list(HEAD_COLUMNS)].iloc[head_rows].reset_index(drop=True)
    out["method"] = pd.Categorical.from_codes(np.asarray(per_tx, dtype=np.int64), categories=names)
    out["call_id"] = head["call_id"].array
    out["cseq"] = head["cseq"].array
    out["client"] = client
    out["server"] = server
    out["from_tag"] = head["from_tag"].array
    out["to_uri"] = head["to_uri"].array
    out["expires"] = head["expires"].where(req).array
    out["has_auth"] = head["has_auth"].to_numpy() & req
    out["in_dialog"] = head["to_tag"].notna().to_numpy() & req
    out["branch"] = head["branch"].array
    out["client_ip"] = pd.Categorical.from_codes(np.where(req, src_ip, dst_ip), categories=ips)
    out["provisional_ms"] = provisional_ms
    out["final_ms"] = final_ms
    out["has_final"] = out["final_status"].notna()
    return out


def table(wide: pd.DataFrame) -> pd.DataFrame:
    """``schema.TRANSACTIONS`` of :func:`build`'s frame (of one run, or of partitions merged)."""
    if wide.empty:
        return schema.empty(schema.TRANSACTIONS)
    return schema.conform(wide.assign(key=_key(wide)), schema.TRANSACTIONS)


def _key(wide: pd.DataFrame) -> pd.Categorical[str]:
    """Readable transaction key: ``branch METHOD``, or the RFC 2543 tuple when no cookie.

    The text of a ``branch METHOD`` is built once per distinct pair. The categories are
    sorted, as any partition of the transactions gives them.
    """
    names = wide["method"].cat.categories
    method = codes(wide["method"])
    cookie = _cookie(wide)
    pair = codes(wide["branch"]) * len(names) + method
    at = np.full(len(wide), -1, dtype=np.int64)
    at[cookie], distinct = pd.factorize(pair[cookie])
    branches = wide["branch"].cat.categories.take(distinct // len(names))
    texts = branches + (" " + names).take(distinct % len(names))  # one concatenation
    legacy = ~cookie
    if legacy.any():
        old = wide[legacy]
        tuples = (
            old["call_id"].astype("str").fillna("")
            + " "
            + old["cseq"].astype("str").fillna("")
            + " "
            + old["method"].astype("str")
            + " "
            + old["from_tag"].astype("str").fillna("")
            + " "
            + old["client_ip"].astype("str").fillna("")
        )
        at[legacy] = len(texts) + np.arange(len(tuples))
        texts = texts.append(pd.Index(tuples, dtype="str"))
    return keys.categorical(texts, at)


def _empty_wide() -> pd.DataFrame:
    out = schema.empty(schema.TRANSACTIONS).drop(columns="key")
    for name, dtype in {
        "branch": "category",
        "client_ip": "category",
        "from_tag": "category",
        "to_uri": "category",
        "expires": "Int64",
        "min_expires": "Int64",
        "has_auth": "bool",
        "in_dialog": "bool",
        "acks": "int32",
    }.items():
        out[name] = pd.Series(dtype=dtype)
    return out
