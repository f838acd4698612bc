"""End to end: a UA whose Contact differs from its source address gets the callee's BYE there.

In a private network namespace (loopback only) three SIPp instances run: the caller sends
its INVITEs from 127.0.95.10 with ``Contact: <sip:caller@127.0.95.11:5060>``; the callee
answers, then sends its BYE to that Contact (RFC 3261 §12.2.1.1: the remote target), where a
third SIPp answers it. The BYE and its 200 travel between addresses the INVITE never used;
sipstats must still end every call with its BYE.

Skipped, with the reason, when not root or when sipp, tcpdump or ``ip netns`` is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sipp_paths import json_report, traffic

pytestmark = pytest.mark.netns

CALLS = 10
CALLER, CONTACT, CALLEE = "127.0.95.10", "127.0.95.11", "127.0.95.20"

CALLER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller with another Contact">
  <send retrans="500"><![CDATA[
      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@127.0.95.11:5060>
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
      Contact: <sip:caller@127.0.95.11:5060>
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
</scenario>
"""

CALLEE_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee that hangs up towards the Contact">
  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="sip:[^@]*@([0-9.]+):([0-9]+)" search_in="hdr" header="Contact:"
            check_it="true" assign_to="c,host,port"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="to_caller"/>
    </action>
  </recv>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]c[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Length: 0

    ]]></send>
  <recv request="ACK"/>
  <pause milliseconds="300"/>
  <nop><action><setdest host="[$host]" port="[$port]" protocol="udp"/></action></nop>
  <send retrans="500"><![CDATA[
      BYE [$c] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:callee@[local_ip]:[local_port]>;tag=[pid]c[call_number]
      To: [$to_caller]
      [last_Call-ID:]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
</scenario>
"""

CONTACT_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="the caller's Contact address answers the BYE">
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


def test_bye_to_a_contact_that_is_not_the_callers_source(namespace: str, tmp_path: Path) -> None:
    for name, text in (("caller", CALLER_XML), ("callee", CALLEE_XML), ("contact", CONTACT_XML)):
        (tmp_path / f"{name}.xml").write_text(text)
    common = ["-p", "5060", "-bind_local", "-m", str(CALLS)]
    servers = [
        (CALLEE, ["-sf", str(tmp_path / "callee.xml"), "-i", CALLEE, *common]),
        (CONTACT, ["-sf", str(tmp_path / "contact.xml"), "-i", CONTACT, *common]),
    ]
    caller = ["-sf", str(tmp_path / "caller.xml"), "-i", CALLER, *common, "-r", "20"]
    pcap = traffic(namespace, tmp_path, servers, [[f"{CALLEE}:5060", *caller]])

    report = json_report(pcap)
    assert report["requests_by_method"]["BYE"]["unique"] == CALLS
    calls = report["calls"]
    assert calls["by_outcome"]["answered"] == CALLS
    assert calls["duration_s"]["count"] == CALLS  # every call ended by its BYE
