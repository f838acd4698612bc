"""A SIPp run captured at both ends of a veth and merged with mergecap reads as one side.

Two network namespaces made for this test (named with the pid) are joined by a veth pair; a
sipp caller in one calls a sipp callee in the other, and tcpdump records each end. mergecap
merges the two captures, so every message appears twice, microseconds apart, with the same
bytes: the merged capture must give the analysis of one side, with every copy counted as a
capture duplicate and none as a retransmission.

Skipped, with the reason, when not root or when sipp, tcpdump, mergecap or ``ip`` is missing.
Every process is bounded by ``timeout`` and stopped by its PID; the namespaces are deleted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

from sipstats import analyze, read_capture
from tests.conftest import ROOT, private_namespace

pytestmark = pytest.mark.netns

CALLS = 10
CALLER, CALLEE = "10.99.0.1", "10.99.0.2"
TOOLS = ("sipp", "tcpdump", "mergecap", "ip")


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """Two namespaces, the caller's and the callee's, joined by a veth pair (va <-> vb)."""
    with ExitStack() as stack:
        a = stack.enter_context(private_namespace("sipstats_dup_a", TOOLS))
        b = stack.enter_context(private_namespace("sipstats_dup_b", TOOLS))
        for command in (
            ["-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b],
            ["-n", a, "addr", "add", f"{CALLER}/24", "dev", "va"],
            ["-n", b, "addr", "add", f"{CALLEE}/24", "dev", "vb"],
            ["-n", a, "link", "set", "va", "up"],
            ["-n", b, "link", "set", "vb", "up"],
        ):
            done = subprocess.run(["ip", *command], capture_output=True, text=True, timeout=20)
            assert done.returncode == 0, done.stderr
        yield a, b


def _in_ns(ns: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "timeout", "60", *command]


def _wait_for(check: object, what: str) -> None:
    for _ in range(100):
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _capture_both_ends(a: str, b: str, workdir: Path) -> tuple[Path, Path]:
    """tcpdump on va and on vb while the caller in ``a`` calls the callee in ``b``."""
    started: list[subprocess.Popen[bytes]] = []
    logs = []
    quiet = {"cwd": workdir, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    try:
        for ns, dev in ((a, "va"), (b, "vb")):
            log = (workdir / f"tcpdump-{dev}.log").open("w")
            logs.append(log)
            tcpdump = ["tcpdump", "-i", dev, "-s", "0", "-U", "--immediate-mode",
                       "-w", str(workdir / f"{dev}.pcap"), "udp", "port", "5060"]  # fmt: skip
            started.append(
                subprocess.Popen(_in_ns(ns, *tcpdump), stdout=subprocess.DEVNULL, stderr=log)
            )
            _wait_for(
                lambda dev=dev: "listening on" in (workdir / f"tcpdump-{dev}.log").read_text(),
                f"tcpdump on {dev}",
            )
        callee = ["sipp", "-sn", "uas", "-i", CALLEE, "-p", "5060", "-bind_local",
                  "-m", str(CALLS), "-timeout", "40s", "-nostdin"]  # fmt: skip
        started.append(subprocess.Popen(_in_ns(b, *callee), **quiet))  # type: ignore[call-overload]
        listening = ["ip", "netns", "exec", b, "ss", "-lnuH"]
        _wait_for(
            lambda: (
                f" {CALLEE}:5060 "
                in subprocess.run(listening, capture_output=True, text=True, check=False).stdout
            ),
            "the callee",
        )
        caller = ["sipp", f"{CALLEE}:5060", "-sn", "uac", "-i", CALLER, "-p", "5060",
                  "-bind_local", "-m", str(CALLS), "-r", "20", "-timeout", "40s",
                  "-nostdin"]  # fmt: skip
        started.append(subprocess.Popen(_in_ns(a, *caller), **quiet))  # type: ignore[call-overload]
        assert started[-1].wait(timeout=50) == 0
        time.sleep(0.5)  # the last 200 to BYE reaches both tcpdumps
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
        for log in logs:
            log.close()
    return workdir / "va.pcap", workdir / "vb.pcap"


def test_both_ends_merged_read_as_one_side(veth: tuple[str, str], tmp_path: Path) -> None:
    caller_side, callee_side = _capture_both_ends(*veth, tmp_path)
    merged = tmp_path / "merged.pcap"
    done = subprocess.run(
        ["mergecap", "-F", "pcap", "-w", str(merged), str(caller_side), str(callee_side)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr

    one = read_capture(caller_side)
    both = read_capture(merged)
    assert len(one.messages) == CALLS * 6  # INVITE 180 200 ACK BYE 200 (SIPp's uac/uas)
    assert both.inputs[0].duplicates == len(one.messages)
    assert len(both.messages) == len(one.messages)
    apart = ["ts", "file", "frame"]  # the copy kept is the first seen, at the sender's end
    pd.testing.assert_frame_equal(
        both.messages.drop(columns=apart), one.messages.drop(columns=apart)
    )

    expected, found = analyze(one).to_dict(), analyze(both).to_dict()
    assert found["summary"]["retransmissions"] == expected["summary"]["retransmissions"] == 0
    for summary in (expected["summary"], found["summary"]):
        summary.pop("packets")
        summary.pop("duplicates")
    for key in ("summary", "requests_by_method", "responses_by_code", "registrations"):
        assert found[key] == expected[key], key
    assert found["calls"]["by_outcome"] == expected["calls"]["by_outcome"]
    assert found["calls"]["by_outcome"]["answered"] == CALLS

    # Before capture duplicates existed, every copy was a retransmission.
    every_copy = read_capture(merged, duplicate_window_ms=0)
    assert analyze(every_copy).to_dict()["summary"]["retransmissions"] == len(one.messages)

    cli = subprocess.run(
        [sys.executable, "-m", "sipstats", str(merged), "--report", "json", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["summary"]["duplicates"] == len(one.messages)
    assert report["summary"]["retransmissions"] == 0
