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

from sipstats.analyze.transactions import endpoints

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


def _keyed(frame: pd.DataFrame, tag: str = "from_tag") -> pd.DataFrame:
    """``frame`` with a plain-string ``_key`` of Call-ID and the caller's tag."""
    key = frame["call_id"].astype("str") + "\x00" + frame[tag].astype("str")
    return frame.assign(_key=key.to_numpy())


def _first(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The first row of each ``_key`` (frames are in time order)."""
    return frame.drop_duplicates("_key").set_index("_key")[columns]


def call_media(messages: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """One row per call (index aligned with ``calls``) holding :data:`COLUMNS`."""
    m = messages[~messages["retransmission"].to_numpy(dtype=bool)]
    invite = (m["cseq_method"] == "INVITE").to_numpy(dtype=bool)
    sdp = m["sdp_port"].notna().to_numpy(dtype=bool) & invite
    m = m.assign(_media=endpoints(m["sdp_address"], m["sdp_port"]))
    request = m["is_request"].to_numpy(dtype=bool)
    status = m["status"].to_numpy(dtype="float64", na_value=np.nan)

    offers = _first(
        _keyed(m[sdp & request & (m["method"] == "INVITE").to_numpy()]), ["sdp_codecs", "_media"]
    )
    answers_mask = sdp & ~request & (status >= 180) & (status < 300)
    answers = _first(_keyed(m[answers_mask]), ["sdp_codecs", "_media"])
    early = set(_keyed(m[answers_mask & (status == 183)])["_key"])

    reasons = m["reason_protocol"].notna().to_numpy(dtype=bool)
    ending = (~request & (status >= 200) & invite) | (
        request & m["method"].isin(("CANCEL", "BYE")).to_numpy(dtype=bool)
    )
    said = m[reasons & ending]
    said = pd.concat([_keyed(said), _keyed(said[said["is_request"]], tag="to_tag")])
    said = said.assign(_q850=(said["reason_protocol"].astype("str").str.upper() != "Q.850"))
    said = said.sort_values(["_q850", "ts"], kind="stable")
    causes = _first(said, ["reason_protocol", "reason_cause", "reason_text"])

    # the software on each side: the first INVITE's User-Agent, the final response's Server
    # (its User-Agent when it sends no Server)
    agents = _first(_keyed(m[request & (m["method"] == "INVITE").to_numpy()]), ["user_agent"])
    finals = m[~request & (status >= 200) & invite]
    finals = finals.assign(
        _agent=finals["server"].astype("object").fillna(finals["user_agent"].astype("object"))
    )
    responders = _first(_keyed(finals), ["_agent"])

    key = _keyed(calls)["_key"]
    offer, answer, cause, agent, responder = (
        t.reindex(key.to_numpy()) for t in (offers, answers, causes, agents, responders)
    )
    return pd.DataFrame(
        {
            "offered_codecs": offer["sdp_codecs"].to_numpy(),
            "offer_media": offer["_media"].to_numpy(),
            "answered_codecs": answer["sdp_codecs"].to_numpy(),
            "answer_media": answer["_media"].to_numpy(),
            "early_media": key.isin(early).to_numpy(dtype=bool),
            "cause_protocol": cause["reason_protocol"].to_numpy(),
            "cause": pd.array(cause["reason_cause"].to_numpy(), dtype="Int16"),
            "cause_text": cause["reason_text"].to_numpy(),
            "caller_agent": agent["user_agent"].to_numpy(),
            "responder_agent": responder["_agent"].to_numpy(),
        },
        index=calls.index,
    )
