"""Capture containers: pcap (µs/ns, both byte orders), pcapng, compression, damage, byte ranges."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipstats.capture import InputSummary, iter_payloads, record_boundaries
from sipstats.capture.records import Payload
from sipstats.errors import CaptureError
from tests.capture_builders import (
    DLT_EN10MB,
    DLT_RAW,
    DLT_SLL2,
    T0_NS,
    epb,
    ether,
    idb,
    invite,
    ip_udp,
    ok,
    other_block,
    pb,
    pcap_bytes,
    shb,
    spb,
    write,
)


def read(path: Path, **kwargs: object) -> tuple[list[Payload], InputSummary]:
    summary = InputSummary(str(path))
    return list(iter_payloads(path, summary, **kwargs)), summary  # type: ignore[arg-type]


def sll2(l3: bytes) -> bytes:
    """Linux cooked v2: protocol, reserved, ifindex, ARPHRD_ETHER, outgoing, 6-byte address."""
    return struct.pack(">HHIHBB8s", 0x0800, 0, 3, 1, 4, 6, b"\x02" * 6) + l3


FRAMES = [
    (T0_NS + 1_234_567_000, ether(ip_udp(invite(1)))),
    (T0_NS + 2_000_000_000, ether(ip_udp(b"\x80\x00" + bytes(170), sport=20000, dport=30000))),
    (T0_NS + 3_500_000_123, ether(ip_udp(ok(1), src="10.0.0.2", dst="10.0.0.1"))),
]


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_in_both_byte_orders_and_time_units(
    tmp_path: Path, endian: str, nano: bool
) -> None:
    path = write(tmp_path / "c.pcap", pcap_bytes(FRAMES, endian=endian, nano=nano))
    payloads, summary = read(path)
    assert [p.frame for p in payloads] == [1, 3]  # the RTP-like frame 2 is skipped
    assert payloads[0].data == invite(1)
    assert payloads[0].src == "10.0.0.1"
    assert payloads[0].dport == 5060
    # Microsecond files lose the nanoseconds; nanosecond files keep them.
    assert payloads[1].ts_ns == (T0_NS + 3_500_000_123 if nano else T0_NS + 3_500_000_000)
    assert summary.format == ("pcap-ns" if nano else "pcap")
    assert summary.packets == 3
    assert summary.link_types == ["EN10MB"]
    assert summary.first_ts_ns == T0_NS + 1_234_567_000
    assert summary.bytes == len(path.read_bytes()) - 24
    assert not summary.errors
    assert not summary.malformed


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_interfaces_with_own_link_types_and_resolutions(tmp_path: Path, endian: str) -> None:
    udp_ok = ip_udp(ok(1), src="10.0.0.2", dst="10.0.0.1")
    data = b"".join(
        [
            shb(endian, comment="made by a test"),
            idb(DLT_EN10MB, endian=endian),  # if_tsresol absent: microseconds
            other_block(0x0BAD, b"custom block, skipped", endian),
            idb(DLT_RAW, tsresol=9, endian=endian),  # nanoseconds
            idb(DLT_SLL2, tsresol=0x80 | 10, endian=endian),  # 2^-10 s
            epb(
                0,
                (T0_NS + 1_000_000_000) // 1000,
                ether(ip_udp(invite(1))),
                endian=endian,
                comment="a packet comment",
            ),
            other_block(5, b"\x00" * 20, endian),  # interface statistics
            epb(1, T0_NS + 1_500_000_001, udp_ok, endian=endian),
            epb(
                2, (T0_NS // 1_000_000_000 + 2) * 1024 + 512, sll2(ip_udp(invite(2))), endian=endian
            ),
            spb(ether(ip_udp(invite(3))), endian=endian),
            pb(0, (T0_NS + 4_000_000_000) // 1000, ether(ip_udp(invite(4))), endian=endian),
        ]
    )
    payloads, summary = read(write(tmp_path / "m.pcapng", data))
    assert [p.frame for p in payloads] == [1, 2, 3, 4, 5]
    assert [p.ts_ns for p in payloads] == [
        T0_NS + 1_000_000_000,
        T0_NS + 1_500_000_001,
        T0_NS + 2_500_000_000,
        T0_NS + 2_500_000_000,  # a Simple Packet Block has no time: the previous one stands
        T0_NS + 4_000_000_000,
    ]
    assert payloads[1].data == ok(1)
    assert summary.format == "pcapng"
    assert summary.link_types == ["EN10MB", "RAW", "LINUX_SLL2"]
    assert summary.packets == 5
    assert not summary.errors
    assert not summary.malformed


def test_a_second_section_resets_the_interfaces(tmp_path: Path) -> None:
    data = (
        shb("<")
        + idb(DLT_EN10MB)
        + epb(0, 1, ether(ip_udp(invite(1))))
        + shb(">")
        + idb(DLT_RAW, endian=">")
        + epb(0, 2, ip_udp(invite(2)), endian=">")
    )
    payloads, summary = read(write(tmp_path / "s.pcapng", data))
    assert [p.data for p in payloads] == [invite(1), invite(2)]
    assert summary.link_types == ["EN10MB", "RAW"]


@pytest.mark.parametrize(
    ("name", "compress"), [("gzip", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress)]
)
def test_compressed_captures_are_recognised_by_magic(
    tmp_path: Path, name: str, compress: object
) -> None:
    raw = pcap_bytes(FRAMES)
    plain, _ = read(write(tmp_path / "p.pcap", raw))
    # The file name says nothing about the compression: the magic bytes do.
    packed, summary = read(write(tmp_path / "capture.bin", compress(raw)))  # type: ignore[operator]
    assert packed == [p._replace(file=str(tmp_path / "capture.bin")) for p in plain]
    assert summary.compression == name
    assert summary.packets == 3


def test_compressed_pcapng_spanning_many_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipstats.capture import source

    monkeypatch.setattr(source, "CHUNK", 100)  # records straddle every refill
    blocks = [epb(0, i, ether(ip_udp(invite(i)))) for i in range(1, 40)]
    data = gzip.compress(shb() + idb(DLT_EN10MB) + b"".join(blocks))
    payloads, summary = read(write(tmp_path / "z.pcapng.gz", data))
    assert [p.data for p in payloads] == [invite(i) for i in range(1, 40)]
    assert not summary.errors


def test_truncated_last_record_keeps_every_complete_one(tmp_path: Path) -> None:
    raw = pcap_bytes(FRAMES)
    payloads, summary = read(write(tmp_path / "t.pcap", raw[:-57]))
    assert [p.frame for p in payloads] == [1]
    third = len(raw) - 16 - len(FRAMES[2][1])
    assert summary.errors == [
        f"truncated inside record 3 at byte offset {third}: "
        f"{len(FRAMES[2][1]) - 57} of {len(FRAMES[2][1])} captured bytes present"
    ]
    assert summary.packets == 2


def test_truncated_compressed_stream_is_an_error_not_a_crash(tmp_path: Path) -> None:
    packed = gzip.compress(pcap_bytes(_many_frames(300)))
    payloads, summary = read(write(tmp_path / "cut.pcap.gz", packed[: len(packed) // 2]))
    assert len(payloads) > 100  # what decompressed before the cut is kept
    assert any("gzip data damaged" in e for e in summary.errors)


def test_impossible_record_length_is_reported_and_skipped(tmp_path: Path) -> None:
    """A bogus record header between good records: the error names the offset; the reader
    resynchronises on the next pair of plausible headers, so the records after the damage are
    still read (tshark stops at the bogus header)."""
    good = pcap_bytes(FRAMES)
    first = 24 + 16 + len(FRAMES[0][1])
    bogus = struct.pack("<IIII", 1_700_000_001, 0, 2147483632, 2147483632)
    damaged = good[:first] + bogus + good[first:]
    payloads, summary = read(write(tmp_path / "b.pcap", damaged))
    assert [p.frame for p in payloads] == [1, 3]
    assert summary.errors == [
        f"record 2 at byte offset {first} claims 2147483632 captured bytes (limit 262144); "
        f"resynchronised at byte offset {first + 16} after skipping 16 bytes"
    ]


def test_impossible_length_without_a_good_record_after_it_stops_reading(tmp_path: Path) -> None:
    good = pcap_bytes(FRAMES[:1])
    damaged = good + struct.pack("<IIII", 1, 0, 2147483632, 5) + b"\xff" * 64
    payloads, summary = read(write(tmp_path / "b.pcap", damaged))
    assert len(payloads) == 1
    assert summary.errors[0].endswith("no plausible record follows, reading stopped")


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    data = (
        shb()
        + idb(DLT_EN10MB)
        + epb(0, 1, ether(ip_udp(invite(1))))
        + epb(0, 2, ether(ip_udp(invite(2))))
    )
    payloads, summary = read(write(tmp_path / "t.pcapng", data[:-30]))
    assert [p.data for p in payloads] == [invite(1)]
    assert len(summary.errors) == 1
    assert "truncated inside a block of type 6" in summary.errors[0]
    assert "(packet 2 if it was one)" in summary.errors[0]


def test_garbage_records_are_anomalies_not_errors(tmp_path: Path) -> None:
    garbage = bytes(range(7, 133))  # 126 bytes: an Ethernet frame of an unknown ethertype
    frames = [FRAMES[0], (T0_NS, garbage), (T0_NS, ether(b"\x43" + bytes(40))), FRAMES[2]]
    payloads, summary = read(write(tmp_path / "g.pcap", pcap_bytes(frames)))
    assert [p.frame for p in payloads] == [1, 4]
    assert summary.errors == []
    assert summary.malformed["undecodable packet"].count == 2
    assert summary.malformed["undecodable packet"].frames == [2, 3]


def test_header_only_is_zero_packets(tmp_path: Path) -> None:
    payloads, summary = read(write(tmp_path / "h.pcap", pcap_bytes([])))
    assert payloads == []
    assert summary.packets == 0
    assert summary.errors == []
    payloads, summary = read(write(tmp_path / "h.pcapng", shb() + idb(DLT_EN10MB)))
    assert payloads == []
    assert summary.packets == 0
    assert summary.errors == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (0 bytes), not a capture"),
        (b"INVITE sip:bob@example.com SIP/2.0\r\n", "not a pcap or pcapng capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap global header cut short (6 of 24 bytes)"),
        (gzip.compress(b"hello, not a capture"), "gzip-compressed data starts with"),
    ],
)
def test_unusable_files_raise_one_line_capture_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path / "bad.pcap", content)
    with pytest.raises(CaptureError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        iter_payloads(path, InputSummary(str(path)))
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        iter_payloads(tmp_path / "missing.pcap", InputSummary("missing.pcap"))


def _many_frames(n: int) -> list[tuple[int, bytes]]:
    return [(T0_NS + i * 1_000_000, ether(ip_udp(invite(i)))) for i in range(1, n + 1)]


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_byte_ranges_concatenate_to_the_whole_pcap(tmp_path: Path, parts: int) -> None:
    path = write(tmp_path / "r.pcap", pcap_bytes(_many_frames(50)))
    whole, _ = read(path)
    ranges = record_boundaries(path, parts)
    assert len(ranges) == parts
    assert ranges[0][0] == 0
    assert ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    pieces: list[Payload] = []
    counted = 0
    for start, end, first in ranges:
        got, summary = read(path, byte_range=(start, end, first))
        pieces += got
        counted += summary.packets
        # Without first_frame the reader counts the records before the range itself.
        assert read(path, byte_range=(start, end))[0] == got
    assert pieces == whole
    assert counted == 50


def test_byte_ranges_of_a_pcapng(tmp_path: Path) -> None:
    blocks = b"".join(epb(0, i, ether(ip_udp(invite(i)))) for i in range(1, 31))
    path = write(tmp_path / "r.pcapng", shb() + idb(DLT_EN10MB) + blocks)
    whole, _ = read(path)
    pieces = [p for r in record_boundaries(path, 4) for p in read(path, byte_range=r)[0]]
    assert pieces == whole
    assert [p.frame for p in pieces] == list(range(1, 31))


def test_byte_ranges_of_a_damaged_pcap_skip_the_damage_once(tmp_path: Path) -> None:
    raw = pcap_bytes(_many_frames(20))
    cut = len(pcap_bytes(_many_frames(10)))
    path = write(
        tmp_path / "d.pcap", raw[:cut] + struct.pack("<IIII", 1, 0, 1 << 31, 1) + raw[cut:]
    )
    whole, summary = read(path)
    assert len(whole) == 20
    assert len(summary.errors) == 1
    ranges = record_boundaries(path, 3)
    errors = []
    pieces = []
    for r in ranges:
        got, part = read(path, byte_range=r)
        pieces += got
        errors += part.errors
    assert pieces == whole
    assert errors == summary.errors


def test_compressed_files_are_one_range(tmp_path: Path) -> None:
    path = write(tmp_path / "r.pcap.xz", lzma.compress(pcap_bytes(_many_frames(5))))
    ((start, end, first),) = record_boundaries(path, 4)
    assert (start, first) == (0, 1)
    assert read(path, byte_range=(start, end, first))[0] == read(path)[0]


PCAP_HEADER = pcap_bytes([])
PCAPNG_HEADER = shb() + idb(DLT_EN10MB)
PCAP_BE_NS_HEADER = pcap_bytes([], endian=">", nano=True)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from([b"", PCAP_HEADER, PCAPNG_HEADER, PCAP_BE_NS_HEADER]),
    tail=st.binary(max_size=600),
)
def test_arbitrary_bytes_raise_nothing_but_capture_error(
    tmp_path: Path, prefix: bytes, tail: bytes
) -> None:
    path = write(tmp_path / "fuzz.pcap", prefix + tail)
    summary = InputSummary(str(path))
    try:
        for payload in iter_payloads(path, summary):
            assert isinstance(payload.data, bytes)
    except CaptureError:
        pass


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    packets=st.lists(st.binary(min_size=0, max_size=200), max_size=8),
    linktype=st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276]),
)
def test_arbitrary_packets_never_escape_the_decoder(
    tmp_path: Path, packets: list[bytes], linktype: int
) -> None:
    frames = [(T0_NS + i, data) for i, data in enumerate(packets)]
    path = write(tmp_path / "p.pcap", pcap_bytes(frames, linktype=linktype))
    _payloads, summary = read(path)
    assert summary.packets == len(packets)
    assert summary.errors == []


def test_pcapng_time_offset_option(tmp_path: Path) -> None:
    offset = struct.pack("<HHq", 14, 8, 3600) + struct.pack("<HH", 0, 0)  # if_tsoffset
    body = struct.pack("<HHI", DLT_EN10MB, 0, 0) + offset
    idb_with_offset = (
        struct.pack("<II", 1, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    )
    data = shb() + idb_with_offset + epb(0, 2_000_000, ether(ip_udp(invite(1))))
    payloads, _ = read(write(tmp_path / "o.pcapng", data))
    assert payloads[0].ts_ns == (3600 + 2) * 1_000_000_000
