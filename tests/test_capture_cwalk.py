"""The C record walk (``sipstats/capture/_pcapscan.c``) reads exactly what the Python reader does.

The walk takes plain IPv4/UDP records (classic pcap, and pcapng Enhanced Packet Blocks) off
the Python loop and hands every other record back.
Each capture here is read twice, with the walk and inside ``native.python_twins`` (the
pure-Python reader, the reference), and the messages table and every input summary (counts,
anomalies with their frames, errors) must be identical. The captures built here put every
hand-back case next to plain UDP: VLAN tags, Linux cooked v1/v2, SIP off the SIP ports, RTP,
TCP, IPv6, fragments, HEP, keep-alives, a timestamp that steps back, snaplen cuts, a damaged
record length and a truncated tail.
"""

from __future__ import annotations

import ctypes
import operator
import os
import signal
import struct
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scapy.layers.inet import IP, UDP, IPOption_NOP, fragment
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcapng

from sipstats import native
from sipstats.capture import pcap
from sipstats.capture.decode import Decoder
from sipstats.capture.reader import iter_payloads, open_capture
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from sipstats.messages import Capture, MessageTable, read_capture
from sipstats.sip import c_scanner
from tests import capture_builders
from tests.conftest import CORPUS, PEERS, SAMPLES
from tests.gil import counted_during
from tests.sipfactory import T0, UAC, UAS, sip_request, sip_response, tcp, udp, write_pcap


def _both(path: Path, **options: object) -> tuple[Capture, Capture]:
    with_c = read_capture(path, **options)  # type: ignore[arg-type]
    with native.python_twins(pcap.C_WALK_NAME):
        pure = read_capture(path, **options)  # type: ignore[arg-type]
    return with_c, pure


def _assert_same(with_c: Capture, pure: Capture) -> None:
    pd.testing.assert_frame_equal(with_c.messages, pure.messages)
    assert with_c.inputs == pure.inputs


def test_the_c_walk_is_built() -> None:
    """The test suite's install (``pip install -e .``) compiles it; without it, decoding is slow."""
    if os.environ.get("SIPSTATS_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("SIPSTATS_PURE_PYTHON is set: the pure-Python reader is under test")
    assert pcap.c_walk() is not None, "sipstats.capture._pcapscan is not built: pip install -e ."


@pytest.mark.parametrize("form", ["pcap", "pcapng"])
def test_plain_udp_comes_back_to_python_only_for_payloads(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding into a table, the walk parses plain UDP datagrams into it itself: none is
    handed back to the Python decoder and no Payload reaches the table (but a pcapng file's
    first packet block, which Python reads). Walking for payloads
    (``iter_payloads``), it builds one only for an address pair the Python decoder has named
    (``Decoder.pairs``): the first datagram of each pair is handed back, the rest stay in C."""
    if pcap.c_walk() is None or c_scanner() is None:
        pytest.skip("the C walk or the C parser is not built or is switched off")
    packets = [udp(_invite(n), n * 0.1) for n in range(20)]
    packets += [udp(_ok(n), n * 0.1 + 0.05, UAS, UAC) for n in range(20)]
    packets.sort(key=lambda p: p.time)
    path = tmp_path / f"plain.{form}"
    if form == "pcap":
        write_pcap(path, packets)
    else:
        wrpcapng(str(path), packets)
    handed_back: list[int] = []
    python_udp = Decoder.udp

    def counted(self: Decoder, *args: Any) -> None:
        handed_back.append(args[6].number)  # (buf, o, end, abuf, aoff, af, frame, ...)
        python_udp(self, *args)

    scanned: list[Payload] = []
    table_scan = MessageTable.scan

    def counted_scan(self: MessageTable, payloads: list[Payload], start: int, *rest: Any) -> int:
        scanned.extend(payloads[start:])
        return table_scan(self, payloads, start, *rest)

    monkeypatch.setattr(Decoder, "udp", counted)
    monkeypatch.setattr(MessageTable, "scan", counted_scan)
    capture = read_capture(path)
    assert len(capture.messages) == 40
    assert capture.inputs[0].sip_messages == 40
    first_block = [1] if form == "pcapng" else []  # Python reads it, to find where to start
    assert handed_back == first_block
    assert len(scanned) == len(first_block)
    handed_back.clear()
    assert len(list(iter_payloads(path, InputSummary(str(path))))) == 40
    assert handed_back == [1, 2]  # the first INVITE and the first 200 OK


#: Walks of 400,000 RTP records (each a few milliseconds) in the test below.
WALKS = 20


def test_the_walk_over_skipped_records_lets_other_threads_run() -> None:
    """Records that cannot be SIP (RTP) are walked without the GIL by a walk into the C
    builder (a decoding thread's): a thread that needs it counts while long walks run
    (several: each gives it a chance), and each still reads every record."""
    walker = pcap.c_walk()
    intake = MessageTable().intake(None, keep_duplicates=False)
    if walker is None or intake is None:
        pytest.skip("the C walk or the C builder is not built or is switched off")
    rtp = Ether() / IP(src=UAC[0], dst=UAS[0]) / UDP(sport=40000, dport=40002)
    frame = bytes(rtp / Raw(b"\x80\x00" + bytes(10)))
    records = 400_000
    buf = (struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + frame) * records
    header = (False, 16, pcap.MAX_CAPLEN, 1000, 0, pcap.BATCH, 1)
    walking = walker.Walker((frozenset({5060}), False), (Payload, "f.pcap", "udp", {}))
    walk = partial(walking.walk, header, buf, 0, len(buf), 0, 0, 0, -1)
    states, counted = counted_during(lambda: {walk([], True, intake)[:2] for _ in range(WALKS)})
    assert states == {(len(buf), records)}
    assert counted > 0


def _invite(n: int) -> bytes:
    return sip_request("INVITE", call_id=f"walk-{n}@test", branch=f"z9hG4bK-walk-{n}", cseq=n + 1)


def _ok(n: int) -> bytes:
    dialog = {"call_id": f"walk-{n}@test", "branch": f"z9hG4bK-walk-{n}", "cseq": 1}
    return sip_response(200, "OK", cseq_method="INVITE", **dialog)


def _rtp(t: float) -> Packet:
    pkt = Ether() / IP(src=UAC[0], dst=UAS[0]) / UDP(sport=40000, dport=40002)
    pkt = pkt / Raw(b"\x80\x00" + bytes(170))
    pkt.time = T0 + t
    return pkt


def _mixed_packets() -> list[Packet]:
    """Plain SIP over UDP between every kind of record the walk must hand back."""
    packets: list[Packet] = []
    t = 0.0
    for n in range(12):
        t += 0.05
        packets += [udp(_invite(n), t), _rtp(t + 0.01), udp(_ok(n), t + 0.02, UAS, UAC)]
    # SIP on 5080: recognised by its start line, off the SIP ports
    packets.append(udp(_invite(100), 1.0, (UAC[0], 5080), (UAS[0], 5080)))
    # 802.1Q and QinQ tags
    for tags, n in (([7], 101), ([1, 2], 102)):
        pkt = Ether()
        for tag in tags:
            pkt = pkt / Dot1Q(vlan=tag)
        pkt = pkt / IP(src=UAC[0], dst=UAS[0]) / UDP(sport=5060, dport=5060) / Raw(_invite(n))
        pkt.time = T0 + 1.1
        packets.append(pkt)
    # TCP, IPv6, a CRLF keep-alive, a non-SIP datagram on 5060
    packets.append(tcp(_invite(103), 1.3, seq=1000))
    packets.append(udp(_invite(104), 1.4, ("2001:db8::1", 5060), ("2001:db8::2", 5060)))
    packets.append(udp(b"\r\n\r\n", 1.5))
    packets.append(udp(b"\x00\x01 not sip at all", 1.6))
    packets.append(
        udp(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n", 1.6, (UAC[0], 40000), (UAS[0], 8080))
    )
    # an INVITE in IP fragments
    sdp = b"v=0\r\n" + b"a=x\r\n" * 600
    big = sip_request("INVITE", call_id="walk-frag@test", cseq=1, branch="z9hG4bK-frag", body=sdp)
    frags = fragment(IP(src=UAC[0], dst=UAS[0]) / UDP(sport=5060, dport=5060) / Raw(big), 1400)
    for i, piece in enumerate(frags):
        packets.append(Ether() / piece)
        packets[-1].time = T0 + 1.7 + i / 100
    for pkt in packets[-len(frags) - 6 : -len(frags)]:
        pkt.time = T0 + 1.65
    # a timestamp two seconds back, then time goes on
    packets += [udp(_invite(105), -1.0), udp(_invite(106), 2.0)]
    return packets


@pytest.mark.parametrize("form", ["pcap", "pcapng"])
def test_mixed_records_read_the_same(form: str, tmp_path: Path) -> None:
    path = tmp_path / f"mixed.{form}"
    if form == "pcap":
        write_pcap(path, _mixed_packets())
    else:
        wrpcapng(str(path), _mixed_packets())
    with_c, pure = _both(path)
    _assert_same(with_c, pure)
    assert len(pure.messages) >= 30
    assert pure.inputs[0].malformed["timestamp out of order"].count == 1


def test_a_ports_filter_reads_the_same(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "mixed.pcap", _mixed_packets())
    with_c, pure = _both(path, ports=[5080])
    _assert_same(with_c, pure)
    assert set(pure.messages["dport"]) == {5080}


def test_cooked_captures_read_the_same(tmp_path: Path) -> None:
    """Linux cooked v1 (113): the walk reads it like Ethernet, with a 16-byte header."""
    packets = []
    for n in range(6):
        pkt = CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, proto=0x0800)
        pkt = pkt / IP(src=UAC[0], dst=UAS[0]) / UDP(sport=5060, dport=5060) / Raw(_invite(n))
        pkt.time = T0 + n
        packets.append(pkt)
    path = write_pcap(tmp_path / "sll.pcap", packets, linktype=113)
    with_c, pure = _both(path)
    _assert_same(with_c, pure)
    assert len(pure.messages) == 6


def test_snaplen_and_damage_read_the_same(tmp_path: Path) -> None:
    """Records cut by the snaplen, an impossible record length, and a file cut mid-record."""
    path = write_pcap(tmp_path / "cut.pcap", _mixed_packets()[:30], snaplen=200)
    with_c, pure = _both(path)
    _assert_same(with_c, pure)
    whole = write_pcap(tmp_path / "whole.pcap", _mixed_packets()[:30]).read_bytes()
    damaged = bytearray(whole)
    second = 24 + 16 + int.from_bytes(whole[32:36], "little")
    damaged[second + 8 : second + 12] = (10**7).to_bytes(4, "little")  # record 2's caplen
    (tmp_path / "damaged.pcap").write_bytes(bytes(damaged[:-50]))
    with_c, pure = _both(tmp_path / "damaged.pcap")
    _assert_same(with_c, pure)
    assert len(pure.inputs[0].errors) == 2  # the resynchronisation and the truncated tail


def _with_ip_options(
    payload: bytes, t: float, src: tuple[str, int], dst: tuple[str, int]
) -> Packet:
    """A datagram with IPv4 options: the walk hands its record back to Python."""
    pkt = Ether() / IP(src=src[0], dst=dst[0], options=[IPOption_NOP()] * 4)
    pkt = pkt / UDP(sport=src[1], dport=dst[1]) / Raw(payload)
    pkt.time = T0 + t
    return pkt


@pytest.mark.parametrize("keep", [False, True])
def test_copies_across_the_walk_and_python_read_the_same(tmp_path: Path, keep: bool) -> None:
    """Capture duplicates where one sighting is the walk's and the other Python's (IP
    options), either way round, between messages the C parser declines: one filter judges
    them all in capture order, as the pure-Python reader does."""
    packets: list[Packet] = []
    for n in range(8):
        t = n * 0.05
        first, second = (udp, _with_ip_options) if n % 2 else (_with_ip_options, udp)
        packets += [first(_invite(n), t, UAC, UAS), second(_invite(n), t + 0.00003, UAC, UAS)]
        packets.append(udp(b"INVITE sip:x SIP/2.0\r\n folded: no\r\n\r\n", t + 0.01))
    path = write_pcap(tmp_path / "copies.pcap", packets)
    with_c, pure = _both(path, keep_duplicates=keep)
    _assert_same(with_c, pure)
    assert pure.inputs[0].duplicates == 8
    assert len(pure.messages) == (16 if keep else 8)


def _shared_captures() -> list[Path]:
    found = [*sorted(CORPUS.glob("*/*.pcap*")), *sorted(PEERS.glob("**/*.pcap*"))]
    return [path for path in found if path.is_file()]


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.pcap")), ids=lambda p: p.name)
def test_samples_read_the_same(path: Path) -> None:
    _assert_same(*_both(path))


@pytest.mark.corpus
@pytest.mark.peers
def test_shared_captures_read_the_same(corpus_dir: Path, peers_dir: Path) -> None:
    """Every corpus and peer capture (one test: each file alone is quick)."""
    paths = _shared_captures()
    assert len(paths) > 40
    for path in paths:
        with_c, pure = _both(path)
        pd.testing.assert_frame_equal(with_c.messages, pure.messages, obj=str(path))
        assert with_c.inputs == pure.inputs, path


def test_a_second_section_forgets_the_first_sections_time_units(tmp_path: Path) -> None:
    """The walk is told each section's interfaces anew: a second section whose interface
    counts microseconds, after one counting nanoseconds, is read in microseconds. The first
    section's packet is the earlier (its stamp read in nanoseconds), so a stale unit would
    put the second section's packets forward in time too, where no check of the walk's
    would hand them back."""
    b = capture_builders
    us = b.T0_NS // 1000
    data = (
        b.shb()
        + b.idb(b.DLT_EN10MB, tsresol=9)
        + b.epb(0, us, b.ether(b.ip_udp(b.invite(1))))
        + b.shb()
        + b.idb(b.DLT_EN10MB, tsresol=6)
        + b.epb(0, us + 1_000_000, b.ether(b.ip_udp(b.invite(2))))
        + b.epb(0, us + 2_000_000, b.ether(b.ip_udp(b.ok(2), src="10.0.0.2", dst="10.0.0.1")))
    )
    with_c, pure = _both(b.write(tmp_path / "sections.pcapng", data))
    _assert_same(with_c, pure)
    assert with_c.messages["ts"].astype("int64").tolist() == [
        us,
        b.T0_NS + 1_000_000_000,
        b.T0_NS + 2_000_000_000,
    ]


def _walk_of_many(tmp_path: Path) -> tuple[Any, Any, tuple[bool, int, int, int]]:
    """The C walk, an open capture of 50 INVITEs and the header the walk's cut_points takes
    (skips without the C walk)."""
    walker = pcap.c_walk()
    if walker is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    path = tmp_path / "many.pcap"
    write_pcap(path, [udp(_invite(n), n * 0.001) for n in range(50)])
    src, header = open_capture(str(path), InputSummary(str(path)))
    return walker, src, (header.endian == ">", header.record_size, pcap.MAX_CAPLEN, header.frac_ns)


class _Interrupted(Exception):
    """What the test's signal handler raises, as Ctrl-C's raises KeyboardInterrupt."""


def test_the_cut_point_walk_stops_at_a_signal(tmp_path: Path) -> None:
    """Cutting a large file walks every record header, seconds where its pages come from disk,
    in C with the GIL held: Ctrl-C waited for the whole walk. The signal here is delivered
    before the walk starts, and nothing between it and the walk runs its handler (C calls
    only: ``map``, libc's ``raise`` through ctypes, where ``os.kill`` would run it): only the
    walk's own look for signals can, and then the walk stops unfinished, its result never
    made (without it, the handler ran once the walk had returned)."""
    walker, src, walk_header = _walk_of_many(tmp_path)
    returned: list[str] = []

    def interrupted(signum: int, frame: object) -> None:
        raise _Interrupted

    steps = [
        partial(getattr(ctypes.CDLL(None), "raise"), signal.SIGUSR1),
        partial(walker.cut_points, walk_header, src.buf, [len(src.buf)], 0),
        partial(returned.append, "the walk returned"),
    ]
    before = signal.signal(signal.SIGUSR1, interrupted)
    try:
        with pytest.raises(_Interrupted):
            list(map(operator.call, steps))
    finally:
        signal.signal(signal.SIGUSR1, before)
        src.close()
    assert returned == []


def test_a_signal_handler_that_changes_the_targets_leaves_the_walk_whole(tmp_path: Path) -> None:
    """The walk's look for signals runs Python handlers; one that empties the caller's list of
    targets made the walk read freed items (a segmentation fault): it walks its own copy."""
    walker, src, walk_header = _walk_of_many(tmp_path)
    targets = [len(src.buf) // 3, 2 * len(src.buf) // 3]
    undisturbed = walker.cut_points(walk_header, src.buf, list(targets), 0)
    steps = [
        partial(getattr(ctypes.CDLL(None), "raise"), signal.SIGUSR1),
        partial(walker.cut_points, walk_header, src.buf, targets, 0),
    ]
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: targets.clear())
    try:
        _, cuts = map(operator.call, steps)
    finally:
        signal.signal(signal.SIGUSR1, before)
        src.close()
    assert targets == []
    assert cuts == undisturbed
