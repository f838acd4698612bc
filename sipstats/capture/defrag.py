"""Decode stage: IPv4 / IPv6 fragments -> whole datagrams.

Fragments are keyed by (source, destination, identification, protocol) (RFC 791 §3.2,
RFC 8200 §4.5) and may arrive in any order. Memory is bounded: a datagram that is not
complete within :data:`TIMEOUT_NS` of capture time, or that exceeds the caps, is dropped and
reported, as are datagrams still incomplete at the end of the file. The caps are checked on
every fragment added. A fragment seen again after its datagram was completed (a duplicate on
the capture path) is ignored, and so is an empty fragment: it carries nothing and must not
take the place of the data at its offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: RFC 791 §3.2 suggests a reassembly timer of about 15 s; captures can be paused, so 30 s.
TIMEOUT_NS = 30 * 1_000_000_000
#: Most datagrams reassembled at once; beyond this the oldest is dropped.
MAX_PENDING = 4096
#: Most fragment bytes held at once; beyond this the oldest datagram is dropped.
MAX_BYTES = 16 << 20
#: Largest IP payload (RFC 791 total length is 16 bits; RFC 8200 payload length too).
MAX_DATAGRAM = 65535
#: Most fragments one datagram may have (real ones have a few dozen; each one added costs a
#: look at all the others).
MAX_FRAGMENTS = 1024
#: Most fragment bytes one datagram may hold, overlapping copies included.
MAX_HELD = 2 * MAX_DATAGRAM
#: Completed datagrams remembered for :data:`TIMEOUT_NS`, to recognise their fragments seen again.
MAX_DONE = 4096


@dataclass
class _Pending:
    first_ts_ns: int
    first_frame: int
    parts: dict[int, bytes] = field(default_factory=dict)
    total: int = -1
    """Payload length, known once the last fragment (More Fragments = 0) arrived."""
    truncated: bool = False
    held: int = 0
    """Bytes of ``parts``."""


@dataclass(frozen=True)
class Datagram:
    """A reassembled IP payload with the time and frame of its first fragment in the file."""

    ts_ns: int
    frame: int
    data: bytes
    fragments: int
    truncated: bool


class Defragmenter:
    """Collects fragments; :meth:`add` returns the datagram once every byte has arrived."""

    def __init__(self) -> None:
        self._pending: dict[tuple[object, ...], _Pending] = {}
        self._done: dict[tuple[object, ...], tuple[int, dict[int, int]]] = {}
        """Recently completed datagrams: first time and the hash of each fragment by offset."""
        self._bytes = 0
        self.dropped: list[tuple[int, str]] = []
        """(first frame, why) of datagrams given up on; the reader turns them into anomalies."""

    def add(
        self,
        key: tuple[object, ...],
        offset: int,
        more: bool,
        data: bytes,
        ts_ns: int,
        frame: int,
        truncated: bool,
    ) -> Datagram | None:
        """Store one fragment (``offset`` in bytes); return the datagram when it is complete."""
        if not data or self._seen_whole(key, offset, data, ts_ns):
            return None
        entry = self._pending.get(key)
        if entry is not None and ts_ns - entry.first_ts_ns > TIMEOUT_NS:
            self._drop(key, "incomplete: timed out")  # identification reused after the timer
            entry = None
        if entry is None:
            self._expire(ts_ns)
            entry = self._pending[key] = _Pending(ts_ns, frame)
        if offset + len(data) > MAX_DATAGRAM:
            self._drop(key, "fragment beyond 65535 bytes")
            return None
        # A retransmitted or overlapping fragment: the first copy wins (RFC 5722 would drop
        # the whole datagram for IPv6; keeping the first copy loses less and is what tshark shows).
        if offset not in entry.parts:
            if len(entry.parts) >= MAX_FRAGMENTS:
                self._drop(key, f"over {MAX_FRAGMENTS} fragments")
                return None
            if entry.held + len(data) > MAX_HELD:
                self._drop(key, f"overlapping fragments over {MAX_HELD} bytes")
                return None
            entry.parts[offset] = data
            entry.held += len(data)
            self._bytes += len(data)
            if self._bytes > MAX_BYTES:
                self._crowd_out(key)
        entry.truncated = entry.truncated or truncated
        if not more:
            entry.total = offset + len(data)
        if entry.total < 0:
            return None
        covered = 0
        for start in sorted(entry.parts):
            if start > covered:
                return None
            covered = max(covered, start + len(entry.parts[start]))
        if covered < entry.total:
            return None
        self._remove(key)
        self._remember(key, entry)
        buf = bytearray(entry.total)
        for start in sorted(entry.parts, reverse=True):
            piece = entry.parts[start]
            buf[start : start + len(piece)] = piece
        return Datagram(
            entry.first_ts_ns,
            entry.first_frame,
            bytes(buf[: entry.total]),
            len(entry.parts),
            entry.truncated,
        )

    @property
    def held_bytes(self) -> int:
        """Fragment bytes held now (at most :data:`MAX_BYTES` plus one datagram's)."""
        return self._bytes

    def _seen_whole(self, key: tuple[object, ...], offset: int, data: bytes, ts_ns: int) -> bool:
        """True for a copy of a fragment of a datagram completed within the timer."""
        done = self._done.get(key)
        if done is None:
            return False
        if ts_ns - done[0] <= TIMEOUT_NS and done[1].get(offset) == hash(data):
            return True
        del self._done[key]  # the identification is used again, by a new datagram
        return False

    def _remember(self, key: tuple[object, ...], entry: _Pending) -> None:
        self._done.pop(key, None)
        self._done[key] = (entry.first_ts_ns, {o: hash(p) for o, p in entry.parts.items()})
        if len(self._done) > MAX_DONE:
            del self._done[next(iter(self._done))]

    def _remove(self, key: tuple[object, ...]) -> _Pending:
        entry = self._pending.pop(key)
        self._bytes -= entry.held
        return entry

    def _crowd_out(self, keep: tuple[object, ...]) -> None:
        """Drop the oldest datagrams but ``keep`` until the held bytes fit :data:`MAX_BYTES`."""
        for key in list(self._pending):
            if self._bytes <= MAX_BYTES:
                return
            if key != keep:
                self._drop(key, "incomplete: crowded out by newer fragments")

    def _drop(self, key: tuple[object, ...], why: str) -> None:
        self.dropped.append((self._remove(key).first_frame, why))

    def _expire(self, now_ns: int) -> None:
        """Drop timed-out datagrams, then the oldest while over the count or byte caps."""
        # Entries sit in arrival order, so the stale ones are at the front.
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if now_ns - entry.first_ts_ns > TIMEOUT_NS:
                self._drop(key, "incomplete: timed out")
            elif len(self._pending) >= MAX_PENDING or self._bytes > MAX_BYTES:
                self._drop(key, "incomplete: crowded out by newer fragments")
            else:
                return

    def finish(self) -> None:
        """Give up on everything still pending at the end of the file."""
        for entry in self._pending.values():
            self.dropped.append((entry.first_frame, "incomplete at end of file"))
        self._pending.clear()
        self._done.clear()
        self._bytes = 0
