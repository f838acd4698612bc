"""End to end: SIPp calls through a "B2BUA" whose two legs are joined by an X-CID header.

Inside a private network namespace (loopback only), a SIPp caller at 127.0.96.10 calls
127.0.96.20:5060, which rings for :data:`RING_MS` and then answers (the A legs: the B2BUA
answers its caller once its own call is answered). Meanwhile a second SIPp caller at
127.0.96.20:5070 calls the callee at 127.0.96.21 (the B legs, each INVITE sent a second after
its A leg's, while that one rings). Both callers put ``X-CID: b2b-[call_number]`` in their
INVITEs, so call k of one leg and call k of the other share their correlation id while their
Call-IDs differ. sipstats must list both legs of every call, count each end-to-end call once
and draw both legs in one ladder.

Skipped, with the reason, when not root or when sipp, tcpdump or ``ip netns`` is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sipstats
from tests.sipp_paths import cli_output, json_report, traffic

pytestmark = pytest.mark.netns

CALLS = 20
RING_MS = 3000
CALLER, B2BUA, CALLEE = "127.0.96.10", "127.0.96.20", "127.0.96.21"
LEG = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- One leg of a call through a B2BUA: INVITE with X-CID: b2b-[call_number], 200, ACK,
     BYE. Two callers with the same call numbers give two legs that share each X-CID. -->
<scenario name="b2bua leg">
  <send retrans="500"><![CDATA[
      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      X-CID: b2b-[call_number]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <pause milliseconds="200"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
</scenario>
"""
#: The B2BUA's side towards the caller: rings while its own leg is set up, then answers.
#: The B2BUA's own leg: its INVITE leaves a second after the caller's arrived (two SIPp
#: processes start at about the same time), well within the caller's leg's ringing.
B_LEG = LEG.replace(
    '<scenario name="b2bua leg">', '<scenario name="b2bua leg">\n  <pause milliseconds="1000"/>'
)
RINGING = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="b2bua answering its caller">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]b[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
  <pause milliseconds="{RING_MS}"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]b[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:b2bua@[local_ip]:[local_port]>
      Content-Length: 0

    ]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
</scenario>
"""


def _flow(pcap: Path, call_id: str) -> str:
    return cli_output("flow", str(pcap), "--call-id", call_id)


def test_two_sipp_legs_joined_by_x_cid(namespace: str, tmp_path: Path) -> None:
    (tmp_path / "a_leg.xml").write_text(LEG)
    (tmp_path / "b_leg.xml").write_text(B_LEG)
    (tmp_path / "ringing.xml").write_text(RINGING)
    common = ["-bind_local", "-m", str(CALLS)]
    servers = [
        (B2BUA, ["-sf", str(tmp_path / "ringing.xml"), "-i", B2BUA, "-p", "5060", *common]),
        (CALLEE, ["-sn", "uas", "-i", CALLEE, "-p", "5060", *common]),
    ]
    rate = [*common, "-r", "20"]
    clients = [
        [f"{B2BUA}:5060", "-sf", str(tmp_path / "a_leg.xml"), "-i", CALLER, "-p", "5060", *rate],
        [f"{CALLEE}:5060", "-sf", str(tmp_path / "b_leg.xml"), "-i", B2BUA, "-p", "5070", *rate],
    ]
    pcap = traffic(namespace, tmp_path, servers, clients)

    calls = json_report(pcap)["calls"]
    assert calls["total"] == CALLS  # end-to-end calls, once each
    assert calls["b2bua_legs"] == CALLS  # the other legs, linked
    assert calls["by_outcome"]["answered"] == CALLS
    assert calls["answer_ms"]["p50"] >= RING_MS
    assert json_report(pcap, "--correlation-header", "none")["calls"]["total"] == 2 * CALLS

    analysis = sipstats.analyze(sipstats.read_capture(pcap))
    first = analysis.calls.sort_values("start_ts").iloc[0]
    b_leg = analysis.calls[analysis.calls["linked_to"] == first["call"]].iloc[0]
    ladder = _flow(pcap, str(first["call_id"]))
    hosts = ladder.splitlines()[1]
    for host in (f"{CALLER}:5060", f"{B2BUA}:5060", f"{B2BUA}:5070", f"{CALLEE}:5060"):
        assert host in hosts  # both legs in one diagram, hosts as columns
    assert b_leg["call_id"] in ladder.splitlines()[0]
    assert ladder.count("INVITE") == 2
    assert ladder.count("BYE") == 2
    assert _flow(pcap, str(b_leg["call_id"])).splitlines()[2:] == ladder.splitlines()[2:]
