"""Registration attempts: challenges, 423 Interval Too Brief, failures, refreshes."""

from __future__ import annotations

import pandas as pd
import pytest

from sipstats import schema
from sipstats.analyze import analyze
from tests.analysis_fixtures import capture, msg

REGISTRAR = ("10.0.0.9", 5060)


def _register(
    t: float, cseq: int, final: int | None, from_tag: str | None = "ft1", **extra: object
) -> list[dict]:
    """One REGISTER transaction of call-id 'reg' and its final response (if any)."""
    ids = {
        **{"call_id": "reg", "cseq": cseq, "branch": f"z9hG4bK-r{cseq}", "dst": REGISTRAR},
        "from_tag": from_tag,
    }
    request = msg(t, "REGISTER", expires=3600, has_auth=cseq > 1, **ids)
    if final is None:
        return [request]
    response = msg(
        t + 0.02,
        final,
        cseq_method="REGISTER",
        to_tag=f"reg{cseq}",
        **{**ids, "dst": ("10.0.0.1", 5060), "src": REGISTRAR},
        **extra,
    )
    return [request, response]


def _regs(rows: list[dict]) -> pd.DataFrame:
    return analyze(capture(rows)).registrations


def test_challenge_then_200_is_one_registration_and_rrd_spans_the_challenge() -> None:
    regs = _regs(_register(0, 1, 401) + _register(0.1, 2, 200))
    assert list(regs.columns) == list(schema.REGISTRATIONS)
    assert len(regs) == 1
    row = regs.iloc[0]
    assert row["outcome"] == "registered"
    assert row["finals"] == "401-200"
    assert (row["requests"], row["challenges"]) == (2, 1)
    assert bool(row["challenge_answered"])
    assert row["rrd_ms"] == pytest.approx(120.0)
    assert row["aor"] == "sip:bob@example.com"
    assert row["dst"] == "10.0.0.9:5060"


def test_interval_too_brief_is_recovered_within_the_attempt() -> None:
    rows = _register(0, 1, 423, min_expires=120) + _register(0.1, 2, 401) + _register(0.2, 3, 200)
    row = _regs(rows).iloc[0]
    assert row["finals"] == "423-401-200"
    assert row["interval_too_brief"] == 1
    assert row["min_expires"] == 120
    assert row["outcome"] == "registered"
    assert row["rrd_ms"] == pytest.approx(220.0)


def test_wrong_password_is_a_failed_registration_without_rrd() -> None:
    row = _regs(_register(0, 1, 401) + _register(0.1, 2, 403)).iloc[0]
    assert row["outcome"] == "failed"
    assert row["final_status"] == 403
    assert pd.isna(row["rrd_ms"])


def test_unanswered_challenge_and_missing_response() -> None:
    regs = _regs(_register(0, 1, 401))
    assert list(regs["outcome"]) == ["challenged_unanswered"]
    assert not bool(regs.iloc[0]["challenge_answered"])
    regs = _regs(_register(0, 1, None))
    assert list(regs["outcome"]) == ["no_final_response"]
    assert pd.isna(regs.iloc[0]["challenge_answered"])


def test_refresh_in_the_same_call_id_is_a_new_attempt() -> None:
    rows = _register(0, 1, 401) + _register(0.1, 2, 200) + _register(1800, 3, 200)
    regs = _regs(rows)
    assert list(regs["finals"]) == ["401-200", "200"]
    assert list(regs["outcome"]) == ["registered", "registered"]


def test_registrations_are_ordered_by_call_id_then_from_tag_text() -> None:
    # a Call-ID that begins another sorts first; a missing From tag before any tag; capital
    # letters before small ones; the order of arrival does not count
    uas = [("a-b", "t"), ("a", "x"), ("B", "t"), ("a", None), ("a", "")]
    rows = [
        msg(i, "REGISTER", call_id=call_id, from_tag=tag, branch=f"z9hG4bK-{i}", dst=REGISTRAR)
        for i, (call_id, tag) in enumerate(uas)
    ]
    regs = _regs(rows)
    assert regs["call_id"].astype("str").tolist() == ["B", "a", "a", "a", "a-b"]
    # the empty tag and the missing one sort the same: in time order
    sent = (regs["start_ts"] - regs["start_ts"].min()).dt.total_seconds()
    assert sent.tolist() == [2, 3, 4, 1, 0]


def test_an_empty_from_tag_and_a_missing_one_are_one_ua() -> None:
    # a challenge to the tagless REGISTER, answered by the one with an empty tag: one attempt
    regs = _regs(_register(0, 1, 401, from_tag=None) + _register(0.1, 2, 200, from_tag=""))
    assert list(regs["finals"]) == ["401-200"]
