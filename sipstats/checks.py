"""The selection options as written (times, offsets, peers, bucket lengths), read without pandas.

The command line checks them while it parses, before the capture's reading starts: loading
pandas then would put it in every decoding worker forked after (65 MiB more peak memory for
the RTP benchmark capture on ``--jobs 2``) and take it off the overlap with the reading.
The forms checked here are the ones everyone writes; :func:`plain_time` and
:func:`plain_interval` answer True only for text pandas certainly accepts, and anything
else is left to the pandas rule (:func:`sipstats.select.parse_time`,
:func:`sipstats.analyze.breakdown.check_interval`), which stays the one that decides and
converts.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Final

from sipstats.capture.ports import port_number
from sipstats.errors import OptionError

#: ``+90s``, ``+2min``, ``+1.5``: a window bound as an offset from the first message.
OFFSET: Final = re.compile(
    r"^\+\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|sec|min|m|h)?$", re.ASCII
)
#: Each unit :data:`OFFSET` accepts, as pandas spells it (no unit: seconds).
UNITS: Final = {"ms": "ms", "s": "s", "sec": "s", "min": "min", "m": "min", "h": "h", None: "s"}
_NANOS: Final = {"ms": 10**6, "s": 10**9, "min": 60 * 10**9, "h": 3600 * 10**9}

#: ``2026-11-25``, ``2026-11-25T09:34[:50[.123456789]]`` with ``Z`` or ``+01:00`` or no zone.
_ISO: Final = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?P<fraction>\.\d{1,9})?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?$",
    re.ASCII,
)
#: Inside pandas' nanosecond range (1677-09-21 to 2262-04-11) with a margin: nearer its
#: ends, pandas decides.
_EARLIEST: Final = datetime(1678, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(2262, 1, 1, tzinfo=UTC)
_LONGEST_OFFSET: Final = 100_000 * 24 * 3600 * 10**9  # 273 years: pandas' range is 292

#: Longest timeline bucket :func:`sipstats.analyze.breakdown.check_interval` accepts: a
#: year is longer than any capture.
MAX_INTERVAL_DAYS: Final = 365
#: ``10s``, ``1min``, ``2h``: a bucket length in one unit pandas reads as a fixed length.
_INTERVAL: Final = re.compile(r"^(?P<amount>\d+)(?P<unit>ms|s|min|h)$", re.ASCII)


def plain_time(text: str) -> bool:
    """True when ``text`` is an ISO 8601 time or an offset that ``parse_time`` accepts.

    False says only "not one of these forms": the caller asks ``parse_time`` then.
    """
    text = text.strip()
    offset = OFFSET.match(text)
    if offset:
        nanos = float(offset["amount"]) * _NANOS[UNITS[offset["unit"]]]
        return nanos < _LONGEST_OFFSET
    iso = _ISO.match(text)
    if iso is None:
        return False
    # the fraction beyond microseconds and the zone's letter are pandas' to read, not datetime's
    zone = "+00:00" if iso["zone"] in (None, "Z") else iso["zone"]
    try:
        stamp = datetime.fromisoformat(f"{iso['date']}T{iso['time'] or '00:00'}{zone}")
    except ValueError:
        return False
    return _EARLIEST <= stamp.astimezone(UTC) < _LATEST


def plain_interval(text: str) -> bool:
    """True when ``text`` is a timeline bucket in one unit (``10s``, ``1min``, ``2h``) of a
    length that ``check_interval`` accepts; False: let ``check_interval`` decide."""
    match = _INTERVAL.match(text)
    if match is None:
        return False
    nanos = int(match["amount"]) * _NANOS[match["unit"]]
    return 0 < nanos <= MAX_INTERVAL_DAYS * 24 * 3600 * 10**9


def parse_peer(text: str) -> tuple[str, int | None]:
    """``ADDR``, ``ADDR:PORT``, ``[V6]:PORT`` or a bare IPv6 address -> (address, port or None).

    Raises :class:`OptionError` (a ``ValueError``) naming what is wrong.
    """
    text = text.strip()
    bracketed = re.fullmatch(r"\[(?P<addr>[^\]]+)\](?::(?P<port>\d+))?", text)
    if bracketed:
        address, port = bracketed["addr"], bracketed["port"]
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, None
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError as error:
        raise OptionError(f"not an IP address: {text!r}") from error
    if port is None:
        return address, None
    try:
        return address, port_number(port)
    except OptionError as error:
        raise OptionError(f"{error} in {text!r}") from None
