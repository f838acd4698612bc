"""Captures for the drill-down tests (calls, flow, extract), built with scapy at fixed times.

``proxied_capture``: call A goes caller -> proxy -> callee under one Call-ID; the proxy
retransmits the INVITE once, the callee sends 183 with SDP (early media) and then 503 with
a Reason (Q.850 cause 34), RTP flows between the negotiated ports. Call B is answered over
TCP with its INVITE split across two segments; call C's INVITE is IP-fragmented. Call D
has a hostile Call-ID (a formula and a terminal escape). Plus unrelated RTP and SIP noise.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from tests.sipfactory import T0, sip_request, sip_response, tcp, udp, write_pcap

CALLER = ("10.0.0.1", 5060)
PROXY = ("10.0.0.5", 5060)
CALLEE = ("10.0.0.2", 5060)
HOSTILE_CALL_ID = '=HYPERLINK("x")\x1b[31m@evil'


def sdp(address: str, port: int, formats: str = "0 8 101") -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
    ).encode()


def _with_sdp(body: bytes) -> dict[str, object]:
    return {"headers": [("Content-Type", "application/sdp")], "body": body}


def rtp(src: tuple[str, int], dst: tuple[str, int], t: float, seq: int) -> Packet:
    header = bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + bytes(8)
    return udp(header + bytes(160), t, src=src, dst=dst)


def proxied_call() -> list[Packet]:
    dialog = {"call_id": "call-a@10.0.0.1", "from_tag": "fa", "callee": "sip:bob@example.com"}
    leg1 = {**dialog, "branch": "z9hG4bK-a1"}
    leg2 = {**dialog, "branch": "z9hG4bK-a2"}
    offer = _with_sdp(sdp("10.0.0.1", 4000))
    early = _with_sdp(sdp("10.0.0.2", 6000, "0 101"))
    reason = [("Reason", 'Q.850;cause=34;text="No circuit available"')]

    def relayed(status: int, phrase: str, t: float, later: float, **extra: object) -> list[Packet]:
        """The callee's response on leg 2 at ``t``, the proxy's copy on leg 1 ``later``."""
        hops = ((leg2, t, CALLEE, PROXY), (leg1, t + later, PROXY, CALLER))
        return [
            udp(
                sip_response(
                    status, phrase, cseq=1, cseq_method="INVITE", to_tag="tb", **leg, **extra
                ),  # type: ignore[arg-type]
                at,
                src,
                dst,
            )
            for leg, at, src, dst in hops
        ]

    return [
        udp(sip_request("INVITE", cseq=1, **leg1, **offer), 0.0, CALLER, PROXY),  # type: ignore[arg-type]
        udp(sip_response(100, "Trying", cseq=1, cseq_method="INVITE", **leg1), 0.01, PROXY, CALLER),
        udp(sip_request("INVITE", cseq=1, **leg2, **offer), 0.02, PROXY, CALLEE),  # type: ignore[arg-type]
        udp(sip_request("INVITE", cseq=1, **leg2, **offer), 0.52, PROXY, CALLEE),  # type: ignore[arg-type]
        *relayed(183, "Session Progress", 0.6, 0.01, **early),
        rtp(("10.0.0.2", 6000), ("10.0.0.1", 4000), 0.7, 1),
        rtp(("10.0.0.1", 4000), ("10.0.0.2", 6000), 0.72, 1),
        *relayed(503, "Service Unavailable", 1.0, 0.02, headers=reason),
        udp(sip_request("ACK", cseq=1, to_tag="tb", **leg2), 1.01, PROXY, CALLEE),
        udp(sip_request("ACK", cseq=1, to_tag="tb", **leg1), 1.03, CALLER, PROXY),
    ]


def tcp_call() -> list[Packet]:
    dialog = {
        "call_id": "call-b@10.0.0.3",
        "from_tag": "fb",
        "branch": "z9hG4bK-b",
        "via_host": "10.0.0.3:5070",
    }
    caller, callee = ("10.0.0.3", 5070), ("10.0.0.4", 5060)
    invite = sip_request("INVITE", cseq=1, **dialog, **_with_sdp(sdp("10.0.0.3", 4100)))  # type: ignore[arg-type]
    ok = sip_response(
        200,
        "OK",
        cseq=1,
        cseq_method="INVITE",
        to_tag="tb",
        **dialog,
        **_with_sdp(sdp("10.0.0.4", 6100)),
    )  # type: ignore[arg-type]
    half = len(invite) // 2
    ack = sip_request("ACK", cseq=1, to_tag="tb", **dialog)
    return [
        tcp(b"", 2.0, 1000, caller, callee, flags="S"),
        tcp(b"", 2.001, 5000, callee, caller, flags="SA"),
        tcp(invite[:half], 2.01, 1001, caller, callee),
        tcp(invite[half:], 2.011, 1001 + half, caller, callee),
        tcp(ok, 2.2, 5001, callee, caller),
        tcp(ack, 2.21, 1001 + len(invite), caller, callee),
    ]


def fragmented_call() -> list[Packet]:
    dialog = {
        "call_id": "call-c@10.0.0.6",
        "from_tag": "fc",
        "branch": "z9hG4bK-c",
        "via_host": "10.0.0.6:5060",
    }
    caller = ("10.0.0.6", 5060)
    padding = [("X-Padding", "p" * 1800)]
    invite = sip_request("INVITE", cseq=1, headers=padding, **dialog)  # type: ignore[arg-type]
    whole = (
        Ether()
        / IP(src=caller[0], dst=CALLEE[0], id=77)
        / UDP(sport=5060, dport=5060)
        / Raw(invite)
    )
    pieces = []
    for index, piece in enumerate(fragment(whole[IP], fragsize=600)):
        packet = Ether() / piece
        packet.time = T0 + 3.0 + index * 0.0001
        pieces.append(packet)
    busy = sip_response(486, "Busy Here", cseq=1, cseq_method="INVITE", to_tag="tc", **dialog)
    ack = sip_request("ACK", cseq=1, to_tag="tc", **dialog)
    return [*pieces, udp(busy, 3.1, CALLEE, caller), udp(ack, 3.11, caller, CALLEE)]


def hostile_call() -> list[Packet]:
    dialog = {"call_id": HOSTILE_CALL_ID, "from_tag": "fd", "branch": "z9hG4bK-d"}
    return [
        udp(sip_request("INVITE", cseq=1, **dialog), 4.0),
        udp(
            sip_response(404, "Not Found", cseq=1, cseq_method="INVITE", to_tag="td", **dialog),
            4.1,
            CALLEE,
            CALLER,
        ),
    ]


def drill_packets() -> list[Packet]:
    noise = [rtp(("10.9.9.9", 7000), ("10.9.9.8", 7002), 0.3 + i * 0.02, i) for i in range(5)]
    packets = [*proxied_call(), *tcp_call(), *fragmented_call(), *hostile_call(), *noise]
    return sorted(packets, key=lambda packet: float(packet.time))


def drill_capture(path: Path) -> Path:
    """Write :func:`drill_packets` as a classic pcap at ``path``."""
    return write_pcap(path, drill_packets())
