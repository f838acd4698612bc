"""Analysis + Call-ID -> :class:`Flow`: every message of one call as arrows between hosts.

A call's flow is every message carrying its Call-ID, on every leg: a capture taken at a proxy
holds the caller's leg and the callee's leg under one Call-ID, so both appear, the proxy as
a column in the middle. The legs of a B2BUA carry Call-IDs of their own; those linked to the
call by a correlation header (:mod:`sipstats.analyze.b2bua`) are drawn with it. Hosts
(``address:port``) are columns in order of first appearance; arrows are in capture order,
labelled with the method or the status code and reason, retransmissions marked.
:func:`render_ladder` draws the terminal form; the SVG form is
:func:`sipstats.drill.ladder.ladder_svg` (and ``Flow._repr_svg_`` in Jupyter).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.b2bua import end_to_end, legs_of
from sipstats.analyze.transactions import endpoint_label, endpoints
from sipstats.textsafe import visible

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Arrows drawn per flow; a longer call is cut and the rest counted (a looping dialog can
#: hold thousands of messages).
MAX_ARROWS: Final = 500


@dataclass(frozen=True)
class Arrow:
    """One message: from column ``src`` to column ``dst`` at ``offset_ms`` after the first."""

    offset_ms: float
    src: int
    dst: int
    label: str
    retransmission: bool
    sdp: bool
    """The message carried an SDP body (an offer or answer)."""
    file: str
    frame: int


@dataclass(frozen=True)
class Flow:
    """The ladder of one call (or several Call-IDs drawn together, e.g. B2BUA legs)."""

    call_ids: tuple[str, ...]
    start: pd.Timestamp | None
    hosts: tuple[str, ...]
    arrows: tuple[Arrow, ...]
    omitted: int = 0
    """Messages beyond :data:`MAX_ARROWS`, not drawn."""

    def __str__(self) -> str:
        return render_ladder(self)

    def _repr_svg_(self) -> str:
        from sipstats.drill.ladder import ladder_svg

        return ladder_svg(self)


#: The columns an arrow is drawn from (:func:`_label` and :func:`call_flow`): records of
#: these only, not of every column of the messages.
_ARROW_COLUMNS: Final = (
    "ts", "is_request", "method", "status", "reason", "retransmission", "sdp_port", "file",
    "frame",
)  # fmt: skip


def _label(row: dict[Hashable, Any]) -> str:
    if row["is_request"]:
        label = str(row["method"])
    else:
        reason = row["reason"]
        label = f"{row['status']} {'' if pd.isna(reason) else reason}".strip()
    return visible(label)


def _hosts(address: pd.Series, port: pd.Series) -> list[str]:
    """Each row's :func:`endpoints` as text, and where it is missing what is known of it
    (:func:`endpoint_label`): hosts without a port keep columns of their own."""
    named = endpoints(address, port).tolist()
    return [
        label
        if isinstance(label, str)
        else endpoint_label(None if pd.isna(a) else str(a), None if pd.isna(p) else int(p))
        for label, a, p in zip(named, address.tolist(), port.tolist(), strict=True)
    ]


def call_flow(analysis: Analysis, call_ids: str | Iterable[str]) -> Flow:
    """The flow of the messages with these Call-IDs (one string or several) and of the B2BUA
    legs linked to their calls, in time order.

    Raises ``KeyError`` when no message carries any of them.
    """
    given = (call_ids,) if isinstance(call_ids, str) else tuple(call_ids)
    wanted = tuple(legs_of(analysis.calls, given))
    rows = analysis.messages_of(wanted)
    if rows.empty:
        raise KeyError(f"no message with Call-ID {', '.join(given)}")
    return _flow(analysis, wanted, _records(rows.head(MAX_ARROWS)), *_ends(rows))


def _records(rows: pd.DataFrame) -> list[dict[Hashable, Any]]:
    """The messages as their arrows read them: records of the arrow columns only."""
    return rows[list(_ARROW_COLUMNS)].to_dict("records")


def _ends(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each message's source and destination host (:func:`_hosts`)."""
    return _hosts(rows["src"], rows["sport"]), _hosts(rows["dst"], rows["dport"])


def _flow(
    analysis: Analysis,
    wanted: tuple[str, ...],
    records: list[dict[Hashable, Any]],
    src: list[str],
    dst: list[str],
) -> Flow:
    """The flow of messages (at least one) from ``src`` to ``dst`` hosts, the first
    :data:`MAX_ARROWS` of them drawn (their ``records``)."""
    hosts = list(dict.fromkeys(value for pair in zip(src, dst, strict=True) for value in pair))
    column = {host: index for index, host in enumerate(hosts)}
    if analysis.trunks is not None:
        hosts = [analysis.trunks.label(host) for host in hosts]
    start = records[0]["ts"]
    drawn = tuple(
        Arrow(
            offset_ms=(row["ts"] - start).total_seconds() * 1000.0,
            src=column[s],
            dst=column[d],
            label=_label(row),
            retransmission=bool(row["retransmission"]),
            sdp=not pd.isna(row["sdp_port"]),
            file=str(row["file"]),
            frame=int(row["frame"]),
        )
        for row, s, d in zip(records[:MAX_ARROWS], src, dst, strict=False)
    )
    return Flow(
        wanted, start, tuple(visible(h) for h in hosts), drawn, max(0, len(src) - MAX_ARROWS)
    )


#: Characters between two host columns in the terminal ladder (at least).
_LANE: Final = 30
_TIME: Final = 11


def render_ladder(flow: Flow) -> str:
    """The ladder as text: one column per host, one line per message.

    ``*`` after a label marks a retransmission, ``(sdp)`` a message with an SDP body.
    """
    lane = max([_LANE, *(len(host) + 2 for host in flow.hosts)])
    width = lane * (len(flow.hosts) - 1) + 1
    lines = [f"Call-ID {', '.join(visible(c) for c in flow.call_ids)}"]
    if flow.start is not None:
        lines[0] += f"  (t0 {flow.start.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC)"
    header = [" "] * (_TIME + width + lane)
    for index, host in enumerate(flow.hosts):
        at = max(0, _TIME + index * lane - len(host) // 2)
        header[at : at + len(host)] = list(host)
    lines.append("".join(header).rstrip())
    for arrow in flow.arrows:
        cells = [" "] * width
        for index in range(len(flow.hosts)):
            cells[index * lane] = "|"
        left, right = sorted((arrow.src, arrow.dst))
        a, b = left * lane, right * lane
        label = (
            arrow.label + ("*" if arrow.retransmission else "") + (" (sdp)" if arrow.sdp else "")
        )
        if a == b:  # a host talking to itself (loopback): a short loop
            text = f"<-{label}"
            for offset, char in enumerate(text):
                if a + 1 + offset < width:
                    cells[a + 1 + offset] = char
        else:
            span = b - a - 1
            body = ["-"] * span
            if arrow.src < arrow.dst:
                body[-1] = ">"
            else:
                body[0] = "<"
            fitted = label[: max(0, span - 2)]
            at = max(1, (span - len(fitted)) // 2)
            body[at : at + len(fitted)] = list(fitted)
            cells[a + 1 : b] = body
        lines.append(f"{arrow.offset_ms / 1000.0:+{_TIME - 1}.3f} " + "".join(cells).rstrip())
    if flow.omitted:
        lines.append(f"... {flow.omitted} more messages not drawn (limit {MAX_ARROWS})")
    return "\n".join(lines) + "\n"


#: Outcomes the HTML report shows a sample ladder for: every failure, in report order.
FAILURE_OUTCOMES: Final = tuple(
    outcome
    for outcome in schema.OUTCOMES
    if outcome not in ("answered", "cancelled", "in_progress")
)


def sample_calls(calls: pd.DataFrame) -> list[tuple[str, tuple[str, ...]]]:
    """(outcome or 'slowest_pdd', Call-IDs): the first end-to-end call of each failure outcome
    seen and the one with the longest post-dial delay, whose ladders the report draws, with
    the Call-IDs of all its legs (``calls`` has its B2BUA legs linked)."""
    read = ["start_ts", "call", "outcome", "call_id", "pdd_ms"]  # not a copy of every column
    ends = end_to_end(calls[[*read, "linked_to"]])
    first = _first_started(ends)
    codes = ends["outcome"].cat.codes.to_numpy()
    seen = list(ends["outcome"].cat.categories)
    picked = [(name, first(codes == seen.index(name))) for name in FAILURE_OUTCOMES if name in seen]
    pdd = ends["pdd_ms"]
    if pdd.notna().any():
        slowest = pdd.to_numpy(dtype="float64", na_value=-1.0)
        picked.append(("slowest_pdd", first(slowest == slowest.max())))
    call_ids = ends["call_id"]
    samples = [(name, str(call_ids.iloc[at])) for name, at in picked if at >= 0]
    return [(name, tuple(legs_of(calls, [call_id]))) for name, call_id in samples]


def _first_started(calls: pd.DataFrame) -> Callable[[np.ndarray], int]:
    """The position of the first call by start (no start: last), then call number, among
    those of a mask (-1: none): what the first of a sort by them gives, without a sort."""
    start = keys.ns(calls["start_ts"])
    start = np.where(start == keys.NAT, np.iinfo(np.int64).max, start)
    number = calls["call"].to_numpy()

    def first(rows: np.ndarray) -> int:
        at = np.flatnonzero(rows)
        if not len(at):
            return -1
        at = at[start[at] == start[at].min()]
        return int(at[np.argmin(number[at])])

    return first


def sample_call_ids(calls: pd.DataFrame) -> list[str]:
    """Every Call-ID of the report's sample calls (:func:`sample_calls`), each once, sorted:
    the messages a report without every message keeps for its ladders."""
    return sorted({call_id for _, ids in sample_calls(calls) for call_id in ids})


def sample_flows(analysis: Analysis) -> list[tuple[str, Flow]]:
    """(outcome or 'slowest_pdd', flow) of each :func:`sample_calls` call, for the report:
    what :func:`call_flow` gives for each, with the messages of them all taken once (the
    table read once, each message's records and hosts made once) and dealt out by Call-ID."""
    samples = sample_calls(analysis.calls)
    if not samples:  # nothing to read (an analysis may then hold no messages at all)
        return []
    rows = analysis.messages_of(sorted({call_id for _, ids in samples for call_id in ids}))
    records, (src, dst) = _records(rows), _ends(rows)
    call_id = rows["call_id"].astype("str").tolist()
    flows = []
    for name, ids in samples:
        at = [row for row, held in enumerate(call_id) if held in ids]
        if not at:
            raise KeyError(f"no message with Call-ID {', '.join(ids)}")
        drawn = [records[row] for row in at[:MAX_ARROWS]]
        flows.append(
            (name, _flow(analysis, ids, drawn, [src[r] for r in at], [dst[r] for r in at]))
        )
    return flows
