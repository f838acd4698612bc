"""Aggregate stage: analysed messages -> per-method and per-code counts, all and unique.

``count`` is every packet, ``unique`` leaves retransmissions out (the flag set by
:mod:`sipstats.analyze.transactions`); both exist for every row so that a retransmission
storm shows up as a gap between them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.responses import response_rows
from sipstats.analyze.tally import SOFTWARE_HEADERS, weights
from sipstats.catalogue import classify
from sipstats.ranking import most_first_order


def by_method(messages: pd.DataFrame) -> pd.DataFrame:
    """Requests per method: count, unique, retransmissions and their share; by method name.

    ``messages``: analysed messages, or message groups (:attr:`~.tally.Tally.groups`).
    Counted on the method's codes, each text read once (a request without one is left out).
    """
    column = messages["method"]
    if not isinstance(column.dtype, pd.CategoricalDtype):  # merged groups hold text
        column = column.astype("category")
    rows = np.flatnonzero(messages["is_request"].to_numpy(dtype=bool))
    at = keys.codes(column)[rows]
    rows, at = rows[at >= 0], at[at >= 0]
    names = keys.categorical(pd.Index(column.cat.categories.astype("str")), at)  # text order
    group = np.asarray(names.codes, dtype=np.int64)
    n = weights(messages).to_numpy(dtype=np.int64)[rows]
    again = np.where(messages["retransmission"].to_numpy(dtype=bool)[rows], n, 0)
    count = np.bincount(group, weights=n, minlength=len(names.categories)).astype(np.int64)
    retransmissions = np.bincount(group, weights=again, minlength=len(count)).astype(np.int64)
    table = pd.DataFrame(
        {
            "method": pd.array(np.asarray(names.categories, dtype=object), dtype="str"),
            "count": count,
            "unique": count - retransmissions,
            "retransmissions": retransmissions,
            "retransmission_ratio": retransmissions / count,
        }
    )
    return schema.conform(table, schema.BY_METHOD)


def by_code(messages: pd.DataFrame) -> pd.DataFrame:
    """Responses per status code with the catalogue's text and every phrase actually sent.

    ``reasons_sent`` joins the distinct phrases seen with ``|`` (most frequent first), so a
    rewritten phrase ("500 Service Unavailable") stands out next to the catalogue's.
    ``messages``: analysed messages, or message groups (:attr:`~.tally.Tally.groups`).
    """
    keep, code = response_rows(messages)
    if not keep.any():
        return schema.empty(schema.BY_CODE)
    codes, group = np.unique(code, return_inverse=True)
    n = weights(messages).to_numpy(dtype=np.int64)[keep]
    retransmitted = messages["retransmission"].to_numpy(dtype=bool)[keep]
    count = np.bincount(group, weights=n, minlength=len(codes)).astype(np.int64)
    again = np.bincount(group, weights=np.where(retransmitted, n, 0), minlength=len(codes))
    counted = {
        "code": pd.array([f"{c:03d}" for c in codes.tolist()], dtype="str"),
        "count": count,
        "unique": count - again.astype(np.int64),
        "retransmissions": again.astype(np.int64),
        "retransmission_ratio": again / count,
        "reasons_sent": pd.array(_phrases(messages, keep, group, n, len(codes)), dtype="str"),
    }
    catalogue = classify(pd.Series(codes, dtype="Int16"))
    # the other columns are the catalogue's: the table made at once, not a column at a time
    out = pd.DataFrame(
        {
            name: counted[name] if name in counted else catalogue[name].array
            for name in schema.BY_CODE
        }
    )
    return schema.conform(out, schema.BY_CODE)


def _phrases(
    messages: pd.DataFrame, keep: np.ndarray, group: np.ndarray, n: np.ndarray, codes: int
) -> list[str]:
    """Per code (``group`` of each response at ``keep``, 0..codes-1): the distinct reason
    phrases sent with it joined with ``|``, most messages first, then by text (no phrase
    counts as "")."""
    phrase, names = keys.ranked_texts(messages["reason"], keep, "")  # the rank of its text
    pairs, pair = np.unique(group * len(names) + phrase, return_inverse=True)
    sent = np.bincount(pair, weights=n, minlength=len(pairs))
    of_code, text = pairs // len(names), pairs % len(names)
    order = np.lexsort((text, -sent, of_code))
    joined: list[list[str]] = [[] for _ in range(codes)]
    for code, at_text in zip(of_code[order].tolist(), text[order].tolist(), strict=True):
        joined[code].append(names[at_text])
    return ["|".join(phrases) for phrases in joined]


def user_agents(software: pd.DataFrame) -> pd.DataFrame:
    """header ('User-Agent' or 'Server'), value (as sent), messages (every packet carrying it).

    Names the phones, PBXs and SBCs in the capture, which an operator needs to read the
    failures. User-Agent rows first, then Server; most messages first, then by value.
    ``software`` is :attr:`~.tally.Tally.software` (counts per header and value).
    """
    header = software["header"].to_numpy(dtype=object)
    count = software["messages"].to_numpy(dtype=np.int64)
    rank = keys.text_ranks(software["value"].astype("str"))  # the values' text order
    # the rows in table order picked on the arrays: one take of the frame, not a sort of each
    ordered = []
    for _, name in SOFTWARE_HEADERS:
        rows = np.flatnonzero(header == name)
        ordered.append(rows[most_first_order(rank[rows].tolist(), count[rows].tolist())])
    order = np.concatenate(ordered)
    order = order[count[order] > 0]
    table = software.iloc[order].astype({"header": "str", "value": "str", "messages": "int64"})
    return table.reset_index(drop=True)
