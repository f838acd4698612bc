"""Auth challenges: analysed messages -> per response, is it a 401/407 the client answered?

RFC 3261 §22.2: a UAC that gets 401 or 407 sends the request again with credentials, same
Call-ID and From tag, a higher CSeq number (§8.1.3.5). Such a 401/407 is a challenge, a
normal step of the exchange, not a failure: failure tables and figures leave it out and
count it apart. A 401/407 never followed by credentials stays a failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats.analyze.transactions import codes

#: RFC 3261 §21.4.2 401 Unauthorized, §21.4.8 407 Proxy Authentication Required.
CHALLENGE_CODES = (401, 407)


def answered_challenge(messages: pd.DataFrame) -> np.ndarray:
    """True for each 401/407 that its client answered with credentials (see module docstring).

    The answer is a later request with Authorization or Proxy-Authorization, the same Call-ID,
    From tag and method as the challenged request, and a higher CSeq number.
    """
    if messages.empty:
        return np.zeros(0, dtype=bool)
    is_request = messages["is_request"].to_numpy()
    # Requests name their method in the request line, responses in CSeq: compare CSeq methods.
    key = pd.DataFrame(
        {
            "call_id": codes(messages["call_id"]),
            "from_tag": codes(messages["from_tag"]),
            "method": codes(messages["cseq_method"]),
        }
    )
    cseq = messages["cseq"].astype("float64").to_numpy(na_value=np.nan)
    authed = is_request & messages["has_auth"].to_numpy()
    highest = (
        pd.Series(np.where(authed, cseq, np.nan))
        .groupby([key[c] for c in key.columns], sort=False)
        .transform("max")
        .to_numpy()
    )
    challenge = ~is_request & messages["status"].isin(CHALLENGE_CODES).to_numpy()
    with np.errstate(invalid="ignore"):
        return challenge & (highest > cseq) & (key["call_id"].to_numpy() >= 0)
