"""Nothing silent: a capture in which no SIP was found says so, with what it held instead.

Built here: SIP inside Geneve (a tunnel the decoder does not open) next to DNS, a capture of
RTP only, a header-only file, and SIP on a port a ``--ports`` filter leaves out. Each must
name what was seen, on stderr and in every report, with exit status 1; a capture with SIP
never pays for the second look.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from sipstats import messages
from sipstats.capture.survey import survey_file
from sipstats.cli import main
from sipstats.messages import read_capture
from tests.capture_builders import pcap_bytes, write
from tests.sipfactory import T0, sip_request, udp, write_pcap

OPTIONS = sip_request("OPTIONS", call_id="gen@t", cseq=1, branch="z9hG4bK-gen")


def _eth() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def geneve_packets() -> list[Packet]:
    """Three SIP messages inside Geneve (UDP 6081) and two DNS queries."""
    packets = []
    for n in range(3):
        inner = _eth() / IP(src="10.2.0.1", dst="10.2.0.2") / UDP(sport=5060, dport=5060)
        pkt = _eth() / IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=40000 + n, dport=6081)
        pkt = pkt / GENEVE(proto=0x6558, vni=7) / inner / Raw(OPTIONS)
        pkt.time = T0 + n
        packets.append(pkt)
    for n in range(2):
        dns = _eth() / IP(src="10.0.0.1", dst="10.0.0.53") / UDP(sport=33000, dport=53)
        dns = dns / Raw(b"\x12\x34\x01\x00\x00\x01" + bytes(6))
        dns.time = T0 + 5 + n
        packets.append(dns)
    return packets


def rtp_packets() -> list[Packet]:
    out = []
    for n in range(6):
        pkt = _eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=16384, dport=16386)
        pkt = pkt / Raw(b"\x80\x08" + n.to_bytes(2, "big") + bytes(168))
        pkt.time = T0 + n * 0.02
        out.append(pkt)
    return out


def test_a_tunnel_not_decoded_is_named(tmp_path: Path) -> None:
    capture = read_capture(write_pcap(tmp_path / "geneve.pcap", geneve_packets()))
    assert capture.messages.empty
    survey = capture.inputs[0].no_sip
    assert survey is not None
    assert (survey.packets, survey.whole_file) == (5, True)
    assert survey.seen == {"udp/6081": 3, "udp/53": 2}
    assert survey.tunnels_not_decoded == {"Geneve": 3}


def test_the_cli_says_so_on_stderr_in_the_report_and_exit_status(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "geneve.pcap", geneve_packets())
    result = CliRunner().invoke(main, [str(path), "--report", "json", "-o", str(tmp_path / "r")])
    assert result.exit_code == 1
    note = (
        "no SIP found in 5 packets; seen instead: udp/6081 3, udp/53 2; "
        "tunnels not decoded: Geneve 3"
    )
    assert f"sipstats: warning: {path}: {note}" in result.stderr
    report = json.loads((tmp_path / "r").read_text())
    assert report["inputs"][0]["no_sip"] == {
        "packets": 5,
        "whole_file": True,
        "seen": {"udp/6081": 3, "udp/53": 2},
        "tunnels_not_decoded": {"Geneve": 3},
    }
    markdown = CliRunner().invoke(main, [str(path), "--report", "md", "-q"]).output
    assert note in markdown
    assert "no problems" not in markdown
    assert "| Files without SIP | " in markdown


def test_media_only_and_empty_captures(tmp_path: Path) -> None:
    rtp = read_capture(write_pcap(tmp_path / "rtp.pcap", rtp_packets())).inputs[0].no_sip
    assert rtp is not None
    assert rtp.seen == {"rtp/rtcp": 6}
    empty = read_capture(write(tmp_path / "empty.pcap", pcap_bytes([]))).inputs[0]
    assert empty.no_sip is not None
    assert empty.no_sip.packets == 0
    result = CliRunner().invoke(main, [str(tmp_path / "empty.pcap"), "-q", "--report", "md"])
    assert result.exit_code == 1
    assert "no SIP found: the file holds no packets" in result.output


def test_sip_off_the_given_ports_shows_where_it_is(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "sip.pcap", [udp(OPTIONS, 0), udp(OPTIONS, 1)])
    survey = read_capture(path, ports=[5080]).inputs[0].no_sip
    assert survey is not None
    assert survey.seen == {"udp/5060": 2}


def test_only_the_first_packets_are_walked(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "rtp.pcap", rtp_packets())
    survey = survey_file(path, limit=4)
    assert (survey.packets, survey.whole_file, survey.seen) == (4, False, {"rtp/rtcp": 4})
    from sipstats.capture.summary import InputSummary
    from sipstats.render.tables import no_sip_note

    note = no_sip_note(InputSummary(str(path), no_sip=survey))
    assert note == "no SIP found; its first 4 packets held: rtp/rtcp 4"


def test_a_capture_with_sip_is_not_walked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(path: object) -> None:
        raise AssertionError(f"surveyed {path}")

    monkeypatch.setattr(messages, "survey_file", must_not_run)
    capture = read_capture(write_pcap(tmp_path / "sip.pcap", [udp(OPTIONS, 0), *rtp_packets()]))
    assert len(capture.messages) == 1
    assert capture.inputs[0].no_sip is None
