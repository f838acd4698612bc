"""Build ``schema.MESSAGES`` frames from compact message specs, for analysis tests.

The analysis stage starts from the messages table, so its tests describe a capture as a list
of :func:`msg` rows (fixed times and addresses) instead of building packets: each rule gets a
capture of a few lines that says exactly what is on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from sipstats import schema
from sipstats.capture.summary import InputSummary
from sipstats.messages import Capture

T0 = pd.Timestamp("2023-11-14 22:13:20", tz="UTC")
UAC = ("10.0.0.1", 5060)
UAS = ("10.0.0.2", 5060)
CALLER = "sip:alice@example.com"
CALLEE = "sip:bob@example.com"

_REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    302: "Moved Temporarily",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    500: "Server Internal Error",
    503: "Service Unavailable",
    600: "Busy Everywhere",
    603: "Decline",
}


def msg(
    t: float,
    what: str | int,
    *,
    call_id: str = "call-1",
    cseq: int = 1,
    cseq_method: str | None = None,
    branch: str = "z9hG4bK-1",
    src: tuple[str, int] | None = None,
    dst: tuple[str, int] | None = None,
    from_tag: str | None = "ft1",
    to_tag: str | None = None,
    from_uri: str = CALLER,
    to_uri: str = CALLEE,
    request_uri: str | None = None,
    reason: str | None = None,
    retry_after: int | None = None,
    retry_after_raw: str | None = None,
    expires: int | None = None,
    min_expires: int | None = None,
    has_auth: bool = False,
    reason_header: tuple[str, int | None, str] | None = None,
    sdp: tuple[str, int, str] | None = None,
    via_count: int = 1,
    x_cid: str | None = None,
    charging_vector: str | None = None,
) -> dict[str, Any]:
    """One message row at ``T0 + t`` seconds: ``what`` is a method (request) or a status code.

    Requests go UAC -> UAS and responses UAS -> UAC unless ``src``/``dst`` say otherwise;
    ``cseq_method`` defaults to the request's method, and must be given for responses
    unless it is INVITE.
    """
    is_request = isinstance(what, str)
    if src is None:
        src = UAC if is_request else UAS
    if dst is None:
        dst = UAS if is_request else UAC
    status = None if is_request else int(what)
    return {
        "ts": T0 + pd.Timedelta(seconds=t),
        "file": "test.pcap",
        "frame": 0,
        "src": src[0],
        "sport": src[1],
        "dst": dst[0],
        "dport": dst[1],
        "transport": "udp",
        "encap": "",
        "is_request": is_request,
        "method": what if is_request else None,
        "status": status,
        "reason": None if is_request else (reason or _REASONS.get(int(what), "Whatever")),
        "call_id": call_id,
        "cseq": cseq,
        "cseq_method": cseq_method or (what if is_request else "INVITE"),
        "branch": branch,
        "via_count": via_count,
        "from_tag": from_tag,
        "to_tag": to_tag,
        "from_uri": from_uri,
        "to_uri": to_uri,
        "request_uri": (request_uri or to_uri) if is_request else None,
        "user_agent": None,
        "server": None,
        "retry_after": retry_after,
        "retry_after_raw": retry_after_raw
        if retry_after_raw is not None
        else (None if retry_after is None else str(retry_after)),
        "expires": expires,
        "min_expires": min_expires,
        "has_auth": has_auth,
        "content_length": 0,
        "size": 400,
        "fragmented": False,
        "segments": 1,
        # RFC 3326 Reason (protocol, cause, text) and the SDP summary (address, port, codecs)
        **dict(
            zip(
                ("reason_protocol", "reason_cause", "reason_text"),
                reason_header or (None,) * 3,
                strict=True,
            )
        ),
        **dict(zip(("sdp_address", "sdp_port", "sdp_codecs"), sdp or (None,) * 3, strict=True)),
        "x_cid": x_cid,
        "x_call_id": None,
        "charging_vector": charging_vector,
        "duplicate": False,
    }


def messages(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A frame conforming to ``schema.MESSAGES``; frame numbers follow the list order."""
    rows = list(rows)
    if not rows:
        return schema.empty(schema.MESSAGES)
    df = pd.DataFrame(rows)
    df["frame"] = range(1, len(df) + 1)
    return schema.conform(df, schema.MESSAGES)


def capture(rows: Iterable[dict[str, Any]]) -> Capture:
    """A capture holding exactly ``rows`` (one packet per message)."""
    df = messages(rows)
    summary = InputSummary(file="test.pcap", format="pcap", packets=len(df), sip_messages=len(df))
    return Capture(messages=df, inputs=[summary])


def invite_call(
    call_id: str,
    final: int,
    *,
    t: float = 0.0,
    ringing: bool = True,
    bye_after: float | None = 2.0,
    branch: str | None = None,
    retry_after: int | None = None,
) -> list[dict[str, Any]]:
    """A plain call: INVITE, 100, optional 180, final, ACK, and BYE/200 when answered."""
    b = branch or f"z9hG4bK-{call_id}"
    ids = {"call_id": call_id, "from_tag": f"f-{call_id}"}
    rows = [
        msg(t, "INVITE", branch=b, **ids),
        msg(t + 0.01, 100, branch=b, **ids),
    ]
    if ringing:
        rows.append(msg(t + 0.1, 180, branch=b, to_tag=f"t-{call_id}", **ids))
    rows.append(
        msg(t + 1.0, final, branch=b, to_tag=f"t-{call_id}", retry_after=retry_after, **ids)
    )
    if final >= 300:
        rows.append(msg(t + 1.01, "ACK", branch=b, to_tag=f"t-{call_id}", **ids))
    else:
        rows.append(msg(t + 1.01, "ACK", branch=f"{b}-ack", to_tag=f"t-{call_id}", **ids))
        if bye_after is not None:
            tb = t + 1.0 + bye_after
            by = {"branch": f"{b}-bye", "cseq": 2, "to_tag": f"t-{call_id}", **ids}
            rows.append(msg(tb, "BYE", **by))
            rows.append(msg(tb + 0.005, 200, cseq_method="BYE", **by))
    return rows
