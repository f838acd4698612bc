"""Link layers, IP (extension headers, fragments, tunnels), UDP, HEP, SCTP, TCP hand-off."""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.l2 import GRE, Ether
from scapy.layers.ppp import PPP
from scapy.layers.sctp import SCTP, SCTPChunkData
from scapy.packet import Raw

from sipstats.capture import InputSummary, iter_payloads, looks_like_sip
from sipstats.capture.hep import HepError, decode_hep
from sipstats.capture.records import Payload
from tests.capture_builders import (
    DLT_EN10MB,
    DLT_IPV4,
    DLT_IPV6,
    DLT_LOOP,
    DLT_NULL,
    DLT_RAW,
    DLT_SLL,
    DLT_SLL2,
    T0_NS,
    ether,
    hep3,
    invite,
    ip_udp,
    ok,
    pcap_bytes,
    write,
)
from tests.sipfactory import sip_request

Frames = list[bytes] | list[tuple[bytes, int]]


def decode(
    tmp_path: Path, frames: Frames, linktype: int = DLT_EN10MB, **kwargs: Any
) -> tuple[list[Payload], InputSummary]:
    """Write ``frames`` (bytes, or (bytes, original length)) into a pcap and decode it."""
    items = []
    for i, f in enumerate(frames):
        ts = T0_NS + i * 1_000_000
        items.append((ts, f[0], f[1]) if isinstance(f, tuple) else (ts, f))
    path = write(tmp_path / "t.pcap", pcap_bytes(items, linktype=linktype))
    summary = InputSummary(str(path))
    return list(iter_payloads(path, summary, **kwargs)), summary


# -- link layers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vlans",
    [[(0x8100, 42)], [(0x88A8, 100), (0x8100, 42)], [(0x9100, 7), (0x8100, 8)]],
    ids=["802.1Q", "QinQ 802.1ad", "QinQ 0x9100"],
)
def test_vlan_tags_are_skipped(tmp_path: Path, vlans: list[tuple[int, int]]) -> None:
    payloads, _ = decode(tmp_path, [ether(ip_udp(invite()), vlans=vlans)])
    assert [p.data for p in payloads] == [invite()]


def test_linux_cooked_v1_with_ipv6(tmp_path: Path) -> None:
    l3 = ip_udp(invite(), src="fd00::1", dst="fd00::2")
    sll = struct.pack(">HHH8sH", 0, 1, 6, b"\x02" * 6, 0x86DD) + l3
    payloads, summary = decode(tmp_path, [sll], DLT_SLL)
    assert [(p.src, p.dst, p.data) for p in payloads] == [("fd00::1", "fd00::2", invite())]
    assert summary.link_types == ["LINUX_SLL"]


def test_linux_cooked_v2(tmp_path: Path) -> None:
    for packet_type in (0, 4):  # incoming and outgoing, as in tcpdump -i any
        sll2 = struct.pack(">HHIHBB8s", 0x0800, 0, 2, 1, packet_type, 6, b"\x02" * 6)
        payloads, summary = decode(tmp_path, [sll2 + ip_udp(invite())], DLT_SLL2)
        assert [p.data for p in payloads] == [invite()]
        assert summary.link_types == ["LINUX_SLL2"]


@pytest.mark.parametrize("linktype", [DLT_RAW, 12, 14])
def test_raw_ip_of_either_version(tmp_path: Path, linktype: int) -> None:
    frames = [ip_udp(invite(1)), ip_udp(invite(2), src="2001:db8::1", dst="2001:db8::2")]
    payloads, _ = decode(tmp_path, frames, linktype)
    assert [(p.src, p.data) for p in payloads] == [
        ("10.0.0.1", invite(1)),
        ("2001:db8::1", invite(2)),
    ]


def test_raw_ipv4_and_ipv6_link_types(tmp_path: Path) -> None:
    assert decode(tmp_path, [ip_udp(invite())], DLT_IPV4)[0][0].data == invite()
    v6 = ip_udp(invite(), src="::1", dst="::1")
    assert decode(tmp_path, [v6], DLT_IPV6)[0][0].src == "::1"


def test_bsd_loopback_in_host_and_network_byte_order(tmp_path: Path) -> None:
    v4, v6 = ip_udp(invite(1)), ip_udp(invite(2), src="::1", dst="::1")
    null = [struct.pack("<I", 2) + v4, struct.pack(">I", 30) + v6, struct.pack("<I", 24) + v6]
    payloads, _ = decode(tmp_path, null, DLT_NULL)
    assert [p.data for p in payloads] == [invite(1), invite(2), invite(2)]
    loop = [struct.pack(">I", 2) + v4, struct.pack(">I", 28) + v6]
    payloads, summary = decode(tmp_path, loop, DLT_LOOP)
    assert [p.data for p in payloads] == [invite(1), invite(2)]
    assert summary.link_types == ["LOOP"]


def test_unknown_link_type_goes_to_scapy_before_it_is_unsupported(tmp_path: Path) -> None:
    from scapy.layers.dot11 import Dot11
    from scapy.layers.l2 import LLC, SNAP

    wifi = bytes(Dot11(type=2, subtype=0) / LLC() / SNAP(code=0x0800) / IP(bytes(ip_udp(invite()))))
    payloads, summary = decode(tmp_path, [wifi], 105)  # LINKTYPE_IEEE802_11
    assert [p.data for p in payloads] == [invite()]
    assert summary.unsupported == {}
    payloads, summary = decode(tmp_path, [b"\x00" * 40, b"\x01" * 40], 147)  # LINKTYPE_USER0
    assert payloads == []
    assert summary.unsupported == {"LINKTYPE 147": 2}


def test_pppoe_and_mpls(tmp_path: Path) -> None:
    ppp = b"\x00\x21" + ip_udp(invite(1))
    pppoe = struct.pack(">BBHH", 0x11, 0, 1, len(ppp)) + ppp
    mpls = struct.pack(">I", (100 << 12) | 0x100 | 64) + ip_udp(invite(2))
    payloads, _ = decode(tmp_path, [ether(pppoe, 0x8864), ether(mpls, 0x8847)])
    assert [p.data for p in payloads] == [invite(1), invite(2)]


def test_non_ip_frames_are_counted_by_kind(tmp_path: Path) -> None:
    _, summary = decode(tmp_path, [ether(bytes(28), 0x0806), ether(bytes(40), 0x88CC)])
    assert summary.unsupported == {"arp": 1, "lldp": 1}
    assert not summary.malformed


# -- IP ------------------------------------------------------------------------------------


def test_ipv6_extension_headers_are_walked(tmp_path: Path) -> None:
    pkt = (
        IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["fd00::9"])
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(offset=0, m=0, id=5)  # an atomic fragment (RFC 6946)
        / UDP(sport=5060, dport=5060)
        / Raw(invite())
    )
    payloads, _ = decode(tmp_path, [ether(bytes(pkt), 0x86DD)])
    assert [p.data for p in payloads] == [invite()]
    assert not payloads[0].fragmented


BIG = sip_request(
    "INVITE",
    call_id="big@test",
    cseq=1,
    branch="z9hG4bK-big",
    body=b"v=0\r\n" + b"a=x-filler:" + b"0123456789" * 300 + b"\r\n",
)


def test_ipv4_fragments_out_of_order(tmp_path: Path) -> None:
    pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=777) / UDP(sport=5060, dport=5060) / Raw(BIG)
    frags = [bytes(f) for f in fragment(pkt, fragsize=1000)]
    assert len(frags) == 4
    order = [2, 0, 3, 1]
    noise = ether(ip_udp(b"\x80" + bytes(100), sport=4000, dport=4002))
    frames = [noise] + [ether(frags[i]) for i in order]
    payloads, summary = decode(tmp_path, frames)
    assert len(payloads) == 1
    p = payloads[0]
    assert p.data == BIG
    assert p.fragmented is True
    assert p.frame == 2  # the first fragment in the file (offset 2000 here)
    assert p.ts_ns == T0_NS + 1_000_000
    assert not summary.malformed


def test_ipv6_fragments_out_of_order(tmp_path: Path) -> None:
    pkt = (
        IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrFragment(id=99)
        / UDP(sport=5060, dport=5060)
        / Raw(BIG)
    )
    frags = [bytes(f) for f in fragment6(pkt, 1280)]
    assert len(frags) == 3
    frames = [ether(frags[i], 0x86DD) for i in (1, 2, 0)]
    payloads, _ = decode(tmp_path, frames)
    assert [(p.data, p.fragmented, p.frame, p.src) for p in payloads] == [(BIG, True, 1, "fd00::1")]


def test_interleaved_datagrams_are_kept_apart_by_id(tmp_path: Path) -> None:
    def frags(ident: int, body: bytes) -> list[bytes]:
        pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / UDP(sport=5060, dport=5060) / Raw(body)
        return [ether(bytes(f)) for f in fragment(pkt, fragsize=800)]

    other = BIG.replace(b"big@test", b"big@else")
    a, b = frags(1, BIG), frags(2, other)
    frames = [x for pair in zip(a, b, strict=True) for x in pair]
    payloads, _ = decode(tmp_path, frames)
    assert sorted(p.data for p in payloads) == sorted([BIG, other])


def test_incomplete_fragments_at_the_end_are_an_anomaly(tmp_path: Path) -> None:
    pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=5) / UDP(sport=5060, dport=5060) / Raw(BIG)
    frags = [ether(bytes(f)) for f in fragment(pkt, fragsize=1000)]
    payloads, summary = decode(tmp_path, [frags[0], frags[1], frags[3]])
    assert payloads == []
    anomaly = summary.malformed["incomplete IP fragments"]
    assert (anomaly.count, anomaly.frames, anomaly.detail) == (1, [1], "incomplete at end of file")


def test_fragment_timeout_bounds_memory(tmp_path: Path) -> None:
    from sipstats.capture.defrag import TIMEOUT_NS

    pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=5) / UDP(sport=5060, dport=5060) / Raw(BIG)
    frags = [ether(bytes(f)) for f in fragment(pkt, fragsize=1000)]
    late = T0_NS + TIMEOUT_NS + 1_000_000_000
    items = [(T0_NS, frags[0]), (late, frags[1]), (late, frags[2]), (late, frags[3])]
    path = write(tmp_path / "late.pcap", pcap_bytes(items))
    summary = InputSummary(str(path))
    assert list(iter_payloads(path, summary)) == []
    assert summary.malformed["incomplete IP fragments"].count == 2  # the expired and the rest


@pytest.mark.parametrize(
    "outer",
    [
        lambda inner: bytes(IP(src="1.1.1.1", dst="2.2.2.2", proto=4) / Raw(inner)),
        lambda inner: bytes(IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x0800) / Raw(inner)),
        lambda inner: bytes(
            IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x6558) / Ether(type=0x0800) / Raw(inner)
        ),
        lambda inner: bytes(
            IP(src="1.1.1.1", dst="2.2.2.2")
            / GRE(proto=0x88BE, seqnum_present=1, sequence_number=1)
            / Raw(b"\x10\x01\x00\x07" + bytes(4))
            / Ether(type=0x0800)
            / Raw(inner)
        ),
        lambda inner: bytes(
            IP(src="1.1.1.1", dst="2.2.2.2")
            / GRE(proto=0x22EB)
            / Raw(bytes(11) + b"\x01" + bytes(8))
            / Ether(type=0x0800)
            / Raw(inner)
        ),
        lambda inner: bytes(
            IP(src="1.1.1.1", dst="2.2.2.2", proto=47)
            / Raw(struct.pack(">HHHHI", 0x3001, 0x880B, len(inner) + 4, 7, 1))
            / PPP(proto=0x0021)
            / Raw(inner)
        ),
    ],
    ids=["ipip", "gre-ipv4", "gre-ethernet", "erspan-ii", "erspan-iii", "pptp-gre-ppp"],
)
def test_tunnels_are_unwrapped(tmp_path: Path, outer: Any) -> None:
    inner = ip_udp(invite(), src="10.9.9.1", dst="10.9.9.2")
    payloads, summary = decode(tmp_path, [ether(outer(inner))])
    assert [(p.src, p.dst, p.data) for p in payloads] == [("10.9.9.1", "10.9.9.2", invite())]
    assert not summary.malformed


def test_ipv6_in_ipv4(tmp_path: Path) -> None:
    inner = ip_udp(invite(), src="fd00::1", dst="fd00::2")
    payloads, _ = decode(tmp_path, [ether(bytes(IP(proto=41) / Raw(inner)))])
    assert [p.src for p in payloads] == ["fd00::1"]


def test_tunnel_loops_stop(tmp_path: Path) -> None:
    inner = ip_udp(invite())
    for _ in range(12):
        inner = bytes(IP(proto=4) / Raw(inner))
    payloads, summary = decode(tmp_path, [ether(inner)])
    assert payloads == []
    assert summary.malformed["undecodable packet"].detail == "tunnels nested too deep"


# -- UDP -----------------------------------------------------------------------------------


def test_sip_is_found_on_any_port_and_rtp_is_skipped(tmp_path: Path) -> None:
    rtp = b"\x80\x08" + bytes(170)
    frames = [
        ether(ip_udp(invite(1), sport=40000, dport=52380)),  # SIP off the usual ports
        ether(ip_udp(rtp, sport=20000, dport=20002)),
        ether(ip_udp(b"hello", sport=5060, dport=5060)),  # not SIP, but on a SIP port
        ether(ip_udp(b"GET / HTTP/1.1\r\n\r\n", sport=4000, dport=80)),
        ether(ip_udp(b"NOTIFY * HTTP/1.1\r\n", sport=1900, dport=1900)),
        ether(ip_udp(b"FOOBAR sip:x@y SIP/2.0\r\n\r\n", sport=1, dport=2)),  # extension method
    ]
    payloads, _ = decode(tmp_path, frames)
    assert [(p.frame, p.data[:6]) for p in payloads] == [
        (1, b"INVITE"),
        (3, b"hello"),
        (6, b"FOOBAR"),
    ]


def test_keepalives_are_counted_not_emitted(tmp_path: Path) -> None:
    frames = [
        ether(ip_udp(b"\r\n\r\n")),
        ether(ip_udp(b"\r\n")),
        ether(ip_udp(b"    ")),  # blanks some phones send
        ether(ip_udp(b"\r\n" + invite())),
    ]
    payloads, summary = decode(tmp_path, frames)
    assert [p.data for p in payloads] == [invite()]
    assert summary.keepalives == 4


def test_ports_restrict_decoding(tmp_path: Path) -> None:
    frames = [
        ether(ip_udp(invite(1), sport=5060, dport=5060)),
        ether(ip_udp(invite(2), sport=5080, dport=5070)),
        ether(ip_udp(b"junk", sport=6000, dport=5070)),
    ]
    payloads, _ = decode(tmp_path, frames, ports=frozenset({5070}))
    assert [p.data for p in payloads] == [invite(2), b"junk"]


def test_snaplen_cut_packets_are_flagged(tmp_path: Path) -> None:
    whole = ether(ip_udp(invite()))
    payloads, summary = decode(tmp_path, [(whole[:120], len(whole)), whole])
    assert [p.truncated for p in payloads] == [True, False]
    assert payloads[0].data == invite()[: 120 - 42]
    assert not summary.malformed


def test_udp_length_beyond_the_packet_is_an_anomaly(tmp_path: Path) -> None:
    raw = bytearray(ip_udp(invite()))
    raw[24:26] = struct.pack(">H", 4000)  # UDP length field
    payloads, summary = decode(tmp_path, [ether(bytes(raw))])
    assert payloads == []
    assert summary.malformed["undecodable packet"].detail == "UDP length 4000 beyond the IP payload"


# -- HEP -----------------------------------------------------------------------------------


def test_hep3_is_unwrapped_with_inner_addresses_and_time(tmp_path: Path) -> None:
    frames = [
        ether(ip_udp(hep3(invite()), src="10.1.1.1", dst="10.1.1.2", sport=40000, dport=9060)),
        ether(
            ip_udp(
                hep3(
                    ok(),
                    src="fd00::2",
                    dst="fd00::1",
                    sport=5080,
                    dport=5060,
                    proto=6,
                    compressed=True,
                ),
                sport=40000,
                dport=9061,
            )
        ),
        ether(ip_udp(hep3(b"SYSLOG: hello", ptype=100), sport=40000, dport=9060)),
        ether(ip_udp(hep3(b'{"rtcp": 1}', ptype=5), sport=40000, dport=9060)),
    ]
    payloads, summary = decode(tmp_path, frames)
    assert [(p.src, p.sport, p.dst, p.dport, p.transport, p.encap, p.data) for p in payloads] == [
        ("192.168.1.1", 5060, "192.168.1.2", 5080, "udp", "hep", invite()),
        ("fd00::2", 5080, "fd00::1", 5060, "tcp", "hep", ok()),
    ]
    assert payloads[0].ts_ns == 1_600_000_000_123_456_000
    assert payloads[0].frame == 1
    assert summary.unsupported == {"HEP payload type 100": 1, "HEP payload type 5": 1}


def test_damaged_hep_is_an_anomaly(tmp_path: Path) -> None:
    bad = b"HEP3\x00\x20" + struct.pack(">HHH", 0, 15, 200) + bytes(20)
    payloads, summary = decode(tmp_path, [ether(ip_udp(bad, sport=1, dport=9060))])
    assert payloads == []
    assert "impossible length 200" in summary.malformed["malformed HEP packet"].detail


def test_hep_ports_filter_applies_to_the_inner_packet(tmp_path: Path) -> None:
    frames = [ether(ip_udp(hep3(invite(), dport=5080), sport=1, dport=9060))]
    assert len(decode(tmp_path, frames, ports=frozenset({5080}))[0]) == 1
    assert decode(tmp_path, frames, ports=frozenset({5070}))[0] == []


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), v2=st.booleans())
def test_arbitrary_hep_bytes_raise_only_hep_error(body: bytes, v2: bool) -> None:
    data = (b"\x02\x1c\x02\x11" if v2 else b"HEP3") + body
    with contextlib.suppress(HepError):
        decode_hep(data)


def test_hepv2(tmp_path: Path) -> None:
    head = struct.pack(
        ">BBBBHH4s4s", 2, 28, 2, 17, 5060, 5062, bytes([10, 0, 0, 7]), bytes([10, 0, 0, 8])
    ) + struct.pack("<IIHH", 1_600_000_000, 5, 1, 0)
    payloads, _ = decode(tmp_path, [ether(ip_udp(head + invite(), sport=3000, dport=9060))])
    assert [(p.src, p.dport, p.ts_ns, p.encap) for p in payloads] == [
        ("10.0.0.7", 5062, 1_600_000_000_000_005_000, "hep")
    ]


# -- SCTP ----------------------------------------------------------------------------------


def test_sctp_data_chunks_and_fragments(tmp_path: Path) -> None:
    def sctp(*chunks: SCTPChunkData) -> bytes:
        pkt = IP(src="10.0.0.1", dst="10.0.0.2") / SCTP(sport=57098, dport=5060)
        for chunk in chunks:
            pkt = pkt / chunk
        return ether(bytes(pkt))

    whole = SCTPChunkData(tsn=1, stream_id=0, stream_seq=0, beginning=1, ending=1, data=invite(1))
    msg = invite(2)
    first = SCTPChunkData(tsn=2, stream_id=1, stream_seq=1, beginning=1, ending=0, data=msg[:100])
    last = SCTPChunkData(tsn=3, stream_id=1, stream_seq=1, beginning=0, ending=1, data=msg[100:])
    payloads, _ = decode(tmp_path, [sctp(whole), sctp(first), sctp(last)])
    assert [(p.transport, p.frame, p.data) for p in payloads] == [
        ("sctp", 1, invite(1)),
        ("sctp", 3, msg),
    ]


# -- TCP hand-off --------------------------------------------------------------------------


class FakeReassembler:
    """Records what the decoder hands to the TCP stage (the contract of tcp.TcpReassembler)."""

    calls: ClassVar[list[tuple[Any, ...]]] = []

    def __init__(self, file: str, summary: InputSummary, ports: frozenset[int] | None) -> None:
        self.file = file

    def feed(
        self,
        ts_ns: int,
        frame: int,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        seq: int,
        flags: int,
        payload: bytes,
        truncated: bool,
    ) -> list[Payload]:
        FakeReassembler.calls.append(
            (ts_ns, frame, src, sport, dst, dport, seq, flags, payload, truncated)
        )
        if looks_like_sip(payload):
            return [Payload(ts_ns, self.file, frame, src, sport, dst, dport, "tcp", payload)]
        return []

    def flush(self) -> list[Payload]:
        FakeReassembler.calls.append(("flush",))
        return []


def test_every_tcp_segment_goes_to_the_reassembler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scapy.layers.inet import TCP

    from sipstats.capture import tcp

    monkeypatch.setattr(tcp, "TcpReassembler", FakeReassembler)
    FakeReassembler.calls = []

    def seg(flags: str, seq: int, data: bytes = b"") -> bytes:
        pkt = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5064, dport=5060, flags=flags, seq=seq)
        return ether(bytes(pkt / Raw(data)) if data else bytes(pkt))

    frames = [
        seg("S", 100),
        seg("A", 101),
        seg("PA", 101, invite()),
        seg("FA", 101 + len(invite())),
    ]
    payloads, _ = decode(tmp_path, frames)
    assert [p.data for p in payloads] == [invite()]
    assert [c[:8] for c in FakeReassembler.calls[:4]] == [
        (T0_NS, 1, "10.0.0.1", 5064, "10.0.0.2", 5060, 100, 0x02),
        (T0_NS + 1_000_000, 2, "10.0.0.1", 5064, "10.0.0.2", 5060, 101, 0x10),
        (T0_NS + 2_000_000, 3, "10.0.0.1", 5064, "10.0.0.2", 5060, 101, 0x18),
        (T0_NS + 3_000_000, 4, "10.0.0.1", 5064, "10.0.0.2", 5060, 101 + len(invite()), 0x11),
    ]
    assert [c[8] for c in FakeReassembler.calls[:4]] == [b"", b"", invite(), b""]
    assert FakeReassembler.calls[-1] == ("flush",)


def test_shuffled_fragments_of_many_datagrams(tmp_path: Path) -> None:
    """Fragments of 30 datagrams, shuffled within a window, all come out whole."""
    rng = random.Random(4)
    bodies = [BIG.replace(b"big@test", f"big-{i}@test".encode()) for i in range(30)]
    frames = []
    for i, body in enumerate(bodies):
        pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=i) / UDP(sport=5060, dport=5060) / Raw(body)
        frames += [ether(bytes(f)) for f in fragment(pkt, fragsize=1200)]
    for start in range(0, len(frames), 8):
        window = frames[start : start + 8]
        rng.shuffle(window)
        frames[start : start + 8] = window
    payloads, summary = decode(tmp_path, frames)
    assert sorted(p.data for p in payloads) == sorted(bodies)
    assert not summary.malformed


def test_fragment_caps_bound_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sipstats.capture import defrag

    monkeypatch.setattr(defrag, "MAX_PENDING", 2)
    firsts = []
    for ident in (1, 2, 3):
        pkt = IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / UDP(sport=5060, dport=5060)
        firsts.append(ether(bytes(fragment(pkt / Raw(BIG), fragsize=1000)[0])))
    payloads, summary = decode(tmp_path, firsts)
    assert payloads == []
    anomaly = summary.malformed["incomplete IP fragments"]
    assert anomaly.count == 3
    assert anomaly.detail == "incomplete: crowded out by newer fragments"
    assert anomaly.frames == [1, 2, 3]


def test_ipv6_and_vlan_rtp_is_skipped_and_sip_found(tmp_path: Path) -> None:
    rtp = b"\x80\x08" + bytes(160)
    v6 = {"src": "fd00::1", "dst": "fd00::2"}
    frames = [
        ether(ip_udp(rtp, sport=20000, dport=20002, **v6), 0x86DD),
        ether(ip_udp(invite(1), sport=40000, dport=40002, **v6), 0x86DD),
        ether(ip_udp(rtp, sport=20000, dport=20002), vlans=[(0x8100, 5)]),
        ether(ip_udp(invite(2), sport=40000, dport=40002), vlans=[(0x8100, 5)]),
        ether(
            ip_udp(rtp, sport=20000, dport=20002, **v6), 0x86DD, vlans=[(0x88A8, 1), (0x8100, 2)]
        ),
    ]
    payloads, summary = decode(tmp_path, frames)
    assert [(p.frame, p.data) for p in payloads] == [(2, invite(1)), (4, invite(2))]
    assert not summary.malformed


def test_tcp_outside_the_ports_is_not_fed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scapy.layers.inet import TCP

    from sipstats.capture import tcp

    monkeypatch.setattr(tcp, "TcpReassembler", FakeReassembler)
    FakeReassembler.calls = []
    segs = [
        ether(bytes(IP() / TCP(sport=5064, dport=5060, flags="PA") / Raw(invite(1)))),
        ether(bytes(IP() / TCP(sport=5064, dport=5070, flags="PA") / Raw(invite(2)))),
    ]
    payloads, _ = decode(tmp_path, segs, ports=frozenset({5070}))
    assert [p.data for p in payloads] == [invite(2)]
    assert [c[5] for c in FakeReassembler.calls if len(c) > 1] == [5070]
