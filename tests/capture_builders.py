"""Byte-level builders for capture-file fixtures: pcap and pcapng containers in any byte order,
link-layer headers, HEP datagrams. scapy builds the IP layers; these helpers wrap them exactly
as a capture tool would, so each test controls every field it checks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tests.sipfactory import T0, sip_request, sip_response

T0_NS = int(T0) * 1_000_000_000
DLT_EN10MB, DLT_NULL, DLT_RAW, DLT_LOOP, DLT_SLL, DLT_IPV4, DLT_IPV6, DLT_SLL2 = (
    1,
    0,
    101,
    108,
    113,
    228,
    229,
    276,
)


def invite(n: int = 1) -> bytes:
    return sip_request("INVITE", call_id=f"call-{n}@test", cseq=n, branch=f"z9hG4bK-{n}")


def ok(n: int = 1) -> bytes:
    return sip_response(
        200,
        "OK",
        call_id=f"call-{n}@test",
        cseq=n,
        cseq_method="INVITE",
        branch=f"z9hG4bK-{n}",
        to_tag="tt",
    )


def ip_udp(
    payload: bytes,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 5060,
    dport: int = 5060,
) -> bytes:
    """IPv4 or IPv6 + UDP + payload, as bytes."""
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return bytes(ip / UDP(sport=sport, dport=dport) / Raw(payload))


def ether(l3: bytes, ethertype: int = 0x0800, vlans: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet II with optional VLAN tags given as (tag protocol id, VLAN id) outermost first."""
    head = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    for tpid, vid in vlans:
        head += struct.pack(">HH", tpid, vid)
    return head + struct.pack(">H", ethertype) + l3


def pcap_bytes(
    frames: Iterable[tuple[int, bytes] | tuple[int, bytes, int]],
    *,
    linktype: int = DLT_EN10MB,
    endian: str = "<",
    nano: bool = False,
    snaplen: int = 65535,
) -> bytes:
    """A classic pcap file; frames are (ts_ns, bytes) or (ts_ns, bytes, original length)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for item in frames:
        ts, data = item[0], item[1]
        orig = item[2] if len(item) == 3 else len(data)  # type: ignore[misc]
        sec, frac = divmod(ts, 1_000_000_000)
        frac = frac if nano else frac // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _block(btype: int, body: bytes, endian: str) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(endian + "II", btype, size) + body + struct.pack(endian + "I", size)


def _options(opts: Sequence[tuple[int, bytes]], endian: str) -> bytes:
    if not opts:
        return b""
    out = b""
    for code, value in opts:
        out += struct.pack(endian + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)
    return out + struct.pack(endian + "HH", 0, 0)


def shb(endian: str = "<", comment: str = "") -> bytes:
    opts = [(1, comment.encode())] if comment else []
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(opts, endian)
    return _block(0x0A0D0D0A, body, endian)


def idb(linktype: int, *, tsresol: int | None = None, snaplen: int = 0, endian: str = "<") -> bytes:
    opts = [(9, bytes([tsresol]))] if tsresol is not None else []
    return _block(
        1, struct.pack(endian + "HHI", linktype, 0, snaplen) + _options(opts, endian), endian
    )


def epb(
    iface: int,
    ts_units: int,
    data: bytes,
    *,
    orig: int | None = None,
    endian: str = "<",
    comment: str = "",
) -> bytes:
    opts = [(1, comment.encode())] if comment else []
    head = struct.pack(
        endian + "IIIII",
        iface,
        ts_units >> 32,
        ts_units & 0xFFFFFFFF,
        len(data),
        len(data) if orig is None else orig,
    )
    return _block(6, head + data + b"\x00" * (-len(data) % 4) + _options(opts, endian), endian)


def spb(data: bytes, endian: str = "<") -> bytes:
    return _block(3, struct.pack(endian + "I", len(data)) + data, endian)


def pb(iface: int, ts_units: int, data: bytes, endian: str = "<") -> bytes:
    head = struct.pack(
        endian + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(2, head + data, endian)


def other_block(btype: int, body: bytes = b"ignored", endian: str = "<") -> bytes:
    """Any non-packet block (name resolution 4, statistics 5, custom 0xBAD, ...)."""
    return _block(btype, body, endian)


def hep3(
    payload: bytes,
    *,
    src: str = "192.168.1.1",
    dst: str = "192.168.1.2",
    sport: int = 5060,
    dport: int = 5080,
    proto: int = 17,
    ts_s: int = 1_600_000_000,
    ts_us: int = 123456,
    ptype: int = 1,
    compressed: bool = False,
) -> bytes:
    """A HEPv3 datagram (chunk types of the HEP3 specification), built field by field."""
    import socket
    import zlib

    v6 = ":" in src
    fam = socket.AF_INET6 if v6 else socket.AF_INET

    def chunk(ctype: int, value: bytes) -> bytes:
        return struct.pack(">HHH", 0, ctype, 6 + len(value)) + value

    body = (
        chunk(1, bytes([10 if v6 else 2]))
        + chunk(2, bytes([proto]))
        + chunk(5 if v6 else 3, socket.inet_pton(fam, src))
        + chunk(6 if v6 else 4, socket.inet_pton(fam, dst))
        + chunk(7, struct.pack(">H", sport))
        + chunk(8, struct.pack(">H", dport))
        + chunk(9, struct.pack(">I", ts_s))
        + chunk(10, struct.pack(">I", ts_us))
        + chunk(11, bytes([ptype]))
        + chunk(12, struct.pack(">I", 2001))
        + (chunk(16, zlib.compress(payload)) if compressed else chunk(15, payload))
    )
    return b"HEP3" + struct.pack(">H", 6 + len(body)) + body


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
