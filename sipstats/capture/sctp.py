"""Decode stage: SCTP packet -> user messages of its DATA chunks (RFC 9260 §3.3.1).

A user message larger than one chunk is sent as fragments flagged B (first) and E (last),
which share the stream identifier and stream sequence number; they are joined here in
arrival order (fragments reordered in flight are rare on the links SIP-I runs over).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

#: Unfinished fragmented messages held at once; beyond this the oldest is forgotten.
MAX_PENDING = 1024
#: Largest fragmented message joined (the SIP stage would refuse a larger one anyway).
MAX_MESSAGE = 1 << 20

_DATA = struct.Struct(">BBHIHHI")
_CHUNK = struct.Struct(">BBH")


class SctpError(ValueError):
    """A chunk whose length cannot be; the reader counts the packet as undecodable."""


def data_chunks(buf: Any, o: int, end: int) -> Iterator[tuple[int, int, int, bytes]]:
    """(flags, stream id, stream sequence number, user data) of each DATA chunk after the
    12-byte common header at ``o``."""
    p = o + 12
    while end - p >= 4:
        ctype, flags, size = _CHUNK.unpack_from(buf, p)
        if size < 4:
            raise SctpError(f"SCTP chunk length {size}")
        if ctype == 0 and size >= 16 and p + 16 <= end:
            _t, _f, _l, _tsn, stream, ssn, _ppid = _DATA.unpack_from(buf, p)
            yield flags, stream, ssn, bytes(buf[p + 16 : min(p + size, end)])
        p += (size + 3) & ~3  # chunks are padded to 4 bytes


class SctpJoiner:
    """Joins B ... E fragments of one user message per (association, stream, sequence)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[object, ...], list[bytes]] = {}

    def add(self, key: tuple[object, ...], flags: int, piece: bytes) -> bytes:
        """The whole message once its last piece arrived, else b''."""
        if flags & 3 == 3:  # B and E: an unfragmented message
            return piece
        if flags & 2:
            self._pending[key] = [piece]
            if len(self._pending) > MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            return b""
        parts = self._pending.get(key)
        if parts is None:  # a middle or last piece whose first was never seen
            return b""
        parts.append(piece)
        if sum(len(x) for x in parts) > MAX_MESSAGE:
            del self._pending[key]
            return b""
        if flags & 1:
            del self._pending[key]
            return b"".join(parts)
        return b""
