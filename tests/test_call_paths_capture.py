"""Call-level numbers on a capture built with scapy: BYEs that take another path, lost 200s.

Through the whole pipeline (pcap -> decode -> analysis -> JSON report via the CLI): a call
through a proxy that does not Record-Route, whose ACK goes straight to the callee and whose
BYE goes from the callee straight to the caller's Contact (an address the caller did not send
from); and a call whose 200 OK is missing from the capture but whose BYE proves the answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipstats import analyze, read_capture
from sipstats.cli import main
from tests.sipfactory import sip_request, sip_response, udp, write_pcap

CALLER = ("10.1.0.10", 5060)
CALLER_CONTACT = ("10.1.0.11", 5062)  # where the caller's Contact header points
PROXY = ("10.1.0.1", 5060)
CALLEE = ("10.1.0.20", 5060)
PROXY_VIA = ("Via", "SIP/2.0/UDP 10.1.0.10:5060;branch=z9hG4bK-caller")


def _proxied_call() -> list:
    """RFC 3261 §16.6: the proxy adds its Via; without Record-Route it leaves the dialog."""
    ids = {"call_id": "proxied", "from_tag": "a", "via_host": "10.1.0.10:5060"}
    up = {**ids, "cseq": 1, "branch": "z9hG4bK-caller"}
    down = {**ids, "cseq": 1, "branch": "z9hG4bK-proxy", "via_host": "10.1.0.1:5060"}
    relayed = {"headers": [PROXY_VIA]}
    contact = {"headers": [("Contact", "<sip:alice@10.1.0.11:5062>")]}
    inv = {"cseq_method": "INVITE"}
    return [
        udp(sip_request("INVITE", **up, **contact), 0.0, CALLER, PROXY),
        udp(sip_request("INVITE", **down, headers=[PROXY_VIA, contact["headers"][0]]), 0.01,
            PROXY, CALLEE),
        udp(sip_response(180, "Ringing", to_tag="b", **inv, **down, **relayed), 0.2, CALLEE, PROXY),
        udp(sip_response(180, "Ringing", to_tag="b", **inv, **up), 0.21, PROXY, CALLER),
        udp(sip_response(200, "OK", to_tag="b", **inv, **down, **relayed), 1.0, CALLEE, PROXY),
        udp(sip_response(200, "OK", to_tag="b", **inv, **up), 1.01, PROXY, CALLER),
        # in-dialog requests go to the remote target (the Contact), past the proxy
        udp(sip_request("ACK", **{**up, "branch": "z9hG4bK-ack"}, to_tag="b"), 1.02, CALLER,
            CALLEE),
        udp(sip_request("BYE", call_id="proxied", from_tag="b", to_tag="a", cseq=1,
                        branch="z9hG4bK-bye", via_host="10.1.0.20:5060"), 33.1, CALLEE,
            CALLER_CONTACT),
        udp(sip_response(200, "OK", call_id="proxied", from_tag="b", to_tag="a", cseq=1,
                         cseq_method="BYE", branch="z9hG4bK-bye", via_host="10.1.0.20:5060"),
            33.11, CALLER_CONTACT, CALLEE),
    ]  # fmt: skip


def _call_without_its_200() -> list:
    ids = {"call_id": "lost-200", "from_tag": "c", "via_host": "10.1.0.10:5060"}
    invite = {**ids, "cseq": 1, "branch": "z9hG4bK-l1"}
    bye = {**ids, "cseq": 2, "branch": "z9hG4bK-l2", "to_tag": "d"}
    return [
        udp(sip_request("INVITE", **invite), 40.0, CALLER, CALLEE),
        udp(
            sip_response(180, "Ringing", to_tag="d", cseq_method="INVITE", **invite),
            40.1,
            CALLEE,
            CALLER,
        ),
        # the 200 OK and its ACK were not captured
        udp(sip_request("BYE", **bye), 50.0, CALLER, CALLEE),
        udp(sip_response(200, "OK", cseq_method="BYE", **bye), 50.01, CALLEE, CALLER),
    ]


@pytest.fixture
def pcap(tmp_path: Path) -> Path:
    return write_pcap(tmp_path / "paths.pcap", [*_proxied_call(), *_call_without_its_200()])


def test_bye_on_another_path_and_bye_without_its_200_end_their_calls(pcap: Path) -> None:
    calls = analyze(read_capture(pcap)).calls.set_index("call_id")
    proxied = calls.loc["proxied"]
    assert (proxied["outcome"], bool(proxied["has_bye"]), proxied["bye_status"]) == (
        "answered",
        True,
        200,
    )
    assert proxied["duration_s"] == pytest.approx(32.09)
    assert proxied["dst"] == "10.1.0.1:5060"  # measured on the caller's leg
    lost = calls.loc["lost-200"]
    assert (lost["outcome"], bool(lost["answer_missing"])) == ("answered", True)
    assert (lost["end_ts"] - lost["start_ts"]).total_seconds() == pytest.approx(10.0)


def test_the_report_counts_both_calls_as_answered_and_flags_the_missing_200(pcap: Path) -> None:
    result = CliRunner().invoke(main, [str(pcap), "--report", "json", "-o", "-"])
    assert result.exit_code == 0, result.output
    calls = json.loads(result.stdout)["calls"]
    assert calls["by_outcome"]["answered"] == 2
    assert calls["by_outcome"]["in_progress"] == 0
    assert calls["answer_missing"] == 1
    assert calls["duration_s"]["count"] == 1
    text = " ".join(CliRunner().invoke(main, [str(pcap), "--no-progress"]).stdout.split())
    assert "1 answered calls ended with a BYE although their 2xx is not in the capture" in text
