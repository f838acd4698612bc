"""Retry analysis on the real captures against their truth.json (skipped without the corpus)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from sipstats.analyze import Analysis, analyze
from sipstats.analyze.retries import (
    by_retry_after,
    gap_summary,
    retry_after_summary,
    retry_after_values,
    storms,
)
from sipstats.messages import read_capture
from tests.conftest import CORPUS, load_truth

pytestmark = pytest.mark.corpus

RETRY = "c10_retry"
RETRY_AFTER_CAPTURES = [
    ("c02_mixed_udp", "c02_mixed_udp.pcap"),
    ("c03_tcp_v4", "c03_tcp_v4.pcap"),
    ("c04_udp_v6", "c04_udp_v6.pcap"),
    ("c05_loss", "c05_loss.pcap"),
    ("c07_sll", "c07_sll.pcap"),
    ("c09_pcapng", "c09_pcapng.pcapng"),
    (RETRY, "c10_retry.pcap"),
]


@cache
def _analysis(scenario: str, file: str) -> Analysis:
    return analyze(read_capture([CORPUS / scenario / file]))


@pytest.fixture
def retry_run(corpus_dir: Path) -> Analysis:
    return _analysis(RETRY, "c10_retry.pcap")


#: truth.json totals_by_code key -> retry_after_summary column.
TOTALS = {
    "failures": "failures",
    "with_retry_after": "with_retry_after",
    "retried": "retried",
    "retried_honoured": "honoured",
    "retried_too_early": "too_early",
    "retried_without_retry_after": "without_retry_after_retried",
    "not_retried": "not_retried",
}


def test_c10_retries_per_code_equal_truth(retry_run: Analysis) -> None:
    truth = load_truth(RETRY)["retries"]["totals_by_code"]
    summary = retry_after_summary(retry_run.messages, retry_run.retries).set_index("code")
    got = {
        code: {key: row[column] for key, column in TOTALS.items()}
        for code, row in summary.iterrows()
    }
    want = {code: {key: totals[key] for key in TOTALS} for code, totals in truth.items()}
    assert got == want


def test_c10_every_failed_attempt_matches_truth(retry_run: Analysis) -> None:
    retries = load_truth(RETRY)["retries"]
    records = retries["with_retry_after"] + retries["without_retry_after"]
    table = retry_run.retries.set_index(retry_run.retries["call_id"].astype("str"))
    assert sorted(table.index) == sorted(r["call_id"] for r in records)
    for record in records:
        row = table.loc[record["call_id"]]
        assert row["status"] == record["code"], record["call_id"]
        assert row["caller"].split("@")[0] == record["caller"]
        assert row["callee"].split("@")[0] == record["callee_user"]
        if record["retry_after"] is None:
            assert pd.isna(row["retry_after"])
        else:
            assert row["retry_after"] == record["retry_after"]
            assert row["retry_after_raw"] == record["retry_after_header"]
        assert row["final_ts"].timestamp() == pytest.approx(record["t_final_response"], abs=1e-6)
        assert bool(row["retried"]) is record["retried"], record["call_id"]
        if record["retried"]:
            assert row["retry_call_id"] == record["retry_call_id"]
            assert row["gap_s"] == pytest.approx(record["gap_s"], abs=1e-3)
        else:
            assert pd.isna(row["gap_s"])
        if record["honoured"] is None:
            assert pd.isna(row["honoured"]), record["call_id"]
        else:
            assert bool(row["honoured"]) is record["honoured"], record["call_id"]


def test_c10_gaps_summaries_equal_truth(retry_run: Analysis) -> None:
    gaps = load_truth(RETRY)["retries"]["gap_s"]
    table = retry_run.retries
    honoured = table.loc[table["honoured"].fillna(False).astype(bool), "gap_s"]
    early = table.loc[(~table["honoured"]).fillna(False).astype(bool), "gap_s"]
    assert honoured.min() == pytest.approx(gaps["honoured"]["min"], abs=1e-3)
    assert honoured.max() == pytest.approx(gaps["honoured"]["max"], abs=1e-3)
    assert early.min() == pytest.approx(gaps["too_early"]["min"], abs=1e-3)
    assert early.max() == pytest.approx(gaps["too_early"]["max"], abs=1e-3)


def test_c10_early_retriers_and_storm(retry_run: Analysis) -> None:
    ranked = retry_run.early_retriers
    assert ranked["retries_too_early"].sum() == 29
    assert ranked["retries_too_early"].is_monotonic_decreasing
    # 29 too-early retries and 7 retries after a bare 503, all to one server, in ~1 minute.
    found = storms(retry_run.retries, window="60s", threshold=30)
    assert found["target"].tolist() == ["127.0.91.20:5080"]
    assert (found.iloc[0]["retries"], found.iloc[0]["early_retries"]) == (36, 29)


def test_c10_server_view_of_503(retry_run: Analysis) -> None:
    # One UAC talks to one UAS, so after every 503 the next INVITE to that server follows
    # (another caller's call) unless the 503 is the capture's last failure with nothing after.
    table = retry_run.retries
    bare = table[table["status"] == 503]
    assert bare["server_retried"].sum() >= bare["retried"].sum()
    assert (bare["server_gap_s"].dropna() >= 0).all()
    assert (bare["server_gap_s"] <= bare["gap_s"]).where(bare["retried"], True).all()


@pytest.mark.parametrize(("scenario", "file"), RETRY_AFTER_CAPTURES, ids=lambda v: str(v))
def test_retry_after_values_equal_truth(corpus_dir: Path, scenario: str, file: str) -> None:
    truth = load_truth(scenario)["captures"][file]["sip"]["retry_after"]
    run = _analysis(scenario, file)
    assert retry_after_values(run.messages) == truth["by_code_deduplicated"]
    summary = retry_after_summary(run.messages, run.retries).set_index("code")
    for code, values in truth["by_code_deduplicated"].items():
        assert summary.loc[code, "with_retry_after"] == sum(values.values())
        assert summary.loc[code, "malformed"] == 0


def test_c10_verdicts_per_retry_after_value_equal_truth(retry_run: Analysis) -> None:
    truth = load_truth(RETRY)["retries"]["by_code_and_retry_after"]
    table = by_retry_after(retry_run.retries)
    got = {
        row["code"]: {
            str(row["retry_after"]): {key: row[key] for key in ("failures", "not_retried")}
            | {"retried_honoured": row["honoured"], "retried_too_early": row["too_early"]}
        }
        for row in table.to_dict("records")
    }
    assert got == truth


def test_c10_gap_summary_equals_truth(retry_run: Analysis) -> None:
    truth = load_truth(RETRY)["retries"]["gap_s"]
    table = gap_summary(retry_run.retries).set_index("verdict")
    for verdict, key in [
        ("honoured", "honoured"),
        ("too_early", "too_early"),
        ("without_retry_after", "retried_without_retry_after"),
    ]:
        row, want = table.loc[verdict], truth[key]
        assert row["retries"] == want["count"]
        for stat in ("min", "max", "mean", "median", "p90", "p95"):
            assert round(row[f"{stat}_s"], 3) == want[stat], (verdict, stat)
    for verdict in ("honoured", "too_early"):
        want = truth[f"{verdict}_gap_over_retry_after"]
        row = table.loc[verdict]
        for stat in ("min", "median", "max"):
            assert round(row[f"{stat}_ratio"], 3) == want[stat], (verdict, stat)
