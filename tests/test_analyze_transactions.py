"""Transactions and retransmissions (RFC 3261 §17) on small message lists."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sipstats import schema
from sipstats.analyze import Analysis, BuiltOnRead, analyze
from sipstats.analyze import transactions as tx_stage
from sipstats.analyze.trunks import apply_trunks, load_trunks
from sipstats.cli import main
from sipstats.render import write_report
from tests.analysis_fixtures import UAC, UAS, capture, invite_call, msg
from tests.conftest import SAMPLES

PROXY_IN = ("10.0.1.1", 5060)
PROXY_OUT = ("10.0.2.1", 5060)
CALLEE = ("10.0.2.2", 5060)


def _tx(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = analyze(capture(rows))
    return a.messages, a.transactions


def test_ack_to_non_2xx_joins_the_invite_transaction_cancel_has_its_own() -> None:
    b = "z9hG4bK-x"
    rows = [
        msg(0, "INVITE", branch=b),
        msg(0.1, 180, branch=b, to_tag="t"),
        msg(0.5, "CANCEL", branch=b),
        msg(0.51, 200, branch=b, cseq_method="CANCEL"),
        msg(0.52, 487, branch=b, to_tag="t"),
        msg(0.53, "ACK", branch=b, to_tag="t"),
    ]
    m, tx = _tx(rows)
    assert list(m["transaction"]) == [0, 0, 1, 1, 0, 0]
    assert list(tx["method"]) == ["INVITE", "CANCEL"]
    invite = tx.iloc[0]
    assert invite["final_status"] == 487
    assert invite["acks"] == 1
    assert invite["requests"] == 1
    assert invite["key"] == f"{b} INVITE"
    assert tx.iloc[1]["final_status"] == 200


def test_ack_to_2xx_is_its_own_transaction_and_its_resend_a_retransmission() -> None:
    rows = [*invite_call("a", 200, bye_after=None)]
    ack = rows[-1]
    rows.append({**ack, "ts": ack["ts"] + pd.Timedelta(seconds=0.5)})
    m, tx = _tx(rows)
    assert list(tx["method"]) == ["INVITE", "ACK"]
    acks = m[m["method"] == "ACK"]
    assert list(acks["transaction"]) == [1, 1]
    assert list(acks["retransmission"]) == [False, True]
    assert tx.iloc[1]["retransmissions"] == 1


def test_retransmitted_invite_and_200_are_flagged_not_dropped() -> None:
    b = "z9hG4bK-r"
    ids = {"branch": b}
    rows = [
        msg(0, "INVITE", **ids),
        msg(0.5, "INVITE", **ids),
        msg(1.0, 200, to_tag="t", **ids),
        msg(1.5, 200, to_tag="t", **ids),
        msg(2.0, 200, to_tag="t", **ids),
    ]
    m, tx = _tx(rows)
    assert list(m["retransmission"]) == [False, True, False, True, True]
    assert len(tx) == 1
    row = tx.iloc[0]
    assert (row["requests"], row["responses"], row["retransmissions"]) == (2, 3, 3)
    # RFC 6076 §4: t1 is the first copy; the latency runs from it.
    assert row["final_ms"] == 1000.0


def test_forked_200s_with_two_to_tags_are_not_retransmissions() -> None:
    b = "z9hG4bK-f"
    rows = [
        msg(0, "INVITE", branch=b),
        msg(1.0, 200, branch=b, to_tag="fork-a"),
        msg(1.1, 200, branch=b, to_tag="fork-b"),
    ]
    m, _ = _tx(rows)
    assert not m["retransmission"].any()


def test_same_message_in_the_other_direction_is_not_a_retransmission() -> None:
    b = "z9hG4bK-d"
    rows = [
        msg(0, "INVITE", branch=b, src=UAC, dst=UAS),
        msg(0.01, "INVITE", branch=b, src=UAS, dst=UAC),
        msg(0.02, "INVITE", branch=b, src=UAC, dst=UAS),
    ]
    m, _ = _tx(rows)
    assert list(m["retransmission"]) == [False, False, True]


def test_proxy_legs_are_different_transactions() -> None:
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-caller", src=UAC, dst=PROXY_IN),
        msg(0.01, "INVITE", branch="z9hG4bK-proxy", src=PROXY_OUT, dst=CALLEE),
        msg(0.5, 180, branch="z9hG4bK-proxy", to_tag="t", src=CALLEE, dst=PROXY_OUT),
        msg(0.51, 180, branch="z9hG4bK-caller", to_tag="t", src=PROXY_IN, dst=UAC),
    ]
    m, tx = _tx(rows)
    assert list(m["transaction"]) == [0, 1, 1, 0]
    assert not m["retransmission"].any()
    assert list(tx["client"]) == ["10.0.0.1:5060", "10.0.2.1:5060"]
    assert list(tx["server"]) == ["10.0.1.1:5060", "10.0.2.2:5060"]


def test_rfc2543_branches_fall_back_to_call_id_cseq_and_from_tag() -> None:
    # Without the z9hG4bK cookie a branch need not be unique (RFC 3261 §17.2.3).
    rows = [
        msg(0, "INVITE", branch="1", from_tag="a", call_id="c"),
        msg(0.1, "INVITE", branch="1", from_tag="b", call_id="c"),
        msg(0.2, 486, branch="1", from_tag="a", call_id="c", to_tag="t"),
        msg(0.3, "ACK", branch="1", from_tag="a", call_id="c", to_tag="t"),
        msg(0.4, "INVITE", branch="1", from_tag="a", call_id="c"),
    ]
    m, tx = _tx(rows)
    assert list(m["transaction"]) == [0, 1, 0, 0, 0]
    assert list(m["retransmission"]) == [False, False, False, False, True]
    assert tx.iloc[0]["key"].startswith("c 1 INVITE a ")


def test_transaction_table_timings_and_missing_final() -> None:
    rows = [
        msg(0, "OPTIONS", branch="z9hG4bK-o1", call_id="o1"),
        msg(0.02, 200, branch="z9hG4bK-o1", call_id="o1", cseq_method="OPTIONS"),
        msg(1, "OPTIONS", branch="z9hG4bK-o2", call_id="o2"),
        msg(1.1, 100, branch="z9hG4bK-o2", call_id="o2", cseq_method="OPTIONS"),
    ]
    _, tx = _tx(rows)
    assert list(tx.columns) == list(schema.TRANSACTIONS)
    assert list(tx["has_final"]) == [True, False]
    assert tx.iloc[0]["final_ms"] == 20.0
    assert pd.isna(tx.iloc[1]["final_status"])
    assert tx.iloc[1]["first_provisional_status"] == 100
    assert tx.iloc[1]["provisional_ms"] == 100.0


def test_response_without_its_request_still_gets_a_transaction() -> None:
    # A capture that starts mid-call: the BYE's 200 alone.
    rows = [msg(0, 200, branch="z9hG4bK-b", cseq=2, cseq_method="BYE", to_tag="t")]
    m, tx = _tx(rows)
    assert list(m["transaction"]) == [0]
    assert tx.iloc[0]["method"] == "BYE"
    assert pd.isna(tx.iloc[0]["request_ts"])
    assert pd.isna(tx.iloc[0]["final_ms"])


def test_analysed_messages_carry_the_catalogue_and_the_phrase_sent() -> None:
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-p"),
        msg(0.1, 500, branch="z9hG4bK-p", to_tag="t", reason="Service Unavailable"),
    ]
    m, _ = _tx(rows)
    assert list(m.columns) == list(schema.ANALYZED_MESSAGES)
    resp = m.iloc[1]
    assert resp["reason"] == "Service Unavailable"
    assert resp["catalogue_reason"] == "Server Internal Error"
    assert resp["status_class"] == "5xx"
    assert bool(resp["registered"])
    assert pd.isna(m.iloc[0]["status_class"])


def test_messages_out_of_time_order_are_sorted_first() -> None:
    rows = [
        msg(1.0, 200, branch="z9hG4bK-s", to_tag="t"),
        msg(0.0, "INVITE", branch="z9hG4bK-s"),
        msg(1.5, 200, branch="z9hG4bK-s", to_tag="t"),
    ]
    m, tx = _tx(rows)
    assert list(m["frame"]) == [2, 1, 3]
    assert list(m["retransmission"]) == [False, False, True]
    assert tx.iloc[0]["final_ms"] == 1000.0


def test_a_copy_after_the_transaction_lifetime_is_not_a_retransmission() -> None:
    # RFC 3261 §17: 64*T1 = 32 s. The same INVITE/486/ACK replayed 5 minutes later (a looped
    # capture or a reused branch) is a new transaction, and none of its messages is a copy.
    b = "z9hG4bK-replayed"
    once = [
        msg(0, "INVITE", branch=b),
        msg(0.5, "INVITE", branch=b),
        msg(1.0, 486, branch=b, to_tag="t"),
        msg(1.01, "ACK", branch=b, to_tag="t"),
    ]
    later = [{**row, "ts": row["ts"] + pd.Timedelta(minutes=5)} for row in once]
    m, tx = _tx(once + later)
    assert list(m["retransmission"]) == [False, True, False, False] * 2
    assert list(m["transaction"]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert list(tx["final_status"]) == [486, 486]
    assert list(tx["retransmissions"]) == [1, 1]


def test_copies_within_the_lifetime_stay_retransmissions_and_a_late_response_joins() -> None:
    # A 200 retransmitted every 4 s (T2) up to 32 s, and a final response 60 s after the
    # 180 (a long ringing phase): same transaction throughout, copies flagged.
    b = "z9hG4bK-long"
    rows = [msg(0, "INVITE", branch=b), msg(0.1, 180, branch=b, to_tag="t")]
    rows += [msg(60.0 + 4 * i, 200, branch=b, to_tag="t") for i in range(8)]
    rows.append(msg(200.0, 200, branch=b, to_tag="t"))  # 112 s after the last copy
    m, tx = _tx(rows)
    assert set(m["transaction"]) == {0}
    assert list(m["retransmission"]) == [False, False, False] + [True] * 7 + [False]
    assert tx.iloc[0]["final_ms"] == 60_000.0


def _legacy_and_cookie_rows() -> list[dict]:
    """An RFC 3261 transaction and, in three other Call-IDs, RFC 2543 ones (no magic cookie)."""
    b = "z9hG4bK-k"
    rows = [msg(0, "INVITE", branch=b), msg(0.1, 486, branch=b, to_tag="t")]
    for n in range(3):
        ids = {"call_id": f"old-{n}", "branch": f"old-{n}", "cseq_method": "OPTIONS"}
        rows += [msg(1 + n, "OPTIONS", **ids), msg(1.1 + n, 200, **ids)]
    return rows


def test_the_transaction_key_is_built_on_the_first_read_of_the_table() -> None:
    """The key is text of every transaction that no report reads: the summary counts the
    transactions without it, and the table has it on its first read (RFC 2543 tuple too)."""
    a = analyze(capture(_legacy_and_cookie_rows()))
    summary = a.summary()
    assert (summary["transactions"], summary["transactions_without_final"]) == (4, 0)
    assert isinstance(vars(a)["transactions"], BuiltOnRead)  # counting made no key
    keys = a.transactions["key"]
    assert not isinstance(vars(a)["transactions"], BuiltOnRead)
    assert keys.iloc[0] == "z9hG4bK-k INVITE"
    assert keys.iloc[1] == f"old-0 1 OPTIONS ft1 {UAC[0]}"
    assert list(keys.cat.categories) == sorted(keys)
    assert a.transactions is a.transactions  # made once


def test_a_table_built_on_read_is_a_plain_field_of_analysis() -> None:
    """In its place among the fields, positional, typed as a table; the class attribute and
    an absent value behave as for any attribute."""
    fields = {f.name: f for f in dataclasses.fields(Analysis)}
    names = list(fields)
    assert names.index("transactions") == names.index("tally") + 1
    assert fields["transactions"].type == "pd.DataFrame"  # as annotated
    assert Analysis.transactions is vars(Analysis)["transactions"]  # the descriptor itself
    a = analyze(capture(_legacy_and_cookie_rows()))
    positional = Analysis(*(vars(a)[f.name] for f in dataclasses.fields(Analysis) if f.init))
    assert isinstance(vars(positional)["transactions"], BuiltOnRead)
    pd.testing.assert_frame_equal(positional.transactions, a.transactions)
    del vars(positional)["transactions"]
    assert not hasattr(positional, "transactions")


def test_a_copy_of_the_analysis_builds_no_table_in_either() -> None:
    a = analyze(capture(_legacy_and_cookie_rows()))
    b = a.replaced(interval="1min")
    assert isinstance(vars(a)["transactions"], BuiltOnRead)
    assert isinstance(vars(b)["transactions"], BuiltOnRead)
    assert b.interval == "1min"
    pd.testing.assert_frame_equal(b.transactions, a.transactions)


def test_trunks_relabel_the_transactions_when_their_table_is_read(tmp_path: Path) -> None:
    """apply_trunks keeps the key to be built on read, in its analysis and in the one it
    relabels; the table read is the one relabelled after it was built."""
    path = tmp_path / "trunks.csv"
    path.write_text(f"{UAS[0]},pbx\n")
    trunks = load_trunks(path)
    lazy = analyze(capture(_legacy_and_cookie_rows()))
    built = analyze(capture(_legacy_and_cookie_rows()))
    assert "key" in built.transactions  # built before the trunks are applied
    named = apply_trunks(lazy, trunks)
    assert isinstance(vars(lazy)["transactions"], BuiltOnRead)
    assert isinstance(vars(named)["transactions"], BuiltOnRead)
    expected = apply_trunks(built, trunks).transactions
    assert expected["server"].astype("str").iloc[0] == f"pbx ({UAS[0]}:{UAS[1]})"
    pd.testing.assert_frame_equal(named.transactions, expected, check_exact=True)
    pd.testing.assert_frame_equal(lazy.transactions, built.transactions, check_exact=True)


@pytest.fixture
def keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a transaction key fails: what runs with this made none."""

    def refused(wide: pd.DataFrame) -> pd.Categorical[str]:
        raise AssertionError("a transaction key was built")

    monkeypatch.setattr(tx_stage, "_key", refused)


@pytest.mark.usefixtures("keyless")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_reports_make_no_transaction_key(
    jobs: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON and text reports through the command line, with trunks, in one process and on
    Call-ID partitions in two: no key is built (building one fails here)."""
    analysis_module = importlib.import_module("sipstats.analyze")  # the package
    monkeypatch.setattr(analysis_module, "MIN_PARTITION_MESSAGES", 1)
    monkeypatch.setattr(analysis_module, "MIN_POOL_PROCESSES", 2)
    partitions: list[int] = []
    partitioned = analysis_module._partitioned

    def counted(*args: Any) -> Any:
        partitions.append(args[2])
        return partitioned(*args)

    monkeypatch.setattr(analysis_module, "_partitioned", counted)
    trunks = tmp_path / "trunks.csv"
    trunks.write_text("10.0.0.0/8,lab\n")
    for fmt in ("json", "text"):
        out = tmp_path / f"report-{jobs}.{fmt}"
        args = [str(SAMPLES / "outage.pcap"), "--report", fmt, "-o", str(out)]
        result = CliRunner().invoke(main, [*args, "--jobs", jobs, "--trunks", str(trunks)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 0
    assert partitions == ([2, 2] if jobs == "2" else [])  # the partitioned path ran with 2
    with pytest.raises(AssertionError, match="key was built"):
        _ = analyze(capture(_legacy_and_cookie_rows())).transactions


@pytest.mark.usefixtures("keyless")
def test_the_api_reports_make_no_transaction_key(tmp_path: Path) -> None:
    a = analyze(capture(_legacy_and_cookie_rows()))
    for fmt in ("json", "text"):
        write_report(a, fmt, tmp_path / f"report.{fmt}")
    assert isinstance(vars(a)["transactions"], BuiltOnRead)


def test_merged_partitions_give_the_one_process_key_rfc_2543_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analysis_module = importlib.import_module("sipstats.analyze")
    monkeypatch.setattr(analysis_module, "MIN_PARTITION_MESSAGES", 1)
    monkeypatch.setattr(analysis_module, "MIN_POOL_PROCESSES", 2)
    one = analyze(capture(_legacy_and_cookie_rows()))
    two = analyze(capture(_legacy_and_cookie_rows()), jobs=2)
    assert two.messages is None  # partitioned
    assert isinstance(vars(two)["transactions"], BuiltOnRead)
    assert (~two.transactions["key"].astype("str").str.startswith("z9hG4bK")).sum() == 3
    pd.testing.assert_frame_equal(two.transactions, one.transactions, check_exact=True)


def test_a_response_without_a_code_is_neither_provisional_nor_final() -> None:
    """A MESSAGES frame given through the API may hold a response whose status is NA."""
    b = "z9hG4bK-na"
    rows = [msg(0, "INVITE", branch=b), msg(0.1, 180, branch=b), msg(0.2, 486, branch=b)]
    rows[1]["status"] = None
    tx = analyze(capture(rows)).transactions
    assert tx.iloc[0]["responses"] == 2
    assert pd.isna(tx.iloc[0]["first_provisional_ts"])
    assert tx.iloc[0]["final_status"] == 486


@pytest.mark.parametrize("seed", range(4))
def test_gap_ns_is_the_gap_to_the_previous_row_of_the_group(seed: int) -> None:
    # many values seen once among some repeated ones, with slot collisions between them
    rng = np.random.default_rng(seed)
    group = rng.choice(rng.integers(-(2**62), 2**62, 300), 2000) * (seed + 1)
    group[::3] = rng.integers(-(2**62), 2**62, len(group[::3]))
    ts = np.sort(rng.integers(0, 10**12, len(group)))
    rows = np.isin(group, group[::5])
    for mask in (None, rows):
        last: dict[int, int] = {}
        expected = []
        for value, t, wanted in zip(
            group.tolist(),
            ts.tolist(),
            rows if mask is not None else [True] * len(group),
            strict=True,
        ):
            expected.append(t - last[value] if wanted and value in last else -1)
            last[value] = t
        np.testing.assert_array_equal(tx_stage._gap_ns(group, ts, mask), expected)
