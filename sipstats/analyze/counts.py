"""Aggregate stage: analysed messages -> per-method and per-code counts, all and unique.

``count`` is every packet, ``unique`` leaves retransmissions out (the flag set by
:mod:`sipstats.analyze.transactions`); both exist for every row so that a retransmission
storm shows up as a gap between them.
"""

from __future__ import annotations

import pandas as pd

from sipstats import schema
from sipstats.catalogue import classify


def _tally(keys: pd.Series, retrans: pd.Series) -> pd.DataFrame:
    grouped = retrans.groupby(keys, observed=True, sort=True)
    out = pd.DataFrame({"count": grouped.size(), "retransmissions": grouped.sum()})
    out = out.astype("int64")
    out.insert(1, "unique", out["count"] - out["retransmissions"])
    out["retransmission_ratio"] = out["retransmissions"] / out["count"]
    return out


def by_method(messages: pd.DataFrame) -> pd.DataFrame:
    """Requests per method: count, unique, retransmissions and their share; by method name."""
    req = messages[messages["is_request"]]
    table = _tally(req["method"].astype("str"), req["retransmission"])
    table.index.name = "method"
    return schema.conform(table.reset_index(), schema.BY_METHOD)


def by_code(messages: pd.DataFrame) -> pd.DataFrame:
    """Responses per status code with the catalogue's text and every phrase actually sent.

    ``reasons_sent`` joins the distinct phrases seen with ``|`` (most frequent first), so a
    rewritten phrase ("500 Service Unavailable") stands out next to the catalogue's.
    """
    resp = messages[~messages["is_request"] & messages["status"].notna()]
    status = resp["status"].astype("int64")
    table = _tally(status, resp["retransmission"])
    if table.empty:
        return schema.empty(schema.BY_CODE)
    phrases = (
        pd.DataFrame({"status": status, "reason": resp["reason"].astype("str").fillna("")})
        .value_counts()
        .reset_index()
        .sort_values(["status", "count", "reason"], ascending=[True, False, True])
        .groupby("status")["reason"]
        .agg("|".join)
    )
    codes = table.index.to_numpy()
    catalogue = classify(pd.Series(codes, dtype="Int16")).reset_index(drop=True)
    out = table.reset_index(drop=True)
    out.insert(0, "code", [f"{c:03d}" for c in codes])
    out["reasons_sent"] = phrases.reindex(codes).fillna("").to_numpy()
    for name in schema.BY_CODE:
        if name not in out.columns:  # the catalogue's columns
            out[name] = catalogue[name].array
    return schema.conform(out, schema.BY_CODE)


#: Headers that name the software of a SIP element (RFC 3261 §20.41 User-Agent, §20.35 Server).
SOFTWARE_HEADERS = (("user_agent", "User-Agent"), ("server", "Server"))


def user_agents(messages: pd.DataFrame) -> pd.DataFrame:
    """header ('User-Agent' or 'Server'), value (as sent), messages (every packet carrying it).

    Names the phones, PBXs and SBCs in the capture, which an operator needs to read the
    failures. User-Agent rows first, then Server; most messages first, then by value.
    """
    frames = []
    for column, header in SOFTWARE_HEADERS:
        counts = messages[column].value_counts(sort=False, dropna=True)
        frame = pd.DataFrame(
            {"header": header, "value": counts.index.astype("str"), "messages": counts.to_numpy()}
        )
        frames.append(frame.sort_values(["messages", "value"], ascending=[False, True]))
    table = pd.concat(frames, ignore_index=True).astype(
        {"header": "str", "value": "str", "messages": "int64"}
    )
    return table[table["messages"] > 0].reset_index(drop=True)
