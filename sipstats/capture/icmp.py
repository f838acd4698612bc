"""Decode stage: ICMP / ICMPv6 destination unreachable -> the packet it quotes and why.

A dead or firewalled SIP peer often shows in a capture only as these errors: the request went
out and the network answered "unreachable". The error is not a SIP message; the decoder counts
it per destination of the packet it quotes (RFC 792 and RFC 4443 §3.1: the error carries the
start of the offending packet).
"""

from __future__ import annotations

import socket
from typing import Any, Final, NamedTuple

#: RFC 792 codes of type 3 (destination unreachable), with RFC 1812 §5.2.7.1's additions.
_ICMP4_CODES: Final = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    5: "source route failed",
    6: "destination network unknown",
    7: "destination host unknown",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}
#: RFC 4443 §3.1 codes of type 1 (destination unreachable).
_ICMP6_CODES: Final = {
    0: "no route to destination",
    1: "communication administratively prohibited",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
}
_TRANSPORTS: Final = {17: "udp", 6: "tcp", 132: "sctp"}


class Unreachable(NamedTuple):
    """The quoted packet of a destination-unreachable error."""

    reason: str
    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes
    """What the error quotes of the transport payload (often nothing past the UDP header)."""

    @property
    def destination(self) -> str:
        """``ADDR:PORT`` (``[ADDR]:PORT`` for IPv6) the quoted packet was going to."""
        host = f"[{self.dst}]" if ":" in self.dst else self.dst
        return f"{host}:{self.dport}"


def unreachable(buf: Any, o: int, end: int, version: int) -> Unreachable | None:
    """The destination-unreachable error at ``buf[o:end]`` (ICMP for IPv4, ICMPv6 for IPv6).

    None for every other ICMP message, and for an error that quotes too little to name a
    transport destination (address and port).
    """
    if end - o < 8:
        return None
    kind, code = buf[o], buf[o + 1]
    q = o + 8
    if version == 4:
        if kind != 3 or end - q < 20 or buf[q] >> 4 != 4:
            return None
        ihl = (buf[q] & 15) * 4
        proto, family, size, at = buf[q + 9], socket.AF_INET, 4, q + 12
        t = q + ihl
        reason = _ICMP4_CODES.get(code, f"code {code}")
    else:
        if kind != 1 or end - q < 40 or buf[q] >> 4 != 6:
            return None
        proto, family, size, at = buf[q + 6], socket.AF_INET6, 16, q + 8
        t = q + 40
        reason = _ICMP6_CODES.get(code, f"code {code}")
    transport = _TRANSPORTS.get(proto)
    if transport is None or end - t < 4:
        return None
    src = socket.inet_ntop(family, bytes(buf[at : at + size]))
    dst = socket.inet_ntop(family, bytes(buf[at + size : at + 2 * size]))
    sport = buf[t] << 8 | buf[t + 1]
    dport = buf[t + 2] << 8 | buf[t + 3]
    header = {"udp": 8, "sctp": 12}.get(transport, (buf[t + 12] >> 4) * 4 if end - t > 12 else 20)
    payload = bytes(buf[t + header : end]) if t + header < end else b""
    return Unreachable(reason, transport, src, sport, dst, dport, payload)
