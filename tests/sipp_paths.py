"""SIPp helpers for the end-to-end call-path tests: run SIPp peers in a test's namespace.

``traffic`` captures the namespace's loopback with tcpdump while SIPp servers and clients run;
``json_report`` is the CLI's JSON report of a capture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_e2e_sipp import _listening


def _sipp(ns: str, workdir: Path, logs: ExitStack, *args: str) -> subprocess.Popen[bytes]:
    """One sipp, bounded by timeout and -timeout, its output in a file of ``workdir``."""
    name = workdir / f"sipp-{len(list(workdir.glob('sipp-*')))}.txt"
    log = logs.enter_context(name.open("wb"))
    command = ["ip", "netns", "exec", ns, "timeout", "40", "sipp", *args, "-timeout", "35s"]
    return subprocess.Popen([*command, "-nostdin"], cwd=workdir, stdout=log, stderr=log)


def wait_for(condition: object, tries: int = 50) -> None:
    for _ in range(tries):
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)


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


def traffic(
    ns: str, workdir: Path, servers: list[tuple[str, list[str]]], clients: list[list[str]]
) -> Path:
    """tcpdump on the namespace's loopback while SIPp clients call SIPp servers.

    ``servers`` are (address they listen on, sipp arguments), started and awaited first.
    Returns the capture.
    """
    missing = [tool for tool in ("sipp", "tcpdump") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    pcap, log = workdir / "traffic.pcap", workdir / "tcpdump.log"
    dump = ["tcpdump", "-i", "lo", "-s", "0", "-U", "--immediate-mode", "-w", str(pcap)]
    logs = ExitStack()
    started = [
        subprocess.Popen(
            ["ip", "netns", "exec", ns, "timeout", "60", *dump, "udp", "port", "5060"],
            stdout=subprocess.DEVNULL,
            stderr=logs.enter_context(log.open("w")),
        )
    ]
    try:
        wait_for(lambda: "listening on" in log.read_text())
        for address, args in servers:
            started.append(_sipp(ns, workdir, logs, *args))
            wait_for(lambda address=address: _listening(ns, f"{address}:5060"))
        started += [_sipp(ns, workdir, logs, *args) for args in clients]
        for proc in started[1:]:
            outputs = [p.read_text() for p in workdir.glob("sipp-*")]
            assert proc.wait(timeout=45) == 0, outputs
        time.sleep(0.5)
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
        logs.close()
    return pcap
