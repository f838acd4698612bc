"""Decode stage: classic pcap records -> frames handed to the decoder (libpcap savefile format).

Format: a 24-byte global header (magic, version, zone, sigfigs, snaplen, link type) then
records of a 16-byte header (seconds, microseconds or nanoseconds, captured length, original
length) and the captured bytes. The magic fixes byte order and time unit.

Damage: a record that runs past the end of the data is reported with its number and offset;
a record header with an impossible length is reported, and reading resumes at the next
offset where two consecutive plausible record headers sit (see :func:`_resync`). tshark stops
at such a header; resynchronising keeps the intact records that follow it.
"""

from __future__ import annotations

import math
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from types import ModuleType
from typing import Any, NamedTuple

from sipstats import native
from sipstats.capture.decode import NO_TIME, OUT_OF_ORDER, OUT_OF_ORDER_NS, UNDECODABLE, Decoder
from sipstats.capture.linklayer import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2
from sipstats.capture.magic import PCAP
from sipstats.capture.records import Payload
from sipstats.capture.source import RELEASE_STEP, Source
from sipstats.capture.summary import InputSummary

#: The C walk (``_pcapscan.c``), loaded and checked against Payload once; see :func:`c_walk`.
C_WALK_NAME = "capture._pcapscan"
_C_WALK = native.extension(C_WALK_NAME, PAYLOAD_FIELDS=Payload._fields)

#: libpcap's largest snapshot length; a record claiming more is damage whatever the file's
#: snaplen says (a crafted snaplen of 4 GiB must not make a reader wait for 4 GiB of record).
MAX_CAPLEN = 262144
#: Bytes searched for the next plausible record after a damaged header.
RESYNC_WINDOW = 4 << 20
#: A resynchronised record must lie within this many seconds of the last good one.
RESYNC_SECONDS = 86400
#: Link types whose plain UDP records the C walk reads (Ethernet, Linux cooked v1 and v2).
C_WALK_LINKTYPES = frozenset({LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2})
#: Payloads a reader hands over at a time (one list, not one yield each): bounds what waits
#: in memory, and makes the hand-off cost per batch rather than per message.
BATCH = 2048

PacketFn = Callable[[Any, int, int, int, int, int, bool], None]


def c_walk() -> ModuleType | None:
    """The C walk, or None: not built, built for another Payload, or switched off
    (:mod:`sipstats.native`). The pcapng reader uses it too."""
    return _C_WALK if native.enabled(C_WALK_NAME) else None


class Intake(NamedTuple):
    """Where the C walk puts the plain UDP datagrams it keeps, instead of making a Payload of
    each: the C parser and column builder of the messages table (``_columns.h``), after the
    C capture-duplicate filter has judged them. What the parser declines is read by Python."""

    columns: Any
    """The table's C builder (``sipstats._sipscan.Columns``)."""
    copies: Any
    """The C capture-duplicate filter (``CopyFilter``), or None: copies are not looked for."""
    keep_duplicates: bool
    """A copy stays a row, marked (the builder's duplicate column), rather than being left
    out."""


class PcapHeader(NamedTuple):
    """What the global header says."""

    endian: str
    """'<' or '>'."""
    frac_ns: int
    """Nanoseconds per unit of the second field of a record's time (1000 or 1)."""
    format: str
    """'pcap' or 'pcap-ns'."""
    snaplen: int
    linktype: int
    record_size: int
    """16, or 24 for Alexey Kuznetzov's modified pcap (magic 0xa1b2cd34)."""


def parse_header(head: bytes) -> PcapHeader | None:
    """The global header, or None when ``head`` is too short to hold one."""
    if len(head) < 24:
        return None
    for endian in "<>":
        magic, _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
            endian + "IHHiIII", head
        )
        if magic in PCAP:
            frac_ns, fmt, rsize = PCAP[magic]
            # The upper 16 bits of the link-type field may carry FCS information.
            return PcapHeader(endian, frac_ns, fmt, snaplen, network & 0xFFFF, rsize)
    return None


class Clock(NamedTuple):
    """What a reader remembers of the records before its start: the earliest and latest time
    (ns, NO_TIME before any record) and the last record's second field (-1: none)."""

    tmin: int = NO_TIME
    tmax: int = NO_TIME
    prev_sec: int = -1


#: The clock of a reader that starts at the first record.
FIRST_RECORD = Clock()


class PcapReader:
    """Walks records from ``start``; ``frame`` and ``offset`` tell where it stopped.

    ``clock`` carries the times of the records before ``start`` (a part of a file read on its
    own), so a record stamped before them counts as out of order just as in one pass.
    """

    def __init__(
        self,
        src: Source,
        header: PcapHeader,
        summary: InputSummary,
        start: int,
        first_frame: int,
        clock: Clock = FIRST_RECORD,
    ) -> None:
        self.src = src
        self.header = header
        self.summary = summary
        self.offset = start
        self.frame = first_frame - 1
        self.clock = clock
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def read(
        self,
        packet: PacketFn,
        out: list[Payload],
        stop: int,
        decoder: Decoder | None = None,
        intake: Intake | None = None,
        share: Share | None = None,
    ) -> Iterator[list[Payload]]:
        """Call ``packet`` on each record starting before ``stop``; yield what lands in ``out``,
        in lists of :data:`BATCH` (the last one shorter), ``out`` emptied after each.

        With ``decoder`` (whose ``packet`` and ``out`` these are) and the C walk built, the
        records it can read (plain UDP, see ``_pcapscan.c``) skip the Python loop; it hands
        every other record back to the loop below, which stays the reference. With an
        ``intake`` as well, the walk adds the messages of those records to the intake's table
        itself (counted in the summary) and only the others reach ``out``; each list is then
        yielded before the walk goes on, so the table gets every message in capture order,
        and one (maybe empty) list follows each step of :data:`RELEASE_STEP` bytes.
        With a ``share``, each step of the C walk tells it where the reader is and takes the
        stop from it (another thread may bring it forward to read the rest itself).
        """
        src, hdr, summary = self.src, self.header, self.summary
        walk = None if decoder is None else _c_walk(hdr, decoder)
        # the walk into the builder lets go of the GIL for other threads (decoding threads), if any
        into = () if walk is None or intake is None else (threading.active_count() > 1, intake)
        rsize = hdr.record_size
        unpack = struct.Struct(hdr.endian + "IIII").unpack_from
        limit = MAX_CAPLEN
        mul = hdr.frac_ns
        lt = hdr.linktype
        buf = src.buf
        n = len(buf)
        off = self.offset - src.base
        frame = self.frame
        tmin, tmax, prev_sec = self.clock
        release_at = off + RELEASE_STEP
        counted_at, counted_frame = self.offset, frame  # summary totals grow as we go (progress)
        if share is not None and src.seekable:
            share.end = src.base + n
        while src.base + off < stop:
            if walk is not None:
                if into and out:  # the messages Python found come first
                    yield out[:]
                    out.clear()
                if share is not None:
                    # no record starts past this before the next step (one read in Python)
                    reach = src.base + release_at + 1 + rsize + limit
                    here = Position(src.base + off, frame, Clock(tmin, tmax, prev_sec))
                    stop = share.step(here, reach)
                    if src.base + off >= stop:
                        break
                until = min(stop - src.base, release_at + 1)
                state = walk(buf, off, until, frame, tmin, tmax, prev_sec, out, *into)
                off, frame, tmin, tmax, prev_sec, rows, copies = state
                summary.sip_messages += rows
                summary.duplicates += copies
                if len(out) >= BATCH:
                    yield out[:]
                    out.clear()
                if src.base + off >= stop:
                    break
            if off + rsize > n:
                if src.more(off):
                    buf, off = src.buf, 0
                    n = len(buf)
                    continue
                if off < n:
                    summary.errors.append(
                        f"truncated inside the header of record {frame + 1} at byte offset "
                        f"{src.base + off}: {n - off} of {rsize} bytes"
                    )
                break
            sec, frac, caplen, origlen = unpack(buf, off)
            if caplen > limit:
                where = src.base + off
                found = self._resync(off, prev_sec, limit)
                buf, n = src.buf, len(src.buf)
                off = found[0] if found else -1
                what = (
                    f"record {frame + 1} at byte offset {where} claims {caplen} captured bytes "
                    f"(limit {limit})"
                )
                if found is None:
                    summary.errors.append(f"{what}; no plausible record follows, reading stopped")
                    off = n
                    break
                summary.errors.append(
                    f"{what}; resynchronised at byte offset {src.base + off} "
                    f"after skipping {found[1]} bytes"
                )
                continue
            nxt = off + rsize + caplen
            if nxt > n:
                if src.more(off):
                    buf, off = src.buf, 0
                    n = len(buf)
                    continue
                summary.errors.append(
                    f"truncated inside record {frame + 1} at byte offset {src.base + off}: "
                    f"{n - off - rsize} of {caplen} captured bytes present"
                )
                break
            frame += 1
            ts = sec * 1_000_000_000 + frac * mul
            if ts > tmax:
                tmax = ts
                if tmin == NO_TIME:
                    tmin = ts
            else:
                tmin = min(tmin, ts)
                if ts < tmax - OUT_OF_ORDER_NS:
                    summary.anomaly(OUT_OF_ORDER, frame, f"{(tmax - ts) / 1e9:.3f} s back")
            prev_sec = sec
            try:
                packet(buf, off + rsize, nxt, lt, ts, frame, caplen < origlen)
            except (IndexError, ValueError, struct.error) as exc:
                summary.anomaly(UNDECODABLE, frame, f"{type(exc).__name__}: {exc}")
            if len(out) >= BATCH:
                yield out[:]
                out.clear()
            off = nxt
            if off > release_at:
                src.release(off)
                release_at = off + RELEASE_STEP
                summary.bytes += src.base + off - counted_at
                summary.packets += frame - counted_frame
                counted_at, counted_frame = src.base + off, frame
                if into:  # progress, however few messages Python found
                    yield out[:]
                    out.clear()
        if out:
            yield out[:]
            out.clear()
        summary.bytes += src.base + off - counted_at
        summary.packets += frame - counted_frame
        self.offset = src.base + off
        self.frame = frame
        if tmin != NO_TIME:
            summary.see_time(tmin)
            summary.see_time(tmax)

    def _resync(self, off: int, prev_sec: int, limit: int) -> tuple[int, int] | None:
        """Find the next offset after ``off`` where a plausible record starts.

        Plausible: captured length within the limit and not above the original length, the
        sub-second field below one second, the time within a day of the last good record, and
        the record after it plausible too (or the data ending exactly there). Returns the new
        offset in the (possibly refilled) buffer and the bytes skipped.
        """
        src, hdr = self.src, self.header
        rsize = hdr.record_size
        unpack = struct.Struct(hdr.endian + "IIII").unpack_from
        frac_max = 1_000_000_000 // hdr.frac_ns
        while len(src.buf) - off < RESYNC_WINDOW and src.more(off):
            off = 0
        buf = src.buf
        n = len(buf)

        def plausible(q: int, near: int) -> int:
            """The captured length of a plausible record header at ``q``, else -1."""
            sec, frac, caplen, origlen = unpack(buf, q)
            if (
                caplen > limit
                or caplen > origlen
                or frac >= frac_max
                or (near >= 0 and abs(sec - near) > RESYNC_SECONDS)
            ):
                return -1
            return caplen

        last = min(n, off + RESYNC_WINDOW) - rsize
        for q in range(off + 1, last + 1):
            caplen = plausible(q, prev_sec)
            if caplen < 0:
                continue
            nxt = q + rsize + caplen
            if nxt == n or (nxt + rsize <= n and plausible(nxt, unpack(buf, q)[0]) >= 0):
                return q, q - off
        return None


class Position(NamedTuple):
    """Where a reader is: the offset of the next record, the records before it and their
    clock."""

    offset: int
    frame: int
    clock: Clock


class Share:
    """A read of a file that another thread may cut short to read the rest itself: where
    the reader is (each step of its C walk tells, :meth:`PcapReader.read`) and where it stops.
    """

    def __init__(self, clock: Callable[[], float] = time.thread_time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        """The reading thread's CPU time (what :meth:`step` calls it with)."""
        self._stop = sys.maxsize
        self._reach = 0
        self.at: Position | None = None
        """The reader's last position told, None before its first step."""
        self.end = 0
        """Where the bytes the reader walks end, told before its first step: a file still
        being written may be longer by now, and the rest cut off ends here too. 0 where the
        read cannot be cut (a compressed file, whose offsets are not the file's)."""
        self.kept: Decoder | None = None
        """The reader's decoder, left unfinished when the read was cut: what the rest of the
        file puts off (TCP, SCTP, IP fragments) is made on it, after what the reader gave it."""
        self._first: tuple[int, float] | None = None
        self._spent = 0.0

    def step(self, at: Position, reach: int) -> int:
        """The reader is ``at`` and starts no record at or after ``reach`` before its next
        step: where it is to stop. Called in the reading thread (its CPU time is its pace)."""
        spent = self._clock()
        with self._lock:
            if self._first is None:
                self._first = (at.offset, spent)
            self.at, self._reach, self._spent = at, reach, spent
            return self._stop

    def seconds_left(self) -> float:
        """The reader's CPU seconds to the end of its bytes at its pace since its first step
        (infinite before it has read a byte since: the pace is not known yet). CPU time, not
        wall time: a reader that waits for a core has no less work left for that."""
        with self._lock:
            if self._first is None or self.at is None or self.at.offset <= self._first[0]:
                return math.inf
            offset, spent = self._first
            pace = (self._spent - spent) / (self.at.offset - offset)
            return max(self.end - self.at.offset, 0) * pace

    def cut(self, offset: int) -> bool:
        """Stop the reader before the record at ``offset``: False when it may have read it
        by now, or was cut or finished already."""
        with self._lock:
            if offset < self._reach or self._stop != sys.maxsize:
                return False
            self._stop = offset
            return True

    def finish(self) -> bool:
        """The reader ends: no cut from now on. Whether it was cut."""
        with self._lock:
            self._reach = sys.maxsize
            return self._stop != sys.maxsize


class Cut(NamedTuple):
    """Where a part of a file starts: the record, the records before it, the clock before
    it, and where the records stamped just before it start (``warm_offset``, with
    ``warm_frame`` records before that)."""

    offset: int
    frame: int
    clock: Clock
    warm_offset: int
    warm_frame: int


def cut_points(src: Source, hdr: PcapHeader, targets: list[int], lookback_ns: int) -> list[Cut]:
    """A :class:`Cut` at the first record at or after each byte offset in ``targets``
    (ascending), whose look-back covers the records stamped within ``lookback_ns`` before it.
    Short when a damaged record comes first (the part that holds it is read by one reader);
    empty without the C walk, which makes this cheap."""
    walker = c_walk()
    if walker is None:
        return []
    header = (hdr.endian == ">", hdr.record_size, MAX_CAPLEN, hdr.frac_ns)
    return [
        Cut(offset, frame, Clock(tmin, tmax, prev_sec), warm_offset, warm_frame)
        for offset, frame, tmin, tmax, prev_sec, warm_offset, warm_frame in walker.cut_points(
            header, src.buf, targets, lookback_ns
        )
    ]


def cut_after(
    src: Source, hdr: PcapHeader, at: Position, target: int, lookback_ns: int, end: int
) -> Cut | None:
    """:func:`cut_points` for one ``target``, walking from a reader's position ``at`` rather
    than from the first record, and only the bytes before ``end`` (what that reader sees).
    None where it finds no cut, or where the look-back may reach back before ``at`` or be
    measured from a record before it (those are not walked)."""
    walker = c_walk()
    if walker is None or not src.seekable or at.offset < 24:
        return None
    header = (hdr.endian == ">", hdr.record_size, MAX_CAPLEN, hdr.frac_ns)
    base = at.offset - 24  # the walk starts at byte 24 of what it is given
    with memoryview(src.buf) as whole, whole[base:end] as rest:
        found = walker.cut_points(header, rest, [target - base], lookback_ns)
    if not found:
        return None
    offset, frame, tmin, tmax, prev_sec, warm_offset, warm_frame = found[0]
    before = at.clock
    if warm_offset <= 24 or before.tmax > tmax:  # the look-back is measured from the latest
        return None
    earliest = min((t for t in (before.tmin, tmin) if t != NO_TIME), default=NO_TIME)
    clock = Clock(earliest, max(before.tmax, tmax), prev_sec if frame else before.prev_sec)
    return Cut(base + offset, at.frame + frame, clock, base + warm_offset, at.frame + warm_frame)


def _c_walk(hdr: PcapHeader, decoder: Decoder) -> Callable[..., tuple[int, ...]] | None:
    """The C walk bound to this file's format and decoder, or None where it does not apply."""
    walker = c_walk()
    if walker is None or hdr.linktype not in C_WALK_LINKTYPES:
        return None
    header = (
        hdr.endian == ">",
        hdr.record_size,
        MAX_CAPLEN,
        hdr.frac_ns,
        OUT_OF_ORDER_NS,
        BATCH,
        hdr.linktype,
    )
    return partial(walker_of(walker, decoder).walk, header)


def walker_of(walker: ModuleType, decoder: Decoder) -> Any:
    """The C walker of one read() with ``decoder`` (``_pcapscan.Walker``): its port rules and
    Payload parts, made once for every walk of the read."""
    rules = (decoder.sip_ports, decoder.ports is not None)
    return walker.Walker(rules, (Payload, decoder.file, "udp", decoder.pairs))
