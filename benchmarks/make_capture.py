"""Deterministic generator of a large SIP capture for benchmarks (classic pcap, Ethernet/IPv4/UDP).

The capture mixes SIP dialogs of every outcome (answered, busy and unavailable with
Retry-After, 503 overload, CANCEL, 404, digest challenge then answer), REGISTER and OPTIONS,
retransmitted INVITEs and 200 OKs, compact header forms, SIP on ports 5060 and 5080, and
RTP/RTCP noise (30 % of the packets by default; ``--noise 0.93`` gives the RTP-dominated mix
that media-heavy captures have). The same arguments always give the same bytes.

    python benchmarks/make_capture.py OUT.pcap [--packets 1000000] [--noise 0.30]
"""

from __future__ import annotations

import argparse
import heapq
import random
import struct
from collections.abc import Iterator
from pathlib import Path

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
ETHERNET = bytes.fromhex("0200000000020200000000010800")
T0_NS = 1_760_000_000 * 10**9
NOISE_SHARE = 0.30

# (outcome, weight); the message flow of each is built in _call_events
OUTCOMES = (
    ("answered", 48),
    ("busy", 12),
    ("unavailable", 6),
    ("overload", 8),
    ("cancel", 6),
    ("not_found", 5),
    ("auth_answered", 8),
    ("register", 4),
    ("options", 3),
)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP around ``payload`` (UDP checksum 0, IPv4 checksum computed)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        ident & 0xFFFF,
        0x4000,
        64,
        17,
        0,
        bytes(map(int, src[0].split("."))),
        bytes(map(int, dst[0].split("."))),
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ETHERNET + ip + udp


class _Call:
    """Headers shared by every message of one dialog."""

    def __init__(self, n: int, rng: random.Random, compact: bool, port: int) -> None:
        self.n = n
        self.compact = compact
        self.uac = (f"10.1.{n % 200}.{1 + n % 250}", 5060)
        self.uas = ("10.2.0.10", port)
        self.call_id = f"{n:08x}-{rng.getrandbits(48):012x}@bench.example"
        self.from_tag = f"{rng.getrandbits(32):08x}"
        self.to_tag = f"{rng.getrandbits(32):08x}"
        self.caller = f"sip:user{n % 5000}@bench.example"
        self.callee = f"sip:{1000 + n % 900}@pbx.example"

    def _names(self) -> tuple[str, str, str, str, str, str]:
        if self.compact:
            return "v", "f", "t", "i", "l", "m"
        return "Via", "From", "To", "Call-ID", "Content-Length", "Contact"

    def message(
        self,
        first_line: str,
        cseq: int,
        method: str,
        branch: int,
        *,
        to_tag: bool = False,
        extra: str = "",
        body: str = "",
    ) -> bytes:
        via, from_, to, call_id, length, contact = self._names()
        host, port = self.uac
        to_value = f"<{self.callee}>" + (f";tag={self.to_tag}" if to_tag else "")
        text = (
            f"{first_line}\r\n"
            f"{via}: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{self.n:x}.{branch};rport\r\n"
            f'{from_}: "User {self.n % 5000}" <{self.caller}>;tag={self.from_tag}\r\n'
            f"{to}: {to_value}\r\n"
            f"{call_id}: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"{contact}: <sip:user@{host}:{port}>\r\n"
            "Max-Forwards: 70\r\n"
            "User-Agent: bench-uac/1.0\r\n"
            f"{extra}"
            f"{length}: {len(body)}\r\n\r\n{body}"
        )
        return text.encode()


def sdp(host: str, port: int) -> str:
    """A one-stream audio offer or answer; each call gets its own media address and port."""
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
    )


def _media(call: _Call) -> tuple[tuple[str, int], tuple[str, int]]:
    """RTP endpoints of the caller and the callee (the SDP offer/answer and the noise agree)."""
    return (call.uac[0], 20000 + 2 * (call.n % 5000)), (call.uas[0], 30000 + 2 * (call.n % 5000))


def _call_events(call: _Call, start_ns: int, outcome: str, rng: random.Random) -> list[tuple]:
    """(ts_ns, src, dst, payload) of one dialog, not necessarily in time order."""
    ms = 1_000_000
    c, a, b = call, call.uac, call.uas
    ruri = f"{c.callee}"
    offer, answer = (sdp(*end) for end in _media(call))
    ev: list[tuple] = []

    def req(t: int, method: str, cseq: int, branch: int, **kw: object) -> None:
        line = f"{method} {ruri} SIP/2.0"
        ev.append((start_ns + t, a, b, c.message(line, cseq, method, branch, **kw)))  # type: ignore[arg-type]

    def resp(t: int, code: str, cseq: int, method: str, branch: int, **kw: object) -> None:
        ev.append((start_ns + t, b, a, c.message(f"SIP/2.0 {code}", cseq, method, branch, **kw)))  # type: ignore[arg-type]

    if outcome == "register":
        req(0, "REGISTER", 1, 1, extra="Expires: 3600\r\n")
        resp(
            20 * ms,
            "401 Unauthorized",
            1,
            "REGISTER",
            1,
            to_tag=True,
            extra='WWW-Authenticate: Digest realm="bench", nonce="abc"\r\n',
        )
        req(
            60 * ms,
            "REGISTER",
            2,
            2,
            extra='Expires: 3600\r\nAuthorization: Digest username="u"\r\n',
        )
        resp(80 * ms, "200 OK", 2, "REGISTER", 2, to_tag=True, extra="Expires: 3600\r\n")
        return ev
    if outcome == "options":
        req(0, "OPTIONS", 1, 1)
        resp(5 * ms, "200 OK", 1, "OPTIONS", 1, to_tag=True)
        return ev

    cseq = 1
    t = 0
    if outcome == "auth_answered":
        req(0, "INVITE", 1, 1, body=offer, extra="Content-Type: application/sdp\r\n")
        resp(
            15 * ms,
            "407 Proxy Authentication Required",
            1,
            "INVITE",
            1,
            to_tag=True,
            extra='Proxy-Authenticate: Digest realm="bench", nonce="n"\r\n',
        )
        req(20 * ms, "ACK", 1, 1, to_tag=True)
        cseq, t = 2, 40 * ms
    auth = 'Proxy-Authorization: Digest username="u"\r\n' if cseq == 2 else ""

    def reject(at: int, status: str, extra: str = "") -> None:
        """A final failure to the INVITE and the caller's ACK 2 ms later (RFC 3261 §17.1.1.3)."""
        resp(at, status, cseq, "INVITE", cseq, to_tag=True, extra=extra)
        req(at + 2 * ms, "ACK", cseq, cseq, to_tag=True)

    req(t, "INVITE", cseq, cseq, body=offer, extra=f"Content-Type: application/sdp\r\n{auth}")
    if rng.random() < 0.04:  # Timer A retransmission
        req(
            t + 500 * ms,
            "INVITE",
            cseq,
            cseq,
            body=offer,
            extra=f"Content-Type: application/sdp\r\n{auth}",
        )
    if outcome == "overload":
        reject(t + 8 * ms, "503 Service Unavailable", "Retry-After: 10 (overloaded)\r\n")
        return ev
    if outcome == "not_found":
        reject(t + 9 * ms, "404 Not Found")
        return ev
    resp(t + 5 * ms, "100 Trying", cseq, "INVITE", cseq)
    ring = t + rng.randint(80, 900) * ms
    resp(ring, "180 Ringing", cseq, "INVITE", cseq, to_tag=True)
    final = ring + rng.randint(500, 6000) * ms
    if outcome == "busy":
        reject(final, "486 Busy Here", "Retry-After: 60\r\n")
    elif outcome == "unavailable":
        reject(final, "480 Temporarily Unavailable", "Retry-After: 300;duration=1800\r\n")
    elif outcome == "cancel":
        req(final, "CANCEL", cseq, cseq)
        resp(final + 3 * ms, "200 OK", cseq, "CANCEL", cseq, to_tag=True)
        reject(final + 4 * ms, "487 Request Terminated")
    else:  # answered (also after a digest challenge)
        resp(
            final,
            "200 OK",
            cseq,
            "INVITE",
            cseq,
            to_tag=True,
            body=answer,
            extra="Content-Type: application/sdp\r\n",
        )
        if rng.random() < 0.05:  # 2xx retransmitted before the ACK arrived
            resp(
                final + 500 * ms,
                "200 OK",
                cseq,
                "INVITE",
                cseq,
                to_tag=True,
                body=answer,
                extra="Content-Type: application/sdp\r\n",
            )
        req(final + 3 * ms, "ACK", cseq, 100 + cseq, to_tag=True)
        hangup = final + rng.randint(2, 30) * 1000 * ms
        req(hangup, "BYE", cseq + 1, 200 + cseq, to_tag=True)
        resp(hangup + 4 * ms, "200 OK", cseq + 1, "BYE", 200 + cseq, to_tag=True)
    return ev


def _noise(call: _Call, sip_events: list[tuple], count: int, rng: random.Random) -> list[tuple]:
    """``count`` RTP (and some RTCP) packets between the dialog's first and last message."""
    if not count:
        return []
    first = min(e[0] for e in sip_events)
    last = max(e[0] for e in sip_events)
    a, b = _media(call)
    out = []
    for k in range(count):
        t = rng.randint(first, max(first, last))
        src, dst = (a, b) if k % 2 else (b, a)
        if k % 10 == 9:  # RTCP sender report on the odd port
            payload = struct.pack("!BBH", 0x80, 200, 6) + bytes(24)
            src, dst = (src[0], src[1] + 1), (dst[0], dst[1] + 1)
        else:
            payload = struct.pack("!BBHII", 0x80, 0, k & 0xFFFF, k * 160, call.n) + bytes(160)
        out.append((t, src, dst, payload))
    return out


def events(
    packets: int, seed: int = 6076, noise: float = NOISE_SHARE
) -> Iterator[tuple[int, tuple, tuple, bytes]]:
    """Every packet of the capture, in time order; ``noise`` is the share of RTP/RTCP."""
    if not 0 <= noise < 1:
        raise ValueError(f"noise share must be in [0, 1), not {noise}")
    rng = random.Random(seed)
    names = [name for name, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    # Media packets per SIP message; only answered dialogs carry media, so each takes what
    # the dialogs before it (without media) left, and the share holds over the whole capture.
    ratio = noise / (1 - noise)
    sip_count = noise_count = 0
    pending: list[tuple[int, int, tuple, tuple, bytes]] = []
    emitted = 0
    seq = 0
    n = 0
    gap_ns = 4_000_000  # 250 new dialogs per second
    while emitted < packets:
        start = T0_NS + n * gap_ns
        while pending and pending[0][0] < start:
            ts, _, src, dst, payload = heapq.heappop(pending)
            yield ts, src, dst, payload
            emitted += 1
            if emitted >= packets:
                return
        call = _Call(n, rng, compact=n % 7 == 3, port=5080 if n % 5 == 4 else 5060)
        outcome = rng.choices(names, weights)[0]
        sip = _call_events(call, start, outcome, rng)
        sip_count += len(sip)
        owed = (
            int(sip_count * ratio) - noise_count if outcome.startswith(("answered", "auth")) else 0
        )
        media = _noise(call, sip, owed, rng)
        noise_count += len(media)
        for ts, src, dst, payload in sip + media:
            heapq.heappush(pending, (ts, seq, src, dst, payload))
            seq += 1
        n += 1


def write_capture(path: Path, packets: int, seed: int = 6076, noise: float = NOISE_SHARE) -> int:
    """Write the capture; returns its size in bytes."""
    with path.open("wb") as out:
        out.write(PCAP_HEADER)
        for ident, (ts, src, dst, payload) in enumerate(events(packets, seed, noise)):
            frame = udp_frame(src, dst, payload, ident)
            sec, nsec = divmod(ts, 10**9)
            out.write(struct.pack("<IIII", sec, nsec // 1000, len(frame), len(frame)))
            out.write(frame)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=6076)
    parser.add_argument(
        "--noise", type=float, default=NOISE_SHARE, help="share of RTP/RTCP packets, 0 to <1"
    )
    args = parser.parse_args()
    size = write_capture(args.output, args.packets, args.seed, args.noise)
    print(f"{args.output}: {args.packets} packets, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
