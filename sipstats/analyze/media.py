"""Per-call SDP and Reason summary: analysed messages + CALLS -> the calls' media columns.

A call's offer is the SDP of its first INVITE; its answer the SDP of the first response to
an INVITE that carried one (a 183 with SDP is early media, RFC 3960, else the 2xx). The
call's cause is the RFC 3326 Reason of its final response, or of the caller's CANCEL or
either side's BYE: Q.850 when any carries one, else the first Reason seen. The software of
each side is the User-Agent of the first INVITE and the Server (else User-Agent) of the
final response. Messages belong to
a call by Call-ID and the caller's From tag (responses and the caller's requests carry it;
the callee's BYE carries it in To).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from sipstats.analyze import keys
from sipstats.analyze.transactions import codes, endpoints

#: The columns :func:`call_media` adds to CALLS (declared in ``schema.CALLS``).
COLUMNS: Final = (
    "offered_codecs",
    "offer_media",
    "answered_codecs",
    "answer_media",
    "early_media",
    "cause_protocol",
    "cause",
    "cause_text",
    "caller_agent",
    "responder_agent",
)


def _same_codes(column: pd.Series, like: pd.Series) -> pd.Series:
    """``column`` coded in ``like``'s categories (the calls' columns come from the messages)."""
    if column.cat.categories.equals(like.cat.categories):
        return column
    return column.cat.set_categories(like.cat.categories)


def _text(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Values of ``column`` at ``rows`` (NA where a row is -1), as objects."""
    return np.asarray(column.array.take(rows, allow_fill=True), dtype=object)


def call_media(messages: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """One row per call (index aligned with ``calls``) holding :data:`COLUMNS`.

    Works on integer dialog keys (:func:`sipstats.analyze.keys.dialog`); a message without a
    From tag belongs to the call of its Call-ID without one.
    """
    m = messages
    fresh = ~m["retransmission"].to_numpy(dtype=bool)
    tags = m["from_tag"].cat.categories
    from_key = keys.dialog(m["call_id"], m["from_tag"], tags, untagged=True)
    to_key = keys.dialog(m["call_id"], m["to_tag"], tags, untagged=False)
    call_key = keys.dialog(
        _same_codes(calls["call_id"], m["call_id"]),
        _same_codes(calls["from_tag"], m["from_tag"]),
        tags,
        untagged=True,
    )
    request = m["is_request"].to_numpy(dtype=bool)
    status = m["status"].to_numpy(dtype="float64", na_value=np.nan)
    invite = (m["cseq_method"] == "INVITE").to_numpy(dtype=bool)
    invite_request = request & (m["method"] == "INVITE").to_numpy(dtype=bool)

    def first_of_call(mask: np.ndarray) -> np.ndarray:
        """Each call's first row of ``mask`` (-1: none)."""
        return keys.lookup(*keys.first_rows(from_key, fresh & mask), call_key)

    sdp = m["sdp_port"].notna().to_numpy(dtype=bool) & invite
    offer = first_of_call(sdp & invite_request)
    answers = sdp & ~request & (status >= 180) & (status < 300)
    answer = first_of_call(answers)
    early = keys.isin(call_key, from_key[fresh & answers & (status == 183)]) & (call_key >= 0)

    # the cause: Q.850 Reasons first, then the first in time, of the final response, the
    # caller's CANCEL and BYE (From tag) and the callee's BYE (the caller's tag in To)
    reasons = m["reason_protocol"].notna().to_numpy(dtype=bool)
    ending = (~request & (status >= 200) & invite) | (
        request & m["method"].isin(("CANCEL", "BYE")).to_numpy(dtype=bool)
    )
    said = np.flatnonzero(fresh & reasons & ending)
    by_to = said[request[said]]
    said_key = np.concatenate([from_key[said], to_key[by_to]])
    said_row = np.concatenate([said, by_to])
    protocol = m["reason_protocol"]
    not_q850 = np.append(protocol.cat.categories.str.upper() != "Q.850", True)
    ts = m["ts"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((ts[said_row], not_q850[codes(protocol)[said_row]]))
    distinct, first = keys.first_rows(said_key[order], np.ones(len(order), dtype=bool))
    cause = keys.lookup(distinct, said_row[order][first], call_key)

    # the software on each side: the first INVITE's User-Agent, the final response's Server
    # (its User-Agent when it sends no Server)
    agent = first_of_call(invite_request)
    final = first_of_call(~request & (status >= 200) & invite)
    server = _text(m["server"], final)
    responder = np.where(pd.isna(server), _text(m["user_agent"], final), server)

    sent = np.concatenate([offer, answer])
    sent = sent[sent >= 0]
    media = endpoints(m["sdp_address"].iloc[sent], m["sdp_port"].iloc[sent])
    # row -> position in ``sent`` (-1 stays -1)
    position = np.full(len(m) + 1, -1, dtype=np.int64)
    position[sent] = np.arange(len(sent))
    return pd.DataFrame(
        {
            "offered_codecs": _text(m["sdp_codecs"], offer),
            "offer_media": np.asarray(media.take(position[offer], allow_fill=True), dtype=object),
            "answered_codecs": _text(m["sdp_codecs"], answer),
            "answer_media": np.asarray(media.take(position[answer], allow_fill=True), dtype=object),
            "early_media": early,
            "cause_protocol": _text(protocol, cause),
            "cause": m["reason_cause"].array.take(cause, allow_fill=True),
            "cause_text": _text(m["reason_text"], cause),
            "caller_agent": _text(m["user_agent"], agent),
            "responder_agent": responder,
        },
        index=calls.index,
    )
