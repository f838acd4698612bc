"""Analysis as a whole: the JSON form, the notebook view, and a scapy capture end to end."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from sipstats import schema
from sipstats.analyze import analyze
from sipstats.messages import read_capture
from sipstats.schema import REPORT_ID
from tests import sipfactory as sf
from tests.analysis_fixtures import capture, invite_call, msg

HOSTILE = "<script>alert(1)</script>"


def test_to_dict_has_the_documented_shape_and_is_strict_json() -> None:
    rows = invite_call("a", 200) + invite_call("b", 503, t=5, retry_after=10)
    busy = invite_call("c", 486, t=9, retry_after=60)
    busy.append({**busy[3], "ts": busy[3]["ts"] + pd.Timedelta(seconds=0.5)})  # resent 486
    report = analyze(capture(rows + busy)).to_dict()
    text = json.dumps(report, allow_nan=False)  # raises on NaN
    assert json.loads(text) == report
    assert report["schema"] == REPORT_ID
    assert set(report) >= {
        "summary",
        "requests_by_method",
        "responses_by_code",
        "calls",
        "retry_after",
        "metrics",
        "inputs",
    }
    summary = report["summary"]
    assert summary["sip_messages"] == summary["requests"] + summary["responses"]
    assert (summary["calls"], summary["retransmissions"]) == (3, 1)
    assert report["requests_by_method"]["INVITE"] == {
        "count": 3,
        "unique": 3,
        "retransmission_ratio": 0.0,
    }
    assert report["responses_by_code"]["486"] == {
        "count": 2,
        "unique": 1,
        "share": 0.1,  # of the 10 unique responses
        "retransmission_ratio": 0.5,
        "reason": "Busy Here",
        "class": "4xx",
        "category": "callee-busy",
    }
    calls = report["calls"]
    assert calls["by_final_code"] == {"200": 1, "486": 1, "503": 1}
    assert calls["by_outcome"]["server_failure"] == 1
    assert list(calls["by_outcome"]) == list(schema.OUTCOMES)
    assert set(calls["pdd_ms"]) >= {"p50", "p90", "p99"}
    # Retry-After counts unique responses: the resent 486 weighs once.
    assert report["retry_after"]["486"]["values_s"] == {"60": 1}
    assert report["retry_after"]["503"]["with_retry_after"] == 1
    assert report["inputs"][0]["file"] == "test.pcap"
    assert set(report["metrics"]) >= {"SER", "SEER", "ISA", "SCR", "ASR", "NER", "ACD", "PDD"}


def test_by_code_keeps_every_phrase_sent() -> None:
    rows = invite_call("a", 500) + invite_call("b", 500, t=3)
    rows[3] = {**rows[3], "reason": "Service Unavailable"}
    table = analyze(capture(rows)).by_code.set_index("code")
    assert table.loc["500", "reason"] == "Server Internal Error"
    assert table.loc["500", "reasons_sent"] == "Server Internal Error|Service Unavailable"


def test_repr_html_escapes_capture_text() -> None:
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-h"),
        msg(0.1, 499, branch="z9hG4bK-h", to_tag="t", reason=HOSTILE),
    ]
    a = analyze(capture(rows))
    a.capture.inputs[0].file = HOSTILE
    page = a._repr_html_()
    assert HOSTILE not in page
    assert page.count("&lt;script&gt;") == 2
    assert "<td>rejected</td>" in page
    assert "<td>SER</td><td>0</td>" in page


def test_repr_is_one_line() -> None:
    a = analyze(capture(invite_call("a", 200)))
    assert repr(a) == (
        "<Analysis 7 SIP messages, 3 transactions, 1 calls, 0 registrations, 0 retransmissions>"
    )


def test_timeline_counts_unique_responses_per_class() -> None:
    rows = invite_call("a", 200) + invite_call("b", 486, t=90)
    a = analyze(capture(rows))
    table = a.timeline()
    assert list(table.columns) == ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "challenges"]
    assert table["4xx"].sum() == 1
    assert a.interval == "2s"  # "auto": ~91 s of calls in at most 60 round buckets
    assert len(table) == 46
    assert len(a.timeline("1min")) == 2
    assert a.timeline("auto").equals(table)


def test_timeline_and_end_to_end_calls_are_computed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reports read them several times: computed on first use, again only when the table
    they come from is another one; what a caller changes in its copy stays its own. The
    end-to-end calls come made by the analysis, which needed them; the cache is no
    constructor argument."""
    from sipstats.analyze import b2bua, breakdown

    a = analyze(capture(invite_call("a", 200) + invite_call("b", 486, t=90)))
    made: list[str] = []
    monkeypatch.setattr(breakdown, "timeline", _counted(breakdown.timeline, made, "timeline"))
    monkeypatch.setattr(b2bua, "end_to_end", _counted(b2bua.end_to_end, made, "calls"))
    first = a.timeline()
    first["4xx"] = 99
    assert a.timeline()["4xx"].sum() == 1
    assert len(a.timeline("1min")) == 2
    calls = a.end_to_end_calls
    calls["pdd_ms"] = -1.0
    assert (a.end_to_end_calls["pdd_ms"] != -1.0).all()
    assert made == ["timeline", "timeline"]
    assert a.replaced(messages=None).end_to_end_calls.equals(a.end_to_end_calls)
    assert made == ["timeline", "timeline"]  # replaced keeps what was derived from its tables
    assert dataclasses.replace(a, messages=None).end_to_end_calls.equals(a.end_to_end_calls)
    assert made == ["timeline", "timeline", "calls"]  # a plain copy starts without
    a.calls = a.calls.iloc[:1]
    assert len(a.end_to_end_calls) == 1
    assert made[-1] == "calls"
    assert "_computed" not in inspect.signature(type(a)).parameters


def test_a_replaced_table_is_not_held_by_what_was_derived_from_it() -> None:
    """The copy keeps no derived table whose source it replaced: once the original analysis
    is dropped, the old calls and their end-to-end calls are freed, not held until read."""
    import gc
    import weakref

    from sipstats.analyze import _END_TO_END

    a = analyze(capture(invite_call("a", 200) + invite_call("b", 486, t=90)))
    old_calls = weakref.ref(a.calls)
    old_end_to_end = weakref.ref(a._computed[_END_TO_END][1])
    b = a.replaced(calls=a.calls.iloc[:1].copy())
    del a
    gc.collect()
    assert old_calls() is None
    assert old_end_to_end() is None
    assert len(b.end_to_end_calls) == 1


def _counted(
    function: Callable[..., pd.DataFrame], made: list[str], name: str
) -> Callable[..., pd.DataFrame]:
    def counting(*args: object, **kwargs: object) -> pd.DataFrame:
        made.append(name)
        return function(*args, **kwargs)

    return counting


def test_scapy_capture_end_to_end(tmp_path: Path) -> None:
    """Digest challenge, answered INVITE with a retransmitted 200 OK, BYE: one answered call."""
    common = {"call_id": "e2e@uac", "from_tag": "ft"}
    invite1 = {"cseq": 1, "branch": "z9hG4bK-1", "cseq_method": "INVITE", **common}
    invite2 = {"cseq": 2, "branch": "z9hG4bK-2", "cseq_method": "INVITE", **common}
    auth = [("Proxy-Authorization", 'Digest username="alice", response="x"')]
    packets = [
        sf.udp(sf.sip_request("INVITE", **invite1), 0.0),
        sf.udp(
            sf.sip_response(407, "Proxy Authentication Required", to_tag="px", **invite1),
            0.01,
            sf.UAS,
            sf.UAC,
        ),
        sf.udp(sf.sip_request("ACK", to_tag="px", **{**invite1, "cseq_method": "ACK"}), 0.02),
        sf.udp(sf.sip_request("INVITE", headers=auth, **invite2), 0.1),
        sf.udp(sf.sip_response(180, "Ringing", to_tag="tt", **invite2), 0.3, sf.UAS, sf.UAC),
        sf.udp(sf.sip_response(200, "OK", to_tag="tt", **invite2), 1.1, sf.UAS, sf.UAC),
        sf.udp(sf.sip_response(200, "OK", to_tag="tt", **invite2), 1.6, sf.UAS, sf.UAC),
        sf.udp(sf.sip_request("ACK", to_tag="tt", cseq=2, branch="z9hG4bK-3", **common), 1.61),
        sf.udp(sf.sip_request("BYE", to_tag="tt", cseq=3, branch="z9hG4bK-4", **common), 4.1),
        sf.udp(
            sf.sip_response(
                200, "OK", to_tag="tt", cseq=3, cseq_method="BYE", branch="z9hG4bK-4", **common
            ),
            4.11,
            sf.UAS,
            sf.UAC,
        ),
    ]
    path = sf.write_pcap(tmp_path / "e2e.pcap", packets)
    a = analyze(read_capture([path]))
    report = a.to_dict()
    assert report["summary"]["packets"] == 10
    assert report["summary"]["retransmissions"] == 1
    unique_responses = sum(r["unique"] for r in report["responses_by_code"].values())
    assert report["responses_by_code"]["200"] == pytest.approx(
        {
            "count": 3,
            "unique": 2,
            "share": 2 / unique_responses,
            "retransmission_ratio": 1 / 3,
            "reason": "OK",
            "class": "2xx",
            "category": "success",
        }
    )
    (call,) = a.calls.to_dict("records")
    assert call["outcome"] == "answered"
    assert (call["invites"], call["auth_challenges"]) == (2, 1)
    assert call["pdd_ms"] == pytest.approx(300.0, abs=0.01)
    assert call["answer_ms"] == pytest.approx(1100.0, abs=0.01)
    assert call["duration_s"] == pytest.approx(3.0, abs=1e-5)
    assert report["metrics"]["SER"] == 100.0
