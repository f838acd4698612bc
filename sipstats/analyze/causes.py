"""Breakdowns of calls: final code x Q.850 cause (with contradictions), software x outcome.

RFC 3398 §7.2.4.1 maps ISUP/Q.850 release causes to SIP status codes; a gateway that ends a
call with a code whose class differs from the one its own Q.850 cause maps to (503 with
cause 17 "user busy", which maps to 486), or a failure code with cause 16 "normal call
clearing", contradicts itself, and the table flags it.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze.keys import codes, per_category
from sipstats.sip import is_q850

#: RFC 3398 §7.2.4.1: Q.850 cause -> the SIP status code it maps to. Cause 16 (normal call
#: clearing) maps to no failure code: the call ended normally (BYE or CANCEL).
Q850_TO_SIP: Final = {
    1: 404, 2: 404, 3: 404, 17: 486, 18: 408, 19: 480, 20: 480, 21: 403, 22: 410, 23: 410,
    26: 404, 27: 502, 28: 484, 29: 501, 31: 480, 34: 503, 38: 503, 41: 503, 42: 503, 47: 503,
    55: 403, 57: 403, 58: 503, 65: 488, 70: 488, 79: 501, 87: 403, 88: 503, 102: 504,
    111: 500, 127: 500,
}  # fmt: skip
NORMAL_CLEARING: Final = 16


def code_by_cause(calls: pd.DataFrame) -> pd.DataFrame:
    """final_status, cause, cause_text (most common), calls, expected (RFC 3398), contradicts.

    Only calls whose cause came with protocol Q.850; most calls first.
    """
    protocol = calls["cause_protocol"].astype("category")  # the text read once per category
    keep = per_category(protocol, is_q850)[codes(protocol)]
    keep &= calls["cause"].notna().to_numpy(dtype=bool)
    if not keep.any():  # checked before any row is taken: most captures carry no cause
        return schema.empty(schema.CODE_BY_CAUSE)
    q850 = calls.loc[keep, ["final_status", "cause", "cause_text"]]
    keyed = q850.assign(
        final_status=q850["final_status"].astype("Int64"), cause=q850["cause"].astype("Int64")
    )
    grouped = keyed.groupby(["final_status", "cause"], dropna=False, observed=True)
    table = grouped.size().rename("calls").reset_index()
    texts = grouped["cause_text"].agg(_most_common)
    table["cause_text"] = texts.to_numpy()
    table["expected"] = table["cause"].map(Q850_TO_SIP).astype("Int64")
    final = table["final_status"].astype("float64").to_numpy()
    expected = table["expected"].astype("float64").to_numpy()
    normal_failure = (table["cause"] == NORMAL_CLEARING).to_numpy(dtype=bool) & (
        (final >= 300) & (final != 487)
    )
    with np.errstate(invalid="ignore"):
        other_class = ~np.isnan(expected) & ~np.isnan(final) & (final // 100 != expected // 100)
    table["contradicts"] = normal_failure | other_class
    table = table.sort_values(["calls", "final_status", "cause"], ascending=[False, True, True])
    return schema.conform(table, schema.CODE_BY_CAUSE)


def agents_by_outcome(calls: pd.DataFrame) -> pd.DataFrame:
    """side ('caller' / 'responder'), software, calls, then calls per outcome
    (``schema.AGENTS_BY_OUTCOME``: every outcome, 0 where none).

    Counted on category codes; text is looked at once per software seen.
    """
    outcome = calls["outcome"]
    outcome_code = codes(outcome)
    outcomes = list(outcome.cat.categories.astype("str"))
    # the column of each outcome in the table's order (-1: an outcome not listed)
    listed = [outcomes.index(name) if name in outcomes else -1 for name in schema.OUTCOMES]
    parts: list[dict[str, Any]] = []
    for side, column in (("caller", "caller_agent"), ("responder", "responder_agent")):
        software = codes(calls[column])
        known = (software >= 0) & (outcome_code >= 0)
        if not known.any():
            continue
        used, row = np.unique(software[known], return_inverse=True)
        names = np.asarray(calls[column].cat.categories[used].astype("str"), dtype=object)
        per_outcome = np.bincount(
            row * len(outcomes) + outcome_code[known], minlength=len(used) * len(outcomes)
        ).reshape(len(used), len(outcomes))
        total = per_outcome.sum(axis=1)
        # text order first, then most calls: as a crosstab over the text would list them
        order = np.argsort(names, kind="stable")
        order = order[np.argsort(-total[order], kind="stable")]
        none = np.zeros(len(used), dtype=np.int64)
        parts.append(
            {
                "side": np.full(len(used), side, dtype=object),
                "software": names[order],
                "calls": total[order],
                **{
                    name: (per_outcome[:, at] if at >= 0 else none)[order]
                    for name, at in zip(schema.OUTCOMES, listed, strict=True)
                },
            }
        )
    if not parts:
        return schema.empty(schema.AGENTS_BY_OUTCOME)
    joined = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    return schema.conform(pd.DataFrame(joined), schema.AGENTS_BY_OUTCOME)


def _most_common(texts: pd.Series) -> object:
    """The text most calls of a group carried (None when none did)."""
    return texts.mode().iloc[0] if texts.notna().any() else None
