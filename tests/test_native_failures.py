"""The C column builder is all-or-nothing: a call that fails (memory running out, a value of
the wrong type) leaves every row whole and every string as it was, never a part of a row, a
half-exported table or strings no row uses.

Running out of memory is made real with CPython's test hooks (``_testcapi.set_nomemory``: the
n-th allocation of the process fails), once for each allocation a call makes.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pandas as pd
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from sipstats import messages, sip
from sipstats.capture import duplicates, pcap
from sipstats.capture.records import Payload
from tests import sipfactory as sip_factory

testcapi = pytest.importorskip("_testcapi", reason="this Python has no _testcapi test hooks")

#: Bytes per value of each kind of number column (_sipscan.c's column_put_number).
_WIDTHS = {"q": 8, "i": 4, "h": 2, "b": 1}
#: Allocations tried, one failing at a time: more than any call below makes.
_ALLOCATIONS = 120
#: More than export() makes (a few per column).
_EXPORT_ALLOCATIONS = 1_000


def _builder() -> Any:
    built = messages._c_columns()
    if built is None:
        pytest.skip("sipstats._sipscan is not built or switched off")
    return built


def _payloads(tag: str, count: int, long_uris: Mapping[int, int] | None = None) -> list[Payload]:
    """Requests whose text (addresses, Call-ID, branch, URIs) is new in every one, so each row
    adds strings to the builder's columns; the Request-URI of request ``n`` in ``long_uris`` is
    that many bytes longer, so that its column must grow its string buffer."""
    long_uris = long_uris or {}
    return [
        Payload(
            n,
            f"{tag}.pcap",
            n,
            f"10.0.{n}.1",
            5060 + n,
            "10.0.0.2",
            5060,
            "udp",
            sip_factory.sip_request(
                "INVITE",
                f"sip:{tag}{n}{'x' * long_uris.get(n, 0)}@example.com",
                call_id=f"{tag}-call-{n}",
                cseq=n + 1,
                branch=f"z9hG4bK{tag}{n}",
            ),
        )
        for n in range(count)
    ]


def _scanned(payloads: list[Payload]) -> Any:
    built = _builder()
    assert built.scan(payloads, 0, *messages._PAYLOAD_AT, "hep") == len(payloads)
    return built


def _rows(exported: dict[str, Any]) -> dict[str, int]:
    """Rows of each exported column."""
    kinds = {name: kind for name, kind, _, _ in messages._C_LAYOUT}
    rows = {}
    for name, item in exported.items():
        if kinds[name] == "t":
            codes, width, _, _ = item
            rows[name] = len(codes) // width
        else:
            rows[name] = len(item) // _WIDTHS[kinds[name]]
    return rows


def _contents(exported: dict[str, Any]) -> dict[str, Any]:
    """Every exported buffer as bytes, to compare builders."""
    return {
        name: (bytes(item[0]), item[1], bytes(item[2]), bytes(item[3]))
        if isinstance(item, tuple)
        else bytes(item)
        for name, item in exported.items()
    }


#: What :func:`_run` returns when the call raised MemoryError.
FAILED = object()


def _run(call: Callable[[], object], nth: int) -> object:
    """Run ``call`` with the ``nth`` allocation from now failing: its result, or
    :data:`FAILED` when it raised MemoryError (the allocation was its own)."""
    testcapi.set_nomemory(nth, nth + 1)
    try:
        return call()
    except MemoryError:
        return FAILED
    finally:
        testcapi.remove_mem_hooks()


def _failures(call: Callable[[], Callable[[], object]]) -> int:
    """How many of the allocations tried make the call ``call()`` prepares raise."""
    return sum(_run(call(), nth) is FAILED for nth in range(_ALLOCATIONS))


def _scan(built: Any, payloads: list[Payload], start: int = 0) -> Callable[[], object]:
    return lambda: built.scan(payloads, start, *messages._PAYLOAD_AT, "hep")


@pytest.mark.parametrize("before", [0, 126])
def test_a_row_is_added_whole_or_not_at_all_when_memory_runs_out(before: int) -> None:
    """Each column grows its own buffers: a failure at the tenth column used to leave nine
    columns a value longer than the rest. After 126 rows the row's new strings also widen the
    codes of its columns to two bytes before its long Request-URI needs memory: a failure
    then must narrow them back and forget the string (a stale slot of its hash table would
    code it wrongly when it comes again). A MemoryError that ends the scan early without
    raising (the staging's) must leave the same. Each builder then scans the rest and more,
    and must equal one that never failed."""
    payloads = _payloads("row", before + 2, long_uris={before: 5_000, before + 1: 50_000})
    later = _payloads("later", 3)
    never_failed = _scanned(payloads)
    assert never_failed.scan(later, 0, *messages._PAYLOAD_AT, "hep") == len(later)
    expected = _contents(never_failed.export())
    failures, after_a_row = 0, 0
    for nth in range(_ALLOCATIONS):
        built = _scanned(payloads[:before])
        stop = _run(_scan(built, payloads, before), nth)
        if stop == len(payloads):
            continue
        failures += 1
        after_a_row += len(built) > before
        assert stop is FAILED or stop == len(built), nth
        assert len(built) in (before, before + 1), nth
        assert built.scan(payloads, len(built), *messages._PAYLOAD_AT, "hep") == len(payloads)
        assert built.scan(later, 0, *messages._PAYLOAD_AT, "hep") == len(later)
        assert _contents(built.export()) == expected, nth
    # the rows' own allocations failed: more failures than the call's fixed ones, and some
    # after the first row was written
    assert failures > _failures(lambda: _scan(_scanned(payloads), payloads, len(payloads)))
    assert after_a_row > 0


def test_a_parsed_row_with_a_bad_value_adds_nothing() -> None:
    """add() takes a row sip.py parsed: a field of the wrong type late in the row is refused
    before any column takes a value."""
    payload = _payloads("bad", 1)[0]
    message = sip.parse_message(payload.data)
    built = _scanned(_payloads("good", 2))
    broken = message._replace(sdp_port="not a number")
    with pytest.raises(TypeError):
        built.add(payload, broken)
    assert len(built) == 2
    assert set(_rows(built.export()).values()) == {2}


@pytest.mark.parametrize("before", [0, 126])
def test_a_parsed_row_is_added_whole_or_not_at_all_when_memory_runs_out(before: int) -> None:
    """As the scan: a row add() could not finish goes whole (its strings too, codes narrowed
    back); the builder then takes the rows again and equals one that never failed."""
    payloads = _payloads("add", before + 2, long_uris={before: 5_000, before + 1: 50_000})
    parsed = [sip.parse_message(payload.data) for payload in payloads]

    def add(built: Any, start: int) -> Callable[[], object]:
        rows = zip(payloads[start:], parsed[start:], strict=True)
        return lambda: [built.add(payload, message) for payload, message in rows]

    never_failed = _scanned(payloads[:before])
    add(never_failed, before)()
    expected = _contents(never_failed.export())
    failures, after_a_row = 0, 0
    for nth in range(_ALLOCATIONS):
        built = _scanned(payloads[:before])
        if _run(add(built, before), nth) is not FAILED:
            continue
        failures += 1
        after_a_row += len(built) > before
        assert len(built) in (before, before + 1), nth
        add(built, len(built))()
        assert _contents(built.export()) == expected, nth
    assert after_a_row > 0  # the second row's own allocation failed, after the first went in
    assert failures > after_a_row


def test_a_failed_export_leaves_the_builder_whole() -> None:
    """export() hands every column over; one that fails used to leave the columns before it
    emptied and the rest full. Its hash tables must stay too: the builder then codes the same
    strings again, and new ones, as one that never failed."""
    payloads, later = _payloads("export", 3), _payloads("later", 2)

    def more(built: Any) -> None:
        for part in (payloads, later):
            assert built.scan(part, 0, *messages._PAYLOAD_AT, "hep") == len(part)

    whole = _contents(_scanned(payloads).export())
    never_failed = _scanned(payloads)
    more(never_failed)
    expected = _contents(never_failed.export())
    assert whole != expected
    # every allocation export() makes, one at a time, up to the first that is not its own:
    # each of the columns' handovers among them
    for nth in range(_EXPORT_ALLOCATIONS):
        built = _scanned(payloads)
        if _run(built.export, nth) is not FAILED:
            break
        assert len(built) == len(payloads)
        more(built)
        assert _contents(built.export()) == expected, nth
    assert nth > len(messages._C_LAYOUT)


def test_a_failed_append_leaves_both_builders_as_they_were() -> None:
    """append() codes the other builder's strings into this one's: one that fails used to leave
    this builder with strings no row uses (and so categories of no row). Both then take the
    append again and more rows, as builders that never failed."""
    first, later = _payloads("first", 3), _payloads("later", 2)
    second = _payloads("second", 3, long_uris={2: 50_000})

    def finish(to: Any, other: Any) -> dict[str, Any]:
        to.append(other)
        assert to.scan(later, 0, *messages._PAYLOAD_AT, "hep") == len(later)
        return _contents(to.export())

    expected = finish(_scanned(first), _scanned(second))
    failures = 0
    for nth in range(_ALLOCATIONS):
        to, other = _scanned(first), _scanned(second)
        if _run(lambda: to.append(other), nth) is not FAILED:  # noqa: B023
            continue
        failures += 1
        assert (len(to), len(other)) == (len(first), len(second))
        assert finish(to, other) == expected, nth

    def append_empty() -> Callable[[], object]:
        to, empty = _scanned(first), _builder()
        return lambda: to.append(empty)

    # more than appending an empty builder fails at: coding the other's strings failed too
    assert failures > _failures(append_empty)


@pytest.mark.parametrize("way", ["scan", "extend_batch"])
def test_a_table_keeps_the_duplicate_marks_of_the_rows_a_failed_call_kept(way: str) -> None:
    """MessageTable's rows and their duplicate marks stay in step: a scan (or a batch of
    parsed rows) that fails keeps the rows before the failing one, and their marks."""
    _builder()
    payloads = _payloads("marks", 3, long_uris={1: 50_000, 2: 100_000})
    parsed = [sip.parse_message(payload.data) for payload in payloads]
    copies = bytearray(b"\x01\x00\x01")
    kept = 0
    for nth in range(_ALLOCATIONS):
        table = messages.MessageTable()
        call = (
            partial(table.scan, payloads, 0, copies)
            if way == "scan"
            else partial(table.extend_batch, payloads, parsed, copies)
        )
        if _run(call, nth) is not FAILED:
            continue
        rows = len(table)
        kept += rows > 0
        assert _marks(table) == copies[:rows], nth
    assert kept > 0  # rows went in before the one that failed


def _marks(table: messages.MessageTable) -> bytes:
    """The duplicate marks of the rows the table's C builder holds."""
    return bytes(table._c_columns.export()["duplicate"])


def _records(payloads: list[Payload], repeat: Mapping[int, int]) -> bytes:
    """Classic pcap records (no file header) of the payloads as Ethernet/IPv4/UDP frames,
    payload ``n`` sent ``repeat.get(n, 1)`` times (the copies 1 us apart)."""
    records = b""
    for n, payload in enumerate(payloads):
        head = Ether() / IP(src=payload.src, dst=payload.dst)
        frame = bytes(head / UDP(sport=payload.sport, dport=payload.dport) / Raw(payload.data))
        for copy in range(repeat.get(n, 1)):
            usec = n * 1000 + copy
            records += struct.pack("<IIII", 1_700_000_000, usec, len(frame), len(frame)) + frame
    return records


def _builder_intake() -> pcap.Intake:
    intake = messages.MessageTable().intake(None, keep_duplicates=False)
    assert intake is not None
    return intake


def test_a_failed_walk_intake_keeps_its_rows_marks_and_sightings_in_step() -> None:
    """The C walk adds rows and their duplicate marks through the builder: a walk that fails
    keeps the rows before the failing one, each with its mark (they were appended after the
    rows, so a failure there left rows without marks). And the duplicate filter remembers a
    datagram only once its row is in: one whose row could not be added is no sighting (it
    used to be remembered, so that reading it again judged it a copy of itself)."""
    walker = pcap.c_walk()
    if walker is None or duplicates._C_TWIN is None:
        pytest.skip("the C walk is not built or is switched off")
    payloads = _payloads("walk", 4, long_uris={1: 30_000, 3: 60_000})
    records = _records(payloads, {0: 2, 1: 2, 3: 3})
    expected = b"\x00\x01\x00\x01\x00\x00\x01\x01"  # each payload, then its copies
    header = (False, 16, pcap.MAX_CAPLEN, 1000, 0, pcap.BATCH, 1)
    walking = walker.Walker((frozenset({5060}), False), (Payload, "walk.pcap", "udp", {}))
    # the first walk into a builder imports the builder's functions: done here, not failed
    walking.walk(header, b"", 0, 0, 0, 0, 0, -1, [], False, _builder_intake())
    failures = 0
    for nth in range(_ALLOCATIONS):
        table = messages.MessageTable()
        copies = duplicates._C_TWIN.CopyFilter(5_000_000, duplicates.MAX_REMEMBERED)
        intake = table.intake(copies, keep_duplicates=True)
        walk = partial(walking.walk, header, records, 0, len(records), 0, 0, 0, -1, [], False)
        if _run(lambda: walk(intake), nth) is not FAILED:  # noqa: B023
            continue
        failures += 1
        rows = len(table)
        assert _marks(table) == expected[:rows], nth
        # one sighting per distinct datagram among the rows in (a copy replaces its original)
        assert copies.remembered == expected[:rows].count(0), nth
    assert failures > 0


class _FullArray(array):  # type: ignore[type-arg]
    """An int column that cannot grow."""

    def frombytes(self, data: Any, /) -> None:
        raise MemoryError


class _FullFlags(bytearray):
    """A flag column that cannot grow."""

    def extend(self, data: Any, /) -> None:
        raise MemoryError


@pytest.mark.parametrize("full", ["text", "ints", "flags"])
def test_a_failed_take_of_the_builder_rows_leaves_the_table_as_it_was(
    full: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table moves its C builder's rows into its columns when it is pickled or joined with
    rows from elsewhere: the builder hands them over first, so a column that could not take
    its part (no memory; here the last column of each kind) lost them, and left the columns
    before it longer than the rest. The table must keep every row, and then give the frame
    of one that never failed."""
    _builder()
    first, second = _payloads("take", 3), _payloads("again", 3, long_uris={1: 50_000})

    def table_of() -> messages.MessageTable:
        table = messages.MessageTable()
        assert table.scan(first, 0, bytearray(b"\x00\x01\x00")) == len(first)
        table._store()  # the columns hold rows: the next take extends them
        assert table.scan(second, 0, bytearray(b"\x01\x00\x00")) == len(second)
        return table

    expected = table_of().to_frame()
    table = table_of()
    last_int, last_flag = list(table.ints)[-1], list(table.flags)[-1]
    if full == "text":
        text_columns = len(table.text)
        exported_text = messages._exported_text

        def failing_last(item: Any) -> Any:
            nonlocal text_columns
            text_columns -= 1
            if not text_columns:
                raise MemoryError
            return exported_text(item)

        monkeypatch.setattr(messages, "_exported_text", failing_last)
    elif full == "ints":
        table.ints[last_int] = _FullArray(table.ints[last_int].typecode, table.ints[last_int])
    else:
        table.flags[last_flag] = _FullFlags(table.flags[last_flag])
    with pytest.raises(MemoryError):
        table._store()
    assert len(table) == len(first) + len(second)
    assert {len(values) for values in table.ints.values()} == {len(first)}
    assert {len(flags) for flags in table.flags.values()} == {len(first)}
    assert {len(column.codes) for column in table.text.values()} == {len(first)}
    monkeypatch.undo()
    table.ints[last_int] = array(table.ints[last_int].typecode, table.ints[last_int])
    table.flags[last_flag] = bytearray(table.flags[last_flag])
    pd.testing.assert_frame_equal(table.to_frame(), expected)


def test_rows_added_after_a_failed_take_follow_the_rows_it_kept() -> None:
    """After a failed take the table holds the builder's exported rows; rows scanned next and
    rows of another table joined after them go to the builder, and the next take puts all of
    them in the columns in that order: the frame of a table that never failed."""
    _builder()
    first, second = _payloads("kept", 3), _payloads("after", 2)
    joined = _payloads("joined", 2)

    def rows(table: messages.MessageTable, fail: bool) -> messages.MessageTable:
        assert table.scan(first, 0, bytearray(b"\x00\x01\x00")) == len(first)
        if fail:
            last_int = list(table.ints)[-1]
            table.ints[last_int] = _FullArray(table.ints[last_int].typecode)
            with pytest.raises(MemoryError):
                table._store()
            assert table._exported is not None
            table.ints[last_int] = array(table.ints[last_int].typecode)
        assert table.scan(second, 0, bytearray(b"\x01\x00")) == len(second)
        other = messages.MessageTable()
        assert other.scan(joined, 0, bytearray(b"\x00\x01")) == len(joined)
        table.extend(other)
        return table

    expected = rows(messages.MessageTable(), fail=False).to_frame()
    table = rows(messages.MessageTable(), fail=True)
    assert len(table) == len(first) + len(second) + len(joined)
    pd.testing.assert_frame_equal(table.to_frame(), expected)
    frame = table.to_frame()
    marked = dict(zip(frame["call_id"], frame["duplicate"], strict=True))
    assert [name for name, mark in marked.items() if mark] == [
        "after-call-0",
        "kept-call-1",
        "joined-call-1",
    ]
