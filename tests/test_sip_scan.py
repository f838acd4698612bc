"""The C parser (``sipstats._sipscan``) answers exactly what the Python parser answers, or None.

``_sipscan.parse`` handles the common shape of a message and declines everything else, which
the Python code then parses. These tests feed it and the pure-Python parser the same bytes
(every sample, corpus and peer capture, factory-built messages, and mutated ones) and compare
all fields with their types; and they check that it does not decline the common shapes, or it
would gain nothing. They fail, not skip, when the extension is not built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats.capture.reader import iter_payloads
from sipstats.capture.summary import InputSummary
from sipstats.errors import CaptureError, SipParseError
from sipstats.sip import SipMessage, _parse_common, _parse_general
from tests import sipfactory
from tests.conftest import CORPUS, PEERS, ROOT, SAMPLES

try:
    from sipstats import _sipscan
except ImportError:  # the tests below fail with what to do
    _sipscan = None  # type: ignore[assignment]

#: The C path must handle at least this share of every sample capture's messages.
MIN_HANDLED = 0.95


def _scan() -> ModuleType:
    """The extension, ready to build SipMessage (sip.py skips that when turned off)."""
    if _sipscan is None:
        pytest.fail(
            "sipstats._sipscan is not built: run `pip install -e .` "
            "(or `python setup.py build_ext --inplace`) with a C compiler present"
        )
    _sipscan.set_message_type(SipMessage)
    return _sipscan


def _pure(data: bytes, delimited: bool) -> SipMessage | None:
    """parse_message(data, delimited=delimited) without the C path; None where it raises."""
    try:
        return _parse_common(data, delimited) or _parse_general(data, False, delimited)
    except SipParseError:
        return None


def _check(data: bytes, delimited: bool) -> bool:
    """Assert that the C answer is None or the Python one, field by field; True: handled."""
    found = _scan().parse(data, delimited)
    if found is None:
        return False
    expected = _pure(data, delimited)
    assert expected is not None, f"C accepted what Python rejects: {data[:200]!r}"
    assert type(found) is SipMessage
    for name in SipMessage._fields:
        got, want = getattr(found, name), getattr(expected, name)
        assert (type(got), got) == (type(want), want), f"{name} of {data[:300]!r}"
    return True


def _payloads(path: Path) -> list[bytes]:
    try:
        return [payload.data for payload in iter_payloads(path, InputSummary(file=str(path)))]
    except CaptureError:  # not a capture at all (the corpus has such files on purpose)
        return []


def _captures(root: Path) -> list[str]:
    found = sorted(
        str(path.relative_to(root))
        for pattern in ("*.pcap", "*.pcapng")
        for path in root.rglob(pattern)
    )
    return found or ["absent"]  # the directory fixture then skips


@pytest.mark.parametrize("name", sorted(path.name for path in SAMPLES.glob("*.pcap")))
def test_samples_equal_and_mostly_handled(name: str) -> None:
    payloads = _payloads(SAMPLES / name)
    assert payloads
    handled = sum([_check(data, False) for data in payloads])
    for data in payloads:
        _check(data, True)
    accepted = sum(_pure(data, False) is not None for data in payloads)
    assert handled >= MIN_HANDLED * accepted, f"C handled {handled} of {accepted} messages"


@pytest.mark.corpus
@pytest.mark.parametrize("name", _captures(CORPUS))
def test_corpus_captures_equal(corpus_dir: Path, name: str) -> None:
    for data in _payloads(corpus_dir / name):
        _check(data, False)
        _check(data, True)


@pytest.mark.peers
@pytest.mark.parametrize("name", _captures(PEERS))
def test_peer_captures_equal(peers_dir: Path, name: str) -> None:
    for data in _payloads(peers_dir / name):
        _check(data, False)
        _check(data, True)


def _factory_messages() -> list[bytes]:
    dialog = {"call_id": "c1@10.0.0.1", "cseq": 1, "branch": "z9hG4bK-1"}
    answer = {**dialog, "cseq_method": "INVITE"}
    sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"
    return [
        sipfactory.sip_request(
            "INVITE", body=sdp, headers=[("Content-Type", "application/sdp")], **dialog
        ),
        sipfactory.sip_response(100, "Trying", **answer),
        sipfactory.sip_response(200, "OK", to_tag="tt", headers=[("Server", "PBX/1.0")], **answer),
        sipfactory.sip_response(
            503, "Service Unavailable", headers=[("Retry-After", "120;duration=60")], **answer
        ),
        sipfactory.sip_response(
            486, "Busy Here", headers=[("Retry-After", "30 (lunch)")], **answer
        ),
        sipfactory.sip_request(
            "REGISTER",
            "sip:registrar.example.com",
            headers=[("Expires", "3600"), ("Authorization", 'Digest username="a"')],
            **dialog,
        ),
        sipfactory.sip_response(
            423, "Interval Too Brief", headers=[("Min-Expires", "60")], **answer
        ),
        sipfactory.sip_request(
            "INVITE",
            headers=[("Proxy-Authorization", "Digest x"), ("User-Agent", "SIPp/3.7")],
            via_host="[2001:db8::1]:5060",
            **dialog,
        ),
        sipfactory.sip_request("BYE", from_tag="F", to_tag="T", caller="sips:a@b", **dialog),
    ]


def test_factory_messages_are_handled_and_equal() -> None:
    for data in _factory_messages():
        assert _check(data, False), data
        assert _check(data + b"tail", False), data  # body beyond Content-Length


def _message(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


BASE = (
    "INVITE sip:bob@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a",
    "From: <sip:alice@example.com>;tag=f1",
    "To: <sip:bob@example.com>",
    "Call-ID: call-1@10.0.0.1",
    "CSeq: 1 INVITE",
)


@pytest.mark.parametrize(
    ("lines", "field", "value"),
    [
        (
            ("v: SIP/2.0/UDP h;rport;BRANCH = b2 ;x", "V: SIP/2.0/UDP g, SIP/2.0/UDP k"),
            "branch",
            "b2",
        ),
        (
            ("v: SIP/2.0/UDP h;rport;BRANCH = b2 ;x", "V: SIP/2.0/UDP g, SIP/2.0/UDP k"),
            "via_count",
            4,
        ),
        (('f: "A <;> \\"B\\"" <sip:a@x;user=phone>;x=1;TAG=t9',), "from_tag", "t9"),
        (('f: "A <;> \\"B\\"" <sip:a@x;user=phone>;x=1;TAG=t9',), "from_uri", "sip:a@x;user=phone"),
        (("T : Bob sip:b@y;tag=t2",), "to_uri", "Bob sip:b@y"),
        (("Expires: 99999999999",), "expires", 2**32 - 1),
        (("Min-Expires:\tx",), "min_expires", None),
        (("Retry-After:  6 (in a meeting);duration=3600 ",), "retry_after_duration", 3600),
        (("l: 0", "c: application/sdp"), "content_type", "application/sdp"),
        (("SERVER: PBX 1",), "server", "PBX 1"),
        (("t: <sip:b@y>;tag ;tag=2",), "to_tag", ""),  # the first tag counts, a flag here
        (('t: "B \\" <sip:b@y>;tag=2',), "to_uri", ""),  # escaped quote: no closing one
    ],
)
def test_common_variants_are_handled(lines: tuple[str, ...], field: str, value: object) -> None:
    data = _message(*BASE[:1], *lines, *BASE[1:])
    assert _check(data, False)
    assert getattr(_scan().parse(data, False), field) == value


@pytest.mark.parametrize(
    "data",
    [
        _message(*BASE).replace(b"\r\nTo", b"\nTo"),  # bare LF
        _message(*BASE).replace(b"\r\nTo: ", b"\r\nTo:\r\n "),  # folding
        _message(*BASE).replace(b"alice", b"al\xc3\xafce"),  # non-ASCII
        _message(*BASE).replace(b"alice", b"al\x0bce"),  # a control str.strip() strips
        _message(*BASE).replace(b";branch", b';x="a,b";branch'),  # quoted Via parameter
        _message(*BASE, "Content-Length: 5", body="abc"),  # lost tail
        _message(*BASE[:-1]),  # no CSeq
        _message(*BASE[:-1], "CSeq: 4294967296 INVITE"),
        _message(*BASE).rstrip(b"\r\n"),  # no empty line
        b"\r\n" + _message(*BASE),  # keep-alive CRLF first
        b"",
    ],
)
def test_uncommon_shapes_are_declined(data: bytes) -> None:
    assert _scan().parse(data, False) is None


@pytest.mark.parametrize("line", [0, 2])
def test_every_byte_anywhere_in_a_line_equal(line: int) -> None:
    # The parser looks at the bytes of a line eight at a time and one by one near anything
    # unprintable: every byte value at every offset of the start line and of a header line
    # (so at each place in a word, HT and CR included) answers as Python does.
    data, text = _message(*BASE), BASE[line].encode()
    for at in range(len(text) + 1):
        for value in range(256):
            _check(data.replace(text, text[:at] + bytes([value]) + text[at:], 1), False)


def test_garbage_arguments_are_declined() -> None:
    scan = _scan()
    assert scan.parse(bytearray(_message(*BASE)), False) is None
    assert scan.parse("text", True) is None
    with pytest.raises(TypeError):
        scan.parse(b"")


def test_environment_variable_turns_the_c_path_off() -> None:
    code = "import sipstats.sip as s; print(s.c_scanner() is None)"
    env = {**os.environ, "SIPSTATS_PURE_PYTHON": "1"}
    for environment, expected in ((env, "True"), ({**env, "SIPSTATS_PURE_PYTHON": ""}, "False")):
        result = subprocess.run(
            [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True
        )
        assert result.stdout.strip() == expected, result.stderr


# Mutated messages: realistic headers with every spelling, blank, quote, order and byte oddity
# the rules care about, so that the C path is tried on the edges of its scope.
SPELLINGS = {
    "via": ["Via", "v", "VIA", "Via ", "via\t"],
    "from": ["From", "f", "FROM", "F"],
    "to": ["To", "t", "tO", "To  "],
    "call-id": ["Call-ID", "i", "call-id", "CALL-ID"],
    "cseq": ["CSeq", "cseq", "CSEQ"],
    "content-length": ["Content-Length", "l", "content-length"],
    "content-type": ["Content-Type", "c"],
    "user-agent": ["User-Agent", "user-agent"],
    "server": ["Server"],
    "retry-after": ["Retry-After", "retry-after"],
    "expires": ["Expires"],
    "min-expires": ["Min-Expires"],
    "authorization": ["Authorization"],
    "proxy-authorization": ["Proxy-Authorization"],
    "reason": ["Reason", "reason", "REASON "],
    "x-cid": ["X-CID", "x-cid", "X-Cid "],
    "x-call-id": ["X-Call-ID", "x-call-id"],
    "p-charging-vector": ["P-Charging-Vector", "p-charging-vector"],
    "other": ["Contact", "Max-Forwards", "X-Via", "Call ID", "k", "Tov"],
}
VALUES = {
    "via": [
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1-1-0",
        "SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKa",
        "SIP/2.0/TCP h;BRANCH = z9 ;x",
        "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2",
        " , SIP/2.0/UDP c;branch=3",
        'SIP/2.0/UDP a;x="q,;";branch=4',
        "SIP/2.0/UDP h",
        "SIP/2.0/UDP h;branch",
        "SIP/2.0/UDP h;branchx=1;branch=2",
        "",
    ],
    "from": [
        '"Alice" <sip:alice@x>;tag=1',
        '"A <;> \\"B\\"" <sip:a@x>;tag=2',
        "Alice <sip:a@x;user=phone>;x=1;TAG=3",
        "<sip:a@x>;tag = 4 ;y",
        "sip:a@x;tag=5",
        "sip:a@x",
        "<sip:a@x",
        '"unterminated <sip:a@x>;tag=6',
        '<sip:a@x>;tag="q"',
        "<sip:a@x>;tag",
        "<sip:a@x>;tag;TAG=8",
        '"A \\" <sip:x>;tag=10',
        '"A\\',
        "Bob sip:b@y;Tag=7",
        "",
    ],
    "cseq": [
        "1 INVITE",
        " 42  BYE ",
        "4294967295 ACK",
        "4294967296 ACK",
        "x INVITE",
        "1",
        "1 INV ITE",
    ],
    "call-id": ["abc@10.0.0.1", " a b ", ""],
    "content-length": ["0", " 4 ", "00005", "x", "99999999999", "", "-1", "6"],
    "content-type": ["application/sdp", " text/plain ", ""],
    "user-agent": ["SIPp/3.7", "  PBX  1  ", ""],
    "retry-after": [
        "60",
        "120 (busy)",
        "5;duration=30",
        "6 (in a meeting);duration=3600",
        " 7 ; Duration = 9 ",
        "8;duration=x",
        "abc",
        "",
        "99999999999",
        '9;duration="1"',
        "10 (unclosed",
        "11 ) ;duration=2",
    ],
    "expires": ["3600", " 60 ", "x", "99999999999", ""],
    "authorization": ['Digest username="a", realm="b"', ""],
    "other": ["<sip:c@10.0.0.1>", "70", "x:y"],
    "reason": ['Q.850;cause=16;text="Normal call clearing"', "SIP;cause=503, Q.850;cause=34", ""],
    "x-cid": ["a84b4c76e66710", " 42 ", ""],
    "p-charging-vector": ['icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=";orig-ioi=home1.net', ""],
}
VALUES["x-call-id"] = VALUES["x-cid"]
VALUES["to"] = VALUES["from"]
for _alias in ("server",):
    VALUES[_alias] = VALUES["user-agent"]
VALUES["min-expires"] = VALUES["expires"]
VALUES["proxy-authorization"] = VALUES["authorization"]
MANDATORY = ["via", "from", "to", "call-id", "cseq"]
OPTIONAL = [name for name in SPELLINGS if name not in MANDATORY]
STARTS = [
    "INVITE sip:bob@example.com SIP/2.0",
    "ACK sip:bob@10.0.0.2:5060;transport=udp SIP/2.0",
    "REGISTER sips:reg.example.com sip/2.0",
    "SIP/2.0 200 OK",
    "SIP/2.0 100 Trying",
    "SIP/2.0 486  Busy Here \t",
    "SIP/2.0 180",
    "OPTIONS  sip:x SIP/2.0",
    "INVITE sip: SIP/2.0",
    "INVITE 1sip:x SIP/2.0",
    "SIP/2.0 700 Bad",
    "SIP/2.0 2000",
    "FOO bar SIP/2.0",
]
SEPARATORS = [": ", ": ", ":", " : ", ":\t", "\t:  "]
PADDING = ["", "", " ", "\t", "  "]
ODD_BYTES = [
    b"\xff",
    b"\xc3\xa9",
    b"\xc2\x85",
    b"\xc2\xa0",
    b"\x00",
    b"\x0b",
    b"\x7f",
    b"\r",
    b"\n",
]

SDP_BODY = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
#: SDP lines with the shapes the summary's rules care about (RFC 4566 §5).
SDP_LINES = [
    "v=0",
    "o=- 1 1 IN IP4 10.0.0.1",
    "c=IN IP4 10.0.0.1",
    "c=IN IP6 2001:db8::1",
    "c=IN IP4 224.2.1.1/127/3",
    "c=IN IP4",
    "c=",
    "m=audio 4000 RTP/AVP 0 8 101",
    "m=audio 4000/2 RTP/AVP 18 3 4 9 13 96 97 98 99 100 101 102 103 104 105 106 107",
    "m=video 0 RTP/AVP 96",
    "m=audio 99999 RTP/AVP 0",
    "m=audio 0x1 RTP/AVP",
    "m=audio",
    "m=",
    "a=rtpmap:101 telephone-event/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:96 H264/90000",
    "a=rtpmap:97",
    "a=rtpmap:97 /8000",
    "a=rtpmap: 98\tAMR/8000",
    "a=sendrecv",
    "A=rtpmap:99 x/1",
    " m=audio 5 RTP/AVP 0",
    "",
]


@st.composite
def _sdp_message(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(SDP_LINES), max_size=14))
    body = bytearray(draw(st.sampled_from(["\r\n", "\n"])).join(lines).encode())
    if draw(st.booleans()):
        body += b"\r\n"
    if draw(st.integers(0, 4)) == 0:
        body[draw(st.integers(0, len(body))) : 0] = draw(st.sampled_from(ODD_BYTES))
    content_type = draw(
        st.sampled_from(["application/sdp", "Application/SDP ; x=1", "application/sdpx"])
    )
    head = _message(*BASE, f"Content-Type: {content_type}", f"Content-Length: {len(body)}")
    return head + bytes(body)


@settings(max_examples=2000, deadline=None)
@given(_sdp_message())
def test_sdp_bodies_equal(data: bytes) -> None:
    _check(data, False)


def test_sdp_summary_of_a_common_offer_is_handled() -> None:
    body = SDP_BODY + b"a=rtpmap:0 PCMU/8000\r\n"
    data = _message(*BASE, "c: application/sdp", f"l: {len(body)}") + body
    assert _check(data, False)
    found = _scan().parse(data, False)
    assert (found.sdp_address, found.sdp_port, found.sdp_codecs) == (
        "10.0.0.1",
        4000,
        "PCMU,PCMA,telephone-event",
    )


def _pick(draw: st.DrawFn, values: list[str]) -> str:
    """Mostly one of the first (usual, valid) values, else any: most messages stay usable."""
    return draw(st.sampled_from(values[:3] if draw(st.integers(0, 3)) else values))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    keys = [key for key in MANDATORY if draw(st.integers(0, 9))] + draw(
        st.lists(st.sampled_from([*OPTIONAL, "via"]), max_size=6)
    )
    lines = [_pick(draw, STARTS)]
    for key in draw(st.permutations(keys)):
        name = draw(st.sampled_from(SPELLINGS[key]))
        if draw(st.integers(0, 4)) == 0:
            name = name.swapcase()
        value = _pick(draw, VALUES[key])
        pad = st.sampled_from(PADDING)
        lines.append(name + draw(st.sampled_from(SEPARATORS)) + draw(pad) + value + draw(pad))
    data = bytearray(("\r\n".join(lines) + "\r\n\r\n").encode())
    data += draw(st.sampled_from([b"", b"v=0\r\n", b"body", SDP_BODY]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        mutation = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if mutation == 0:  # an odd byte anywhere
            data[at:at] = draw(st.sampled_from(ODD_BYTES))
        elif mutation == 1:  # a line ending changed: bare LF, folding, stray CR
            crlf = data.find(b"\r\n", at)
            if crlf >= 0:
                data[crlf : crlf + 2] = draw(
                    st.sampled_from([b"\n", b"\r\n ", b"\r\n\t", b"\r\r\n"])
                )
        elif mutation == 2:  # cut anywhere
            del data[at:]
        else:  # a blank where a name starts
            line = data.find(b"\n", at)
            if line >= 0:
                data[line + 1 : line + 1] = b" "
    return bytes(data)


@settings(max_examples=3000, deadline=None)
@given(_mutated(), st.booleans())
def test_mutated_messages_equal(data: bytes, delimited: bool) -> None:
    _check(data, delimited)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_never_differ(data: bytes, delimited: bool) -> None:
    _check(data, delimited)
