"""Messages stage: Payload stream -> one pandas row per SIP message (:class:`Capture`).

:func:`read_capture` finds the capture files, lets the decode stage turn each into
:class:`~sipstats.capture.records.Payload` records, parses every payload with
:func:`sipstats.sip.parse_message` and keeps the fields of the well-formed ones in compact
per-column arrays (categorical columns as integer codes plus one dict of distinct strings), so
memory grows only with the SIP messages kept — never with packets, payload bytes or parsed
objects. Malformed payloads are not rows: each is counted per reason, with example frames, in
the file's :class:`~sipstats.capture.summary.InputSummary`.

Rows are sorted by capture time, then input file, then frame (stable: several messages of one
TCP segment keep their stream order). Absent optional values are NA.

The ``messages`` table (``sipstats.schema.MESSAGES``):

"""

from __future__ import annotations

import ctypes
import gc
import glob
import lzma
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from itertools import islice, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sipstats import schema
from sipstats.capture.deferral import Deferred
from sipstats.capture.duplicates import (
    DEFAULT_WINDOW_MS,
    Copies,
    DuplicateFilter,
    duplicate_filter,
)
from sipstats.capture.magic import HEAD_BYTES, compression, is_capture
from sipstats.capture.pcap import FIRST_RECORD, Clock, Intake, Share
from sipstats.capture.ports import port_filter
from sipstats.capture.reader import ByteRange, iter_payload_batches
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary, Survey
from sipstats.capture.survey import survey_file
from sipstats.errors import CaptureError, OptionError, SipParseError
from sipstats.sip import SipMessage, c_scanner, parse_message, reason_fields
from sipstats.textsafe import spelled_out

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from sipstats.workers import Helper

# pandas and numpy are imported by the functions that build frames: decoding can start (its
# C parser without the GIL) while another thread is still importing them and the analysis.

__doc__ = (__doc__ or "") + schema.markdown_table(schema.MESSAGES)

PathSpec = str | os.PathLike[str]
Progress = Callable[[int, int, int], None]

#: File name endings of captures picked up when a directory is scanned (besides magic).
CAPTURE_SUFFIXES: Final = (".pcap", ".pcapng", ".cap", ".dmp", ".ntar")
COMPRESSED_SUFFIXES: Final = (".gz", ".bz2", ".xz")
#: Categorical columns filled from a Payload field or a SipMessage field of the same name.
_PAYLOAD_TEXT: Final = ("file", "src", "dst", "transport", "encap")
_MESSAGE_TEXT: Final = (
    "method",
    "reason",
    "call_id",
    "cseq_method",
    "branch",
    "from_tag",
    "to_tag",
    "from_uri",
    "to_uri",
    "request_uri",
    "user_agent",
    "server",
    "retry_after_raw",
    "reason_header",
    "sdp_address",
    "sdp_codecs",
    "x_cid",
    "x_call_id",
    "charging_vector",
)
#: Integer columns -> (record, field, array typecode).
_INTS: Final = {
    "ts": ("payload", "ts_ns", "q"),
    "frame": ("payload", "frame", "q"),
    "sport": ("payload", "sport", "i"),
    "dport": ("payload", "dport", "i"),
    "segments": ("payload", "segments", "h"),
    "status": ("message", "status", "h"),
    "cseq": ("message", "cseq", "q"),
    "via_count": ("message", "via_count", "h"),
    "size": ("message", "size", "i"),
    # Nullable: -1 (never a valid value, all are unsigned) stands for NA.
    "retry_after": ("message", "retry_after", "q"),
    "expires": ("message", "expires", "q"),
    "min_expires": ("message", "min_expires", "q"),
    "content_length": ("message", "content_length", "q"),
    "sdp_port": ("message", "sdp_port", "i"),
}
_OPTIONAL_INTS: Final = ("retry_after", "expires", "min_expires", "content_length", "sdp_port")
_FLAGS: Final = {
    "is_request": ("message", "is_request"),
    "has_auth": ("message", "has_auth"),
    "fragmented": ("payload", "fragmented"),
}
_FIELDS: Final = {
    "payload": {name: index for index, name in enumerate(Payload._fields)},
    "message": {name: index for index, name in enumerate(SipMessage._fields)},
}
#: Messages parsed before their fields move into the columns: bounds the payload bytes held.
_BATCH: Final = 2048
#: Where Columns.scan finds a Payload's data, encapsulation and truncated flag.
_PAYLOAD_AT: Final = tuple(Payload._fields.index(name) for name in ("data", "encap", "truncated"))
#: The table's columns for the C builder: (name, kind, record, field index); kind is the
#: array typecode, 'b' for a flag or 't' for coded text; record 0 a Payload, 1 a SipMessage,
#: 2 the duplicate mark given with each row (so that a row never goes in without its mark).
_C_LAYOUT: Final = (
    *((name, "t", 0, _FIELDS["payload"][name]) for name in _PAYLOAD_TEXT),
    *((name, "t", 1, _FIELDS["message"][name]) for name in _MESSAGE_TEXT),
    *(
        (name, code, int(record == "message"), _FIELDS[record][field_name])
        for name, (record, field_name, code) in _INTS.items()
    ),
    *(
        (name, "b", int(record == "message"), _FIELDS[record][field_name])
        for name, (record, field_name) in _FLAGS.items()
    ),
    ("duplicate", "b", 2, 0),
)
#: How often (in payloads) read_capture reports progress.
_PROGRESS_EVERY: Final = 4096


def _c_columns() -> Any:
    """The C builder of the table's rows (``_sipscan.Columns``), or None without the C parser."""
    scanner = c_scanner()
    return None if scanner is None else scanner.Columns(_C_LAYOUT)


class _Codes:
    """One categorical column under construction: int32 codes plus distinct strings.

    Codes follow the strings' first appearance in the rows (every builder gives them in that
    order, and :meth:`extend` keeps it), so rows already in capture order are a categorical
    as they stand. The string -> code dict is built only when codes are added from Python.
    """

    __slots__ = ("_arena", "_index", "_values", "codes")

    def __init__(self) -> None:
        self.codes = array("i")
        self._values: list[str] | None = []
        #: The strings as the C builder gives them, until :attr:`values` is asked for: their
        #: UTF-8 back to back and the native int64 offset where each starts (one more), in
        #: buffers (its Blocks: no copy made; pickled as bytes).
        self._arena: tuple[Any, Any] | None = None
        self._index: dict[str | None, int] | None = None

    @property
    def values(self) -> list[str]:
        """The distinct strings, in code order ('' and None are NA, code -1, never here)."""
        if self._values is None:
            assert self._arena is not None
            self._values = _decoded(*self._arena)
            self._arena = None
        return self._values

    @property
    def index(self) -> dict[str | None, int]:
        """Distinct strings -> code, with the NA spellings ('' and None -> -1)."""
        if self._index is None:
            self._index = {None: -1, "": -1}
            self._index.update(zip(self.values, range(len(self.values)), strict=True))
        return self._index

    def _code(self, value: str) -> int:
        """The code of a value not in :attr:`index` yet, which it now gets."""
        code = self.index[value] = len(self.values)
        self.values.append(value)
        return code

    def extend_values(self, values: tuple[str | None, ...]) -> None:
        """Append values (the pure-Python table; the C builder codes its own)."""
        index = self.index
        first = values[0]
        if first == values[-1] and values.count(first) == len(values):
            # One value throughout the batch (file, transport, often User-Agent): no lookups.
            code = index[first] if first in index else self._code(first)  # type: ignore[arg-type]
            self.codes.extend(array("i", (code,)) * len(values))
            return
        for value in dict.fromkeys(values):
            if value not in index:
                self._code(value)  # type: ignore[arg-type]
        # array(list) is twice as fast as array.extend(iterator).
        self.codes.extend(array("i", list(map(index.__getitem__, values))))

    @classmethod
    def of(cls, codes: np.ndarray, strings: tuple[Any, Any]) -> _Codes:
        """A column from its codes and its distinct non-empty strings in code order, as
        :func:`_exported_text` gives them (buffers, see :attr:`_arena`): no str is made for
        them here, and the codes are copied once."""
        import numpy as np

        column = cls()
        column.codes.frombytes(codes.astype(np.int32, copy=False).data.cast("B"))
        column._values, column._arena = None, strings
        return column

    def extend(self, other: _Codes) -> None:
        """Append another column's codes, translated into this column's strings."""
        import numpy as np

        if not other.codes:
            return
        if not self.codes and not self.values:  # empty: the other's codes need no mapping
            self.codes, self._index = array("i", other.codes), None
            self._values = None if other._values is None else list(other._values)
            self._arena = other._arena
            return
        index = self.index
        remap = [index[value] if value in index else self._code(value) for value in other.values]
        remap.append(-1)  # code -1 (NA) picks the last slot
        codes = np.frombuffer(other.codes, dtype=np.int32)
        self.codes.frombytes(np.asarray(remap, dtype=np.int32)[codes].tobytes())

    def state(self) -> tuple[Any, ...]:
        """What :meth:`restore` needs to cut the column back to where it is now."""
        values = self._values
        count = None if values is None else len(values)
        return (self.codes, len(self.codes), values, count, self._arena)

    def restore(self, state: tuple[Any, ...]) -> None:
        """Cut the column back to a :meth:`state`: its rows and strings then (the codes array
        and the strings list are cut in place: new ones only ever go after the old ones)."""
        codes, rows, values, count, arena = state
        del codes[rows:]
        if values is not None:
            del values[count:]
        self.codes, self._values, self._arena, self._index = codes, values, arena, None

    def parts(self) -> tuple[np.ndarray, list[str] | tuple[Any, Any]]:
        """The codes as int32 and the strings, as :func:`_text_categorical` takes them."""
        import numpy as np

        codes = np.frombuffer(self.codes, dtype=np.int32) if self.codes else np.empty(0, np.int32)
        if self._values is None:
            assert self._arena is not None
            return codes, self._arena
        return codes, self._values


def _exported_text(item: tuple[Any, int, Any, Any]) -> tuple[np.ndarray, tuple[Any, Any]]:
    """A text column as the C builder's ``export()`` gives it: its codes (signed integers of
    the width it says, 1, 2 or 4 bytes; -1: NA), and its strings' buffers (see
    ``_Codes._arena``)."""
    import numpy as np

    codes, width, arena, offsets = item
    return np.frombuffer(codes, dtype=f"i{width}"), (arena, offsets)


def _text_categorical(
    codes: np.ndarray, strings: list[str] | tuple[Any, Any], order: np.ndarray | None
) -> pd.Categorical[str]:
    """A text column from its ``codes`` (signed integers of any width; -1: NA) and distinct
    ``strings`` (a list, or
    the C builder's (arena, offsets) buffers, see ``_Codes._arena``), its rows in ``order``
    (None: as they are); its categories in order of first appearance in those rows, so that
    the result does not depend on the order in which the rows were decoded (files, parts of
    a file in several processes)."""
    import numpy as np
    import pandas as pd

    taken = None
    if order is not None:
        positions, seen = pd.factorize(codes[order])  # -1 (NA) is one of the values here
        present = seen >= 0
        taken = seen[present]
        codes = np.where(present, np.cumsum(present) - 1, -1).astype(np.int32)[positions]
    # else the codes already follow first appearance in these rows
    if isinstance(strings, tuple):
        index = _arrow_index(*strings, taken)
        if index is not None:  # the builder's bytes as they are: no str per category
            return _categorical_of_distinct(codes, index)
        strings = _decoded(*strings)
    return _categorical(codes, strings if taken is None else [strings[k] for k in taken])


def _decoded(arena: Any, offsets: Any) -> list[str]:
    """The strings held back to back in the buffer ``arena`` (UTF-8, lone surrogates passed
    through), each starting at its int64 offset in ``offsets``."""
    import numpy as np

    bounds = np.frombuffer(offsets, dtype=np.int64).tolist()
    arena = bytes(arena)
    if arena.isascii():  # then byte offsets are character offsets
        text = arena.decode("ascii")
        return [text[start:end] for start, end in pairwise(bounds)]
    return [arena[start:end].decode("utf-8", "surrogatepass") for start, end in pairwise(bounds)]


@cache
def _arrow_text() -> Any:
    """pandas' ``str`` dtype when Arrow holds it (pandas 3 with pyarrow installed), else None."""
    import pandas as pd

    dtype = pd.Index([], dtype=str).dtype
    return dtype if getattr(dtype, "storage", None) == "pyarrow" else None


def _arrow_index(arena: Any, offsets: Any, taken: np.ndarray | None) -> pd.Index | None:
    """The strings of ``arena`` (as :func:`_decoded` reads it; only those at ``taken``, in that
    order, unless None) as pandas ``str`` made by Arrow from the bytes as they are; None when
    pandas keeps ``str`` in Python objects, or the bytes are not all valid UTF-8 (lone
    surrogates of a file name, which :func:`text_index` spells out)."""
    dtype = _arrow_text()
    if dtype is None:
        return None
    import pandas as pd
    import pyarrow as pa

    count = len(offsets) // 8 - 1
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(arena)]
    strings = pa.Array.from_buffers(pa.large_string(), count, buffers)
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid:
        return None
    if taken is not None:
        strings = strings.take(pa.array(taken))
    # the stubs know no dtype argument; without it pandas would make its NA-semantics kind
    array = pd.arrays.ArrowStringArray(strings, dtype=dtype)  # type: ignore[call-arg]
    return pd.Index(array, copy=False)


def _categorical(codes: np.ndarray, categories: list[str]) -> pd.Categorical[str]:
    """A categorical of ``codes`` (signed integers; -1: NA) into ``categories``, which are
    distinct."""
    import pandas as pd

    storable = _storable(categories)
    index = pd.Index(storable, dtype=str)
    if storable is categories:
        return _categorical_of_distinct(codes, index)
    return pd.Categorical.from_codes(codes, categories=index, validate=False)


def _categorical_of_distinct(codes: np.ndarray, index: pd.Index) -> pd.Categorical[str]:
    """A categorical of ``codes`` (signed integers; -1: NA) into ``index``, whose strings are
    distinct by construction (the builders code each string once): pandas' check of that
    hashed every string again, a quarter of the table's conversion."""
    import pandas as pd

    dtype = pd.CategoricalDtype._from_fastpath(index, ordered=False)  # type: ignore[attr-defined]
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


class MessageTable:
    """The messages table under construction: compact columns, filled a batch at a time.

    Added messages wait in a small batch; their fields then move, column by column, into
    arrays of fixed-width numbers and categorical codes, so memory grows by about a hundred
    bytes per message plus each distinct string once. Tables decoded separately (files, or
    byte ranges of one file in parallel workers) are combined with :meth:`extend`;
    :meth:`to_frame` sorts and conforms the result.
    """

    def __init__(self) -> None:
        self.text = {name: _Codes() for name in (*_PAYLOAD_TEXT, *_MESSAGE_TEXT)}
        self.ints = {name: array(code) for name, (_, _, code) in _INTS.items()}
        self.flags = {name: bytearray() for name in (*_FLAGS, "duplicate")}
        self._payloads: list[Payload] = []
        self._messages: list[SipMessage] = []
        #: The duplicate marks of the batch (the C builder keeps its rows' marks itself).
        self._copies = bytearray()
        #: The C builder (rows parsed and coded in C), moved into the columns above at the end.
        self._c_columns = _c_columns()
        #: Rows the builder handed over (``export()``) that the columns have not taken yet:
        #: only after a failed :meth:`_take_c_columns`; they come before the builder's rows.
        self._exported: dict[str, Any] | None = None

    def __len__(self) -> int:
        built = 0 if self._c_columns is None else len(self._c_columns)
        exported = (
            0 if self._exported is None else len(self._exported["ts"]) // self.ints["ts"].itemsize
        )
        return len(self.ints["ts"]) + len(self._messages) + built + exported

    def __getstate__(self) -> dict[str, Any]:
        """For a worker process to send its table back: the columns, without the C builder."""
        self._store()
        return {**self.__dict__, "_c_columns": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._c_columns = _c_columns()

    def scan(self, payloads: list[Payload], start: int, copies: bytearray | None = None) -> int:
        """Add rows for the payloads from ``start`` on that the C parser reads, up to the
        first it declines; its index (``len(payloads)`` when none). ``copies`` flags the
        capture duplicates among ``payloads``, as in :meth:`extend_batch`. Without the C
        builder, every payload is declined."""
        if self._c_columns is None:
            return start
        stop: int = self._c_columns.scan(payloads, start, *_PAYLOAD_AT, "hep", copies)
        return stop

    def intake(self, copies: Copies | None, keep_duplicates: bool) -> Intake | None:
        """Where the C walk adds the rows of the datagrams it reads itself: this table's C
        builder, judged by ``copies`` first; None when the builder or the filter is Python's."""
        if self._c_columns is None or isinstance(copies, DuplicateFilter):
            return None
        return Intake(self._c_columns, copies, keep_duplicates)

    def extend_batch(
        self, payloads: list[Payload], messages: list[SipMessage], copies: bytearray | None = None
    ) -> None:
        """Add messages and the payloads they came from, in the same order (the payload
        bytes are dropped when the batch is stored); ``copies`` flags capture duplicates
        kept as rows (one byte per message, none: no duplicates)."""
        if self._c_columns is not None:
            marks = bytes(len(messages)) if copies is None else copies
            for payload, message, mark in zip(payloads, messages, marks, strict=True):
                self._c_columns.add(payload, message, mark)
            return
        self._payloads += payloads
        self._messages += messages
        self._copies += bytes(len(messages)) if copies is None else copies
        if len(self._messages) >= _BATCH:
            self._store()

    def _store(self) -> None:
        """Move the batch (or the C builder's rows) into the columns."""
        import numpy as np

        if self._c_columns is not None:
            self._take_c_columns()
        if not self._messages:
            return
        records: dict[str, list[tuple[Any, ...]]] = {
            "payload": list(zip(*self._payloads, strict=True)),
            "message": list(zip(*self._messages, strict=True)),
        }
        self.flags["duplicate"] += self._copies
        self._payloads, self._messages = [], []
        self._copies.clear()
        for name, column in self.text.items():
            record = "payload" if name in _PAYLOAD_TEXT else "message"
            column.extend_values(records[record][_FIELDS[record][name]])
        for name, (record, field_name, code) in _INTS.items():
            values = records[record][_FIELDS[record][field_name]]
            if name in _OPTIONAL_INTS:
                values = tuple(-1 if value is None else value for value in values)
            numbers = np.array(values, dtype=np.int64)
            limits = np.iinfo(np.dtype(code))
            numbers = np.clip(numbers, limits.min, limits.max).astype(code)
            self.ints[name].frombytes(numbers.tobytes())
        for name, (record, field_name) in _FLAGS.items():
            self.flags[name].extend(records[record][_FIELDS[record][field_name]])

    def _take_c_columns(self) -> None:
        """Move the C builder's rows into the columns, all of them or none: the builder hands
        them over first (:attr:`_exported` holds them meanwhile), and when a column cannot
        take its part (no memory) every column is cut back to its rows before, the rows stay
        in :attr:`_exported` for the next call, and the table keeps every row."""
        assert self._c_columns is not None
        if self._exported is None:
            self._exported = self._c_columns.export()  # which leaves the builder empty
        built = self._exported
        text = dict(self.text)
        before = (
            {name: column.state() for name, column in text.items()},
            {name: len(values) for name, values in self.ints.items()},
            {name: len(flags) for name, flags in self.flags.items()},
        )
        try:
            for name, column in text.items():
                exported = _Codes.of(*_exported_text(built[name]))
                if column.codes:
                    column.extend(exported)
                else:  # taken as it is: extend() would copy its codes once more
                    self.text[name] = exported
            for name, values in self.ints.items():
                values.frombytes(built[name])
            for name, flags in self.flags.items():
                flags.extend(built[name])
        except BaseException:
            self.text.update(text)
            for name, column in text.items():
                column.restore(before[0][name])
            for name, values in self.ints.items():
                del values[before[1][name] :]
            for name, flags in self.flags.items():
                del flags[before[2][name] :]
            raise
        self._exported = None
        if len(self._c_columns):  # rows added after a failed call: they follow
            self._take_c_columns()

    def extend(self, other: MessageTable) -> None:
        """Append every row of ``other`` (e.g. the next chunk of a file)."""
        if (
            self._c_columns is not None
            and other._c_columns is not None
            and not other.ints["ts"]
            and other._exported is None
        ):
            # other's rows are all in its C builder (a table decoded in a thread of this
            # process): they move builder to builder, after this table's own rows
            if not len(self):
                self._c_columns, other._c_columns = other._c_columns, self._c_columns
            else:
                self._c_columns.append(other._c_columns)
            return
        self._store()
        other._store()
        for name, column in self.text.items():
            column.extend(other.text[name])
        for name, values in self.ints.items():
            values.extend(other.ints[name])
        for name, flags in self.flags.items():
            flags.extend(other.flags[name])

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame conforming to ``schema.MESSAGES``, sorted by time."""
        import numpy as np

        self._store()
        if not len(self):
            return schema.empty(schema.MESSAGES)
        return _frame(
            {
                name: np.frombuffer(values, dtype=values.typecode)
                for name, values in self.ints.items()
            },
            {name: np.frombuffer(flags, dtype=np.bool_) for name, flags in self.flags.items()},
            {name: codes.parts() for name, codes in self.text.items()},
        )

    def take_frame(self) -> pd.DataFrame:
        """:meth:`to_frame`, leaving the table empty: when the C builder holds every row (one
        pass, or threads of one process), the frame is made over the memory it gives away,
        with no copy of its columns."""
        import numpy as np

        built = self._c_columns
        if (
            built is None
            or not len(built)
            or len(self.ints["ts"])
            or self._messages
            or self._exported is not None
        ):
            return self.to_frame()
        rows = len(built)
        exported = built.export()
        # its hash tables (~15 bytes per row on a large capture) are freed: handed back to the
        # system before the frame is made, whose peak was then the read's
        return_freed_heap(rows)
        ints = {
            name: np.frombuffer(exported[name], dtype=code) for name, (_, _, code) in _INTS.items()
        }
        flags = {
            name: np.frombuffer(exported[name], dtype=np.bool_) for name in (*_FLAGS, "duplicate")
        }
        text = {name: _exported_text(exported.pop(name)) for name in self.text}
        del exported
        return _frame(ints, flags, text)


def _frame(
    ints: dict[str, np.ndarray],
    flags: dict[str, np.ndarray],
    text: Mapping[str, tuple[np.ndarray, list[str] | tuple[Any, Any]]],
) -> pd.DataFrame:
    """The messages table from its columns: numbers, flags, and each text column's codes and
    strings (as :func:`_text_categorical` takes them); sorted by time, conformed."""
    import numpy as np
    import pandas as pd

    keys = (ints["frame"], text["file"][0], ints["ts"])
    # Stable: messages of one frame (a TCP segment) keep their stream order.
    order = None if _in_order(*reversed(keys)) else np.lexsort(keys)
    columns: dict[str, Any] = {}
    for name, values in (*ints.items(), *flags.items()):
        columns[name] = values if order is None else values[order]
    for name, (codes, strings) in text.items():
        columns[name] = _text_categorical(codes, strings, order)
    columns["ts"] = pd.to_datetime(columns["ts"], unit="ns", utc=True)
    status = np.asarray(columns["status"])
    columns["status"] = pd.arrays.IntegerArray(status, status == 0)
    for name in ("cseq", *_OPTIONAL_INTS):  # a CSeq is never NA (-1)
        values = np.asarray(columns[name])
        missing = values < 0
        if name in schema.HEADER_NUMBERS:  # in the schema's width: conform copies nothing
            # decoding kept them in 8 bytes (-1: NA); none is above 2**32 - 1 (sip._clamped
            # clamps or the message is refused), so only an NA's -1 wraps, under the mask
            values = values.astype(np.uint32)
        columns[name] = pd.arrays.IntegerArray(values, missing)
    columns.update(_reason_columns(columns.pop("reason_header")))
    return schema.conform(pd.DataFrame(columns, copy=False), schema.MESSAGES)


def _in_order(first: np.ndarray, *then: np.ndarray) -> bool:
    """Are the rows sorted by ``first``, ties by the next key, and so on (what a stable sort
    would leave as it is)?"""
    import numpy as np

    if len(first) < 2:
        return True
    step = np.diff(first)
    if (step < 0).any():
        return False
    if not then:
        return True
    ties = np.flatnonzero(step == 0)
    if not len(ties):
        return True
    # Each tied pair in order by the next keys: compare (row, row + 1) pairs key by key.
    pairs = [(key[ties], key[ties + 1]) for key in then]
    undecided = np.ones(len(ties), dtype=bool)
    for before, after in pairs:
        if (undecided & (after < before)).any():
            return False
        undecided &= after == before
    return True


def _reason_columns(header: pd.Categorical[str]) -> dict[str, Any]:
    """``reason_protocol``, ``reason_cause``, ``reason_text`` from the raw Reason headers.

    Each distinct header is parsed once (:func:`sipstats.sip.reason_fields`) and the result
    spread over the rows by their codes.
    """
    import numpy as np
    import pandas as pd

    fields = [reason_fields(value) for value in header.categories]
    codes = np.asarray(header.codes)
    causes = np.array([-1 if f[1] is None else f[1] for f in fields] + [-1], dtype=np.int16)
    cause = causes[codes]
    return {
        "reason_protocol": _categorical_of(codes, [f[0] for f in fields]),
        "reason_cause": pd.arrays.IntegerArray(cause, cause < 0),
        "reason_text": _categorical_of(codes, [f[2] for f in fields]),
    }


def _categorical_of(codes: np.ndarray, values: list[str]) -> pd.Categorical[str]:
    """A categorical whose row i holds ``values[codes[i]]`` ('' and code -1 are NA)."""
    import numpy as np
    import pandas as pd

    distinct = list(dict.fromkeys(value for value in values if value))
    index = {value: position for position, value in enumerate(distinct)}
    remap = np.array([index.get(value, -1) for value in values] + [-1], dtype=np.int32)
    return pd.Categorical.from_codes(remap[codes], categories=text_index(distinct))


def text_index(values: list[str]) -> pd.Index:
    """The categories of a text column, storable whatever backs pandas' ``str`` dtype.

    A file name that is not UTF-8 reaches us with lone surrogates (``os.fsdecode``); pandas
    keeps ``str`` in Arrow when pyarrow is installed, and Arrow only holds valid UTF-8, so such
    a value is spelled out (:func:`~sipstats.textsafe.spelled_out`, as the reports show it)
    rather than failing the whole table. One encode of all values checks the common case.
    """
    import pandas as pd

    return pd.Index(_storable(values), dtype=str)


def _storable(values: list[str]) -> list[str]:
    """``values`` themselves when all are valid UTF-8 (:func:`text_index`), else a new list
    with the lone surrogates spelled out."""
    try:
        "\0".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return [spelled_out(value) for value in values]
    return values


def job_count(jobs: int | None) -> int:
    """Processes to work with: ``jobs``, or one per core when None."""
    return (os.cpu_count() or 1) if jobs is None else jobs


def in_capture_order(messages: pd.DataFrame, files: Sequence[str]) -> pd.DataFrame:
    """Rows in :func:`read_capture`'s order: time, input file (in ``files`` order), frame.

    For tables put together from parts (a dataset's files, a cluster's partitions); the
    sort is stable, so messages of one frame keep their order within a part.
    """
    import numpy as np
    import pandas as pd

    if messages.empty:
        return messages.reset_index(drop=True)
    known = list(dict.fromkeys(text_index(list(files))))
    # ranked through the column's few distinct names, never one Python object per row
    codes, distinct = pd.factorize(messages["file"])
    names = [str(name) for name in distinct]
    extra = sorted(set(names) - set(known))
    rank = pd.Index(known + extra).get_indexer(names)
    file_rank = np.where(codes >= 0, rank[codes], -1)
    times = messages["ts"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((messages["frame"].to_numpy(), file_rank, times))
    return messages.iloc[order].reset_index(drop=True)


def decode_payloads(
    payloads: Iterable[Payload],
    summary: InputSummary,
    table: MessageTable,
    *,
    strict: bool = False,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    keep_duplicates: bool = False,
    copies: Copies | None = None,
) -> None:
    """Parse every payload into ``table``; count the malformed ones in ``summary``: the
    payloads, :data:`_BATCH` at a time, to :func:`decode_batches` (same keywords)."""
    decode_batches(
        batched(payloads, _BATCH),
        summary,
        table,
        strict=strict,
        duplicate_window_ms=duplicate_window_ms,
        keep_duplicates=keep_duplicates,
        copies=copies,
    )


def decode_batches(
    batches: Iterable[list[Payload]],
    summary: InputSummary,
    table: MessageTable,
    *,
    strict: bool = False,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    keep_duplicates: bool = False,
    copies: Copies | None = None,
) -> None:
    """Parse every payload of ``batches`` (lists, in capture order) into ``table``; count the
    malformed ones in ``summary``.

    With ``strict`` the first malformed message raises :class:`SipParseError` instead.
    Capture duplicates (the same bytes between the same endpoints within
    ``duplicate_window_ms``, see :mod:`sipstats.capture.duplicates`; 0 turns this off) are
    counted in ``summary.duplicates`` and left out, or kept as rows flagged ``duplicate``;
    ``copies``, when given, is the filter to use, which may have seen the payloads just
    before these (a part of a file). Each batch goes to the C parser in one call, and only
    what it leaves (unusual or malformed messages) is parsed one by one in Python.
    """
    if copies is None and duplicate_window_ms > 0:
        copies = duplicate_filter(duplicate_window_ms)
    for batch in batches:
        if batch:
            _decode_batch(*_set_copies_apart(batch, copies, summary, keep_duplicates), summary,
                          table, strict)  # fmt: skip


def batched(items: Iterable[Payload], size: int) -> Iterator[list[Payload]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _set_copies_apart(
    batch: list[Payload], copies: Copies | None, summary: InputSummary, keep: bool
) -> tuple[list[Payload], bytearray | None]:
    """The batch without its capture duplicates, counted in ``summary``; with ``keep``, the
    whole batch and a byte per payload flagging the duplicates."""
    if copies is None:
        return batch, bytearray(len(batch)) if keep else None
    found = copies.copies(batch)
    summary.duplicates += len(found)
    if keep:
        marks = bytearray(len(batch))
        for i in found:
            marks[i] = 1
        return batch, marks
    if found:
        dropped = set(found)
        batch = [payload for i, payload in enumerate(batch) if i not in dropped]
    return batch, None


def _decode_batch(
    batch: list[Payload],
    marks: bytearray | None,
    summary: InputSummary,
    table: MessageTable,
    strict: bool,
) -> None:
    """Parse a batch; ``marks`` flags the capture duplicates in it that stay rows."""
    start = 0
    while start < len(batch):
        stop = table.scan(batch, start, marks)  # the common shape, parsed and stored in C
        summary.sip_messages += stop - start
        if stop == len(batch):
            return
        payload = batch[stop]
        message = _parse_one(payload, summary, strict)
        if message is not None:
            table.extend_batch(
                [payload], [message], None if marks is None else marks[stop : stop + 1]
            )
            summary.sip_messages += 1
        start = stop + 1


def _parse_one(payload: Payload, summary: InputSummary, strict: bool) -> SipMessage | None:
    """One message in Python: the message, or None when it is counted as malformed."""
    data = payload.data
    try:
        message = parse_message(data, truncated=payload.truncated, delimited=payload.encap == "hep")
    except SipParseError as error:
        reason = error.reason
        if reason == "bad start line" and not _mentions_sip(data):
            if not data.strip(b"\r\n"):
                summary.keepalives += 1  # RFC 5626 §4.4.1 CRLF keep-alive, not an error
                return None
            reason = "not SIP on a SIP port"
        if strict:
            where = f"{payload.file} frame {payload.frame}"
            raise SipParseError(reason, f"{where}: {error.detail}") from error
        summary.anomaly(reason, payload.frame, error.detail)
        return None
    if message.retry_after_raw is not None and message.retry_after is None:
        # RFC 3261 §20.33 syntax not met: the message stays a row, the value is NA.
        if strict:
            raise SipParseError(
                "bad Retry-After",
                f"{payload.file} frame {payload.frame}: {message.retry_after_raw}",
            )
        summary.anomaly("bad Retry-After", payload.frame, message.retry_after_raw[:80])
    return message


def _mentions_sip(data: bytes) -> bool:
    """Does the first line name SIP at all (a broken SIP start line, not other traffic)?"""
    line = data.lstrip(b"\r\n")[:512].split(b"\n", 1)[0]
    return b"sip/" in line.lower()


def decode_file(
    path: PathSpec,
    *,
    ports: frozenset[int] | None = None,
    byte_range: ByteRange | None = None,
    clock: Clock = FIRST_RECORD,
    deferred: list[Deferred] | None = None,
    copies: Copies | None = None,
    strict: bool = False,
    table: MessageTable | None = None,
    tick: Callable[[InputSummary], None] | None = None,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    keep_duplicates: bool = False,
    share: Share | None = None,
) -> tuple[MessageTable, InputSummary]:
    """Decode one capture file (or one ``byte_range`` of it) into a table and its summary.

    A file the reader cannot use at all leaves its :class:`CaptureError` as a one-line error
    in the summary (and raises it with ``strict``). ``tick`` is called every few thousand
    payloads with the summary so far (for progress reports). Capture duplicates: see
    :func:`decode_batches`. ``clock``, ``deferred`` and ``copies``: a part of a file decoded
    on its own (see :func:`sipstats.capture.reader.iter_payloads`); ``share``: a read another
    thread may cut short (:func:`sipstats.capture.reader.iter_payload_batches`).
    """
    table = MessageTable() if table is None else table
    summary = InputSummary(file=os.fspath(path))
    if copies is None and duplicate_window_ms > 0:
        copies = duplicate_filter(duplicate_window_ms)
    try:
        batches: Iterable[list[Payload]] = iter_payload_batches(
            os.fspath(path),
            summary,
            ports=ports,
            byte_range=byte_range,
            clock=clock,
            deferred=deferred,
            intake=table.intake(copies, keep_duplicates),
            share=share,
        )
        if tick is not None:
            batches = _ticking(batches, summary, tick)
        decode_batches(
            batches,
            summary,
            table,
            strict=strict,
            duplicate_window_ms=duplicate_window_ms,
            keep_duplicates=keep_duplicates,
            copies=copies,
        )
    except CaptureError as error:
        if strict:
            raise
        summary.errors.append(str(error))
    except OSError as error:
        if strict:
            raise CaptureError(os.fspath(path), error.strerror or str(error)) from error
        summary.errors.append(f"{os.fspath(path)}: {error.strerror or error}")
    if byte_range is None:
        survey_if_silent(path, summary)
    if strict and (summary.errors or summary.malformed):
        first = summary.errors[0] if summary.errors else next(iter(summary.malformed))
        raise CaptureError(os.fspath(path), first)
    return table, summary


def survey_if_silent(path: PathSpec, summary: InputSummary) -> None:
    """Nothing silent: when a whole file read gave no SIP, say what it held instead."""
    if summary.format and not summary.sip_messages:
        try:
            summary.no_sip = survey_file(path)
        except (CaptureError, OSError):  # it went away since: the first pass's counts stand
            summary.no_sip = Survey(summary.packets, whole_file=False)


def _ticking(
    batches: Iterable[list[Payload]],
    summary: InputSummary,
    tick: Callable[[InputSummary], None],
) -> Iterator[list[Payload]]:
    """The batches, with ``tick`` called after every :data:`_PROGRESS_EVERY` payloads or so,
    and whenever the reader has counted more bytes (the C walk puts most messages in the table
    without a payload)."""
    due = _PROGRESS_EVERY
    count = 0
    shown = summary.bytes
    for batch in batches:
        count += len(batch)
        if count >= due or summary.bytes != shown:
            tick(summary)
            due = count + _PROGRESS_EVERY
            shown = summary.bytes
        yield batch


class DecodeOptions(NamedTuple):
    """How every file is decoded: :func:`read_capture`'s keywords of the same names."""

    ports: frozenset[int] | None = None
    strict: bool = False
    duplicate_window_ms: float = DEFAULT_WINDOW_MS
    keep_duplicates: bool = False

    def decode(self, path: PathSpec, **part: Any) -> tuple[MessageTable, InputSummary]:
        """:func:`decode_file` with these options (``part``: its other keywords)."""
        return decode_file(path, **self._asdict(), **part)


@dataclass(frozen=True)
class Selection:
    """The filters a capture was read and selected with, so every report can say what it
    counted: ports (``read_capture``), then a time window and a peer
    (:func:`sipstats.select.filter_capture`, which resolves offsets to times)."""

    ports: tuple[int, ...] | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    peer: str | None = None
    messages_before: int | None = None
    """SIP messages read before the window and peer selected (None: they selected nothing)."""

    @property
    def filters(self) -> dict[str, str]:
        """Each filter in force, as a report shows it (``{}`` when none)."""
        shown = {
            "ports": None if self.ports is None else ",".join(str(p) for p in self.ports),
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "peer": self.peer,
        }
        return {name: value for name, value in shown.items() if value is not None}


@dataclass
class Capture:
    """Every SIP message of one or more capture files, and what each file contributed."""

    messages: pd.DataFrame
    """One row per SIP message, columns ``sipstats.schema.MESSAGES``."""
    inputs: list[InputSummary] = field(default_factory=list)
    after: pd.DataFrame | None = None
    """Messages after a time window's end (same selection otherwise), or None: look-ahead
    that verdicts on the window's events read (was a failure retried?); no table counts them."""
    selection: Selection = field(default_factory=Selection)
    """The filters it was read and selected with."""
    held_elsewhere: int | None = None
    """SIP messages selected when ``messages`` does not hold them (the Dask engine keeps them
    on its workers: ``messages`` is then empty); None: ``messages`` holds every one."""

    @property
    def selected_messages(self) -> int:
        """SIP messages read and selected."""
        return len(self.messages) if self.held_elsewhere is None else self.held_elsewhere

    @property
    def selected_nothing(self) -> bool:
        """Filters were given and no SIP message passed them although there was traffic."""
        if not self.selection.filters or self.selected_messages:
            return False
        return bool(self.selection.messages_before) or self.packets > 0

    @property
    def packets(self) -> int:
        """Packets read from all inputs."""
        return sum(summary.packets for summary in self.inputs)

    @property
    def malformed(self) -> int:
        """Payloads counted as malformed (not rows) in all inputs."""
        return sum(summary.malformed_total for summary in self.inputs)

    @property
    def errors(self) -> list[str]:
        """File-level errors of all inputs, one line each."""
        return [error for summary in self.inputs for error in summary.errors]

    def __repr__(self) -> str:
        return (
            f"<Capture: {len(self.inputs)} file(s), {self.packets} packets, "
            f"{self.selected_messages} SIP messages, {self.malformed} malformed, "
            f"{len(self.errors)} error(s)>"
        )

    def _repr_html_(self) -> str:
        """Compact summary for Jupyter, drawn by :func:`sipstats.render.notebook.capture_html`."""
        from sipstats.render.notebook import capture_html  # layering: see test_architecture

        return capture_html(self)


def read_capture(
    paths: PathSpec | Iterable[PathSpec],
    *,
    ports: Iterable[int] | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    duplicate_window_ms: float = DEFAULT_WINDOW_MS,
    keep_duplicates: bool = False,
    jobs: int | None = 1,
    threads: int = 1,
    helper: Helper | None = None,
) -> Capture:
    """Read capture files, directories (recursively) and glob patterns into a :class:`Capture`.

    Messages of several files are merged by time. A file that cannot be read becomes an input
    with a one-line error; nothing else is lost. ``ports`` restricts SIP to those ports
    (checked first: a number outside 1-65535 or an empty list is an :class:`OptionError`);
    ``progress(bytes_done, bytes_total, packets_done)`` is called now and then; ``strict``
    raises on the first damaged file or malformed message instead of counting it.
    Within each file, a copy of a message seen again between the same endpoints within
    ``duplicate_window_ms`` (0: never) is a capture duplicate: counted in the file's summary
    and left out, or with ``keep_duplicates`` kept as a row flagged ``duplicate`` (which the
    analysis then leaves out).
    ``jobs`` processes decode at once (None: one per core): files, and parts of large
    classic pcap files, in worker processes (:mod:`sipstats.workers`); the result is the same.
    ``threads`` above 1 (with ``jobs`` 1) decodes the same units in that many threads of this
    process instead: the C parser works without the GIL, and the threads' tables join this
    one's without being sent between processes. Without the C parser it decodes in one thread.
    With a ``helper`` (one file, no worker processes) another thread may decode the second
    half of what this one has not read yet, once it has nothing else to do
    (:class:`sipstats.workers.Helper`).
    """
    specs = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if threads > 1 and jobs != 1:
        raise OptionError(f"decode with processes (jobs={jobs}) or threads ({threads}), not both")
    options = DecodeOptions(port_filter(ports), strict, duplicate_window_ms, keep_duplicates)
    entries = expand_inputs(specs)
    table = MessageTable()
    with collector_paused():
        jobs = job_count(jobs)
        threads = threads if c_scanner() is not None else 1  # the GIL would serialise them
        inputs = None
        if jobs > 1 or threads > 1:
            from sipstats import workers  # the pools only when they are asked for

            inputs = workers.decode_in_workers(
                entries, max(jobs, threads), table, options, progress, threads=threads > 1
            )
        if inputs is None and helper is not None:
            from sipstats import workers

            inputs = workers.decode_shared(entries, table, options, progress, helper)
        if inputs is None:
            inputs = _decode_one_by_one(entries, table, options, progress)
        messages = table.take_frame()
    del table
    return_freed_heap(len(messages))
    ports_given = None if options.ports is None else tuple(sorted(options.ports))
    return Capture(messages=messages, inputs=inputs, selection=Selection(ports=ports_given))


def _decode_one_by_one(
    entries: list[str | InputSummary],
    table: MessageTable,
    options: DecodeOptions,
    progress: Progress | None,
) -> list[InputSummary]:
    """Decode the files in this process, one after the other, into ``table``."""
    total = sum(_size(entry) for entry in entries if isinstance(entry, str))
    done = 0
    packets = 0
    inputs: list[InputSummary] = []
    for entry in entries:
        if isinstance(entry, InputSummary):  # a pattern that matched nothing
            inputs.append(entry)
            continue
        size = _size(entry)
        tick = None if progress is None else partial(_report, progress, done, size, total, packets)
        summary = options.decode(entry, table=table, tick=tick)[1]
        inputs.append(summary)
        done += size
        packets += summary.packets
        if progress is not None:
            progress(done, total, packets)
    return inputs


#: Suffixes a capture file name sheds to give its stem (compression first).
_CAPTURE_SUFFIXES: Final = (".gz", ".bz2", ".xz", ".pcapng", ".pcap", ".cap")


def capture_stem(files: Sequence[str | os.PathLike[str]]) -> str:
    """Name for output files: the one capture's file name without capture suffixes
    (``sbc-1.pcapng.gz`` -> ``sbc-1``); ``sipstats`` for several files or none."""
    if len(files) != 1:
        return "sipstats"
    name = Path(files[0]).name
    for suffix in _CAPTURE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name or "sipstats"


#: Rows from which freed heap is handed back to the OS (see :func:`return_freed_heap`).
TRIM_FROM_ROWS: Final = 50_000


def return_freed_heap(rows: int) -> None:
    """Hand the heap that tables of ``rows`` messages freed back to the operating system
    (glibc only); nothing below :data:`TRIM_FROM_ROWS` rows.

    The column arrays grow by reallocation (the C builder's hash tables too, freed by its
    ``export()``); glibc keeps what they freed inside the process. ``malloc_trim`` gives it
    back, so the memory kept is the table's. Measured after ``read_capture`` (resident set):
    212,272 messages 218 -> 184 MB; 13,097 messages 127 -> 125 MB, so it runs only from
    :data:`TRIM_FROM_ROWS` rows on. It touches nothing else: glibc's own symbol, looked up in
    the process (no library search, no subprocess); elsewhere there is none and this is a no-op.
    """
    if rows < TRIM_FROM_ROWS:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        found: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except (OSError, TypeError):  # no process-wide symbol table (Windows)
        return None
    return found


class _Pauses:
    """The pauses of the cycle collector under way (:func:`collector_paused`), in any thread."""

    lock: Final = threading.Lock()
    count = 0
    was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the body runs; restore it once no pause is left.

    Decoding allocates a few short-lived tuples per packet and keeps batches of them alive,
    which sets off full collections over every object of the process (pandas, numpy) again
    and again; they find next to nothing and cost about a fifth of the decoding time.
    Importing pandas is the same (about 0.05 s of its 0.4 s CPU). Reference counting still
    frees everything at once; a rare cycle waits for the collector's next run.
    Pauses nest and overlap across threads (the command line imports pandas while a thread
    decodes): the collector runs again when the last one ends, whichever thread began first.
    """
    with _Pauses.lock:
        if _Pauses.count == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.count += 1
    try:
        yield
    finally:
        with _Pauses.lock:
            _Pauses.count -= 1
            if _Pauses.count == 0 and _Pauses.was_enabled:
                gc.enable()


def _report(
    progress: Progress, done: int, size: int, total: int, packets: int, summary: InputSummary
) -> None:
    """Progress inside a file: its bytes read so far, capped at its size (compressed files)."""
    progress(done + min(summary.bytes, size), total, packets + summary.packets)


def expand_inputs(specs: list[PathSpec]) -> list[str | InputSummary]:
    """Capture files named by ``specs``, in order, each once; an input with an error for a
    pattern that matches no capture."""
    entries: list[str | InputSummary] = []
    seen: set[str] = set()
    for spec in specs:
        text = os.fspath(spec)
        path = Path(text)
        if path.is_dir():
            found = _captures_in(path)
        elif not path.exists() and any(char in text for char in "*?["):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                if Path(match).is_dir():
                    found += _captures_in(Path(match))
                elif _is_capture(Path(match)):
                    found.append(match)
            if not found:
                entries.append(InputSummary(file=text, errors=[f"{text}: no capture file matches"]))
        else:
            found = [text]  # a named file always goes to the reader, which explains any damage
        entries += [name for name in found if name not in seen]
        seen.update(found)
    return entries


def _captures_in(directory: Path) -> list[str]:
    return [str(path) for path in sorted(directory.rglob("*")) if _is_capture(path)]


def _is_capture(path: Path) -> bool:
    """A file that looks like a capture: by its name, or by its first bytes (maybe compressed)."""
    if not path.is_file():
        return False
    name = path.name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith(CAPTURE_SUFFIXES):
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        compressed = compression(head)
        if compressed is not None:
            with compressed[1](path, "rb") as inner:
                head = inner.read(HEAD_BYTES)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return is_capture(head)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
