"""``analyze(every_message=False)``: what a report needs and no table of every message.

The reports read the report's messages and the counts only, so the analysis a report is
written from holds neither the capture's messages nor the analysed ones: the same report,
the ladders of its sample calls, and the messages counted where they are no longer held.
"""

from __future__ import annotations

import gc
import weakref

import pandas as pd
import pytest

import sipstats
from sipstats import schema
from sipstats.analyze import _TABLES_ON_READ, BuiltOnRead, retries, tally, trunks
from sipstats.render import RENDERERS, RenderOptions
from sipstats.report import read_selected
from tests.conftest import SAMPLES

DOCUMENTS = ("json", "md", "html", "text")


def _reports(analysis: sipstats.Analysis) -> dict[str, str]:
    return {fmt: RENDERERS[fmt].render(analysis, RenderOptions()) for fmt in DOCUMENTS}  # type: ignore[misc]


@pytest.mark.parametrize("name", ["outage.pcap", "mixed.pcap", "register.pcap", "tcp.pcap"])
def test_the_lean_analysis_gives_the_same_reports(name: str) -> None:
    capture = sipstats.read_capture(SAMPLES / name)
    expected = sipstats.analyze(capture)
    got = sipstats.analyze(capture, every_message=False)
    assert _reports(got) == _reports(expected)
    assert got.messages is None
    assert got.capture.messages.empty
    assert got.capture.selected_messages == len(capture.messages) > 0
    assert got.summary() == expected.summary()
    assert got.sample_messages is not None
    assert expected.messages is not None
    for call_id in got.sample_messages["call_id"].astype("str").unique():
        assert got.flow(call_id) == expected.flow(call_id)
        pd.testing.assert_frame_equal(
            got.messages_of([call_id]).reset_index(drop=True).astype("str"),
            expected.messages_of([call_id]).reset_index(drop=True).astype("str"),
        )


def test_a_window_keeps_its_look_ahead_verdicts() -> None:
    capture = read_selected(SAMPLES / "outage.pcap", until="+20")
    assert capture.after is not None
    assert not capture.after.empty
    expected = sipstats.analyze(capture)
    got = sipstats.analyze(capture, every_message=False)
    assert _reports(got) == _reports(expected)
    assert got.capture.after is None


def test_a_capture_handed_over_is_freed() -> None:
    """Nothing the lean analysis holds keeps the capture's messages alive."""
    capture = sipstats.read_capture(SAMPLES / "outage.pcap")
    table = weakref.ref(capture.messages)
    analysis = sipstats.analyze(capture, every_message=False)
    del capture
    gc.collect()
    assert table() is None
    assert analysis.capture.selected_messages > 0


def test_the_columns_the_counts_do_not_read_are_freed_before_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A capture handed over loses the columns neither the counts nor the report's messages
    read (the top Via branch here) before those are taken: they do not add to the peak."""
    capture = sipstats.read_capture(SAMPLES / "outage.pcap")
    branch = weakref.ref(capture.messages["branch"].array)
    handed = [capture]
    del capture
    freed = []
    counts = tally.tally

    def counting(messages: pd.DataFrame) -> tally.Tally:
        gc.collect()
        freed.append(branch() is None)
        return counts(messages)

    monkeypatch.setattr(tally, "tally", counting)
    sipstats.analyze(handed.pop(), every_message=False)
    assert freed == [True]


def test_the_counted_columns_give_the_same_counts_and_report_messages() -> None:
    analysis = sipstats.analyze(sipstats.read_capture(SAMPLES / "outage.pcap"))
    messages = analysis.messages
    assert messages is not None
    counted = tally.counted_columns(messages)
    assert len(counted.columns) < len(messages.columns)
    expected, got = tally.tally(messages), tally.tally(counted)
    for name in ("groups", "software", "runs"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name))
    pd.testing.assert_frame_equal(tally.report_messages(counted), tally.report_messages(messages))


def test_the_json_report_builds_no_table_it_does_not_read() -> None:
    """The tables only the text, Markdown and HTML reports read are built on their first read,
    as :func:`sipstats.analyze.assemble` built them before."""
    analysis = sipstats.analyze(sipstats.read_capture(SAMPLES / "outage.pcap"))
    RENDERERS["json"].render(analysis, RenderOptions())  # type: ignore[misc]
    assert all(isinstance(vars(analysis)[name], BuiltOnRead) for name in _TABLES_ON_READ)
    wide = vars(analysis)["transactions"].held
    expected = {
        "by_responder": trunks.by_responder(wide),
        "early_retriers": retries.early_retriers(analysis.retries),
    }
    assert expected.keys() == set(_TABLES_ON_READ)
    for name, table in expected.items():
        conformed = schema.conform(table, schema.ANALYSIS_TABLES[name])
        pd.testing.assert_frame_equal(getattr(analysis, name), conformed, check_exact=True)
        assert not isinstance(vars(analysis)[name], BuiltOnRead)


def test_the_responders_waiting_hold_not_the_transactions_helpers() -> None:
    """Once the transactions are built, their held frame (with the helper columns) goes: the
    responder table waiting to be built holds only the columns it reads."""
    analysis = sipstats.analyze(sipstats.read_capture(SAMPLES / "outage.pcap"))
    wide = weakref.ref(vars(analysis)["transactions"].held)
    assert not analysis.transactions.empty
    gc.collect()
    assert wide() is None
    assert isinstance(vars(analysis)["by_responder"], BuiltOnRead)
