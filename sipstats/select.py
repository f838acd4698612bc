"""Select part of a capture before analysis: a time window and the traffic of one peer.

Capture -> Capture with fewer message rows. Filtering happens on the messages table, so the
analysis sees a smaller capture and every figure of the report speaks of the selection only
(a call that started before ``since`` is seen from its first selected message on).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from sipstats.checks import OFFSET, UNITS, parse_peer
from sipstats.errors import OptionError
from sipstats.messages import Capture


def parse_time(text: str) -> pd.Timestamp | pd.Timedelta:
    """A time window bound: an ISO 8601 time (UTC unless it names a zone) or an offset.

    ``2026-11-25T09:34:50``, ``2026-11-25 09:34:50+01:00`` or ``+90s`` / ``+2min`` / ``+1.5``
    (seconds after the first message of the capture). Raises :class:`OptionError` on anything else.
    """
    match = OFFSET.match(text.strip())
    if match:
        try:
            return pd.Timedelta(f"{match['amount']}{UNITS[match['unit']]}")
        except (ValueError, OverflowError) as error:  # beyond pandas' 292 years
            raise OptionError(f"offset out of range: {text!r}") from error
    try:
        stamp = pd.Timestamp(text.strip())
    except (ValueError, TypeError) as error:
        raise OptionError(f"not a time: {text!r} (use ISO 8601 or +SECONDS)") from error
    if stamp is pd.NaT:
        raise OptionError(f"not a time: {text!r} (use ISO 8601 or +SECONDS)")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


#: A time window bound: a time, an offset from the first message, or none.
Bound = pd.Timestamp | pd.Timedelta | None


def time_bound(value: Bound | str) -> Bound:
    """``value`` as a window bound; text is parsed by :func:`parse_time` (what the command
    line passes on, and the API takes too)."""
    if value is None or isinstance(value, pd.Timestamp | pd.Timedelta):
        return value
    return parse_time(value)


def resolve_bound(value: Bound, start: pd.Timestamp | None) -> pd.Timestamp | None:
    """``value`` as a time: offsets count from ``start`` (None when there is no message)."""
    if isinstance(value, pd.Timedelta):
        return None if start is None else start + value
    return value


def filter_capture(
    capture: Capture,
    since: Bound = None,
    until: Bound = None,
    peer: str | None = None,
) -> Capture:
    """A capture with only the messages in ``[since, until)`` sent to or from ``peer``.

    Offsets (``pd.Timedelta``) count from the first message. ``peer`` is parsed by
    :func:`parse_peer`; with a port, both address and port must match. Input summaries are
    kept unchanged: they describe the files, not the selection; ``Capture.selection``
    records the filters (offsets resolved to times) and how many messages there were before.
    The selected messages from ``until`` on are kept apart in ``Capture.after``, so that a
    verdict on an event inside the window (a failure retried after ``until``) is the same as
    on the whole capture.
    """
    messages = capture.messages
    if since is None and until is None and peer is None:
        return capture
    keep = pd.Series(True, index=messages.index)
    later = pd.Series(False, index=messages.index)
    start = messages["ts"].min() if not messages.empty else None
    low, high = resolve_bound(since, start), resolve_bound(until, start)
    selection = dataclasses.replace(
        capture.selection, since=low, until=high, peer=peer, messages_before=len(messages)
    )
    if not messages.empty and (low is not None or high is not None):
        if low is not None:
            keep &= messages["ts"] >= low
        if high is not None:
            later = keep & (messages["ts"] >= high)
            keep &= ~later
    if peer is not None:
        address, port = parse_peer(peer)
        src = messages["src"].astype("str") == address
        dst = messages["dst"].astype("str") == address
        if port is not None:
            src &= messages["sport"] == port
            dst &= messages["dport"] == port
        keep &= src | dst
        later &= src | dst
    if bool(keep.all()):
        return dataclasses.replace(capture, selection=selection)
    kept = messages[keep].reset_index(drop=True)
    after = messages[later].reset_index(drop=True) if bool(later.any()) else capture.after
    return dataclasses.replace(capture, messages=kept, selection=selection, after=after)
