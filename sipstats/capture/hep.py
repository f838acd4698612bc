"""Decode stage: HEP (HOMER encapsulation protocol) datagram -> the packet it carries.

HEPv3 is a sequence of TLV chunks after ``HEP3`` and a 16-bit total length; the chunk types
used here are those of the HEP3 specification (sipcapture/hep, "HEP3 Network Protocol
Specification"): 1 IP family, 2 IP protocol, 3/4 IPv4 source/destination, 5/6 IPv6
source/destination, 7/8 ports, 9/10 timestamp seconds/microseconds, 11 payload type
(1 = SIP), 15 payload, 16 compressed payload. HEPv1/v2 are fixed headers.
"""

from __future__ import annotations

import socket
import struct
import zlib
from enum import IntEnum
from typing import NamedTuple

from sipstats.capture.linklayer import IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP

#: HEP payload type 1 is SIP; others (5 RTCP JSON, 100 log, ...) are not ours.
HEP_SIP = 1
#: The port HEP collectors listen on (HOMER); HEPv1/v2 have no magic and are read only there.
HEP_PORT = 9060
#: Largest decompressed payload accepted from a compressed chunk (a zip bomb guard).
MAX_INFLATED = 1 << 20

_TRANSPORTS = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp", IPPROTO_SCTP: "sctp"}
_CHUNK = struct.Struct(">HHH")
_V12 = struct.Struct(">BBBBHH")
#: HEPv1 header: 8 fixed bytes and two addresses; HEPv2 adds 12 bytes of time and capture id.
_V1_FIXED, _V2_FIXED = 8, 20
_ADDRESS_LENGTH = {socket.AF_INET: 4, socket.AF_INET6: 16}
_V12_HEADER_LENGTHS = frozenset(
    fixed + 2 * alen for fixed in (_V1_FIXED, _V2_FIXED) for alen in _ADDRESS_LENGTH.values()
)


class _Chunk(IntEnum):
    """HEP3 chunk types (vendor 0) this decoder reads."""

    IP_PROTOCOL = 2
    IPV4_SOURCE = 3
    IPV4_DESTINATION = 4
    IPV6_SOURCE = 5
    IPV6_DESTINATION = 6
    SOURCE_PORT = 7
    DESTINATION_PORT = 8
    SECONDS = 9
    MICROSECONDS = 10
    PAYLOAD_TYPE = 11
    PAYLOAD = 15
    COMPRESSED_PAYLOAD = 16


class HepPacket(NamedTuple):
    """What a HEP datagram says about the packet it carries."""

    ts_ns: int | None
    src: str
    sport: int
    dst: str
    dport: int
    transport: str
    payload_type: int
    data: bytes


class HepError(ValueError):
    """A datagram that claims to be HEP but cannot be read; the reason is the message."""


def is_hep(data: bytes, sport: int, dport: int) -> bool:
    """HEPv3 is recognised by its magic on any port; v1/v2 only on :data:`HEP_PORT`."""
    if data[:4] == b"HEP3":
        return True
    return (
        (HEP_PORT in (sport, dport))
        and len(data) >= 16
        and data[0] in (1, 2)
        and data[1] in _V12_HEADER_LENGTHS
    )


def _addr(family: int, raw: bytes) -> str:
    try:
        return socket.inet_ntop(family, raw)
    except (ValueError, OSError):
        return ""


def _inflate(data: bytes) -> bytes:
    # wbits 47 = 32 + 15: accept a zlib or a gzip header.
    inflater = zlib.decompressobj(47)
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise HepError(f"compressed payload does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise HepError(f"compressed payload inflates beyond {MAX_INFLATED} bytes")
    return out


def decode_hep(data: bytes) -> HepPacket:
    """Decode one HEP datagram; :class:`HepError` when it is damaged."""
    try:
        if data[:4] == b"HEP3":
            return _decode_v3(data)
        return _decode_v12(data)
    except struct.error as exc:
        raise HepError(f"HEP header cut short: {exc}") from None


def _decode_v3(data: bytes) -> HepPacket:
    if len(data) < 6:
        raise HepError("HEP3 header cut short")
    (total,) = struct.unpack_from(">H", data, 4)
    end = min(total, len(data))
    fields: dict[int, bytes] = {}
    pos = 6
    while pos + 6 <= end:
        vendor, ctype, clen = _CHUNK.unpack_from(data, pos)
        if clen < 6 or pos + clen > end:
            raise HepError(f"HEP3 chunk {ctype} at byte {pos} has impossible length {clen}")
        if vendor == 0:
            fields.setdefault(ctype, data[pos + 6 : pos + clen])
        pos += clen
    if _Chunk.PAYLOAD in fields:
        payload = fields[_Chunk.PAYLOAD]
    elif _Chunk.COMPRESSED_PAYLOAD in fields:
        payload = _inflate(fields[_Chunk.COMPRESSED_PAYLOAD])
    else:
        raise HepError("HEP3 datagram without a payload chunk")
    src = dst = ""
    for family, source, destination in (
        (socket.AF_INET, _Chunk.IPV4_SOURCE, _Chunk.IPV4_DESTINATION),
        (socket.AF_INET6, _Chunk.IPV6_SOURCE, _Chunk.IPV6_DESTINATION),
    ):
        alen = _ADDRESS_LENGTH[family]
        if len(fields.get(source, b"")) == alen and len(fields.get(destination, b"")) == alen:
            src, dst = _addr(family, fields[source]), _addr(family, fields[destination])
            break

    def num(ctype: _Chunk) -> int | None:
        raw = fields.get(ctype)
        return int.from_bytes(raw, "big") if raw and len(raw) <= 4 else None

    sec, usec = num(_Chunk.SECONDS), num(_Chunk.MICROSECONDS)
    ts_ns = sec * 1_000_000_000 + (usec or 0) * 1000 if sec is not None else None
    return HepPacket(
        ts_ns=ts_ns,
        src=src,
        sport=num(_Chunk.SOURCE_PORT) or 0,
        dst=dst,
        dport=num(_Chunk.DESTINATION_PORT) or 0,
        transport=_TRANSPORTS.get(num(_Chunk.IP_PROTOCOL) or IPPROTO_UDP, "udp"),
        payload_type=num(_Chunk.PAYLOAD_TYPE) or HEP_SIP,
        data=payload,
    )


def _decode_v12(data: bytes) -> HepPacket:
    version, hlen, family, proto, sport, dport = _V12.unpack_from(data, 0)
    af = socket.AF_INET if family == socket.AF_INET else socket.AF_INET6
    alen = _ADDRESS_LENGTH[af]
    if hlen not in (_V1_FIXED + 2 * alen, _V2_FIXED + 2 * alen) or hlen > len(data):
        raise HepError(f"HEPv{version} header length {hlen} does not fit family {family}")
    src = _addr(af, data[_V1_FIXED : _V1_FIXED + alen])
    dst = _addr(af, data[_V1_FIXED + alen : _V1_FIXED + 2 * alen])
    ts_ns = None
    if version == 2 and hlen == _V2_FIXED + 2 * alen:
        # HEPv2 stores the time in host (little-endian on every known agent) byte order.
        sec, usec = struct.unpack_from("<II", data, _V1_FIXED + 2 * alen)
        ts_ns = sec * 1_000_000_000 + usec * 1000
    return HepPacket(
        ts_ns, src, sport, dst, dport, _TRANSPORTS.get(proto, "udp"), HEP_SIP, data[hlen:]
    )
