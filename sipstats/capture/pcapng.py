"""Decode stage: pcapng blocks -> frames handed to the decoder (draft-ietf-opsawg-pcapng).

Blocks read: Section Header (byte order, resets the interfaces), Interface Description
(link type, snaplen, ``if_tsresol``, ``if_tsoffset``), Enhanced Packet, Simple Packet and the
obsolete Packet Block. Every other block (comments, statistics, name resolution, custom) is
skipped by its length. Frame numbers count packet blocks, as Wireshark does.

Damage: a block cut by the end of the data, or a block length that cannot be (under 12, not a
multiple of 4, over 16 MiB), is reported with its offset and ends the reading; blocks carry no
marker to resynchronise on, unlike pcap records whose timestamps can be checked. A section
keeps at most :data:`MAX_INTERFACES` interfaces: the packets of later ones are counted
(:data:`INTERFACE_CAP`) and a file error says where the first was declared.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from sipstats.capture import pcap
from sipstats.capture.decode import (
    NO_TIME,
    OUT_OF_ORDER,
    OUT_OF_ORDER_NS,
    TIME_MAX_NS,
    TIME_MIN_NS,
    TIME_OUT_OF_RANGE,
    UNDECODABLE,
    Decoder,
)
from sipstats.capture.linklayer import link_name
from sipstats.capture.magic import PCAPNG_BYTE_ORDER, PCAPNG_SHB
from sipstats.capture.pcap import PacketFn
from sipstats.capture.records import Payload
from sipstats.capture.source import RELEASE_STEP, Source
from sipstats.capture.summary import InputSummary

SHB = int.from_bytes(PCAPNG_SHB)  # the same in both byte orders
IDB = 1
PB = 2
SPB = 3
EPB = 6
#: A block longer than this is damage (Wireshark's limit is 16 MiB for packet blocks).
MAX_BLOCK = 16 << 20
#: Interfaces one section may declare; the packets of any later one are skipped and counted.
#: Capture tools write one per interface captured on (mergecap keeps one per distinct interface
#: of the files merged), so real captures stay far below; the cap bounds what a crafted file of
#: interface blocks can make the readers keep (a spec each, in Python and in the C walk).
MAX_INTERFACES = 4096
#: Anomaly reason for a packet on an interface declared beyond :data:`MAX_INTERFACES`.
INTERFACE_CAP = "interface cap: packet skipped"


class Interface(NamedTuple):
    linktype: int
    snaplen: int
    mul: int
    div: int
    """Time in ns = (raw time * mul) // div + offset_ns."""
    offset_ns: int


def _interface(body: bytes, endian: str) -> Interface:
    """Parse an IDB body (after type and length, before the trailing length).

    Raises ``struct.error`` or ``ValueError`` when the body or an option is cut short.
    """
    linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", body)
    units = 1_000_000  # if_tsresol default: microseconds
    offset_s = 0
    pos = 8
    while pos + 4 <= len(body):
        code, size = struct.unpack_from(endian + "HH", body, pos)
        if pos + 4 + size > len(body):
            raise ValueError(f"option {code} runs past the block")
        value = body[pos + 4 : pos + 4 + size]
        if code == 0:  # opt_endofopt
            break
        if code == 9 and size >= 1:
            # if_tsresol: MSB clear = 10^-n s, set = 2^-n s.
            units = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
        elif code == 14 and size == 8:
            (offset_s,) = struct.unpack_from(endian + "q", value)
        pos += 4 + ((size + 3) & ~3)
    if 1_000_000_000 % units == 0:
        mul, div = 1_000_000_000 // units, 1
    else:
        mul, div = 1_000_000_000, units
    return Interface(linktype, snaplen, mul, div, offset_s * 1_000_000_000)


def _time(ifc: Interface, raw: int) -> int:
    """A packet's time in ns since 1970 (any size: the caller checks it fits int64)."""
    return (raw * ifc.mul) // ifc.div + ifc.offset_ns


def packet_blocks(buf: Any, offer: Callable[[int, int], None]) -> None:
    """Call ``offer(block offset, frame number)`` for every packet block of an mmap'd file."""
    off, frame, endian = 0, 0, "<"
    n = len(buf)
    while off + 12 <= n:
        if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            endian = PCAPNG_BYTE_ORDER.get(bytes(buf[off + 8 : off + 12]), endian)
        btype, blen = struct.unpack_from(endian + "II", buf, off)
        if blen < 12 or blen % 4 or off + blen > n:
            return
        if btype in (EPB, SPB, PB):
            frame += 1
            offer(off, frame)
        off += blen


class PcapngReader:
    """Walks blocks from the start of the file; decodes packet blocks starting in [start, stop)."""

    def __init__(self, src: Source, summary: InputSummary, start: int) -> None:
        self.src = src
        self.summary = summary
        self.start = start
        self.frame = 0
        self.offset = 0

    def read(
        self,
        packet: PacketFn,
        out: list[Payload],
        stop: int,
        decoder: Decoder | None = None,
        intake: pcap.Intake | None = None,
    ) -> Iterator[list[Payload]]:
        """Call ``packet`` on each packet block starting before ``stop``; yield what lands in
        ``out`` in lists, as :meth:`PcapReader.read` does. With ``decoder`` (whose ``packet``
        and ``out`` these are), runs of Enhanced Packet Blocks of plain UDP are read by the C
        walk, with an ``intake`` into its table, as in :meth:`PcapReader.read`."""
        c_walk = pcap.c_walk() if decoder is not None else None
        into = () if c_walk is None or intake is None else (intake,)
        walker = None if c_walk is None or decoder is None else pcap.walker_of(c_walk, decoder)
        walk_header = _walk_header("<")
        src, summary, start = self.src, self.summary, self.start
        buf = src.buf
        n = len(buf)
        off = 0
        endian = "<"
        block = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        ifaces: list[Interface] = []
        declared = 0  # interfaces of the section, those over the cap included
        frame = 0
        decoded = 0
        consumed = 0
        last_ts = 0
        tmin = tmax = NO_TIME
        release_at = off + RELEASE_STEP
        while src.base + off < stop:
            if walker is not None and decoded:
                if into and out:  # the messages Python found come first
                    yield out[:]
                    out.clear()
                until = min(stop - src.base, release_at + 1)
                off, frame, tmin, tmax, last_ts, rows, copies = walker.walk_pcapng(
                    walk_header, buf, off, until, frame, tmin, tmax, last_ts, out, *into
                )
                summary.sip_messages += rows
                summary.duplicates += copies
                if len(out) >= pcap.BATCH:
                    yield out[:]
                    out.clear()
                if src.base + off >= stop:
                    break
            if off + 12 > n:
                if src.more(off):
                    buf, off = src.buf, 0
                    n = len(buf)
                    continue
                if off < n:
                    summary.errors.append(
                        f"truncated inside a block header at byte offset {src.base + off} "
                        f"(after packet {frame})"
                    )
                break
            btype, blen = block(buf, off)
            if btype == SHB:
                order = bytes(buf[off + 8 : off + 12])
                if order not in PCAPNG_BYTE_ORDER:
                    summary.errors.append(
                        f"section header at byte offset {src.base + off} has no byte-order "
                        "magic; reading stopped"
                    )
                    break
                endian = PCAPNG_BYTE_ORDER[order]
                block = struct.Struct(endian + "II").unpack_from
                epb = struct.Struct(endian + "IIIII").unpack_from
                btype, blen = block(buf, off)
                ifaces = []
                declared = 0
                walk_header = _walk_header(endian)
                if walker is not None:
                    walker.clear_interfaces()
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                summary.errors.append(
                    f"block at byte offset {src.base + off} (after packet {frame}) has an "
                    f"impossible length {blen}; reading stopped"
                )
                break
            nxt = off + blen
            if nxt > n:
                if src.more(off):
                    buf, off = src.buf, 0
                    n = len(buf)
                    continue
                summary.errors.append(
                    f"truncated inside a block of type {btype} at byte offset {src.base + off} "
                    f"(packet {frame + 1} if it was one): {n - off} of {blen} bytes present"
                )
                break
            if btype in (EPB, SPB, PB):
                frame += 1
                here = src.base + off
                if here >= start:
                    if not decoded:
                        decoded = frame
                        consumed = here
                    if btype == EPB:
                        iface, hi, lo, caplen, origlen = epb(buf, off + 8)
                        data = off + 28
                    elif btype == PB:
                        iface, _drops, hi, lo, caplen, origlen = struct.unpack_from(
                            endian + "HHIIII", buf, off + 8
                        )
                        data = off + 28
                    else:
                        iface, hi, lo = 0, -1, 0
                        (origlen,) = struct.unpack_from(endian + "I", buf, off + 8)
                        data = off + 12
                        caplen = max(0, min(origlen, blen - 16))
                        if ifaces and ifaces[0].snaplen:
                            caplen = min(caplen, ifaces[0].snaplen)
                    ifc = ifaces[iface] if iface < len(ifaces) else None
                    # A Simple Packet Block (hi < 0) carries no time: it keeps the last one.
                    ts = last_ts if hi < 0 or ifc is None else _time(ifc, hi << 32 | lo)
                    if ifc is None and iface < declared:
                        summary.anomaly(INTERFACE_CAP, frame, f"interface {iface}")
                    elif ifc is None:
                        summary.anomaly(
                            UNDECODABLE, frame, f"packet on undeclared interface {iface}"
                        )
                    elif data + caplen > nxt - 4:
                        summary.anomaly(
                            UNDECODABLE, frame, f"captured length {caplen} beyond its block"
                        )
                    elif not TIME_MIN_NS <= ts <= TIME_MAX_NS:
                        summary.anomaly(
                            TIME_OUT_OF_RANGE, frame, f"{ts // 1_000_000_000} s from 1970"
                        )
                    else:
                        if hi >= 0:
                            last_ts = ts
                            if ts > tmax:
                                tmax = ts
                                if tmin == NO_TIME:
                                    tmin = ts
                            else:
                                tmin = min(tmin, ts)
                                if ts < tmax - OUT_OF_ORDER_NS:
                                    summary.anomaly(
                                        OUT_OF_ORDER, frame, f"{(tmax - ts) / 1e9:.3f} s back"
                                    )
                        try:
                            packet(
                                buf, data, data + caplen, ifc.linktype, ts, frame, caplen < origlen
                            )
                        except (IndexError, ValueError, struct.error) as exc:
                            summary.anomaly(UNDECODABLE, frame, f"{type(exc).__name__}: {exc}")
                        if len(out) >= pcap.BATCH:
                            yield out[:]
                            out.clear()
            elif btype == IDB and declared < MAX_INTERFACES:
                declared += 1
                try:
                    ifc = _interface(bytes(buf[off + 8 : nxt - 4]), endian)
                except (struct.error, ValueError) as exc:
                    summary.errors.append(
                        f"interface description block at byte offset {src.base + off} cut short"
                        f" ({exc})"
                    )
                    ifc = Interface(0xFFFF, 0, 1000, 1, 0)
                ifaces.append(ifc)
                if walker is not None:
                    walker.add_interface(_walk_spec(ifc))
                name = link_name(ifc.linktype)
                if src.base + off < stop and name not in summary.link_types:
                    summary.link_types.append(name)
            elif btype == IDB:
                declared += 1
                if declared == MAX_INTERFACES + 1 and start <= src.base + off < stop:
                    summary.errors.append(
                        f"more than {MAX_INTERFACES} interfaces in one section (the first over "
                        f"at byte offset {src.base + off}): the packets of the others are skipped"
                    )
            off = nxt
            if off > release_at:
                src.release(off)
                release_at = off + RELEASE_STEP
                if decoded:  # summary totals grow as we go (progress)
                    summary.packets += frame - decoded + 1
                    summary.bytes += src.base + off - consumed
                    decoded, consumed = frame + 1, src.base + off
                if into:  # progress, however few messages Python found
                    yield out[:]
                    out.clear()
        if out:
            yield out[:]
            out.clear()
        if decoded:
            summary.packets += frame - decoded + 1
            summary.bytes += src.base + off - consumed
        if tmin != NO_TIME:
            summary.see_time(tmin)
            summary.see_time(tmax)
        self.frame = frame
        self.offset = src.base + off


def _walk_header(endian: str) -> tuple[bool, int, int, int]:
    """The C walk's view of a section: its byte order and the limits it checks."""
    return (endian == ">", MAX_BLOCK, OUT_OF_ORDER_NS, pcap.BATCH)


def _walk_spec(ifc: Interface) -> tuple[int, int, int] | None:
    """How the C walk reads an interface's packets: its link type, ns per time unit and offset;
    None when it cannot (a link type it does not know, a time unit that is not a whole number
    of ns, an offset beyond its 64-bit times) and Python reads them."""
    if (
        ifc.div == 1
        and ifc.linktype in pcap.C_WALK_LINKTYPES
        and TIME_MIN_NS <= ifc.offset_ns <= TIME_MAX_NS
    ):
        return (ifc.linktype, ifc.mul, ifc.offset_ns)
    return None
