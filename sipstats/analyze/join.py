"""Catalogue join: messages -> messages with each response's class, category and catalogue text.

The reason phrase actually sent stays in ``reason``; the catalogue's phrase goes to
``catalogue_reason`` next to it, because operators rewrite phrases and a mismatch is worth
showing. Requests get NA in every catalogue column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from sipstats.catalogue import classify

#: Catalogue column -> column name in the analysed messages table.
COLUMNS = {
    "status_class": "status_class",
    "category": "category",
    "registered": "registered",
    "reason": "catalogue_reason",
    "description": "description",
}


def join_catalogue(messages: pd.DataFrame) -> pd.DataFrame:
    """``messages`` plus the catalogue columns of :data:`COLUMNS`, NA on requests.

    The catalogue is consulted once per distinct code; rows take their code's entry.
    """
    status = messages["status"]
    low = status.min()
    base = 0 if pd.isna(low) else int(low) - 1
    offset = status.to_numpy(dtype=np.int64, na_value=base) - base  # 0: no code
    present = np.flatnonzero(np.bincount(offset, minlength=1)[1:]) + 1
    distinct = pd.Series(present + base, dtype=status.dtype)
    table = classify(distinct).reset_index(drop=True)
    position = np.full(int(offset.max(initial=0)) + 1, -1, dtype=np.int64)
    position[present] = np.arange(len(present))
    position = position[offset]
    return messages.assign(
        **{target: _gather(table[source].array, position) for source, target in COLUMNS.items()}
    )


def _gather(entries: ExtensionArray, position: np.ndarray) -> ExtensionArray:
    """``entries.take(position, allow_fill=True)`` (-1: NA) for the catalogue's categorical
    and boolean columns, gathered as their codes or values and mask: a take of pandas' casts
    and checks every row's code, at several times the cost."""
    if isinstance(entries, pd.Categorical):
        codes = np.append(entries.codes, -1)[position]  # the last: NA
        return pd.Categorical.from_codes(codes, dtype=entries.dtype, validate=False)
    if isinstance(entries, pd.arrays.BooleanArray):
        values = np.append(entries.to_numpy(dtype=bool, na_value=False), False)[position]
        return pd.arrays.BooleanArray(values, np.append(entries.isna(), True)[position])
    return entries.take(position, allow_fill=True)
