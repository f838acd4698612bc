"""Auth challenges: analysed messages -> per response, is it a 401/407 the client answered?

RFC 3261 §22.2: a UAC that gets 401 or 407 sends the request again with credentials, same
Call-ID and From tag, a higher CSeq number (§8.1.3.5). Such a 401/407 is a challenge, a
normal step of the exchange, not a failure: failure tables and figures leave it out and
count it apart. A 401/407 never followed by credentials stays a failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats.analyze import keys

#: RFC 3261 §21.4.2 401 Unauthorized, §21.4.8 407 Proxy Authentication Required.
CHALLENGE_CODES = (401, 407)


def answered_challenge(messages: pd.DataFrame, request_key: np.ndarray) -> np.ndarray:
    """True for each 401/407 that its client answered with credentials (see module docstring).

    The answer is a later request with Authorization or Proxy-Authorization, the same Call-ID,
    From tag and method as the challenged request (the same ``request_key``:
    :func:`sipstats.analyze.keys.request_key`), and a higher CSeq number.
    """
    if messages.empty:
        return np.zeros(0, dtype=bool)
    is_request = messages["is_request"].to_numpy()
    status = keys.statuses(messages["status"])
    # a comparison per code: np.isin sorts or tables every row's status
    challenge = ~is_request & np.logical_or.reduce([status == code for code in CHALLENGE_CODES])
    # the highest CSeq with credentials of each key, read at the few challenges only
    cseq = messages["cseq"].to_numpy(dtype="float64", na_value=np.nan)
    authed = np.flatnonzero(is_request & messages["has_auth"].to_numpy())
    n = int(request_key.max()) + 1
    highest = keys.max_in_group(request_key[authed], cseq[authed], n)
    rows = np.flatnonzero(challenge)
    answered = np.zeros(len(challenge), dtype=bool)
    with np.errstate(invalid="ignore"):
        answered[rows] = (highest[request_key[rows]] > cseq[rows]) & (
            keys.codes_at(messages["call_id"], rows) >= 0
        )
    return answered
