"""Capture stage: the original records behind chosen messages, found by re-walking a file.

``sipstats extract`` needs every frame that carried a message, but the messages table keeps
one frame per message (the first). Rather than record frame lists for every message while
decoding (memory for all messages, to serve the few extracted), the file is walked again
with the same readers, so frame numbers agree with the table by construction, and
:class:`FramePicker` keeps:

* every frame the table names (the first packet of each chosen message);
* for a message reassembled from IP fragments, the other fragments of that datagram: same
  addresses, protocol and identification, within the reassembly timeout after its first
  fragment;
* for a message spread over ``segments`` TCP segments, the next ``segments - 1`` segments
  with data in the same direction of the same connection;
* with media endpoints, every UDP packet to or from one of them (RTP, and RTCP on the port
  above) inside the call's time window.

Only packets near a pending fragment or segment, or inside a media window, are dissected
(with scapy, which knows every link type); the rest are kept or dropped by frame number.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

from scapy.config import conf
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Packet

from sipstats.capture import pcap, pcapng
from sipstats.capture.defrag import TIMEOUT_NS
from sipstats.capture.reader import open_capture
from sipstats.capture.summary import InputSummary

#: How long after its first segment the rest of a TCP message is looked for.
SEGMENT_WINDOW_NS: Final = 60 * 1_000_000_000


class Record(NamedTuple):
    """One original capture record, as read."""

    ts_ns: int
    file: str
    frame: int
    linktype: int
    data: bytes
    truncated: bool


class Wanted(NamedTuple):
    """A chosen message's first frame and how its other packets are recognised."""

    fragmented: bool
    segments: int


@dataclass(frozen=True)
class MediaWindow:
    """UDP to or from ``endpoints`` (address, port) between ``start_ns`` and ``end_ns``."""

    start_ns: int
    end_ns: int
    endpoints: frozenset[tuple[str, int]]


@dataclass
class FramePicker:
    """The packet callback of a re-walk: appends the records to keep to ``kept``."""

    file: str
    wanted: dict[int, Wanted]
    media: Sequence[MediaWindow] = ()
    kept: list[Record] = field(default_factory=list)
    media_kept: int = 0
    """Records kept as media (not as part of a chosen message)."""
    undissected: int = 0
    """Packets that scapy could not dissect while looking for fragments, segments or media."""
    _fragments: dict[tuple[Any, ...], int] = field(default_factory=dict)
    _segments: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    _windows: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)
    _media_span: tuple[int, int] = (0, -1)

    def __post_init__(self) -> None:
        """Index the media windows by endpoint, so a packet costs two lookups, not one
        comparison per selected call."""
        for window in self.media:
            for end in window.endpoints:
                self._windows.setdefault(end, []).append((window.start_ns, window.end_ns))
        if self.media:
            self._media_span = (
                min(w.start_ns for w in self.media),
                max(w.end_ns for w in self.media),
            )

    def __call__(
        self, buf: Any, o: int, end: int, linktype: int, ts: int, frame: int, trunc: bool
    ) -> None:
        wanted = self.wanted.get(frame)
        in_media = self._media_span[0] <= ts <= self._media_span[1]
        if wanted is None and not (self._fragments or self._segments or in_media):
            return
        data = bytes(buf[o:end])
        record = Record(ts, self.file, frame, linktype, data, trunc)
        packet = self._dissect(linktype, data)
        if wanted is not None:
            self.kept.append(record)
            if packet is not None:
                self._expect(packet, wanted, ts)
            return
        self._expire(ts)
        why = None if packet is None else self._belongs(packet, ts, in_media)
        if why is not None:
            self.kept.append(record)
            self.media_kept += why == "media"

    def _dissect(self, linktype: int, data: bytes) -> Packet | None:
        layer: Any = conf.l2types.get(linktype)
        if layer is None:
            self.undissected += 1
            return None
        try:
            dissected: Packet = layer(data)
            return dissected
        except Exception:
            self.undissected += 1
            return None

    def _expect(self, packet: Packet, wanted: Wanted, ts: int) -> None:
        """Remember what the rest of a fragmented or segmented message looks like."""
        if wanted.fragmented:
            key = _fragment_key(packet)
            if key is not None:
                self._fragments[key] = ts + TIMEOUT_NS
        if wanted.segments > 1 and TCP in packet:
            self._segments[_flow(packet)] = [wanted.segments - 1, ts + SEGMENT_WINDOW_NS]

    def _expire(self, ts: int) -> None:
        for key in [k for k, deadline in self._fragments.items() if deadline < ts]:
            del self._fragments[key]
        for key in [k for k, (_, deadline) in self._segments.items() if deadline < ts]:
            del self._segments[key]

    def _belongs(self, packet: Packet, ts: int, in_media: bool) -> str | None:
        """Why the packet is kept ('fragment', 'segment', 'media'), or None."""
        key = _fragment_key(packet)
        if key is not None and key in self._fragments:
            return "fragment"
        if TCP in packet and self._segments:
            pending = self._segments.get(_flow(packet))
            if pending is not None and len(packet[TCP].payload) > 0:
                pending[0] -= 1
                if pending[0] <= 0:
                    del self._segments[_flow(packet)]
                return "segment"
        if in_media and UDP in packet and key is None:
            ip = packet[IP] if IP in packet else (packet[IPv6] if IPv6 in packet else None)  # noqa: SIM401
            if ip is not None:
                ends = (
                    (str(ip.src), int(packet[UDP].sport)),
                    (str(ip.dst), int(packet[UDP].dport)),
                )
                for end in ends:
                    if any(start <= ts <= stop for start, stop in self._windows.get(end, ())):
                        return "media"
        return None


def _fragment_key(packet: Packet) -> tuple[Any, ...] | None:
    """(version, src, dst, proto, id) of an IP fragment; None for a whole datagram."""
    if IP in packet:
        ip = packet[IP]
        if ip.flags.MF or ip.frag:
            return (4, ip.src, ip.dst, ip.proto, ip.id)
        return None
    if IPv6ExtHdrFragment in packet:
        ip6 = packet[IPv6]
        frag = packet[IPv6ExtHdrFragment]
        return (6, ip6.src, ip6.dst, frag.nh, frag.id)
    return None


def _flow(packet: Packet) -> tuple[Any, ...]:
    ip = packet[IP] if IP in packet else packet[IPv6]
    return (ip.src, packet[TCP].sport, ip.dst, packet[TCP].dport)


def pick_records(path: str, picker: FramePicker) -> InputSummary:
    """Walk ``path`` with ``picker`` (its ``kept`` fills up); the walk's summary of damage."""
    summary = InputSummary(file=path)
    src, header = open_capture(path, summary)
    try:
        reader: pcap.PcapReader | pcapng.PcapngReader
        if header is None:
            reader = pcapng.PcapngReader(src, summary, 0)
        else:
            reader = pcap.PcapReader(src, header, summary, 24, 1)
        for _ in reader.read(picker, [], 2**62):
            pass
    finally:
        src.close()
    return summary


_PCAP_NS_MAGIC: Final = 0xA1B23C4D
_SNAPLEN: Final = 262144


def write_records(path: Path, records: Iterable[Record]) -> str:
    """Write records in time order: classic pcap (ns) when they share one link type, else
    pcapng with one interface per link type. Returns the format written."""
    ordered = sorted(records, key=lambda r: (r.ts_ns, r.file, r.frame))
    linktypes = list(dict.fromkeys(r.linktype for r in ordered)) or [1]
    with path.open("wb") as out:
        if len(linktypes) == 1:
            out.write(struct.pack("<IHHiIII", _PCAP_NS_MAGIC, 2, 4, 0, 0, _SNAPLEN, linktypes[0]))
            for r in ordered:
                sec, nsec = divmod(r.ts_ns, 1_000_000_000)
                out.write(struct.pack("<IIII", sec, nsec, len(r.data), len(r.data)) + r.data)
            return "pcap"
        out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        interface = {}
        for index, linktype in enumerate(linktypes):
            # if_tsresol (option 9) = 9: nanoseconds; then opt_endofopt.
            options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
            out.write(_block(1, struct.pack("<HHI", linktype, 0, _SNAPLEN) + options))
            interface[linktype] = index
        for r in ordered:
            padded = r.data + b"\x00" * (-len(r.data) % 4)
            body = struct.pack(
                "<IIIII",
                interface[r.linktype],
                r.ts_ns >> 32,
                r.ts_ns & 0xFFFFFFFF,
                len(r.data),
                len(r.data),
            )
            out.write(_block(6, body + padded))
        return "pcapng"


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)
