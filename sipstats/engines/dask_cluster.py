"""Dask engine: capture files -> :class:`~sipstats.analyze.Analysis`, computed on a cluster.

Workers decode one capture file each and keep the messages. Each worker cuts its messages
into Call-ID hash partitions; partition ``k`` of every file meets on one worker (Dask moves
the pieces between workers, never through the client), where the transactions, calls and
registrations of those Call-IDs are built by :func:`sipstats.analyze.dialogs.analyze_dialogs`
— the function the local engine runs over all messages at once. The client gathers only
input summaries and first/last times (to place ``--since/--until`` offsets and the end of
the capture), then the partitions' tables, merges them (:func:`~sipstats.analyze.dialogs.merge`)
and finishes with :func:`sipstats.analyze.assemble`, as :func:`sipstats.analyze` does.

Without a scheduler address a ``distributed.LocalCluster`` of worker processes runs for the
call. dask[distributed] is optional: ``pip install 'sipstats[dask]'``.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pandas as pd

from sipstats import schema
from sipstats.analyze import Analysis, assemble
from sipstats.analyze.dialogs import Dialogs, analyze_dialogs, concat, merge
from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.summary import InputSummary
from sipstats.errors import SipstatsError
from sipstats.messages import (
    Capture,
    PathSpec,
    Selection,
    decode_file,
    expand_inputs,
    in_capture_order,
)
from sipstats.select import Bound, filter_capture, resolve_bound

__all__ = ["EngineError", "analyze_on_dask"]


class EngineError(SipstatsError):
    """The Dask engine cannot run (dask[distributed] missing, scheduler unreachable)."""


def _distributed() -> Any:
    """dask.distributed, or an :class:`EngineError` that names the extra to install."""
    try:
        import distributed
    except ImportError as error:
        raise EngineError(
            "--engine dask needs dask[distributed]: pip install 'sipstats[dask]'"
        ) from error
    return distributed


@contextmanager
def connect(scheduler: str | None, workers: int | None = None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a LocalCluster made for the block."""
    distributed = _distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except OSError as error:
            raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from error
        with client:
            yield client
        return
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: never a clash with another cluster
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


def analyze_on_dask(
    paths: PathSpec | Iterable[PathSpec],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    ports: Iterable[int] | None = None,
    since: Bound = None,
    until: Bound = None,
    peer: str | None = None,
    interval: str = "auto",
    partitions: int | None = None,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
) -> Analysis:
    """Read and analyse captures on a Dask cluster: the :class:`Analysis` ``analyze`` gives.

    ``paths`` are capture files, folders or glob patterns (as for ``read_capture``);
    ``since``/``until``/``peer`` select as ``filter_capture`` does. ``scheduler`` is the
    address of a running scheduler (``tcp://HOST:PORT``); without it a LocalCluster of
    ``workers`` processes (default: one per core) runs for this call. ``partitions`` is the
    number of Call-ID partitions (default: twice the workers). ``duplicate_window_ms`` is
    ``read_capture``'s (capture duplicates are dropped per file as it drops them).
    """
    specs = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    port_set = frozenset(ports) if ports is not None else None
    entries = expand_inputs(specs)
    files = [entry for entry in entries if isinstance(entry, str)]
    with connect(scheduler, workers) as client:
        decoded = client.map(_decode, files, ports=port_set, window=duplicate_window_ms, pure=False)
        facts = client.gather(client.map(_facts, decoded))
        summaries = dict(zip(files, (summary for summary, _, _ in facts), strict=True))
        firsts = [first for _, first, _ in facts if first is not None]
        start = min(firsts) if firsts else None
        low, high = resolve_bound(since, start), resolve_bound(until, start)
        count = partitions or 2 * max(1, len(client.scheduler_info()["workers"]))
        split = client.map(_select_and_split, decoded, low=low, high=high, peer=peer, parts=count)
        ends = [end for end in client.gather(client.map(_last_time, split)) if end is not None]
        capture_end = max(ends) if ends else None
        tables = [
            client.submit(
                _dialogs_of,
                files,
                capture_end,
                *[client.submit(_piece, pieces, k) for pieces in split],
            )
            for k in range(count)
        ]
        parts: list[Dialogs] = client.gather(tables)
        ahead = (
            []
            if high is None
            else client.gather(client.map(_after_window, decoded, low=low, high=high, peer=peer))
        )
    inputs = [summaries[entry] if isinstance(entry, str) else entry for entry in entries]
    merged = merge(parts, files)
    selection = Selection(ports=None if port_set is None else tuple(sorted(port_set)))
    if since is not None or until is not None or peer is not None:  # as filter_capture records
        read = sum(rows for _, _, rows in facts)
        selection = replace(selection, since=low, until=high, peer=peer, messages_before=read)
    after = [piece for piece in ahead if piece is not None and len(piece)]
    capture = Capture(
        messages=merged.messages,
        inputs=inputs,
        selection=selection,
        after=in_capture_order(pd.concat(after, ignore_index=True), files) if after else None,
    )
    return assemble(capture, merged, interval=interval)


# Tasks: module-level functions, so that workers import them by name.


def _decode(
    path: str, ports: frozenset[int] | None, window: float
) -> tuple[InputSummary, pd.DataFrame]:
    table, summary = decode_file(path, ports=ports, duplicate_window_ms=window)
    return summary, table.to_frame()


def _facts(
    decoded: tuple[InputSummary, pd.DataFrame],
) -> tuple[InputSummary, pd.Timestamp | None, int]:
    """What the client needs of a decoded file: its summary, first message time and rows."""
    summary, messages = decoded
    return summary, (messages["ts"].min() if len(messages) else None), len(messages)


def _after_window(
    decoded: tuple[InputSummary, pd.DataFrame],
    *,
    low: pd.Timestamp | None,
    high: pd.Timestamp,
    peer: str | None,
) -> pd.DataFrame | None:
    """The selected messages from ``until`` on: the look-ahead ``filter_capture`` keeps, which
    retry verdicts on failures inside the window need, as the local engine's have."""
    summary, messages = decoded
    return filter_capture(Capture(messages, [summary]), low, high, peer).after


def _select_and_split(
    decoded: tuple[InputSummary, pd.DataFrame],
    *,
    low: pd.Timestamp | None,
    high: pd.Timestamp | None,
    peer: str | None,
    parts: int,
) -> list[pd.DataFrame]:
    """The selected messages of one file, cut into ``parts`` by a hash of the Call-ID."""
    summary, messages = decoded
    messages = filter_capture(Capture(messages, [summary]), low, high, peer).messages
    bucket = pd.util.hash_array(messages["call_id"].astype("str").to_numpy(dtype=object)) % parts
    return [_compact(messages[bucket == k]) for k in range(parts)]


def _compact(piece: pd.DataFrame) -> pd.DataFrame:
    """A piece without the categories of the other pieces: each distinct Call-ID, branch or
    tag is sent once, with the piece that uses it."""
    piece = piece.reset_index(drop=True)
    for name in piece.columns:
        if isinstance(piece[name].dtype, pd.CategoricalDtype):
            piece[name] = piece[name].cat.remove_unused_categories()
    return piece


def _last_time(pieces: Sequence[pd.DataFrame]) -> pd.Timestamp | None:
    ends = [piece["ts"].max() for piece in pieces if len(piece)]
    return max(ends) if ends else None


_piece = operator.getitem


def _dialogs_of(
    files: Sequence[str], capture_end: pd.Timestamp | None, *pieces: pd.DataFrame
) -> Dialogs:
    """The dialog tables of one Call-ID partition (its pieces from every file)."""
    messages = in_capture_order(concat(pieces), files)
    return analyze_dialogs(schema.conform(messages, schema.MESSAGES), capture_end=capture_end)
