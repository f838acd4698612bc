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

from sipstats.analyze import keys


def client_leg(messages: pd.DataFrame, request_key: np.ndarray) -> np.ndarray:
    """True for requests and for responses on their client's leg (fewest Via among the copies).

    ``request_key`` is :func:`sipstats.analyze.keys.request_key` of the messages. Responses
    without a Call-ID are kept (nothing ties them to a relayed copy).
    """
    if messages.empty:
        return np.zeros(0, dtype=bool)
    response = ~messages["is_request"].to_numpy()
    copies = keys.indexable(request_key, messages["cseq"].to_numpy(dtype=np.int64, na_value=-1))
    vias = keys.pick(
        response, messages["via_count"].to_numpy(dtype=np.int64), np.iinfo(np.int64).max
    )
    fewest = np.full(int(copies.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(fewest, copies, vias)
    kept = vias == fewest[copies]
    return ~response | kept | (keys.codes(messages["call_id"]) < 0)
