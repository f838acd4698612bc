"""Dataset stage: captures <-> a Parquet dataset of the messages table (decode once, ask often).

Layout of ``DATASET/``::

    date=2026-11-25/hour=9/<input key>.parquet   messages of one input in one UTC hour
    _sipstats/inputs/<input key>.json            that input's summary: the mark that it is done

Each input (a capture file) is decoded on its own, its parts are written to temporary names
and renamed into place, and only then is its summary written (also by rename). A re-run
decodes only the inputs that have no summary yet, or whose file changed since; before
decoding an input it removes whatever parts an interrupted run left of it, so no row is ever
there twice. Parquet files carry the sipstats version and the schema id in their metadata.

:func:`read_dataset` turns a dataset back into a :class:`~sipstats.messages.Capture`, reading
only the row groups a time window or a peer needs (pyarrow filters); the exact selection is
then :func:`sipstats.select.filter_capture`'s, so it cannot differ from a capture's.
pyarrow is an optional dependency (``pip install 'sipstats[dask]'``).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from sipstats import schema
from sipstats.capture.duplicates import DEFAULT_WINDOW_MS
from sipstats.capture.framing import MAX_NUMBER
from sipstats.capture.ports import port_filter
from sipstats.capture.summary import Anomaly, InputSummary, Survey
from sipstats.checks import parse_peer
from sipstats.errors import SipstatsError
from sipstats.messages import Capture, PathSpec, decode_file, expand_inputs, in_capture_order
from sipstats.select import Bound, filter_capture, resolve_bound
from sipstats.textsafe import spelled_out
from sipstats.workers import process_pool

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DatasetError", "IngestResult", "ingest", "is_dataset", "read_dataset"]

#: Identifier of the stored messages table; bump the suffix on an incompatible change.
SCHEMA_ID: Final = "sipstats.messages/1"
#: Folder of a dataset that holds the input summaries (and marks a folder as a dataset).
META_DIR: Final = "_sipstats"
_INPUTS: Final = "inputs"
_METADATA_KEY: Final = b"sipstats"
_PARTITIONS: Final = (("date", "string"), ("hour", "int8"))
#: Integer columns read back as pandas' nullable integers (exact, NA kept), then conformed.
_NULLABLE: Final = {
    "int16": pd.Int16Dtype(),
    "int32": pd.Int32Dtype(),
    "int64": pd.Int64Dtype(),
    "uint32": pd.UInt32Dtype(),
}


class DatasetError(SipstatsError):
    """A dataset that cannot be written or read (missing pyarrow, not a dataset, damaged)."""


def _pyarrow() -> Any:
    """pyarrow, or a :class:`DatasetError` that names the extra to install."""
    try:
        import pyarrow
        import pyarrow.dataset
        import pyarrow.parquet
    except ImportError as error:
        raise DatasetError("Parquet datasets need pyarrow: pip install 'sipstats[dask]'") from error
    return pyarrow


def _version() -> str:
    from importlib import metadata  # only ingest writes it: not every report's start-up

    try:
        return metadata.version("sipstats")
    except metadata.PackageNotFoundError:
        return "unknown"


def is_dataset(path: PathSpec) -> bool:
    """True when ``path`` is a folder written by :func:`ingest`."""
    return (Path(path) / META_DIR / _INPUTS).is_dir()


# Input summaries: stored whole (every counter and example frame), so a report from the
# dataset says exactly what a report from the captures says about each file.


def summary_to_record(summary: InputSummary) -> dict[str, Any]:
    """Every field of an input summary, JSON-ready."""
    return dataclasses.asdict(summary)


def summary_from_record(record: dict[str, Any]) -> InputSummary:
    """The input summary :func:`summary_to_record` stored."""
    fields = dict(record)
    fields["not_decodable"] = Counter(fields.get("not_decodable", {}))
    fields["unsupported"] = Counter(fields.get("unsupported", {}))
    fields["tunnels"] = Counter(fields.get("tunnels", {}))
    for name in ("malformed", "icmp_unreachable"):
        fields[name] = {key: Anomaly(**anomaly) for key, anomaly in fields.get(name, {}).items()}
    if fields.get("no_sip") is not None:
        fields["no_sip"] = Survey(**fields["no_sip"])
    return InputSummary(**fields)


@dataclass(frozen=True)
class _Source:
    """One capture file as ingest sees it: where it is and what it looked like."""

    path: str
    size: int
    mtime_ns: int
    duplicate_window_ms: float
    """The capture-duplicate window it is decoded with: rows decoded with another differ."""

    @property
    def key(self) -> str:
        """Stable name of this input's parts and summary (the same path gives the same key),
        UTF-8 whatever the file's name (pyarrow opens paths only as UTF-8)."""
        digest = hashlib.sha256(os.fsencode(os.path.abspath(self.path))).hexdigest()[:16]
        return f"{spelled_out(Path(self.path).name)[:64]}-{digest}"

    @classmethod
    def of(cls, path: str, duplicate_window_ms: float) -> _Source:
        try:
            stat = os.stat(path)
        except OSError:
            return cls(path, -1, -1, duplicate_window_ms)
        return cls(path, stat.st_size, stat.st_mtime_ns, duplicate_window_ms)


@dataclass
class IngestResult:
    """What one :func:`ingest` run did."""

    dataset: Path
    decoded: list[InputSummary]
    """Inputs decoded by this run, in input order."""
    skipped: list[str]
    """Inputs already in the dataset, unchanged since: not decoded again."""

    @property
    def flagged(self) -> bool:
        """An input was damaged, unreadable or without SIP (``ingest`` then exits 1)."""
        return any(summary.flagged for summary in self.decoded)


def ingest(
    paths: PathSpec | Iterable[PathSpec],
    dataset: PathSpec,
    *,
    ports: Iterable[int] | None = None,
    jobs: int | None = None,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
) -> IngestResult:
    """Decode captures (files, folders, glob patterns) into the Parquet dataset ``dataset``.

    Inputs already stored and unchanged (same size and modification time, decoded with the
    same ``duplicate_window_ms``) are skipped; ``jobs`` processes decode at once (default: one
    per core; interrupted, they are ended at once: :func:`sipstats.workers.process_pool`).
    Capture duplicates are dropped and counted as ``read_capture`` drops them
    (``duplicate_window_ms``, 0: never), and the window is recorded with each input and in
    the Parquet metadata. A file that cannot be read is stored as an input with its error,
    like any other, so the dataset's report names it.
    """
    _pyarrow()
    root = Path(dataset)
    (root / META_DIR / _INPUTS).mkdir(parents=True, exist_ok=True)
    specs = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    port_set = port_filter(ports)
    todo: list[_Source] = []
    skipped: list[str] = []
    decoded: list[InputSummary] = []
    for entry in expand_inputs(specs):
        if isinstance(entry, InputSummary):  # a pattern that matched nothing
            decoded.append(entry)
            continue
        source = _Source.of(entry, duplicate_window_ms)
        if _stored(root, source):
            skipped.append(entry)
        else:
            todo.append(source)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    if workers == 1:
        decoded += [_ingest_one(root, source, port_set) for source in todo]
    else:
        with process_pool(workers) as pool:
            decoded += pool.map(_ingest_one, [root] * len(todo), todo, [port_set] * len(todo))
    return IngestResult(dataset=root, decoded=decoded, skipped=skipped)


def _record_path(root: Path, source: _Source) -> Path:
    return root / META_DIR / _INPUTS / f"{source.key}.json"


def _stored(root: Path, source: _Source) -> bool:
    """Is this input in the dataset already, from the file as it is now?"""
    try:
        record = json.loads(_record_path(root, source).read_text())
    except (OSError, ValueError):
        return False
    return bool(record.get("source") == dataclasses.asdict(source))


def _ingest_one(root: Path, source: _Source, ports: frozenset[int] | None) -> InputSummary:
    """Decode one input and store it: parts first, its summary last (the 'done' mark)."""
    pa = _pyarrow()
    key = glob.escape(source.key)  # a file name may hold [, * or ?
    for pattern in (f"{key}.parquet", f".{key}.parquet.tmp"):
        for stale in root.glob(f"date=*/hour=*/{pattern}"):
            stale.unlink()  # left by an earlier run of a changed file, or an interrupted one
    _record_path(root, source).unlink(missing_ok=True)
    window = source.duplicate_window_ms
    table, summary = decode_file(source.path, ports=ports, duplicate_window_ms=window)
    messages = table.to_frame()
    del table
    if not messages.empty:
        ts = messages["ts"]
        groups = messages.groupby([ts.dt.strftime("%Y-%m-%d"), ts.dt.hour], sort=True)
        for (day, hour), part in groups:
            folder = root / f"date={day}" / f"hour={hour}"
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomic_parquet(pa, part, folder / f"{source.key}.parquet", window)
    record = {
        "source": dataclasses.asdict(source),
        "sipstats": _version(),
        "schema": SCHEMA_ID,
        "summary": summary_to_record(summary),
    }
    _write_atomic_text(_record_path(root, source), json.dumps(record, indent=1))
    return summary


def _arrow_type(pa: Any, dtype: str) -> Any:
    """The Parquet column type of a messages-table dtype (categories stay dictionary-coded)."""
    if dtype == "category":
        return pa.dictionary(pa.int32(), pa.string())
    if dtype == schema.UTC_TS:
        return pa.timestamp("ns", tz="UTC")
    return pa.bool_() if dtype == "bool" else getattr(pa, dtype.lower())()


def _arrow_schema(pa: Any, duplicate_window_ms: float | None = None) -> pa.Schema:
    """The stored schema: the messages table's, with sipstats' version and schema id (and,
    when writing, the capture-duplicate window the rows were decoded with)."""
    meta: dict[str, Any] = {"version": _version(), "schema": SCHEMA_ID}
    meta["columns"] = list(schema.MESSAGES)
    if duplicate_window_ms is not None:
        meta["duplicate_window_ms"] = duplicate_window_ms
    return pa.schema(
        [(name, _arrow_type(pa, dtype)) for name, (dtype, _) in schema.MESSAGES.items()],
        metadata={_METADATA_KEY: json.dumps(meta).encode()},
    )


def _write_atomic_parquet(
    pa: Any, frame: pd.DataFrame, target: Path, duplicate_window_ms: float
) -> None:
    layout = _arrow_schema(pa, duplicate_window_ms)
    table = pa.Table.from_pandas(frame, schema=layout, preserve_index=False)
    temporary = target.with_name(f".{target.name}.tmp")
    pa.parquet.write_table(table, temporary)
    os.replace(temporary, target)


def _write_atomic_text(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, target)


def _input_records(dataset: PathSpec) -> list[tuple[Path, dict[str, Any]]]:
    """Each input's stored record file and record (its source file's path, size and time;
    its summary), in record name order."""
    folder = Path(dataset) / META_DIR / _INPUTS
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path}: damaged input record: {error}") from error
    return records


def stored_inputs(dataset: PathSpec) -> list[InputSummary]:
    """The input summaries of a dataset, in input path order."""
    return [summary for summary, _ in stored_parts(dataset)]


def stored_parts(dataset: PathSpec) -> list[tuple[InputSummary, list[str]]]:
    """Each input of a dataset with its Parquet files (none when it held no SIP message or
    could not be read), in input path order: a unit of work for a cluster worker."""
    root = Path(dataset)
    by_key: dict[str, list[str]] = {}
    for part in sorted(root.glob("date=*/hour=*/*.parquet")):
        by_key.setdefault(part.stem, []).append(str(part))
    records = [
        (summary_from_record(record["summary"]), by_key.get(path.stem, []))
        for path, record in _input_records(dataset)
    ]
    return sorted(records, key=lambda record: record[0].file)


def unavailable_sources(dataset: PathSpec) -> dict[str, str]:
    """The inputs of a dataset whose capture file is no longer as ingest read it: input ->
    why. Their packets cannot be read again (``sipstats extract``): frame numbers of a
    changed file would name other packets."""
    out = {}
    for _, record in _input_records(dataset):
        stored = record.get("source") or {}
        path = stored.get("path", record["summary"]["file"])
        now = _Source.of(path, stored.get("duplicate_window_ms", DEFAULT_WINDOW_MS))
        if now.size < 0:
            out[record["summary"]["file"]] = f"{path} is missing (moved or deleted since ingest)"
        elif (now.size, now.mtime_ns) != (stored.get("size"), stored.get("mtime_ns")):
            out[record["summary"]["file"]] = f"{path} changed since it was ingested"
    return out


def read_dataset(
    path: PathSpec,
    *,
    since: Bound = None,
    until: Bound = None,
    peer: str | None = None,
) -> Capture:
    """A dataset written by :func:`ingest` as a :class:`Capture` (messages + input summaries).

    ``since``/``until``/``peer`` select as :func:`sipstats.select.filter_capture` does
    (offsets count from the dataset's first message), and only the partitions and row
    groups that can hold selected messages are read.
    """
    pa = _pyarrow()
    if not is_dataset(path):
        raise DatasetError(f"{path}: not a sipstats dataset (no {META_DIR}/{_INPUTS} folder)")
    inputs = stored_inputs(path)
    data = _arrow_dataset(pa, Path(path))
    start = None
    if isinstance(since, pd.Timedelta) or isinstance(until, pd.Timedelta):
        start = _first_message(pa, data)
    low, high = resolve_bound(since, start), resolve_bound(until, start)
    # No push-down of ``until``: the messages after it are the look-ahead that keeps retry
    # verdicts inside the window as they are on the whole capture (``Capture.after``).
    frame = _messages_of(data, _pushdown(pa, low, peer))
    messages = in_capture_order(frame, [summary.file for summary in inputs])
    capture = Capture(messages=schema.conform(messages, schema.MESSAGES), inputs=inputs)
    selected = filter_capture(capture, since=low, until=high, peer=peer)
    if selected.selection.messages_before is None:  # no filter: nothing was left unread
        return selected
    # The push-down read only part of the dataset: the selection counts from all of it, as
    # filtering the captures themselves would (the row count comes from Parquet metadata).
    everything = dataclasses.replace(selected.selection, messages_before=data.count_rows())
    return dataclasses.replace(selected, selection=everything)


def read_parts(
    dataset: PathSpec, parts: list[str], low: pd.Timestamp | None, peer: str | None
) -> pd.DataFrame:
    """The messages of some of a dataset's Parquet files (``stored_parts``) that a window
    from ``low`` and a peer may select, as :func:`read_dataset` reads them: what a cluster
    worker reads of one input (``filter_capture`` then selects exactly)."""
    pa = _pyarrow()
    if not parts:
        return schema.empty(schema.MESSAGES)
    frame = _messages_of(_arrow_dataset(pa, Path(dataset), parts), _pushdown(pa, low, peer))
    return schema.conform(frame, schema.MESSAGES)


def first_and_rows(dataset: PathSpec, parts: list[str]) -> tuple[pd.Timestamp | None, int]:
    """Time of the first message in some of a dataset's Parquet files, and their rows."""
    if not parts:
        return None, 0
    pa = _pyarrow()
    data = _arrow_dataset(pa, Path(dataset), parts)
    return _first_message(pa, data), data.count_rows()


def _messages_of(data: Any, condition: Any) -> pd.DataFrame:
    """The stored messages ``condition`` keeps, with nullable integers as stored; the header
    numbers come as int64 (:func:`_arrow_dataset`) and are clamped as the parser clamps them
    (``sip._clamped``): a dataset written while they were Int64 may hold a larger one."""
    pa = _pyarrow()
    table = data.to_table(columns=list(schema.MESSAGES), filter=condition)
    largest = pa.scalar(MAX_NUMBER, pa.int64())
    for name in schema.HEADER_NUMBERS:
        clamped = pa.compute.min_element_wise(table[name], largest, skip_nulls=False)
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, clamped.cast(pa.uint32()))
    return _text_categories(table.to_pandas(types_mapper=lambda kind: _NULLABLE.get(str(kind))))


def _text_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` whose categorical columns without a value have ``str`` categories, as a
    decoded table's have (:func:`sipstats.schema.no_categories`): Arrow makes an empty
    dictionary object categories."""
    none = schema.no_categories()
    empty = {
        name: none
        for name, dtype in frame.dtypes.items()
        if isinstance(dtype, pd.CategoricalDtype) and len(dtype.categories) == 0
    }
    return frame.astype(empty) if empty else frame


def _arrow_dataset(pa: Any, root: Path, parts: list[str] | None = None) -> Any:
    """The dataset at ``root``, or only its Parquet files ``parts``."""
    keys = pa.schema([(name, getattr(pa, kind)()) for name, kind in _PARTITIONS])
    partitioning = pa.dataset.partitioning(keys, flavor="hive")
    files = sorted(str(p) for p in root.glob("date=*/hour=*/*.parquet")) if parts is None else parts
    layout = _arrow_schema(pa)
    for name in schema.HEADER_NUMBERS:  # stored as uint32, or as int64 by older versions
        layout = layout.set(layout.get_field_index(name), pa.field(name, pa.int64()))
    return pa.dataset.dataset(
        files,
        schema=pa.unify_schemas([layout, keys]),
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=str(root),
    )


def _first_message(pa: Any, data: Any) -> pd.Timestamp | None:
    """Time of the dataset's first message (the origin of ``+SECONDS`` bounds)."""
    ts = data.to_table(columns=["ts"]).column("ts")
    first = pa.compute.min(ts).as_py() if len(ts) else None
    return None if first is None else pd.Timestamp(first)


def _pushdown(pa: Any, low: pd.Timestamp | None, peer: str | None) -> Any:
    """A filter that keeps at least every selected message and those after the window.

    ``since`` prunes whole date partitions and row groups by their statistics; a peer
    prunes by address only (the port, if any, is checked by ``filter_capture``).
    """
    import pyarrow.compute as pc

    condition = None

    def both(expression: Any) -> None:
        nonlocal condition
        condition = expression if condition is None else condition & expression

    date, hour = pc.field("date"), pc.field("hour")
    if low is not None:
        day = low.strftime("%Y-%m-%d")
        both((date > day) | ((date == day) & (hour >= low.hour)))
        both(pc.field("ts") >= pa.scalar(low.as_unit("ns"), pa.timestamp("ns", tz="UTC")))
    if peer is not None:
        address = parse_peer(peer)[0]
        both((pc.field("src") == address) | (pc.field("dst") == address))
    return condition
