"""Retry behaviour after failures: linking, gaps, Retry-After verdicts, summaries and storms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats import schema
from sipstats.analyze.retries import (
    UriKeys,
    _attach_retry_after,
    _next_attempt,
    _ordered,
    _rows_of,
    by_retry_after,
    early_retriers,
    gap_summary,
    retry_after_summary,
    retry_after_values,
    retry_table,
    storms,
    uri_key,
)
from sipstats.render.document import retry_after_section
from tests.retry_fixtures import T0, UAC, UAS, Attempt, frames, messages_frame

BUSY = {"status": 486, "retry_after": 4, "retry_after_raw": "4"}


def _table(*attempts: Attempt) -> pd.DataFrame:
    calls, messages = frames(list(attempts))
    return retry_table(calls, messages)


def _row(table: pd.DataFrame, call_id: str) -> pd.Series:
    return table.set_index("call_id").loc[call_id]


def test_table_conforms_to_schema() -> None:
    table = _table(Attempt("a", final_s=1, **BUSY), Attempt("b", invite_s=6, status=200, final_s=7))
    assert list(table.columns) == list(schema.RETRIES)
    assert {c: str(t) for c, t in table.dtypes.items()} == {
        c: d for c, (d, _) in schema.RETRIES.items()
    }


def test_gap_equal_to_retry_after_is_honoured() -> None:
    # RFC 3261 §20.33: retry *after* N seconds; a gap of exactly N respects it.
    table = _table(Attempt("a", final_s=1, **BUSY), Attempt("b", invite_s=5, status=200, final_s=6))
    row = _row(table, "a")
    assert row["retried"]
    assert row["retry_call_id"] == "b"
    assert row["gap_s"] == 4.0
    assert row["honoured"]


def test_gap_just_below_retry_after_is_too_early() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY), Attempt("b", invite_s=4.999, status=200, final_s=6)
    )
    row = _row(table, "a")
    assert row["gap_s"] == pytest.approx(3.999)
    assert not row["honoured"]


def test_gap_is_measured_from_the_first_copy_of_the_final_response() -> None:
    table = _table(
        Attempt("a", final_s=1, copies=3, **BUSY), Attempt("b", invite_s=5, status=200, final_s=6)
    )
    assert _row(table, "a")["gap_s"] == 4.0


def test_failure_without_retry() -> None:
    table = _table(Attempt("a", final_s=1, **BUSY))
    row = _row(table, "a")
    assert not row["retried"]
    assert pd.isna(row["retry_call"])
    assert pd.isna(row["gap_s"])
    assert pd.isna(row["honoured"])


def test_answered_and_unanswered_calls_are_not_failures() -> None:
    table = _table(
        Attempt("ok", status=200, final_s=1),
        Attempt("ringing", invite_s=2),
        Attempt("a", invite_s=3, final_s=4, **BUSY),
    )
    assert table["call_id"].tolist() == ["a"]


def test_retry_without_retry_after_has_no_verdict() -> None:
    table = _table(
        Attempt("a", status=503, final_s=1), Attempt("b", invite_s=1.5, status=200, final_s=2)
    )
    row = _row(table, "a")
    assert row["retried"]
    assert row["gap_s"] == 0.5
    assert pd.isna(row["honoured"])


def test_603_retried_is_never_honoured() -> None:
    calls, messages = frames(
        [Attempt("a", status=603, final_s=1), Attempt("b", invite_s=30, status=200, final_s=31)]
    )
    table = retry_table(calls, messages)
    assert pd.isna(_row(table, "a")["honoured"])
    summary = retry_after_summary(messages, table).set_index("code").loc["603"]
    assert summary["honoured"] == 0
    assert summary["too_early"] == 0
    assert summary["without_retry_after_retried"] == 1


def test_retry_by_a_different_caller_is_not_a_retry() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY),
        Attempt("b", caller="sip:carol@example.com", invite_s=5, status=200, final_s=6),
    )
    assert not _row(table, "a")["retried"]


def test_call_to_another_target_is_not_a_retry() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY),
        Attempt("b", target="sip:dave@example.com", invite_s=5, status=200, final_s=6),
    )
    assert not _row(table, "a")["retried"]


def test_uris_compare_without_scheme_port_and_parameters() -> None:
    table = _table(
        Attempt("a", caller="sip:alice@example.com:5090", final_s=1, **BUSY),
        Attempt(
            "retry1///a",
            caller="sips:alice@EXAMPLE.com;transport=tls",
            target="sip:bob@Example.COM:5060;user=phone",
            invite_s=5,
            status=200,
            final_s=6,
        ),
    )
    row = _row(table, "a")
    assert row["retried"]
    assert row["retry_call_id"] == "retry1///a"
    assert (row["caller"], row["callee"]) == ("alice@example.com", "bob@example.com")


def test_call_started_before_the_failure_is_not_its_retry() -> None:
    table = _table(
        Attempt("a", invite_s=0, final_s=3, **BUSY),
        Attempt("parallel", invite_s=1, status=200, final_s=2),
        Attempt("b", invite_s=9, status=200, final_s=10),
    )
    assert _row(table, "a")["retry_call_id"] == "b"


def test_retry_starting_as_the_failure_arrives_is_its_retry_and_the_first_of_a_tie_wins() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY),
        Attempt("b", invite_s=1, status=200, final_s=2),
        Attempt("c", invite_s=3, final_s=4, **BUSY),
        Attempt("d", invite_s=6, status=200, final_s=7),
        Attempt("e", invite_s=6, status=200, final_s=7),
        Attempt("z", caller="sip:zoe@example.com", final_s=9, **BUSY),
    )
    assert _row(table, "a")["retry_call_id"] == "b"
    assert _row(table, "a")["gap_s"] == 0.0
    assert _row(table, "c")["retry_call_id"] == "d"
    # the last caller and target of all, never retried, finds no attempt of another
    assert not _row(table, "z")["retried"]


def test_retry_that_fails_again_is_a_failure_with_its_own_retry() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY),
        Attempt("retry1///a", invite_s=2, final_s=3, **BUSY),
        Attempt("retry2///a", invite_s=8, status=200, final_s=9),
    )
    assert table["call_id"].tolist() == ["a", "retry1///a"]
    assert table["retry_call_id"].tolist() == ["retry1///a", "retry2///a"]
    assert table["honoured"].tolist() == [False, True]


def test_answered_challenge_is_not_a_failure_but_an_unanswered_one_is() -> None:
    auth_invite = {
        "ts": pd.Timestamp("2023-11-14 22:13:21.500", tz="UTC"),
        "src": "10.0.0.1",
        "sport": 5060,
        "dst": "10.0.0.2",
        "dport": 5060,
        "is_request": True,
        "method": "INVITE",
        "call_id": "challenged",
        "cseq": 2,
        "cseq_method": "INVITE",
        "branch": "z9hG4bK-auth",
        "from_tag": "tag-challenged",
        "has_auth": True,
        "retransmission": False,
        "registered": True,
    }
    calls, messages = frames(
        [
            Attempt("challenged", status=407, final_s=1),
            Attempt("given-up", caller="sip:carol@example.com", status=407, final_s=1),
        ],
        [auth_invite],
    )
    assert retry_table(calls, messages)["call_id"].tolist() == ["given-up"]


def test_server_level_retry_after_503_follows_any_caller() -> None:
    # RFC 3261 §21.5.4: a 503's Retry-After concerns the server, whoever calls next.
    table = _table(
        Attempt("a", status=503, retry_after=10, retry_after_raw="10", final_s=1),
        Attempt("other", caller="sip:carol@example.com", invite_s=3, status=200, final_s=4),
        Attempt("b", invite_s=12, status=200, final_s=13),
        Attempt("elsewhere", caller="sip:dave@h", dst="10.0.0.9:5060", final_s=2.5, **BUSY),
    )
    row = _row(table, "a")
    assert row["retry_call_id"] == "b"
    assert row["honoured"]
    assert row["server_retried"]
    assert row["server_gap_s"] == 2.0
    assert not row["server_honoured"]
    assert pd.isna(_row(table, "elsewhere")["server_retried"])


def test_server_retry_ignores_the_client_port() -> None:
    table = _table(
        Attempt("a", src="10.0.0.1:40001", status=503, retry_after=2, final_s=1),
        Attempt("b", src="10.0.0.1:40002", caller="sip:x@y", invite_s=3.5, status=200, final_s=4),
    )
    row = _row(table, "a")
    assert row["server_retried"]
    assert row["server_honoured"]


def test_ipv6_endpoints() -> None:
    table = _table(
        Attempt("a", src="[fd77::10]:5060", dst="[fd77::20]:5060", status=503, final_s=1),
        Attempt(
            "b", src="[fd77::10]:5062", dst="[fd77::20]:5060", invite_s=2, status=200, final_s=3
        ),
    )
    assert _row(table, "a")["server_retry_call"] == 1


def test_empty_inputs_give_empty_tables_with_full_schema() -> None:
    calls, messages = frames([])
    table = retry_table(calls, messages)
    assert table.empty
    assert list(table.columns) == list(schema.RETRIES)
    summary = retry_after_summary(messages, table)
    assert summary.empty
    assert "values" in summary.columns
    assert early_retriers(table).empty
    assert storms(table).empty
    assert by_retry_after(table).empty
    assert gap_summary(table)["retries"].tolist() == [0, 0, 0]
    section = retry_after_section(messages, summary, by_retry_after(table))
    assert section == {}


def test_summary_counts_unique_responses_and_retry_after_values() -> None:
    calls, messages = frames(
        [
            Attempt("a", final_s=1, copies=2, **BUSY),  # retransmitted 486: one unique
            Attempt("b", invite_s=2, final_s=3, **BUSY),
            Attempt("c", invite_s=4, status=486, final_s=5, retry_after=60, retry_after_raw="60"),
            Attempt("d", invite_s=6, status=503, final_s=7),
            Attempt(
                "e",
                caller="sip:x@y",
                invite_s=8,
                status=480,
                final_s=9,
                retry_after=6,
                retry_after_raw="6 (in a meeting);duration=3600",
            ),
        ]
    )
    table = retry_table(calls, messages)
    summary = retry_after_summary(messages, table).set_index("code")
    assert summary.index.tolist() == ["480", "486", "503"]
    busy = summary.loc["486"]
    assert (busy["responses"], busy["with_retry_after"], busy["values"]) == (3, 3, "4x2|60x1")
    assert summary.loc["480", "values"] == "6x1"
    assert summary.loc["503", "with_retry_after"] == 0
    assert summary.loc["503", "values"] == ""
    assert retry_after_values(messages) == {"480": {"6": 1}, "486": {"4": 2, "60": 1}}


def test_malformed_retry_after_is_counted_not_guessed() -> None:
    calls, messages = frames(
        [
            Attempt("a", status=486, retry_after_raw="soon", final_s=1),
            Attempt("b", invite_s=2, status=200, final_s=3),
        ]
    )
    table = retry_table(calls, messages)
    row = _row(table, "a")
    assert row["retry_after_raw"] == "soon"
    assert pd.isna(row["retry_after"])
    assert pd.isna(row["honoured"])
    summary = retry_after_summary(messages, table).set_index("code").loc["486"]
    assert (summary["with_retry_after"], summary["malformed"], summary["values"]) == (1, 1, "")
    assert retry_after_values(messages) == {}


def test_summary_puts_retry_codes_first_and_includes_any_code_with_retry_after() -> None:
    extra = {
        "ts": pd.Timestamp("2023-11-14 22:13:30", tz="UTC"),
        "src": "10.0.0.2",
        "sport": 5060,
        "dst": "10.0.0.1",
        "dport": 5060,
        "is_request": False,
        "status": 600,
        "cseq_method": "REGISTER",
        "call_id": "reg",
        "branch": "z9hG4bK-reg",
        "retry_after": 120,
        "retry_after_raw": "120",
        "retransmission": False,
        "registered": True,
    }
    calls, messages = frames(
        [Attempt("a", status=404, final_s=1), Attempt("b", invite_s=2, final_s=3, **BUSY)], [extra]
    )
    summary = retry_after_summary(messages, retry_table(calls, messages))
    assert summary["code"].tolist() == ["486", "404", "600"]
    assert summary.set_index("code").loc["600", "failures"] == 0


def test_summary_totals_add_up() -> None:
    calls, messages = frames(
        [
            Attempt("a", final_s=1, **BUSY),
            Attempt("b", invite_s=3, final_s=4, **BUSY),
            Attempt("c", invite_s=10, status=503, final_s=11),
            Attempt("d", invite_s=12, status=200, final_s=13),
            Attempt("e", caller="sip:z@y", status=480, final_s=1),
        ]
    )
    summary = retry_after_summary(messages, retry_table(calls, messages))
    parts = summary[["honoured", "too_early", "without_retry_after_retried", "not_retried"]]
    assert (parts.sum(axis=1) == summary["failures"]).all()
    assert (summary["retried"] + summary["not_retried"] == summary["failures"]).all()


def test_early_retriers_ranked_by_count() -> None:
    def chain(caller: str, gaps: list[float], start: float) -> list[Attempt]:
        out, t = [], start
        for i, gap in enumerate(gaps):
            out.append(
                Attempt(
                    f"{caller}{i}", caller=f"sip:{caller}@h", invite_s=t, final_s=t + 0.5, **BUSY
                )
            )
            t = t + 0.5 + gap
        out.append(
            Attempt(f"{caller}-ok", caller=f"sip:{caller}@h", invite_s=t, status=200, final_s=t + 1)
        )
        return out

    table = _table(
        *chain("slow", [5.0], 0), *chain("eager", [1.0, 2.0], 0), *chain("once", [0.5], 0)
    )
    ranked = early_retriers(table)
    assert ranked["caller"].tolist() == ["eager@h", "once@h"]
    assert ranked["retries_too_early"].tolist() == [2, 1]
    assert ranked["retries"].tolist() == [2, 1]
    assert ranked["worst_gap_s"].tolist() == [1.0, 0.5]


def _hammer(
    n: int, spacing: float, start: float = 0.0, dst: str = "10.0.0.2:5060"
) -> list[Attempt]:
    """n callers, each failing with 503 Retry-After 10 and retrying 1 s later."""
    out = []
    for i in range(n):
        t = start + i * spacing
        caller = f"sip:c{i}-{int(start)}-{dst.split(':')[0]}@h"
        out.append(
            Attempt(
                f"{caller}f",
                caller=caller,
                dst=dst,
                invite_s=t,
                final_s=t + 0.1,
                status=503,
                retry_after=10,
                retry_after_raw="10",
            )
        )
        out.append(
            Attempt(
                f"{caller}r", caller=caller, dst=dst, invite_s=t + 1.1, status=200, final_s=t + 2
            )
        )
    return out


def test_storm_detected_when_enough_early_retries_share_a_window() -> None:
    table = _table(*_hammer(6, 1.0))
    found = storms(table, window="10s", threshold=5)
    assert len(found) == 1
    storm = found.iloc[0]
    assert (storm["retries"], storm["early_retries"], storm["callers"]) == (6, 6, 6)
    assert storm["target"] == "10.0.0.2:5060"
    assert storm["end_ts"] - storm["start_ts"] == pd.Timedelta(seconds=5)


def test_no_storm_when_retries_are_spread_out_or_too_few() -> None:
    assert storms(_table(*_hammer(6, 3.0)), window="10s", threshold=5).empty
    assert storms(_table(*_hammer(4, 0.1)), window="10s", threshold=5).empty


def test_storms_per_target_and_separate_bursts() -> None:
    table = _table(
        *_hammer(5, 0.5), *_hammer(5, 0.5, start=100.0), *_hammer(5, 0.5, dst="10.0.0.3:5060")
    )
    found = storms(table, window="10s", threshold=5)
    assert found["target"].tolist() == ["10.0.0.2:5060", "10.0.0.3:5060", "10.0.0.2:5060"]
    assert found["retries"].tolist() == [5, 5, 5]


def test_overlapping_windows_merge_into_one_storm() -> None:
    found = storms(_table(*_hammer(12, 2.0)), window="10s", threshold=5)
    assert len(found) == 1
    assert found.iloc[0]["retries"] == 12


def test_honoured_retries_do_not_make_a_storm() -> None:
    calls = []
    for i in range(6):
        caller = f"sip:p{i}@h"
        calls += [
            Attempt(f"p{i}", caller=caller, invite_s=i * 0.1, final_s=i * 0.1 + 0.1, **BUSY),
            Attempt(f"p{i}r", caller=caller, invite_s=i * 0.1 + 5, status=200, final_s=9),
        ]
    assert storms(_table(*calls), threshold=5).empty


def test_retry_after_section_is_json_ready() -> None:
    calls, messages = frames(
        [
            Attempt("a", status=503, retry_after=10, retry_after_raw="10 (overloaded)", final_s=1),
            Attempt("b", invite_s=3, status=200, final_s=4),
        ]
    )
    table = retry_table(calls, messages)
    summary = retry_after_summary(messages, table)
    out = retry_after_section(messages, summary, by_retry_after(table))
    assert json.loads(json.dumps(out)) == out
    entry = out["503"]
    assert entry["values_s"] == {"10": 1}
    assert (entry["responses"], entry["with_retry_after"], entry["without_retry_after"]) == (
        1,
        1,
        0,
    )
    assert (entry["retries"], entry["retries_too_early"], entry["retries_honoured"]) == (1, 1, 0)
    assert entry["server"] == {"retries": 1, "retries_honoured": 0, "retries_too_early": 1}


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("sip:alice@example.com", "alice@example.com"),
        ("sip:alice@EXAMPLE.com:5060;transport=udp", "alice@example.com"),
        ("<sips:alice:secret@example.com>", "alice@example.com"),
        ("sip:Alice@example.com?subject=x", "Alice@example.com"),
        ("sip:bob@[fd77:4::20]:5080", "bob@[fd77:4::20]"),
        ("sip:example.com:5060", "example.com"),
        ("tel:+4930123;phone-context=example.com", "+4930123"),
        ("sip:caller3@127.0.91.10:5090", "caller3@127.0.91.10"),
        ("sip:Bob@MÜNCHEN.example", "Bob@münchen.example"),
    ],
)
def test_uri_key(uri: str, key: str) -> None:
    assert uri_key(pd.Series([uri], dtype="category")).tolist() == [key]


def test_uri_key_keeps_missing_values_missing() -> None:
    assert uri_key(pd.Series([None, ""], dtype="str")).isna().all()


def test_messages_frame_helper_builds_analysed_columns() -> None:
    assert "retransmission" in messages_frame([]).columns


def _retries_at(times: list[float], dst: str = UAS) -> pd.DataFrame:
    """A RETRIES frame of too-early retries (503, Retry-After 60) at the given seconds."""
    n = len(times)
    retry_ts = pd.Series([T0 + pd.Timedelta(t, unit="s") for t in times], dtype="object")
    frame = pd.DataFrame(
        {
            "call": range(n),
            "call_id": [f"c{i}" for i in range(n)],
            "caller": [f"u{i % 3}@h" for i in range(n)],
            "callee": "bob@h",
            "src": UAC,
            "dst": dst,
            "status": 503,
            "final_ts": pd.to_datetime(retry_ts, utc=True) - pd.Timedelta(1, unit="s"),
            "retry_after": 60,
            "retry_after_raw": "60",
            "retried": True,
            "retry_call": range(n, 2 * n),
            "retry_call_id": [f"r{i}" for i in range(n)],
            "retry_ts": pd.to_datetime(retry_ts, utc=True),
            "gap_s": 1.0,
            "honoured": False,
            "server_retried": True,
            "server_retry_call": range(n, 2 * n),
            "server_retry_ts": pd.to_datetime(retry_ts, utc=True),
            "server_gap_s": 1.0,
            "server_honoured": False,
        }
    )
    return schema.conform(frame, schema.RETRIES) if n else schema.empty(schema.RETRIES)


def _storms_by_hand(
    times: list[float], span: float, threshold: int
) -> list[tuple[float, float, int]]:
    """Reference rule, written plainly: hot windows, then overlapping ones merged."""
    times = sorted(times)
    spans = []
    for i, start in enumerate(times):
        inside = [t for t in times[i:] if t <= start + span]
        if len(inside) >= threshold:
            spans.append((start, inside[-1]))
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e, sum(s <= t <= e for t in times)) for s, e in merged]


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 600), max_size=40).map(lambda ms: [m / 10 for m in ms]),
    threshold=st.integers(1, 6),
)
def test_storms_agree_with_the_plain_rule(times: list[float], threshold: int) -> None:
    found = storms(_retries_at(times), window="5s", threshold=threshold)
    got = [
        (
            (row.start_ts - T0).total_seconds(),
            (row.end_ts - T0).total_seconds(),
            row.retries,
        )
        for row in found.itertuples()
    ]
    want = _storms_by_hand(times, 5.0, threshold)
    assert [(pytest.approx(s), pytest.approx(e), n) for s, e, n in want] == got


def test_by_retry_after_splits_a_code_by_its_values() -> None:
    table = _table(
        Attempt("a", status=503, retry_after=10, retry_after_raw="10", final_s=1),
        Attempt("a2", invite_s=12, status=200, final_s=13),
        Attempt("b", caller="sip:b@h", status=503, retry_after=60, final_s=1),
        Attempt("b2", caller="sip:b@h", invite_s=3, status=200, final_s=4),
        Attempt("c", caller="sip:c@h", status=503, retry_after=60, final_s=1),
        Attempt("d", caller="sip:d@h", status=503, final_s=1),  # no value: left out
    )
    got = by_retry_after(table).to_dict("records")
    assert got == [
        {"code": "503", "retry_after": 10, "failures": 1, "honoured": 1, "too_early": 0,
         "not_retried": 0},
        {"code": "503", "retry_after": 60, "failures": 2, "honoured": 0, "too_early": 1,
         "not_retried": 1},
    ]  # fmt: skip


def test_gap_summary_per_verdict() -> None:
    table = _table(
        Attempt("a", final_s=1, **BUSY),
        Attempt("a2", invite_s=9, status=200, final_s=10),  # gap 8 = 2 x N: honoured
        Attempt("b", caller="sip:b@h", final_s=1, **BUSY),
        Attempt("b2", caller="sip:b@h", invite_s=2, status=200, final_s=3),  # gap 1: too early
        Attempt("c", caller="sip:c@h", final_s=1, **BUSY),
        Attempt("c2", caller="sip:c@h", invite_s=4, status=200, final_s=5),  # gap 3: too early
        Attempt("d", caller="sip:d@h", status=503, final_s=1),
        Attempt("d2", caller="sip:d@h", invite_s=1.5, status=200, final_s=2),  # no value
    )
    summary = gap_summary(table).set_index("verdict")
    assert summary.index.tolist() == ["honoured", "too_early", "without_retry_after"]
    assert summary["retries"].tolist() == [1, 2, 1]
    assert summary.loc["honoured", "max_ratio"] == 2.0
    early = summary.loc["too_early"]
    assert (early["min_s"], early["median_s"], early["max_s"]) == (1.0, 2.0, 3.0)
    assert (early["min_ratio"], early["max_ratio"]) == (0.25, 0.75)
    assert summary.loc["without_retry_after", "median_s"] == 0.5
    assert pd.isna(summary.loc["without_retry_after", "median_ratio"])


def test_gap_summary_of_a_retry_after_of_zero() -> None:
    """Retry-After: 0 (retry at once) is a value like any other: a gap over it is an infinite
    ratio, without a warning (warnings are errors here, and the command line printed one)."""
    now = {"status": 503, "retry_after": 0, "retry_after_raw": "0"}
    table = _table(
        Attempt("a", final_s=1, **now),
        Attempt("a2", invite_s=3, status=200, final_s=4),  # gap 2 over N = 0
    )
    honoured = gap_summary(table).set_index("verdict").loc["honoured"]
    assert (honoured["retries"], honoured["max_s"], honoured["max_ratio"]) == (1, 2.0, float("inf"))


def test_next_attempt_is_the_first_start_at_or_after_the_failure_with_the_same_key() -> None:
    at = [T0 + pd.Timedelta(s, unit="s") for s in (0, 5, 5, 9, 2)]
    attempts = pd.DataFrame(
        {
            "row": range(5),
            "start_ts": pd.Series(at, dtype=schema.UTC_TS),
            "key": [1, 1, 2, 1, -1],
        }
    )
    failed = pd.DataFrame(
        {
            "call": [10, 11, 12, 13],
            "final_ts": pd.Series([at[1], at[0], at[3], at[0]], dtype=schema.UTC_TS),
            "key": [1, 2, 1, -1],
        }
    )
    found = _next_attempt(failed, attempts, "key")
    # a start at the failure's own time counts (rows 1 and 3); a key of -1 is no key
    assert found["next_row"].tolist() == [1, 2, 3, -1]
    assert found.index.tolist() == [10, 11, 12, 13]
    assert found["next_ts"].isna().tolist() == [False, False, False, True]


def test_next_attempt_on_a_tie_of_starts_takes_the_first_attempt_in_its_table() -> None:
    """Attempts of one key starting at one time: the first in the attempts' order wins,
    however their rows are numbered; failures at that same time find them too."""
    at = [T0 + pd.Timedelta(s, unit="s") for s in (4, 4, 4, 1, 2)]
    attempts = pd.DataFrame(
        {
            "row": [7, 3, 5, 0],
            "start_ts": pd.Series(at[:4], dtype=schema.UTC_TS),
            "key": [2, 1, 1, 1],
        }
    )
    failed = pd.DataFrame(
        {
            "call": [20, 21, 22],
            "final_ts": pd.Series([at[4], at[0], at[0]], dtype=schema.UTC_TS),
            "key": [1, 1, 2],
        }
    )
    found = _next_attempt(failed, attempts, "key")
    assert found["next_row"].tolist() == [3, 3, 7]


@pytest.mark.parametrize("seed", range(6))
def test_retry_after_is_read_on_the_nearest_copy_as_merge_asof_picks_it(seed: int) -> None:
    """Each failure takes the Retry-After of the response of its dialog and code nearest to
    its final_ts (the one before on a tie of distances, the last of a tie of times)."""
    rng = np.random.default_rng(seed)
    n = 60
    ts = T0 + pd.to_timedelta(rng.integers(0, 12, n), unit="s")
    messages = pd.DataFrame(
        {
            "ts": pd.Series(ts, dtype=schema.UTC_TS),
            "status": pd.array(rng.choice([486, 503], n), dtype="Int16"),
            "retry_after": pd.array(rng.integers(0, 100, n), dtype="Int64"),
            "retry_after_raw": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        }
    )
    rows = rng.random(n) < 0.7
    dialog = rng.integers(0, 4, n)
    failed = pd.DataFrame(
        {
            "call": np.arange(15),
            "dialog": rng.integers(0, 5, 15),
            "final_status": pd.array(rng.choice([486, 503], 15), dtype="Int16"),
            "final_ts": pd.Series(
                T0 + pd.to_timedelta(rng.integers(0, 13, 15), unit="s"), dtype=schema.UTC_TS
            ),
        }
    )
    got = _attach_retry_after(failed, messages, rows, dialog)
    status = messages["status"].to_numpy(dtype=np.int64)[rows]
    resp = pd.DataFrame(
        {
            "key": dialog[rows] * 1000 + status,
            "resp_ts": messages["ts"].array[rows],
            "retry_after": messages["retry_after"].array[rows],
            "retry_after_raw": messages["retry_after_raw"].cat.codes.to_numpy()[rows],
        }
    ).sort_values("resp_ts", kind="stable")
    left = failed.assign(
        key=failed["dialog"] * 1000 + failed["final_status"].astype("int64")
    ).sort_values("final_ts", kind="stable")
    want = pd.merge_asof(
        left, resp, left_on="final_ts", right_on="resp_ts", by="key", direction="nearest"
    ).sort_values("call", kind="stable")
    assert got["call"].tolist() == list(range(15))
    assert got["retry_after"].tolist() == want["retry_after"].tolist()
    assert got["retry_after_raw"].tolist() == want["retry_after_raw"].fillna(-1).tolist()


def test_retry_after_is_never_read_on_a_response_without_a_time() -> None:
    """A timeless copy of the failure response is at no distance from the failure: the copy
    a second away gives the Retry-After."""
    messages = pd.DataFrame(
        {
            "ts": pd.Series([pd.NaT, T0 + pd.Timedelta(seconds=1)], dtype=schema.UTC_TS),
            "status": pd.array([503, 503], dtype="Int16"),
            "retry_after": pd.array([1, 2], dtype="Int64"),
            "retry_after_raw": pd.Categorical(["1", "2"]),
        }
    )
    failed = pd.DataFrame(
        {
            "call": [0],
            "dialog": [0],
            "final_status": pd.array([503], dtype="Int16"),
            "final_ts": pd.Series([T0], dtype=schema.UTC_TS),
        }
    )
    got = _attach_retry_after(failed, messages, np.array([True, True]), np.array([0, 0]))
    assert got["retry_after"].tolist() == [2]
    assert got["retry_after_raw"].tolist() == [1]
    alone = _attach_retry_after(failed, messages, np.array([True, False]), np.array([0, 0]))
    assert alone["retry_after"].isna().all()
    assert alone["retry_after_raw"].tolist() == [-1]


def test_uri_key_names_are_made_again_only_for_new_keys() -> None:
    uris = UriKeys()
    uris.ids(pd.Series(["sip:a@x", "sip:b@x"], dtype="category"))
    names = uris.names
    assert uris.names is names
    assert uris.names.tolist() == ["a@x", "b@x"]
    uris.ids(pd.Series(["<sip:c@X;tag=1>"], dtype="category"))
    assert uris.names.tolist() == ["a@x", "b@x", "c@x"]


def test_codes_are_found_in_the_summary_rows_without_a_hash() -> None:
    codes = np.array([486, 503, 999, 1200, -3, 100])
    np.testing.assert_array_equal(_rows_of(codes, [486, 503, 100]), [0, 1, -1, -1, -1, 2])
    np.testing.assert_array_equal(_rows_of(codes, [-3, 486]), [1, -1, -1, -1, 0, -1])
    assert len(_rows_of(codes[:0], [486])) == 0


_NAT = np.iinfo(np.int64).min


@pytest.mark.parametrize(
    ("key_count", "times", "ranked"),
    [
        (1, [5_000, 2_000, 5_000, 9_000], False),
        (1 << 40, [5_000, 2_000, 5_000, 9_000], False),
        # 2**50 keys x a span of 7e13 ns overflows: ranks, with no NaT among the times
        (1 << 50, [5 * 10**13, 2 * 10**13, 5 * 10**13, 9 * 10**13], True),
        (1, [5_000, _NAT, 2_000, 5_000], True),
    ],
)
def test_ordered_times_sort_and_tie_as_the_times_with_room_for_the_keys(
    key_count: int, times: list[int], ranked: bool
) -> None:
    # offsets from the earliest time while key x time fits in an int64, else dense ranks
    values = np.array(times, dtype=np.int64)
    ordered, bound = _ordered(values, key_count)
    if ranked:
        assert bound == len(np.unique(values))
    else:
        np.testing.assert_array_equal(ordered, values - values.min())
        assert bound == values.max() - values.min() + 1
    assert ordered.min() >= 0
    assert ordered.max() < bound
    assert key_count * bound < 1 << 62
    assert (np.argsort(ordered, kind="stable") == np.argsort(values, kind="stable")).all()
    in_order, by_value = ordered[np.argsort(values)], np.sort(values)
    assert (in_order[1:] != in_order[:-1]).tolist() == (by_value[1:] != by_value[:-1]).tolist()
