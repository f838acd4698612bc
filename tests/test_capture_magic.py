"""One table of file magics (``capture/magic.py``): what the reader accepts, a directory scan
finds, whatever the file is called and however it is compressed."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from pathlib import Path

import pytest

from sipstats import read_capture
from sipstats.capture import magic
from tests.capture_builders import T0_NS, ether, invite, ip_udp, pcap_bytes


def _modified_pcap() -> bytes:
    """Alexey Kuznetzov's modified pcap: magic 0xa1b2cd34, 24-byte record headers."""
    frame = ether(ip_udp(invite()))
    sec, usec = divmod(T0_NS // 1000, 1_000_000)
    header = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    record = struct.pack("<IIII", sec, usec, len(frame), len(frame)) + struct.pack("<IHBx", 0, 0, 0)
    return header + record + frame


def _nanosecond_pcap() -> bytes:
    return pcap_bytes([(T0_NS, ether(ip_udp(invite())))], nano=True)


#: File name (no capture suffix: found by magic) -> its bytes.
FILES = {
    "modified.dump0": _modified_pcap,  # the scan's own list once missed this pcap variant
    "modified.bin.gz": lambda: gzip.compress(_modified_pcap()),
    "nanoseconds.trace.bz2": lambda: bz2.compress(_nanosecond_pcap()),
    "nanoseconds.trace.xz": lambda: lzma.compress(_nanosecond_pcap()),
}


@pytest.mark.parametrize("name", FILES)
def test_a_directory_scan_finds_every_format_the_reader_reads(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(FILES[name]())
    (tmp_path / "notes.txt").write_text("not a capture")
    capture = read_capture(tmp_path)
    assert [Path(s.file).name for s in capture.inputs] == [name]
    assert len(capture.messages) == 1


def test_one_magic_table_tells_formats_and_compressions_apart() -> None:
    assert magic.is_capture(_modified_pcap()[: magic.HEAD_BYTES])
    assert not magic.is_capture(b"GET / HTTP/1.1\r\n"[: magic.HEAD_BYTES])
    names = [
        magic.compression(pack(b"x"))[0] for pack in (gzip.compress, bz2.compress, lzma.compress)
    ]  # type: ignore[index]
    assert names == ["gzip", "bz2", "xz"]
