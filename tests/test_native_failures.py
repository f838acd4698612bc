"""The C column builder is all-or-nothing: a call that fails (memory running out, a value of
the wrong type) leaves every row whole and every string as it was, never a part of a row, a
half-exported table or strings no row uses.

Running out of memory is made real with CPython's test hooks (``_testcapi.set_nomemory``: the
n-th allocation of the process fails), once for each allocation a call makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sipstats import messages, sip
from sipstats.capture.records import Payload
from tests import sipfactory as sip_factory

testcapi = pytest.importorskip("_testcapi", reason="this Python has no _testcapi test hooks")

#: Bytes per value of each kind of number column (_sipscan.c's column_put_number).
_WIDTHS = {"q": 8, "i": 4, "h": 2, "b": 1}
#: Allocations tried, one failing at a time: more than any call below makes.
_ALLOCATIONS = 120


def _builder() -> Any:
    built = messages._c_columns()
    if built is None:
        pytest.skip("sipstats._sipscan is not built or switched off")
    return built


def _payloads(tag: str, count: int, long_uri: int = -1) -> list[Payload]:
    """Requests whose text (addresses, Call-ID, branch, URIs) is new in every one, so each row
    adds strings to the builder's columns; the Request-URI of request ``long_uri`` is long
    enough that its column must grow its string buffer."""
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
                f"sip:{tag}{n}{'x' * 5000 if n == long_uri else ''}@example.com",
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


def _fails(call: Callable[[], object], nth: int) -> bool:
    """Run ``call`` with the ``nth`` allocation from now failing: True when it raised
    MemoryError (the allocation was its own), False when it succeeded."""
    testcapi.set_nomemory(nth, nth + 1)
    try:
        call()
    except MemoryError:
        return True
    finally:
        testcapi.remove_mem_hooks()
    return False


@pytest.mark.parametrize("before", [0, 126])
def test_a_row_is_added_whole_or_not_at_all_when_memory_runs_out(before: int) -> None:
    """Each column grows its own buffers: a failure at the tenth column used to leave nine
    columns a value longer than the rest. After 126 rows the row's new strings also widen the
    codes of its columns to two bytes before its long Request-URI needs memory: a failure
    then must narrow them back."""
    payloads = _payloads("row", before + 2, long_uri=before)
    unchanged = _contents(_scanned(payloads[:before]).export())
    failures = 0
    for nth in range(_ALLOCATIONS):
        built = _scanned(payloads[:before])
        if not _fails(lambda: built.scan(payloads, before, *messages._PAYLOAD_AT, "hep"), nth):  # noqa: B023
            continue
        failures += 1
        if len(built) == before:
            assert _contents(built.export()) == unchanged, nth
        else:  # the first row went in whole, the failure came in the second
            assert set(_rows(built.export()).values()) == {before + 1}, nth
    assert failures > 3  # the rows' own allocations were among those that failed


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


def test_a_parsed_row_is_added_whole_or_not_at_all_when_memory_runs_out() -> None:
    payload = _payloads("add", 1)[0]
    message = sip.parse_message(payload.data)
    failures = 0
    for nth in range(_ALLOCATIONS):
        built = _builder()
        if not _fails(lambda: built.add(payload, message), nth):  # noqa: B023
            continue
        failures += 1
        assert len(built) == 0
        assert set(_rows(built.export()).values()) == {0}, nth
    assert failures > 10


def test_a_failed_export_leaves_the_builder_whole() -> None:
    """export() hands every column over; one that fails used to leave the columns before it
    emptied and the rest full."""
    payloads = _payloads("export", 3)
    whole = _contents(_scanned(payloads).export())
    failures = 0
    for nth in range(_ALLOCATIONS):
        built = _scanned(payloads)
        if not _fails(built.export, nth):
            continue
        failures += 1
        assert len(built) == len(payloads)
        assert _contents(built.export()) == whole, nth
    assert failures > 10


def test_a_failed_append_leaves_both_builders_as_they_were() -> None:
    """append() codes the other builder's strings into this one's: one that fails used to leave
    this builder with strings no row uses (and so categories of no row)."""
    first, second = _payloads("first", 3), _payloads("second", 3)
    alone = _contents(_scanned(first).export()), _contents(_scanned(second).export())
    failures = 0
    for nth in range(_ALLOCATIONS):
        to, other = _scanned(first), _scanned(second)
        if not _fails(lambda: to.append(other), nth):  # noqa: B023
            continue
        failures += 1
        assert (len(to), len(other)) == (len(first), len(second))
        assert (_contents(to.export()), _contents(other.export())) == alone, nth
    assert failures > 3
