"""Property tests: arbitrary bytes never escape as anything but the project's own errors."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipstats.errors import SipParseError
from sipstats.messages import read_capture
from sipstats.schema import MALFORMED_REASONS, MESSAGES
from sipstats.sip import parse_message
from tests.sipfactory import sip_request, sip_response

SIP_LIKE = [
    sip_request("INVITE", call_id="c", cseq=1, branch="z9hG4bK1", body=b"v=0\r\n"),
    sip_response(486, "Busy Here", call_id="c", cseq=1, cseq_method="INVITE", branch="z9hG4bK1"),
]


def _mutated() -> st.SearchStrategy[bytes]:
    """Real messages cut, spliced with random bytes, or with their line ends changed."""
    base = st.sampled_from(SIP_LIKE)
    cut = st.tuples(base, st.integers(0, 600)).map(lambda t: t[0][: t[1]])
    spliced = st.tuples(base, st.integers(0, 600), st.binary(max_size=40)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
    )
    bare_lf = base.map(lambda b: b.replace(b"\r\n", b"\n"))
    return st.one_of(cut, spliced, bare_lf)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=800), _mutated()), st.booleans(), st.booleans())
def test_parser_raises_only_its_own_error(data: bytes, truncated: bool, delimited: bool) -> None:
    try:
        message = parse_message(data, truncated=truncated, delimited=delimited)
    except SipParseError as error:
        reason = error.reason
    else:
        reason = ""
    if reason:
        assert reason in MALFORMED_REASONS
        return
    assert message.is_request or 100 <= message.status <= 699
    assert 0 <= message.body_length <= message.size <= len(data)


def _pcap(records: list[tuple[int, bytes]]) -> bytes:
    """A classic pcap (Ethernet) with records whose lengths may lie."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for claimed, data in records:
        out += struct.pack("<IIII", 1_700_000_000, 0, claimed, claimed) + data
    return out


def _ethernet_udp(payload: bytes) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 1, 0, 64, 17, 0, bytes(4), bytes(4)
    )
    udp = struct.pack("!HHHH", 5060, 5060, 8 + len(payload), 0)
    return bytes(12) + b"\x08\x00" + ip + udp + payload


_records = st.lists(
    st.one_of(
        st.binary(max_size=120).map(lambda b: (len(b), b)),
        st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=60)),
        st.one_of(st.binary(max_size=200), _mutated()).map(
            lambda p: (42 + len(p), _ethernet_udp(p))
        ),
    ),
    max_size=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.binary(max_size=300), _records.map(_pcap)))
def test_capture_reader_never_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(data)
    capture = read_capture(path)
    assert list(capture.messages.columns) == list(MESSAGES)
    [summary] = capture.inputs
    assert summary.sip_messages == len(capture.messages)
    assert all("\n" not in error for error in summary.errors)
