"""The leading bytes of the files sipstats reads: compressions and capture formats, once.

The reader, the compression layer and the directory scan all ask this table, so a file the
reader accepts is never skipped by the scan (its own list once missed the modified pcap).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Callable
from typing import Any, Final, NamedTuple

#: An opener: (path or binary file object, "rb") -> a binary stream of the decompressed bytes.
Opener = Callable[..., Any]

#: Magic -> (name, opener).
COMPRESSIONS: Final[dict[bytes, tuple[str, Opener]]] = {
    b"\x1f\x8b": ("gzip", gzip.open),
    b"BZh": ("bz2", bz2.open),
    b"\xfd7zXZ\x00": ("xz", lzma.open),
}


class PcapMagic(NamedTuple):
    frac_ns: int
    """Nanoseconds per unit of a record's sub-second field."""
    format: str
    record_size: int
    """16, or 24 for Alexey Kuznetzov's modified pcap."""


#: Classic pcap magic numbers, read in either byte order.
PCAP: Final = {
    0xA1B2C3D4: PcapMagic(1000, "pcap", 16),
    0xA1B23C4D: PcapMagic(1, "pcap-ns", 16),
    0xA1B2CD34: PcapMagic(1000, "pcap", 24),
}

#: pcapng: block type of the Section Header Block, then its byte-order magic (offset 8).
PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"
PCAPNG_BYTE_ORDER: Final = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}

#: Bytes to read to tell every format above apart.
HEAD_BYTES: Final = 12


def compression(head: bytes) -> tuple[str, Opener] | None:
    """(name, opener) of the compression ``head`` starts with, or None."""
    for magic, found in COMPRESSIONS.items():
        if head.startswith(magic):
            return found
    return None


def decompressor(name: str) -> Opener:
    """The opener of the compression called ``name`` ('gzip', 'bz2' or 'xz')."""
    return next(opener for known, opener in COMPRESSIONS.values() if known == name)


def is_pcap(head: bytes) -> bool:
    """True when ``head`` starts with a classic pcap magic number, in either byte order."""
    return len(head) >= 4 and any(struct.unpack_from(e + "I", head)[0] in PCAP for e in "<>")


def is_pcapng(head: bytes) -> bool:
    return head[:4] == PCAPNG_SHB and head[8:12] in PCAPNG_BYTE_ORDER


def is_capture(head: bytes) -> bool:
    """True when ``head`` (uncompressed) starts a pcap or pcapng file."""
    return is_pcap(head) or is_pcapng(head)
