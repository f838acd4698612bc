"""Capture stage: TCP segments -> one :class:`Payload` per SIP message (stream reassembly).

Each direction of a connection is its own byte stream, reassembled in sequence order and cut
into messages by :mod:`sipstats.capture.framing` (RFC 3261 §18.3) or, after an RFC 7118
WebSocket upgrade, by WebSocket frames. The decisions, each with a test:

* **Time and frame.** ``ts_ns`` is the time of the segment that *completed* the message, as
  tshark (and so the corpus truth) reports it: a message exists for the receiver only once its
  last byte arrived, so delays are measured from there. ``frame`` is the segment that carried
  the message's *first* byte; Wireshark shows the message on the last segment ("Reassembled
  PDU in frame N") and lists the first one among the segments.
* **Sequence order.** SYN sets the initial sequence number; without one (capture started
  mid-connection) the first data segment anchors the stream. Sequence numbers are compared
  modulo 2**32 (wrap-around). The first copy of every byte wins: retransmitted and
  overlapping segments add nothing, so no message is emitted twice. Out-of-order segments
  wait (at most :data:`OOO_SEGMENTS` / :data:`OOO_BYTES`); when a gap never fills, the bytes
  are declared lost (anomaly ``TCP gap``, one per gap, including the message it cut) and the
  stream resynchronises at the next start-line. Held segments that overflow those limits
  while they all lie more than :data:`WINDOW` ahead are far outside any window: they are
  dropped (anomaly ``TCP data outside the window``) and the stream keeps waiting for its next
  in-order byte; only when that happens twice in a row with nothing in order between does the
  stream jump (a real capture loss). FIN/RST (or :meth:`TcpReassembler.flush` at the end of
  the file) close a direction; one silent for :data:`IDLE_NS` with no bytes pending is
  forgotten, one silent for :data:`IDLE_HOLDING_NS` is closed with what it holds.
* **Memory.** Besides the per-stream limits, all streams together hold at most
  :data:`MAX_BUFFERED` bytes: over it, the oldest streams holding bytes are dropped (anomaly
  ``TCP buffer cap: stream dropped``, detail: bytes dropped) and ignored until they close.
* **Recognising SIP.** A direction seen from its SYN is SIP when its first line is a
  start-line; one picked up mid-connection when a start-line begins a line within
  :data:`PROBE_SEGMENTS` segments (at the arbitrary first byte itself only a status line or
  a registered method counts: ``NVITE sip:...`` is the tail of an INVITE). This holds on any
  port. On a
  port that is not a SIP port (``ports``, else 5060/5061) the first message must also carry
  Call-ID and CSeq (:func:`framing.looks_like_sip`), so an HTTP response starting
  ``SIP/2.0 200 ok`` is not SIP. Traffic on a SIP port that is not SIP (HTTP on 5060) is
  counted once per connection in ``summary.unsupported['non-SIP TCP on a SIP port']``; other
  non-SIP connections are ignored without buffering.
* **TLS** on a SIP port (a TLS record header first) is counted once per connection in
  ``summary.not_decodable['tls']`` and ignored. TLS on other ports (HTTPS) is not SIP.
* **Content-Length.** Mandatory on streams (RFC 3261 §18.3). Missing: anomaly ``TCP message
  without Content-Length``, and the body runs to the next start-line (so a body is not lost
  and an empty body costs nothing). Not a number: the same framing without an anomaly here,
  because the SIP parser sees the header and counts the bad value itself. Over
  :data:`MAX_MESSAGE`: anomaly ``TCP message over size cap`` and its bytes are skipped.
* **Damage.** Bytes before the first start-line of a stream picked up mid-message, or junk
  between messages: anomaly ``TCP bytes outside a SIP message`` (detail: how many). A stream
  that ends inside a message: ``TCP stream ended inside a message``. A segment cut by the
  snaplen: the message it cut is emitted with ``truncated=True`` for the parser to count.
* **Keep-alives.** CRLF runs between messages are RFC 5626 §3.5.1 keep-alives
  (``summary.keepalives``), never errors.
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from typing import Final

from sipstats.capture import framing, websocket
from sipstats.capture.ports import sip_ports
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04

MAX_MESSAGE: Final = 1 << 20
"""Largest message (header block or body) buffered; larger ones are counted and skipped."""
MAX_HEADER: Final = 64 << 10
"""Largest header block waited for before the bytes are declared not SIP."""
PROBE_SEGMENTS: Final = 8
PROBE_BYTES: Final = 16 << 10
"""How much of a stream picked up mid-connection is searched for a first start-line."""
OOO_SEGMENTS: Final = 64
OOO_BYTES: Final = 1 << 20
"""Out-of-order data held while waiting for a gap to fill."""
IDLE_NS: Final = 300 * 10**9
"""A direction silent this long (capture time) with no bytes pending is forgotten."""
IDLE_HOLDING_NS: Final = 3600 * 10**9
"""A direction silent this long is closed even with bytes pending (they are counted)."""
MAX_BUFFERED: Final = 32 << 20
"""Bytes held over all streams of a file (buffers and out-of-order segments)."""
WINDOW: Final = 256 << 10
"""Held data starting further ahead than this is outside any plausible receive window."""
_CAP_CHECK: Final = 1 << 20
"""Payload bytes fed between two counts of what all streams hold."""
_SWEEP_NS: Final = 60 * 10**9

_MASK: Final = 0xFFFFFFFF
_HALF: Final = 1 << 31
_WRAP: Final = 1 << 32

_PROBE, _SIP, _WS_WAIT, _WS, _IGNORE = range(5)

_GAP = "TCP gap"
_OUTSIDE = "TCP bytes outside a SIP message"
_ENDED = "TCP stream ended inside a message"
_NO_LENGTH = "TCP message without Content-Length"
_TOO_BIG = "TCP message over size cap"
_NOT_SIP = "non-SIP TCP on a SIP port"
_CAPPED = "TCP buffer cap: stream dropped"
_OUT_OF_WINDOW = "TCP data outside the window"

_Key = tuple[str, int, str, int]
_Seg = tuple[int, int, int, bool]
"""(stream offset just past the segment's bytes, ts_ns, frame, truncated)."""


class _Stream:
    """One direction of one connection: unframed bytes and how far it has got."""

    __slots__ = (
        "buf",
        "buf_off",
        "discard",
        "far_dropped",
        "flagged",
        "from_start",
        "head_off",
        "hole",
        "isn",
        "last_ts",
        "mode",
        "next_seq",
        "ooo",
        "ooo_bytes",
        "quiet",
        "scan_off",
        "segs",
        "sip_port",
        "skip_frame",
        "skipped",
        "verified",
    )

    def __init__(self, sip_port: bool) -> None:
        self.mode = _PROBE
        self.sip_port = sip_port
        self.verified = sip_port
        """SIP port, or a first message with Call-ID and CSeq was seen."""
        self.isn = -1
        self.next_seq = -1
        """Sequence number of the next in-order byte; -1 until the stream is anchored."""
        self.from_start = False
        self.head_off = -1
        """Stream offset where the data begins at an arbitrary byte (no SYN, after a gap)."""
        self.buf = bytearray()
        self.buf_off = 0
        """Stream offset of ``buf[0]``."""
        self.segs: deque[_Seg] = deque()
        self.ooo: list[tuple[int, bytes, int, int, bool]] = []
        self.ooo_bytes = 0
        self.last_ts = 0
        self.skipped = 0
        self.skip_frame = 0
        self.discard = 0
        self.scan_off = 0
        """Stream offset from which to look for the start-line ending a body without length."""
        """Body bytes of an oversized message still to be skipped."""
        self.quiet = False
        """Bytes skipped now belong to damage already counted (a gap or a snaplen cut)."""
        self.hole = False
        """A snaplen-truncated segment left bytes missing after the buffer's end."""
        self.flagged = False
        """This connection was already counted as TLS or as non-SIP."""
        self.far_dropped = False
        """Held data far ahead was dropped and nothing in order has arrived since."""

    @property
    def end_off(self) -> int:
        return self.buf_off + len(self.buf)


class TcpReassembler:
    """Per-connection TCP reassembly and SIP framing for one capture file.

    The reader calls :meth:`feed` for every TCP segment in file order and :meth:`flush` at the
    end of the file; both return the SIP messages completed by that call.
    """

    def __init__(self, file: str, summary: InputSummary, ports: frozenset[int] | None) -> None:
        self.file = file
        self.summary = summary
        self._ports = ports
        self._sip_ports = sip_ports(ports)
        self._streams: dict[_Key, _Stream] = {}
        self._swept = 0
        self._fed = 0
        """Payload bytes fed since all streams' holdings were last counted."""

    def feed(
        self,
        ts_ns: int,
        frame: int,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        seq: int,
        flags: int,
        payload: bytes,
        truncated: bool,
    ) -> list[Payload]:
        """Add one segment; return the messages it completed (often none, sometimes several)."""
        out: list[Payload] = []
        ports = self._ports
        if ports is not None and sport not in ports and dport not in ports:
            return out
        if ts_ns - self._swept > _SWEEP_NS:
            self._sweep(ts_ns, out)
        key = (src, sport, dst, dport)
        st = self._streams.get(key)
        if st is None:
            if not payload and not flags & SYN:
                return out
            sip = self._sip_ports
            st = self._streams[key] = _Stream(sport in sip or dport in sip)
        if flags & SYN:
            isn = (seq + 1) & _MASK
            if st.isn != isn:
                if st.next_seq >= 0:  # the 4-tuple is reused by a new connection
                    self._close(key, st, out)
                    st = self._streams[key] = _Stream(st.sip_port)
                st.isn = st.next_seq = isn
                st.from_start = True
            seq = isn  # data on a SYN (TCP Fast Open) follows the SYN's sequence number
        st.last_ts = ts_ns
        if st.mode == _IGNORE:
            if flags & (FIN | RST):
                del self._streams[key]
            return out
        if payload:
            if st.next_seq < 0:
                st.next_seq = seq
                st.head_off = st.end_off
            delta = (seq - st.next_seq) & _MASK
            if delta >= _HALF:
                delta -= _WRAP
            self._add(key, st, delta, payload, ts_ns, frame, truncated, out)
            self._fed += len(payload)
            if self._fed > _CAP_CHECK:
                self._fed = 0
                self._cap(frame)
        if flags & (FIN | RST):
            self._close(key, st, out)
            self._streams.pop(key, None)
        return out

    def flush(self) -> list[Payload]:
        """End of file: frame what can be framed, count what cannot, forget every stream."""
        out: list[Payload] = []
        for key, st in list(self._streams.items()):
            self._close(key, st, out)
        self._streams.clear()
        out.sort(key=itemgetter(0, 2))
        return out

    # -- sequence space ---------------------------------------------------------------------

    def _add(
        self,
        key: _Key,
        st: _Stream,
        delta: int,
        payload: bytes,
        ts_ns: int,
        frame: int,
        truncated: bool,
        out: list[Payload],
    ) -> None:
        """Place a segment ``delta`` bytes after the next expected byte (negative: old data)."""
        if delta < 0:
            if delta + len(payload) <= 0:
                return  # a retransmission of bytes we already have: the first copy wins
            payload = payload[-delta:]
            delta = 0
        if delta > 0 and st.hole:
            # The bytes the snaplen cut off are never coming: jump over them now.
            st.ooo.append((st.end_off + delta, payload, ts_ns, frame, truncated))
            self._skip_gap(key, st, out)
        elif delta == 0:
            st.far_dropped = False
            self._append(st, payload, ts_ns, frame, truncated)
            if st.ooo:
                self._drain_ooo(st)
            self._process(key, st, out, final=False)
        else:
            st.ooo.append((st.end_off + delta, payload, ts_ns, frame, truncated))
            st.ooo_bytes += len(payload)
            if len(st.ooo) > OOO_SEGMENTS or st.ooo_bytes > OOO_BYTES:
                nearest = min(item[0] for item in st.ooo) - st.end_off
                if nearest > WINDOW and not st.far_dropped:
                    self.summary.anomaly(
                        _OUT_OF_WINDOW, frame, f"{st.ooo_bytes} bytes {nearest} bytes ahead"
                    )
                    st.ooo = []
                    st.ooo_bytes = 0
                    st.far_dropped = True
                else:
                    self._skip_gap(key, st, out)

    @staticmethod
    def _append(st: _Stream, payload: bytes, ts_ns: int, frame: int, truncated: bool) -> None:
        st.buf += payload
        st.next_seq = (st.next_seq + len(payload)) & _MASK
        st.segs.append((st.end_off, ts_ns, frame, truncated))
        if truncated:
            st.hole = True

    def _drain_ooo(self, st: _Stream) -> None:
        """Append every held segment that has become contiguous; keep the rest."""
        st.ooo.sort(key=itemgetter(0))
        rest = 0
        for off, payload, ts_ns, frame, truncated in st.ooo:
            nxt = st.end_off
            if off > nxt:
                break
            rest += 1
            if off + len(payload) > nxt:
                self._append(st, payload[nxt - off :], ts_ns, frame, truncated)
        del st.ooo[:rest]
        st.ooo_bytes = sum(len(item[1]) for item in st.ooo)

    def _skip_gap(self, key: _Key, st: _Stream, out: list[Payload]) -> None:
        """Give up on the bytes before the first held segment: frame what we have, jump."""
        st.ooo.sort(key=itemgetter(0))
        first_off, _, _, first_frame, _ = st.ooo[0]
        lost = first_off - st.end_off
        snaplen = st.hole
        self._process(key, st, out, final=False)
        if st.mode == _IGNORE:
            return
        if st.mode != _PROBE:  # a stream still being probed just drops what it had
            self._process(key, st, out, final=True, cause="snaplen" if snaplen else "gap")
            if st.mode == _IGNORE:
                return
        if not snaplen and st.mode != _PROBE:
            self.summary.anomaly(_GAP, first_frame, f"{lost} bytes never captured")
        st.next_seq = (st.next_seq + lost) & _MASK
        st.discard = max(0, st.discard - lost)
        st.buf.clear()
        st.segs.clear()
        st.buf_off = st.head_off = first_off
        st.hole = False
        st.quiet = True
        if st.mode == _WS:  # WebSocket frames cannot be resynchronised
            self._ignore(st)
            return
        self._drain_ooo(st)
        self._process(key, st, out, final=False)

    # -- framing ----------------------------------------------------------------------------

    def _process(
        self, key: _Key, st: _Stream, out: list[Payload], *, final: bool, cause: str = "close"
    ) -> None:
        """Cut whatever complete messages the buffer holds; ``final``: no more bytes will come."""
        mode = st.mode
        if mode == _SIP:
            self._drain_sip(key, st, out, final, cause)
        elif mode == _PROBE:
            self._probe(key, st, out, final, cause)
        elif mode == _WS:
            self._drain_ws(key, st, out, final, cause)
        elif mode == _WS_WAIT and (final or len(st.buf) > PROBE_BYTES):
            self._ignore(st)

    def _probe(self, key: _Key, st: _Stream, out: list[Payload], final: bool, cause: str) -> None:
        """Decide what a new stream carries: SIP, TLS, a WebSocket upgrade, or something else."""
        buf = st.buf
        n = len(buf)
        i = 0
        while i < n and buf[i] in (13, 10):
            i += 1
        if i == n:  # only CRLF so far: keep-alives (RFC 5626) on a SIP port
            if st.sip_port:
                st.mode = _SIP
                self._drain_sip(key, st, out, final, cause)
            return
        b0 = buf[i]
        if 0x14 <= b0 <= 0x17:  # TLS record: handshake, alert, change cipher spec, data
            if n - i < 3 and not final:
                return
            if n - i >= 3 and buf[i + 1] == 3 and buf[i + 2] <= 4:
                if st.sip_port and not self._connection_flagged(key, st):
                    self.summary.not_decodable["tls"] += 1
                self._ignore(st)
                return
        if self._start_line(st, i):
            st.mode = _SIP
            self._drain_sip(key, st, out, final, cause)
            return
        if self._websocket_handshake(key, st, out, i, final):
            return
        if not final and buf.find(b"\n", i) < 0 and n - i < framing.MAX_START_LINE:
            return  # the first line is still incomplete
        if framing.find_start_line(buf, i + 1) >= 0:  # picked up mid-stream: resynchronise
            st.mode = _SIP
            self._drain_sip(key, st, out, final, cause)
            return
        if final and st.sip_port and framing.START_PREFIX.match(buf, i):
            self._incomplete(key, st, out, i, cause)  # closed inside its first start-line
            self._ignore(st)
            return
        # A stream seen from its SYN must start with SIP; one picked up mid-connection gets a
        # few segments to show a start-line.
        if not final and not st.from_start and len(st.segs) < PROBE_SEGMENTS and n < PROBE_BYTES:
            return
        other = self._streams.get((key[2], key[3], key[0], key[1]))
        if final and st.sip_port and not st.from_start and not (other and other.flagged):
            # A SIP port picked up mid-connection that closed before a start-line: the tail
            # of a message whose head was not captured.
            self._skip(st, n, 0)
            self._report_skip(st)
            self._ignore(st)
            return
        if st.sip_port and not self._connection_flagged(key, st):
            self.summary.unsupported[_NOT_SIP] += 1
        self._ignore(st)

    def _websocket_handshake(
        self, key: _Key, st: _Stream, out: list[Payload], i: int, final: bool
    ) -> bool:
        """RFC 6455 §4 upgrade: client GET -> wait; server 101 with ``sip`` -> both WebSocket."""
        buf = st.buf
        is_response = websocket.is_switching_response(buf, i)
        if not is_response and not websocket.is_http_get(buf, i):
            return False
        he = framing.header_end(buf, i, len(buf))
        if he is None:  # wait for the whole header block, within reason
            return not final and len(buf) <= MAX_HEADER
        hdr_end, body = he
        if not is_response:
            if not websocket.is_upgrade_request(buf, i, hdr_end):
                return False
            st.mode = _WS_WAIT
            self._consume(st, body)
            self._process(key, st, out, final=final)
            return True
        client_key = (key[2], key[3], key[0], key[1])
        client = self._streams.get(client_key)
        if client is None or client.mode != _WS_WAIT:
            return False
        if not websocket.accepts_sip(buf, i, hdr_end):
            self._ignore(client)
            self._ignore(st)
            return True
        self._consume(st, body)
        client.mode = st.mode = _WS
        client.verified = st.verified = True
        self._drain_ws(client_key, client, out, False, "close")
        self._drain_ws(key, st, out, final, "close")
        return True

    def _drain_sip(
        self, key: _Key, st: _Stream, out: list[Payload], final: bool, cause: str
    ) -> None:
        """Cut Content-Length-framed messages (RFC 3261 §18.3) off the front of the buffer."""
        buf = st.buf
        n = len(buf)
        pos = 0
        while pos < n:
            c = buf[pos]
            if c == 13 or c == 10:
                end = pos + 1
                while end < n and buf[end] in (13, 10):
                    end += 1
                if end == n and not final:
                    break  # the run may go on in the next segment: count it whole
                self.summary.keepalives += framing.keepalive_count(end - pos)
                pos = end
                continue
            if st.discard:
                take = min(st.discard, n - pos)
                st.discard -= take
                pos += take
                continue
            if not self._start_line(st, pos):
                if buf.find(b"\n", pos) < 0 and n - pos < framing.MAX_START_LINE:
                    if not final:
                        break  # a start-line may still be arriving
                    if framing.START_PREFIX.match(buf, pos):
                        self._incomplete(key, st, out, pos, cause)
                        pos = n
                        break
                k = framing.find_start_line(buf, pos + 1)
                if k < 0:
                    keep = n
                    if not final:  # the last, unfinished line may be the next start-line
                        keep = buf.rfind(b"\n", pos) + 1 or pos
                        if n - keep > framing.MAX_START_LINE:
                            keep = n
                    self._skip(st, keep - pos, pos)
                    pos = keep
                    break
                self._skip(st, k - pos, pos)
                pos = k
                continue
            he = framing.header_end(buf, pos, n)
            if he is None:
                if n - pos > MAX_HEADER:
                    self.summary.anomaly(_TOO_BIG, self._frame_at(st, pos), _first_line(buf, pos))
                    st.quiet = True
                    pos = buf.find(b"\n", pos) + 1
                    continue
                if final:
                    self._incomplete(key, st, out, pos, cause)
                    pos = n
                break
            hdr_end, body = he
            if not st.verified:
                if not framing.looks_like_sip(buf, pos, hdr_end):
                    self._ignore(st)
                    return
                st.verified = True
            length = framing.content_length(buf, pos, hdr_end)
            if length > MAX_MESSAGE:
                self.summary.anomaly(_TOO_BIG, self._frame_at(st, pos), _first_line(buf, pos))
                st.discard = length  # skipped as it arrives, never buffered
                pos = body
                continue
            if length >= 0:
                end = body + length
                if end > n:
                    if final:
                        self._incomplete(key, st, out, pos, cause)
                        pos = n
                    break
            else:
                # No usable Content-Length: the body runs to the next start-line. While it
                # waits, the search resumes at the last line start already looked at, or
                # at the end when that line is too long to be a start-line (a body of one
                # long line would otherwise be searched again on every segment).
                end = framing.find_start_line(buf, max(body, st.scan_off - st.buf_off))
                if end < 0:
                    if not final and n - pos <= MAX_MESSAGE:
                        line = max(body, buf.rfind(b"\n", body) + 1)
                        if n - line > framing.MAX_START_LINE:
                            line = n
                        st.scan_off = st.buf_off + line
                        break
                    end = n
                st.scan_off = 0
                if not buf[body:end].strip(b"\r\n"):
                    end = body  # only keep-alive CRLFs follow: the body is empty
                if length == framing.MISSING:
                    frame = self._frame_at(st, pos)
                    self.summary.anomaly(_NO_LENGTH, frame, _first_line(buf, pos))
            self._emit(key, st, out, pos, end, bytes(buf[pos:end]), "tcp")
            pos = end
        self._consume(st, pos)

    def _drain_ws(
        self, key: _Key, st: _Stream, out: list[Payload], final: bool, cause: str
    ) -> None:
        """Cut WebSocket messages (RFC 6455 §5.4 fragments joined) off the front of the buffer.

        Each data message is one SIP message (RFC 7118 §5.2). A message in progress stays in
        the buffer and is parsed again when more bytes arrive, so its first segment is known.
        """
        buf = st.buf
        pos = 0
        start = -1
        parts: list[bytes] = []
        compressed = False
        while True:
            length = websocket.frame_length(buf, pos)
            if length is not None and length > MAX_MESSAGE:
                self.summary.anomaly(_TOO_BIG, self._frame_at(st, pos), "WebSocket frame")
                self._ignore(st)
                return
            f = websocket.parse_frame(buf, pos)
            if f is None:
                break
            if f.opcode in (websocket.TEXT, websocket.BINARY):
                start, parts, compressed = pos, [], f.compressed
            if f.opcode < 8 and start >= 0:  # data frames; control frames carry no SIP
                parts.append(websocket.unmask(buf[f.start : f.end], f.mask))
                if f.fin:
                    if compressed:  # permessage-deflate (RFC 7692) is not inflated
                        self.summary.not_decodable["websocket"] += 1
                    else:
                        self._emit(key, st, out, start, f.end, b"".join(parts), "ws")
                    start = -1
            pos = f.end
        if final and (start >= 0 or pos < len(buf)):
            first = start if start >= 0 else pos
            self._incomplete(key, st, out, first, cause)
            start, pos = -1, len(buf)
        self._consume(st, start if start >= 0 else pos)

    # -- bookkeeping ------------------------------------------------------------------------

    def _emit(
        self,
        key: _Key,
        st: _Stream,
        out: list[Payload],
        start: int,
        end: int,
        data: bytes,
        transport: str,
        truncated: bool = False,
    ) -> None:
        """Append the message at ``buf[start:end]`` with the segments it spanned."""
        if st.skipped:
            self._report_skip(st)
        st.quiet = False
        lo = st.buf_off + start
        hi = st.buf_off + end
        segs = st.segs
        while segs and segs[0][0] <= lo:
            segs.popleft()
        first = last = segs[0]
        count = 0
        for seg in segs:
            count += 1
            last = seg
            if seg[0] >= hi:
                break
        src, sport, dst, dport = key
        out.append(
            Payload(
                ts_ns=last[1],
                file=self.file,
                frame=first[2],
                src=src,
                sport=sport,
                dst=dst,
                dport=dport,
                transport=transport,
                data=data,
                segments=count,
                truncated=truncated,
            )
        )

    def _incomplete(self, key: _Key, st: _Stream, out: list[Payload], pos: int, cause: str) -> None:
        """A message from ``pos`` that will never complete: emit it cut, or count it.

        Cut by the snaplen, a SIP message goes to the parser marked truncated; cut by a gap,
        it is part of that gap's anomaly; otherwise the stream ended inside it.
        """
        buf = st.buf
        if cause == "snaplen" and st.mode == _SIP:
            self._emit(key, st, out, pos, len(buf), bytes(buf[pos:]), "tcp", truncated=True)
        elif cause != "gap" and st.verified:
            self.summary.anomaly(_ENDED, self._frame_at(st, pos), _first_line(buf, pos))

    def _skip(self, st: _Stream, count: int, pos: int) -> None:
        """Remember ``count`` bytes at ``buf[pos:]`` skipped to reach a start-line."""
        if count <= 0 or st.quiet:
            return
        if not st.skipped:
            st.skip_frame = self._frame_at(st, pos)
        st.skipped += count

    def _report_skip(self, st: _Stream) -> None:
        if st.verified and not st.quiet:
            detail = f"{st.skipped} bytes before a start-line"
            self.summary.anomaly(_OUTSIDE, st.skip_frame, detail)
        st.skipped = 0

    @staticmethod
    def _start_line(st: _Stream, pos: int) -> bool:
        """A start-line at ``buf[pos]``; where the stream was cut at random, a known one."""
        if not framing.START_LINE.match(st.buf, pos):
            return False
        return st.buf_off + pos != st.head_off or framing.known_start(st.buf, pos)

    @staticmethod
    def _frame_at(st: _Stream, pos: int) -> int:
        """Frame of the segment holding ``buf[pos]``."""
        off = st.buf_off + pos
        for end, _, frame, _ in st.segs:
            if end > off:
                return frame
        return st.segs[-1][2] if st.segs else 0

    @staticmethod
    def _consume(st: _Stream, pos: int) -> None:
        if pos <= 0:
            return
        del st.buf[:pos]
        st.buf_off += pos
        segs = st.segs
        while segs and segs[0][0] <= st.buf_off:
            segs.popleft()

    @staticmethod
    def _ignore(st: _Stream) -> None:
        """Stop reading this direction and hold nothing for it."""
        st.mode = _IGNORE
        st.buf = bytearray()
        st.segs.clear()
        st.ooo = []
        st.ooo_bytes = 0
        st.skipped = 0

    def _connection_flagged(self, key: _Key, st: _Stream) -> bool:
        """Mark the connection as counted; True when the other direction already was."""
        other = self._streams.get((key[2], key[3], key[0], key[1]))
        st.flagged = True
        return other is not None and other.flagged

    def _close(self, key: _Key, st: _Stream, out: list[Payload]) -> None:
        """No more bytes will come: skip remaining gaps, frame the rest, report what is left."""
        while st.ooo and st.mode != _IGNORE:
            self._skip_gap(key, st, out)
        self._process(key, st, out, final=True, cause="snaplen" if st.hole else "close")
        if st.skipped:
            self._report_skip(st)

    def _sweep(self, now: int, out: list[Payload]) -> None:
        """Forget directions idle for :data:`IDLE_NS`, so memory follows live connections.

        Directions holding no bytes are forgotten after :data:`IDLE_NS` (nothing is lost: a
        later segment starts a stream picked up mid-connection); those holding bytes only
        after :data:`IDLE_HOLDING_NS`, so a timestamp a few minutes off cannot cut messages
        in flight, while a capture of days does not keep every half-message it saw.
        """
        self._swept = now
        for key, st in list(self._streams.items()):
            idle = now - st.last_ts
            if idle > IDLE_HOLDING_NS or (idle > IDLE_NS and not st.buf and not st.ooo):
                self._close(key, st, out)
                del self._streams[key]

    def buffered_bytes(self) -> int:
        """Bytes all streams hold now: buffers and out-of-order segments."""
        return sum(len(st.buf) + st.ooo_bytes for st in self._streams.values())

    def _cap(self, frame: int) -> None:
        """Over :data:`MAX_BUFFERED`, drop the oldest streams holding bytes until it fits."""
        held = self.buffered_bytes()
        for st in self._streams.values():
            if held <= MAX_BUFFERED:
                return
            size = len(st.buf) + st.ooo_bytes
            if size and st.mode != _IGNORE:
                self.summary.anomaly(_CAPPED, frame, f"{size} bytes")
                self._ignore(st)
                held -= size


def _first_line(buf: bytes | bytearray, pos: int) -> str:
    """The line at ``pos`` as text for an anomaly's detail (bounded, never raises)."""
    end = buf.find(b"\n", pos, pos + 200)
    line = bytes(buf[pos : end if end >= 0 else pos + 200])
    return line.rstrip(b"\r").decode("utf-8", "replace")
