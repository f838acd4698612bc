"""Builders for SIP messages and captures used as test fixtures (fixed times and addresses).

``sip_request``/``sip_response`` make message bytes; ``udp``/``tcp`` wrap them in scapy packets
with a timestamp; ``write_pcap`` stores packets with scapy. Tests build every fixture here
instead of shipping binary files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

T0 = 1_700_000_000.0
"""Fixed capture start (2023-11-14 22:13:20 UTC) for deterministic fixtures."""

UAC = ("10.0.0.1", 5060)
UAS = ("10.0.0.2", 5060)


def _headers(headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"{name}: {value}" for name, value in headers]
    if not any(name.lower() in ("content-length", "l") for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dialog_headers(
    *,
    call_id: str,
    cseq: int,
    cseq_method: str,
    branch: str,
    from_tag: str = "ftag1",
    to_tag: str | None = None,
    caller: str = "sip:alice@example.com",
    callee: str = "sip:bob@example.com",
    via_host: str = "10.0.0.1:5060",
) -> list[tuple[str, str]]:
    """The mandatory headers of RFC 3261 §8.1.1 for one message."""
    to = f"<{callee}>" + (f";tag={to_tag}" if to_tag else "")
    return [
        ("Via", f"SIP/2.0/UDP {via_host};branch={branch}"),
        ("Max-Forwards", "70"),
        ("From", f"<{caller}>;tag={from_tag}"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {cseq_method}"),
    ]


def sip_request(
    method: str,
    request_uri: str = "sip:bob@example.com",
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    **dialog: object,
) -> bytes:
    """A request; ``dialog`` keywords go to :func:`dialog_headers` (call_id, cseq, branch, ...)."""
    dialog.setdefault("cseq_method", method)
    base = dialog_headers(**dialog)  # type: ignore[arg-type]
    return f"{method} {request_uri} SIP/2.0\r\n".encode() + _headers([*base, *headers], body)


def sip_response(
    status: int,
    reason: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    **dialog: object,
) -> bytes:
    """A response; ``dialog`` keywords go to :func:`dialog_headers`."""
    base = dialog_headers(**dialog)  # type: ignore[arg-type]
    return f"SIP/2.0 {status} {reason}\r\n".encode() + _headers([*base, *headers], body)


def udp(
    payload: bytes,
    t: float,
    src: tuple[str, int] = UAC,
    dst: tuple[str, int] = UAS,
) -> Packet:
    """An Ethernet/IP/UDP packet carrying ``payload`` at time ``T0 + t``."""
    ip = IPv6(src=src[0], dst=dst[0]) if ":" in src[0] else IP(src=src[0], dst=dst[0])
    pkt = Ether() / ip / UDP(sport=src[1], dport=dst[1]) / Raw(payload)
    pkt.time = T0 + t
    return pkt


def tcp(
    payload: bytes,
    t: float,
    seq: int,
    src: tuple[str, int] = UAC,
    dst: tuple[str, int] = UAS,
    flags: str = "PA",
) -> Packet:
    """An Ethernet/IP/TCP segment with sequence number ``seq`` at time ``T0 + t``."""
    ip = IPv6(src=src[0], dst=dst[0]) if ":" in src[0] else IP(src=src[0], dst=dst[0])
    pkt = Ether() / ip / TCP(sport=src[1], dport=dst[1], seq=seq, flags=flags) / Raw(payload)
    pkt.time = T0 + t
    return pkt


def write_pcap(path: Path, packets: Iterable[Packet], **kwargs: object) -> Path:
    """Write ``packets`` to ``path`` with scapy (classic pcap unless told otherwise)."""
    wrpcap(str(path), list(packets), **kwargs)  # type: ignore[arg-type]
    return path
