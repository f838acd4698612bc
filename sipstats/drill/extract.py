"""Selected calls -> their original packets in a new capture file (``sipstats extract``).

The frames come from :mod:`sipstats.capture.frames`, which re-walks each input file: the
messages of the chosen calls (every message with their Call-IDs, so every leg at a proxy, and
those of the B2BUA legs linked to them, :func:`sipstats.analyze.b2bua.legs_of`) name their
first frames, and the walk adds the other IP fragments and TCP segments of those
messages and, with ``with_media``, the RTP/RTCP to and from the addresses and ports the
calls' SDP negotiated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sipstats.analyze.b2bua import legs_of
from sipstats.errors import SipstatsError

if TYPE_CHECKING:
    from sipstats.analyze import Analysis
    from sipstats.capture.frames import MediaWindow, Record

#: Media is looked for until this long after a call's last SIP message.
MEDIA_TAIL = pd.Timedelta(seconds=2)


@dataclass(frozen=True)
class Extracted:
    """What :func:`extract_calls` wrote."""

    path: Path
    format: str
    calls: int
    linked_legs: int
    """B2BUA legs of those calls written with them (not among the calls asked for)."""
    messages: int
    packets: int
    media_packets: int
    problems: tuple[str, ...]
    """Inputs that could not be walked again, or packets that could not be dissected."""


def _endpoint(text: object) -> tuple[str, int] | None:
    """``addr:port`` or ``[v6]:port`` (as the calls table writes them) -> (addr, port)."""
    if not isinstance(text, str) or ":" not in text:
        return None
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


def _media_windows(calls: pd.DataFrame, messages: pd.DataFrame) -> list[MediaWindow]:
    from sipstats.capture.frames import MediaWindow

    last = messages.groupby("call_id", observed=True)["ts"].max()
    windows = []
    for call in calls.to_dict("records"):
        ends = {e for e in (_endpoint(call["offer_media"]), _endpoint(call["answer_media"])) if e}
        if not ends:
            continue
        rtcp = {(address, port + 1) for address, port in ends}  # RFC 3550 §11
        end = last.get(call["call_id"], call["start_ts"]) + MEDIA_TAIL
        windows.append(MediaWindow(call["start_ts"].value, end.value, frozenset(ends | rtcp)))
    return windows


class ExtractError(SipstatsError):
    """The packets asked for cannot be read again: their capture file is gone or changed."""


def extract_calls(
    analysis: Analysis,
    calls: pd.DataFrame,
    output: Path,
    *,
    with_media: bool = False,
    unavailable: Mapping[str, str] | None = None,
) -> Extracted:
    """Write the packets of ``calls`` (rows of ``analysis.calls``) to ``output``.

    ``unavailable`` names inputs whose capture file cannot be read again, with why (an
    analysis of a dataset: :func:`sipstats.dataset.unavailable_sources`); an ExtractError
    says so when the packets asked for are in one of them, before anything is written.
    """
    # scapy (behind the frame walk) loads only when packets are extracted: `import sipstats`
    # stays fast.
    from sipstats.capture.frames import FramePicker, Wanted, pick_records, write_records

    asked = calls["call_id"].astype("str").unique().tolist()
    call_ids = legs_of(analysis.calls, asked)
    legs = analysis.calls[analysis.calls["call_id"].astype("str").isin(call_ids).to_numpy()]
    chosen = analysis.messages_of(call_ids)
    windows = _media_windows(legs, chosen) if with_media else []
    records: list[Record] = []
    problems: list[str] = []
    media = 0
    frames = {
        str(file): {
            int(frame): Wanted(bool(fragmented), int(segments))
            for frame, fragmented, segments in zip(
                group["frame"], group["fragmented"], group["segments"], strict=True
            )
        }
        for file, group in chosen.groupby("file", observed=True)
    }
    # the messages name a file as reports show it (InputSummary.name), the summary by ``file``
    walked = [
        summary
        for summary in analysis.capture.inputs
        if summary.format and (frames.get(summary.name) or windows)
    ]
    missing = [(unavailable or {}).get(summary.file) for summary in walked]
    if any(missing):
        why = "; ".join(reason for reason in missing if reason)
        raise ExtractError(f"the packets are in capture files that cannot be read again: {why}")
    for summary in walked:
        wanted = frames.get(summary.name, {})
        picker = FramePicker(summary.file, wanted, windows)
        read_again = pick_records(summary.file, picker)
        problems += [f"{summary.name}: {error}" for error in read_again.errors]
        if picker.undissected:
            problems.append(f"{summary.name}: {picker.undissected} packets could not be dissected")
        records += picker.kept
        media += picker.media_kept
    written = write_records(output, records)
    linked = len(call_ids) - len(asked)
    return Extracted(
        output, written, len(calls), linked, len(chosen), len(records), media, tuple(problems)
    )
