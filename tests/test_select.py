"""Selecting part of a capture: time window bounds, peer addresses, filter_capture."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sipstats.checks import parse_peer
from sipstats.messages import Capture, read_capture
from sipstats.select import filter_capture, parse_time
from tests.report_captures import mixed_capture
from tests.sipfactory import T0


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return read_capture([mixed_capture(tmp_path_factory.mktemp("sel") / "mixed.pcap")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:25", pd.Timestamp("2023-11-14 22:13:25", tz="UTC")),
        ("2023-11-14 23:13:25+01:00", pd.Timestamp("2023-11-14 22:13:25", tz="UTC")),
        ("+90s", pd.Timedelta(seconds=90)),
        ("+1.5", pd.Timedelta(seconds=1.5)),
        ("+2min", pd.Timedelta(minutes=2)),
        ("+250ms", pd.Timedelta(milliseconds=250)),
    ],
)
def test_parse_time(text: str, expected: object) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "+5 parsecs", "", "12:61:00x"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.2", ("10.0.0.2", None)),
        ("10.0.0.2:5060", ("10.0.0.2", 5060)),
        ("[fd00::1]:5070", ("fd00::1", 5070)),
        ("FD00:0::1", ("fd00::1", None)),
    ],
)
def test_parse_peer(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_peer(text) == expected


@pytest.mark.parametrize("text", ["example.com", "10.0.0.2:99999", "10.0.0.2:x"])
def test_parse_peer_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_peer(text)


def test_no_selection_returns_the_capture(capture: Capture) -> None:
    assert filter_capture(capture) is capture


def test_time_window(capture: Capture) -> None:
    start = T0 + 8.0
    since = pd.Timestamp(start, unit="s", tz="UTC")
    out = filter_capture(capture, since=since, until=pd.Timedelta(seconds=10))
    assert len(out.messages)
    assert out.messages["ts"].min() >= since
    assert out.messages["ts"].max() < capture.messages["ts"].min() + pd.Timedelta(seconds=10)
    assert out.inputs == capture.inputs
    assert len(capture.messages) == 35  # the input is not changed


def test_offsets_count_from_the_first_message(capture: Capture) -> None:
    out = filter_capture(capture, since=pd.Timedelta(seconds=11))
    first = capture.messages["ts"].min()
    assert out.messages["ts"].min() >= first + pd.Timedelta(seconds=11)
    assert len(out.messages) < len(capture.messages)


def test_peer(capture: Capture) -> None:
    assert len(filter_capture(capture, peer="10.0.0.2").messages) == len(capture.messages)
    assert len(filter_capture(capture, peer="10.0.0.2:5060").messages) == len(capture.messages)
    assert filter_capture(capture, peer="10.0.0.2:5070").messages.empty
    assert filter_capture(capture, peer="192.0.2.1").messages.empty


def test_unanswered_window_leaves_an_empty_frame_with_the_schema(capture: Capture) -> None:
    out = filter_capture(capture, since=pd.Timedelta(hours=1))
    assert out.messages.empty
    assert list(out.messages.columns) == list(capture.messages.columns)


def test_path_argument(tmp_path: Path) -> None:
    out = filter_capture(read_capture(mixed_capture(tmp_path / "m.pcap")), peer="10.0.0.1")
    assert set(out.messages["src"].astype(str)) | set(out.messages["dst"].astype(str)) == {
        "10.0.0.1",
        "10.0.0.2",
    }
