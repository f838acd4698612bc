"""Failure classes: shares by class, category, code, method, peer pair, and the timeline."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from sipstats.analyze import analyze
from sipstats.analyze.breakdown import (
    CHALLENGES,
    CLASSES,
    auto_interval,
    by_category,
    by_class,
    by_peer,
    code_shares,
    failures_by_method,
    timeline,
)
from sipstats.messages import read_capture
from tests.report_captures import call
from tests.retry_fixtures import T0, Attempt, frames
from tests.sipfactory import write_pcap

#: Seconds from the fixtures' 2023 start to the same moment in 2026.
SHIFT_TO_2026 = 3 * 365 * 86_400

BUSY = {"status": 486, "retry_after": 4, "retry_after_raw": "4"}


def _messages() -> pd.DataFrame:
    """8 unique responses + 2 retransmissions, 3 peers, over 2.5 minutes."""
    _, messages = frames(
        [
            Attempt("a", final_s=1, copies=3, **BUSY),  # 486 + 2 retransmissions
            Attempt("b", invite_s=2, status=200, final_s=3),
            Attempt("c", invite_s=4, status=486, final_s=5),
            Attempt("d", invite_s=6, status=480, final_s=7),
            Attempt("e", dst="10.0.0.3:5070", invite_s=8, status=503, final_s=9),
            Attempt("f", dst="10.0.0.3:5070", invite_s=10, status=302, final_s=11),
            Attempt("g", invite_s=130, status=200, final_s=150),
            Attempt("h", invite_s=131, status=603, final_s=151, method="OPTIONS"),
        ]
    )
    return messages


def test_by_class_lists_all_six_classes_and_shares_sum_to_one() -> None:
    table = by_class(_messages())
    assert table["status_class"].tolist() == list(CLASSES)
    assert table.set_index("status_class")["unique"].to_dict() == {
        "1xx": 0, "2xx": 2, "3xx": 1, "4xx": 3, "5xx": 1, "6xx": 1,
    }  # fmt: skip
    assert table.set_index("status_class").loc["4xx", "count"] == 5
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.set_index("status_class").loc["4xx", "share"] == pytest.approx(3 / 8)


def test_by_category_sorted_by_unique_and_shares_sum_to_one() -> None:
    table = by_category(_messages())
    assert table["category"].iloc[0] == "client error"
    assert table["unique"].tolist() == sorted(table["unique"], reverse=True)
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["count"].sum() == 10


def test_code_shares() -> None:
    table = code_shares(_messages()).set_index("code")
    assert table.index.tolist() == ["200", "302", "480", "486", "503", "603"]
    assert (table.loc["486", "count"], table.loc["486", "unique"]) == (4, 2)
    assert table.loc["503", "status_class"] == "5xx"
    assert table["share"].sum() == pytest.approx(1.0)


def test_failures_by_method_uses_the_cseq_method() -> None:
    table = failures_by_method(_messages()).set_index("method")
    assert table.index.tolist() == ["INVITE", "OPTIONS"]
    invite = table.loc["INVITE"]
    assert invite["responses"] == 7
    assert (invite["4xx"], invite["5xx"], invite["3xx"]) == (3, 1, 1)
    assert invite["failures"] == 4
    assert invite["failure_share"] == pytest.approx(4 / 7)
    assert table.loc["OPTIONS", "6xx"] == 1


def test_by_peer_who_sent_failures_to_whom() -> None:
    table = by_peer(_messages())
    assert table[["responder", "requester"]].values.tolist() == [
        ["10.0.0.2:5060", "10.0.0.1:5060"],
        ["10.0.0.3:5070", "10.0.0.1:5060"],
    ]
    first = table.iloc[0]
    # 486 twice (retransmissions not counted), 480, 603; the 302 and 200s are no failures.
    assert first["failures"] == 4
    assert first["top_code"] == "486"
    assert first["codes"] == "486x2|480x1|603x1"
    assert table.iloc[1]["codes"] == "503x1"
    assert table["share"].sum() == pytest.approx(1.0)


def test_timeline_buckets_are_contiguous_and_count_unique_responses() -> None:
    table = timeline(_messages(), "1min")
    assert table.columns.tolist() == [*CLASSES, CHALLENGES]
    assert table.index.tolist() == [
        T0.floor("1min"),
        T0.floor("1min") + pd.Timedelta(minutes=1),
        T0.floor("1min") + pd.Timedelta(minutes=2),
    ]
    assert str(table.index.dtype) == "datetime64[ns, UTC]"
    first = {"1xx": 0, "2xx": 1, "3xx": 1, "4xx": 3, "5xx": 1, "6xx": 0, CHALLENGES: 0}
    assert table.iloc[0].to_dict() == first
    assert table.iloc[1].sum() == 0  # an empty minute is a row of zeros
    assert table.iloc[2][["2xx", "6xx"]].tolist() == [1, 1]
    assert table.to_numpy().sum() == 8


def test_timeline_interval_and_category_variant() -> None:
    messages = _messages()
    assert len(timeline(messages, "10s")) == 16
    by_cat = timeline(messages, "1h", by="category")
    assert len(by_cat) == 1
    assert by_cat.iloc[0]["client error"] == 3
    assert by_cat.to_numpy().sum() == 8


def test_timeline_rejects_an_unknown_grouping() -> None:
    with pytest.raises(ValueError, match="use 'status_class' or 'category'"):
        timeline(_messages(), by="method")


def test_empty_messages_give_empty_tables() -> None:
    _, messages = frames([])
    assert by_class(messages)["unique"].sum() == 0
    assert by_class(messages)["share"].isna().all()
    assert by_category(messages).empty
    assert code_shares(messages).empty
    assert failures_by_method(messages).empty
    assert by_peer(messages).empty
    empty = timeline(messages)
    assert empty.empty
    assert empty.columns.tolist() == [*CLASSES, CHALLENGES]


def test_timeline_with_a_record_stamped_1970_lists_only_filled_buckets() -> None:
    messages = _messages()
    stray = (
        messages[~messages["is_request"]]
        .head(1)
        .assign(ts=pd.Timestamp("1970-01-01 00:00:07", tz="UTC"), call_id="stray")
    )
    table = timeline(pd.concat([stray, messages], ignore_index=True), "1min")
    # 1970 -> 2023 is ~28 million minutes: only the 3 minutes that hold responses are rows.
    assert len(table) == 3
    assert table.index[0] == pd.Timestamp("1970-01-01", tz="UTC")
    assert table.to_numpy().sum() == 9


def test_timeline_accepts_calendar_offsets() -> None:
    table = timeline(_messages(), "MS")
    assert table.index.tolist() == [pd.Timestamp("2023-11-01", tz="UTC")]
    assert table.to_numpy().sum() == 8


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (pd.Timedelta(0), "1s"),
        (pd.Timedelta(seconds=50), "1s"),
        (pd.Timedelta(seconds=61), "2s"),
        (pd.Timedelta(minutes=30), "30s"),
        (pd.Timedelta(hours=1, seconds=1), "2min"),
        (pd.Timedelta(days=1), "30min"),
        (pd.Timedelta(days=90), "1D"),
    ],
)
def test_auto_interval_gives_at_most_60_round_buckets(span: pd.Timedelta, expected: str) -> None:
    ts = pd.Series(pd.date_range(T0, T0 + span, periods=200), name="ts")
    assert auto_interval(ts.to_frame()) == expected


def test_auto_interval_ignores_a_record_stamped_1970() -> None:
    messages = _messages()  # 151 s, most of it in the first 11 s: 5 s buckets
    stray = messages.head(1).assign(ts=pd.Timestamp("1970-01-01", tz="UTC"))
    assert auto_interval(messages) == "5s"
    assert auto_interval(pd.concat([stray, messages], ignore_index=True)) == "5s"


def test_auto_interval_of_no_messages_is_one_second() -> None:
    _, messages = frames([])
    assert auto_interval(messages) == "1s"


def test_a_response_stamped_1970_in_a_2026_capture_allocates_no_empty_buckets(
    tmp_path: Path,
) -> None:
    """20 calls in 2026 plus one response stamped 1970 at 1 s buckets: 1.8 billion buckets
    (13 GiB) if the empty ones were made before the cap was checked."""
    packets = [p for n in range(20) for p in call(n, n * 1.0, [(0.2, 200, "OK", ())])]
    for packet in packets:
        packet.time += SHIFT_TO_2026
    stray = call(99, 0.0, [(0.2, 486, "Busy Here", ())])[1]
    stray.time = 5.0
    path = write_pcap(tmp_path / "stray1970.pcap", [stray, *packets])
    analysis = analyze(read_capture(path), interval="1s")
    tracemalloc.start()
    try:
        table = analysis.timeline("1s")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    assert len(table) == 21  # 20 one-second buckets in 2026, one in 1970
    assert table.index[0].year == 1970
    assert analysis.to_dict()["timeline"]["buckets"][-1]["start"].startswith("2026-")
