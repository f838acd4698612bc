"""Capture stage: the WebSocket pieces of SIP over WebSocket (RFC 7118) inside a TCP stream.

RFC 7118 §5.2: every WebSocket message (text or binary) carries exactly one SIP message, so
framing is by WebSocket frames, not by Content-Length. This module only parses; the stream
state lives in :mod:`sipstats.capture.tcp`.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_HTTP_REQUEST: Final = re.compile(rb"GET [^ \r\n]+ HTTP/1\.[01]\r?\n")
_HTTP_101: Final = re.compile(rb"HTTP/1\.[01] 101[ \r\n]")
_UPGRADE: Final = re.compile(rb"(?im)^upgrade[ \t]*:[ \t]*websocket")
_PROTOCOL_SIP: Final = re.compile(rb"(?im)^sec-websocket-protocol[ \t]*:[^\r\n]*\bsip\b")

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8


class Frame(NamedTuple):
    """One WebSocket frame header (RFC 6455 §5.2) and where its payload lies in the buffer."""

    fin: bool
    compressed: bool
    """RSV1: permessage-deflate (RFC 7692), which is not inflated here."""
    opcode: int
    start: int
    """Offset of the payload in the buffer."""
    end: int
    """Offset just past the payload (= start of the next frame)."""
    mask: bytes
    """The 4-byte masking key, b'' for unmasked (server) frames."""


def is_http_get(buf: bytes | bytearray, pos: int) -> bool:
    """True when a complete HTTP GET request line starts at ``pos``."""
    return _HTTP_REQUEST.match(buf, pos) is not None


def is_upgrade_request(buf: bytes | bytearray, pos: int, hdr_end: int) -> bool:
    """True for an HTTP GET asking to switch to WebSocket (RFC 6455 §4.1)."""
    return bool(_HTTP_REQUEST.match(buf, pos, hdr_end) and _UPGRADE.search(buf, pos, hdr_end))


def is_switching_response(buf: bytes | bytearray, pos: int) -> bool:
    """True when the bytes at ``pos`` start an HTTP ``101 Switching Protocols`` status line."""
    return _HTTP_101.match(buf, pos) is not None


def accepts_sip(buf: bytes | bytearray, pos: int, hdr_end: int) -> bool:
    """True when the 101 response agreed on the ``sip`` subprotocol (RFC 7118 §4.1)."""
    return _PROTOCOL_SIP.search(buf, pos, hdr_end) is not None


def parse_frame(buf: bytes | bytearray, pos: int) -> Frame | None:
    """The frame starting at ``pos``, or None while its header or payload is incomplete."""
    n = len(buf)
    if n - pos < 2:
        return None
    b0, b1 = buf[pos], buf[pos + 1]
    length = b1 & 0x7F
    at = pos + 2
    if length == 126:
        if n - at < 2:
            return None
        length = int.from_bytes(buf[at : at + 2], "big")
        at += 2
    elif length == 127:
        if n - at < 8:
            return None
        length = int.from_bytes(buf[at : at + 8], "big")
        at += 8
    mask = b""
    if b1 & 0x80:
        if n - at < 4:
            return None
        mask = bytes(buf[at : at + 4])
        at += 4
    if n - at < length:
        return None
    return Frame(bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, at, at + length, mask)


def frame_length(buf: bytes | bytearray, pos: int) -> int | None:
    """Declared payload length of the frame at ``pos`` (None while the header is incomplete).

    Lets the caller refuse an oversized frame without waiting for all of it.
    """
    n = len(buf)
    if n - pos < 2:
        return None
    length = buf[pos + 1] & 0x7F
    if length < 126:
        return length
    size = 2 if length == 126 else 8
    if n - pos - 2 < size:
        return None
    return int.from_bytes(buf[pos + 2 : pos + 2 + size], "big")


def unmask(data: bytes | bytearray, mask: bytes) -> bytes:
    """XOR ``data`` with the repeating 4-byte client mask (RFC 6455 §5.3), without a byte loop."""
    if not mask or not data:
        return bytes(data)
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
