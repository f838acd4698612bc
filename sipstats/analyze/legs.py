"""Legs at a proxy: analysed messages -> per response, is it the copy its client received?

A stateful proxy relays a response from the callee's leg to the caller's after removing its
own Via (RFC 3261 §16.7 step 9), and may send another final in its place (§16.7: a 503 from
downstream goes upstream as 500). A capture taken at the proxy holds every leg: the same
response (same Call-ID, From tag, CSeq number and method) once per leg. The copy with the
fewest Via entries is the one on the leg of the request's originator, what the client saw;
tables of what callers got count only that one, so a relayed failure counts once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats.analyze.transactions import codes


def client_leg(messages: pd.DataFrame) -> np.ndarray:
    """True for requests and for responses on their client's leg (fewest Via among the copies).

    Responses without a Call-ID are kept (nothing ties them to a relayed copy).
    """
    if messages.empty:
        return np.zeros(0, dtype=bool)
    response = ~messages["is_request"].to_numpy()
    key = pd.DataFrame(
        {
            "call_id": codes(messages["call_id"]),
            "from_tag": codes(messages["from_tag"]),
            "cseq": messages["cseq"].fillna(-1).to_numpy(dtype=np.int64),
            "method": codes(messages["cseq_method"]),
        }
    )
    vias = pd.Series(
        np.where(response, messages["via_count"].to_numpy(dtype=np.int64), np.iinfo(np.int64).max)
    )
    fewest = vias.groupby([key[c] for c in key.columns], sort=False).transform("min").to_numpy()
    kept = vias.to_numpy() == fewest
    return ~response | kept | (key["call_id"].to_numpy() < 0)
