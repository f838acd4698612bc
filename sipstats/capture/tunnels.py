"""Decode stage: UDP tunnel headers (GTP-U, VXLAN) -> where the packet they carry starts.

GRE and IP-in-IP are IP protocols and live in the decoder; these two ride in UDP on their own
ports, so the decoder asks here before it treats such a datagram as a SIP candidate. A datagram
on a tunnel port that is not a tunnel user packet (GTP-U echo, a SIP message sent from an
ephemeral port that happens to be 4789) is left to the ordinary UDP rules.
"""

from __future__ import annotations

from typing import Any, Final, Literal

#: 3GPP TS 29.281 §4.4.2: the GTP-U port, used as source and destination.
GTP_U_PORT: Final = 2152
#: RFC 7348 §5: the VXLAN destination port (the source port is a flow hash).
VXLAN_PORT: Final = 4789
#: Ports on which a datagram may be a tunnel rather than a SIP candidate.
TUNNEL_PORTS: Final = frozenset({GTP_U_PORT, VXLAN_PORT})

Carried = Literal["ip", "ethernet"]


class TunnelError(ValueError):
    """A tunnel header that announces more than the packet holds."""


def inner_packet(
    buf: Any, o: int, end: int, sport: int, dport: int
) -> tuple[str, Carried, int] | None:
    """(tunnel name, what it carries, offset) for the tunnel datagram payload at ``buf[o:end]``.

    None when the datagram is not a tunnel user packet; :class:`TunnelError` when it is one
    whose headers run past its end.
    """
    if sport == GTP_U_PORT or dport == GTP_U_PORT:
        start = gtp_u_payload(buf, o, end)
        if start is not None:
            return "GTP-U", "ip", start
    if dport == VXLAN_PORT:
        start = vxlan_payload(buf, o, end)
        if start is not None:
            return "VXLAN", "ethernet", start
    return None


def gtp_u_payload(buf: Any, o: int, end: int) -> int | None:
    """Offset of the user packet (T-PDU) of the GTPv1-U G-PDU at ``buf[o:end]``, else None.

    3GPP TS 29.281 §5.1: flags (version 1, protocol type 1, E, S, PN), message type (255 for a
    G-PDU), length, TEID; when E, S or PN is set, a sequence number, an N-PDU number and the
    type of the first extension header follow. §5.2: each extension header gives its length
    in 4-octet units and ends with the type of the next one (0: none).
    """
    if end - o < 8 or buf[o] & 0xF0 != 0x30 or buf[o + 1] != 0xFF:
        return None  # not GTPv1-U, or echo / error indication / end marker: no user packet
    p = o + 8
    if buf[o] & 0x07:
        if end - p < 4:
            raise TunnelError("GTP-U optional fields cut short")
        next_type = buf[p + 3]
        p += 4
        while next_type:
            size = buf[p] * 4 if p < end else 0
            if size == 0 or p + size > end:
                raise TunnelError(f"GTP-U extension header 0x{next_type:02x} cut short")
            next_type = buf[p + size - 1]
            p += size
    return p


def vxlan_payload(buf: Any, o: int, end: int) -> int | None:
    """Offset of the Ethernet frame in the VXLAN datagram at ``buf[o:end]``, else None.

    RFC 7348 §5: 8 flag bits with I (0x08) set, 24 reserved bits, a 24-bit VNI, 8 reserved
    bits. The last reserved byte is checked too: text (a SIP start line) never has a NUL there.
    """
    if end - o < 8 + 14 or not buf[o] & 0x08 or buf[o + 7]:
        return None
    return o + 8
