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

from typing import Any, Final

import numpy as np
import pandas as pd

from sipstats.analyze import keys
from sipstats.analyze.transactions import endpoints
from sipstats.sip import is_q850

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


def _texts(column: pd.Series, rows: np.ndarray) -> pd.Categorical[str]:
    """Values of ``column`` (categorical) at ``rows`` (NA where a row is -1)."""
    return keys.categorical(column.cat.categories, keys.codes_at(column, rows))


def call_media(
    messages: pd.DataFrame, by_from: np.ndarray, by_to: np.ndarray, n: int
) -> dict[str, Any]:
    """:data:`COLUMNS` of calls 0..n-1.

    ``by_from``/``by_to`` are the call each message belongs to by its Call-ID and From tag,
    and by its Call-ID and To tag (-1: none; ``by_to`` is read only where a message carries
    a Reason); a message without a From tag belongs to the call of its Call-ID without one.
    """
    m = messages
    fresh = ~m["retransmission"].to_numpy(dtype=bool)
    request = m["is_request"].to_numpy(dtype=bool)
    status = keys.statuses(m["status"])
    invite = (m["cseq_method"] == "INVITE").to_numpy(dtype=bool)
    invite_request = request & (m["method"] == "INVITE").to_numpy(dtype=bool)
    of_call = fresh & (by_from >= 0)

    def first_of_call(mask: np.ndarray) -> np.ndarray:
        """Each call's first row of ``mask`` (-1: none)."""
        return keys.first_in_group(by_from, of_call & mask, n)

    sdp = m["sdp_port"].notna().to_numpy(dtype=bool) & invite
    offer = first_of_call(sdp & invite_request)
    answers = sdp & ~request & (status >= 180) & (status < 300)
    answer = first_of_call(answers)
    early = first_of_call(answers & (status == 183)) >= 0
    del sdp, answers
    # the media endpoints now, while few row-long arrays are held (peak memory)
    offered, answered = offer >= 0, answer >= 0
    sent = np.concatenate([offer[offered], answer[answered]])
    media = endpoints(m["sdp_address"].iloc[sent], m["sdp_port"].iloc[sent])
    # each call's offer and answer as codes of ``media`` (-1: none)
    offer_media, answer_media = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    offers = int(offered.sum())
    offer_media[offered], answer_media[answered] = media.codes[:offers], media.codes[offers:]

    # the cause: Q.850 Reasons first, then the first in time, of the final response, the
    # caller's CANCEL and BYE (From tag) and the callee's BYE (the caller's tag in To)
    reasons = m["reason_protocol"].notna().to_numpy(dtype=bool)
    ending = (~request & (status >= 200) & invite) | (
        request & keys.holds(m["method"], ("CANCEL", "BYE"))
    )
    said = np.flatnonzero(fresh & reasons & ending)
    by_to_said = said[request[said]]
    said_call = np.concatenate([by_from[said], by_to[by_to_said]])
    said_row = np.concatenate([said, by_to_said])
    protocol = m["reason_protocol"]
    not_q850 = ~keys.per_category(protocol, is_q850)
    ts = keys.ns(m["ts"])
    order = np.lexsort((ts[said_row], not_q850[keys.codes_at(protocol, said_row)]))
    said_call, said_row = said_call[order], said_row[order]
    cause = keys.take(said_row, keys.first_in_group(said_call, said_call >= 0, n))

    # the software on each side: the first INVITE's User-Agent, the final response's Server
    # (its User-Agent when it sends no Server)
    agent = first_of_call(invite_request)
    final = first_of_call(~request & (status >= 200) & invite)
    server, user_agent = m["server"], m["user_agent"]
    server_at, agent_at = keys.codes_at(server, final), keys.codes_at(user_agent, final)
    agent_at = np.where(agent_at >= 0, agent_at + len(server.cat.categories), -1)
    responder = np.where(server_at >= 0, server_at, agent_at)
    agents = server.cat.categories.append(user_agent.cat.categories)

    return {
        "offered_codecs": _texts(m["sdp_codecs"], offer),
        "offer_media": keys.categorical(media.categories, offer_media),
        "answered_codecs": _texts(m["sdp_codecs"], answer),
        "answer_media": keys.categorical(media.categories, answer_media),
        "early_media": early,
        "cause_protocol": _texts(protocol, cause),
        "cause": m["reason_cause"].array.take(cause, allow_fill=True),
        "cause_text": _texts(m["reason_text"], cause),
        "caller_agent": _texts(user_agent, agent),
        "responder_agent": keys.categorical(agents, responder),
    }
