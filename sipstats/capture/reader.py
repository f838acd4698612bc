"""Decode stage entry point: capture file -> :class:`Payload` stream (candidate SIP messages).

``iter_payload_batches`` recognises the container (classic pcap in µs or ns, either byte order;
pcapng), and the compression (gzip, bz2, xz, by magic), then walks records with the fast
path of :mod:`sipstats.capture.decode`, handing the payloads over a list at a time
(``iter_payloads`` gives them one by one). ``record_boundaries`` cuts an uncompressed file into
record-aligned byte ranges so that parts can be decoded in parallel; IP fragments and TCP
streams that cross a cut are then seen in two halves, which is the price of a split.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from itertools import chain
from typing import Any, NamedTuple

from sipstats.capture import pcap, pcapng
from sipstats.capture.decode import Decoder
from sipstats.capture.deferral import Deferred, DeferringDecoder
from sipstats.capture.linklayer import link_name
from sipstats.capture.magic import is_pcap, is_pcapng
from sipstats.capture.records import Payload
from sipstats.capture.sniff import looks_like_sip
from sipstats.capture.source import Source, open_source
from sipstats.capture.summary import InputSummary
from sipstats.errors import CaptureError

__all__ = [
    "ByteRange",
    "Part",
    "iter_payload_batches",
    "iter_payloads",
    "looks_like_sip",
    "open_capture",
    "parts",
    "record_boundaries",
    "rest_after",
]

ByteRange = tuple[int, int] | tuple[int, int, int]
"""(start, end) or (start, end, first_frame): decode the records whose header starts in
[start, end) of the uncompressed data; first_frame, when known (from
:func:`record_boundaries`), saves counting the records before ``start``."""


class Part(NamedTuple):
    """A record-aligned part of a capture file that a worker decodes on its own."""

    byte_range: tuple[int, int, int]
    """(start, end, first_frame), as :data:`ByteRange`."""
    clock: pcap.Clock
    """The times of the records before ``start``."""
    warm_up: tuple[int, int, int]
    """The records just before ``start`` (a :data:`ByteRange`, empty for the first part):
    what a look-back over them must see first (capture duplicates)."""


def open_capture(path: str, summary: InputSummary) -> tuple[Source, pcap.PcapHeader | None]:
    """Open a capture and record its format in ``summary``: the source, and the pcap header
    (None for pcapng). :class:`CaptureError` when it is neither pcap nor pcapng."""
    src = open_source(path)
    head = bytes(src.buf[:24])
    if is_pcapng(head):
        summary.format = "pcapng"
        summary.compression = src.compression
        return src, None
    if is_pcap(head):
        header = pcap.parse_header(head)
        if header is None:
            src.close()
            raise CaptureError(path, f"pcap global header cut short ({len(head)} of 24 bytes)")
        summary.format = header.format
        summary.compression = src.compression
        name = link_name(header.linktype)
        if name not in summary.link_types:
            summary.link_types.append(name)
        return src, header
    src.close()
    what = f"{src.compression}-compressed data" if src.compression else "file"
    raise CaptureError(path, f"not a pcap or pcapng capture ({what} starts with {head[:8]!r})")


def walk_records(path: str | os.PathLike[str], decoder: Decoder) -> None:
    """Hand every record of a capture to ``decoder.packet`` in Python, dropping its payloads.

    For second looks at a file (:mod:`sipstats.capture.survey`): no C walk, so the decoder
    sees every record. ``decoder.summary`` receives the reader's counts and damage.
    """
    name = os.fspath(path)
    src, header = open_capture(name, decoder.summary)
    try:
        reader: pcap.PcapReader | pcapng.PcapngReader
        if header is None:
            reader = pcapng.PcapngReader(src, decoder.summary, 0)
        else:
            reader = pcap.PcapReader(src, header, decoder.summary, 24, 1)
        for _ in reader.read(decoder.packet, decoder.out, sys.maxsize):
            pass
    finally:
        src.close()


def _ignore(*_args: Any) -> None:
    """Packet callback for walks that only count records."""


def iter_payloads(
    path: str | os.PathLike[str],
    summary: InputSummary,
    *,
    ports: frozenset[int] | None = None,
    byte_range: ByteRange | None = None,
    clock: pcap.Clock = pcap.FIRST_RECORD,
    deferred: list[Deferred] | None = None,
) -> Iterator[Payload]:
    """Yield every candidate SIP message in one capture file, in file order: the payloads of
    :func:`iter_payload_batches` (same arguments) one by one."""
    batches = iter_payload_batches(
        path, summary, ports=ports, byte_range=byte_range, clock=clock, deferred=deferred
    )
    return chain.from_iterable(batches)


def iter_payload_batches(
    path: str | os.PathLike[str],
    summary: InputSummary,
    *,
    ports: frozenset[int] | None = None,
    byte_range: ByteRange | None = None,
    clock: pcap.Clock = pcap.FIRST_RECORD,
    deferred: list[Deferred] | None = None,
    intake: pcap.Intake | None = None,
    share: pcap.Share | None = None,
) -> Iterator[list[Payload]]:
    """Yield every candidate SIP message in one capture file, in file order, in lists of up
    to :data:`sipstats.capture.pcap.BATCH`; with an ``intake``, the messages of the records
    the C walk reads go there instead (see :meth:`sipstats.capture.pcap.PcapReader.read`).

    Raises :class:`CaptureError` at once when the file is unusable as a whole (unreadable,
    empty, not a capture). Damage inside a readable file (a truncated last record, an
    impossible record length, undecodable packets) goes into ``summary.errors`` and
    ``summary.malformed``, and every intact record is still read. A header without records
    is zero packets, not an error. ``ports`` restricts decoding to traffic to or from those
    ports (HEP is unwrapped first and its inner ports count).

    A :class:`Part` of a classic pcap is read with its ``byte_range`` and ``clock``; with a
    ``deferred`` list, what needs the packets before the part (IP fragments, TCP, SCTP) is not
    decoded but recorded there, for :func:`sipstats.capture.deferral.replay` in file order.
    A classic pcap read with a ``share`` may be cut short by another thread (see
    :class:`sipstats.capture.pcap.Share`); its decoder is then left unfinished in the share.
    """
    name = os.fspath(path)
    src, header = open_capture(name, summary)
    return _payloads(name, src, header, summary, ports, byte_range, clock, deferred, intake, share)


def _payloads(
    name: str,
    src: Source,
    header: pcap.PcapHeader | None,
    summary: InputSummary,
    ports: frozenset[int] | None,
    byte_range: ByteRange | None,
    clock: pcap.Clock,
    deferred: list[Deferred] | None,
    intake: pcap.Intake | None,
    share: pcap.Share | None,
) -> Iterator[list[Payload]]:
    try:
        decoder = (
            Decoder(name, summary, ports)
            if deferred is None
            else DeferringDecoder(name, summary, ports, deferred)
        )
        start, stop = (0, sys.maxsize) if byte_range is None else byte_range[:2]
        reader: pcap.PcapReader | pcapng.PcapngReader
        if header is None:
            reader = pcapng.PcapngReader(src, summary, start)
        else:
            first = byte_range[2] if byte_range is not None and len(byte_range) == 3 else None
            reader = _pcap_at(src, header, summary, max(start, 24), first, clock)
        if isinstance(reader, pcap.PcapReader):
            yield from reader.read(decoder.packet, decoder.out, stop, decoder, intake, share)
        else:
            yield from reader.read(decoder.packet, decoder.out, stop, decoder, intake)
        if share is not None and share.finish():
            share.kept = decoder  # the rest of the file goes on from this state
        else:
            decoder.finish()
        if decoder.out:
            yield decoder.out[:]
            decoder.out.clear()
        if src.error:
            summary.errors.append(src.error)
    finally:
        src.close()


def _pcap_at(
    src: Source,
    header: pcap.PcapHeader,
    summary: InputSummary,
    start: int,
    first_frame: int | None,
    clock: pcap.Clock,
) -> pcap.PcapReader:
    """A reader positioned at ``start``, counting the records before it unless told their number."""
    if start == 24:
        return pcap.PcapReader(src, header, summary, 24, 1)
    if first_frame is not None and src.seekable:
        return pcap.PcapReader(src, header, summary, start, first_frame, clock)
    walker = pcap.PcapReader(src, header, InputSummary(summary.file), 24, 1)
    for _ in walker.read(_ignore, [], start):
        pass
    return pcap.PcapReader(src, header, summary, walker.offset, walker.frame + 1)


def record_boundaries(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int, int]]:
    """Cut a capture into at most ``parts`` record-aligned ranges (start, end, first_frame).

    Passing each range as ``byte_range`` to :func:`iter_payloads` and concatenating the
    results gives the payloads of the whole file (less what crosses a cut: fragments and TCP
    messages). A compressed file cannot be entered in the middle, so it is one range.
    """
    name = os.fspath(path)
    scratch = InputSummary(name)
    src, header = open_capture(name, scratch)
    try:
        if not src.seekable:
            return [(0, sys.maxsize, 1)]
        size = len(src.buf)
        parts = max(1, parts)
        targets = [i * size // parts for i in range(1, parts)]
        bounds = [(0, 1)]

        def offer(offset: int, frame: int) -> None:
            k = len(bounds) - 1
            if k < len(targets) and offset >= targets[k]:
                bounds.append((offset, frame))

        if header is None:
            pcapng.packet_blocks(src.buf, offer)
        else:
            skip = header.record_size

            def note(_b: Any, o: int, _e: int, _lt: int, _ts: int, frame: int, _t: bool) -> None:
                offer(o - skip, frame)

            for _ in pcap.PcapReader(src, header, scratch, 24, 1).read(note, [], sys.maxsize):
                pass
    finally:
        src.close()
    return [
        (b, bounds[i + 1][0] if i + 1 < len(bounds) else size, f) for i, (b, f) in enumerate(bounds)
    ]


def parts(path: str | os.PathLike[str], cuts: list[int], lookback_ns: int = 0) -> list[Part]:
    """Cut a classic pcap file at the first record at or after each byte offset in ``cuts``.

    Each part can then be decoded in its own process (see :func:`iter_payloads`); its
    ``warm_up`` holds the records stamped within ``lookback_ns`` before it. Fewer parts come
    back where a damaged record or the end of the file comes first; a file that cannot be
    cut (compressed, pcapng, or without the C walk) is one part.
    """
    name = os.fspath(path)
    src, header = open_capture(name, InputSummary(name))
    try:
        size = len(src.buf)
        points = (
            []
            if header is None or not src.seekable
            else pcap.cut_points(src, header, cuts, lookback_ns)
        )
    finally:
        src.close()
    first = pcap.Cut(24, 0, pcap.FIRST_RECORD, 24, 0)
    starts = {cut.offset: cut for cut in (first, *points) if cut.offset < size}
    offsets = sorted(starts)
    ends = [*offsets[1:], sys.maxsize]
    return [_part(starts[start], end) for start, end in zip(offsets, ends, strict=True)]


def rest_after(
    path: str | os.PathLike[str], at: pcap.Position, target: int, lookback_ns: int, end: int
) -> Part | None:
    """The part of a classic pcap file from the first record at or after ``target`` to
    ``end``, for a reader that is ``at`` a record before it and sees the file end there (the
    records before ``at`` are not walked again; see :func:`sipstats.capture.pcap.cut_after`).
    None where there is no such cut (compressed, pcapng, damage or the end first, a
    look-back too long)."""
    name = os.fspath(path)
    src, header = open_capture(name, InputSummary(name))
    try:
        cut = None if header is None else pcap.cut_after(src, header, at, target, lookback_ns, end)
    finally:
        src.close()
    return None if cut is None else _part(cut, end)


def _part(cut: pcap.Cut, end: int) -> Part:
    return Part(
        (cut.offset, end, cut.frame + 1),
        cut.clock,
        (cut.warm_offset, cut.offset, cut.warm_frame + 1),
    )
