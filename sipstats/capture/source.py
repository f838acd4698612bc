"""Decode stage: capture file -> a window of bytes (mmap, or chunks of a decompressed stream).

Compression is recognised by magic bytes, never by file name. An uncompressed file is mapped
once and read in place; a compressed one is decompressed in chunks, so memory stays bounded
whatever the file size.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import os
import zlib

from sipstats.errors import CaptureError

#: Decompressed bytes read per refill of a compressed stream.
CHUNK = 4 << 20
#: Mapped bytes read between two :meth:`Source.release` calls.
RELEASE_STEP = 32 << 20

_COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)


class Source:
    """A window ``buf`` on the capture bytes; ``base`` is the stream offset of ``buf[0]``.

    Readers index ``buf`` directly (``struct.unpack_from``) and call :meth:`more` when a record
    runs past its end. For an uncompressed file ``buf`` is the whole mmap and ``more`` never
    has anything to add.
    """

    def __init__(
        self,
        path: str,
        compression: str,
        buf: bytes | mmap.mmap,
        stream: io.BufferedIOBase | None,
        closers: list[object],
    ) -> None:
        self.path = path
        self.compression = compression
        self.buf: bytes | mmap.mmap = buf
        self.base = 0
        self.error = ""
        """Why the stream ended early (damaged compressed data), or ''."""
        self._stream = stream
        self._closers = closers

    @property
    def seekable(self) -> bool:
        """True when offsets can be jumped to directly (uncompressed files)."""
        return not self.compression

    def more(self, keep_from: int) -> bool:
        """Drop ``buf[:keep_from]`` and append the next chunk; False at the end of the data.

        ``read1`` hands over what was decompressed before a damaged or missing end, so a cut
        file keeps every record up to the cut.
        """
        if self._stream is None:
            return False
        parts: list[bytes] = []
        got = 0
        try:
            while got < CHUNK:
                piece = self._stream.read1(CHUNK - got)
                if not piece:
                    self._stream = None
                    break
                parts.append(piece)
                got += len(piece)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            at = self.base + len(self.buf) + got
            self.error = f"{self.compression} data damaged after decompressed byte {at}: {exc}"
            self._stream = None
        if not parts:
            return False
        self.buf = bytes(self.buf[keep_from:]) + b"".join(parts)
        self.base += keep_from
        return True

    def release(self, upto: int) -> None:
        """Let the OS drop mapped pages before ``upto``: resident memory stays flat however
        large the file (the pages stay in the page cache, so nothing is read twice)."""
        if isinstance(self.buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self.buf.madvise(mmap.MADV_DONTNEED, 0, upto - upto % mmap.PAGESIZE)

    def close(self) -> None:
        for obj in reversed(self._closers):
            obj.close()  # type: ignore[attr-defined]
        self._closers = []


def open_source(path: str) -> Source:
    """Open ``path`` for reading; :class:`CaptureError` when it is unreadable or empty."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by Source.close
    except OSError as exc:
        raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
    except OSError as exc:
        fh.close()
        raise CaptureError(path, f"cannot read: {exc.strerror or exc}") from None
    if not head:
        fh.close()
        raise CaptureError(path, "empty file (0 bytes), not a capture")
    # The streams stay open after this function returns; Source.close closes them.
    for magic, name in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            fh.seek(0)
            stream: io.BufferedIOBase
            if name == "gzip":
                stream = gzip.GzipFile(fileobj=fh, mode="rb")
            elif name == "bz2":
                stream = bz2.BZ2File(fh, mode="rb")
            else:
                stream = lzma.LZMAFile(fh, mode="rb")  # noqa: SIM115
            src = Source(path, name, b"", stream, [fh, stream])
            src.more(0)
            if not src.buf:
                src.close()
                why = f": {src.error}" if src.error else ""
                raise CaptureError(path, f"{name} file holds no data{why}")
            return src
    try:
        mm = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        fh.close()
        raise CaptureError(path, f"cannot map: {exc}") from None
    return Source(path, "", mm, None, [fh, mm])
