"""Decode stage: capture duplicates -> which payloads are a second sighting of one message.

The same packet captured twice (``tcpdump -i any`` seeing it on two interfaces, two capture
points merged with mergecap, several HEP agents reporting one message, a SPAN port) is one
message on the wire, not a retransmission. A copy carries identical SIP bytes between the same
endpoints (address, port, transport) and arrives within a few milliseconds; the IP header
(TTL, identification, checksum) may differ and is not compared. A retransmission is paced by
a timer (RFC 3261 §17.1.1.2: T1, 500 ms by default), so the window never swallows one.

:class:`DuplicateFilter` is the rule; :func:`duplicate_filter` gives its C twin where it is
built (``_pcapscan.c``: the same steps without a Python loop turn per payload; the tests feed
both the same payloads).
"""

from __future__ import annotations

from typing import Final, Protocol

from sipstats import native
from sipstats.capture.records import Payload

#: Default window: copies of one packet arrive microseconds apart; 5 ms leaves room for
#: capture points with their own clocks and stays far below any SIP timer.
DEFAULT_WINDOW_MS: Final = 5.0
#: Payloads remembered per window generation: bounds memory when timestamps stand still.
MAX_REMEMBERED: Final = 65536

#: The C twin's extension: the capture stage's (``_pcapscan.c``), beside the C record walk.
C_TWIN_NAME: Final = "capture._pcapscan"
_C_TWIN = native.extension(C_TWIN_NAME, PAYLOAD_FIELDS=Payload._fields)

#: Fields that must match besides the bytes: src, sport, dst, dport, transport.
_ENDPOINTS = slice(3, 8)


class Copies(Protocol):
    """A capture-duplicate filter: :class:`DuplicateFilter` or its C twin."""

    @property
    def window_ns(self) -> int: ...

    def copies(self, batch: list[Payload], /) -> list[int]: ...


def duplicate_filter(window_ms: float = DEFAULT_WINDOW_MS) -> Copies:
    """A filter for one file (or part of one): the C twin of :class:`DuplicateFilter` (the
    same rule, a C loop instead of a Python one) when it is built and not switched off."""
    python = DuplicateFilter(window_ms)
    if _C_TWIN is None or not native.enabled(C_TWIN_NAME) or python.window_ns >= 2**62:
        return python  # (the C twin keeps times in 64 bits)
    built: Copies = _C_TWIN.CopyFilter(python.window_ns, MAX_REMEMBERED)
    return built


class DuplicateFilter:
    """Remembers the payloads of the last window or two and recognises copies of them.

    Two generations of payloads keyed by their bytes: the current one and the one before.
    When time passes the current generation's end, the older one is forgotten, so memory
    holds about two windows of messages (at most ``2 * MAX_REMEMBERED``). When more than
    ``MAX_REMEMBERED`` arrive within one window (a capture whose clock stands still), the
    generation turns early and a copy of a payload forgotten that way stays a row.
    """

    __slots__ = ("_current", "_previous", "_turn_at", "window_ns")

    def __init__(self, window_ms: float = DEFAULT_WINDOW_MS) -> None:
        if window_ms < 0:
            raise ValueError(f"duplicate window must not be negative: {window_ms} ms")
        self.window_ns = round(window_ms * 1_000_000)
        self._current: dict[bytes, Payload] = {}
        self._previous: dict[bytes, Payload] = {}
        self._turn_at = -1

    def copies(self, batch: list[Payload]) -> list[int]:
        """Positions in ``batch`` (in capture order, after what came before) of the payloads
        that repeat one seen within the window; each is remembered for the next ones."""
        found: list[int] = []
        window, endpoints = self.window_ns, _ENDPOINTS
        current, previous, turn_at = self._current, self._previous, self._turn_at
        for i, payload in enumerate(batch):
            ts = payload.ts_ns
            if ts > turn_at or len(current) >= MAX_REMEMBERED:
                previous, current, turn_at = current, {}, ts + window
            data = payload.data
            earlier = current.get(data)
            if earlier is None:
                earlier = previous.get(data)
            if (
                earlier is not None
                and -window <= ts - earlier.ts_ns <= window
                and earlier[endpoints] == payload[endpoints]
            ):
                found.append(i)
            current[data] = payload  # a chain of copies is judged against the latest one
        self._current, self._previous, self._turn_at = current, previous, turn_at
        return found
