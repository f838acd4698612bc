"""Analysis -> the calls an operator asked for: filters over ``Analysis.calls``, one row each.

``sipstats calls`` and notebooks share these: a filter is a library call first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.select import Bound, time_bound

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: The columns of the call list, in order (all from ``schema.CALLS``).
LIST_COLUMNS: Final = (
    "start_ts",
    "caller",
    "callee",
    "outcome",
    "final_status",
    "cause",
    "pdd_ms",
    "duration_s",
    "call_id",
    "src",
    "dst",
    "offered_codecs",
    "answered_codecs",
    "early_media",
    "correlation_id",
    "e2e_outcome",
)


def select_calls(
    analysis: Analysis,
    *,
    outcomes: Iterable[str] = (),
    codes: Iterable[int] = (),
    caller: str | None = None,
    callee: str | None = None,
    call_ids: Iterable[str] = (),
    since: Bound | str = None,
    until: Bound | str = None,
) -> pd.DataFrame:
    """Rows of ``analysis.calls`` that pass every given filter (an empty filter passes all).

    ``outcomes``: any of ``schema.OUTCOMES``; ``codes``: final status codes; ``caller`` /
    ``callee``: text the From / To URI contains (case-folded, ``str.casefold``); ``call_ids``:
    exact Call-IDs; ``since``/``until``: the call started in ``[since, until)`` (a Timedelta
    counts from the first message of the capture; text is read as ``--since`` reads it).
    Raises ``ValueError`` for an unknown outcome, :class:`~sipstats.errors.OptionError` for
    a bad time.
    """
    calls = analysis.calls
    keep = pd.Series(True, index=calls.index)
    outcomes = list(outcomes)
    unknown = sorted(set(outcomes) - set(schema.OUTCOMES))
    if unknown:
        raise ValueError(
            f"unknown outcome {', '.join(unknown)} (one of: {', '.join(schema.OUTCOMES)})"
        )
    if outcomes:
        keep &= calls["outcome"].isin(outcomes)
    codes = list(codes)
    if codes:
        keep &= calls["final_status"].isin(codes).fillna(False).astype(bool)
    for column, needle in (("caller", caller), ("callee", callee)):
        if needle:
            keep &= _contains(calls[column], needle)
    call_ids = list(call_ids)
    if call_ids:
        keep &= calls["call_id"].isin(call_ids)
    start = analysis.tally.first
    for bound, after in ((time_bound(since), True), (time_bound(until), False)):
        if bound is None or start is None:
            continue
        at = start + bound if isinstance(bound, pd.Timedelta) else bound
        keep &= (calls["start_ts"] >= at) if after else (calls["start_ts"] < at)
    return calls[keep.to_numpy(dtype=bool)]


def _contains(column: pd.Series, needle: str) -> np.ndarray:
    """True where the text of ``column`` contains ``needle`` without regard to case: both
    case-folded by Python's ``str.casefold`` (:func:`keys.per_category` says why not pandas'),
    which also finds ``Straße`` for ``STRASSE`` and a final ``ς`` for ``Σ``."""
    folded = needle.casefold()
    texts = column.astype("category")
    return keys.per_category(texts, lambda text: folded in text.casefold())[keys.codes(texts)]


def call_list(calls: pd.DataFrame) -> pd.DataFrame:
    """The call list: :data:`LIST_COLUMNS` of ``calls`` in start order."""
    return calls.sort_values(["start_ts", "call"], kind="stable")[list(LIST_COLUMNS)].reset_index(
        drop=True
    )
