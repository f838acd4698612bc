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
from typing import NamedTuple

#: HEP payload type 1 is SIP; others (5 RTCP JSON, 100 log, ...) are not ours.
HEP_SIP = 1
#: The port HEP collectors listen on (HOMER); HEPv1/v2 have no magic and are read only there.
HEP_PORT = 9060
#: Largest decompressed payload accepted from a compressed chunk (a zip bomb guard).
MAX_INFLATED = 1 << 20

_TRANSPORTS = {17: "udp", 6: "tcp", 132: "sctp"}
_CHUNK = struct.Struct(">HHH")
_V12 = struct.Struct(">BBBBHH")


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
        and data[1] in (16, 28, 40, 52)
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
    if 15 in fields:
        payload = fields[15]
    elif 16 in fields:
        payload = _inflate(fields[16])
    else:
        raise HepError("HEP3 datagram without a payload chunk")
    src = dst = ""
    if 3 in fields and 4 in fields and len(fields[3]) == 4 and len(fields[4]) == 4:
        src, dst = _addr(socket.AF_INET, fields[3]), _addr(socket.AF_INET, fields[4])
    elif 5 in fields and 6 in fields and len(fields[5]) == 16 and len(fields[6]) == 16:
        src, dst = _addr(socket.AF_INET6, fields[5]), _addr(socket.AF_INET6, fields[6])

    def num(ctype: int) -> int | None:
        raw = fields.get(ctype)
        return int.from_bytes(raw, "big") if raw and len(raw) <= 4 else None

    sec, usec = num(9), num(10)
    ts_ns = sec * 1_000_000_000 + (usec or 0) * 1000 if sec is not None else None
    return HepPacket(
        ts_ns=ts_ns,
        src=src,
        sport=num(7) or 0,
        dst=dst,
        dport=num(8) or 0,
        transport=_TRANSPORTS.get(num(2) or 17, "udp"),
        payload_type=num(11) or HEP_SIP,
        data=payload,
    )


def _decode_v12(data: bytes) -> HepPacket:
    version, hlen, family, proto, sport, dport = _V12.unpack_from(data, 0)
    alen = 4 if family == socket.AF_INET else 16
    if hlen not in (8 + 2 * alen, 20 + 2 * alen) or hlen > len(data):
        raise HepError(f"HEPv{version} header length {hlen} does not fit family {family}")
    af = socket.AF_INET if alen == 4 else socket.AF_INET6
    src = _addr(af, data[8 : 8 + alen])
    dst = _addr(af, data[8 + alen : 8 + 2 * alen])
    ts_ns = None
    if version == 2 and hlen == 20 + 2 * alen:
        # HEPv2 stores the time in host (little-endian on every known agent) byte order.
        sec, usec = struct.unpack_from("<II", data, 8 + 2 * alen)
        ts_ns = sec * 1_000_000_000 + usec * 1000
    return HepPacket(
        ts_ns, src, sport, dst, dport, _TRANSPORTS.get(proto, "udp"), HEP_SIP, data[hlen:]
    )
