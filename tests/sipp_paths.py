"""SIPp plumbing for the tests that generate traffic in a private network namespace.

Every process runs inside the namespace (``ip netns exec``), bounded by ``timeout`` and
SIPp's ``-timeout``, and is stopped by its PID. ``capturing`` records the namespace's loopback
with tcpdump; ``sipp`` starts one SIPp instance in its own directory of the work folder (its
traces there, for ``sample_pcaps/sipp_counts.py``); ``caller_calls_callee`` runs the sample
scenarios' caller against their callee; ``traffic`` runs any set of SIPp servers and clients.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES

SCENARIOS = SAMPLES / "scenarios"
#: SIPp's trace files: its statistics, per-message counts, messages, logs and errors.
TRACES = ("-trace_stat", "-fd", "1", "-trace_counts", "-trace_msg", "-trace_logs", "-trace_err")


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def listening(ns: str, address: str) -> bool:
    """Is a UDP socket bound to ``address`` (``ip:port``) in the namespace?"""
    return f" {address} " in run("ip", "netns", "exec", ns, "ss", "-lnuH").stdout


def wait_for(condition: Callable[[], bool], what: str, tries: int = 50) -> None:
    """Poll ``condition`` for about five seconds; fail naming ``what`` if it never holds."""
    for _ in range(tries):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cli_output(*args: str) -> str:
    """What ``sipstats ARGS`` printed; it must succeed."""
    cli = subprocess.run(
        [sys.executable, "-m", "sipstats", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert cli.returncode == 0, cli.stderr
    return cli.stdout


def json_report(pcap: Path, *options: str) -> dict:
    return json.loads(cli_output(str(pcap), "--report", "json", *options))


@contextmanager
def capturing(ns: str, pcap: Path) -> Iterator[None]:
    """tcpdump on the namespace's loopback (SIP on UDP 5060) into ``pcap`` while the block
    runs; its log beside the capture. Immediate mode: a packet sent just before tcpdump is
    stopped must not stay in its ring."""
    missing = [tool for tool in ("sipp", "tcpdump") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    log_path = pcap.with_suffix(".tcpdump.log")
    dump = ["tcpdump", "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-w", str(pcap)]
    with log_path.open("w") as log:
        tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", ns, "timeout", "60", *dump, "udp", "port", "5060"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_for(lambda: "listening on" in log_path.read_text(), "tcpdump")
            yield
            time.sleep(0.5)  # the last packets reach tcpdump
        finally:
            if tcpdump.poll() is None:
                tcpdump.terminate()
            tcpdump.wait(timeout=10)


def sipp(ns: str, workdir: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """One SIPp in ``workdir/name``, every trace on."""
    directory = workdir / name
    directory.mkdir()
    command = ["ip", "netns", "exec", ns, "timeout", "40", "sipp", *args, "-timeout", "35s"]
    command += [*TRACES, "-nostdin"]
    with (directory / f"{name}.stdout.txt").open("wb") as out:
        return subprocess.Popen(command, cwd=directory, stdout=out, stderr=subprocess.STDOUT)


def finished(proc: subprocess.Popen[bytes], workdir: Path, name: str) -> None:
    """Wait for the SIPp started as ``name``; record its exit status (0: every call
    succeeded, 1: some failed, which the scenarios mean) and fail on any other."""
    rc = proc.wait(timeout=45)
    (workdir / name / f"{name}.rc").write_text(str(rc))
    assert rc in (0, 1), (workdir / name / f"{name}.stdout.txt").read_text()[-2000:]


@contextmanager
def stopped_at_exit(started: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Whatever an assertion left running is stopped, last started first."""
    try:
        yield
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)


def caller_calls_callee(
    ns: str,
    workdir: Path,
    pcap: Path,
    *,
    addresses: tuple[str, str],
    calls: int,
    rate: int,
    callee_sets: Mapping[str, str],
    callee_keys: Mapping[str, str],
    start_at: float | None = None,
) -> None:
    """The sample scenarios' caller places ``calls`` calls at ``rate`` per second to their
    callee, captured into ``pcap``. ``callee_sets`` and ``callee_keys`` are the callee's
    ``-set`` and ``-key`` values (outcome shares, outage window; Retry-After values: see
    ``callee.xml``); the caller never retries. ``start_at`` (epoch seconds): the caller
    starts then."""
    caller_address, callee_address = addresses
    plan = [arg for name, value in callee_sets.items() for arg in ("-set", name, value)]
    plan += [arg for name, value in callee_keys.items() for arg in ("-key", name, value)]
    # a request retransmitted while the scenario pauses is not an error here
    lenient = ("-default_behaviors", "all,-abortunexp")
    started: list[subprocess.Popen[bytes]] = []
    with capturing(ns, pcap), stopped_at_exit(started):
        started.append(sipp(
            ns, workdir, "callee", "-sf", str(SCENARIOS / "callee.xml"), "-i", callee_address,
            "-p", "5060", "-bind_local", "-m", str(calls), *plan, *lenient,
        ))  # fmt: skip
        wait_for(lambda: listening(ns, f"{callee_address}:5060"), "the callee")
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        started.append(sipp(
            ns, workdir, "caller", f"{callee_address}:5060", "-sf", str(SCENARIOS / "caller.xml"),
            "-inf", str(SCENARIOS / "callees.csv"), "-i", caller_address, "-p", "5060",
            "-bind_local", "-m", str(calls), "-r", str(rate), "-l", "100",
            "-set", "p_honour", "0", "-set", "p_early", "0", "-set", "p_nora", "0",
            "-set", "max_retries", "0", *lenient,
        ))  # fmt: skip
        finished(started[1], workdir, "caller")
        finished(started[0], workdir, "callee")


def traffic(
    ns: str, workdir: Path, servers: list[tuple[str, list[str]]], clients: list[list[str]]
) -> Path:
    """tcpdump on the namespace's loopback while SIPp clients call SIPp servers.

    ``servers`` are (address they listen on, sipp arguments), started and awaited first;
    every instance must succeed. Returns the capture.
    """
    pcap = workdir / "traffic.pcap"
    started: list[subprocess.Popen[bytes]] = []
    with capturing(ns, pcap), stopped_at_exit(started):
        for number, (address, args) in enumerate(servers):
            started.append(sipp(ns, workdir, f"server-{number}", *args))
            wait_for(lambda address=address: listening(ns, f"{address}:5060"), address)
        for number, args in enumerate(clients):
            started.append(sipp(ns, workdir, f"client-{number}", *args))
        for proc in started:
            outputs = [p.read_text() for p in workdir.glob("*/*.stdout.txt")]
            assert proc.wait(timeout=45) == 0, outputs
    return pcap
