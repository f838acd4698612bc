"""``sipstats diff`` on two SIPp runs of one scenario whose callee answers with another mix.

The sample scenarios (``sample_pcaps/scenarios``) run twice in a network namespace made for
this test: the callee answers 90 % of the calls and rejects 10 % with 486 before, 30 % and
70 % after; every call goes through (no loss). The diff must put the busy and answered
outcomes, 486 and 200, among what changed, with the counts each capture holds, and leave
the INVITE count unchanged. Skipped, with the reason, like the other SIPp test.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sipstats import analyze, read_capture
from sipstats.drill.diff import compare, load_side
from tests.conftest import SAMPLES
from tests.test_e2e_sipp import CALLEE, CALLER, _listening, _sipp, _wait, namespace

pytestmark = pytest.mark.netns
__all__ = ["namespace"]  # the fixture, shared with the end-to-end test

CALLS = 40


def _run_scenario(ns: str, workdir: Path, answered: int) -> Path:
    """One SIPp caller/callee run captured with tcpdump; the callee answers ``answered`` %."""
    workdir.mkdir()
    pcap = workdir / "run.pcap"
    scenarios = SAMPLES / "scenarios"
    with (workdir / "tcpdump.log").open("w") as log:
        tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", ns, "timeout", "60", "tcpdump", "-i", "lo", "-s", "0", "-U",
             "--immediate-mode", "-w", str(pcap), "udp", "port", "5060"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        for _ in range(50):
            if "listening on" in (workdir / "tcpdump.log").read_text():
                break
            time.sleep(0.1)
        callee = _sipp(
            ns, workdir, "callee", "-sf", str(scenarios / "callee.xml"),
            "-i", CALLEE, "-p", "5060", "-bind_local", "-m", str(CALLS),
            "-set", "p200", str(answered), "-set", "p486", str(100 - answered), "-set", "p480", "0",
            "-set", "p503", "0", "-set", "p503n", "0", "-set", "p603", "0",
            "-set", "wait_retry", "0", "-set", "t0", "0",
            "-set", "out_from", "0", "-set", "out_to", "0",
            "-key", "ra486", "20", "-key", "ra480", "30",
            "-key", "ra503", "5", "-key", "ra_outage", "5",
        )  # fmt: skip
        for _ in range(50):
            if _listening(ns, f"{CALLEE}:5060"):
                break
            time.sleep(0.1)
        caller = _sipp(
            ns, workdir, "caller", f"{CALLEE}:5060", "-sf", str(scenarios / "caller.xml"),
            "-inf", str(scenarios / "callees.csv"), "-i", CALLER, "-p", "5060", "-bind_local",
            "-m", str(CALLS), "-r", "20", "-l", "100",
            "-set", "p_honour", "0", "-set", "p_early", "0", "-set", "p_nora", "0",
            "-set", "max_retries", "0",
        )  # fmt: skip
        _wait(caller, workdir, "caller")
        _wait(callee, workdir, "callee")
        time.sleep(0.5)
    finally:
        if tcpdump.poll() is None:
            tcpdump.terminate()
        tcpdump.wait(timeout=10)
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
