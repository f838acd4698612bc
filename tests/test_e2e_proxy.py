"""End to end: SIPp calls through a proxy that does not Record-Route.

In a private network namespace (loopback only) a SIPp caller at 127.0.94.10 calls a SIPp
callee at 127.0.94.20 through a small stateless proxy at 127.0.94.1 (:data:`PROXY`, run
with this Python): it adds its Via to requests and removes it from responses (RFC 3261 §16.6,
§16.7) and adds no Record-Route, so it drops out of the dialog. The caller sends its ACK and
BYE straight to the callee's Contact (RFC 3261 §12.2.1.1). Every call must be measured on
the caller's leg and end with its BYE.

Skipped, with the reason, when not root or when sipp, tcpdump or ``ip netns`` is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.sipp_paths import json_report, listening, traffic, wait_for

pytestmark = pytest.mark.netns

CALLS = 10
CALLER, PROXY_ADDRESS, CALLEE = "127.0.94.10", "127.0.94.1", "127.0.94.20"

#: A stateless proxy without Record-Route, for this test only: requests from the caller go to
#: the callee with one more Via; responses lose their top Via and go where the next one says.
PROXY = """
import re, socket, sys
me, callee = sys.argv[1], (sys.argv[2], 5060)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((me, 5060))
sock.settimeout(30)
count = 0
while True:
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        break
    head, sep, body = data.partition(b"\\r\\n\\r\\n")
    lines = head.split(b"\\r\\n")
    if lines[0].startswith(b"SIP/2.0"):
        top = next(i for i, line in enumerate(lines) if line.lower().startswith(b"via:"))
        name, _, value = lines[top].partition(b":")
        rest = value.split(b",", 1)[1:]  # the proxy's own Via is the first entry
        if rest:
            lines[top] = name + b":" + rest[0]
        else:
            del lines[top]
        host, port = re.search(rb"UDP ([0-9.]+):([0-9]+)", b"\\r\\n".join(lines[top:])).groups()
        sock.sendto(b"\\r\\n".join(lines) + sep + body, (host.decode(), int(port)))
    else:
        count += 1
        via = b"Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-proxy-%d" % (me.encode(), count)
        lines.insert(1, via)
        sock.sendto(b"\\r\\n".join(lines) + sep + body, callee)
"""

CALLER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller behind a proxy that leaves the dialog">
  <send retrans="500"><![CDATA[
      INVITE sip:callee@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="([0-9.]+):([0-9]+)" search_in="hdr" header="Contact:"
            check_it="true" assign_to="target,host,port"/>
    </action>
  </recv>
  <nop><action><setdest host="[$host]" port="[$port]" protocol="udp"/></action></nop>
  <send><![CDATA[
      ACK sip:[$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@127.0.94.1:5060>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
      BYE sip:[$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:caller@[local_ip]:[local_port]>;tag=[pid]t[call_number]
      To: <sip:callee@127.0.94.1:5060>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
</scenario>
"""

CALLEE_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee whose in-dialog peer is the caller, not the proxy">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]c[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
  <send retrans="500"><![CDATA[
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
  <recv request="BYE"/>
  <nop><action><setdest host="127.0.94.10" port="5060" protocol="udp"/></action></nop>
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


def test_calls_through_a_proxy_without_record_route(namespace: str, tmp_path: Path) -> None:
    (tmp_path / "caller.xml").write_text(CALLER_XML)
    (tmp_path / "callee.xml").write_text(CALLEE_XML)
    proxy = subprocess.Popen(
        ["ip", "netns", "exec", namespace, "timeout", "50", sys.executable, "-c", PROXY,
         PROXY_ADDRESS, CALLEE],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: listening(namespace, f"{PROXY_ADDRESS}:5060"), "the proxy")
        common = ["-p", "5060", "-bind_local", "-m", str(CALLS)]
        servers = [(CALLEE, ["-sf", str(tmp_path / "callee.xml"), "-i", CALLEE, *common])]
        caller = ["-sf", str(tmp_path / "caller.xml"), "-i", CALLER, *common, "-r", "20"]
        pcap = traffic(namespace, tmp_path, servers, [[f"{PROXY_ADDRESS}:5060", *caller]])
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)

    report = json_report(pcap)
    assert report["requests_by_method"]["INVITE"]["unique"] == 2 * CALLS  # both legs seen
    assert report["requests_by_method"]["BYE"]["unique"] == CALLS
    calls = report["calls"]
    assert calls["total"] == CALLS
    assert calls["by_outcome"]["answered"] == CALLS
    assert calls["duration_s"]["count"] == CALLS  # every call ended by its BYE
