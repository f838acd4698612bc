"""TCP and WebSocket framing on real captures: the corpus truth and tshark's view of peer files.

Counts come from the payloads' start-lines (not from the SIP parser), so these tests look at
the decode stage alone. tshark's ``messages.tsv`` has one row per frame; several messages in
one frame are joined with ``|``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from sipstats.capture.reader import iter_payloads
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from tests.conftest import load_truth

_START = re.compile(rb"SIP/2\.0 (\d{3})|([A-Za-z]+) ")
STREAMED = ("tcp", "ws")


def decode(path: Path) -> tuple[list[Payload], InputSummary]:
    summary = InputSummary(str(path))
    return list(iter_payloads(path, summary)), summary


def start_lines(payloads: list[Payload]) -> Counter[str]:
    """'INVITE', '200', ... per payload that came off a TCP stream."""
    found: Counter[str] = Counter()
    for p in payloads:
        if p.transport in STREAMED:
            m = _START.match(p.data)
            assert m is not None, p.data[:80]
            found[(m.group(1) or m.group(2)).decode()] += 1
    return found


def tshark_tcp(tsv: Path) -> Counter[str]:
    """Methods and status codes tshark dissected in frames that travelled over TCP."""
    found: Counter[str] = Counter()
    with tsv.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if not row["tcp.srcport"]:
                continue
            for field in ("sip.Method", "sip.Status-Code"):
                found.update(v for v in row[field].split("|") if v)
    return found


def detail_rows(corpus_dir: Path, scenario: str, name: str) -> list[dict[str, str]]:
    with (corpus_dir / scenario / f"{name}.detail.tsv").open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.corpus
def test_c03_every_tcp_message_with_tsharks_time_and_segment_count(corpus_dir: Path) -> None:
    payloads, summary = decode(corpus_dir / "c03_tcp_v4" / "c03_tcp_v4.pcap")
    sip = load_truth("c03_tcp_v4")["captures"]["c03_tcp_v4.pcap"]["sip"]
    assert len(payloads) == sip["messages"] == 2315
    assert start_lines(payloads) == Counter(sip["requests_by_method"]) + Counter(
        sip["responses_by_code"]
    )
    truth = detail_rows(corpus_dir, "c03_tcp_v4", "c03_tcp_v4.pcap")
    ours = sorted(payloads, key=lambda p: (p.ts_ns, p.frame))
    spanning = 0
    for p, row in zip(ours, truth, strict=True):
        assert p.ts_ns == int(Decimal(row["time_epoch"]) * 10**9)  # the completing segment
        assert p.segments == int(row["tcp_segments"] or 1)
        if p.segments == 1:
            assert p.frame == int(row["frame"])
        else:  # tshark shows it on the last segment; the frame here is the first one
            assert p.frame < int(row["frame"])
            spanning += 1
    assert spanning == sip["messages_spanning_tcp_segments"] == 548
    assert summary.malformed == {}
    assert summary.keepalives == 0


@pytest.mark.corpus
def test_c09_tcp_interface(corpus_dir: Path) -> None:
    payloads, summary = decode(corpus_dir / "c09_pcapng" / "c09_pcapng.pcapng")
    rows = detail_rows(corpus_dir, "c09_pcapng", "c09_pcapng.pcapng")
    expected = Counter(r["method"] or r["status"] for r in rows if r["transport"] == "TCP")
    sip = load_truth("c09_pcapng")["captures"]["c09_pcapng.pcapng"]["sip"]
    assert sum(expected.values()) == sip["by_transport"]["TCP"] == 856
    assert start_lines(payloads) == expected
    assert summary.malformed == {}


#: peer file -> (tshark's messages.tsv to compare with, why that one)
PEERS = {
    "suricata-verify/sip-tcp-method/sip-tcp.pcap": "",
    "suricata-verify/sip-tcp-pattern-matching/sip.pcap": "",
    "suricata-verify/sip-body-large/sip-body-large.pcap": "",
    "heplify/sip_ipv4_tcp_retrans.pcap": "",
    "heplify/sip_tcp_websocket.pcap": "",
    "sngrep/ipip.pcap": "",
    # tshark dissects TCP 6060 as X11 and finds no SIP; with `-d tcp.port==6060,sip` it finds
    # 406 messages. We recognise SIP by its start-line on any port, so the decode-as view is
    # the right one.
    "heplify/sip_ipv4_tcp_fragmented.pcap": ".decodeas-tcp6060",
}


@pytest.mark.peers
@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_tcp_message_counts_equal_tsharks(peers_dir: Path, name: str) -> None:
    payloads, summary = decode(peers_dir / name)
    expected = tshark_tcp(peers_dir / f"{name}{PEERS[name]}.messages.tsv")
    assert sum(expected.values()) > 0
    assert start_lines(payloads) == expected
    assert summary.malformed == {}


@pytest.mark.peers
def test_peer_websocket_leg_and_totals(peers_dir: Path) -> None:
    # tshark's sip,stat counts 39 messages: 28 over UDP and 11 inside WebSocket frames.
    payloads, _ = decode(peers_dir / "heplify/sip_tcp_websocket.pcap")
    assert Counter(p.transport for p in payloads) == {"udp": 28, "ws": 11}
    assert {p.dport for p in payloads if p.transport == "ws"} == {8080, 43380}


@pytest.mark.peers
def test_peer_retransmitted_tcp_segment_counts_once(peers_dir: Path) -> None:
    # Frames 36 and 38 carry the same 200 OK at the same sequence number.
    payloads, _ = decode(peers_dir / "heplify/sip_ipv4_tcp_retrans.pcap")
    frames = [p.frame for p in payloads if p.transport == "tcp"]
    assert frames == [28, 32, 33, 36]


@pytest.mark.peers
@pytest.mark.parametrize(
    ("name", "unsupported", "not_decodable"),
    [
        # HTTP on TCP 5060: tshark labels two frames "SIP Continuation"; there is no SIP.
        ("ndpi/http_on_sip_port.pcap", {"non-SIP TCP on a SIP port": 1}, {}),
        # An HTTP response on TCP 80 whose first line is `SIP/2.0 200 ok`: no Call-ID/CSeq.
        ("suricata-verify/http-evader-486/input.pcap", {}, {}),
        # SIP over TLS, two connections to 5061, no key: counted, not read.
        ("sngrep/tlssaved.pcap", {}, {"tls": 2}),
    ],
)
def test_peer_tcp_negatives_count_no_sip(
    peers_dir: Path, name: str, unsupported: dict[str, int], not_decodable: dict[str, int]
) -> None:
    payloads, summary = decode(peers_dir / name)
    assert [p for p in payloads if p.transport in STREAMED] == []
    assert dict(summary.unsupported) == unsupported
    assert dict(summary.not_decodable) == not_decodable
    assert summary.malformed == {}
