"""The decode stage's hand-off: one :class:`Payload` per candidate SIP message.

Readers (pcap, pcapng, scapy fallback), IP reassembly, TCP stream framing and HEP unwrapping
all end in this one record, so nothing downstream knows how a message reached us.
"""

from __future__ import annotations

from typing import NamedTuple


class Payload(NamedTuple):
    """Bytes that should be one SIP message, with where and when they were seen."""

    ts_ns: int
    """Capture time in ns since the Unix epoch, UTC (HEP: the timestamp inside the HEP header)."""
    file: str
    """Capture file it came from, as given by the caller."""
    frame: int
    """1-based record number in the file of the first packet that carried it."""
    src: str
    sport: int
    dst: str
    dport: int
    transport: str
    """'udp', 'tcp', 'sctp' or 'ws' (WebSocket, RFC 7118)."""
    data: bytes
    """The message bytes: a UDP datagram payload or one message framed out of a TCP stream."""
    fragmented: bool = False
    """True when IP fragments were reassembled to get it."""
    segments: int = 1
    """TCP segments it spanned (1 for UDP)."""
    encap: str = ""
    """'' or the encapsulation it was unwrapped from ('hep')."""
    truncated: bool = False
    """True when the packet was cut by the capture's snaplen, so the bytes are incomplete."""
    fragments: int = 1
    """IP fragments it was reassembled from (1 when it was not fragmented)."""
