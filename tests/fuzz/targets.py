"""Fuzz targets: bytes in, nothing out; any exception but the documented ones is a finding.

* ``reader``: the bytes as a capture file (pcap or pcapng; gzip, bz2, xz by magic), decoded
  with the C walk and again without it: both must agree on every payload and on the input
  summary (counts, anomalies, errors), and neither may raise. Files that are not captures
  must raise :class:`CaptureError` only.
* ``defrag``: the bytes as a stream of IPv4/IPv6 fragments (key, offset, more, length, data)
  for :class:`Defragmenter`; what it holds must stay under its caps.
* ``tcp``: the bytes as TCP segments (connection, flags, sequence step, payload) for
  :class:`TcpReassembler`; what it buffers must stay under its caps.
* ``sip``: the bytes as one SIP message: :func:`parse_message` returns a message or raises
  :class:`SipParseError`, and the C fast path agrees with the Python parser.

Every target takes ``bytes`` so that atheris (``python -m tests.fuzz``), hypothesis
(``tests/test_fuzz.py``) and the regression corpus (``tests/fuzz/regressions/TARGET/``) drive the
same code.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable

from sipstats import native, sip
from sipstats.capture import defrag, pcap, tcp
from sipstats.capture.reader import iter_payloads
from sipstats.capture.summary import InputSummary
from sipstats.errors import CaptureError, SipParseError


def _read(path: str) -> tuple[list[object], InputSummary | None]:
    summary = InputSummary(path)
    try:
        payloads: list[object] = list(iter_payloads(path, summary))
    except CaptureError:
        return [], None
    return payloads, summary


def reader(data: bytes) -> None:
    """Decode ``data`` as a capture file with the C walk and without; both must agree."""
    fd, path = tempfile.mkstemp(prefix="sipstats-fuzz-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with_c = _read(path)
        with native.python_twins(pcap.C_WALK_NAME):
            pure = _read(path)
    finally:
        os.unlink(path)
    assert with_c == pure, "the C walk and the Python reader disagree"


_FRAGMENT = struct.Struct(">BHBH")


def fragments(data: bytes) -> None:
    """Feed fragments to a :class:`Defragmenter`: 6-byte heads (key, offset in 8-byte units
    with the More Fragments flag in the top bit, data length) followed by their data."""
    joiner = defrag.Defragmenter()
    pos, now = 0, 0
    while pos + _FRAGMENT.size <= len(data):
        key, offset, step, length = _FRAGMENT.unpack_from(data, pos)
        pos += _FRAGMENT.size
        piece = data[pos : pos + length % 2048]
        pos += len(piece)
        now += step * 10**8
        whole = joiner.add(
            (key % 4,), (offset & 0x7FFF) * 8, bool(offset >> 15), piece, now, 1, False
        )
        assert whole is None or len(whole.data) <= defrag.MAX_DATAGRAM
        assert joiner.held_bytes <= defrag.MAX_BYTES + defrag.MAX_DATAGRAM
    joiner.finish()


_SEGMENT = struct.Struct(">BBhH")


def segments(data: bytes) -> None:
    """Feed segments to a :class:`TcpReassembler`: 6-byte heads (connection and direction,
    flags, signed sequence step, payload length) followed by their payload."""
    summary = InputSummary("fuzz")
    joiner = tcp.TcpReassembler("fuzz", summary, None)
    seqs = [0] * 8
    pos, now = 0, 0
    while pos + _SEGMENT.size <= len(data):
        conn, flags, step, length = _SEGMENT.unpack_from(data, pos)
        pos += _SEGMENT.size
        payload = data[pos : pos + length % 4096]
        pos += len(payload)
        now += 10**6
        c = conn % 8
        seqs[c] = (seqs[c] + step * 64) & 0xFFFFFFFF
        src, dst = ("10.0.0.1", 40000 + c // 2), ("10.0.0.2", 5060)
        if c % 2:
            src, dst = dst, src
        for item in joiner.feed(now, pos, *src, *dst, seqs[c], flags, payload, False):
            assert item.data
        seqs[c] = (seqs[c] + len(payload)) & 0xFFFFFFFF
        assert joiner.buffered_bytes() <= tcp.MAX_BUFFERED + 2 * tcp.MAX_MESSAGE
    joiner.flush()


def sip_message(data: bytes) -> None:
    """Parse ``data`` as one SIP message; the C fast path, when it answers, agrees."""
    try:
        message = sip.parse_message(data)
    except SipParseError:
        message = None
    try:
        general = sip._parse_general(data, False, False)
    except SipParseError:
        general = None
    if message is not None and general is not None:
        assert message == general, "the fast path and the general parser disagree"


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reader": reader,
    "defrag": fragments,
    "tcp": segments,
    "sip": sip_message,
}
