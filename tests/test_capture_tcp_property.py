"""Properties of TCP reassembly: how a stream is cut into segments never changes its messages,
and no byte sequence makes the reassembler raise."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats.capture.summary import InputSummary
from sipstats.capture.tcp import FIN, RST, SYN, TcpReassembler
from tests.sipfactory import sip_request, sip_response

DETERMINISTIC = settings(max_examples=150, deadline=None, derandomize=True)

MESSAGES = [
    sip_request(
        "INVITE", call_id="a", cseq=1, branch="z9hG4bK1", body=b"v=0\r\no=- 1 1 IN IP4 x\r\n"
    ),
    sip_response(100, "Trying", call_id="a", cseq=1, cseq_method="INVITE", branch="z9hG4bK1"),
    sip_request("BYE", call_id="a", cseq=2, branch="z9hG4bK2"),
    sip_request("MESSAGE", call_id="b", cseq=1, branch="z9hG4bK3", body=b"\r\n\r\nINVITE x\r\n"),
]


@st.composite
def cut_stream(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[tuple[int, int]], int]:
    """Messages (with keep-alives between some), their stream, segments (start, end), ISN."""
    picks = draw(st.lists(st.sampled_from(range(len(MESSAGES))), min_size=1, max_size=6))
    messages = [MESSAGES[i] for i in picks]
    stream = b""
    for msg in messages:
        stream += draw(st.sampled_from([b"", b"\r\n\r\n", b"\r\n"])) + msg
    cuts = draw(st.lists(st.integers(1, len(stream) - 1), max_size=25, unique=True))
    bounds = [0, *sorted(cuts), len(stream)]
    pieces = list(itertools.pairwise(bounds))
    # Retransmissions: copies of arbitrary ranges, overlapping the original pieces.
    extra = draw(
        st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(1, 400)), max_size=8)
    )
    pieces += [(a, min(len(stream), a + n)) for a, n in extra]
    order = draw(st.permutations(pieces))
    isn = draw(st.sampled_from([0, 1000, 0xFFFFFFFF - 200, 0xFFFFFFFF]))
    return messages, stream, order, isn


@DETERMINISTIC
@given(cut_stream())
def test_any_segmentation_order_and_duplication_yields_the_same_messages(
    case: tuple[list[bytes], bytes, list[tuple[int, int]], int],
) -> None:
    messages, stream, order, isn = case
    summary = InputSummary("p.pcap")
    tcp = TcpReassembler("p.pcap", summary, None)
    out = tcp.feed(0, 1, "10.0.0.1", 40000, "10.0.0.2", 5060, isn, SYN, b"", False)
    for frame, (a, b) in enumerate(order, start=2):
        seq = (isn + 1 + a) & 0xFFFFFFFF
        out += tcp.feed(
            frame, frame, "10.0.0.1", 40000, "10.0.0.2", 5060, seq, 0x18, stream[a:b], False
        )
    out += tcp.flush()
    assert [p.data for p in out] == messages
    assert summary.malformed == {}
    assert all(1 <= p.segments <= len(order) for p in out)


segments = st.lists(
    st.tuples(
        st.sampled_from([5060, 5061, 8080, 40000]),
        st.booleans(),
        st.integers(0, 0xFFFFFFFF),
        st.sampled_from([0x18, SYN, FIN | 0x10, RST, 0x10]),
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from([*MESSAGES, b"\x16\x03\x01\x00\x05", b"GET / HTTP/1.1\r\n\r\n"]),
            st.builds(lambda m, n: m[:n], st.sampled_from(MESSAGES), st.integers(0, 200)),
        ),
        st.booleans(),
    ),
    max_size=40,
)


@DETERMINISTIC
@given(segments)
def test_arbitrary_segments_never_raise(
    segs: list[tuple[int, bool, int, int, bytes, bool]],
) -> None:
    summary = InputSummary("p.pcap")
    tcp = TcpReassembler("p.pcap", summary, None)
    out = []
    for frame, (port, back, seq, flags, data, cut) in enumerate(segs, start=1):
        ends = (("10.0.0.1", 33333), ("10.0.0.2", port))
        (src, sport), (dst, dport) = ends[::-1] if back else ends
        out += tcp.feed(frame, frame, src, sport, dst, dport, seq, flags, data, cut)
    out += tcp.flush()
    assert all(p.data for p in out)
    assert tcp.flush() == []


@DETERMINISTIC
@given(cut_stream(), st.integers(0, 10_000))
def test_a_stream_picked_up_anywhere_yields_the_messages_that_start_after(
    case: tuple[list[bytes], bytes, list[tuple[int, int]], int], start: int
) -> None:
    messages, stream, _, isn = case
    start %= len(stream)
    offsets, at = [], 0
    for msg in messages:
        at = stream.index(msg, at)
        offsets.append(at)
        at += len(msg)
    expected = [m for m, o in zip(messages, offsets, strict=True) if o >= start]
    summary = InputSummary("p.pcap")
    tcp = TcpReassembler("p.pcap", summary, None)
    out = []
    for frame, a in enumerate(range(start, len(stream), 97), start=1):
        seq = (isn + a) & 0xFFFFFFFF
        data = stream[a : a + 97]
        out += tcp.feed(frame, frame, "10.0.0.1", 40000, "10.0.0.2", 5060, seq, 0x18, data, False)
    out += tcp.flush()
    assert [p.data for p in out] == expected
    skipped = summary.malformed.get("TCP bytes outside a SIP message")
    first = min((o for o in offsets if o >= start), default=len(stream))
    assert (skipped is not None) is (stream[start:first].strip(b"\r\n") != b"")
    assert summary.unsupported == {}
