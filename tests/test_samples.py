"""The committed sample captures, read by sipstats, agree with what SIPp recorded making them.

``sample_pcaps/expected.json`` comes from SIPp's own logs (``sample_pcaps/sipp_counts.py``):
messages written per method and status code, INVITE attempts and their finals, and every
caller's retry decision.  No number here is taken from sipstats.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

import sipstats
from tests.conftest import SAMPLES

EXPECTED: dict[str, Any] = json.loads((SAMPLES / "expected.json").read_text())
CALL_SAMPLES = sorted(f for f, e in EXPECTED.items() if "calls" in e)
RETRY_SAMPLES = sorted(f for f, e in EXPECTED.items() if e.get("retry_decisions"))


@cache
def report(name: str) -> tuple[sipstats.Analysis, dict[str, Any]]:
    """Analysis and JSON form of one sample (computed once per test session)."""
    analysis = sipstats.analyze(sipstats.read_capture(SAMPLES / name))
    return analysis, analysis.to_dict()


def _counts(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {k: {"count": v["count"], "unique": v["unique"]} for k, v in table.items()}


def test_every_sample_is_described_and_small() -> None:
    on_disk = sorted(p.name for p in SAMPLES.glob("*.pcap"))
    assert on_disk == sorted(EXPECTED)
    assert {"basic.pcap", "mixed.pcap", "register.pcap", "tcp.pcap", "outage.pcap"} <= set(on_disk)
    sizes = {name: (SAMPLES / name).stat().st_size for name in on_disk}
    assert sizes == {name: EXPECTED[name]["file_size"] for name in on_disk}
    assert max(sizes.values()) < 1_000_000
    assert sum(sizes.values()) < 3_000_000
    readme = (SAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in on_disk)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_messages_per_method_and_code_match_sipp(name: str) -> None:
    expected = EXPECTED[name]
    _, data = report(name)
    assert _counts(data["responses_by_code"]) == expected["responses_by_code"]
    assert _counts(data["requests_by_method"]) == expected["requests_by_method"]
    assert data["summary"]["sip_messages"] == expected["sip_messages"]
    assert data["summary"]["retransmissions"] == expected["retransmissions"]
    assert data["summary"]["malformed"] == 0
    assert data["inputs"][0]["errors"] == []


@pytest.mark.parametrize("name", CALL_SAMPLES)
def test_calls_and_finals_match_sipp(name: str) -> None:
    expected = EXPECTED[name]["calls"]
    _, data = report(name)
    assert data["calls"]["total"] == expected["invite_attempts"]
    finals = {code: n for code, n in data["calls"]["by_final_code"].items() if n}
    assert finals == expected["by_final_code"]


@pytest.mark.parametrize("name", RETRY_SAMPLES)
def test_retry_behaviour_matches_the_callers_decisions(name: str) -> None:
    """Honoured waits are Retry-After + 0.2 s or more, too-early ones at most half of it."""
    _, data = report(name)
    for code in ("480", "486", "503"):
        decided = EXPECTED[name]["retry_decisions"].get(code, {})
        got = data["retry_after"].get(code, {})
        assert got.get("failures", 0) == sum(decided.values()), code
        assert got.get("retries_honoured", 0) == decided.get("honoured", 0), code
        assert got.get("retries_too_early", 0) == decided.get("too_early", 0), code
        assert got.get("retries_without_retry_after", 0) == decided.get(
            "retry_without_retry_after", 0
        ), code
        not_retried = sum(n for d, n in decided.items() if d.startswith("no_retry"))
        assert got.get("not_retried", 0) == not_retried, code


def test_outage_story() -> None:
    """One PBX answers 503 + Retry-After: 10 for a while; its callers storm it; it recovers."""
    analysis, data = report("outage.pcap")
    n503 = EXPECTED["outage.pcap"]["responses_by_code"]["503"]["unique"]
    assert EXPECTED["outage.pcap"]["sipp"]["pbx_a"]["plans"]["outage_503"] == n503
    assert data["retry_after"]["503"]["values_s"] == {"10": n503}

    worst = analysis.by_peer.iloc[0]
    assert (worst["responder"], worst["top_code"]) == ("127.0.75.20:5060", "503")
    assert "503" not in str(analysis.by_peer.iloc[1]["codes"])

    assert len(analysis.storms) >= 1
    assert set(analysis.storms["target"]) == {"127.0.75.20:5060"}
    decisions = EXPECTED["outage.pcap"]["retry_decisions"]
    early = analysis.early_retriers
    assert early["retries_too_early"].sum() == sum(
        d.get("too_early", 0) for d in decisions.values()
    )
    site_a = early[early["caller"].str.endswith("@127.0.75.10")]
    assert site_a["retries_too_early"].sum() >= decisions["503"]["too_early"]
    assert early.iloc[0]["caller"].endswith("@127.0.75.10")

    timeline = analysis.timeline("10s")
    fives = timeline["5xx"]
    first, last = fives[fives > 0].index.min(), fives[fives > 0].index.max()
    assert timeline.loc[timeline.index < first, "2xx"].sum() > 0  # normal before
    assert timeline.loc[timeline.index > last, "2xx"].sum() > 0  # recovered after


def test_register_sample_matches_the_phones_plans() -> None:
    _, data = report("register.pcap")
    plans = EXPECTED["register.pcap"]["sipp"]["phone"]["plans"]
    regs = data["registrations"]
    assert regs["total"] == sum(plans.values())
    assert regs["by_final_code"] == {"200": plans["ok"], "403": plans["badpass"]}
    assert regs["final_sequences"] == {"401-200": plans["ok"], "401-403": plans["badpass"]}


def test_tcp_sample_is_tcp() -> None:
    analysis, _ = report("tcp.pcap")
    assert set(analysis.messages["transport"].astype(str)) == {"tcp"}
