"""Capture stage: where SIP messages begin and end inside a reassembled TCP byte stream.

RFC 3261 §18.3: on a stream transport a message is a start-line, header fields up to the
empty line, then exactly Content-Length bytes of body. Bare-LF line ends are accepted as
well (some stacks and HEP generators send them). Everything here is pure: byte buffers in,
offsets out, so the TCP state machine in :mod:`sipstats.capture.tcp` stays about TCP.
"""

from __future__ import annotations

import re
from typing import Final

_TOKEN = rb"[A-Za-z0-9.!%*_+`'~-]"
_SIP_VERSION = rb"[Ss][Ii][Pp]/2\.0"

#: A request line (RFC 3261 §7.1: Method SP Request-URI SP SIP-Version) or a status line
#: (§7.2: SIP-Version SP Status-Code SP Reason-Phrase). The SIP version is case-insensitive.
_START = rb"(?:[A-Za-z]" + _TOKEN + rb"* [^ \r\n]+ " + _SIP_VERSION + rb"|" + _SIP_VERSION
_START += rb" [1-9][0-9][0-9](?:[ \t][^\r\n]*)?)\r?\n"
START_LINE: Final = re.compile(_START)
"""Match a complete start-line (with its line end) at a given offset."""
_START_AT_LINE: Final = re.compile(rb"(?m)^" + _START)
START_PREFIX: Final = re.compile(
    rb"(?:[A-Za-z]" + _TOKEN + rb"*(?: [^ \r\n]*)*|[Ss][Ii][Pp]/[^\r\n]*)\Z"
)
"""The beginning of a start-line cut before its line end (a stream that closed inside it)."""

_CONTENT_LENGTH: Final = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)")
_CALL_ID: Final = re.compile(rb"(?im)^(?:call-id|i)[ \t]*:")
_CSEQ: Final = re.compile(rb"(?im)^cseq[ \t]*:")

#: A start-line longer than this is not waited for: the bytes are not SIP.
MAX_START_LINE: Final = 8192

#: Largest value of a SIP number (CSeq, RFC 3261 §8.1.1.5; Content-Length, Expires: 2**32 - 1).
MAX_NUMBER: Final = 2**32 - 1

MISSING: Final = -1
"""``content_length`` result: no Content-Length header field."""
INVALID: Final = -2
"""``content_length`` result: a Content-Length whose value is not a number."""


#: Methods of the IANA SIP Methods registry (RFC 3261 §7.1 and its extensions).
METHODS: Final = frozenset(
    b"ACK BYE CANCEL INFO INVITE MESSAGE NOTIFY OPTIONS PRACK PUBLISH REFER REGISTER "
    b"SUBSCRIBE UPDATE".split()
)


def find_start_line(buf: bytes | bytearray, pos: int, end: int | None = None) -> int:
    """Offset of the first complete start-line that begins a line at or after ``pos``, or -1.

    A line begins at offset 0 or after LF; ``pos`` itself counts only if it is such a place.
    Used to resynchronise a stream picked up mid-message or after lost bytes: the next
    request or status line is where the next message starts (bytes before it are counted by
    the caller).
    """
    m = _START_AT_LINE.search(buf, pos, len(buf) if end is None else end)
    return -1 if m is None else m.start()


def known_start(buf: bytes | bytearray, pos: int) -> bool:
    """True when the start-line at ``pos`` is a status line or uses a registered method.

    Where a stream was picked up at an arbitrary byte, ``NVITE sip:b@x SIP/2.0`` is the tail
    of an INVITE's request line, not an extension method: only there is this stricter test
    applied.
    """
    space = buf.find(b" ", pos, pos + 20)
    word = bytes(buf[pos:space]) if space > 0 else b""
    return word in METHODS or word.upper() == b"SIP/2.0"


def header_end(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int] | None:
    """(end of the header block, start of the body) for the message at ``pos``, or None.

    The header block ends at the first empty line: CRLF CRLF, or LF LF for bare-LF senders.
    A CRLF message cannot hold LF LF before its CRLF CRLF, so the LF LF search stops there.
    """
    crlf = buf.find(b"\r\n\r\n", pos, end)
    lf = buf.find(b"\n\n", pos, end if crlf < 0 else crlf)
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return None


def content_length(buf: bytes | bytearray, pos: int, hdr_end: int) -> int:
    """Content-Length (or compact ``l``, RFC 3261 §7.3.3) of the header block ``buf[pos:hdr_end]``.

    Returns the body size, :data:`MISSING` or :data:`INVALID`. The first occurrence wins.
    """
    m = _CONTENT_LENGTH.search(buf, pos, hdr_end)
    if m is None:
        return MISSING
    value = m.group(1).strip()
    return decimal(value.decode("ascii")) if value.isdigit() else INVALID


def decimal(digits: str) -> int:
    """The value of a run of ASCII digits, saturated at ``MAX_NUMBER + 1``.

    Packet text can carry thousands of digits and ``int()`` refuses more than 4,300 (CPython's
    guard against quadratic conversion), so more than ten significant digits is just "too
    large", as in the C parser (``_sipscan.c`` ``digits``).
    """
    significant = digits.lstrip("0")
    if len(significant) > 10:
        return MAX_NUMBER + 1
    return min(int(significant or "0"), MAX_NUMBER + 1)


def looks_like_sip(buf: bytes | bytearray, pos: int, hdr_end: int) -> bool:
    """True when the header block carries Call-ID and CSeq.

    Every SIP request (RFC 3261 §8.1.1) and every response (§8.2.6.2) carries both; an HTTP
    response that merely starts with ``SIP/2.0 200 ok`` (an IDS evasion trick) does not.
    """
    return bool(_CALL_ID.search(buf, pos, hdr_end) and _CSEQ.search(buf, pos, hdr_end))


def keepalive_count(run_length: int) -> int:
    """Keep-alives in a run of CR/LF bytes: an RFC 5626 §3.5.1 ping is CRLFCRLF, a pong CRLF."""
    return (run_length + 3) // 4
