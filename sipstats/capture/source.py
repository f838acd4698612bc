"""Decode stage: capture file -> a window of bytes (mmap, or chunks of a decompressed stream).

Compression is recognised by magic bytes, never by file name. An uncompressed file is mapped
once and read in place; a compressed one is decompressed in chunks, so memory stays bounded
whatever the file size. Damaged compressed data keeps every byte decoded before the damage:
the decompressor is fed the file in pieces, and when a piece fails, the file is decoded again
up to that piece and then a byte at a time (:meth:`Source._salvage`), because a failing
decompression call loses all the output it had made.
"""

from __future__ import annotations

import io
import lzma
import mmap
import os
import zlib
from typing import BinaryIO, cast

from sipstats.capture.magic import compression, decompressor
from sipstats.errors import CaptureError

#: Decompressed bytes read per refill of a compressed stream.
CHUNK = 4 << 20
#: Mapped bytes read between two :meth:`Source.release` calls: the capture's pages count in
#: the resident set until then (32 MiB of them were the peak of decoding a large file).
RELEASE_STEP = 8 << 20
#: Compressed bytes handed to the decompressor at a time.
INPUT_STEP = 64 << 10
#: Most bytes recovered from the piece where damage was found (bounds a damaged bomb).
SALVAGE_LIMIT = 8 << 20

_DAMAGE = (OSError, EOFError, lzma.LZMAError, zlib.error)


class _Feed:
    """A compressed file handed out in pieces of at most :data:`INPUT_STEP` bytes, and of one
    byte from offset ``careful_from`` on; ``pos`` is how far it has been read."""

    def __init__(self, fh: io.BufferedIOBase, careful_from: int = -1) -> None:
        self.fh = fh
        self.careful_from = careful_from
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        step = INPUT_STEP if size < 0 else min(size, INPUT_STEP)
        if 0 <= self.careful_from <= self.pos:
            step = 1
        elif self.careful_from > self.pos:
            step = min(step, self.careful_from - self.pos)
        data = self.fh.read(step)
        self.pos += len(data)
        return data


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
        feed: _Feed | None = None,
    ) -> None:
        self.path = path
        self.compression = compression
        self.buf: bytes | mmap.mmap = buf
        self.base = 0
        self.error = ""
        """Why the stream ended early (damaged compressed data), or ''."""
        self._stream = stream
        self._closers = closers
        self._feed = feed
        self._produced = 0
        """Decompressed bytes handed out so far."""
        self._released = 0
        """Mapped bytes let go so far (:meth:`release`)."""

    @property
    def seekable(self) -> bool:
        """True when offsets can be jumped to directly (uncompressed files)."""
        return not self.compression

    def more(self, keep_from: int) -> bool:
        """Drop ``buf[:keep_from]`` and append the next chunk; False at the end of the data.

        A cut or damaged file keeps every byte decoded up to the cut or the damage.
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
        except _DAMAGE as exc:
            if not isinstance(exc, EOFError):  # a cut file loses nothing at its cut
                rescued = self._salvage(self._produced + got)
                parts.append(rescued)
                got += len(rescued)
            at = self._produced + got
            self.error = f"{self.compression} data damaged after decompressed byte {at}: {exc}"
            self._stream = None
        self._produced += got
        if not parts or not got:
            return False
        self.buf = bytes(self.buf[keep_from:]) + b"".join(parts)
        self.base += keep_from
        return True

    def _salvage(self, produced: int) -> bytes:
        """What decodes after the first ``produced`` bytes before the damage that just stopped
        the stream: decode again, a byte at a time over the last pieces read."""
        feed = self._feed
        if feed is None:
            return b""
        fh = feed.fh
        fh.seek(0)
        retry = _Feed(fh, careful_from=max(0, feed.pos - 2 * INPUT_STEP))
        stream = decompressor(self.compression)(cast(BinaryIO, retry), "rb")
        skip, out, kept = produced, [], 0
        try:
            while kept < SALVAGE_LIMIT:
                piece = stream.read1(CHUNK)
                if not piece:
                    break
                cut = min(skip, len(piece))
                skip -= cut
                if cut < len(piece):
                    out.append(piece[cut:])
                    kept += len(piece) - cut
        except _DAMAGE:
            pass
        return b"".join(out)[:SALVAGE_LIMIT]

    def release(self, upto: int) -> None:
        """Let the OS drop mapped pages before ``upto``: resident memory stays flat however
        large the file (the pages stay in the page cache, so nothing is read twice)."""
        end = upto - upto % mmap.PAGESIZE
        if (
            isinstance(self.buf, mmap.mmap)
            and hasattr(mmap, "MADV_DONTNEED")
            and end > self._released
        ):
            # from where the last call stopped: the kernel walks every page of the range
            self.buf.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end

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
    compressed = compression(head)
    if compressed is not None:
        name, opener = compressed
        fh.seek(0)
        feed = _Feed(fh)
        stream = opener(cast(BinaryIO, feed), "rb")
        src = Source(path, name, b"", stream, [fh, stream], feed)
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
