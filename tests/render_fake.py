"""A small hand-made ``Analysis`` per the team contract, for renderer unit tests.

Renderers only format what the analysis computed, so their unit tests feed them fixed tables
(including hostile text from "the capture") and check what comes out. End-to-end tests run
the real pipeline on captures built with :mod:`tests.sipfactory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.capture.summary import InputSummary

T0 = pd.Timestamp("2023-11-14 22:13:20", tz="UTC")
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = "=HYPERLINK(\"http://x\",\"y\")"
MARKUP = "[bold red]alarm[/bold red]"


@dataclass
class FakeCapture:
    messages: pd.DataFrame
    inputs: list[InputSummary]
    packets: int


@dataclass
class FakeAnalysis:
    capture: FakeCapture
    messages: pd.DataFrame
    transactions: pd.DataFrame
    calls: pd.DataFrame
    registrations: pd.DataFrame
    retries: pd.DataFrame
    by_code: pd.DataFrame
    by_method: pd.DataFrame
    by_class: pd.DataFrame
    by_category: pd.DataFrame
    by_peer: pd.DataFrame
    retry_after: pd.DataFrame
    early_retriers: pd.DataFrame
    storms: pd.DataFrame
    metrics: pd.DataFrame
    interval: str = "1min"
    data: dict[str, Any] = field(default_factory=dict)

    def timeline(self, interval: str | None = None) -> pd.DataFrame:
        index = pd.date_range(T0, periods=3, freq=interval or self.interval, name="bucket")
        return pd.DataFrame(
            {"1xx": [5, 3, 1], "2xx": [4, 2, 0], "3xx": [0, 0, 0], "4xx": [2, 1, 1],
             "5xx": [1, 0, 1], "6xx": [0, 1, 0]},
            index=index,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return self.data


def _calls() -> pd.DataFrame:
    n = 6
    calls = schema.empty(schema.CALLS).reindex(range(n))
    calls["call"] = np.arange(n)
    calls["call_id"] = [f"c{i}" for i in range(n)]
    calls["caller"] = [FORMULA, "sip:bob@a", "@SUM(1)", "sip:dave@a", "-1+2", "sip:eve@a"]
    calls["callee"] = "sip:x@b"
    calls["start_ts"] = [T0 + pd.Timedelta(seconds=10 * i) for i in range(n)]
    calls["pdd_ms"] = [120.0, 250.0, 90.0, np.nan, 400.0, 180.0]
    calls["answer_ms"] = [1200.0, np.nan, 2500.0, np.nan, np.nan, 900.0]
    calls["final_status"] = [200, 486, 200, 503, 480, 200]
    calls["final_reason"] = ["OK", SCRIPT, "OK", "Service Unavailable", "Temporarily Unavailable", "OK"]
    calls["outcome"] = ["answered", "busy", "answered", "server_failure", "unavailable", "answered"]
    return calls


def fake_analysis() -> FakeAnalysis:
    """An analysis of 6 calls with a 486 whose phrase is a script tag and hostile peer names."""
    inputs = InputSummary(file="evil<b>.pcap", format="pcap", packets=60, sip_messages=57)
    inputs.see_time(T0.value)
    inputs.see_time(T0.value + 150 * 10**9)
    inputs.anomaly("bad start line", 7, detail=SCRIPT)
    inputs.errors.append("truncated record at byte 4096")
    by_code = pd.DataFrame(
        {
            "code": ["100", "180", "200", "480", "486", "503"],
            "count": [6, 4, 5, 1, 2, 1],
            "unique": [6, 4, 4, 1, 1, 1],
            "retransmissions": [0, 0, 1, 0, 1, 0],
            "reason": ["Trying", "Ringing", "OK", "Temporarily Unavailable", "Busy Here",
                       "Service Unavailable"],
            "reasons_sent": ["Trying", "Ringing", "OK", MARKUP, SCRIPT, "Service Unavailable"],
            "status_class": ["1xx", "1xx", "2xx", "4xx", "4xx", "5xx"],
            "category": ["provisional", "provisional", "success", "callee-unavailable",
                         "callee-busy", "overload"],
            "registered": [True] * 6,
            "description": ["Trying desc", "Ringing desc", "OK desc", "480 desc",
                            "The callee is busy.", "503 desc"],
            "reason_zh": ["正在尝试", "振铃", "成功", "暂时不可用", "这里忙", "服务不可用"],
            "description_zh": ["d100", "d180", "d200", "d480", "被叫正忙。", "d503"],
        }
    )  # fmt: skip
    metrics = pd.DataFrame(
        {
            "name": ["SER", "SEER", "ISA", "ASR", "PDD", "SDT"],
            "value": [50.0, 83.3, 16.7, 50.0, 180.0, np.nan],
            "unit": ["%", "%", "%", "%", "ms", "s"],
            "samples": [6, 6, 6, 6, 5, 0],
            "definition": ["SER def", "SEER def", "ISA def", "ASR def", "PDD def", "SDT def"],
            "reference": ["RFC 6076 §4.6", "RFC 6076 §4.7", "RFC 6076 §4.8", "operator KPI",
                          "operator KPI", "RFC 6076 §4.4"],
        }
    )  # fmt: skip
    messages = schema.empty(schema.MESSAGES).reindex(range(2))
    messages["ts"] = [T0, T0 + pd.Timedelta(seconds=1)]
    messages["is_request"] = [True, False]
    messages["user_agent"] = [IMG, None]
    messages["reason"] = [None, SCRIPT]
    messages["from_uri"] = [FORMULA, "sip:ok@a"]
    messages["status"] = pd.array([None, 486], dtype="Int16")
    retries = schema.empty(schema.RETRIES).reindex(range(1))
    retries["caller"] = ["@SUM(1)"]
    retries["status"] = pd.array([486], dtype="Int16")
    registrations = schema.empty(schema.REGISTRATIONS).reindex(range(3))
    registrations["outcome"] = ["registered", "registered", "failed"]
    data = {
        "schema": "sipstats.report/1",
        "summary": {"packets": 60, "sip_messages": 57, "requests": 38, "responses": 19,
                    "retransmissions": 2, "malformed": 1, "calls": 6, "transactions": 14},
        "calls": {"total": 6, "by_outcome": {"answered": 3, "busy": 1, "server_failure": 1,
                                             "unavailable": 1},
                  "by_final_code": {"200": 3, "480": 1, "486": 1, "503": 1},
                  "pdd_ms": {"p50": 180.0, "p90": 340.0, "p99": 394.0},
                  "answer_ms": {"p50": 1200.0, "p90": 2240.0, "p99": 2474.0}},
    }  # fmt: skip
    return FakeAnalysis(
        capture=FakeCapture(messages=messages, inputs=[inputs], packets=60),
        messages=messages,
        transactions=schema.empty(schema.TRANSACTIONS),
        calls=_calls(),
        registrations=registrations,
        retries=retries,
        by_code=by_code,
        by_method=pd.DataFrame(
            {"method": ["INVITE", "ACK", "BYE"], "count": [8, 6, 3], "unique": [6, 6, 3],
             "retransmissions": [2, 0, 0], "retransmission_ratio": [0.25, 0.0, 0.0]}
        ),  # fmt: skip
        by_class=pd.DataFrame(
            {"status_class": ["1xx", "2xx", "4xx", "5xx"], "count": [10, 5, 3, 1],
             "unique": [10, 4, 2, 1], "share": [10 / 17, 4 / 17, 2 / 17, 1 / 17]}
        ),  # fmt: skip
        by_category=pd.DataFrame(
            {"category": ["callee-busy", "callee-unavailable", "overload"], "count": [2, 1, 1],
             "unique": [1, 1, 1], "share": [1 / 3, 1 / 3, 1 / 3]}
        ),  # fmt: skip
        by_peer=pd.DataFrame(
            {"responder": ["10.0.0.2:5060"], "requester": [IMG], "failures": [3],
             "top_code": ["486"], "codes": ["486x1|480x1|503x1"]}
        ),  # fmt: skip
        retry_after=pd.DataFrame(
            {"code": ["480", "486", "503"], "responses": [1, 1, 1], "with_retry_after": [1, 1, 0],
             "values": ["300x1", "60x1", ""], "retried": [1, 1, 0], "honoured": [1, 0, 0],
             "too_early": [0, 1, 0], "without_retry_after_retried": [0, 0, 0],
             "not_retried": [0, 0, 1]}
        ),  # fmt: skip
        early_retriers=pd.DataFrame(
            {"caller": [MARKUP], "retries_too_early": [1], "retries": [1], "worst_gap_s": [12.5]}
        ),
        storms=pd.DataFrame(
            {"start_ts": pd.Series([], dtype=schema.UTC_TS),
             "end_ts": pd.Series([], dtype=schema.UTC_TS), "target": pd.Series([], dtype="str"),
             "retries": pd.Series([], dtype="int64"), "early_retries": pd.Series([], dtype="int64"),
             "callers": pd.Series([], dtype="int64")}
        ),  # fmt: skip
        metrics=metrics,
        data=data,
    )
