"""Dask engine: capture files or a dataset -> :class:`~sipstats.analyze.Analysis`, on a cluster.

Workers read the inputs and keep the messages: a capture file each (a large classic pcap
file in record-aligned byte ranges on several workers, :func:`sipstats.workers.plan`), or a
dataset's Parquet files per capture (:func:`sipstats.dataset.read_parts`). Each worker cuts
its messages into Call-ID hash partitions; partition ``k`` of every file meets on one worker
(Dask moves the pieces between workers, never through the client), where the transactions,
calls and registrations of those Call-IDs are built by
:func:`sipstats.analyze.dialogs.analyze_dialogs` — the function the local engine runs over
all messages at once. The client gathers input summaries and first/last times (to place
``--since/--until`` offsets and the end of the capture), then of each partition its dialog
tables with only the messages the report reads one by one
(:func:`~sipstats.analyze.dialogs.reported`) and the counts of all its messages
(:class:`~sipstats.analyze.tally.Tally`), merges them and finishes with
:func:`sipstats.analyze.assemble`, as :func:`sipstats.analyze` does; last, the messages of
the report's sample calls (its ladders). The client never holds every message.

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
from sipstats.analyze import Analysis, assemble, messages_of_calls
from sipstats.analyze.b2bua import Correlation, check_correlation, link
from sipstats.analyze.dialogs import Dialogs, analyze_dialogs, concat, merge, reported
from sipstats.analyze.tally import Tally, combine, tally
from sipstats.capture.deferral import Deferred
from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.ports import port_filter
from sipstats.capture.summary import InputSummary
from sipstats.dataset import first_and_rows, is_dataset, read_parts, stored_inputs, stored_parts
from sipstats.drill.flow import sample_call_ids
from sipstats.errors import SipstatsError
from sipstats.messages import (
    Capture,
    DecodeOptions,
    MessageTable,
    PathSpec,
    Selection,
    expand_inputs,
    in_capture_order,
)
from sipstats.select import Bound, filter_capture, resolve_bound
from sipstats.workers import Unit, decode_unit, merge_units, plan

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
    correlation_header: Correlation = "auto",
) -> Analysis:
    """Read and analyse captures on a Dask cluster: the :class:`Analysis` ``analyze`` gives.

    ``paths`` are capture files, folders or glob patterns (as for ``read_capture``);
    ``since``/``until``/``peer`` select as ``filter_capture`` does. ``scheduler`` is the
    address of a running scheduler (``tcp://HOST:PORT``); without it a LocalCluster of
    ``workers`` processes (default: one per core) runs for this call. ``partitions`` is the
    number of Call-ID partitions (default: twice the workers). ``duplicate_window_ms`` is
    ``read_capture``'s (capture duplicates are dropped per file as it drops them);
    ``correlation_header`` is ``analyze``'s (B2BUA legs are linked after the merge).
    """
    correlation = check_correlation(correlation_header)
    specs = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    port_set = port_filter(ports)
    dataset = _dataset_of(specs)
    if dataset is not None and (port_set is not None or duplicate_window_ms != DEFAULT_WINDOW_MS):
        raise EngineError("a dataset is read without ports or duplicate window (ingest's)")
    entries: list[str | InputSummary] = (
        expand_inputs(specs) if dataset is None else list(stored_inputs(dataset))
    )
    files = [entry if isinstance(entry, str) else entry.file for entry in entries]
    with connect(scheduler, workers) as client:
        if dataset is None:
            options = DecodeOptions(port_set, duplicate_window_ms=duplicate_window_ms)
            decoded = _decode_on_workers(
                client, [e for e in entries if isinstance(e, str)], options
            )
            facts = client.gather(client.map(_facts, decoded))
            start = min([first for _, first, _ in facts if first is not None], default=None)
            low, high = resolve_bound(since, start), resolve_bound(until, start)
            inputs = [summary for summary, _, _ in facts]
        else:  # the stored messages, read on the workers with the window and peer pushed down
            stored = stored_parts(dataset)
            facts = client.gather(client.map(_stored_facts, stored, dataset=dataset))
            start = min([first for _, first, _ in facts if first is not None], default=None)
            low, high = resolve_bound(since, start), resolve_bound(until, start)
            decoded = client.map(_read_stored, stored, dataset=dataset, low=low, peer=peer)
            inputs = [summary for summary, _ in stored]
        count = partitions or 2 * max(1, len(client.scheduler_info()["workers"]))
        split = client.map(_select_and_split, decoded, low=low, high=high, peer=peer, parts=count)
        ends = [end for end in client.gather(client.map(_last_time, split)) if end is not None]
        capture_end = max(ends) if ends else None
        analysed = [
            client.submit(_dialogs_of, files, capture_end, correlation, *_pieces(client, split, k))
            for k in range(count)
        ]
        parts: list[tuple[Dialogs, Tally]] = client.gather(
            [client.submit(_reported, part) for part in analysed]
        )
        ahead = None
        if high is not None:  # the window and what follows it: retry verdicts look there
            after = client.map(_after_window, decoded, low=low, high=high, peer=peer, parts=count)
            facts_after = client.gather(client.map(_first_and_last, after))
            if any(first is not None for first, _ in facts_after):
                ahead = _ahead(
                    client, files, split, after, facts_after, capture_end, correlation, count
                )
        counted = combine([counts for _, counts in parts])
        merged = merge([dialogs for dialogs, _ in parts], files)
        del parts  # the partitions' tables now live in ``merged``
        samples = _sample_messages(client, analysed, link(merged.calls), files)
    if dataset is None:  # the inputs in order: a pattern that matched nothing among the files
        decoded_inputs = iter(inputs)
        inputs = [
            entry if isinstance(entry, InputSummary) else next(decoded_inputs) for entry in entries
        ]
    selection = Selection(ports=None if port_set is None else tuple(sorted(port_set)))
    if since is not None or until is not None or peer is not None:  # as filter_capture records
        read = sum(rows for _, _, rows in facts)
        selection = replace(selection, since=low, until=high, peer=peer, messages_before=read)
    # The messages stay on the cluster: the capture carries the inputs and the selection.
    capture = Capture(
        messages=schema.empty(schema.MESSAGES),
        inputs=inputs,
        selection=selection,
        held_elsewhere=counted.messages,
    )
    analysis = assemble(capture, merged, counted, interval=interval, ahead=ahead)
    return analysis.replaced(sample_messages=samples)


def _sample_messages(
    client: Any, analysed: Sequence[Any], calls: pd.DataFrame, files: Sequence[str]
) -> pd.DataFrame:
    """Every analysed message of the report's sample calls (every leg: ``calls`` has its
    B2BUA legs linked), fetched from their partitions."""
    wanted = sample_call_ids(calls)
    buckets = _buckets(pd.Series(wanted, dtype="str"), len(analysed))
    by_partition: dict[int, list[str]] = {}
    for call_id, k in zip(wanted, buckets.tolist(), strict=True):
        by_partition.setdefault(k, []).append(call_id)
    pieces = client.gather(
        [client.submit(_messages_with, analysed[k], ids) for k, ids in by_partition.items()]
    )
    if not pieces:
        return schema.empty(schema.ANALYZED_MESSAGES)
    return schema.conform(in_capture_order(concat(pieces), files), schema.ANALYZED_MESSAGES)


def _pieces(client: Any, split: Sequence[Any], k: int) -> list[Any]:
    """Futures of partition ``k`` of each file's split messages (they stay on the workers)."""
    return [client.submit(_piece, pieces, k) for pieces in split]


def _ahead(
    client: Any,
    files: Sequence[str],
    split: Sequence[Any],
    after: Sequence[Any],
    facts_after: Sequence[tuple[pd.Timestamp | None, pd.Timestamp | None]],
    capture_end: pd.Timestamp | None,
    correlation: Correlation,
    count: int,
) -> tuple[Dialogs, pd.Timestamp]:
    """The dialogs of the window and the messages after it, merged, with the first time after
    the window: what :func:`sipstats.analyze.assemble` reads retry verdicts on."""
    end = min(first for first, _ in facts_after if first is not None)
    lasts = [last for _, last in facts_after if last is not None]
    longer_end = max([*lasts, *([capture_end] if capture_end is not None else [])])
    longer = [
        client.submit(
            _dialogs_of,
            files,
            longer_end,
            correlation,
            *_pieces(client, split, k),
            *_pieces(client, after, k),
        )
        for k in range(count)
    ]
    parts = client.gather([client.submit(_reported_dialogs, part) for part in longer])
    return merge(parts, files), end


# Tasks: module-level functions, so that workers import them by name.


def _decode_on_workers(client: Any, files: Sequence[str], options: DecodeOptions) -> list[Any]:
    """Futures of (summary, messages) of each capture file, decoded on the workers: a large
    classic pcap file in record-aligned byte ranges on several of them
    (:func:`sipstats.workers.plan`), put together on one as ``read_capture(jobs=N)`` does."""
    jobs = max(1, sum(client.nthreads().values()))
    units = plan(list(files), jobs, options.duplicate_window_ms)
    results = client.map(decode_unit, units, options=options, pure=False)
    per_file: dict[str, list[int]] = {}
    for index, unit in enumerate(units):
        per_file.setdefault(unit.path, []).append(index)
    return [
        client.submit(
            _whole_file,
            [units[i] for i in per_file[path]],
            options,
            *[results[i] for i in per_file[path]],
        )
        for path in files
    ]


def _whole_file(
    units: list[Unit],
    options: DecodeOptions,
    *results: tuple[MessageTable, InputSummary, list[Deferred]],
) -> tuple[InputSummary, pd.DataFrame]:
    """One file's messages and summary from its units' (its put-off calls made in order)."""
    table = MessageTable()
    summaries = merge_units(units, results, table, options)
    return summaries[units[0].path], table.to_frame()


def _dataset_of(specs: Sequence[PathSpec]) -> str | None:
    """The dataset folder when that is the one input, else None (captures)."""
    if len(specs) == 1 and is_dataset(specs[0]):
        return os.fspath(specs[0])
    if any(is_dataset(spec) for spec in specs):
        raise EngineError("a dataset is read alone, not with other inputs")
    return None


def _stored_facts(
    stored: tuple[InputSummary, list[str]], *, dataset: str
) -> tuple[InputSummary, pd.Timestamp | None, int]:
    """A stored input's summary, first message time and rows (``_facts`` of a dataset)."""
    summary, parts = stored
    first, rows = first_and_rows(dataset, parts)
    return summary, first, rows


def _read_stored(
    stored: tuple[InputSummary, list[str]],
    *,
    dataset: str,
    low: pd.Timestamp | None,
    peer: str | None,
) -> tuple[InputSummary, pd.DataFrame]:
    summary, parts = stored
    return summary, read_parts(dataset, parts, low, peer)


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
    parts: int,
) -> list[pd.DataFrame]:
    """The selected messages of one file from ``until`` on, cut into ``parts`` by Call-ID: the
    look-ahead ``filter_capture`` keeps, which retry verdicts on failures inside the window
    need, as the local engine's have."""
    summary, messages = decoded
    after = filter_capture(Capture(messages, [summary]), low, high, peer).after
    return _split(schema.empty(schema.MESSAGES) if after is None else after, parts)


def _first_and_last(
    pieces: Sequence[pd.DataFrame],
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    firsts = [piece["ts"].min() for piece in pieces if len(piece)]
    return (min(firsts) if firsts else None), _last_time(pieces)


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
    return _split(filter_capture(Capture(messages, [summary]), low, high, peer).messages, parts)


def _buckets(call_ids: pd.Series, parts: int) -> Any:
    """The Call-ID partition of each Call-ID."""
    return pd.util.hash_array(call_ids.astype("str").to_numpy(dtype=object)) % parts


def _split(messages: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """``messages`` cut into ``parts`` by a hash of the Call-ID."""
    bucket = _buckets(messages["call_id"], parts)
    # each piece without the categories of the others: a Call-ID, branch or tag is sent once
    return [schema.used_categories(messages[bucket == k]) for k in range(parts)]


def _last_time(pieces: Sequence[pd.DataFrame]) -> pd.Timestamp | None:
    ends = [piece["ts"].max() for piece in pieces if len(piece)]
    return max(ends) if ends else None


_piece = operator.getitem


def _dialogs_of(
    files: Sequence[str],
    capture_end: pd.Timestamp | None,
    correlation: Correlation,
    *pieces: pd.DataFrame,
) -> Dialogs:
    """The dialog tables of one Call-ID partition (its pieces from every file); they stay on
    the worker."""
    messages = schema.conform(in_capture_order(concat(pieces), files), schema.MESSAGES)
    return analyze_dialogs(messages, capture_end=capture_end, correlation=correlation)


def _reported(parts: Dialogs) -> tuple[Dialogs, Tally]:
    """What the client gets of a partition: its dialog tables with the messages the report
    reads one by one, and the counts of all its messages."""
    return reported(parts), tally(parts.messages)


def _reported_dialogs(parts: Dialogs) -> Dialogs:
    return reported(parts)


def _messages_with(parts: Dialogs, call_ids: Sequence[str]) -> pd.DataFrame:
    return messages_of_calls(parts.messages, call_ids)
