"""Crafted hostile captures, one builder per attack of issue 13, built byte by byte.

Each builder returns the bytes of a whole capture file, with a size parameter where the
attack is about size: the tests use small ones (they check the behaviour, never the time), and
``benchmarks/hostile.py`` writes the full-size ones to measure peak memory and run time before
and after the caps. :func:`inputs` names them all; the fuzz regression corpus holds the small
ones.
"""

from __future__ import annotations

import gzip
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Final

from tests.capture_builders import DLT_EN10MB, T0_NS, _block, ether, invite, ok, shb
from tests.sipfactory import sip_request, sip_response

Builder = Callable[[int], bytes]

HUGE_DIGITS: Final = "9" * 5000
"""More digits than CPython's int() accepts from text (4,300)."""
SERVER: Final = ("10.0.0.2", 5060)


def _pcap(frames: list[tuple[int, bytes]], snaplen: int = 65535) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, DLT_EN10MB)]
    for ts, data in frames:
        sec, frac = divmod(ts, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, frac // 1000, len(data), len(data)) + data)
    return b"".join(out)


def _csum(data: bytes) -> int:
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(
    proto: int,
    payload: bytes,
    src: str = "10.0.0.1",
    dst: str = SERVER[0],
    *,
    ident: int = 1,
    frag_offset: int = 0,
    more: bool = False,
) -> bytes:
    """An IPv4 header (checksummed) + payload; ``frag_offset`` in bytes, a multiple of 8."""
    flags = (0x2000 if more else 0) | frag_offset // 8
    addr = bytes(int(x) for x in src.split(".")) + bytes(int(x) for x in dst.split("."))
    head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0) + addr
    head = head[:10] + struct.pack("!H", _csum(head)) + head[12:]
    return head + payload


def udp_frame(payload: bytes, sport: int = 5060, dport: int = 5060) -> bytes:
    return ether(ipv4(17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload))


def tcp_frame(
    payload: bytes, seq: int, sport: int = 40000, dport: int = 5060, src: str = "10.0.0.1"
) -> bytes:
    head = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 0x50, 0x18, 65535, 0, 0)
    return ether(ipv4(6, head + payload, src=src))


def _message(n: int, **headers: str) -> bytes:
    extra = [(name.replace("_", "-"), value) for name, value in headers.items()]
    return sip_request("INVITE", call_id=f"h{n}@x", cseq=n, branch=f"z9hG4bK-h{n}", headers=extra)


# -- one packet must not lose the report -----------------------------------------------------


def long_number(header: str, transport: str) -> bytes:
    """A good INVITE, then one whose ``header`` carries 5,000 digits, then another good one."""
    bad = _message(2, **{header.replace("-", "_"): HUGE_DIGITS})
    if header == "CSeq":
        bad = bad.replace(b"CSeq: 2 INVITE", f"CSeq: {HUGE_DIGITS} INVITE".encode())
    if header == "Content-Length":
        bad = bad.replace(b"Content-Length: 0\r\n", b"")
    messages = [_message(1), bad, _message(3)]
    if transport == "udp":
        frames = [udp_frame(m) for m in messages]
    else:
        frames, seq = [], 1000
        for m in messages:
            frames.append(tcp_frame(m, seq))
            seq += len(m)
    return _pcap([(T0_NS + i * 1_000_000, f) for i, f in enumerate(frames)])


def _idb(options: bytes = b"") -> bytes:
    return _block(1, struct.pack("<HHI", DLT_EN10MB, 0, 0) + options, "<")


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _epb(iface: int, units: int, data: bytes) -> bytes:
    head = struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
    return _block(6, head + data + b"\x00" * (-len(data) % 4), "<")


def pcapng_time(kind: str) -> bytes:
    """Interface 0 is sane, interface 1 (or one packet) carries an impossible time; a good
    message on interface 0 before and after it."""
    good_us = T0_NS // 1000
    options = {
        "tsoffset-9e9s": _option(14, struct.pack("<q", 9 * 10**9)),
        "tsoffset-min": _option(14, struct.pack("<q", -(2**63))),
        "tsresol-s": _option(9, b"\x00"),
        "ts-max": b"",
    }[kind]
    bad_units = {"ts-max": 2**64 - 1, "tsresol-s": 10**10}.get(kind, good_us)
    return (
        shb()
        + _idb()
        + _idb(options + _option(0, b""))
        + _epb(0, good_us, udp_frame(invite(1)))
        + _epb(1, bad_units, udp_frame(invite(2)))
        + _epb(0, good_us + 1000, udp_frame(invite(3)))
    )


def idb_option_past_block() -> bytes:
    """An interface description whose option claims 200 bytes in a 24-byte block."""
    cut = struct.pack("<HHI", DLT_EN10MB, 0, 0) + struct.pack("<HH", 2, 200) + b"eth0"
    return shb() + _idb() + _block(1, cut, "<") + _epb(0, T0_NS // 1000, udp_frame(invite(1)))


def interface_per_packet(count: int) -> bytes:
    """``count`` interfaces, each declared just before a packet on it (a non-SIP datagram):
    every packet follows an interface change. An INVITE on interface 0 first, one on the last
    interface, and an OK on interface 0 last."""
    us = T0_NS // 1000
    noise = udp_frame(b"x" * 8, 40000, 9)
    blocks = [shb(), _idb(), _epb(0, us, udp_frame(invite(1)))]
    for iface in range(1, count):
        blocks += [_idb(), _epb(iface, us + iface, noise)]
    blocks += [
        _epb(count - 1, us + count, udp_frame(invite(2))),
        _epb(0, us + count + 1, udp_frame(ok(1))),
    ]
    return b"".join(blocks)


def negative_tsoffset() -> bytes:
    """Packets stamped before 1970 through a negative ``if_tsoffset``, in order."""
    offset = _option(14, struct.pack("<q", -2 * 10**9)) + _option(0, b"")
    return (
        shb()
        + _idb(offset)
        + _epb(0, 1_000_000, udp_frame(invite(1)))
        + _epb(0, 2_000_000, udp_frame(ok(1)))
    )


def unknown_link_type() -> bytes:
    """Two records of LINKTYPE 147 (USER0), which no decoder knows."""
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)
    record = struct.pack("<IIII", T0_NS // 10**9, 0, 40, 40) + b"\x00" * 40
    return head + record * 2


# -- every buffer has a cap ----------------------------------------------------------------


def huge_caplen_gzip(scale: int) -> bytes:
    """Gzip pcap, snaplen 0xFFFFFFFF: a good record, then one claiming 0xF0000000 bytes
    followed by ``scale`` MiB of zeros."""
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFFFFFF, DLT_EN10MB)
    good = udp_frame(invite(1))
    sec = T0_NS // 10**9
    body = head + struct.pack("<IIII", sec, 0, len(good), len(good)) + good
    body += struct.pack("<IIII", sec, 1, 0xF0000000, 0xF0000000)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(body)]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(scale)]
    return b"".join(parts) + compressor.flush()


def tcp_streams(streams: int, body_kib: int) -> bytes:
    """``streams`` connections, each a header block without Content-Length, then
    ``body_kib`` KiB of body in 64 KiB segments, round robin; gzip-compressed as it is built
    (the full size is 1.5 GB before compression)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    parts = [compressor.compress(_pcap([]))]
    seqs = [1000] * streams
    ts = T0_NS

    def segment(i: int, data: bytes) -> bytes:
        nonlocal ts
        ts += 1000
        frame = tcp_frame(data, seqs[i], sport=10000 + i)
        seqs[i] += len(data)
        head = struct.pack("<IIII", ts // 10**9, ts % 10**9 // 1000, len(frame), len(frame))
        return compressor.compress(head + frame)

    for i in range(streams):
        head = sip_request("MESSAGE", call_id=f"s{i}@x", cseq=1, branch=f"z9hG4bK-s{i}")
        parts.append(segment(i, head.replace(b"Content-Length: 0\r\n", b"")))
    piece = b"x" * 65000
    for _ in range(max(1, body_kib * 1024 // len(piece))):
        parts.extend(segment(i, piece) for i in range(streams))
    return b"".join(parts) + compressor.flush()


def tcp_far_ahead(junk: int) -> bytes:
    """Message 1, ``junk`` segments 1 MB beyond the window, then message 2 in order."""
    first, second = invite(1), invite(2)
    frames = [tcp_frame(first, 1000)]
    frames += [tcp_frame(b"J" * 1000, 1000 + (1 << 20) + k * 1000) for k in range(junk)]
    frames.append(tcp_frame(second, 1000 + len(first)))
    return _pcap([(T0_NS + i * 1000, f) for i, f in enumerate(frames)])


def _udp_datagram(payload: bytes) -> bytes:
    return struct.pack("!HHHH", 5060, 5060, 8 + len(payload), 0) + payload


def fragments_overlapping(count: int) -> bytes:
    """``count`` fragments of one datagram, each 1,480 bytes, offsets 8 bytes apart."""
    piece = b"o" * 1480
    frames = [ether(ipv4(17, piece, ident=7, frag_offset=8 * k, more=True)) for k in range(count)]
    return _pcap([(T0_NS + k * 1000, f) for k, f in enumerate(frames)])


def _two_fragments() -> tuple[bytes, bytes]:
    datagram = _udp_datagram(invite(1))
    cut = 64
    return (
        ether(ipv4(17, datagram[:cut], ident=9, more=True)),
        ether(ipv4(17, datagram[cut:], ident=9, frag_offset=cut)),
    )


def fragment_twice() -> bytes:
    """A datagram in two fragments, the second seen twice (a duplicate on the capture path)."""
    first, second = _two_fragments()
    frames = [first, second, second]
    return _pcap([(T0_NS + k * 1000, f) for k, f in enumerate(frames)])


def fragment_empty() -> bytes:
    """An empty fragment at offset 0, then the two real fragments of the datagram."""
    first, second = _two_fragments()
    empty = ether(ipv4(17, b"", ident=9, more=True))
    frames = [empty, first, second]
    return _pcap([(T0_NS + k * 1000, f) for k, f in enumerate(frames)])


def long_header_values(messages: int, size: int) -> bytes:
    """``messages`` INVITEs and 503s whose User-Agent, Server and reason are ``size`` bytes long."""
    long_text = "A" * size
    frames: list[tuple[int, bytes]] = []
    for n in range(messages):
        request = _message(n, User_Agent=long_text)
        response = sip_response(
            503,
            long_text,
            call_id=f"h{n}@x",
            cseq=n,
            cseq_method="INVITE",
            branch=f"z9hG4bK-h{n}",
            to_tag="t",
            headers=[("Server", long_text)],
        )
        frames.append((T0_NS + n * 10**6, udp_frame(request)))
        frames.append((T0_NS + n * 10**6 + 500, udp_frame(response, 5060, 5060)))
    return _pcap(frames)


# -- packet text is inert --------------------------------------------------------------------


def csv_line_break() -> bytes:
    """A Call-ID with a bare CR and an LF, each followed by a formula."""
    frames = []
    for n, call_id in enumerate(("inj\r=1+1@x", "inj\n=2+2@x")):
        message = sip_request("INVITE", call_id=call_id, cseq=1, branch=f"z9hG4bK-c{n}")
        frames.append((T0_NS + n * 1000, udp_frame(message)))
    return _pcap(frames)


#: Terminal control sequences a hostile reason phrase carries.
CONTROLS: Final = (
    "\x1b[2J",  # clear screen
    "\x1b]0;owned\x07",  # OSC 0: window title, ended by BEL
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x07",  # BEL
    "\x7f",  # DEL
)


def terminal_controls() -> bytes:
    """A 503 whose reason phrase and Server header carry ESC/OSC/BEL/DEL sequences."""
    hostile = "Busy" + "".join(CONTROLS)
    request = invite(1)
    response = sip_response(
        503,
        hostile,
        call_id="call-1@test",
        cseq=1,
        cseq_method="INVITE",
        branch="z9hG4bK-1",
        to_tag="t",
        headers=[("Server", hostile)],
    )
    return _pcap([(T0_NS, udp_frame(request)), (T0_NS + 10**6, udp_frame(response))])


# -- damage keeps what came before it ----------------------------------------------------------


def many_messages(count: int) -> bytes:
    """``count`` INVITE/503 exchanges with varied text (so they compress like real traffic)."""
    frames = []
    for n in range(count):
        frames.append((T0_NS + n * 10**7, udp_frame(invite(n))))
        frames.append((T0_NS + n * 10**7 + 10**6, udp_frame(ok(n))))
    return _pcap(frames)


def flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def compressed_flipped(kind: str, count: int) -> bytes:
    """``many_messages(count)`` compressed with ``kind`` (gzip or xz), one middle byte flipped."""
    plain = many_messages(count)
    packed = gzip.compress(plain, mtime=0) if kind == "gzip" else lzma.compress(plain)
    return flip_middle_byte(packed)


def inputs(full: bool = False) -> Iterator[tuple[str, bytes]]:
    """Every crafted input, named: small for the tests and the corpus, ``full`` at the size
    the issue measured (up to 1 GiB decompressed; for ``benchmarks/hostile.py``)."""
    for transport in ("udp", "tcp"):
        for header in ("Content-Length", "CSeq", "Expires"):
            yield f"digits-{header.lower()}-{transport}.pcap", long_number(header, transport)
    for kind in ("tsoffset-9e9s", "tsoffset-min", "ts-max", "tsresol-s"):
        yield f"pcapng-{kind}.pcapng", pcapng_time(kind)
    yield "idb-option-past-block.pcapng", idb_option_past_block()
    yield "negative-tsoffset.pcapng", negative_tsoffset()
    yield "interface-per-packet.pcapng", interface_per_packet(20_000 if full else 4_200)
    yield "linktype-147.pcap", unknown_link_type()
    yield "huge-caplen.pcap.gz", huge_caplen_gzip(1024 if full else 1)
    yield "tcp-streams.pcap.gz", tcp_streams(*((1500, 1024) if full else (15, 64)))
    yield "tcp-far-ahead.pcap", tcp_far_ahead(65)
    yield "fragments-overlapping.pcap", fragments_overlapping(8190 if full else 100)
    yield "fragment-twice.pcap", fragment_twice()
    yield "fragment-empty.pcap", fragment_empty()
    yield "long-header-values.pcap", long_header_values(200 if full else 2, 30_000)
    yield "csv-line-break.pcap", csv_line_break()
    yield "terminal-controls.pcap", terminal_controls()
    yield "xz-flipped.pcap.xz", compressed_flipped("xz", 1500 if full else 150)
    yield "gzip-flipped.pcap.gz", compressed_flipped("gzip", 1500 if full else 150)
