"""Per-file input summary: what was read, what was damaged, what could not be decoded.

Bad input is data (STYLE habit 6): every oddity is a counted :class:`Anomaly` with the frame
numbers of its first examples, never a silent drop and never a crash.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from dataclasses import dataclass, field

from sipstats.textsafe import spelled_out

#: How many example frame numbers an anomaly keeps.
EXAMPLE_FRAMES = 5


@dataclass
class Anomaly:
    """A counted kind of damage, with the first few frames where it occurred."""

    count: int = 0
    frames: list[int] = field(default_factory=list)
    detail: str = ""
    """What the first example looked like (e.g. the offending start line), for reports."""

    def add(self, frame: int, detail: str = "") -> None:
        self.count += 1
        if len(self.frames) < EXAMPLE_FRAMES:
            self.frames.append(frame)
        if detail and not self.detail:
            self.detail = detail


@dataclass
class Survey:
    """What a capture without SIP held instead (:mod:`sipstats.capture.survey`)."""

    packets: int = 0
    """Packets walked: all of the file when ``whole_file``, else its first ones."""
    whole_file: bool = True
    seen: dict[str, int] = field(default_factory=dict)
    """The commonest kinds of traffic by packets: 'udp/53', 'tcp/443', 'rtp/rtcp', 'arp'."""
    tunnels_not_decoded: dict[str, int] = field(default_factory=dict)
    """Packets of tunnels the decoder does not open, by tunnel name."""


@dataclass
class InputSummary:
    """What one capture file contributed; ``Capture.inputs`` holds one per file."""

    file: str
    format: str = ""
    """'pcap', 'pcap-ns', 'pcapng' or '' when the file could not be identified."""
    compression: str = ""
    """'', 'gzip', 'bz2' or 'xz'."""
    link_types: list[str] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    sip_messages: int = 0
    keepalives: int = 0
    """RFC 5626 CRLF keep-alives (not errors)."""
    duplicates: int = 0
    """Capture duplicates: second sightings of a message (not rows unless kept, never
    retransmissions; see :mod:`sipstats.capture.duplicates`)."""
    not_decodable: Counter[str] = field(default_factory=Counter)
    """Traffic that is SIP but cannot be read here, by kind: 'tls', 'websocket', ..."""
    unsupported: Counter[str] = field(default_factory=Counter)
    """Packets skipped because their link type or protocol is unknown, by name."""
    tunnels: Counter[str] = field(default_factory=Counter)
    """Packets unwrapped from a tunnel, by tunnel: 'GRE', 'IP-in-IP', 'GTP-U', 'VXLAN', ..."""
    icmp_unreachable: dict[str, Anomaly] = field(default_factory=dict)
    """ICMP/ICMPv6 destination-unreachable errors quoting a SIP packet, by the ``ADDR:PORT``
    it was sent to; the detail names the first error's reason. Not messages, not damage."""
    malformed: dict[str, Anomaly] = field(default_factory=dict)
    """Messages or packets that were damaged, by reason."""
    errors: list[str] = field(default_factory=list)
    """One-line, file-level problems: truncation, impossible record lengths, unreadable."""
    no_sip: Survey | None = None
    """Set when the file was read but held no SIP message: what it held instead."""

    def anomaly(self, reason: str, frame: int, detail: str = "") -> None:
        """Count one damaged message or packet under ``reason``."""
        self.malformed.setdefault(reason, Anomaly()).add(frame, detail)

    def unreachable(self, destination: str, frame: int, detail: str) -> None:
        """Count one ICMP destination-unreachable error about a SIP packet to ``destination``."""
        self.icmp_unreachable.setdefault(destination, Anomaly()).add(frame, detail)

    def see_time(self, ts_ns: int) -> None:
        if self.first_ts_ns is None or ts_ns < self.first_ts_ns:
            self.first_ts_ns = ts_ns
        if self.last_ts_ns is None or ts_ns > self.last_ts_ns:
            self.last_ts_ns = ts_ns

    def merge(self, part: InputSummary) -> None:
        """Add what a later part of the same file contributed (parts decoded apart).

        By kind of field, so that every count added later merges too: numbers and counters
        add up, lists of errors follow each other, names (format, link types) are kept once,
        the time range widens. An anomaly keeps the first example frames by frame number and
        the detail of the earliest example, as one pass over the file keeps them.
        """
        for name, theirs in vars(part).items():
            ours = getattr(self, name)
            if name in ("first_ts_ns", "last_ts_ns"):
                if theirs is not None:
                    self.see_time(theirs)
            elif name == "malformed":
                for reason, anomaly in theirs.items():
                    self._merge_anomaly(reason, anomaly)
            elif name == "link_types":
                ours += [value for value in theirs if value not in ours]
            elif isinstance(ours, str):
                setattr(self, name, ours or theirs)
            elif isinstance(ours, int | Counter | list):
                setattr(self, name, ours + theirs)

    def _merge_anomaly(self, reason: str, theirs: Anomaly) -> None:
        ours = self.malformed.get(reason)
        if ours is None:
            self.malformed[reason] = Anomaly(theirs.count, list(theirs.frames), theirs.detail)
            return
        first = min((ours, theirs), key=lambda a: a.frames[0] if a.frames else sys.maxsize)
        ours.detail = first.detail or ours.detail or theirs.detail
        ours.frames = sorted(ours.frames + theirs.frames)[:EXAMPLE_FRAMES]
        ours.count += theirs.count

    @property
    def damaged(self) -> bool:
        """True when anything was lost or could not be read."""
        return bool(self.errors or self.malformed)

    @property
    def flagged(self) -> bool:
        """Damaged, unreadable, or read without finding SIP: every command names such an
        input on stderr and exits 1 (:func:`sipstats.report.exit_status`)."""
        return self.damaged or self.no_sip is not None

    @property
    def readable(self) -> bool:
        """A capture sipstats could read (even an empty one), not a file it gave up on."""
        return bool(self.format and (self.packets or not self.errors))

    @property
    def name(self) -> str:
        """The file's name as reports show it, in UTF-8: one that is not UTF-8 spelled out, as
        the messages' file column has it (``file`` stays what opens the file again)."""
        return spelled_out(self.file)

    @property
    def shown_errors(self) -> list[str]:
        """``errors`` as reports show them (they name the file, see :attr:`name`)."""
        return [spelled_out(error) for error in self.errors]

    @property
    def malformed_total(self) -> int:
        return sum(a.count for a in self.malformed.values())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form used by ``Analysis.to_dict()['inputs']``."""
        return {
            "file": self.name,
            "format": self.format,
            "compression": self.compression,
            "link_types": list(self.link_types),
            "packets": self.packets,
            "bytes": self.bytes,
            "sip_messages": self.sip_messages,
            "keepalives": self.keepalives,
            "duplicates": self.duplicates,
            "malformed": {reason: a.count for reason, a in sorted(self.malformed.items())},
            "malformed_frames": {r: list(a.frames) for r, a in sorted(self.malformed.items())},
            "not_decodable": dict(sorted(self.not_decodable.items())),
            "unsupported": dict(sorted(self.unsupported.items())),
            "tunnels": dict(sorted(self.tunnels.items())),
            "icmp_unreachable": {
                destination: {"count": a.count, "reason": a.detail, "frames": list(a.frames)}
                for destination, a in sorted(self.icmp_unreachable.items())
            },
            "errors": self.shown_errors,
            "no_sip": None if self.no_sip is None else dataclasses.asdict(self.no_sip),
        }
