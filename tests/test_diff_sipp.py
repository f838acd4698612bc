"""``sipstats diff`` on two SIPp runs of one scenario whose callee answers with another mix.

The sample scenarios (``sample_pcaps/scenarios``) run twice in a network namespace made for
this test: the callee answers 90 % of the calls and rejects 10 % with 486 before, 30 % and
70 % after; every call goes through (no loss). The diff must put the busy and answered
outcomes, 486 and 200, among what changed, with the counts each capture holds, and leave
the INVITE count unchanged. Skipped, with the reason, like the other SIPp test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sipstats import analyze, read_capture
from sipstats.drill.diff import compare, load_side
from tests.sipp_paths import caller_calls_callee

pytestmark = pytest.mark.netns

CALLS = 40
CALLER, CALLEE = "127.0.99.10", "127.0.99.20"


def _run_scenario(ns: str, workdir: Path, answered: int) -> Path:
    """One SIPp caller/callee run captured with tcpdump; the callee answers ``answered`` %."""
    workdir.mkdir()
    pcap = workdir / "run.pcap"
    caller_calls_callee(
        ns, workdir, pcap, addresses=(CALLER, CALLEE), calls=CALLS, rate=20,
        callee_sets={
            "p200": str(answered), "p486": str(100 - answered), "p480": "0", "p503": "0",
            "p503n": "0", "p603": "0", "wait_retry": "0", "t0": "0", "out_from": "0",
            "out_to": "0",
        },
        callee_keys={"ra486": "20", "ra480": "30", "ra503": "5", "ra_outage": "5"},
    )  # fmt: skip
    return pcap


def test_diff_finds_the_changed_outcome_mix(namespace: str, tmp_path: Path) -> None:
    before = _run_scenario(namespace, tmp_path / "before", answered=90)
    after = _run_scenario(namespace, tmp_path / "after", answered=30)
    outcomes = [analyze(read_capture(p)).calls["outcome"].value_counts() for p in (before, after)]
    assert [int(o.sum()) for o in outcomes] == [CALLS, CALLS]
    rows = compare(load_side([str(before)]).report, load_side([str(after)]).report)
    changed = rows[rows["significant"]]
    keys = set(zip(changed["section"], changed["key"], strict=True))
    assert {("outcome", "busy"), ("outcome", "answered"), ("code", "486"), ("code", "200")} <= keys
    busy = rows[(rows["section"] == "outcome") & (rows["key"] == "busy")].iloc[0]
    assert (busy["before"], busy["after"]) == (int(outcomes[0]["busy"]), int(outcomes[1]["busy"]))
    assert busy["change"] > 0
    invite = rows[(rows["section"] == "method") & (rows["key"] == "INVITE")].iloc[0]
    assert not invite["significant"]
