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

All work is vectorised on category codes: rows must be in capture-time order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats import schema

MAGIC_COOKIE = "z9hG4bK"


def codes(col: pd.Series) -> np.ndarray:
    """Category codes of ``col`` as int64 (-1 for NA)."""
    return col.cat.codes.to_numpy(dtype=np.int64)


def recode(col: pd.Series, categories: pd.Index) -> np.ndarray:
    """Codes of ``col``'s values within ``categories`` (-1 where absent or NA)."""
    mapping = np.append(categories.get_indexer(col.cat.categories), -1).astype(np.int64)
    return mapping[codes(col)]


def endpoint(ip: pd.Series, port: pd.Series) -> pd.Series:
    """``ip:port`` strings (``[v6]:port`` for IPv6), NA where the address is missing."""
    ip_s = ip.astype("str")
    v6 = ip_s.str.contains(":", regex=False)
    host = ip_s.where(~v6, "[" + ip_s + "]")
    out = host + ":" + port.astype("Int64").astype("str")
    return out.where(ip.notna())


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
    cookie = _cookie(messages)
    legacy = ~cookie
    key = pd.DataFrame(
        {
            "branch": codes(messages["branch"]),
            "method": _key_method(messages),
            "call_id": codes(messages["call_id"]),
            "cseq": messages["cseq"].fillna(-1).to_numpy(dtype=np.int64),
            # RFC 2543 fallback: From tag and the client's address join the key.
            "from_tag": np.where(legacy, codes(messages["from_tag"]), -1),
            "client": np.where(legacy, _client_ip(messages), -1) if legacy.any() else -1,
        }
    )
    transaction = key.groupby(list(key.columns), sort=False).ngroup().to_numpy(dtype=np.int64)
    is_request = messages["is_request"].to_numpy()
    copy = pd.DataFrame(
        {
            "transaction": transaction,
            "is_request": is_request,
            "src": codes(messages["src"]),
            "sport": messages["sport"].to_numpy(),
            "dst": codes(messages["dst"]),
            "dport": messages["dport"].to_numpy(),
            "what": np.where(
                is_request,
                -1 - codes(messages["method"]),
                messages["status"].fillna(0).to_numpy(dtype=np.int64),
            ),
            "to_tag": codes(messages["to_tag"]),
        }
    )
    return transaction, copy.duplicated().to_numpy()


def build(messages: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction from analysed messages (with ``transaction``/``retransmission``).

    Returns ``schema.TRANSACTIONS`` columns plus helper columns used by later steps
    (``from_tag``, ``to_uri``, ``expires``, ``has_auth``, ``min_expires``, ``acks``, ``src``,
    ``dst``); :func:`table` trims it to the schema.
    """
    if messages.empty:
        return _empty_wide()
    m = messages
    tx = m["transaction"].to_numpy()
    is_request = m["is_request"].to_numpy()
    cseq_method = m["cseq_method"]
    non_ack = (cseq_method != "ACK").to_numpy()
    # A transaction's method is its non-ACK CSeq method; a transaction of ACKs alone is the
    # ACK to a 2xx (RFC 3261 §17.1.1.3: that ACK is sent outside the INVITE transaction).
    method = cseq_method.where(non_ack).groupby(tx).transform("first")
    method = method.astype("str").where(method.notna(), "ACK")
    main = is_request & (m["method"].astype("str") == method).to_numpy()
    ack = is_request & ~non_ack & (method != "ACK").to_numpy()
    status = m["status"]
    response = ~is_request
    prov = response & (status < 200).fillna(False).to_numpy()
    final = response & (status >= 200).fillna(False).to_numpy()
    ts = m["ts"]
    work = pd.DataFrame(
        {
            "transaction": tx,
            "method": method,
            "req_ts": ts.where(main),
            "prov_ts": ts.where(prov),
            "prov_status": status.where(prov),
            "final_ts": ts.where(final),
            "final_status": status.where(final),
            "min_expires": m["min_expires"].where(final),
            "main": main,
            "ack": ack,
            "response": response,
            "retransmission": m["retransmission"].to_numpy(),
            "first_request": main & ~m["retransmission"].to_numpy(),
        }
    )
    g = work.groupby("transaction", sort=True)
    out = g.agg(
        method=("method", "first"),
        request_ts=("req_ts", "min"),
        first_provisional_ts=("prov_ts", "first"),
        first_provisional_status=("prov_status", "first"),
        final_ts=("final_ts", "first"),
        final_status=("final_status", "first"),
        min_expires=("min_expires", "first"),
        requests=("main", "sum"),
        acks=("ack", "sum"),
        responses=("response", "sum"),
        retransmissions=("retransmission", "sum"),
    )
    # Identity columns come from the first copy of the request, else from the first message.
    pick = np.where(work["first_request"].to_numpy(), 0, 1)
    order = np.lexsort((np.arange(len(m)), pick, tx))
    first_rows = order[np.r_[True, tx[order][1:] != tx[order][:-1]]]
    head = m.iloc[first_rows].reset_index(drop=True)
    req = head["is_request"].to_numpy()
    src_ep = endpoint(head["src"], head["sport"])
    dst_ep = endpoint(head["dst"], head["dport"])
    out = out.reset_index()
    out["call_id"] = head["call_id"].to_numpy()
    out["cseq"] = head["cseq"].to_numpy()
    out["client"] = np.where(req, src_ep, dst_ep)
    out["server"] = np.where(req, dst_ep, src_ep)
    out["src"] = np.where(req, head["src"].astype("str"), head["dst"].astype("str"))
    out["dst"] = np.where(req, head["dst"].astype("str"), head["src"].astype("str"))
    out["from_tag"] = head["from_tag"].to_numpy()
    out["to_uri"] = head["to_uri"].to_numpy()
    out["expires"] = head["expires"].where(req).to_numpy()
    out["has_auth"] = head["has_auth"].to_numpy() & req
    out["key"] = _key_text(head, out["method"])
    out["provisional_ms"] = _ms(out["first_provisional_ts"] - out["request_ts"])
    out["final_ms"] = _ms(out["final_ts"] - out["request_ts"])
    out["has_final"] = out["final_status"].notna()
    return out


def table(wide: pd.DataFrame) -> pd.DataFrame:
    """``schema.TRANSACTIONS`` view of :func:`build`'s frame."""
    return schema.conform(wide, schema.TRANSACTIONS)


def _key_text(head: pd.DataFrame, method: pd.Series) -> pd.Series:
    """Readable transaction key: ``branch METHOD``, or the RFC 2543 tuple when no cookie."""
    method = method.astype("str")
    branch = head["branch"].astype("str").fillna("")
    cookie = branch.str.startswith(MAGIC_COOKIE).to_numpy()
    rfc3261 = branch + " " + method.to_numpy()
    client = np.where(head["is_request"], head["src"].astype("str"), head["dst"].astype("str"))
    rfc2543 = (
        head["call_id"].astype("str").fillna("")
        + " "
        + head["cseq"].astype("str").fillna("")
        + " "
        + method.to_numpy()
        + " "
        + head["from_tag"].astype("str").fillna("")
        + " "
        + pd.Series(client, dtype="str").fillna("")
    )
    return rfc3261.where(cookie, rfc2543)


def _ms(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() * 1000.0


def _empty_wide() -> pd.DataFrame:
    out = schema.empty(schema.TRANSACTIONS)
    for name, dtype in {
        "from_tag": "category",
        "to_uri": "category",
        "expires": "Int64",
        "min_expires": "Int64",
        "has_auth": "bool",
        "acks": "int32",
        "src": "str",
        "dst": "str",
    }.items():
        out[name] = pd.Series(dtype=dtype)
    return out
