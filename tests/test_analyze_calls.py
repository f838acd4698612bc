"""Calls and their outcomes on small message lists: one rule per test."""

from __future__ import annotations

import pandas as pd
import pytest

from sipstats import schema
from sipstats.analyze import analyze, keys
from sipstats.analyze import calls as calls_stage
from sipstats.analyze.dialogs import analyze_dialogs
from tests.analysis_fixtures import UAC, UAS, capture, invite_call, messages, msg

PROXY_IN = ("10.0.1.1", 5060)
PROXY_OUT = ("10.0.2.1", 5060)
CALLEE = ("10.0.2.2", 5060)


def _calls(rows: list[dict]) -> pd.DataFrame:
    return analyze(capture(rows)).calls


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        (200, "answered"),
        (486, "busy"),
        (600, "busy"),
        (480, "unavailable"),
        (408, "unavailable"),
        (603, "declined"),
        (607, "declined"),
        (608, "declined"),
        (404, "not_found"),
        (604, "not_found"),
        (484, "not_found"),
        (485, "not_found"),
        (302, "redirected"),
        (401, "auth_failed"),
        (407, "auth_failed"),
        (403, "auth_failed"),
        (415, "rejected"),
        (487, "rejected"),  # 487 without the caller's CANCEL
        (606, "rejected"),
        (500, "server_failure"),
        (503, "server_failure"),
    ],
)
def test_outcome_of_each_final_code(final: int, expected: str) -> None:
    calls = _calls(invite_call("c", final))
    assert list(calls["outcome"]) == [expected]
    assert calls.iloc[0]["final_status"] == final


def test_call_columns_and_timings() -> None:
    calls = _calls(invite_call("c", 200, bye_after=3.0))
    assert list(calls.columns) == list(schema.CALLS)
    row = calls.iloc[0]
    assert row["pdd_ms"] == pytest.approx(100.0)
    assert row["answer_ms"] == pytest.approx(1000.0)
    assert row["duration_s"] == pytest.approx(3.0)
    assert (row["src"], row["dst"]) == ("10.0.0.1:5060", "10.0.0.2:5060")
    assert row["caller"] == "sip:alice@example.com"
    assert bool(row["has_bye"])
    assert row["bye_status"] == 200


def test_pdd_falls_back_to_the_2xx_without_ringing() -> None:
    calls = _calls(invite_call("c", 200, ringing=False))
    assert calls.iloc[0]["pdd_ms"] == pytest.approx(1000.0)
    assert pd.isna(calls.iloc[0]["ringing_ts"])


def test_auth_challenge_then_answer_is_one_answered_call() -> None:
    ids = {"call_id": "auth", "from_tag": "f"}
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-1", **ids),
        msg(0.01, 407, branch="z9hG4bK-1", to_tag="p", **ids),
        msg(0.02, "ACK", branch="z9hG4bK-1", to_tag="p", **ids),
        msg(0.1, "INVITE", branch="z9hG4bK-2", cseq=2, has_auth=True, **ids),
        msg(0.5, 180, branch="z9hG4bK-2", cseq=2, to_tag="t", **ids),
        msg(1.0, 200, branch="z9hG4bK-2", cseq=2, to_tag="t", **ids),
    ]
    calls = _calls(rows)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert row["outcome"] == "answered"
    assert (row["invites"], row["auth_challenges"]) == (2, 1)
    # RFC 6076 §5.3: the challenge round trip is part of the setup time.
    assert row["answer_ms"] == pytest.approx(1000.0)


def test_challenge_never_answered_is_auth_failed() -> None:
    ids = {"call_id": "noauth", "from_tag": "f", "branch": "z9hG4bK-1"}
    rows = [msg(0, "INVITE", **ids), msg(0.01, 407, to_tag="p", **ids)]
    rows.append(msg(0.02, "ACK", to_tag="p", **ids))
    assert list(_calls(rows)["outcome"]) == ["auth_failed"]


def test_cancel_then_487_is_cancelled() -> None:
    b = "z9hG4bK-c"
    rows = [
        msg(0, "INVITE", branch=b),
        msg(0.1, 180, branch=b, to_tag="t"),
        msg(2.0, "CANCEL", branch=b),
        msg(2.01, 200, branch=b, cseq_method="CANCEL"),
        msg(2.02, 487, branch=b, to_tag="t"),
        msg(2.03, "ACK", branch=b, to_tag="t"),
    ]
    row = _calls(rows).iloc[0]
    assert row["outcome"] == "cancelled"
    assert bool(row["cancelled"])


def test_cancel_race_200_after_cancel_is_answered() -> None:
    b = "z9hG4bK-race"
    rows = [
        msg(0, "INVITE", branch=b),
        msg(0.1, 180, branch=b, to_tag="t"),
        msg(2.0, "CANCEL", branch=b),
        msg(2.0005, 200, branch=b, to_tag="t"),
        msg(2.001, 200, branch=b, cseq_method="CANCEL"),
        msg(2.002, "ACK", branch="z9hG4bK-ack", to_tag="t"),
        msg(2.003, "BYE", branch="z9hG4bK-bye", cseq=2, to_tag="t"),
        msg(2.004, 200, branch="z9hG4bK-bye", cseq=2, cseq_method="BYE", to_tag="t"),
    ]
    row = _calls(rows).iloc[0]
    assert row["outcome"] == "answered"
    assert bool(row["cancelled"])
    assert row["duration_s"] == pytest.approx(0.0025)


def test_forked_invite_with_two_to_tags_is_one_answered_call() -> None:
    b = "z9hG4bK-f"
    rows = [
        msg(0, "INVITE", branch=b),
        msg(0.1, 180, branch=b, to_tag="fork-a"),
        msg(0.2, 180, branch=b, to_tag="fork-b"),
        msg(1.0, 200, branch=b, to_tag="fork-b"),
        msg(1.1, 200, branch=b, to_tag="fork-a"),
    ]
    calls = _calls(rows)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert row["outcome"] == "answered"
    assert row["to_tags"] == 2
    assert row["answer_ms"] == pytest.approx(1000.0)


def test_retransmitted_200_does_not_move_the_answer() -> None:
    rows = invite_call("c", 200, bye_after=None)
    ok = next(r for r in rows if r["status"] == 200)
    rows.append({**ok, "ts": ok["ts"] + pd.Timedelta(seconds=0.5)})
    row = _calls(rows).iloc[0]
    assert row["answer_ms"] == pytest.approx(1000.0)
    assert row["outcome"] == "answered"


def test_capture_starting_mid_call_makes_no_call() -> None:
    ids = {"branch": "z9hG4bK-b", "cseq": 2, "to_tag": "t"}
    rows = [msg(0, "BYE", **ids), msg(0.01, 200, cseq_method="BYE", **ids)]
    a = analyze(capture(rows))
    assert a.calls.empty
    assert list(a.calls.columns) == list(schema.CALLS)
    assert len(a.transactions) == 1


def test_re_invite_folds_into_its_call() -> None:
    rows = invite_call("c", 200, bye_after=None)
    ids = {"call_id": "c", "from_tag": "f-c", "to_tag": "t-c", "cseq": 2}
    rows += [
        msg(5, "INVITE", branch="z9hG4bK-re", **ids),
        msg(5.1, 491, branch="z9hG4bK-re", **ids),
    ]
    calls = _calls(rows)
    assert len(calls) == 1
    assert calls.iloc[0]["invites"] == 2
    assert calls.iloc[0]["outcome"] == "answered"
    assert calls.iloc[0]["final_status"] == 200


def test_bye_from_the_callee_ends_the_call() -> None:
    """The callee's BYE carries the caller's tag in To (RFC 3261 §12.2.1.1)."""
    rows = invite_call("c", 200, bye_after=None)
    ids = {"call_id": "c", "from_tag": "t-c", "to_tag": "f-c", "cseq": 1, "branch": "z9hG4bK-cb"}
    rows += [
        msg(4, "BYE", src=UAS, dst=UAC, **ids),
        msg(4.01, 200, cseq_method="BYE", src=UAC, dst=UAS, **ids),
    ]
    row = _calls(rows).iloc[0]
    assert bool(row["has_bye"])
    assert row["duration_s"] == pytest.approx(3.0)
    assert row["bye_status"] == 200


def test_unanswered_invite_times_out_long_before_the_end() -> None:
    rows = [msg(0, "INVITE", branch="z9hG4bK-t", call_id="t")]
    rows += invite_call("later", 200, t=60)
    calls = _calls(rows).set_index("call_id")
    assert calls.loc["t", "outcome"] == "no_final_response"
    assert pd.isna(calls.loc["t", "final_status"])


def test_invite_within_timer_b_of_the_end_is_in_progress() -> None:
    rows = invite_call("early", 200)
    rows.append(msg(20, "INVITE", branch="z9hG4bK-t", call_id="t"))
    calls = _calls(rows).set_index("call_id")
    assert calls.loc["t", "outcome"] == "in_progress"


def test_ringing_at_the_end_of_the_capture_is_in_progress() -> None:
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-r", call_id="r"),
        msg(0.1, 180, branch="z9hG4bK-r", call_id="r", to_tag="t"),
    ]
    rows += invite_call("later", 200, t=100)
    calls = _calls(rows).set_index("call_id")
    assert calls.loc["r", "outcome"] == "in_progress"


def test_proxy_capture_reports_the_callers_leg() -> None:
    """Both legs share Call-ID and From tag; the caller saw 408 while the callee sent 487."""
    up = {"branch": "z9hG4bK-up"}
    down = {"branch": "z9hG4bK-down"}
    rows = [
        msg(0, "INVITE", src=UAC, dst=PROXY_IN, **up),
        msg(0.01, 100, src=PROXY_IN, dst=UAC, **up),
        msg(0.02, "INVITE", src=PROXY_OUT, dst=CALLEE, **down),
        msg(0.1, 180, src=CALLEE, dst=PROXY_OUT, to_tag="t", **down),
        msg(0.11, 180, src=PROXY_IN, dst=UAC, to_tag="t", **up),
        msg(3.0, 408, src=PROXY_IN, dst=UAC, to_tag="px", **up),
        msg(3.0, "CANCEL", src=PROXY_OUT, dst=CALLEE, **down),
        msg(3.01, 200, src=CALLEE, dst=PROXY_OUT, cseq_method="CANCEL", **down),
        msg(3.02, 487, src=CALLEE, dst=PROXY_OUT, to_tag="t", **down),
        msg(3.03, "ACK", src=PROXY_OUT, dst=CALLEE, to_tag="t", **down),
        msg(3.04, "ACK", src=UAC, dst=PROXY_IN, to_tag="px", **up),
    ]
    calls = _calls(rows)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert row["final_status"] == 408
    assert row["outcome"] == "unavailable"
    assert not bool(row["cancelled"])  # the proxy's CANCEL is on the other leg
    assert row["dst"] == "10.0.1.1:5060"


def test_redirect_followed_to_the_new_target_is_one_call() -> None:
    """RFC 3261 §8.1.3.4: the INVITE to the Contact of a 3xx keeps Call-ID and From tag."""
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-1"),
        msg(0.05, 302, branch="z9hG4bK-1", to_tag="r"),
        msg(0.06, "ACK", branch="z9hG4bK-1", to_tag="r"),
        msg(0.1, "INVITE", branch="z9hG4bK-2", cseq=2, request_uri="sip:bob@elsewhere"),
        msg(0.4, 180, branch="z9hG4bK-2", cseq=2, to_tag="t"),
        msg(1.0, 200, branch="z9hG4bK-2", cseq=2, to_tag="t"),
    ]
    calls = _calls(rows)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert (row["outcome"], row["invites"]) == ("answered", 2)
    # RFC 6076 §4.3.1: with a redirect, SRD runs from the first INVITE to the new target's 180.
    assert row["pdd_ms"] == pytest.approx(400.0)
    assert row["request_uri"] == "sip:bob@example.com"


def _non_record_routing_proxy_call() -> list[dict]:
    """A call through a proxy that does not Record-Route: ACK and BYE go straight to the UAs."""
    up = {"branch": "z9hG4bK-up"}
    down = {"branch": "z9hG4bK-down"}
    dialog = {"to_tag": "t"}
    return [
        msg(0, "INVITE", src=UAC, dst=PROXY_IN, **up),
        msg(0.01, 100, src=PROXY_IN, dst=UAC, **up),
        msg(0.02, "INVITE", src=PROXY_OUT, dst=CALLEE, **down),
        msg(0.1, 180, src=CALLEE, dst=PROXY_OUT, **dialog, **down),
        msg(0.11, 180, src=PROXY_IN, dst=UAC, **dialog, **up),
        msg(1.0, 200, src=CALLEE, dst=PROXY_OUT, **dialog, **down),
        msg(1.01, 200, src=PROXY_IN, dst=UAC, **dialog, **up),
        # RFC 3261 §12.2.1.1: in-dialog requests go to the remote target (the callee's Contact)
        msg(1.02, "ACK", src=UAC, dst=CALLEE, branch="z9hG4bK-ack", **dialog),
        msg(5.0, "BYE", src=UAC, dst=CALLEE, branch="z9hG4bK-bye", cseq=2, **dialog),
        msg(
            5.01,
            200,
            src=CALLEE,
            dst=UAC,
            branch="z9hG4bK-bye",
            cseq=2,
            cseq_method="BYE",
            **dialog,
        ),
    ]


def test_bye_past_a_proxy_without_record_route_ends_the_call() -> None:
    calls = _calls(_non_record_routing_proxy_call())
    assert len(calls) == 1
    row = calls.iloc[0]
    assert (row["outcome"], bool(row["has_bye"]), row["bye_status"]) == ("answered", True, 200)
    assert row["duration_s"] == pytest.approx(3.99)
    assert row["dst"] == "10.0.1.1:5060"  # still measured on the caller's leg


def test_bye_to_a_contact_that_differs_from_the_callers_source_ends_the_call() -> None:
    """The caller sends from one address; its Contact (where the callee's BYE goes) is another."""
    contact = ("10.0.0.9", 5062)
    rows = invite_call("c", 200, bye_after=None)
    ids = {"call_id": "c", "from_tag": "t-c", "to_tag": "f-c", "cseq": 1, "branch": "z9hG4bK-cb"}
    rows += [
        msg(33.1, "BYE", src=UAS, dst=contact, **ids),
        msg(33.11, 200, cseq_method="BYE", src=contact, dst=UAS, **ids),
    ]
    row = _calls(rows).iloc[0]
    assert (bool(row["has_bye"]), row["bye_status"]) == (True, 200)
    assert row["duration_s"] == pytest.approx(32.1)


def test_messages_on_the_other_leg_of_the_same_dialog_stay_out() -> None:
    """With a record-routing proxy the BYE crosses both legs; the callee's leg is not counted."""
    rows = _non_record_routing_proxy_call()[:7]
    dialog = {"to_tag": "t", "cseq": 2, "from_tag": "ft1"}
    rows += [
        msg(5.0, "BYE", src=UAC, dst=PROXY_IN, branch="z9hG4bK-b1", **dialog),
        msg(5.01, "BYE", src=PROXY_OUT, dst=CALLEE, branch="z9hG4bK-b2", **dialog),
        msg(5.02, 481, src=CALLEE, dst=PROXY_OUT, branch="z9hG4bK-b2", cseq_method="BYE", **dialog),
        msg(5.03, 200, src=PROXY_IN, dst=UAC, branch="z9hG4bK-b1", cseq_method="BYE", **dialog),
    ]
    row = _calls(rows).iloc[0]
    assert row["bye_status"] == 200  # what the caller got, not the callee leg's 481


def test_a_bye_in_the_dialog_proves_the_answer_whose_200_is_missing() -> None:
    """RFC 3261 §15: the BYE of a confirmed dialog means a 2xx was sent, seen or not."""
    rows = invite_call("m", 200, bye_after=None)
    rows = [r for r in rows if r["status"] != 200]  # the 200 OK was not captured
    by = {"call_id": "m", "from_tag": "f-m", "to_tag": "t-m", "cseq": 2, "branch": "z9hG4bK-mb"}
    rows += [msg(40, "BYE", **by), msg(40.01, 200, cseq_method="BYE", **by)]
    rows += invite_call("later", 200, t=150)
    calls = _calls(rows).set_index("call_id")
    row = calls.loc["m"]
    assert row["outcome"] == "answered"
    assert bool(row["answer_missing"])
    assert pd.isna(row["final_status"])
    assert pd.isna(row["duration_s"])
    assert row["end_ts"] == rows[0]["ts"] + pd.Timedelta(seconds=40)
    assert not bool(calls.loc["later", "answer_missing"])


def test_two_from_tags_on_one_call_id_are_two_calls_and_challenges_apart() -> None:
    """A call is a Call-ID and a From tag (RFC 3261 §12): another From tag on the same
    Call-ID starts another call, and its credentials do not answer the first one's 401."""
    a = {"call_id": "shared", "from_tag": "fa"}
    b = {"call_id": "shared", "from_tag": "fb"}
    rows = [
        msg(0, "INVITE", branch="z9hG4bK-a", **a),
        msg(0.01, 401, branch="z9hG4bK-a", to_tag="pa", **a),
        msg(0.02, "ACK", branch="z9hG4bK-a", to_tag="pa", **a),
        msg(0.2, "INVITE", branch="z9hG4bK-b", cseq=2, has_auth=True, **b),
        msg(1.2, 200, branch="z9hG4bK-b", cseq=2, to_tag="tb", **b),
        msg(1.21, "ACK", branch="z9hG4bK-bk", cseq=2, to_tag="tb", **b),
    ]
    # the callee's BYE names the caller's tag in To
    bye = {"call_id": "shared", "from_tag": "tb", "to_tag": "fb", "branch": "z9hG4bK-cb"}
    rows += [
        msg(4.2, "BYE", src=UAS, dst=UAC, **bye),
        msg(4.21, 200, cseq_method="BYE", src=UAC, dst=UAS, **bye),
    ]
    result = analyze(capture(rows))
    calls = result.calls.set_index("from_tag")
    assert list(calls.index) == ["fa", "fb"]
    assert list(calls["outcome"]) == ["auth_failed", "answered"]
    assert list(calls["has_bye"]) == [False, True]
    assert calls.loc["fb", "duration_s"] == pytest.approx(3.0)
    challenged = result.messages["status"].eq(401).fillna(False)
    assert list(result.messages.loc[challenged, "challenge"]) == [False]


def test_sender_ids_of_another_frame_are_refused() -> None:
    parts = analyze_dialogs(messages(invite_call("c", 200)))
    sender = keys.senders(parts.messages)
    with pytest.raises(ValueError, match="6 sender ids for 7 messages"):
        calls_stage.build(parts.messages, parts.wide, sender[1:])


def test_initial_invites_without_a_call_id_make_no_call() -> None:
    """A call is a Call-ID and a From tag: an INVITE that names no Call-ID starts none."""
    rows = [
        msg(0, "INVITE", call_id=None),
        msg(0.01, 100, call_id=None),
        msg(0.5, "REGISTER", call_id="reg", branch="z9hG4bK-r"),
    ]
    calls = _calls(rows)
    assert calls.empty
    assert list(calls.columns) == list(schema.CALLS)
