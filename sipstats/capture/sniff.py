"""Decode stage: recognise a SIP start-line in raw bytes without parsing the message.

The recogniser decides which datagrams leave the decode stage; the SIP parser (``sip.py``)
decides later whether they are well formed. It must be cheap, since every UDP payload that
passes the first-byte test reaches it.
"""

from __future__ import annotations

import re

# RFC 3261 §7.1 Request-Line = Method SP Request-URI SP SIP-Version CRLF, where Method is a
# token (§25.1), so unknown extension methods count too. §7.2 Status-Line = SIP-Version SP
# Status-Code SP Reason-Phrase CRLF. The SIP-Version is case-insensitive (§7.1). The line end
# is optional so that a message cut by the snaplen right after its start-line still counts.
_START_LINE = re.compile(
    rb"[-!%*_+`'~.0-9A-Za-z]+ [^ \r\n]+ [Ss][Ii][Pp]/2\.0(?:\r?\n|$)"
    rb"|[Ss][Ii][Pp]/2\.0 [1-9][0-9][0-9](?:[ \r\n]|$)"
)

#: First bytes a start-line can begin with (token characters and the S of SIP/2.0). RTP and
#: RTCP start with version 2 (0x80-0xBF), so they fail this test without a regex call.
START_BYTES = frozenset(b"-!%*_+`'~.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def looks_like_sip(data: bytes) -> bool:
    """True when ``data`` begins with a SIP request line or status line.

    Leading CRLFs are skipped: RFC 3261 §7.5 tells receivers to ignore them before a
    start-line, and RFC 5626 §4.4.1 keep-alives can precede a message.
    """
    start = 0
    n = len(data)
    while start < n and data[start] in (13, 10):
        start += 1
    return _START_LINE.match(data, start) is not None


def is_keepalive(data: bytes) -> bool:
    """True for a keep-alive: a payload of nothing but CRLFs (RFC 5626 §4.4.1).

    Blank runs of spaces or tabs count too: several SIP phones send those instead.
    """
    return bool(data) and not data.strip(b"\r\n \t")
