"""Message-level figures in a form that adds up: what the report needs of every message.

Most report tables read the messages one by one only where they are unique responses (or
the authenticated INVITEs that answer a challenge); everything else is a count: messages per
method, code and phrase, retransmissions, software names, the capture's time span. A
:class:`Tally` holds those counts, and :func:`report_messages` the rows. Both are taken per
Call-ID partition on a cluster worker and joined on the client (:func:`combine`,
``pd.concat``), so the client holds tables that grow with the transactions, never every
message; the local engine takes them from all messages at once, so both engines compute the
report from the same two inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.responses import response_rows

__all__ = [
    "Tally",
    "combine",
    "counted_columns",
    "report_messages",
    "tally",
    "time_runs",
    "weights",
]

#: Columns of :attr:`Tally.groups`: messages are counted per distinct combination of these.
GROUP_KEYS = ("is_request", "method", "status", "reason", "category", "retransmission")
#: Headers that name the software of a SIP element (RFC 3261 §20.41 User-Agent, §20.35 Server).
SOFTWARE_HEADERS = (("user_agent", "User-Agent"), ("server", "Server"))
#: A pause this long or longer splits the capture's time into runs (:func:`time_runs`).
RUN_BREAK = pd.Timedelta(days=1)


@dataclass
class Tally:
    """Counts over every message of a capture (or of one partition of it)."""

    groups: pd.DataFrame
    """One row per distinct :data:`GROUP_KEYS`, with ``n`` messages."""
    software: pd.DataFrame
    """header ('User-Agent' or 'Server'), value, messages: every packet carrying it."""
    runs: pd.DataFrame
    """start, end, messages: the message times in runs without a pause of :data:`RUN_BREAK`."""

    @property
    def messages(self) -> int:
        return int(self.groups["n"].sum())

    @property
    def requests(self) -> int:
        return int(self.groups.loc[self.groups["is_request"], "n"].sum())

    @property
    def responses(self) -> int:
        """Responses with a status (:func:`~sipstats.analyze.responses.response_rows`), as
        every response table counts them."""
        keep, _ = response_rows(self.groups)
        return int(self.groups["n"].to_numpy(dtype=np.int64)[keep].sum())

    @property
    def retransmissions(self) -> int:
        return int(self.groups.loc[self.groups["retransmission"], "n"].sum())

    @property
    def first(self) -> pd.Timestamp | None:
        """Time of the first message (None without any)."""
        return None if self.runs.empty else pd.Timestamp(self.runs["start"].min())

    @property
    def last(self) -> pd.Timestamp | None:
        return None if self.runs.empty else pd.Timestamp(self.runs["end"].max())


def tally(messages: pd.DataFrame) -> Tally:
    """The counts of ``messages`` (``schema.ANALYZED_MESSAGES``)."""
    # ``category`` follows from ``status`` (the catalogue's entry of the code): without it the
    # key packs small enough to be numbered without a hash table of every message
    group = keys.group_ids(*(_codes(messages[name]) for name in GROUP_KEYS if name != "category"))
    first = keys.first_appearances(group)  # group_ids numbers in that order
    groups = messages[list(GROUP_KEYS)].iloc[first].reset_index(drop=True)
    groups["n"] = np.bincount(group)
    software = []
    for column, header in SOFTWARE_HEADERS:
        counts = messages[column].value_counts(sort=False, dropna=True)
        counts = counts[counts > 0]
        software.append(
            pd.DataFrame(
                {
                    "header": header,
                    "value": counts.index.astype("str"),
                    "messages": counts.to_numpy(),
                }
            )
        )
    return Tally(
        groups=groups.astype({"n": "int64"}),
        software=pd.concat(software, ignore_index=True).astype(
            {"header": "str", "value": "str", "messages": "int64"}
        ),
        runs=time_runs(messages["ts"]),
    )


def _codes(column: pd.Series) -> np.ndarray:
    """Integers equal where ``column``'s values are (NA included: a value of its own), in as
    few bytes as the column has them: :func:`keys.group_ids` widens one at a time."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy()
    if column.dtype == bool:
        return column.to_numpy()
    if pd.api.types.is_integer_dtype(column.dtype):  # the values themselves, NA below them all
        # NA read as 0 first: the least of those is the least value or 0, what ``below`` must
        # be under (pandas' ``min`` and a second fill of NA each cost as much as that read)
        values = column.to_numpy(dtype=np.int64, na_value=0)
        below = min(0, int(values.min(initial=0))) - 1
        return np.where(column.isna().to_numpy(), below, values)
    values, _ = pd.factorize(column, use_na_sentinel=False)
    return values.astype(np.int64)


def combine(tallies: Sequence[Tally]) -> Tally:
    """One :class:`Tally` from those of disjoint sets of messages (partitions)."""
    if len(tallies) == 1:
        return tallies[0]
    groups = pd.concat([t.groups.astype({"n": "int64"}) for t in tallies], ignore_index=True)
    groups = groups.astype({"method": "str", "reason": "str", "category": "str"})
    summed = groups.groupby(list(GROUP_KEYS), dropna=False, sort=False)["n"].sum()
    software = pd.concat([t.software for t in tallies], ignore_index=True)
    per_value = software.groupby(["header", "value"], sort=False)["messages"].sum()
    return Tally(
        groups=summed.reset_index(),
        software=per_value.reset_index(),
        runs=_joined_runs(pd.concat([t.runs for t in tallies], ignore_index=True)),
    )


def time_runs(ts: pd.Series) -> pd.DataFrame:
    """start, end, messages of each run of times without a pause of :data:`RUN_BREAK`.

    A damaged record stamped 1970 in a 2024 capture is a run of its own, so the capture's
    span can be read without it (:func:`sipstats.analyze.breakdown.auto_interval`).
    """
    values = keys.ns(ts)
    values = values[values != keys.NAT]
    if not (values[1:] >= values[:-1]).all():  # the analysis hands them over in time order
        values = np.sort(values)
    if values.size == 0:
        return pd.DataFrame(
            {
                "start": pd.Series(dtype=schema.UTC_TS),
                "end": pd.Series(dtype=schema.UTC_TS),
                "messages": pd.Series(dtype="int64"),
            }
        )
    breaks = np.flatnonzero(np.diff(values) >= RUN_BREAK.value)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, values.size - 1]
    return pd.DataFrame(
        {
            "start": pd.to_datetime(values[starts], utc=True),
            "end": pd.to_datetime(values[ends], utc=True),
            "messages": (ends - starts + 1).astype("int64"),
        }
    )


def _joined_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the union of several sets of times, from each set's runs: a run of one set
    lies inside one run of the union, and runs less than :data:`RUN_BREAK` apart join."""
    if runs.empty:
        return runs
    runs = runs.sort_values("start", kind="stable").reset_index(drop=True)
    reach = runs["end"].cummax().shift()
    label = (runs["start"] - reach >= RUN_BREAK).cumsum()  # NaT first: False, run 0
    joined = runs.groupby(label, sort=True).agg(
        start=("start", "min"), end=("end", "max"), messages=("messages", "sum")
    )
    return joined.reset_index(drop=True)


def weights(frame: pd.DataFrame) -> pd.Series:
    """How many messages each row stands for: ``n`` of message groups (:attr:`Tally.groups`),
    1 for each row of a messages table."""
    if "n" in frame.columns:
        return frame["n"].astype("int64")
    return pd.Series(1, index=frame.index, dtype="int64")


#: The columns :func:`tally` and :func:`report_messages` read.
COUNTED_COLUMNS = tuple(
    dict.fromkeys(
        (*GROUP_KEYS, *(column for column, _ in SOFTWARE_HEADERS), "ts", *schema.REPORT_MESSAGES)
    )
)


def counted_columns(messages: pd.DataFrame) -> pd.DataFrame:
    """``messages`` with only :data:`COUNTED_COLUMNS` (no column copied): what the counts and
    the report's messages are taken from, without the other columns' memory."""
    return messages.loc[:, list(COUNTED_COLUMNS)]


def report_messages(messages: pd.DataFrame) -> pd.DataFrame:
    """The messages the report reads one by one: unique responses with a status, as every
    response table counts them (:mod:`sipstats.analyze.responses`: the timeline, Retry-After,
    findings), and authenticated INVITEs (a 401/407 they answer is no failure:
    :mod:`sipstats.analyze.retries`), in the order of ``messages``, with the columns the
    report reads (``schema.REPORT_MESSAGES``)."""
    request = messages["is_request"].to_numpy()
    response = response_rows(messages, unique=True)[0]
    answer = request & messages["has_auth"].to_numpy() & (messages["method"] == "INVITE").to_numpy()
    rows = np.flatnonzero(response | answer)
    # a Call-ID or URI of a left-out message is not carried to the client
    taken = schema.taken(messages, rows, list(schema.REPORT_MESSAGES))
    return schema.conform(taken, schema.REPORT_MESSAGES)
