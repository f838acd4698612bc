"""GTP-U and VXLAN tunnels are unwrapped; ICMP unreachable errors about SIP are counted.

The VoLTE capture is built here the way an S1-U/S5 tap sees IMS signalling: the UE's SIP over
IPv6 inside GTP-U between an eNodeB and a gateway (IPv4), some G-PDUs with a PDU session
container extension header, RTP in the same tunnel, and GTP-U echo messages. Each capture is
read with the C walk and without it, and both must give the same table and summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from scapy.contrib.gtp import GTP_U_Header, GTPEchoRequest, GTPPDUSessionContainer
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from sipstats import native
from sipstats.analyze import analyze
from sipstats.capture import pcap
from sipstats.cli import main
from sipstats.messages import Capture, read_capture
from tests.sipfactory import T0, UAC, UAS, sip_request, sip_response, udp, write_pcap

ENB, SGW = "192.0.2.10", "192.0.2.20"
UE, PCSCF = ("2001:db8:1::10", 5060), ("2001:db8:2::1", 5060)


def _eth() -> Ether:
    """Ethernet with both addresses given: scapy would otherwise look them up on the network."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _volte_messages() -> list[tuple[bytes, bool]]:
    """17 SIP messages of a VoLTE registration, call, subscription and SMS: (bytes, from UE)."""
    out: list[tuple[bytes, bool]] = []

    def transaction(method: str, n: int, *statuses: int, to_tag: str | None = None) -> None:
        dialog = {"call_id": f"volte-{n}@ims", "cseq": n, "branch": f"z9hG4bK-volte-{n}"}
        out.append((sip_request(method, **dialog, to_tag=to_tag), True))
        for status in statuses:
            tag = None if status == 100 else "pcscf"
            out.append((sip_response(status, "X", cseq_method=method, **dialog, to_tag=tag), False))

    transaction("REGISTER", 1, 401)
    transaction("REGISTER", 2, 200)
    transaction("INVITE", 3, 100, 180, 200)
    out.append((sip_request("ACK", call_id="volte-3@ims", cseq=3, branch="z9hG4bK-ack"), True))
    transaction("BYE", 4, 200, to_tag="pcscf")
    transaction("SUBSCRIBE", 5, 200)
    transaction("NOTIFY", 6, 200)
    transaction("MESSAGE", 7, 200)
    return out


def _gtp(inner: Packet, t: float, uplink: bool, extension: bool) -> Packet:
    outer = IP(src=ENB, dst=SGW) if uplink else IP(src=SGW, dst=ENB)
    header = GTP_U_Header(teid=0x1001 if uplink else 0x2002)
    if extension:  # 5G/LTE PDU session container (TS 38.415), as gNodeBs add it
        header = header / GTPPDUSessionContainer(type=1 if uplink else 0, QFI=5)
    pkt = _eth() / outer / UDP(sport=2152, dport=2152) / header / inner
    pkt.time = T0 + t
    return pkt


def volte_packets() -> list[Packet]:
    packets: list[Packet] = []
    for i, (sip, uplink) in enumerate(_volte_messages()):
        src, dst = (UE, PCSCF) if uplink else (PCSCF, UE)
        inner = IPv6(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1]) / Raw(sip)
        packets.append(_gtp(inner, i * 0.1, uplink, extension=i % 2 == 0))
        rtp = IPv6(src=UE[0], dst=PCSCF[0]) / UDP(sport=40000, dport=40002) / Raw(b"\x80" * 60)
        packets.append(_gtp(rtp, i * 0.1 + 0.05, True, extension=False))
    echo = _eth() / IP(src=ENB, dst=SGW) / UDP(sport=2152, dport=2152)
    echo = echo / GTP_U_Header(gtp_type=1) / GTPEchoRequest()
    echo.time = T0 + 2
    return [*packets, echo]


def _both(path: Path) -> tuple[Capture, Capture]:
    with_c = read_capture(path)
    with native.python_twins(pcap.C_WALK_NAME):
        pure = read_capture(path)
    pd.testing.assert_frame_equal(with_c.messages, pure.messages)
    assert with_c.inputs == pure.inputs
    return with_c, pure


def test_sip_over_ipv6_inside_gtp_u_is_read(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "volte.pcap", volte_packets())
    capture, _ = _both(path)
    m = capture.messages
    assert len(m) == 17
    assert set(m["src"]) == {UE[0], PCSCF[0]}
    assert m["method"].value_counts()["REGISTER"] == 2
    summary = capture.inputs[0]
    assert summary.tunnels == {"GTP-U": 34}  # 17 SIP + 17 RTP G-PDUs; the echo is no G-PDU
    assert not summary.malformed
    assert analyze(capture).calls["outcome"].tolist() == ["answered"]


def test_cli_reports_the_tunnelled_messages(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "volte.pcap", volte_packets())
    result = CliRunner().invoke(main, [str(path), "--report", "json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["summary"]["sip_messages"] == 17
    assert report["inputs"][0]["tunnels"] == {"GTP-U": 34}


def test_a_cut_gtp_extension_header_is_undecodable(tmp_path: Path) -> None:
    header = bytes(GTP_U_Header(teid=1) / GTPPDUSessionContainer(QFI=1))
    cut = bytearray(header)
    cut[12] = 9  # the extension header claims 36 bytes
    pkt = _eth() / IP(src=ENB, dst=SGW) / UDP(sport=2152, dport=2152) / Raw(bytes(cut))
    pkt.time = T0
    capture = read_capture(write_pcap(tmp_path / "cut.pcap", [pkt]))
    anomaly = capture.inputs[0].malformed["undecodable packet"]
    assert anomaly.detail == "GTP-U extension header 0x85 cut short"


def vxlan_packets() -> list[Packet]:
    packets = []
    for i, sip in enumerate([sip_request("OPTIONS", call_id="vx@t", cseq=1, branch="z9hG4bK-vx")]):
        inner = _eth() / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=5060, dport=5060)
        pkt = _eth() / IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=51234, dport=4789)
        pkt = pkt / VXLAN(vni=42) / inner / Raw(sip)
        pkt.time = T0 + i
        packets.append(pkt)
    # SIP sent from ephemeral port 4789 is SIP, not VXLAN
    for t, call_id, src, dst in (
        (1, "p@t", ("10.0.0.1", 4789), UAS),
        (2, "q@t", UAC, ("10.0.0.2", 4789)),
    ):
        packets.append(
            udp(sip_request("OPTIONS", call_id=call_id, cseq=1, branch="z9hG4bK"), t, src, dst)
        )
    return packets


def test_vxlan_is_unwrapped(tmp_path: Path) -> None:
    capture, _ = _both(write_pcap(tmp_path / "vxlan.pcap", vxlan_packets()))
    m = capture.messages
    assert m["call_id"].tolist() == ["vx@t", "p@t", "q@t"]
    assert m["src"].tolist()[0] == "10.1.0.1"
    assert capture.inputs[0].tunnels == {"VXLAN": 1}


def icmp_packets() -> list[Packet]:
    """A SIP peer that answers INVITEs with ICMP port unreachable, over IPv4 and IPv6."""
    invite = sip_request("INVITE", call_id="dead@t", cseq=1, branch="z9hG4bK-dead")
    packets: list[Packet] = []
    for n in range(3):
        sent = udp(invite, n * 0.5, ("10.0.0.1", 5060), ("10.0.0.9", 5060))
        error = _eth() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=3, code=3)
        error = error / IPerror(bytes(sent[IP]))
        error.time = sent.time + 0.001
        packets += [sent, error]
    # off the SIP ports: recognised by the quoted start line (Linux quotes the whole datagram)
    v6 = IPv6(src="fd00::1", dst="fd00::9") / UDP(sport=5080, dport=5080) / Raw(invite)
    error6 = _eth() / IPv6(src="fd00::9", dst="fd00::1") / ICMPv6DestUnreach(code=4) / v6
    error6.time = T0 + 2
    # RFC 792 minimum quote (IP header + 8 bytes) of a datagram to the SIP port
    short = _eth() / IP(src="10.0.0.8", dst="10.0.0.1") / ICMP(type=3, code=1)
    short = short / IPerror(src="10.0.0.1", dst="10.0.0.8") / UDPerror(sport=5060, dport=5060)
    short.time = T0 + 3
    # not about SIP: DNS, and an echo reply
    dns = _eth() / IP(src="10.0.0.53", dst="10.0.0.1") / ICMP(type=3, code=3)
    dns = dns / IPerror(src="10.0.0.1", dst="10.0.0.53") / UDPerror(sport=4000, dport=53)
    dns.time = T0 + 4
    echo = _eth() / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=0)
    echo.time = T0 + 5
    return [*packets, error6, short, dns, echo]


def test_icmp_unreachable_for_sip_is_counted_per_destination(tmp_path: Path) -> None:
    capture, _ = _both(write_pcap(tmp_path / "icmp.pcap", icmp_packets()))
    assert len(capture.messages) == 3  # the INVITEs; the errors are not messages
    found = {
        dest: (a.count, a.detail, a.frames)
        for dest, a in capture.inputs[0].icmp_unreachable.items()
    }
    assert found == {
        "10.0.0.9:5060": (3, "port unreachable (udp)", [2, 4, 6]),
        "[fd00::9]:5080": (1, "port unreachable (udp)", [7]),
        "10.0.0.8:5060": (1, "host unreachable (udp)", [8]),
    }
    assert not capture.inputs[0].damaged


def test_icmp_unreachable_reaches_the_json_and_text_reports(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "icmp.pcap", icmp_packets())
    result = CliRunner().invoke(main, [str(path), "--report", "json", "-q"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["inputs"][0]["icmp_unreachable"]
    assert found["10.0.0.9:5060"] == {
        "count": 3,
        "reason": "port unreachable (udp)",
        "frames": [2, 4, 6],
    }
    markdown = CliRunner().invoke(main, [str(path), "--report", "md", "-q"]).output
    assert "ICMP unreachable for SIP to 10.0.0.9:5060: 3 (port unreachable (udp))" in markdown


def test_a_ports_filter_applies_to_the_quoted_packet(tmp_path: Path) -> None:
    capture = read_capture(write_pcap(tmp_path / "icmp.pcap", icmp_packets()), ports=[5080])
    assert list(capture.inputs[0].icmp_unreachable) == ["[fd00::9]:5080"]
