"""Findings: each detector on a capture whose truth is known by construction, and its minimums.

Calls come from :func:`tests.analysis_fixtures.invite_call` (INVITE at ``t``, final at
``t + 1``), one caller per call so that no detector sees retries it was not told about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sipstats.analyze import analyze
from sipstats.analyze.findings import (
    BURST_MIN_FAILURES,
    _bursts,
    _code_texts,
    _endpoints,
    _top,
    describe,
)
from sipstats.analyze.retries import UriKeys
from sipstats.analyze.transactions import endpoints
from sipstats.messages import read_capture
from sipstats.render import RENDERERS, RenderOptions
from tests.analysis_fixtures import T0, capture, invite_call, msg
from tests.sipfactory import write_pcap
from tests.test_capture_tunnels import icmp_packets


def _traffic(seconds: int, final_at: Any, per_second: int = 2) -> list[dict[str, Any]]:
    """``per_second`` calls a second for ``seconds``; ``final_at(t)`` is each call's final."""
    rows: list[dict[str, Any]] = []
    for i in range(seconds * per_second):
        t = i / per_second
        call = f"c{i}"
        for row in invite_call(call, final_at(t), t=t, bye_after=0.5):
            row["from_uri"] = f"sip:user{i}@example.com"
            rows.append(row)
    return sorted(rows, key=lambda r: r["ts"])


def _outage(t: float) -> int:
    """200 OK, except 503 for calls whose final comes from 20 s to 35 s."""
    return 503 if 20 <= t + 1.0 < 35 else 200


def test_a_503_outage_is_one_burst_with_onset_end_and_who_was_hit() -> None:
    analysis = analyze(capture(_traffic(60, _outage)), interval="5s")
    findings = analysis.findings
    assert findings["kind"].tolist() == ["failure_burst"]
    burst = findings.iloc[0]
    bucket = pd.Timedelta("5s")
    assert abs(burst["start"] - (T0 + pd.Timedelta(seconds=20))) <= bucket
    assert abs(burst["end"] - (T0 + pd.Timedelta(seconds=35))) <= bucket
    assert burst["severity"] == "high"
    assert burst["subject"] == "503 from 10.0.0.2:5060"
    evidence = burst["evidence"]
    assert evidence["failures"] == 30
    assert evidence["baseline_failures"] == 0
    assert evidence["responders"] == {"10.0.0.2:5060": 30}
    assert evidence["callers"] == 30
    assert evidence["ongoing"] is False
    assert "Burst of 503 Service Unavailable" in burst["text"]
    assert "503 Service Unavailable 激增" in describe(burst.to_dict(), "zh")


def test_a_clean_run_has_no_finding_and_every_report_says_so() -> None:
    analysis = analyze(capture(_traffic(30, lambda t: 200)))
    assert analysis.findings.empty
    assert list(analysis.findings.columns) == [
        "kind", "start", "end", "subject", "evidence", "severity", "text"
    ]  # fmt: skip
    options = RenderOptions()
    assert "No anomaly found." in RENDERERS["text"].render(analysis, options)  # type: ignore[misc]
    assert "No anomaly found." in RENDERERS["md"].render(analysis, options)  # type: ignore[misc]
    zh = RENDERERS["html"].render(analysis, RenderOptions(lang="zh"))  # type: ignore[misc]
    assert "未发现异常。" in zh
    assert json.loads(RENDERERS["json"].render(analysis, options))["findings"] == []  # type: ignore[misc]


def test_a_handful_of_failures_is_not_an_incident() -> None:
    few = BURST_MIN_FAILURES - 1

    def final(t: float) -> int:
        return 503 if 20 <= t < 20 + few / 2 else 200

    analysis = analyze(capture(_traffic(60, final)), interval="5s")
    assert analysis.findings.empty


def test_failures_all_along_are_a_level_not_a_burst() -> None:
    analysis = analyze(capture(_traffic(30, lambda t: 503 if int(t * 2) % 2 else 200)))
    assert analysis.findings["kind"].tolist() == ["failure_level"]
    # 30 × 503 among 90 final responses: 30 × 200 to INVITE, 30 × 200 to BYE
    assert analysis.findings.iloc[0]["evidence"]["share"] == pytest.approx(1 / 3)


def test_transactions_without_a_final_response_are_timeouts() -> None:
    rows = _traffic(40, lambda t: 200)
    for n in range(4):
        rows.append(msg(1.0 + n, "INVITE", call_id=f"lost{n}", branch=f"z9hG4bK-lost{n}"))
    rows.append(msg(39.0, "INVITE", call_id="late", branch="z9hG4bK-late"))  # may still be pending
    analysis = analyze(capture(sorted(rows, key=lambda r: r["ts"])))
    assert analysis.findings["kind"].tolist() == ["timeouts"]
    evidence = analysis.findings.iloc[0]["evidence"]
    assert (evidence["no_final"], evidence["responses_408"]) == (4, 0)
    assert evidence["servers"] == {"10.0.0.2:5060": 4}


def _challenged_call(n: int, t: float, challenges: int) -> list[dict[str, Any]]:
    """A call whose INVITE is challenged ``challenges`` times, credentials or not."""
    ids = {"call_id": f"auth{n}", "from_tag": f"fa{n}", "from_uri": f"sip:u{n}@example.com"}
    rows = []
    for k in range(challenges):
        branch = f"z9hG4bK-auth{n}-{k}"
        at = t + k * 0.2
        rows.append(msg(at, "INVITE", cseq=k + 1, branch=branch, has_auth=k > 0, **ids))
        rows.append(msg(at + 0.05, 401, cseq=k + 1, branch=branch, to_tag=f"ta{n}{k}", **ids))
        rows.append(msg(at + 0.06, "ACK", cseq=k + 1, branch=branch, to_tag=f"ta{n}{k}", **ids))
    return rows


def test_credentials_refused_again_and_again_are_an_auth_loop() -> None:
    rows = _traffic(10, lambda t: 200)
    rows += _challenged_call(1, 2.0, 3) + _challenged_call(2, 4.0, 2)
    rows += _challenged_call(3, 6.0, 1)  # one challenge then silence: no loop
    analysis = analyze(capture(sorted(rows, key=lambda r: r["ts"])))
    loops = analysis.findings[analysis.findings["kind"] == "auth_loop"]
    assert len(loops) == 1
    assert loops.iloc[0]["evidence"]["calls"] == 2
    assert loops.iloc[0]["evidence"]["challenges"] == 5


def test_post_dial_delay_that_grows_in_a_window_is_reported() -> None:
    rows: list[dict[str, Any]] = []
    for i in range(120):
        t = i / 2
        slow = 30 <= t < 40
        call = invite_call(f"p{i}", 200, t=t, bye_after=0.5)
        ringing = next(r for r in call if r["status"] == 180)
        ringing["ts"] = T0 + pd.Timedelta(seconds=t + (0.9 if slow else 0.1))
        rows += call
    analysis = analyze(capture(sorted(rows, key=lambda r: r["ts"])), interval="5s")
    assert analysis.findings["kind"].tolist() == ["pdd_degradation"]
    finding = analysis.findings.iloc[0]
    assert finding["evidence"]["calls"] == 20
    assert finding["evidence"]["pdd_p50_ms"] == pytest.approx(900)
    assert finding["start"] == T0 + pd.Timedelta(seconds=30)


def test_json_findings_are_first_with_iso_utc_times() -> None:
    analysis = analyze(capture(_traffic(60, _outage)), interval="5s")
    data = analysis.to_dict()
    assert list(data)[:2] == ["schema", "findings"]
    (burst,) = data["findings"]
    assert burst["start"].endswith("Z")
    assert burst["start"].startswith("2023-11-14T22:13:")
    assert burst["kind"] == "failure_burst"
    json.dumps(data, allow_nan=False)


def test_html_findings_link_to_elements_of_the_report() -> None:
    analysis = analyze(capture(_traffic(60, _outage)), interval="5s")
    page = RENDERERS["html"].render(analysis, RenderOptions())  # type: ignore[misc]
    assert page.index('id="findings"') < page.index('id="summary"')
    assert '<a href="#timeline">' in page
    assert 'id="timeline"' in page


def test_icmp_unreachable_for_sip_is_a_finding(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "icmp.pcap", icmp_packets())
    analysis = analyze(read_capture(path))
    assert analysis.findings["kind"].tolist() == ["icmp_unreachable"]
    finding = analysis.findings.iloc[0]
    assert finding["subject"] == "10.0.0.9:5060"
    assert finding["evidence"]["errors"] == 5
    assert finding["evidence"]["destination_count"] == 3
    assert pd.isna(finding["start"])
    assert "10.0.0.9:5060 (3)" in finding["text"]
    (listed,) = analysis.to_dict()["findings"]
    assert listed["start"] is None


def test_a_final_without_a_time_falls_in_no_burst_bucket() -> None:
    analysis = analyze(capture(_traffic(60, _outage)), interval="5s")
    m = analysis.report_messages
    step = pd.Timedelta("5s")
    first_503 = int(np.flatnonzero(m["status"].eq(503).fillna(False).to_numpy())[0])
    untimed = m.iloc[[first_503]].copy()
    untimed["ts"] = pd.Series([pd.NaT], dtype=m["ts"].dtype, index=untimed.index)
    with_untimed = pd.concat([m, untimed], ignore_index=True)
    assert _bursts(with_untimed, step, UriKeys()) == _bursts(m, step, UriKeys())


def test_top_ranks_ties_at_the_cut_by_text() -> None:
    values = pd.Series(list("dddddcccbbbaaae"), dtype="category")
    assert _top(values, n=3) == {"d": 5, "a": 3, "b": 3}
    assert _top(values, n=1) == {"d": 5}
    assert _top(values.astype("str"), n=3) == {"d": 5, "a": 3, "b": 3}
    assert _top(values.iloc[:0], n=3) == {}


def test_code_texts_are_three_digits_in_code_order_and_na_stays_na() -> None:
    texts = _code_texts(pd.Series([503, None, 99, 503], dtype="Int16", index=[4, 5, 6, 7]))
    assert list(texts.cat.categories) == ["099", "503"]
    assert texts.isna().tolist() == [False, True, False, False]
    assert texts.index.tolist() == [4, 5, 6, 7]


def test_endpoints_name_each_address_and_port_once() -> None:
    rows = pd.DataFrame(
        {
            "src": pd.Series(["10.0.0.2", "2001:db8::1", "10.0.0.2", None], dtype="category"),
            "sport": pd.array([5060, 5080, 5060, 5060], dtype="Int32"),
        }
    )
    named = _endpoints(rows, "src", "sport")
    assert named.astype("str").tolist()[:3] == [
        "10.0.0.2:5060",
        "[2001:db8::1]:5080",
        "10.0.0.2:5060",
    ]
    assert named.isna().tolist() == [False, False, False, True]
    rows.loc[2, "sport"] = pd.NA
    without_port = _endpoints(rows, "src", "sport")
    assert without_port.isna().tolist() == [False, False, True, True]
    assert without_port.value_counts().to_dict() == {"10.0.0.2:5060": 1, "[2001:db8::1]:5080": 1}


def test_endpoints_and_the_findings_name_no_endpoint_without_a_port() -> None:
    """One rule in :func:`endpoints`, which the findings' responders use: a row without a port
    has no endpoint (no ``address:0``). The analysis cannot be given such a row (the schema
    types ports as int32), so the rule is checked on a hand-built frame."""
    rows = pd.DataFrame(
        {
            "src": pd.Series(["10.0.0.2", "10.0.0.3"], dtype="category"),
            "sport": pd.array([5060, None], dtype="UInt16"),
        }
    )
    assert endpoints(rows["src"], rows["sport"]).isna().tolist() == [False, True]
    assert list(endpoints(rows["src"], rows["sport"]).categories) == ["10.0.0.2:5060"]
    responders = _endpoints(rows, "src", "sport")
    assert responders.isna().tolist() == [False, True]
    assert responders.index.equals(rows.index)
