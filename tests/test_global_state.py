"""Reading a capture leaves the process as it found it: the cycle collector's state is restored
(also when the read fails), and freed heap is handed back only for tables large enough for it
to matter (the measurements are in ``messages.return_freed_heap``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipstats import messages
from sipstats.errors import SipstatsError
from sipstats.messages import read_capture
from tests.report_captures import report_inputs


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    yield
    gc.enable()


@pytest.mark.usefixtures("collector_enabled")
@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_left_as_it_was(tmp_path: Path, enabled: bool) -> None:
    inputs = report_inputs(tmp_path)
    (gc.enable if enabled else gc.disable)()
    read_capture(inputs["mixed"])
    assert gc.isenabled() is enabled
    with pytest.raises(SipstatsError):
        read_capture(inputs["truncated"], strict=True)
    assert gc.isenabled() is enabled


def test_heap_is_trimmed_only_for_a_large_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[object] = []
    monkeypatch.setattr(messages, "_malloc_trim", lambda: steps.append)
    frame = messages._frame
    monkeypatch.setattr(messages, "_frame", lambda *parts: steps.append("frame") or frame(*parts))
    mixed = report_inputs(tmp_path)["mixed"]
    read_capture(mixed)
    assert steps == ["frame"]
    steps.clear()
    monkeypatch.setattr(messages, "TRIM_FROM_ROWS", 1)
    read_capture(mixed)
    # once the frame is made, and before it too when the C builder has freed its hash tables
    c_builder = messages.MessageTable()._c_columns is not None
    assert steps == ([0, "frame", 0] if c_builder else ["frame", 0])


@pytest.mark.usefixtures("collector_enabled")
def test_overlapping_pauses_hold_until_the_last_ends() -> None:
    # the command line's start-up pause and its reading thread's: either may end first
    gc.enable()
    first, second = messages.collector_paused(), messages.collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
