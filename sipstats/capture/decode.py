"""Decode stage: one captured frame -> SIP candidate payloads (link layer, IP, tunnels, UDP/SCTP).

The :class:`Decoder` walks headers with ``struct.unpack_from`` and indexing on the reader's
buffer; it slices bytes only for payloads that pass the quick filter (a start-line's first
byte, a SIP port, HEP), so the bulk of a capture (RTP) costs no Python objects. TCP segments
go to :class:`sipstats.capture.tcp.TcpReassembler`, which frames SIP messages out of streams.
Results accumulate in :attr:`Decoder.out`, which the reader drains after every frame.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from sipstats.capture import fallback
from sipstats.capture.defrag import Defragmenter
from sipstats.capture.hep import HEP_PORT, HEP_SIP, HepError, decode_hep, is_hep
from sipstats.capture.icmp import unreachable
from sipstats.capture.linklayer import (
    ETHERTYPE_ERSPAN,
    ETHERTYPE_ERSPAN_III,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_MPLS,
    ETHERTYPE_PPP,
    ETHERTYPE_PPPOE_SESSION,
    ETHERTYPE_TEB,
    IPPROTO_AH,
    IPPROTO_GRE,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_IPV6_FRAGMENT,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_LEGACY,
    NON_IP_ETHERTYPES,
    VLAN_TPIDS,
)
from sipstats.capture.ports import sip_ports
from sipstats.capture.records import Payload
from sipstats.capture.sctp import SctpError, SctpJoiner, data_chunks
from sipstats.capture.sniff import START_BYTES, is_keepalive, looks_like_sip
from sipstats.capture.summary import InputSummary
from sipstats.capture.tunnels import TUNNEL_PORTS, TunnelError, inner_packet

#: Anomaly reason for a frame whose headers cannot be decoded (Zeek would call it a weird).
UNDECODABLE = "undecodable packet"
#: A record stamped well before one read earlier: the clock jumped or the file was spliced.
#: Every later time computation (setup delay, retry gaps) is suspect around it.
OUT_OF_ORDER = "timestamp out of order"
#: How far back a timestamp may step before it counts (tcpdump -i any reorders by microseconds).
OUT_OF_ORDER_NS = 1_000_000_000
#: Anomaly reason for a packet whose time falls outside what datetime64[ns] holds (1677-2262).
TIME_OUT_OF_RANGE = "timestamp out of range"
#: Times a packet may carry, in ns since 1970: int64 less its smallest value, which is NaT.
TIME_MIN_NS = -(2**63) + 1
TIME_MAX_NS = 2**63 - 1
#: "No time seen yet" for the readers' running minimum and maximum (NaT: no packet has it).
NO_TIME = -(2**63)
#: Anomaly reason for IP fragments that never made a whole datagram.
INCOMPLETE_FRAGMENTS = "incomplete IP fragments"
#: Anomaly reason for a HEP datagram that cannot be read.
BAD_HEP = "malformed HEP packet"
#: Deepest nesting of tunnels followed (a guard against crafted loops).
MAX_DEPTH = 8

# IPv6 extension headers walked to reach the upper layer (RFC 8200 §4): hop-by-hop,
# routing, destination options, mobility, HIP, shim6; AH (51) and fragment (44) apart.
_IPV6_EXT = frozenset({0, 43, 60, 135, 139, 140})
# IGMP, no next header, OSPF, PIM, VRRP: never SIP, not worth a count. (ICMP and ICMPv6 are
# read for destination-unreachable errors that quote SIP.)
_QUIET_PROTOCOLS = frozenset({2, 59, 89, 103, 112})
#: IP protocols that carry a whole IP packet or frame, by the name the summary counts them under.
_IP_TUNNELS = {IPPROTO_IPIP: "IP-in-IP", IPPROTO_IPV6: "IPv6-in-IP", IPPROTO_GRE: "GRE"}

_BLANKS = frozenset(b"\r\n \t")
#: Linux cooked captures, v2 and v1: non-SIP UDP is dropped early on both.
_COOKED = (LINKTYPE_LINUX_SLL2, LINKTYPE_LINUX_SLL)

_H = struct.Struct(">H")
_HH = struct.Struct(">HH")
_HHH = struct.Struct(">HHH")
_TCP = struct.Struct(">HHIIBB")
_I = struct.Struct(">I")


class Frame:
    """What every layer of one captured frame shares, handed down the decoder as one value.

    Made once per frame that may hold SIP (:meth:`Decoder.packet`), and once per datagram
    the defragmenter completes (which takes its first fragment's time, number and truncation).
    Never changed once made: a tunnel makes a copy one level deeper (:meth:`inside_tunnel`).
    What belongs to one IP header (its addresses, the fragments it was rebuilt from) is passed
    beside it. A slotted class rather than a NamedTuple: its fields are read on every layer,
    and slot reads cost half as much.
    """

    __slots__ = ("depth", "number", "truncated", "ts_ns")

    def __init__(self, ts_ns: int, number: int, truncated: bool, depth: int = 0) -> None:
        #: Capture time in ns since the Unix epoch.
        self.ts_ns = ts_ns
        #: 1-based record number in the file (of the first fragment, for a reassembled datagram).
        self.number = number
        #: True when the capture's snaplen cut the packet, so its lengths may run past its bytes.
        self.truncated = truncated
        #: Tunnels unwrapped to reach the current layer (at most :data:`MAX_DEPTH`).
        self.depth = depth

    def inside_tunnel(self) -> Frame:
        """The same frame one tunnel deeper."""
        return Frame(self.ts_ns, self.number, self.truncated, self.depth + 1)


class Decoder:
    """Per-file decoding state: fragments in flight, TCP streams, SCTP fragments."""

    def __init__(self, file: str, summary: InputSummary, ports: frozenset[int] | None) -> None:
        self.file = file
        self.summary = summary
        self.ports = ports
        self.sip_ports = sip_ports(ports)
        self.out: list[Payload] = []
        self.defrag = Defragmenter()
        self._tcp: Any = None
        self._sctp = SctpJoiner()
        self._names: dict[bytes, str] = {}
        #: IPv4 (source, destination) text by the header's 8 address bytes: the C walk's cache.
        self.pairs: dict[bytes, tuple[str, str]] = {}
        self._fallback: dict[int, bool] = {}

    # -- link layers -------------------------------------------------------------------------

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
        """Decode the frame in ``buf[o:end]`` captured on ``linktype``.

        The reference path for every frame: the C walk (``_pcapscan.c``) decodes plain UDP
        by the same rules before it gets here and hands back every other frame; without the
        extension (``SIPSTATS_PURE_PYTHON``) all come here.
        """
        if not self._cannot_be_sip(buf, o, end, linktype):
            self.link(buf, o, end, linktype, Frame(ts_ns, number, truncated))

    def _cannot_be_sip(self, buf: Any, o: int, end: int, linktype: int) -> bool:
        """A UDP datagram over Ethernet or a cooked capture that cannot be SIP: its first byte
        cannot start a start-line, and neither port is a SIP or HEP port (RTP, DNS...).

        Dropped before any object is made or any length is judged, as the C walk drops it
        (``classify``'s SKIP), so that both paths count the same damage.
        """
        if linktype == LINKTYPE_ETHERNET:
            if end - o < 34:
                return False
            et = buf[o + 12] << 8 | buf[o + 13]
            n = o + 14
        elif linktype in _COOKED:
            hlen = 20 if linktype == LINKTYPE_LINUX_SLL2 else 16
            if end - o < hlen + 20:
                return False
            at = o if linktype == LINKTYPE_LINUX_SLL2 else o + 14
            et = buf[at] << 8 | buf[at + 1]
            n = o + hlen
        else:
            return False
        while et in VLAN_TPIDS and end - n >= 24:  # 802.1Q / QinQ tags
            et = buf[n + 2] << 8 | buf[n + 3]
            n += 4
        if et == ETHERTYPE_IPV4:
            if buf[n] != 0x45 or buf[n + 9] != IPPROTO_UDP or buf[n + 6] & 0x3F or buf[n + 7]:
                return False  # options, fragments or not UDP: the general path judges them
            udp, p = n + 20, n + 28
            if p >= end:
                return True
        elif et == ETHERTYPE_IPV6 and buf[n + 6] == IPPROTO_UDP and end - n > 48:
            udp, p = n + 40, n + 48
        else:
            return False
        sport, dport = _HH.unpack_from(buf, udp)
        return self._not_sip(buf[p], self._on_port(sport, dport), sport, dport)

    def _on_port(self, sport: int, dport: int) -> bool:
        """Is either port a SIP port?"""
        sip_ports = self.sip_ports
        return sport in sip_ports or dport in sip_ports

    @staticmethod
    def _not_sip(first: int, on_port: bool, sport: int, dport: int) -> bool:
        """A UDP datagram whose first byte cannot start a start-line, on neither a SIP port
        (``on_port``: :meth:`_on_port`) nor a HEP port (RTP, DNS...): not SIP, dropped unseen
        (the C walk's SKIP)."""
        return (
            first not in START_BYTES
            and first > 13
            and not on_port
            and sport != HEP_PORT
            and dport != HEP_PORT
        )

    def link(self, buf: Any, o: int, end: int, linktype: int, frame: Frame) -> None:
        """Strip the link header, find the IP packet."""
        if linktype == LINKTYPE_ETHERNET:
            self.ether(buf, o, end, frame)
        elif linktype == LINKTYPE_LINUX_SLL2:
            self.sll2(buf, o, end, frame)
        elif linktype == LINKTYPE_LINUX_SLL:
            # Linux cooked v1: type, ARPHRD, address length, 8 address bytes, protocol.
            if end - o < 16:
                self.bad(frame, "Linux cooked header cut short")
                return
            self.ethertype(_H.unpack_from(buf, o + 14)[0], buf, o + 16, end, frame)
        elif linktype == LINKTYPE_RAW or linktype in LINKTYPE_RAW_LEGACY:
            self.raw_ip(buf, o, end, frame)
        elif linktype == LINKTYPE_IPV4:
            self.ipv4(buf, o, end, frame)
        elif linktype == LINKTYPE_IPV6:
            self.ipv6(buf, o, end, frame)
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            # BSD loopback: the address family in the capturing host's byte order (NULL)
            # or in network byte order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24,
            # 28 or 30 depending on the OS.
            if end - o < 4:
                self.bad(frame, "loopback header cut short")
                return
            head = bytes(buf[o : o + 4])
            family = int.from_bytes(head, "big" if linktype == LINKTYPE_LOOP else "little")
            if family > 0xFFFF:
                family = int.from_bytes(head, "big")
            if family == 2:
                self.ipv4(buf, o + 4, end, frame)
            elif family in (10, 23, 24, 28, 30):
                self.ipv6(buf, o + 4, end, frame)
            else:
                self.summary.unsupported[f"loopback family {family}"] += 1
        elif linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            self.ppp(buf, o, end, frame)
        else:
            self.foreign(buf, o, end, linktype, frame)

    def foreign(self, buf: Any, o: int, end: int, linktype: int, frame: Frame) -> None:
        """Hand a frame of a link type unknown here to scapy before declaring it unsupported."""
        if self._fallback.get(linktype) is False:
            self.summary.unsupported[f"LINKTYPE {linktype}"] += 1
            return
        try:
            found = fallback.network_layer(linktype, bytes(buf[o:end]))
        except LookupError:
            self._fallback[linktype] = False
            self.summary.unsupported[f"LINKTYPE {linktype}"] += 1
            return
        self._fallback[linktype] = True
        if found is None:
            self.summary.unsupported[f"{fallback.link_type_name(linktype)} without IP"] += 1
            return
        version, ip = found
        if version == 4:
            self.ipv4(ip, 0, len(ip), frame)
        else:
            self.ipv6(ip, 0, len(ip), frame)

    def ether(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        if end - o < 14:
            self.bad(frame, "Ethernet header cut short")
            return
        self.ethertype(buf[o + 12] << 8 | buf[o + 13], buf, o + 14, end, frame)

    def sll2(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        # Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length,
        # 8 address bytes.
        if end - o < 20:
            self.bad(frame, "Linux cooked v2 header cut short")
            return
        self.ethertype(_H.unpack_from(buf, o)[0], buf, o + 20, end, frame)

    def ethertype(self, et: int, buf: Any, o: int, end: int, frame: Frame) -> None:
        if et == ETHERTYPE_IPV4:
            self.ipv4(buf, o, end, frame)
        elif et == ETHERTYPE_IPV6:
            self.ipv6(buf, o, end, frame)
        elif et in VLAN_TPIDS:
            self._vlan_inner(et, buf, o, end, frame)
        elif et == ETHERTYPE_PPPOE_SESSION:  # RFC 2516: a 6-byte header, then the PPP protocol
            self.ppp(buf, o + 6, end, frame)
        elif et in ETHERTYPE_MPLS:  # MPLS: pop labels to the bottom of the stack
            while True:
                if end - o < 4:
                    self.bad(frame, "MPLS label cut short")
                    return
                bottom = buf[o + 2] & 1
                o += 4
                if bottom:
                    break
            self.raw_ip(buf, o, end, frame)
        elif et < 0x0600:
            self.summary.unsupported["802.3 LLC"] += 1
        elif et in NON_IP_ETHERTYPES:
            self.summary.unsupported[NON_IP_ETHERTYPES[et]] += 1
        else:
            self.bad(frame, f"unknown ethertype 0x{et:04x}")

    def _vlan_inner(self, et: int, buf: Any, o: int, end: int, frame: Frame) -> None:
        while et in VLAN_TPIDS:
            if end - o < 4:
                self.bad(frame, "VLAN tag cut short")
                return
            et = buf[o + 2] << 8 | buf[o + 3]
            o += 4
        self.ethertype(et, buf, o, end, frame)

    def ppp(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        """PPP (RFC 1661), with or without HDLC address/control and protocol compression."""
        if end - o >= 2 and buf[o] == 0xFF and buf[o + 1] == 0x03:
            o += 2
        if end - o < 1:
            self.bad(frame, "PPP header cut short")
            return
        if buf[o] & 1:  # RFC 1661 §6.5: a compressed, one-byte protocol field
            proto = buf[o]
            o += 1
        elif end - o >= 2:
            proto = buf[o] << 8 | buf[o + 1]
            o += 2
        else:
            self.bad(frame, "PPP protocol cut short")
            return
        if proto == 0x21:
            self.ipv4(buf, o, end, frame)
        elif proto == 0x57:
            self.ipv6(buf, o, end, frame)
        else:
            self.summary.unsupported[f"ppp protocol 0x{proto:04x}"] += 1

    def raw_ip(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        """An IP packet of either version, told apart by its first nibble."""
        version = buf[o] >> 4 if end > o else 0
        if version == 4:
            self.ipv4(buf, o, end, frame)
        elif version == 6:
            self.ipv6(buf, o, end, frame)
        else:
            self.bad(frame, f"raw IP packet with version {version}")

    # -- IP ----------------------------------------------------------------------------------

    def ipv4(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        """RFC 791 header; fragments go to the defragmenter, whole datagrams to their protocol."""
        if end - o < 20:
            self.bad(frame, "IPv4 header cut short")
            return
        vihl = buf[o]
        ihl = (vihl & 15) << 2
        if vihl >> 4 != 4 or ihl < 20:
            self.bad(frame, f"bad IPv4 version/header length byte 0x{vihl:02x}")
            return
        total, frag = _H.unpack_from(buf, o + 2)[0], _H.unpack_from(buf, o + 6)[0]
        ip_end = o + total
        if total == 0:  # TCP segmentation offload: the NIC fills the length in later
            ip_end = end
        elif total < ihl:
            self.bad(frame, f"IPv4 total length {total} shorter than its header")
            return
        if ip_end > end:
            if not frame.truncated:
                self.bad(frame, f"IPv4 total length {total} beyond the captured bytes")
                return
            ip_end = end
        if o + ihl > ip_end:
            self.bad(frame, "IPv4 options cut short")
            return
        proto = buf[o + 9]
        if frag & 0x3FFF:
            addr = bytes(buf[o + 12 : o + 20])
            key = (addr, _H.unpack_from(buf, o + 4)[0], proto)
            self._fragment(
                key,
                (frag & 0x1FFF) << 3,
                bool(frag & 0x2000),
                buf,
                o + ihl,
                ip_end,
                proto,
                addr,
                4,
                frame,
            )
            return
        self.protocol(proto, buf, o + ihl, ip_end, buf, o + 12, 4, frame, 1)

    def ipv6(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        """RFC 8200 fixed header; extension headers are walked in :meth:`ipv6_chain`."""
        if end - o < 40:
            self.bad(frame, "IPv6 header cut short")
            return
        if buf[o] >> 4 != 6:
            self.bad(frame, f"IPv6 header with version {buf[o] >> 4}")
            return
        plen = _H.unpack_from(buf, o + 4)[0]
        ip_end = o + 40 + plen
        if plen == 0:  # a jumbogram (RFC 2675) or offloaded length
            ip_end = end
        if ip_end > end:
            if not frame.truncated:
                self.bad(frame, f"IPv6 payload length {plen} beyond the captured bytes")
                return
            ip_end = end
        self.ipv6_chain(buf[o + 6], buf, o + 40, ip_end, buf, o + 8, frame, 1)

    def ipv6_chain(
        self,
        nh: int,
        buf: Any,
        p: int,
        end: int,
        abuf: Any,
        aoff: int,
        frame: Frame,
        fragments: int,
    ) -> None:
        """Walk IPv6 extension headers (RFC 8200 §4) up to the upper-layer protocol.

        ``fragments`` counts the fragments this datagram was rebuilt from (1: none); a
        rebuilt datagram's fragment header is not read again.
        """
        while True:
            if nh in _IPV6_EXT or nh == IPPROTO_AH:
                if end - p < 8:
                    self.bad(frame, f"IPv6 extension header {nh} cut short")
                    return
                # AH (RFC 4302 §2.2) counts 4-byte units minus 2, the others 8-byte units minus 1.
                size = (buf[p + 1] + 2) * 4 if nh == IPPROTO_AH else (buf[p + 1] + 1) * 8
                nh = buf[p]
                p += size
            elif nh == IPPROTO_IPV6_FRAGMENT and fragments == 1:
                if end - p < 8:
                    self.bad(frame, "IPv6 fragment header cut short")
                    return
                inner = buf[p]
                offset_flags = _H.unpack_from(buf, p + 2)[0]
                ident = _I.unpack_from(buf, p + 4)[0]
                p += 8
                offset, more = offset_flags & 0xFFF8, bool(offset_flags & 1)
                if offset == 0 and not more:  # an atomic fragment (RFC 6946)
                    nh = inner
                    continue
                addr = bytes(abuf[aoff : aoff + 32])
                self._fragment(
                    (addr, ident, inner),
                    offset,
                    more,
                    buf,
                    p,
                    end,
                    inner,
                    addr,
                    6,
                    frame,
                )
                return
            else:
                break
        if p > end:
            self.bad(frame, "IPv6 extension headers beyond the packet")
            return
        self.protocol(nh, buf, p, end, abuf, aoff, 6, frame, fragments)

    def _fragment(
        self,
        key: tuple[object, ...],
        offset: int,
        more: bool,
        buf: Any,
        p: int,
        end: int,
        proto: int,
        addresses: bytes,
        version: int,
        frame: Frame,
    ) -> None:
        """Hand one IP fragment to the defragmenter; decode the datagram it completes.

        The datagram is the first fragment's frame (its time, number and truncation), as deep
        in tunnels as this one; ``addresses`` are the IP header's source and destination bytes.
        """
        piece = bytes(buf[p:end])
        whole = self.defrag.add(
            (version, *key), offset, more, piece, frame.ts_ns, frame.number, frame.truncated
        )
        while self.defrag.dropped:
            first, why = self.defrag.dropped.pop()
            self.summary.anomaly(INCOMPLETE_FRAGMENTS, first, why)
        if whole is None:
            return
        data = whole.data
        datagram = Frame(whole.ts_ns, whole.frame, whole.truncated, frame.depth)
        if version == 6:
            self.ipv6_chain(proto, data, 0, len(data), addresses, 0, datagram, whole.fragments)
        else:
            self.protocol(proto, data, 0, len(data), addresses, 0, 4, datagram, whole.fragments)

    def finish(self) -> None:
        """End of file: report unfinished fragments and unknown link types, flush TCP streams."""
        for linktype, known in self._fallback.items():
            if not known:
                skipped = self.summary.unsupported[f"LINKTYPE {linktype}"]
                self.summary.errors.append(
                    f"link type {linktype} has no decoder: its {skipped} packets were skipped"
                )
        self.defrag.finish()
        while self.defrag.dropped:
            first, why = self.defrag.dropped.pop(0)
            self.summary.anomaly(INCOMPLETE_FRAGMENTS, first, why)
        if self._tcp is not None:
            self.out.extend(self._tcp.flush())

    def protocol(
        self,
        proto: int,
        buf: Any,
        p: int,
        end: int,
        abuf: Any,
        aoff: int,
        af: int,
        frame: Frame,
        fragments: int,
    ) -> None:
        """Dispatch an IP payload on its protocol number (IANA protocol numbers).

        ``buf[p:end]`` is the payload of a datagram rebuilt from ``fragments`` IP fragments
        (1: it came whole); its source and destination addresses are at ``abuf[aoff:]``, of
        IP version ``af``.
        """
        if proto == IPPROTO_UDP:
            self.udp(buf, p, end, abuf, aoff, af, frame, fragments)
        elif proto == IPPROTO_TCP:
            self.tcp(buf, p, end, abuf, aoff, af, frame)
        elif proto == IPPROTO_SCTP:
            self.sctp(buf, p, end, abuf, aoff, af, frame)
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            self.icmp(buf, p, end, 6 if proto == IPPROTO_ICMPV6 else 4, frame)
        elif proto in _IP_TUNNELS:
            if frame.depth >= MAX_DEPTH:
                self.bad(frame, "tunnels nested too deep")
                return
            self.summary.tunnels[_IP_TUNNELS[proto]] += 1
            if proto == IPPROTO_IPIP:  # IP in IP (RFC 2003)
                self.ipv4(buf, p, end, frame.inside_tunnel())
            elif proto == IPPROTO_IPV6:  # IPv6 in IP (RFC 4213)
                self.ipv6(buf, p, end, frame.inside_tunnel())
            else:
                self.gre(buf, p, end, frame.inside_tunnel())
        elif proto not in _QUIET_PROTOCOLS:
            self.summary.unsupported[f"ip protocol {proto}"] += 1

    def gre(self, buf: Any, o: int, end: int, frame: Frame) -> None:
        """GRE (RFC 2784/2890; version 1 is PPTP's, RFC 2637) and what it carries."""
        if end - o < 4:
            self.bad(frame, "GRE header cut short")
            return
        flags, ptype = _HH.unpack_from(buf, o)
        size = 4
        if flags & 0x8000 or (flags & 0x4000 and flags & 7 == 0):
            size += 4  # checksum + reserved (also present when routing is)
        if flags & 0x2000:
            size += 4  # key (PPTP: payload length + call id)
        if flags & 0x1000:
            size += 4  # sequence number
        if flags & 7 == 1 and flags & 0x0080:
            size += 4  # PPTP acknowledgement number
        if flags & 0x4000 and flags & 7 == 0:
            self.summary.unsupported["GRE with source routing"] += 1
            return
        o += size
        if ptype == ETHERTYPE_ERSPAN and flags & 0x1000:
            o += 8  # ERSPAN type II header; type I (no sequence flag) has none
            ptype = ETHERTYPE_TEB
        elif ptype == ETHERTYPE_ERSPAN_III:
            # ERSPAN type III: 12 bytes, plus an 8-byte platform sub-header when O is set.
            if end - o < 12:
                self.bad(frame, "ERSPAN III header cut short")
                return
            o += 20 if buf[o + 11] & 1 else 12
            ptype = ETHERTYPE_TEB
        elif ptype == ETHERTYPE_ERSPAN:
            ptype = ETHERTYPE_TEB
        if o > end:
            self.bad(frame, "GRE header beyond the packet")
        elif ptype == ETHERTYPE_TEB:
            self.ether(buf, o, end, frame)
        elif ptype == ETHERTYPE_PPP:
            self.ppp(buf, o, end, frame)
        else:
            self.ethertype(ptype, buf, o, end, frame)

    # -- transports --------------------------------------------------------------------------

    def names(self, abuf: Any, aoff: int, af: int) -> tuple[str, str]:
        """Source and destination address text (cached: few hosts, many packets).

        An IPv4 pair is also kept whole, by its 8 bytes, in :attr:`pairs`: the C walk builds
        a datagram's payload only from a pair found there and hands the others back here.
        """
        size = 4 if af == 4 else 16
        raw = bytes(abuf[aoff : aoff + 2 * size])
        if af == 4 and (pair := self.pairs.get(raw)) is not None:
            return pair
        src, dst = raw[:size], raw[size:]
        cache = self._names
        family = socket.AF_INET if af == 4 else socket.AF_INET6
        s = cache.get(src)
        if s is None:
            s = cache[src] = socket.inet_ntop(family, src)
        d = cache.get(dst)
        if d is None:
            d = cache[dst] = socket.inet_ntop(family, dst)
        if len(cache) > 65536:
            cache.clear()
        if af == 4:
            if len(self.pairs) > 65536:
                self.pairs.clear()
            self.pairs[raw] = (s, d)
        return s, d

    def udp(
        self,
        buf: Any,
        o: int,
        end: int,
        abuf: Any,
        aoff: int,
        af: int,
        frame: Frame,
        fragments: int,
    ) -> None:
        """RFC 768: one candidate per datagram (RFC 3261 §18.1.1 forbids several per datagram)."""
        if end - o < 8:
            if not frame.truncated:
                self.bad(frame, "UDP header cut short")
            return
        sport, dport, length = _HHH.unpack_from(buf, o)
        p = o + 8
        if length >= 8 and o + length <= end:
            end = o + length
        elif length > end - o and not frame.truncated and length != 0:
            self.bad(frame, f"UDP length {length} beyond the IP payload")
            return
        if p >= end:
            return
        if (sport in TUNNEL_PORTS or dport in TUNNEL_PORTS) and self.udp_tunnel(
            buf, p, end, sport, dport, frame
        ):
            return
        on_port = self._on_port(sport, dport)
        if self._not_sip(buf[p], on_port, sport, dport):
            return
        data = bytes(buf[p:end])
        if is_hep(data, sport, dport):
            self.hep(data, frame)
            return
        if self.ports is not None and not on_port:
            return
        src, dst = self.names(abuf, aoff, af)
        self.datagram(data, "udp", frame, src, sport, dst, dport, on_port, "", fragments)

    def udp_tunnel(
        self,
        buf: Any,
        p: int,
        end: int,
        sport: int,
        dport: int,
        frame: Frame,
    ) -> bool:
        """Unwrap GTP-U or VXLAN; False when the datagram is not a tunnel user packet."""
        try:
            found = inner_packet(buf, p, end, sport, dport)
        except TunnelError as exc:
            self.bad(frame, str(exc))
            return True
        if found is None:
            return False
        name, carried, inner = found
        if frame.depth >= MAX_DEPTH:
            self.bad(frame, "tunnels nested too deep")
            return True
        self.summary.tunnels[name] += 1
        if carried == "ip":
            self.raw_ip(buf, inner, end, frame.inside_tunnel())
        else:
            self.ether(buf, inner, end, frame.inside_tunnel())
        return True

    def icmp(self, buf: Any, o: int, end: int, version: int, frame: Frame) -> None:
        """Count a destination-unreachable error that quotes a SIP packet, per destination."""
        error = unreachable(buf, o, end, version)
        if error is None:
            return
        on_port = self._on_port(error.sport, error.dport)
        if on_port or (self.ports is None and looks_like_sip(error.payload)):
            detail = f"{error.reason} ({error.transport})"
            self.summary.unreachable(error.destination, frame.number, detail)

    def datagram(
        self,
        data: bytes,
        transport: str,
        frame: Frame,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        on_port: bool,
        encap: str,
        fragments: int,
    ) -> None:
        """Emit one message-sized payload if it is SIP, or sits on a SIP port; count keep-alives.

        ``fragments`` is what the payload records as its IP fragment count: UDP passes its
        datagram's, HEP and SCTP messages record 1.
        """
        if data[0] in _BLANKS:
            if is_keepalive(data):
                self.summary.keepalives += 1
                return
            if data[0] in (13, 10):  # a CRLF keep-alive sent in front of a message
                self.summary.keepalives += 1
                data = data.lstrip(b"\r\n")
        if not (on_port or looks_like_sip(data)):
            return
        self.out.append(
            Payload(
                frame.ts_ns,
                self.file,
                frame.number,
                src,
                sport,
                dst,
                dport,
                transport,
                data,
                fragments > 1,
                1,
                encap,
                frame.truncated,
                fragments,
            )
        )

    def hep(self, data: bytes, frame: Frame) -> None:
        """Unwrap HEP: the inner packet's addresses, ports, transport and timestamp."""
        try:
            inner = decode_hep(data)
        except HepError as exc:
            self.summary.anomaly(BAD_HEP, frame.number, str(exc))
            return
        if inner.payload_type != HEP_SIP:
            self.summary.unsupported[f"HEP payload type {inner.payload_type}"] += 1
            return
        if not inner.data:
            return
        ports = self.ports
        on_port = inner.sport in self.sip_ports or inner.dport in self.sip_ports
        if ports is not None and not on_port:
            return
        if inner.ts_ns is not None:  # the time the HEP agent saw the inner packet
            frame = Frame(inner.ts_ns, frame.number, frame.truncated, frame.depth)
        self.datagram(
            inner.data,
            inner.transport,
            frame,
            inner.src,
            inner.sport,
            inner.dst,
            inner.dport,
            on_port,
            "hep",
            1,
        )

    def tcp(
        self,
        buf: Any,
        o: int,
        end: int,
        abuf: Any,
        aoff: int,
        af: int,
        frame: Frame,
    ) -> None:
        """RFC 9293 header; every segment (handshake and ACKs too) goes to the reassembler.

        The reassembler also recognises TLS and WebSocket connections and counts them.
        """
        if end - o < 20:
            if not frame.truncated:
                self.bad(frame, "TCP header cut short")
            return
        sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(buf, o)
        hlen = (doff >> 4) * 4
        if hlen < 20 or o + hlen > end:
            if not frame.truncated:
                self.bad(frame, f"TCP header length {hlen} impossible")
            return
        sip_ports = self.sip_ports
        if self.ports is not None and sport not in sip_ports and dport not in sip_ports:
            return
        src, dst = self.names(abuf, aoff, af)
        if self._tcp is None:
            from sipstats.capture.tcp import TcpReassembler

            self._tcp = TcpReassembler(self.file, self.summary, self.ports)
        found = self._tcp.feed(
            frame.ts_ns,
            frame.number,
            src,
            sport,
            dst,
            dport,
            seq,
            flags,
            bytes(buf[o + hlen : end]),
            frame.truncated,
        )
        if found:
            self.out.extend(found)

    def sctp(
        self,
        buf: Any,
        o: int,
        end: int,
        abuf: Any,
        aoff: int,
        af: int,
        frame: Frame,
    ) -> None:
        """RFC 9260 common header; the user messages of its DATA chunks are candidates."""
        if end - o < 12:
            if not frame.truncated:
                self.bad(frame, "SCTP header cut short")
            return
        sport, dport = _HH.unpack_from(buf, o)
        on_port = sport in self.sip_ports or dport in self.sip_ports
        if self.ports is not None and not on_port:
            return
        src, dst = self.names(abuf, aoff, af)
        try:
            for flags, stream, ssn, piece in data_chunks(buf, o, end):
                data = self._sctp.add((src, sport, dst, dport, stream, ssn), flags, piece)
                if data:
                    self.datagram(data, "sctp", frame, src, sport, dst, dport, on_port, "", 1)
        except SctpError as exc:
            self.bad(frame, str(exc))

    def bad(self, frame: Frame, detail: str) -> None:
        self.summary.anomaly(UNDECODABLE, frame.number, detail)
