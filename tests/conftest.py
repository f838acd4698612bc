"""Shared fixtures: where the team's shared captures are, skipping cleanly when they are absent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
PEERS = SHARED / "peers"
SAMPLES = ROOT / "sample_pcaps"


def _need(path: Path, what: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}: it exists only beside the team's checkout")
    return path


@pytest.fixture
def corpus_dir() -> Path:
    """../shared/corpus (real SIPp captures with truth.json), or skip."""
    return _need(CORPUS, "the shared capture corpus")


@pytest.fixture
def peers_dir() -> Path:
    """../shared/peers (other projects' captures with tshark's view), or skip."""
    return _need(PEERS, "the shared peer captures")


def load_truth(scenario: str) -> dict[str, Any]:
    """truth.json of one corpus scenario (call only from tests that took ``corpus_dir``)."""
    return json.loads((CORPUS / scenario / "truth.json").read_text())


@contextmanager
def private_namespace(prefix: str, tools: Sequence[str]) -> Iterator[str]:
    """A network namespace ``<prefix>_<pid>`` with only its loopback up; skip saying why not.

    Needs root and ``tools`` on the PATH; the namespace is deleted on the way out.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root (ip netns, tcpdump, nft)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    name = f"{prefix}_{os.getpid()}"

    def ip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=20, check=False
        )

    made = ip("netns", "add", name)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        up = ip("-n", name, "link", "set", "lo", "up")
        assert up.returncode == 0, up.stderr
        yield name
    finally:
        ip("netns", "del", name)


#: What the SIPp traffic tests need on the PATH.
SIPP_TOOLS = ("sipp", "tcpdump", "tshark", "nft", "ip")


@pytest.fixture
def namespace() -> Iterator[str]:
    """A private network namespace with only its loopback up, for SIPp traffic; or skip
    saying why."""
    with private_namespace("sipstats_sipp", SIPP_TOOLS) as name:
        yield name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from the current output instead of comparing with it",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to refresh the golden report files."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def ctrl_c_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``os.fork`` child gets SIGINT at once, before it can set the signal aside: a
    child whose handler runs (SIGINT not blocked across the fork) exits with status 70."""
    fork = os.fork

    def interrupted_fork() -> int:
        pid = fork()
        if pid == 0:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here unless SIGINT is blocked
            except KeyboardInterrupt:
                os._exit(70)
        return pid

    monkeypatch.setattr(os, "fork", interrupted_fork)


def children_left() -> int:
    """This process's children the kernel still holds, zombies included: what
    ``multiprocessing.active_children`` says can lag, when the pool's thread reaped a worker
    that this thread was joining too (its ``Process`` then reads as running a moment longer)."""
    me = str(os.getpid())
    left = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state_and_parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue  # ended meanwhile
        left += state_and_parent[1] == me
    return left
