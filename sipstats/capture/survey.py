"""Decode stage, second look: a capture without SIP -> what it held instead.

A file in which no SIP message was found must say so and say why (wrong ports given, media
only, TLS, a tunnel sipstats does not open), never look like a clean capture with nothing
wrong. Only such a file is walked again, here, over its first :data:`SURVEY_PACKETS` packets:
captures with SIP pay nothing for it. The walk is the decoder's own (link layers, IP,
fragments, tunnels), with the transports tallied instead of handed on.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from typing import Any, Final

from sipstats.capture.decode import Decoder, Frame
from sipstats.capture.reader import walk_records
from sipstats.capture.summary import InputSummary, Survey
from sipstats.ranking import most_first

#: Packets walked at most: bounds the second look at a large capture without SIP.
SURVEY_PACKETS: Final = 100_000
#: Kinds of traffic named in a survey, most packets first.
TOP: Final = 5

#: Ports of tunnels and encapsulations the decoder does not open (transport, port) -> name.
UNDECODED_TUNNEL_PORTS: Final = {
    ("udp", 1701): "L2TP",
    ("udp", 4500): "IPsec NAT traversal (ESP in UDP)",
    ("udp", 4790): "VXLAN-GPE",
    ("udp", 6081): "Geneve",
    ("udp", 8472): "VXLAN on port 8472",
    ("udp", 37008): "TZSP",
}
#: IP protocols that wrap other traffic the decoder does not open.
UNDECODED_TUNNEL_PROTOCOLS: Final = {50: "IPsec ESP", 97: "EtherIP", 115: "L2TP over IP"}
#: IP protocols the decoder passes over without counting (it counts the others as
#: unsupported, by number), named for the survey.
_QUIET_NAMES: Final = {1: "icmp", 2: "igmp", 58: "icmpv6", 59: "ipv6 no next header",
                       89: "ospf", 103: "pim", 112: "vrrp"}  # fmt: skip

_HH = struct.Struct(">HH")


def survey_file(path: str | os.PathLike[str], limit: int = SURVEY_PACKETS) -> Survey:
    """What the capture at ``path`` holds, from its first ``limit`` packets."""
    surveyor = Surveyor(os.fspath(path), limit)
    try:
        walk_records(path, surveyor)
    except _Enough:
        return surveyor.survey(whole_file=False)
    return surveyor.survey(whole_file=True)


class _Enough(Exception):
    """Raised by the walk after :data:`SURVEY_PACKETS` packets."""


def _service(transport: str, sport: int, dport: int) -> tuple[str, int]:
    """The (transport, port) a flow is known by: its lower port, the server's as a rule."""
    return transport, min(sport, dport)


class Surveyor(Decoder):
    """The decoder with every transport tallied (by port) rather than handed on."""

    def __init__(self, file: str, limit: int = SURVEY_PACKETS) -> None:
        super().__init__(file, InputSummary(file), None)
        self.limit = limit
        self.walked = 0
        self.kinds: Counter[str] = Counter()
        self.tunnels: Counter[str] = Counter()

    def packet(
        self,
        buf: Any,
        o: int,
        end: int,
        linktype: int,
        ts_ns: int,
        number: int,
        truncated: bool,
    ) -> None:
        if self.walked >= self.limit:
            raise _Enough
        self.walked += 1
        self.link(buf, o, end, linktype, Frame(ts_ns, number, truncated))
        self.out.clear()

    def _tally(self, transport: str, buf: Any, o: int, end: int) -> None:
        if end - o < 4:
            return
        sport, dport = _HH.unpack_from(buf, o)
        service = _service(transport, sport, dport)
        tunnel = UNDECODED_TUNNEL_PORTS.get(service) or UNDECODED_TUNNEL_PORTS.get(
            (transport, max(sport, dport))
        )
        if tunnel is not None:
            self.tunnels[tunnel] += 1
        # RFC 3550 §5.1: RTP and RTCP start with version 2 (the top two bits 10).
        media = transport == "udp" and end - o > 20 and buf[o + 8] & 0xC0 == 0x80
        self.kinds["rtp/rtcp" if media else f"{transport}/{service[1]}"] += 1

    def udp(self, buf: Any, o: int, end: int, *args: Any) -> None:
        self._tally("udp", buf, o, end)
        super().udp(buf, o, end, *args)

    def tcp(self, buf: Any, o: int, end: int, *args: Any) -> None:
        self._tally("tcp", buf, o, end)

    def sctp(self, buf: Any, o: int, end: int, *args: Any) -> None:
        self._tally("sctp", buf, o, end)

    def protocol(self, proto: int, *args: Any) -> None:
        if proto in UNDECODED_TUNNEL_PROTOCOLS:
            self.tunnels[UNDECODED_TUNNEL_PROTOCOLS[proto]] += 1
        if proto in _QUIET_NAMES:
            self.kinds[_QUIET_NAMES[proto]] += 1
        super().protocol(proto, *args)

    def survey(self, whole_file: bool) -> Survey:
        """The tallies: other IP protocols, link types and non-IP frames come from what the
        decoder counted as unsupported; damaged packets under their reason."""
        kinds = self.kinds + self.summary.unsupported
        kinds.update({reason: a.count for reason, a in self.summary.malformed.items()})
        top = most_first(kinds.items())[:TOP]
        return Survey(self.walked, whole_file, dict(top), dict(sorted(self.tunnels.items())))
