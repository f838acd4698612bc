"""Aggregate stage: analysed messages -> per-method and per-code counts, all and unique.

``count`` is every packet, ``unique`` leaves retransmissions out (the flag set by
:mod:`sipstats.analyze.transactions`); both exist for every row so that a retransmission
storm shows up as a gap between them.
"""

from __future__ import annotations

import pandas as pd

from sipstats import schema
from sipstats.analyze.tally import SOFTWARE_HEADERS, weights
from sipstats.catalogue import classify


def _tally(keys: pd.Series, retrans: pd.Series, n: pd.Series) -> pd.DataFrame:
    """count, unique, retransmissions and their ratio per key, over ``n`` messages a row."""
    frame = pd.DataFrame({"count": n, "retransmissions": n.where(retrans.to_numpy(), 0)})
    out = frame.groupby(keys, observed=True, sort=True).sum().astype("int64")
    out.insert(1, "unique", out["count"] - out["retransmissions"])
    out["retransmission_ratio"] = out["retransmissions"] / out["count"]
    return out


def by_method(messages: pd.DataFrame) -> pd.DataFrame:
    """Requests per method: count, unique, retransmissions and their share; by method name.

    ``messages``: analysed messages, or message groups (:attr:`~.tally.Tally.groups`).
    """
    req = messages[messages["is_request"].to_numpy(dtype=bool)]
    table = _tally(req["method"].astype("str"), req["retransmission"], weights(req))
    table.index.name = "method"
    return schema.conform(table.reset_index(), schema.BY_METHOD)


def by_code(messages: pd.DataFrame) -> pd.DataFrame:
    """Responses per status code with the catalogue's text and every phrase actually sent.

    ``reasons_sent`` joins the distinct phrases seen with ``|`` (most frequent first), so a
    rewritten phrase ("500 Service Unavailable") stands out next to the catalogue's.
    ``messages``: analysed messages, or message groups (:attr:`~.tally.Tally.groups`).
    """
    resp = messages[(~messages["is_request"] & messages["status"].notna()).to_numpy(dtype=bool)]
    status = resp["status"].astype("int64")
    n = weights(resp)
    table = _tally(status, resp["retransmission"], n)
    if table.empty:
        return schema.empty(schema.BY_CODE)
    phrases = (
        pd.DataFrame({"status": status, "reason": resp["reason"].astype("str").fillna(""), "n": n})
        .groupby(["status", "reason"], sort=False)["n"]
        .sum()
        .rename("count")
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


def user_agents(software: pd.DataFrame) -> pd.DataFrame:
    """header ('User-Agent' or 'Server'), value (as sent), messages (every packet carrying it).

    Names the phones, PBXs and SBCs in the capture, which an operator needs to read the
    failures. User-Agent rows first, then Server; most messages first, then by value.
    ``software`` is :attr:`~.tally.Tally.software` (counts per header and value).
    """
    frames = [
        software[software["header"] == header].sort_values(
            ["messages", "value"], ascending=[False, True]
        )
        for _, header in SOFTWARE_HEADERS
    ]
    table = pd.concat(frames, ignore_index=True).astype(
        {"header": "str", "value": "str", "messages": "int64"}
    )
    return table[table["messages"] > 0].reset_index(drop=True)
