"""A time window does not change verdicts on its own events: retries are looked for beyond it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sipstats import analyze, read_capture
from sipstats.select import filter_capture
from tests.conftest import SAMPLES
from tests.sipfactory import write_pcap
from tests.test_analyze_retries_capture import Dialog


def _capture(tmp_path: Path) -> Path:
    """A 503 (Retry-After 10) at 1 s, its retry at 15 s, answered: the window ends at 10 s."""
    ra = (("Retry-After", "10"),)
    dialogs = [
        Dialog("w-1", "alice", "bob")
        .invite(0.0)
        .reply(1.0, 503, "Service Unavailable", headers=ra),
        Dialog("w-2", "alice", "bob").invite(15.0).reply(15.5, 200, "OK"),
    ]
    return write_pcap(tmp_path / "window.pcap", [p for d in dialogs for p in d.packets])


def test_a_retry_after_the_window_still_counts(tmp_path: Path) -> None:
    whole = read_capture(_capture(tmp_path))
    window = filter_capture(whole, until=pd.Timedelta(seconds=10))
    assert len(window.messages) == 2
    assert window.after is not None
    assert len(window.after) == 2
    inside = analyze(window)
    assert len(inside.calls) == 1  # the retry is not a call of the window
    row = inside.retries.iloc[0]
    assert bool(row["retried"])
    assert row["gap_s"] == pytest.approx(14.0)
    assert bool(row["honoured"])
    assert pd.isna(row["retry_call"])  # after the window: no call number in its calls table
    assert row["retry_call_id"] == "w-2"
    assert analyze(whole).retries.iloc[0]["gap_s"] == pytest.approx(14.0)


def test_outage_window_verdicts_equal_the_whole_captures() -> None:
    """The bundled outage sample, ``--since +18 --until +36``: same 503 verdicts as the whole."""
    whole = read_capture(SAMPLES / "outage.pcap")
    window = filter_capture(whole, since=pd.Timedelta(seconds=18), until=pd.Timedelta(seconds=36))
    start = whole.messages["ts"].min()
    low, high = start + pd.Timedelta(seconds=18), start + pd.Timedelta(seconds=36)
    full = analyze(whole).retries
    expected = full[(full["final_ts"] >= low) & (full["final_ts"] < high)]
    got = analyze(window).retries
    key = ["call_id", "status", "retried", "gap_s", "honoured"]

    def verdicts(table: pd.DataFrame) -> pd.DataFrame:
        out = table[key].astype({"call_id": "str"})
        return out.sort_values("call_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(verdicts(got), verdicts(expected))
    assert int((~got["retried"]).sum()) == 21
