"""SIP stage: the bytes of one message -> :class:`SipMessage` (pure: no pandas, no scapy).

:func:`parse_message` follows RFC 3261 §7 (message format) and §20 (header fields) and is on
the hot path, so it works with ``bytes.find``, ``str.partition`` and a few compiled patterns
instead of a general grammar. It raises only :class:`~sipstats.errors.SipParseError`, whose
``reason`` is one of :data:`sipstats.schema.MALFORMED_REASONS`.

Header text is decoded as UTF-8 with ``errors="replace"`` (RFC 3261 §7.3.1: header values are
UTF-8), so a stray byte becomes U+FFFD instead of failing the message or leaking surrogates
into tables and reports.

Leniency, where the RFC and real traffic disagree, always in favour of keeping the message:
bare-LF line endings (HEP samples, hand-made tools) are accepted like CRLF; a UDP datagram
whose last header line ends at the end of the datagram without the empty line is a complete
message without a body. Numeric values above 2**32 - 1 are clamped to it (RFC 3261 §20.19
does the same for Expires), a HEP-framed message's Content-Length too (a datagram whose body
is shorter than it is malformed); a larger CSeq makes the message malformed.

The common shape of a message is parsed by the optional C extension ``sipstats._sipscan``
when it is built (``pip install -e .`` builds it); it answers exactly what the Python code
answers, or declines and lets the Python code parse the message. ``SIPSTATS_PURE_PYTHON=1``
or :func:`sipstats.native.python_twins` turns it off, so both can be run and compared.
"""

from __future__ import annotations

import re
from itertools import islice
from types import ModuleType
from typing import Final, NamedTuple, TypeVar

from sipstats import native
from sipstats.capture.framing import MAX_NUMBER, decimal
from sipstats.errors import SipParseError

#: RFC 3261 §7.3.3 compact forms plus those later RFCs registered with IANA.
COMPACT_FORMS: Final = {
    "i": "call-id",
    "v": "via",
    "f": "from",
    "t": "to",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",  # RFC 6665
    "u": "allow-events",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
    "b": "referred-by",  # RFC 3892
    "a": "accept-contact",  # RFC 3841
    "j": "reject-contact",  # RFC 3841
    "d": "request-disposition",  # RFC 3841
}

#: RFC 3261 §8.1.1: a message without any of these is not a usable row.
MANDATORY: Final = ("call-id", "cseq", "from", "to", "via")

# RFC 3261 §7.1: Method SP Request-URI SP SIP-Version; method is a token (§25.1),
# the URI an absolute URI with a scheme; SIP-Version is case-insensitive.
_REQUEST_LINE: Final = re.compile(
    r"([!%'*+\-.0-9A-Z_`a-z~]+) ([A-Za-z][A-Za-z0-9+.\-]*:[^ ]+) [Ss][Ii][Pp]/2\.0"
)
# RFC 3261 §7.2: SIP-Version SP Status-Code SP Reason-Phrase; the code is 3 digits, 1xx-6xx
# (§21). A missing reason phrase is tolerated.
_STATUS_LINE: Final = re.compile(r"[Ss][Ii][Pp]/2\.0 ([1-6][0-9][0-9])(?: (.*))?")
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")
_FOLD: Final = re.compile(r"\r?\n[ \t]+")
_CSEQ: Final = re.compile(r"[ \t]*([0-9]+)[ \t]+([!%'*+\-.0-9A-Z_`a-z~]+)[ \t]*")
_NUMBER: Final = re.compile(r"[ \t]*([0-9]+)[ \t]*")
# RFC 3261 §20.33: delta-seconds [ comment ] *( SEMI retry-param )
_RETRY_AFTER: Final = re.compile(r"[ \t]*([0-9]+)[ \t]*(?:\([^)]*\)[ \t]*)?(;.*)?")
_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_PARAM_PATTERNS: dict[str, re.Pattern[str]] = {}
_PARAMS_QUOTED: Final = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)+')
_VALUES_QUOTED: Final = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*"?)+')

#: Headers the parser looks at, by lower-case full name -> slot in the collected values.
_WANTED: Final = {
    name: index
    for index, name in enumerate(
        (
            "call-id",
            "cseq",
            "from",
            "to",
            "via",
            "user-agent",
            "server",
            "retry-after",
            "expires",
            "min-expires",
            "authorization",
            "proxy-authorization",
            "content-length",
            "content-type",
            "reason",
            # B2BUA correlation headers: the same value on both sides of a B2BUA
            "x-cid",
            "x-call-id",
            "p-charging-vector",
        )
    )
}
_VIA: Final = _WANTED["via"]
_NAMES: Final = {
    **{k: _WANTED[v] for k, v in COMPACT_FORMS.items() if v in _WANTED},
    **_WANTED,
    # The spellings seen on the wire, so that most lines need no .lower(); -1: not wanted.
    **{name: _WANTED[name.lower()] for name in ("Call-ID", "CSeq", "Retry-After", "Min-Expires")},
    **{name.title(): slot for name, slot in _WANTED.items()},
    **dict.fromkeys(
        (
            "Max-Forwards",
            "Contact",
            "Allow",
            "Supported",
            "Record-Route",
            "Route",
            "Accept",
            "Content-Disposition",
            "Session-Expires",
            "Require",
            "Privacy",
            "P-Asserted-Identity",
        ),
        -1,
    ),
}

# The fast path (:func:`_parse_common`): a header line (name not starting with a blank).
_HEADER_LINE: Final = re.compile(rb"\n([^:\n \t][^:\n]*):([^\n]*)")
#: Entries per cache of values derived from raw header text; a full cache starts over.
_CACHE_SIZE: Final = 4096
_T = TypeVar("_T")
#: Raw header name -> slot (-1: not wanted), for the spellings seen so far.
_SLOTS: dict[bytes, int] = {name.encode(): slot for name, slot in _NAMES.items()}
_START_CACHE: dict[bytes, tuple[bool, str, str, int, str]] = {}
_CSEQ_CACHE: dict[bytes, tuple[int, str]] = {}
_LENGTH_CACHE: dict[bytes, int] = {}
_VIA_CACHE: dict[bytes, tuple[str, int]] = {}
_ADDRESS_CACHE: dict[bytes, tuple[str, str]] = {}
_TEXT_CACHE: dict[bytes, str] = {}
_new_tuple: Final = tuple.__new__


class SipMessage(NamedTuple):
    """One parsed SIP message: the fields the analysis needs, nothing else.

    A NamedTuple rather than a frozen dataclass: it is built once per message on the hot
    path, and a tuple is built several times faster. Strings are ``""`` when a header is
    absent (From/To/Via/Call-ID/CSeq never are); numbers that may be absent are ``None``.
    """

    is_request: bool
    method: str
    """Request method as sent (RFC 3261 §7.1: case-sensitive); '' for responses."""
    request_uri: str
    status: int
    """Status code, 0 for requests."""
    reason: str
    call_id: str
    cseq: int
    cseq_method: str
    branch: str
    """branch parameter of the top Via (RFC 3261 §8.1.1.7), '' when absent."""
    via_count: int
    from_uri: str
    from_tag: str
    to_uri: str
    to_tag: str
    user_agent: str
    server: str
    retry_after: int | None
    """Retry-After delta-seconds (RFC 3261 §20.33); None when absent or malformed."""
    retry_after_raw: str | None
    """The Retry-After header text as sent; None when absent."""
    retry_after_duration: int | None
    """The ``duration`` retry-param, seconds."""
    expires: int | None
    min_expires: int | None
    has_auth: bool
    """Authorization or Proxy-Authorization present (RFC 3261 §22)."""
    content_length: int | None
    body_length: int
    """Body bytes that belong to the message (Content-Length, else the rest of the datagram)."""
    size: int
    """Bytes of the whole message: start line, headers, empty line, body."""
    content_type: str
    reason_header: str
    """The first Reason header as sent (RFC 3326), '' when absent; see :func:`reason_fields`."""
    sdp_address: str
    """Connection address of the SDP body's first media (its c= line, else the session's)."""
    sdp_port: int | None
    """Port of the SDP body's first m= line; None without SDP (0: a refused stream)."""
    sdp_codecs: str
    """Encoding names of that m= line's formats, in offer order, comma-separated."""
    x_cid: str
    """The first X-CID header as sent, '' when absent (a B2BUA correlation id)."""
    x_call_id: str
    """The first X-Call-ID header as sent, '' when absent (a B2BUA correlation id)."""
    charging_vector: str
    """The first P-Charging-Vector header as sent (RFC 7315 §4.6: icid-value), '' when absent."""

    @property
    def retry_after_malformed(self) -> bool:
        """A Retry-After header was sent but its value is not RFC 3261 §20.33 syntax."""
        return self.retry_after_raw is not None and self.retry_after is None


#: The C parser (``_sipscan.c``), loaded, checked against SipMessage and set up once.
C_SCAN_NAME = "_sipscan"
_C_SCAN = native.extension(C_SCAN_NAME, MESSAGE_FIELDS=SipMessage._fields)
if _C_SCAN is not None:
    _C_SCAN.set_message_type(SipMessage)


def c_scanner() -> ModuleType | None:
    """The C parser and column builder, or None: not built, built for another SipMessage,
    or switched off (:mod:`sipstats.native`)."""
    return _C_SCAN if native.enabled(C_SCAN_NAME) else None


def parse_message(data: bytes, *, truncated: bool = False, delimited: bool = False) -> SipMessage:
    """Parse one SIP message; raise :class:`SipParseError` if it is not a usable one.

    ``truncated`` says the capture cut the packet short (snaplen): a message whose start line
    is SIP is then reported as "truncated by snaplen" instead of any later symptom.
    ``delimited`` says an encapsulation framed exactly this message (HEP: the capture agent's
    copy): a body shorter than Content-Length is then the sender's miscount (hand-made
    generators count CRLF but send LF), not a lost tail, and the message is kept.
    """
    if not truncated:
        scanner = c_scanner()
        if scanner is not None:
            message: SipMessage | None = scanner.parse(data, delimited)
            if message is not None:
                return message
        message = _parse_common(data, delimited)
        if message is not None:
            return message
    return _parse_general(data, truncated, delimited)


def _parse_common(data: bytes, delimited: bool) -> SipMessage | None:
    """The common shape, fast: CRLF lines, no folding, every header line with a colon, the
    mandatory headers present and valid. None for anything else, which
    :func:`_parse_general` then parses (or rejects with its exact reason).

    Works on the bytes: one pattern picks out the wanted header lines, and only their values
    are decoded. Values repeat across the messages of a dialog, so what is derived from a raw
    value (URI and tag, branch, CSeq) is remembered in small bounded caches.
    """
    head_end = data.find(b"\r\n\r\n")
    first_end = data.find(b"\n", 0, head_end)
    if head_end < 0 or first_end < 0 or data[:1] in b"\r\n":  # b"": the empty message
        return None
    # Every line after the start line must be "name: value" with a name that does not start
    # with blanks: this also rules out folding and an earlier empty line (bare LF).
    lines = _HEADER_LINE.findall(data, first_end, head_end)
    if len(lines) != data.count(b"\n", first_end, head_end):
        return None
    first = data[:first_end]
    start = _START_CACHE.get(first)
    if start is None:
        start = _start_line(first.decode("utf-8", "replace").rstrip("\r \t"))
        if start is None:
            return None
        _remember(_START_CACHE, first, start)

    values: list[bytes | None] = [None] * len(_WANTED)
    vias: list[bytes] = []
    slots = _SLOTS
    for name, value in lines:
        slot = slots.get(name)
        if slot is None:
            slot = _slot(name)
        if slot < 0:
            continue
        if slot == _VIA:
            vias.append(value)
        elif values[slot] is None:
            values[slot] = value
    (
        call_id,
        cseq,
        from_,
        to,
        _,
        user_agent,
        server,
        retry_after,
        expires,
        min_expires,
        authorization,
        proxy_authorization,
        content_length,
        content_type,
        reason_header,
        x_cid,
        x_call_id,
        charging_vector,
    ) = values
    if call_id is None or cseq is None or from_ is None or to is None or not vias:
        return None
    cseq_value = _CSEQ_CACHE.get(cseq)
    if cseq_value is None:
        cseq_match = _CSEQ.fullmatch(_text(cseq))
        if cseq_match is None or decimal(cseq_match[1]) > MAX_NUMBER:
            return None
        cseq_value = _remember(_CSEQ_CACHE, cseq, (decimal(cseq_match[1]), cseq_match[2]))

    body_start = head_end + 4
    body_length = len(data) - body_start
    length: int | None = None
    if content_length is not None:
        length = _LENGTH_CACHE.get(content_length)
        if length is None:
            length_match = _NUMBER.fullmatch(_text(content_length))
            if length_match is None:
                return None
            length = _remember(_LENGTH_CACHE, content_length, decimal(length_match[1]))
        if length <= body_length:
            body_length = length
        elif not delimited:
            return None
        else:  # HEP framed the message: the body is what came, the number is kept, clamped
            length = _clamped(length)

    via = _VIA_CACHE.get(vias[0])
    if via is None:
        via = _remember(_VIA_CACHE, vias[0], _via_line(vias[0]))
    branch, via_count = via
    if len(vias) > 1:
        for value in vias[1:]:
            more = _VIA_CACHE.get(value)
            if more is None:
                more = _remember(_VIA_CACHE, value, _via_line(value))
            via_count += more[1]
    from_address = _ADDRESS_CACHE.get(from_)
    if from_address is None:
        from_address = _remember(_ADDRESS_CACHE, from_, _address(_text(from_)))
    to_address = _ADDRESS_CACHE.get(to)
    if to_address is None:
        to_address = _remember(_ADDRESS_CACHE, to, _address(_text(to)))
    ra_value, ra_raw, ra_duration = (
        (None, None, None) if retry_after is None else _retry_after(_text(retry_after))
    )
    content_text = "" if content_type is None else _short_text(content_type)
    # tuple.__new__ directly: the NamedTuple's own __new__ is a Python-level call.
    return _new_tuple(
        SipMessage,
        (
            *start,
            call_id.decode("utf-8", "replace").strip(),
            *cseq_value,
            branch,
            via_count,
            *from_address,
            *to_address,
            "" if user_agent is None else _TEXT_CACHE.get(user_agent) or _short_text(user_agent),
            "" if server is None else _TEXT_CACHE.get(server) or _short_text(server),
            ra_value,
            ra_raw,
            ra_duration,
            None if expires is None else _number(_text(expires)),
            None if min_expires is None else _number(_text(min_expires)),
            authorization is not None or proxy_authorization is not None,
            length,
            body_length,
            body_start + body_length,
            content_text,
            "" if reason_header is None else _short_text(reason_header),
            *_sdp(content_text, data[body_start : body_start + body_length]),
            "" if x_cid is None else _text(x_cid),
            "" if x_call_id is None else _text(x_call_id),
            "" if charging_vector is None else _text(charging_vector),
        ),
    )


def _via_line(raw: bytes) -> tuple[str, int]:
    """:func:`_via` of one Via line; one entry whose first parameter is the branch (the
    usual case) without the general steps."""
    text = raw.decode("utf-8", "replace").strip()
    if '"' not in text and "," not in text:
        semi = text.find(";")
        if semi < 0:
            return "", 1
        if text.startswith(";branch=", semi):
            end = text.find(";", semi + 8)
            return text[semi + 8 : end if end >= 0 else None].strip(), 1
    return _via([text])


def _slot(name: bytes) -> int:
    """The slot of a header name as spelled on the wire (-1: not wanted), as the general
    path finds it."""
    text = name.decode("utf-8", "replace")
    slot = _NAMES.get(text)
    if slot is None:
        slot = _NAMES.get(text.rstrip(" \t").lower(), -1)
    if len(_SLOTS) < _CACHE_SIZE:
        _SLOTS[name] = slot
    return slot


def _text(raw: bytes) -> str:
    """A header value as the general path sees it: decoded, then stripped (as ``str``)."""
    return raw.decode("utf-8", "replace").strip()


def _short_text(raw: bytes) -> str:
    """:func:`_text` for values that repeat across messages (User-Agent, Content-Type)."""
    text = _TEXT_CACHE.get(raw)
    if text is None:
        text = _remember(_TEXT_CACHE, raw, _text(raw))
    return text


def _remember(cache: dict[bytes, _T], key: bytes, value: _T) -> _T:
    """Store ``value`` in a bounded cache; when full, the oldest quarter goes (values repeat
    within a dialog or transaction, which are short-lived)."""
    if len(cache) >= _CACHE_SIZE:
        for old in list(islice(cache, _CACHE_SIZE // 4)):
            del cache[old]
    cache[key] = value
    return value


def _start_line(first: str) -> tuple[bool, str, str, int, str] | None:
    """(is_request, method, request URI, status, reason) of a start line, None if not one."""
    match = _REQUEST_LINE.fullmatch(first)
    if match is not None:
        return True, match[1], match[2], 0, ""
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        return None
    return False, "", "", int(match[1]), (match[2] or "").strip()


def _parse_general(data: bytes, truncated: bool, delimited: bool) -> SipMessage:
    """Any message :func:`parse_message` accepts, and the exact error for every other one.

    The reference implementation of every rule: :func:`_parse_common` handles the common
    shape faster and hands everything else here.
    """
    # RFC 3261 §7.5: CRLFs before the start-line are ignored (keep-alives, stream padding).
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    # RFC 3261 §7: start-line *message-header CRLF [ message-body ].
    head_end = data.find(b"\r\n\r\n")
    if (
        head_end >= 0
        and data.find(b"\n\n", 0, head_end) < 0
        and data.find(b"\n\r\n", 0, head_end) < 0
    ):
        body_start = head_end + 4  # the common case: CRLF throughout, found without a regex
    elif (blank := _BLANK_LINE.search(data)) is not None:
        head_end, body_start = blank.start(), blank.end()
    else:
        # No empty line: the datagram's end closes the header block (lenient, see module doc).
        head_end = body_start = len(data)
    text = data[:head_end].decode("utf-8", "replace")
    first, _, rest = text.partition("\n")
    first = first.rstrip("\r \t")

    start = _start_line(first)
    if start is None:
        raise SipParseError("bad start line", first[:80])
    is_request, method, request_uri, status, reason = start
    if truncated:
        raise SipParseError("truncated by snaplen", first[:80])
    if head_end == len(data) and data and not data.endswith(b"\n"):
        # The last header line never ended: the datagram was cut inside the header block.
        raise SipParseError("bad header line", f"unterminated header block: {rest[-40:]!r}")

    # RFC 3261 §7.3.1: a line starting with whitespace continues the previous header.
    if "\n " in rest or "\n\t" in rest:
        rest = _FOLD.sub(" ", rest)
    # First value of each wanted header (RFC 3261 §7.3.1: one value unless comma-separated),
    # except Via, whose every line counts.
    values: list[str | None] = [None] * len(_WANTED)
    vias: list[str] = []
    for line in rest.split("\n"):
        name, colon, value = line.partition(":")
        if not colon:
            if line.strip():
                raise SipParseError("bad header line", line[:80])
            continue
        slot = _NAMES.get(name)
        if slot is None:
            slot = _NAMES.get(name.rstrip(" \t").lower())
            if slot is None:
                continue
        if slot == _VIA:
            vias.append(value.strip())
        elif slot >= 0 and values[slot] is None:
            values[slot] = value.strip()

    (
        call_id,
        cseq,
        from_,
        to,
        _,
        user_agent,
        server,
        retry_after,
        expires,
        min_expires,
        authorization,
        proxy_authorization,
        content_length,
        content_type,
        reason_header,
        x_cid,
        x_call_id,
        charging_vector,
    ) = values
    if call_id is None or cseq is None or from_ is None or to is None or not vias:
        present = {name for name, slot in _WANTED.items() if values[slot] is not None}
        missing = [
            name for name in MANDATORY if name not in present and (name != "via" or not vias)
        ]
        raise SipParseError("missing mandatory header", ", ".join(missing))

    cseq_match = _CSEQ.fullmatch(cseq)
    if cseq_match is None or decimal(cseq_match[1]) > MAX_NUMBER:
        # RFC 3261 §8.1.1.5: CSeq is a 32-bit sequence number and a method token.
        raise SipParseError("bad header line", f"CSeq: {cseq[:60]}")

    body_length = len(data) - body_start
    length: int | None = None
    if content_length is not None:
        length_match = _NUMBER.fullmatch(content_length)
        if length_match is None:
            raise SipParseError("bad Content-Length", content_length[:40])
        length = decimal(length_match[1])
        if length <= body_length:
            body_length = length
        elif not delimited:
            # RFC 3261 §18.3: a datagram shorter than Content-Length is discarded.
            raise SipParseError(
                "body shorter than Content-Length", f"Content-Length {length}, body {body_length}"
            )
        else:  # HEP framed the message: the body is what came, the number is kept, clamped
            length = _clamped(length)

    branch, via_count = _via(vias)
    from_uri, from_tag = _address(from_)
    to_uri, to_tag = _address(to)
    ra_value, ra_raw, ra_duration = (
        (None, None, None) if retry_after is None else _retry_after(retry_after)
    )
    return SipMessage(
        is_request,
        method,
        request_uri,
        status,
        reason,
        call_id,
        decimal(cseq_match[1]),
        cseq_match[2],
        branch,
        via_count,
        from_uri,
        from_tag,
        to_uri,
        to_tag,
        user_agent or "",
        server or "",
        ra_value,
        ra_raw,
        ra_duration,
        None if expires is None else _number(expires),
        None if min_expires is None else _number(min_expires),
        authorization is not None or proxy_authorization is not None,
        length,
        body_length,
        body_start + body_length,
        content_type or "",
        reason_header or "",
        *_sdp(content_type or "", data[body_start : body_start + body_length]),
        x_cid or "",
        x_call_id or "",
        charging_vector or "",
    )


def _via(headers: list[str]) -> tuple[str, int]:
    """Top Via's branch and the number of Via entries (RFC 3261 §20.42: comma-separated)."""
    count = 0
    for value in headers:
        count += len(_split(value, ",", _VALUES_QUOTED)) if '"' in value else value.count(",") + 1
    top = headers[0]
    if "," in top:
        top = _split(top, ",", _VALUES_QUOTED)[0]
    # via-parm = sent-protocol LWS sent-by *( SEMI via-params ): sent-by holds no ';'.
    semi = top.find(";")
    return ((param(top[semi:], "branch") or "") if semi >= 0 else ""), count


def _address(value: str) -> tuple[str, str]:
    """URI and tag of a From/To value: name-addr or addr-spec (RFC 3261 §20.10)."""
    start = 0
    if value[:1] == '"':
        # quoted display name: may hold '<', ';' and escaped quotes (§25.1 quoted-string).
        quoted = _QUOTED.match(value)
        start = quoted.end() if quoted else len(value)
    open_ = value.find("<", start)
    if open_ >= 0:
        close = value.find(">", open_)
        if close < 0:
            return value[open_ + 1 :].strip(), ""
        uri, params = value[open_ + 1 : close].strip(), value[close + 1 :]
    else:
        # addr-spec: parameters after the URI belong to the header, not the URI (§20.10).
        uri, _, params = value[start:].partition(";")
        uri, params = uri.strip(), ";" + params
    return uri, param(params, "tag") or ""


def param(params: str, name: str) -> str | None:
    """Value of parameter ``name`` in ``;a=b;c="d;e"`` form; names are case-insensitive.

    RFC 3261 §7.3.1: parameter names compare case-insensitively; a value may be a quoted
    string (returned without its quotes). ``None`` when absent; ``""`` for a flag parameter.
    """
    if '"' not in params:
        if params.startswith(f";{name}="):
            # Asked for the first parameter, spelled as asked (tag, branch): no search.
            end = params.find(";", len(name) + 2)
            return params[len(name) + 2 : end if end >= 0 else None].strip()
        pattern = _PARAM_PATTERNS.get(name)
        if pattern is None:
            pattern = _PARAM_PATTERNS[name] = re.compile(
                rf";[ \t]*{re.escape(name)}[ \t]*(?:=([^;]*))?(?:;|$)", re.IGNORECASE
            )
        found = pattern.search(params)
        if found is None:
            return None
        return (found[1] or "").strip()
    parts = _split(params, ";", _PARAMS_QUOTED)
    for part in parts:
        key, equals, value = part.partition("=")
        if key.strip().lower() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value if equals else ""
    return None


def _split(value: str, separator: str, pattern: re.Pattern[str]) -> list[str]:
    """Split on ``separator`` outside quoted strings."""
    return [part for part in pattern.findall(value) if part.strip()] or [""]


def _number(text: str) -> int | None:
    """A delta-seconds value (Expires, Min-Expires); None when it is not one."""
    match = _NUMBER.fullmatch(text)
    return _clamped(decimal(match[1])) if match else None


def _clamped(value: int) -> int:
    """A header number as a :class:`SipMessage` keeps it: above 2**32 - 1 it is 2**32 - 1
    (RFC 3261 §20.19 says so of Expires), which the messages table's UInt32 columns hold."""
    return min(value, MAX_NUMBER)


def _retry_after(raw: str) -> tuple[int | None, str, int | None]:
    """(delta-seconds, raw text, duration) of Retry-After per RFC 3261 §20.33."""
    if raw.isdigit() and raw.isascii():
        return _clamped(decimal(raw)), raw, None
    match = _RETRY_AFTER.fullmatch(raw)
    if match is None:
        return None, raw, None
    duration = None
    if match[2]:
        text = param(match[2], "duration")
        if text is not None and _NUMBER.fullmatch(text):
            duration = _clamped(decimal(text))
    return _clamped(decimal(match[1])), raw, duration


#: RFC 3551 §6 static RTP payload types, named when an SDP offer has no a=rtpmap for them.
STATIC_PAYLOAD_TYPES: Final = {
    "0": "PCMU",
    "3": "GSM",
    "4": "G723",
    "8": "PCMA",
    "9": "G722",
    "13": "CN",
    "18": "G729",
}
#: Formats of one m= line that are named (the rest of a long list is left out).
SDP_MAX_FORMATS: Final = 16
#: a=rtpmap lines of one media section that are read (an SDP with more is not summarised
#: by the C parser, which then leaves the message to this code).
SDP_MAX_RTPMAPS: Final = 32


def _sdp(content_type: str, body: bytes) -> tuple[str, int | None, str]:
    """(address, port, codecs) of the first media description of an SDP body (RFC 4566 §5).

    Only for ``application/sdp`` bodies (a multipart body is not looked into). The address
    is that media's c= line, else the session-level one; the port is its m= line's (None
    when there is none); the codecs name its formats through a=rtpmap, else the static
    payload types of RFC 3551, else the format as sent.
    """
    if content_type.partition(";")[0].strip(" \t").lower() != "application/sdp":
        return "", None, ""
    session_c: str | None = None
    media_c: str | None = None
    media: list[str] | None = None
    rtpmap: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").split("\n"):
        line = line.rstrip("\r")
        if line.startswith("m="):
            if media is not None:
                break
            media = line[2:].split()
        elif line.startswith("c="):
            if media is None:
                session_c = line[2:]
            elif media_c is None:
                media_c = line[2:]
        elif media is not None and line.startswith("a=rtpmap:") and len(rtpmap) < SDP_MAX_RTPMAPS:
            fields = line[9:].split()
            if len(fields) >= 2:
                rtpmap.setdefault(fields[0], fields[1].partition("/")[0])
    connection = (media_c if media_c is not None else session_c or "").split()
    address = connection[2].partition("/")[0] if len(connection) >= 3 else ""
    if media is None:
        return address, None, ""
    port_text = media[1].partition("/")[0] if len(media) >= 2 else ""
    port = (
        int(port_text)
        if len(port_text) <= 5 and port_text.isascii() and port_text.isdigit()
        else None
    )
    if port is not None and port > 65535:
        port = None
    codecs = [
        rtpmap.get(fmt) or STATIC_PAYLOAD_TYPES.get(fmt) or fmt
        for fmt in media[3 : 3 + SDP_MAX_FORMATS]
    ]
    return address, port, ",".join(codecs)


def is_q850(protocol: str) -> bool:
    """Whether a Reason's protocol is Q.850 (RFC 3326: a token, compared without regard to
    case), as a Python ``str`` (:func:`sipstats.analyze.keys.per_category` says why)."""
    return protocol.strip().upper() == "Q.850"


def reason_fields(header: str) -> tuple[str, int | None, str]:
    """(protocol, cause, text) of a Reason header value (RFC 3326 §2).

    A header may list several reasons (``SIP;cause=503, Q.850;cause=34``): the Q.850 one
    is taken when present (it says why the network cleared the call), else the first.
    The cause is None when absent or not a number below 32768.
    """
    if not header.strip():
        return "", None, ""
    reasons = _split(header, ",", _VALUES_QUOTED)
    chosen = next((r for r in reasons if is_q850(r.partition(";")[0])), reasons[0])
    protocol, semi, params = chosen.partition(";")
    cause_text = param(semi + params, "cause") if semi else None
    cause = (
        int(cause_text)
        if cause_text and cause_text.isascii() and cause_text.isdigit() and len(cause_text) < 6
        else None
    )
    if cause is not None and cause > 32767:
        cause = None
    text = (param(semi + params, "text") if semi else None) or ""
    return protocol.strip(), cause, text
