"""Small analysed-messages and calls frames for the retry and breakdown tests.

``Attempt`` describes one INVITE call (first INVITE, final response, Retry-After);
:func:`frames` turns a list of them into a calls table (``schema.CALLS``) and an analysed
messages table (``schema.MESSAGES`` + transaction, retransmission, status_class, category,
...), with fixed times from ``T0`` so that gaps are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sipstats import schema

T0 = pd.Timestamp("2023-11-14 22:13:20", tz="UTC")
UAC = "10.0.0.1:5060"
UAS = "10.0.0.2:5060"

#: Category per class used by the fixtures (the catalogue's real categories live elsewhere).
_CATEGORY = {
    1: "provisional",
    2: "success",
    3: "redirection",
    4: "client error",
    5: "server error",
    6: "global failure",
}

ANALYZED = {
    "transaction": "int64",
    "retransmission": "bool",
    "challenge": "bool",
    "client_leg": "bool",
    "status_class": "category",
    "category": "category",
    "registered": "boolean",
    "catalogue_reason": "category",
    "description": "category",
}


@dataclass
class Attempt:
    """One INVITE call: times in seconds after ``T0``."""

    call_id: str
    caller: str = "sip:alice@example.com"
    target: str = "sip:bob@example.com"
    invite_s: float = 0.0
    status: int | None = None
    final_s: float | None = None
    retry_after_raw: str | None = None
    retry_after: int | None = None
    src: str = UAC
    dst: str = UAS
    from_tag: str = ""
    copies: int = 1  # packets of the final response (copies - 1 retransmissions)
    method: str = "INVITE"


def _split(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host.strip("[]"), int(port)


def _ts(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds, unit="s")


def _utc(df: pd.DataFrame, table: schema.Schema) -> pd.DataFrame:
    """Timestamp columns as UTC even when every value is NaT."""
    for name, (dtype, _) in table.items():
        if dtype == schema.UTC_TS and name in df:
            df[name] = pd.to_datetime(df[name], utc=True)
    return df


def _message(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(schema.MESSAGES)
    row.update(
        file="fixture.pcap",
        via_count=1,
        has_auth=False,
        size=400,
        fragmented=False,
        segments=1,
        transport="udp",
        encap="",
        retransmission=False,
        challenge=False,
        client_leg=True,
        registered=True,
    )
    row.update(values)
    return row


def messages_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Analysed messages frame from row dicts (missing values are NA), frames numbered 1..n."""
    if not rows:
        frame = schema.empty(schema.MESSAGES)
        return frame.assign(**{c: pd.Series(dtype=d) for c, d in ANALYZED.items()})
    df = pd.DataFrame(rows).sort_values("ts", kind="stable").reset_index(drop=True)
    df["frame"] = range(1, len(df) + 1)
    status = df["status"].astype("Int16")
    cls = status // 100
    df["status_class"] = (cls.astype("str") + "xx").where(status.notna())
    df["category"] = cls.map(_CATEGORY).where(status.notna())
    df["catalogue_reason"] = df["reason"]
    df["description"] = df["reason"]
    df["transaction"] = df.groupby(["call_id", "cseq_method", "branch"], sort=False).ngroup()
    out = schema.conform(_utc(df, schema.MESSAGES), schema.MESSAGES)
    for column, dtype in ANALYZED.items():
        out[column] = df[column].astype(dtype)
    return out


def frames(
    attempts: list[Attempt], extra_messages: Sequence[dict[str, Any]] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calls, messages) for the attempts; calls are numbered in order of the list."""
    rows: list[dict[str, Any]] = [_message(**extra) for extra in extra_messages]
    calls = []
    for number, a in enumerate(attempts):
        tag = a.from_tag or f"tag-{a.call_id}"
        branch = f"z9hG4bK-{a.call_id}"
        (src, sport), (dst, dport) = _split(a.src), _split(a.dst)
        common = {
            "call_id": a.call_id,
            "cseq": 1,
            "cseq_method": a.method,
            "branch": branch,
            "from_tag": tag,
            "from_uri": a.caller,
            "to_uri": a.target,
        }
        rows.append(
            _message(
                ts=_ts(a.invite_s),
                src=src,
                sport=sport,
                dst=dst,
                dport=dport,
                is_request=True,
                method=a.method,
                request_uri=a.target,
                **common,
            )
        )
        for copy in range(a.copies if a.status is not None else 0):
            rows.append(
                _message(
                    ts=_ts(a.final_s + copy * 0.5),
                    src=dst,
                    sport=dport,
                    dst=src,
                    dport=sport,
                    is_request=False,
                    status=a.status,
                    reason=f"Reason {a.status}",
                    to_tag=f"tt-{a.call_id}",
                    retry_after=a.retry_after,
                    retry_after_raw=a.retry_after_raw,
                    retransmission=copy > 0,
                    **common,
                )
            )
        answered = a.status is not None and 200 <= a.status < 300
        calls.append(
            {
                "call": number,
                "call_id": a.call_id,
                "from_tag": tag,
                "caller": a.caller,
                "callee": a.target,
                "request_uri": a.target,
                "src": a.src,
                "dst": a.dst,
                "start_ts": _ts(a.invite_s),
                "ringing_ts": pd.NaT,
                "answer_ts": _ts(a.final_s) if answered else pd.NaT,
                "final_ts": _ts(a.final_s) if a.status is not None else pd.NaT,
                "end_ts": pd.NaT,
                "pdd_ms": float("nan"),
                "answer_ms": float("nan"),
                "duration_s": float("nan"),
                "final_status": a.status,
                "final_reason": None if a.status is None else f"Reason {a.status}",
                "outcome": "answered" if answered else "rejected",
                "invites": 1,
                "auth_challenges": 0,
                "to_tags": 1,
                "cancelled": False,
                "has_bye": False,
                "answer_missing": False,
            }
        )
    # Columns the calls table may gain later are NA here.
    calls_df = _utc(pd.DataFrame(calls).reindex(columns=list(schema.CALLS)), schema.CALLS)
    calls_df = schema.conform(calls_df, schema.CALLS) if calls else schema.empty(schema.CALLS)
    return calls_df, messages_frame(rows)
