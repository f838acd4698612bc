"""TCP reassembly and SIP stream framing: crafted segments fed straight to TcpReassembler."""

from __future__ import annotations

import pytest

from sipstats.capture import framing
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from sipstats.capture.tcp import FIN, MAX_MESSAGE, OOO_SEGMENTS, RST, SYN, TcpReassembler
from tests.sipfactory import sip_request, sip_response

A = ("10.0.0.1", 5070)
B = ("10.0.0.2", 5060)
PA = 0x18  # PSH | ACK


def invite(n: int = 1, body: bytes = b"") -> bytes:
    return sip_request("INVITE", call_id=f"call-{n}", cseq=n, branch=f"z9hG4bK-{n}", body=body)


def ok(n: int = 1) -> bytes:
    return sip_response(200, "OK", call_id=f"call-{n}", cseq=n, cseq_method="INVITE", branch="b")


class Wire:
    """One TCP connection: feeds segments with consecutive frame numbers and times."""

    def __init__(
        self,
        ports: frozenset[int] | None = None,
        src: tuple[str, int] = A,
        dst: tuple[str, int] = B,
    ) -> None:
        self.summary = InputSummary("t.pcap")
        self.tcp = TcpReassembler("t.pcap", self.summary, ports)
        self.src, self.dst = src, dst
        self.frame = 0

    def send(
        self,
        data: bytes,
        seq: int,
        *,
        flags: int = PA,
        back: bool = False,
        truncated: bool = False,
    ) -> list[Payload]:
        """Feed one segment (``back``: from dst to src) at time = frame number in ms."""
        self.frame += 1
        (s, sp), (d, dp) = (self.dst, self.src) if back else (self.src, self.dst)
        ts = self.frame * 1_000_000
        return self.tcp.feed(ts, self.frame, s, sp, d, dp, seq, flags, data, truncated)

    def flush(self) -> list[Payload]:
        return self.tcp.flush()

    def malformed(self) -> dict[str, int]:
        return {reason: a.count for reason, a in self.summary.malformed.items()}


def datas(payloads: list[Payload]) -> list[bytes]:
    return [p.data for p in payloads]


def test_handshake_then_one_message_per_segment() -> None:
    w = Wire()
    assert w.send(b"", 999, flags=SYN) == []
    assert w.send(b"", 4999, flags=SYN | 0x10, back=True) == []
    (p,) = w.send(invite(), 1000)
    assert p.data == invite()
    assert (p.transport, p.src, p.sport, p.dst, p.dport) == ("tcp", *A, *B)
    assert (p.frame, p.ts_ns, p.segments, p.truncated, p.file) == (3, 3_000_000, 1, False, "t.pcap")
    (r,) = w.send(ok(), 5000, back=True)
    assert (r.src, r.sport, r.data) == (*B, ok())
    assert w.flush() == []
    assert w.summary.malformed == {}


def test_many_messages_in_one_segment() -> None:
    w = Wire()
    stream = invite(1) + invite(2, body=b"v=0\r\n") + invite(3)
    out = w.send(stream, 1)
    assert datas(out) == [invite(1), invite(2, body=b"v=0\r\n"), invite(3)]
    assert {(p.frame, p.segments) for p in out} == {(1, 1)}


def test_one_message_across_many_segments_keeps_first_frame_and_last_time() -> None:
    msg = invite(body=b"v=0\r\n" * 100)
    w = Wire()
    assert w.send(msg[:100], 1) == []
    assert w.send(msg[100:300], 101) == []
    (p,) = w.send(msg[300:], 301)
    assert p.data == msg
    assert (p.frame, p.ts_ns, p.segments) == (1, 3_000_000, 3)


def test_retransmitted_segment_is_not_emitted_twice() -> None:
    w = Wire()
    assert len(w.send(invite(), 1)) == 1
    assert w.send(invite(), 1) == []
    assert len(w.send(ok(), 1 + len(invite()))) == 1
    assert w.flush() == []
    assert w.summary.malformed == {}


def test_overlapping_segments_keep_the_first_copy_of_each_byte() -> None:
    msg = invite(body=b"x" * 50)
    w = Wire()
    assert w.send(msg[:120], 1) == []
    # The overlap [100:120) arrives again with different bytes: the first copy wins.
    forged = b"#" * 20 + msg[120:]
    (p,) = w.send(forged, 101)
    assert p.data == msg


def test_out_of_order_segments_wait_for_the_gap() -> None:
    msg = invite(body=b"v=0\r\n" * 20)
    w = Wire()
    w.send(b"", 0, flags=SYN)
    assert w.send(msg[80:], 81) == []
    assert w.send(msg[40:80], 41) == []
    (p,) = w.send(msg[:40], 1)
    assert p.data == msg
    assert (p.frame, p.segments, p.ts_ns) == (4, 3, 2_000_000)


def test_gap_that_never_fills_is_skipped_and_the_stream_resynchronises() -> None:
    first, lost, after = invite(1), invite(2), invite(3)
    w = Wire()
    w.send(b"", 0, flags=SYN)
    assert datas(w.send(first + lost[:30], 1)) == [first]
    seq = 1 + len(first) + 60  # bytes [30:60) of the second INVITE are never captured
    out = w.send(lost[60:] + after, seq)
    filler = [invite(10 + i) for i in range(OOO_SEGMENTS)]
    seq += len(lost) - 60 + len(after)
    for msg in filler:
        out += w.send(msg, seq)
        seq += len(msg)
    assert datas(out) == [after, *filler]
    assert w.malformed() == {"TCP gap": 1}
    assert w.summary.malformed["TCP gap"].detail == "30 bytes never captured"


def test_gap_left_at_end_of_file_is_counted_at_flush() -> None:
    w = Wire()
    w.send(b"", 0, flags=SYN)
    w.send(invite(1)[:50], 1)
    assert w.send(invite(2), 1 + len(invite(1))) == []
    (p,) = w.flush()
    assert p.data == invite(2)
    assert w.malformed() == {"TCP gap": 1}


def test_capture_started_mid_stream_skips_to_the_next_start_line() -> None:
    w = Wire()
    tail = invite(1)[-40:]
    (p,) = w.send(tail + invite(2), 77_777)
    assert p.data == invite(2)
    assert w.malformed() == {"TCP bytes outside a SIP message": 1}
    assert w.summary.malformed["TCP bytes outside a SIP message"].detail == (
        "40 bytes before a start-line"
    )


def test_mid_stream_start_line_split_across_segments() -> None:
    w = Wire()
    data = b"a=sendrecv\r\n" + invite(2)
    assert w.send(data[:20], 10) == []  # "...INVI": the start-line may still come
    (p,) = w.send(data[20:], 30)
    assert p.data == invite(2)
    assert (p.frame, p.segments) == (1, 2)


def test_crlf_keepalives_between_messages_are_counted_not_errors() -> None:
    w = Wire()
    stream = b"\r\n\r\n" + invite(1) + b"\r\n\r\n" + invite(2) + b"\r\n"
    assert datas(w.send(stream, 1)) == [invite(1), invite(2)]
    assert w.summary.keepalives == 2  # the last run may continue in the next segment
    assert w.flush() == []
    assert w.summary.keepalives == 3
    assert w.summary.malformed == {}


def test_sequence_numbers_wrap_around() -> None:
    msg = invite(body=b"v=0\r\n" * 10)
    w = Wire()
    isn = 0xFFFFFFFF - 30
    w.send(b"", isn, flags=SYN)
    assert w.send(msg[:40], isn + 1) == []
    (p,) = w.send(msg[40:], (isn + 41) & 0xFFFFFFFF)
    assert p.data == msg
    assert w.send(msg[40:], (isn + 41) & 0xFFFFFFFF) == []  # old data after the wrap


def test_missing_content_length_body_runs_to_the_next_start_line() -> None:
    no_length = b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nhello\r\n"
    w = Wire()
    out = w.send(no_length + invite(2), 1)
    assert datas(out) == [no_length, invite(2)]
    assert w.malformed() == {"TCP message without Content-Length": 1}
    # The last message of a stream is complete once the stream closes.
    (p,) = w.send(no_length, 1 + len(no_length) + len(invite(2)), flags=FIN | PA)
    assert p.data == no_length
    assert w.malformed() == {"TCP message without Content-Length": 2}


def test_missing_content_length_followed_by_keepalive_has_an_empty_body() -> None:
    ack = b"ACK sip:b@x SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n"
    w = Wire()
    assert datas(w.send(ack + b"\r\n\r\n" + invite(2), 1)) == [ack, invite(2)]
    assert w.summary.keepalives == 1


def test_invalid_content_length_is_left_for_the_parser_to_count() -> None:
    bad = (
        b"INVITE sip:b@x SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: xyz\r\n\r\nv=0\r\n"
    )
    w = Wire()
    assert datas(w.send(bad + ok(), 1)) == [bad, ok()]
    assert w.summary.malformed == {}


def test_compact_content_length() -> None:
    msg = b"MESSAGE sip:b@x SIP/2.0\r\ni: c\r\nCSeq: 1 MESSAGE\r\nl: 5\r\n\r\nhello"
    w = Wire()
    assert datas(w.send(msg + msg, 1)) == [msg, msg]


def test_bare_lf_messages_are_framed() -> None:
    msg = b"OPTIONS sip:b@x SIP/2.0\nCall-ID: c\nCSeq: 1 OPTIONS\nContent-Length: 2\n\nhi"
    w = Wire()
    assert datas(w.send(msg + msg, 1)) == [msg, msg]


def test_message_over_the_size_cap_is_counted_and_skipped() -> None:
    huge = (
        b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n"
        + f"Content-Length: {MAX_MESSAGE + 1}\r\n\r\n".encode()
    )
    w = Wire()
    assert w.send(huge, 1) == []
    seq = 1 + len(huge)
    chunk = b"z" * (64 << 10)
    while seq + len(chunk) < 1 + len(huge) + MAX_MESSAGE + 1:
        assert w.send(chunk, seq) == []  # counted down, never buffered
        seq += len(chunk)
        assert len(w.tcp._streams[(*A, *B)].buf) == 0
    rest = 1 + len(huge) + MAX_MESSAGE + 1 - seq
    (p,) = w.send(b"z" * rest + invite(2), seq)
    assert p.data == invite(2)
    assert w.malformed() == {"TCP message over size cap": 1}


def test_stream_that_ends_inside_a_message_is_counted() -> None:
    w = Wire()
    assert w.send(invite(1)[:-3], 1, flags=FIN | PA) == []
    assert w.malformed() == {"TCP stream ended inside a message": 1}
    assert w.summary.malformed["TCP stream ended inside a message"].detail.startswith("INVITE ")


def test_rst_closes_the_stream_and_a_new_syn_starts_a_fresh_one() -> None:
    w = Wire()
    w.send(b"", 100, flags=SYN)
    assert w.send(invite(1)[:30], 101) == []
    assert w.send(b"", 131, flags=RST) == []
    assert w.malformed() == {"TCP stream ended inside a message": 1}
    w.send(b"", 5000, flags=SYN)
    (p,) = w.send(invite(2), 5001)
    assert p.data == invite(2)


def test_snaplen_cut_message_is_emitted_as_truncated() -> None:
    msg = invite(1, body=b"v=0\r\n" * 50)
    w = Wire()
    out = w.send(invite(0) + msg[:100], 1, truncated=True)
    assert datas(out) == [invite(0)]
    assert not out[0].truncated
    # The next segment starts where the real (uncaptured) one ended: jump at once.
    (cut, nxt) = w.send(invite(2), 1 + len(invite(0)) + len(msg))
    assert (cut.data, cut.truncated) == (msg[:100], True)
    assert (nxt.data, nxt.truncated) == (invite(2), False)
    assert w.summary.malformed == {}


def test_sip_on_a_non_standard_port_is_recognised_by_its_start_line() -> None:
    w = Wire(src=("10.0.0.1", 40000), dst=("10.0.0.2", 6060))
    (p,) = w.send(invite(), 1)
    assert p.dport == 6060


def test_http_on_a_sip_port_counts_no_message() -> None:
    w = Wire(src=("10.0.0.1", 5060), dst=("10.0.0.2", 8888))
    w.send(b"", 1, flags=SYN)
    assert w.send(b"GET /index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n", 2) == []
    assert w.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", 9, back=True) == []
    assert w.send(b"GET /again HTTP/1.1\r\n\r\n", 39) == []
    assert w.flush() == []
    assert w.summary.unsupported == {"non-SIP TCP on a SIP port": 1}
    assert w.summary.malformed == {}


def test_sip_status_line_inside_http_on_a_non_sip_port_is_not_sip() -> None:
    evader = (
        b"SIP/2.0 200 ok\r\nHTTP/1.1 200 ok\r\nContent-type: application/octet-stream\r\n"
        b"Content-Length: 4\r\n\r\nX5O!"
    )
    w = Wire(src=("1.1.1.1", 22819), dst=("8.8.8.8", 80))
    assert w.send(evader, 1, back=True) == []
    assert w.send(ok(), 1 + len(evader), back=True) == []  # the stream stays ignored
    assert w.flush() == []
    assert w.summary.unsupported == {}
    assert w.summary.malformed == {}


def test_same_evader_on_a_sip_port_goes_to_the_parser() -> None:
    # On a SIP port the start-line is enough: the parser then reports the missing headers.
    evader = b"SIP/2.0 200 ok\r\nHTTP/1.1 200 ok\r\nContent-Length: 0\r\n\r\n"
    w = Wire()
    assert datas(w.send(evader, 1)) == [evader]


def test_tls_on_the_sip_tls_port_is_counted_once_per_connection() -> None:
    record = b"\x17\x03\x03\x00\x20" + bytes(32)
    w = Wire(src=("10.0.0.1", 5071), dst=("10.0.0.2", 5061))
    assert w.send(record, 1) == []
    assert w.send(record, 1, back=True) == []
    assert w.send(record, 38) == []
    assert w.flush() == []
    assert w.summary.not_decodable == {"tls": 1}
    assert w.summary.unsupported == {}


def test_tls_elsewhere_is_not_sip_and_not_counted() -> None:
    w = Wire(src=("10.0.0.1", 40000), dst=("10.0.0.2", 443))
    w.send(b"", 1, flags=SYN)
    assert w.send(b"\x16\x03\x01\x02\x00\x01" + bytes(100), 2) == []
    assert w.summary.not_decodable == {}
    assert w.summary.unsupported == {}


def test_ports_restrict_which_connections_are_read() -> None:
    w = Wire(ports=frozenset({5080}))
    assert w.send(invite(), 1) == []
    w5080 = Wire(ports=frozenset({5080}), dst=("10.0.0.2", 5080))
    assert len(w5080.send(invite(), 1)) == 1


def test_idle_streams_without_pending_bytes_are_forgotten() -> None:
    w = Wire()
    w.send(invite(1), 1)
    w.send(invite(2)[:30], 1, back=True)
    later = 10**12  # 1000 s later another connection's segment sweeps the idle ones
    w.tcp.feed(later, 99, "10.0.0.9", 5060, "10.0.0.2", 5060, 1, PA, invite(3), False)
    assert (*A, *B) not in w.tcp._streams
    assert (*B, *A) in w.tcp._streams  # a message in flight is never cut by the clock
    (p,) = w.send(invite(2)[30:], 31, back=True)
    assert p.data == invite(2)
    assert w.summary.malformed == {}


# -- WebSocket (RFC 7118) ---------------------------------------------------------------------

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCHED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)


def ws_frame(data: bytes, *, opcode: int = 1, fin: bool = True, mask: bytes = b"") -> bytes:
    """One RFC 6455 §5.2 frame; a client frame is masked with ``mask``."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(data)
    flag = 0x80 if mask else 0
    if n < 126:
        head += bytes([flag | n])
    elif n < 1 << 16:
        head += bytes([flag | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([flag | 127]) + n.to_bytes(8, "big")
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head + mask + data


def test_sip_over_websocket_masked_fragmented_and_server_frames() -> None:
    key = b"\x37\xfa\x21\x3d"
    big = invite(1, body=b"v=0\r\n" * 60)  # over 125 bytes: 16-bit length
    client = (
        ws_frame(big[:200], mask=key, fin=False)
        + ws_frame(b"", opcode=9, mask=key)  # a ping between fragments
        + ws_frame(big[200:], opcode=0, mask=key)
        + ws_frame(invite(2), opcode=2, mask=key)
    )
    w = Wire(src=("10.0.0.1", 43380), dst=("10.0.0.2", 8080))
    w.send(b"", 0, flags=SYN)
    w.send(b"", 0, flags=SYN | 0x10, back=True)
    assert w.send(UPGRADE, 1) == []
    seq = 1 + len(UPGRADE)
    assert w.send(client[:150], seq) == []  # frames arrive before the server agreed
    out = w.send(SWITCHED + ws_frame(ok(1)), 1, back=True)
    out += w.send(client[150:], seq + 150)
    assert [(p.transport, p.data) for p in out] == [("ws", ok(1)), ("ws", big), ("ws", invite(2))]
    assert (out[0].sport, out[1].sport) == (8080, 43380)
    assert (out[1].frame, out[1].segments) == (4, 2)
    assert w.flush() == []
    assert w.summary.malformed == {}


def test_websocket_without_the_sip_subprotocol_is_ignored() -> None:
    w = Wire(src=("10.0.0.1", 43380), dst=("10.0.0.2", 8080))
    w.send(UPGRADE, 1)
    chat = SWITCHED.replace(b"Protocol: sip", b"Protocol: chat")
    assert w.send(chat + ws_frame(ok(1)), 1, back=True) == []
    assert w.send(ws_frame(invite(), mask=b"abcd"), 1 + len(UPGRADE)) == []
    assert w.flush() == []


def test_compressed_websocket_message_is_counted_as_not_decodable() -> None:
    w = Wire(src=("10.0.0.1", 43380), dst=("10.0.0.2", 8080))
    w.send(UPGRADE, 1)
    deflated = bytes([0xC1, 3]) + b"\x01\x02\x03"  # FIN + RSV1 (permessage-deflate) + text
    assert w.send(SWITCHED + deflated, 1, back=True) == []
    assert w.summary.not_decodable == {"websocket": 1}


# -- framing helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "is_start"),
    [
        (b"INVITE sip:b@x SIP/2.0\r\n", True),
        (b"SIP/2.0 180 Ringing\r\n", True),
        (b"SIP/2.0 200 \r\n", True),
        (b"sip/2.0 404 Not Found\n", True),
        (b"GET / HTTP/1.1\r\n", False),
        (b"NOTIFY * HTTP/1.1\r\n", False),
        (b"SIP/2.0 99 Too Short\r\n", False),
        (b"INVITE sip:b@x SIP/2.0", False),  # incomplete: no line end yet
    ],
)
def test_start_line(line: bytes, is_start: bool) -> None:
    assert (framing.START_LINE.match(line) is not None) is is_start


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Content-Length: 12", 12),
        (b"content-length:0", 0),
        (b"l : 7", 7),
        (b"Content-Length: bad", framing.INVALID),
        (b"Content-Type: text/plain", framing.MISSING),
    ],
)
def test_content_length(header: bytes, expected: int) -> None:
    msg = b"MESSAGE sip:b@x SIP/2.0\r\n" + header + b"\r\n\r\n"
    end, _ = framing.header_end(msg, 0, len(msg)) or (0, 0)
    assert framing.content_length(msg, 0, end) == expected


def test_mid_stream_binary_is_given_up_after_a_few_segments() -> None:
    w = Wire(src=("10.0.0.1", 40000), dst=("10.0.0.2", 9999))
    seq = 1
    for _ in range(8):
        chunk = b"G" + bytes(range(256)) * 4  # no start-line, no header block end
        assert w.send(chunk, seq) == []
        seq += len(chunk)
    assert w.tcp._streams[("10.0.0.1", 40000, "10.0.0.2", 9999)].buf == b""
    assert w.send(invite(), seq) == []  # ignored for good: nothing is buffered or emitted
    assert w.flush() == []
    assert w.summary.unsupported == {}


def test_keepalive_only_connection_on_a_sip_port() -> None:
    w = Wire()
    w.send(b"", 0, flags=SYN)
    assert w.send(b"\r\n\r\n", 1) == []
    assert w.send(b"\r\n", 1, back=True) == []
    assert w.send(b"\r\n\r\n", 5) == []
    assert w.flush() == []
    assert w.summary.keepalives == 3
    assert w.summary.unsupported == {}
    assert w.summary.malformed == {}


def test_body_without_length_arriving_in_many_segments() -> None:
    head = b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\n"
    body = b"".join(b"line %d\r\n" % i for i in range(200))
    stream = head + body + invite(2)
    w = Wire()
    out = []
    for a in range(0, len(stream), 37):  # cuts fall inside lines and inside the start-line
        out += w.send(stream[a : a + 37], 1 + a)
    assert datas(out) == [head + body, invite(2)]
    assert w.malformed() == {"TCP message without Content-Length": 1}


def test_keepalive_split_across_segments_counts_once() -> None:
    w = Wire()
    assert datas(w.send(invite(1) + b"\r\n", 1)) == [invite(1)]
    assert datas(w.send(b"\r\n" + invite(2), 1 + len(invite(1)) + 2)) == [invite(2)]
    assert w.summary.keepalives == 1
