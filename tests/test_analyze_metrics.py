"""RFC 6076 metrics and operator KPIs on a capture whose every figure is worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sipstats.analyze import analyze
from sipstats.analyze.metrics import caller_leg_rows
from tests.analysis_fixtures import capture, invite_call, msg

REGISTRAR = ("10.0.0.9", 5060)


def _metrics(rows: list[dict]) -> dict[str, float]:
    table = analyze(capture(rows)).metrics
    return dict(zip(table["name"], table["value"], strict=True))


@pytest.fixture
def mixed() -> dict[str, float]:
    """Six calls, 18x after 0.1 s and the final after 1 s each (see :func:`invite_call`).

    a: 200, BYE after 2 s answered 200 in 5 ms; b: 486; c: 302; d: 503; e: 408;
    f: 200 still up at the end (no BYE).
    """
    rows = [
        *invite_call("a", 200, t=0, bye_after=2.0),
        *invite_call("b", 486, t=1),
        *invite_call("c", 302, t=2),
        *invite_call("d", 503, t=3),
        *invite_call("e", 408, t=4),
        *invite_call("f", 200, t=5, bye_after=None),
    ]
    return _metrics(rows)


def test_ser_subtracts_only_3xx(mixed: dict[str, float]) -> None:
    # RFC 6076 §4.6: 200s / (INVITEs - INVITEs with 3XX) = 2 / (6 - 1).
    assert mixed["SER"] == pytest.approx(40.0)


def test_seer_counts_200_480_486_600_603(mixed: dict[str, float]) -> None:
    # §4.7: a, f (200) and b (486) over the same denominator as SER.
    assert mixed["SEER"] == pytest.approx(60.0)


def test_isa_counts_408_500_503_504_over_all_calls(mixed: dict[str, float]) -> None:
    # §4.8: d (503) and e (408) of 6; no 3XX subtraction.
    assert mixed["ISA"] == pytest.approx(100.0 * 2 / 6)


def test_scr_both_readings_leave_calls_still_up_out(mixed: dict[str, float]) -> None:
    # §4.9: f is still up, so 5 calls count; (A) only a completed; (B) only e failed for
    # lack of response (408).
    assert mixed["SCR"] == pytest.approx(20.0)
    assert mixed["SCR_literal"] == pytest.approx(80.0)


def test_srd_success_and_failure_apart(mixed: dict[str, float]) -> None:
    # §4.3: INVITE -> 180 after 0.1 s for every call; the 302 gives no sample.
    assert mixed["SRD_success"] == pytest.approx(0.1)
    assert mixed["SRD_failure"] == pytest.approx(0.1)


def test_sdd_and_sdt(mixed: dict[str, float]) -> None:
    assert mixed["SDD_success"] == pytest.approx(5.0)  # §4.4, ms
    assert mixed["SDT_success"] == pytest.approx(2.0)  # §4.5.1, s
    assert math.isnan(mixed["SDD_failure"])
    assert math.isnan(mixed["SDT_failure"])


def test_operator_kpis(mixed: dict[str, float]) -> None:
    assert mixed["ASR"] == pytest.approx(100.0 * 2 / 6)
    assert mixed["NER"] == pytest.approx(100.0 * 4 / 6)  # answered 2, busy, 408 no answer
    assert mixed["ACD"] == pytest.approx(2.0)
    assert mixed["PDD"] == pytest.approx(100.0)


def test_srd_without_ringing_runs_to_the_final() -> None:
    m = _metrics(invite_call("a", 200, ringing=False) + invite_call("b", 480, t=1, ringing=False))
    assert m["SRD_success"] == pytest.approx(1.0)
    assert m["SRD_failure"] == pytest.approx(1.0)


def test_challenged_call_stays_in_the_ser_denominator() -> None:
    # Only 3XX leaves the denominator (published RFC, not the drafts): a 407 never answered
    # counts as an unsuccessful session request.
    ids = {"call_id": "x", "from_tag": "fx", "branch": "z9hG4bK-x"}
    rows = [*invite_call("a", 200), msg(5, "INVITE", **ids), msg(5.1, 407, to_tag="p", **ids)]
    assert _metrics(rows)["SER"] == pytest.approx(50.0)


def test_ser_per_transaction_counts_every_challenge() -> None:
    ids = {"call_id": "x", "from_tag": "fx"}
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-1", **ids),
        msg(0.1, 407, branch="z9hG4bK-1", to_tag="p", **ids),
        msg(0.2, "INVITE", branch="z9hG4bK-2", cseq=2, **ids),
        msg(1.0, 200, branch="z9hG4bK-2", cseq=2, to_tag="t", **ids),
        msg(5.0, "INVITE", branch="z9hG4bK-3", cseq=3, to_tag="t", **ids),  # re-INVITE
        msg(5.1, 200, branch="z9hG4bK-3", cseq=3, to_tag="t", **ids),
    ]
    m = _metrics(rows)
    assert m["SER"] == pytest.approx(100.0)  # one session request, answered
    assert m["SER_transactions"] == pytest.approx(50.0)  # 407'd INVITE + answered INVITE


def test_failed_disconnects() -> None:
    rows = invite_call("a", 200, bye_after=None)
    bye = {"call_id": "a", "from_tag": "f-a", "to_tag": "t-a", "cseq": 2}
    rows += [
        msg(3.0, "BYE", branch="z9hG4bK-bye", **bye),
        msg(3.1, 481, branch="z9hG4bK-bye", cseq_method="BYE", **bye),
    ]
    rows += invite_call("b", 200, t=10, bye_after=None)
    rows.append(
        msg(
            13.0,
            "BYE",
            branch="z9hG4bK-bye-b",
            **{**bye, "call_id": "b", "from_tag": "f-b", "to_tag": "t-b"},
        )
    )
    m = _metrics(rows)
    assert m["SDD_failure"] == pytest.approx(100.0)
    # §4.5.2: the unanswered BYE ends the session at its Timer F expiry (+32 s).
    assert m["SDT_failure"] == pytest.approx(2.0 + 32.0)
    assert math.isnan(m["SDT_success"])


def test_rrd_and_ira() -> None:
    def register(call_id: str, t: float, cseq: int, final: int) -> list[dict]:
        ids = {"call_id": call_id, "cseq": cseq, "branch": f"z9hG4bK-{call_id}{cseq}"}
        return [
            msg(t, "REGISTER", dst=REGISTRAR, **ids),
            msg(t + 0.02, final, cseq_method="REGISTER", src=REGISTRAR, **ids),
        ]

    rows = [*register("ok", 0, 1, 401), *register("ok", 0.1, 2, 200)]
    rows += [*register("bad", 1, 1, 401), *register("bad", 1.1, 2, 403)]
    m = _metrics(rows)
    assert m["RRD"] == pytest.approx(120.0)  # §4.1: spans the challenge
    assert m["IRA"] == pytest.approx(50.0)  # §4.2: the 403; the 401s are not failures


def test_zero_denominators_are_undefined_and_null_in_json() -> None:
    a = analyze(capture([]))
    assert a.metrics["value"].isna().all()
    assert set(a.to_dict()["metrics"].values()) == {None}
    assert list(a.metrics["name"]) == [
        "RRD",
        "SRD_success",
        "SRD_failure",
        "SDD_success",
        "SDD_failure",
        "SDT_success",
        "SDT_failure",
        "SER",
        "SEER",
        "SER_transactions",
        "ISA",
        "SCR",
        "SCR_literal",
        "IRA",
        "ASR",
        "NER",
        "ACD",
        "PDD",
    ]


def test_every_metric_has_unit_definition_and_reference() -> None:
    table = analyze(capture(invite_call("a", 200))).metrics
    assert set(table["unit"]) <= {"%", "ms", "s"}
    assert table["definition"].str.len().gt(20).all()
    rfc = table[table["reference"].str.startswith("RFC 6076 §")]
    assert set(rfc["name"].str.split("_").str[0]) == {
        "RRD",
        "SRD",
        "SDD",
        "SDT",
        "SER",
        "SEER",
        "ISA",
        "SCR",
        "IRA",
    }
    assert pd.api.types.is_float_dtype(table["value"])


def test_transactions_on_the_caller_leg_with_one_call_several_or_none() -> None:
    # Call-ID x has two calls (two legs), y one, z none; a transaction is kept when its
    # addresses are one of its Call-ID's legs, either way round, or its Call-ID has no call.
    calls = pd.DataFrame(
        {
            "call_id": pd.Categorical(["x", "x", "y"]),
            "src": pd.Categorical(["A:1", "C:1", "A:1"]),
            "dst": pd.Categorical(["B:1", "D:1", "B:1"]),
        }
    )
    rows = [
        ("x", "A:1", "B:1", True),
        ("x", "D:1", "C:1", True),
        ("x", "A:1", "D:1", False),
        ("y", "B:1", "A:1", True),
        ("y", "A:1", "C:1", False),
        ("y", None, "B:1", False),
        ("z", "E:1", "F:1", True),
        (None, "A:1", "B:1", True),
    ]
    transactions = pd.DataFrame(
        {
            "call_id": pd.Categorical([r[0] for r in rows]),
            "client": pd.Categorical([r[1] for r in rows]),
            "server": pd.Categorical([r[2] for r in rows]),
        }
    )
    kept = caller_leg_rows(transactions, calls)
    assert kept.tolist() == [row[3] for row in rows]
