"""Findings on real SIPp traffic whose truth is known by construction.

A sipp callee (``sample_pcaps/scenarios/callee.xml``) answers every INVITE with 200, except
while ``out_from <= now - t0 < out_to``, when it answers 503 at once: the test sets ``t0`` and
so knows the second the outage starts and ends. A sipp caller places 10 calls a second and
never retries. The burst sipstats finds must start and end within one timeline bucket of
those seconds, and a run without an outage must give no finding at all.

Skipped, with the reason, when not root or when sipp, tcpdump or ``ip netns`` is missing.
Every process is bounded by ``timeout`` / sipp ``-timeout`` and stopped by its PID.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sipstats import analyze, read_capture
from tests.conftest import SAMPLES, private_namespace

pytestmark = pytest.mark.netns

CALLER, CALLEE = "127.0.98.10", "127.0.98.20"
RATE, CALLS = 10, 80
#: Seconds after t0 the callee starts and stops answering 503.
OUT_FROM, OUT_TO = 3, 6
SCENARIOS = SAMPLES / "scenarios"


@pytest.fixture
def namespace() -> Iterator[str]:
    with private_namespace("sipstats_findings", ("sipp", "tcpdump", "ip")) as name:
        yield name


def _in_ns(ns: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "timeout", "40", *command]


def _wait_for(check: object, what: str) -> None:
    for _ in range(50):
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _sipp_run(ns: str, workdir: Path, outage: bool) -> tuple[Path, float]:
    """Capture one caller -> callee run; returns the capture and the callee's t0 (epoch s)."""
    pcap = workdir / "run.pcap"
    log = (workdir / "tcpdump.log").open("w")
    tcpdump = subprocess.Popen(
        _in_ns(ns, "tcpdump", "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-w", str(pcap),
               "udp", "port", "5060"),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    started = [tcpdump]
    try:
        _wait_for(lambda: "listening on" in (workdir / "tcpdump.log").read_text(), "tcpdump")
        t0 = int(time.time()) + 1
        out_from, out_to = (OUT_FROM, OUT_TO) if outage else (0, 0)
        callee = subprocess.Popen(
            _in_ns(ns, "sipp", "-sf", str(SCENARIOS / "callee.xml"), "-i", CALLEE, "-p", "5060",
                   "-bind_local", "-m", str(CALLS), "-timeout", "35s", "-nostdin",
                   "-set", "p200", "100", "-set", "p486", "0", "-set", "p480", "0",
                   "-set", "p503", "0", "-set", "p503n", "0", "-set", "p603", "0",
                   "-set", "wait_retry", "0", "-set", "t0", str(t0),
                   "-set", "out_from", str(out_from), "-set", "out_to", str(out_to),
                   "-key", "ra486", "4", "-key", "ra480", "6", "-key", "ra503", "8",
                   "-key", "ra_outage", "10"),
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(callee)
        listening = ["ip", "netns", "exec", ns, "ss", "-lnuH"]
        _wait_for(
            lambda: f" {CALLEE}:5060 " in subprocess.run(
                listening, capture_output=True, text=True, check=False).stdout,
            "the callee",
        )  # fmt: skip
        time.sleep(max(0.0, t0 - time.time()))
        caller = subprocess.Popen(
            _in_ns(ns, "sipp", f"{CALLEE}:5060", "-sf", str(SCENARIOS / "caller.xml"),
                   "-inf", str(SCENARIOS / "callees.csv"), "-i", CALLER, "-p", "5060",
                   "-bind_local", "-m", str(CALLS), "-r", str(RATE), "-l", "100",
                   "-timeout", "35s", "-nostdin", "-set", "p_honour", "0", "-set", "p_early", "0",
                   "-set", "p_nora", "0", "-set", "max_retries", "0"),
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(caller)
        assert caller.wait(timeout=45) in (0, 1)
        time.sleep(0.5)  # the last BYE's 200; the callee is stopped below
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
        log.close()
    return pcap, float(t0)


def test_an_outage_of_503_is_found_with_its_onset_and_end(namespace: str, tmp_path: Path) -> None:
    pcap, t0 = _sipp_run(namespace, tmp_path, outage=True)
    analysis = analyze(read_capture(pcap))
    bucket = pd.Timedelta(analysis.interval)
    bursts = analysis.findings[analysis.findings["kind"] == "failure_burst"]
    assert len(bursts) == 1, analysis.findings["text"].tolist()
    burst = bursts.iloc[0]
    onset = pd.Timestamp(t0 + OUT_FROM, unit="s", tz="UTC")
    end = pd.Timestamp(t0 + OUT_TO, unit="s", tz="UTC")
    assert abs(burst["start"] - onset) <= bucket, (burst["start"], onset)
    assert abs(burst["end"] - end) <= bucket, (burst["end"], end)
    sent_503 = int((analysis.messages["status"] == 503).sum())
    assert burst["evidence"]["failures"] == sent_503
    assert burst["evidence"]["code"] == "503"
    assert burst["subject"] == f"503 from {CALLEE}:5060"
    assert analysis.findings["kind"].tolist() == ["failure_burst"]


def test_a_clean_run_gives_no_finding(namespace: str, tmp_path: Path) -> None:
    pcap, _ = _sipp_run(namespace, tmp_path, outage=False)
    analysis = analyze(read_capture(pcap))
    assert len(analysis.calls) == CALLS
    assert analysis.findings.empty, analysis.findings["text"].tolist()
