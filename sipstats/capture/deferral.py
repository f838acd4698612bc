"""Decode stage, one part of a file at a time: what needs earlier packets waits for the parent.

A file cut into parts (see :func:`sipstats.capture.reader.parts`) is decoded by several
worker processes. Most packets need nothing but themselves; IP fragments, TCP segments and
SCTP chunks need the packets before them, which may sit in the previous part. A worker's
:class:`DeferringDecoder` therefore stops at those three doors and records the call with
copies of its bytes; the parent then makes the calls of all parts, in file order, on one
ordinary :class:`~sipstats.capture.decode.Decoder` (:func:`replay`). The stateful code sees
exactly what a single pass would have shown it, so the result is the same.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from sipstats.capture.decode import UNDECODABLE, Decoder, Frame
from sipstats.capture.summary import InputSummary


class Deferred(NamedTuple):
    """A Decoder method call put off: its name and arguments (bytes copied out of the buffer)."""

    method: str
    args: tuple[Any, ...]
    frame: int


class DeferringDecoder(Decoder):
    """A Decoder whose stateful steps are recorded in ``deferred`` instead of taken."""

    def __init__(
        self,
        file: str,
        summary: InputSummary,
        ports: frozenset[int] | None,
        deferred: list[Deferred],
    ) -> None:
        super().__init__(file, summary, ports)
        self.deferred = deferred

    def tcp(self, *frame_args: Any) -> None:
        self._defer_transport("tcp", *frame_args)

    def sctp(self, *frame_args: Any) -> None:
        self._defer_transport("sctp", *frame_args)

    def _defer_transport(
        self,
        method: str,
        buf: Any,
        o: int,
        end: int,
        abuf: Any,
        aoff: int,
        af: int,
        frame: Frame,
    ) -> None:
        """Put off ``Decoder.tcp``/``Decoder.sctp``: the packet and its address bytes copied."""
        packet, addresses = bytes(buf[o:end]), bytes(abuf[aoff : aoff + 2 * _size(af)])
        args = (packet, 0, len(packet), addresses, 0, af, frame)
        self.deferred.append(Deferred(method, args, frame.number))

    def _fragment(
        self,
        key: tuple[object, ...],
        offset: int,
        more: bool,
        buf: Any,
        p: int,
        end: int,
        proto: int,
        addresses: bytes,
        version: int,
        frame: Frame,
    ) -> None:
        piece = bytes(buf[p:end])
        args = (key, offset, more, piece, 0, len(piece), proto, addresses, version, frame)
        self.deferred.append(Deferred("_fragment", args, frame.number))


def _size(af: int) -> int:
    return 4 if af == 4 else 16


def replay(decoder: Decoder, deferred: list[Deferred]) -> None:
    """Make the recorded calls on ``decoder`` in order; payloads land in ``decoder.out``.

    A call that fails on damaged bytes is counted as the reader counts it in one pass.
    """
    for method, args, frame in deferred:
        try:
            getattr(decoder, method)(*args)
        except (IndexError, ValueError, struct.error) as exc:
            decoder.summary.anomaly(UNDECODABLE, frame, f"{type(exc).__name__}: {exc}")
