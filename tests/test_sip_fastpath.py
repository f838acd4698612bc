"""The parser's fast path gives exactly what the general path gives, message or error.

``parse_message`` tries a fast path for the common shape of a message and hands anything
else to the general path; these tests feed both the same bytes, built from header lines with
every spelling, repetition, blank and byte oddity the rules care about.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats.errors import SipParseError
from sipstats.sip import _parse_general, parse_message

NAMES = [
    "Via",
    "v",
    "VIA",
    "Via ",
    "From",
    "f",
    "To",
    "t",
    "to",
    "Call-ID",
    "call-id",
    "i",
    "CSeq",
    "cseq",
    "Content-Length",
    "l",
    "Content-Type",
    "c",
    "User-Agent",
    "Server",
    "Retry-After",
    "Expires",
    "Min-Expires",
    "Authorization",
    "Proxy-Authorization",
    "Contact",
    "X-Other",
    " Via",
    "\tTo",
    "\u212aey",
    "Vi\u00e1",
    "",
]
VALUES = [
    "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
    "SIP/2.0/UDP a;branch=z9hG4bK2, SIP/2.0/UDP b;branch=x",
    'SIP/2.0/UDP a;x="q,;"',
    "SIP/2.0/UDP h;rport;Branch=z9hG4bKx",
    "SIP/2.0/UDP h;branch= b ;x",
    "SIP/2.0/UDP h;branch=",
    "SIP/2.0/UDP h",
    '"Al ice" <sip:a@x>;tag=1',
    "<sip:b@y>",
    "sip:c@z;tag=9",
    "call-1@host",
    "1 INVITE",
    "2 BYE ",
    "99999999999 INVITE",
    "x INVITE",
    "0",
    "5",
    "500",
    " 12 ",
    "abc",
    "60;duration=30",
    "120 (busy)",
    "application/sdp",
    "caf\u00e9 \u00a0",
    "",
    "a:b",
]
START_LINES = [
    "INVITE sip:b@y SIP/2.0",
    "SIP/2.0 486 Busy Here",
    "SIP/2.0 200",
    "sip/2.0 180 Ringing ",
    "HELLO world",
    "",
]
EOLS = ["\r\n"] * 6 + ["\n", "\r\n ", "\r\n\t", "\r\r\n"]
REQUIRED = [
    "Via: SIP/2.0/UDP h;branch=z9hG4bKr",
    "From: <sip:a@x>;tag=f",
    "To: <sip:b@y>",
    "Call-ID: r@h",
    "CSeq: 7 INVITE",
]


def _line() -> st.SearchStrategy[str]:
    header = st.tuples(
        st.sampled_from(NAMES), st.sampled_from([":", " :", ": ", ""]), st.sampled_from(VALUES)
    )
    odd = st.sampled_from(["", " ", "garbage"])
    return st.one_of(header.map("".join), header.map("".join), header.map("".join), odd)


def _message() -> st.SearchStrategy[bytes]:
    lines = st.lists(_line(), max_size=8)
    required = st.one_of(
        st.permutations(REQUIRED), st.lists(st.sampled_from(REQUIRED), max_size=5, unique=True)
    )
    return st.builds(
        lambda start, extra, mandatory, eol, body, cut, junk: (
            (eol.join([start, *mandatory, *extra]) + "\r\n\r\n" + body).encode()[
                : len(start) + 400 + cut
            ]
            + junk
        ),
        st.sampled_from(START_LINES),
        lines,
        required,
        st.sampled_from(EOLS),
        st.sampled_from(["", "v=0\r\n", "x" * 12]),
        st.sampled_from([400, 400, 0, 3, 30, 90]),
        st.sampled_from([b"", b"\xff", b"\xe2\x82"]),
    )


def _outcome(parse: object) -> object:
    try:
        return parse()  # type: ignore[operator]
    except SipParseError as error:
        return ("error", error.reason, error.detail)


@settings(max_examples=1500, deadline=None)
@given(_message(), st.booleans(), st.booleans())
def test_fast_path_equals_general_path(data: bytes, truncated: bool, delimited: bool) -> None:
    fast = _outcome(lambda: parse_message(data, truncated=truncated, delimited=delimited))
    general = _outcome(lambda: _parse_general(data, truncated, delimited))
    assert fast == general


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REQUIRED), st.binary(max_size=30), st.booleans())
def test_odd_bytes_in_values_decode_alike(line: str, junk: bytes, delimited: bool) -> None:
    """Invalid UTF-8 next to the separators decodes the same, header by header."""
    head = "\r\n".join(["SIP/2.0 200 OK", *REQUIRED]).encode()
    data = head.replace(line.encode(), line.encode() + junk) + b"\r\nContent-Length: 0\r\n\r\n"
    assert _outcome(lambda: parse_message(data, delimited=delimited)) == _outcome(
        lambda: _parse_general(data, False, delimited)
    )


def test_repeated_parsing_uses_the_same_values() -> None:
    """Cached derivations (URI, tag, branch, CSeq) come back equal on the second message."""
    data = "\r\n".join(["SIP/2.0 200 OK", *REQUIRED, "Content-Length: 0", "", ""]).encode()
    first, second = parse_message(data), parse_message(data)
    assert first == second == _parse_general(data, False, False)
    assert (first.from_tag, first.branch, first.cseq) == ("f", "z9hG4bKr", 7)
