"""The decode stage on real captures: the shared corpus (truth.json) and other projects' files.

Counts here are of *payloads* (candidate SIP messages) and their start-lines; the parser and
the messages table are checked elsewhere. tshark's view is the truth except where stated.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from sipstats.capture import InputSummary, iter_payloads, looks_like_sip
from sipstats.capture.records import Payload
from sipstats.errors import CaptureError
from tests.conftest import load_truth

_START = re.compile(rb"(?:SIP/2\.0 (\d{3})|([!-~]+) \S+ SIP/2\.0)")


def read(path: Path) -> tuple[list[Payload], InputSummary]:
    summary = InputSummary(str(path))
    return list(iter_payloads(path, summary)), summary


def start_lines(payloads: list[Payload]) -> tuple[Counter[str], Counter[str]]:
    """(requests by method, responses by code) of the payloads that carry a start-line."""
    methods: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for p in payloads:
        m = _START.match(p.data)
        if m and m.group(1):
            codes[m.group(1).decode()] += 1
        elif m:
            methods[m.group(2).decode()] += 1
    return methods, codes


def truth_of(scenario: str, name: str) -> dict:  # type: ignore[type-arg]
    return load_truth(scenario)["captures"][name]


WHOLE_FILES = [
    ("c01_basic_udp", "c01_basic_udp.pcap"),
    ("c02_mixed_udp", "c02_mixed_udp.pcap"),
    ("c03_tcp_v4", "c03_tcp_v4.pcap"),
    ("c04_udp_v6", "c04_udp_v6.pcap"),
    ("c05_loss", "c05_loss.pcap"),
    ("c06_register", "c06_register.pcap"),
    ("c07_sll", "c07_sll.pcap"),
    ("c08_frag", "c08_frag.pcap"),
    ("c09_pcapng", "c09_pcapng.pcapng"),
    ("c10_retry", "c10_retry.pcap"),
    ("c11_proxy", "c11_proxy.pcap"),
]


@pytest.mark.corpus
@pytest.mark.parametrize(("scenario", "name"), WHOLE_FILES)
def test_every_sip_message_of_the_corpus_is_a_payload(
    corpus_dir: Path, scenario: str, name: str
) -> None:
    path = corpus_dir / scenario / name
    if not path.exists():
        pytest.skip(f"{name} not in this corpus")
    truth = truth_of(scenario, name)
    payloads, summary = read(path)
    methods, codes = start_lines(payloads)
    assert len(payloads) == truth["sip"]["messages"]
    assert dict(methods) == truth["sip"]["requests_by_method"]
    assert dict(codes) == truth["sip"]["responses_by_code"]
    assert summary.packets == truth["frames"]["total"]
    assert not summary.errors
    assert not summary.malformed


@pytest.mark.corpus
def test_c07_linux_cooked_v2_on_port_5070(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / "c07_sll" / "c07_sll.pcap")
    assert summary.link_types == ["LINUX_SLL2"]
    assert {p.dport for p in payloads} | {p.sport for p in payloads} >= {5070}
    assert len(payloads) == 2002


@pytest.mark.corpus
def test_c08_fragments_reassemble_into_whole_messages(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / "c08_frag" / "c08_frag.pcap")
    truth = truth_of("c08_frag", "c08_frag.pcap")["sip"]
    fragmented = [p for p in payloads if p.fragmented]
    assert len(fragmented) == truth["messages_from_ip_fragments"] == 413
    by_count = Counter(str(p.fragments) for p in fragmented)
    assert by_count == truth["fragments_per_fragmented_message"] == {"2": 163, "3": 250}
    assert {":" in p.src for p in fragmented} == {True, False}  # IPv4 and IPv6 both
    assert all(looks_like_sip(p.data) for p in payloads)
    assert "incomplete IP fragments" not in summary.malformed


@pytest.mark.corpus
def test_c09_two_interfaces(corpus_dir: Path) -> None:
    path = corpus_dir / "c09_pcapng" / "c09_pcapng.pcapng"
    payloads, summary = read(path)
    with (path.parent / (path.name + ".detail.tsv")).open() as fh:
        interface = {int(r["frame"]): r["interface_id"] for r in csv.DictReader(fh, delimiter="\t")}
    udp = [p for p in payloads if p.transport == "udp"]
    tcp = [p for p in payloads if p.transport == "tcp"]
    frames = truth_of("c09_pcapng", "c09_pcapng.pcapng")["frames"]["by_interface_id"]
    assert len(udp) == frames["0"] == 1138
    assert {interface[p.frame] for p in udp} == {"0"}
    assert len(tcp) == 856
    assert {interface.get(p.frame, "1") for p in tcp} == {"1"}
    assert summary.format == "pcapng"
    assert summary.packets == 2390


BROKEN = "c10_broken"


@pytest.mark.corpus
def test_c10_truncated_tail(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / BROKEN / "c10_truncated_tail.pcap")
    assert len(payloads) == 799 == truth_of(BROKEN, "c10_truncated_tail.pcap")["sip"]["messages"]
    assert summary.errors == [
        "truncated inside record 800 at byte offset 414822: 364 of 421 captured bytes present"
    ]


@pytest.mark.corpus
def test_c10_truncated_pcapng(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / BROKEN / "c10_truncated.pcapng")
    assert len(payloads) == 1993 == truth_of(BROKEN, "c10_truncated.pcapng")["sip"]["messages"]
    assert summary.packets == 2389
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith("truncated inside a block of type 6 at byte offset")


@pytest.mark.corpus
def test_c10_bad_record_header_resynchronises(corpus_dir: Path) -> None:
    """tshark stops at the bogus header after record 420 (the truth counts those 420); this
    reader reports the header and resynchronises on the next plausible record, so the 380
    intact records after it are read too: 800 payloads, the same 800 packets as
    c10_snaplen300 (both are the first 800 packets of c02), with the same start-lines."""
    payloads, summary = read(corpus_dir / BROKEN / "c10_bad_record_header.pcap")
    truth = truth_of(BROKEN, "c10_bad_record_header.pcap")
    before = [p for p in payloads if p.frame <= 420]
    methods, codes = start_lines(before)
    assert len(before) == truth["sip"]["messages"] == 420
    assert dict(methods) == truth["sip"]["requests_by_method"]
    assert dict(codes) == truth["sip"]["responses_by_code"]
    assert len(payloads) == 800
    same_packets = truth_of(BROKEN, "c10_snaplen300.pcap")["sip"]
    methods, codes = start_lines(payloads)
    assert dict(methods) == same_packets["requests_by_method"]
    assert dict(codes) == same_packets["responses_by_code"]
    assert summary.errors == [
        "record 421 at byte offset 221823 claims 2147483632 captured bytes (limit 262144); "
        "resynchronised at byte offset 221839 after skipping 16 bytes"
    ]


@pytest.mark.corpus
def test_c10_garbage_records(corpus_dir: Path) -> None:
    """802 SIP messages plus the 2 inserted copies whose UDP payload on port 5060 is not SIP
    (handed on so the SIP stage counts them); the 2 random-bytes records are anomalies."""
    payloads, summary = read(corpus_dir / BROKEN / "c10_garbage_records.pcap")
    truth = truth_of(BROKEN, "c10_garbage_records.pcap")["sip"]
    sip = [p for p in payloads if looks_like_sip(p.data)]
    methods, codes = start_lines(sip)
    assert len(sip) == truth["messages"] == 802
    assert dict(methods) == truth["requests_by_method"]
    assert dict(codes) == truth["responses_by_code"]
    assert sorted(p.frame for p in payloads if not looks_like_sip(p.data)) == [57, 646]
    assert summary.errors == []
    assert summary.malformed["undecodable packet"].frames == [213, 784]
    assert summary.packets == 806


@pytest.mark.corpus
def test_c10_snaplen300(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / BROKEN / "c10_snaplen300.pcap")
    truth = truth_of(BROKEN, "c10_snaplen300.pcap")
    assert len(payloads) == truth["sip"]["messages"] == 800
    assert sum(p.truncated for p in payloads) == truth["frames"]["snaplen_truncated"]
    assert not summary.errors


@pytest.mark.corpus
def test_c10_whole_file_damage(corpus_dir: Path) -> None:
    payloads, summary = read(corpus_dir / BROKEN / "c10_header_only.pcap")
    assert (payloads, summary.packets, summary.errors) == ([], 0, [])
    for name, message in [
        ("c10_empty.pcap", "empty file"),
        ("c10_not_a_capture.pcap", "not a pcap or pcapng capture"),
    ]:
        with pytest.raises(CaptureError, match=message):
            read(corpus_dir / BROKEN / name)


def _peer_captures() -> list[str]:
    from tests.conftest import PEERS

    skip = (".txt", ".tsv", ".out", ".csv", ".md", ".yaml", ".log", ".output")
    if not PEERS.is_dir():
        return []
    return sorted(
        str(p.relative_to(PEERS))
        for p in PEERS.rglob("*")
        if p.is_file()
        and not p.name.endswith(skip)
        and "." in p.name
        and p.name[0] != "."
        and p.name not in ("README.md", "PROVENANCE.tsv", "LICENSE")
    )


@pytest.mark.peers
@pytest.mark.parametrize("name", _peer_captures() or ["(none)"])
def test_every_peer_capture_reads(peers_dir: Path, name: str) -> None:
    if name == "(none)":
        pytest.skip("no peer captures")
    _, summary = read(peers_dir / name)
    assert summary.packets > 0
    assert not summary.errors


PEER_COUNTS = [
    # file, payloads, transports, why
    ("hep-wireshark/hep.pcap", 6, {"udp"}),  # 8 HEP packets: 6 SIP, a log and RTCP JSON
    ("hep-wireshark/hep3_compressed.pcap.pcapng", 21, {"tcp"}),  # compressed chunks
    ("ndpi/gre.pcapng", 1, {"udp"}),  # VLAN, IPv4, GRE, PPP, IPv4, UDP
    ("heplify/erspan_sip_ipv4_udp.pcapng", 140, {"udp"}),
    ("heplify/ipip0.pcap", 8, {"udp"}),
    ("heplify/sip_sctp.pcap", 4, {"sctp"}),
    ("sngrep/ipip.pcap", 4, {"tcp"}),
    ("sngrep/ipv6frag.pcap", 32, {"udp"}),
    ("zeek/sip-long-request-response-paths.pcap", 2, {"udp"}),
    ("suricata-verify/sip-body-large/sip-body-large.pcap", 2, {"tcp"}),
]


@pytest.mark.peers
@pytest.mark.parametrize(("name", "count", "transports"), PEER_COUNTS)
def test_peer_encapsulations(peers_dir: Path, name: str, count: int, transports: set[str]) -> None:
    payloads, summary = read(peers_dir / name)
    assert len(payloads) == count
    assert {p.transport for p in payloads} == transports
    assert all(looks_like_sip(p.data) for p in payloads)
    assert not summary.malformed


@pytest.mark.peers
def test_hep_peer_details(peers_dir: Path) -> None:
    payloads, summary = read(peers_dir / "hep-wireshark" / "hep.pcap")
    assert {p.encap for p in payloads} == {"hep"}
    assert [p.data.split(b" ", 1)[0] for p in payloads] == [
        b"INVITE",
        b"SIP/2.0",
        b"SIP/2.0",
        b"OPTIONS",
        b"SIP/2.0",
        b"PUBLISH",
    ]
    assert summary.unsupported == {"HEP payload type 100": 1, "HEP payload type 5": 1}


@pytest.mark.peers
def test_tls_peer_is_not_decodable(peers_dir: Path) -> None:
    payloads, summary = read(peers_dir / "sngrep" / "tlssaved.pcap")
    assert payloads == []
    assert summary.not_decodable["tls"] >= 1
