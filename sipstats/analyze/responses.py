"""Which messages the report tables count as responses: one rule for every table.

A response is a message that is not a request and carries a status code (a status line the
parser could not read leaves none). A table of *unique* responses leaves retransmissions out
(:mod:`.transactions` flags them); one of what the *clients* got keeps a response relayed by
a proxy once, on the client's leg (:mod:`.legs`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats.analyze import keys


def response_rows(
    messages: pd.DataFrame,
    *,
    unique: bool = False,
    client: bool = False,
    lowest: int | None = None,
    highest: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The responses with a status (a mask of ``messages``, whose ``status`` is the schema's
    Int16) and their codes (int64).

    ``unique``: retransmissions left out; ``client``: only the copies on the client's leg
    (``client_leg``); ``lowest``/``highest``: codes below/above them left out.
    """
    column = messages["status"]
    status = keys.statuses(column)  # NA read as 0, masked by the NA test
    keep = ~(messages["is_request"].to_numpy(dtype=bool) | column.isna().to_numpy())
    if lowest is not None:
        keep &= status >= lowest
    if highest is not None:
        keep &= status <= highest
    if unique:
        keep &= ~messages["retransmission"].to_numpy(dtype=bool)
    if client:
        keep &= messages["client_leg"].to_numpy(dtype=bool)
    return keep, status[keep].astype(np.int64)
