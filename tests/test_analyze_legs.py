"""A proxy's two legs (relayed responses count once) and auth challenges (not failures)."""

from __future__ import annotations

import dataclasses

import pandas as pd

from sipstats.analyze import analyze
from sipstats.analyze.breakdown import by_peer, failures_by, peer_tables
from sipstats.render import RENDERERS, RenderOptions
from sipstats.render.labels import label
from sipstats.render.tables import report_tables
from tests.analysis_fixtures import UAC, capture, msg

PROXY_IN = ("10.0.1.1", 5060)
PROXY_OUT = ("10.0.2.1", 5060)
CALLEE = ("10.0.2.2", 5060)


def _relayed_failure(call_id: str, t: float, downstream: int, upstream: int) -> list[dict]:
    """A call through a stateful proxy: the callee's final on its leg, the proxy's to the caller.

    The callee's leg carries two Via entries (the proxy's and the caller's); RFC 3261 §16.7
    step 9 removes the proxy's before relaying.
    """
    ids = {"call_id": call_id, "from_tag": f"f-{call_id}"}
    up, down = {"branch": f"z9hG4bK-{call_id}-up"}, {"branch": f"z9hG4bK-{call_id}-dn"}
    return [
        msg(t, "INVITE", src=UAC, dst=PROXY_IN, **up, **ids),
        msg(t + 0.01, "INVITE", src=PROXY_OUT, dst=CALLEE, via_count=2, **down, **ids),
        msg(t + 0.5, downstream, src=CALLEE, dst=PROXY_OUT, to_tag="t", via_count=2,
            retry_after=20 if downstream == 503 else 40, **down, **ids),
        msg(t + 0.51, "ACK", src=PROXY_OUT, dst=CALLEE, to_tag="t", via_count=2, **down, **ids),
        msg(t + 0.52, upstream, src=PROXY_IN, dst=UAC, to_tag="t",
            retry_after=None if upstream == 500 else 40, **up, **ids),
        msg(t + 0.53, "ACK", src=UAC, dst=PROXY_IN, to_tag="t", **up, **ids),
    ]  # fmt: skip


def test_a_relayed_failure_counts_once_on_the_callers_leg() -> None:
    rows = _relayed_failure("busy", 0, 486, 486) + _relayed_failure("down", 5, 503, 500)
    a = analyze(capture(rows))
    summary = a.retry_after.set_index("code")
    # what the callers got: one 486 with 40 s, and a 500 (the proxy did not pass the 503 on)
    assert summary.loc["486", "responses"] == 1
    assert summary.loc["486", "values"] == "40x1"
    assert "503" not in summary.index
    assert list(a.retries["status"]) == [486, 500]
    # the per-hop view still shows every packet on every leg
    by_code = a.by_code.set_index("code")
    assert by_code.loc["486", "unique"] == 2
    assert by_code.loc["503", "unique"] == 1
    assert a.messages["client_leg"].sum() == len(rows) - 2


def _challenged_call(call_id: str, t: float, answered: bool) -> list[dict]:
    ids = {"call_id": call_id, "from_tag": f"f-{call_id}"}
    rows = [
        msg(t, "INVITE", branch=f"z9hG4bK-{call_id}-1", **ids),
        msg(t + 0.01, 407, branch=f"z9hG4bK-{call_id}-1", to_tag="p", **ids),
        msg(t + 0.02, "ACK", branch=f"z9hG4bK-{call_id}-1", to_tag="p", **ids),
    ]
    if answered:
        second = {"branch": f"z9hG4bK-{call_id}-2", "cseq": 2, **ids}
        rows += [
            msg(t + 0.05, "INVITE", has_auth=True, **second),
            msg(t + 1.0, 200, to_tag="t", **second),
            msg(t + 1.01, "ACK", to_tag="t", **{**second, "branch": f"z9hG4bK-{call_id}-3"}),
        ]
    return rows


def test_answered_challenges_are_not_failures_and_are_counted_apart() -> None:
    rows = [*_challenged_call("ok", 0, answered=True), *_challenged_call("gave-up", 2, False)]
    a = analyze(capture(rows))
    assert list(a.messages.loc[a.messages["status"].eq(407).fillna(False), "challenge"]) == [
        True,
        False,
    ]
    invite = a.failures_by_method.set_index("method").loc["INVITE"]
    assert (invite["4xx"], invite["failures"], invite["challenges"]) == (1, 1, 1)
    assert invite["failure_share"] == 0.5  # the unanswered 407 of two finals (200, 407)
    assert a.by_peer["codes"].tolist() == ["407x1"]
    timeline = a.timeline("1min")
    assert (timeline["4xx"].sum(), timeline["challenges"].sum()) == (1, 1)
    assert list(a.calls["outcome"]) == ["answered", "auth_failed"]


def test_a_challenged_register_answered_with_credentials_is_not_a_failure() -> None:
    reg = {"call_id": "reg", "from_tag": "r", "to_uri": "sip:alice@example.com"}
    rows = [
        msg(0, "REGISTER", branch="z9hG4bK-r1", **reg),
        msg(0.01, 401, cseq_method="REGISTER", branch="z9hG4bK-r1", to_tag="x", **reg),
        msg(0.02, "REGISTER", cseq=2, has_auth=True, branch="z9hG4bK-r2", **reg),
        msg(0.03, 200, cseq=2, cseq_method="REGISTER", branch="z9hG4bK-r2", to_tag="x", **reg),
    ]
    a = analyze(capture(rows))
    register = a.failures_by_method.set_index("method").loc["REGISTER"]
    assert (register["failures"], register["challenges"]) == (0, 1)
    assert register["failure_share"] == 0.0
    assert a.by_peer.empty


def test_tables_say_which_leg_they_count_on() -> None:
    """Per-hop tables count the relayed 486 twice and say '(every leg)'; the tables of what
    callers got count it once and say "(caller's leg)", in every report format."""
    a = analyze(capture(_relayed_failure("busy", 0, 486, 486)))
    assert a.failures_by_responder["failures"].sum() == 2  # the callee's and the proxy's
    assert a.failures_by_caller["failures"].tolist() == [1]
    assert a.failures_by_callee["failures"].tolist() == [1]
    titles = {table.key: table.title for table in report_tables(a, "en")}
    assert titles["by_code"] == "Responses by code (every leg)"
    assert titles["failures_by_responder"] == "Failures per responder (every leg)"
    assert titles["failures_by_caller"] == "Callers failing most (caller's leg)"
    assert titles["outcomes"] == "Call outcomes (caller's leg)"
    assert titles["retry_after"].endswith("(caller's leg)")
    assert titles["metrics"] == label("metrics", "en")  # each metric's definition says
    assert {table.key: table.title for table in report_tables(a, "zh")}["by_code"].endswith(
        label("every_leg", "zh")
    )
    for fmt in ("text", "md", "html"):
        document = RENDERERS[fmt].render(a, RenderOptions())  # type: ignore[misc]
        document = document.replace("&#39;", "'")
        assert "Responses by code (every leg)" in document, fmt
        assert "Callers failing most (caller's leg)" in document, fmt


def test_peer_tables_are_by_peer_and_failures_by() -> None:
    # challenges answered and not, a failure through a proxy, an endpoint that only said 200
    fine = {"call_id": "fine", "from_tag": "f-fine", "branch": "z9hG4bK-fine"}
    rows = [
        *_challenged_call("ok", 0, answered=True),
        *_challenged_call("gave-up", 2, answered=False),
        *_relayed_failure("busy", 3, 486, 486),
        msg(5, "INVITE", dst=CALLEE, **fine),
        msg(5.5, 200, src=CALLEE, dst=UAC, to_tag="t", **fine),
    ]
    messages = analyze(capture(rows)).messages
    peers, failures = peer_tables(messages)
    assert len(peers) == 3
    pd.testing.assert_frame_equal(peers, by_peer(messages))
    expected = failures_by(messages)
    assert list(failures) == list(expected)
    for key, table in expected.items():
        pd.testing.assert_frame_equal(failures[key], table)


def test_a_message_without_a_cseq_is_keyed_apart_not_an_error() -> None:
    """A messages frame from the API may hold an NA CSeq (none comes from a capture); the
    UInt32 column cannot take fillna(-1), so the legs read it as int64 with NA as -1."""
    given = capture(_relayed_failure("busy", 0, 486, 486))
    messages = given.messages.copy()
    messages.loc[len(messages) - 1, "cseq"] = pd.NA  # the caller's ACK
    a = analyze(dataclasses.replace(given, messages=messages))
    assert a.messages["client_leg"].sum() == len(messages) - 1
