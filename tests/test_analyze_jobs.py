"""The per-Call-ID analysis on several processes (``analyze(jobs=N)``, ``--jobs``) gives the
report one process gives.

Each Call-ID partition is analysed in a forked process; the partitions' tables are merged and
assembled in the parent. The tests lower the size from which a capture is partitioned, so
that small captures take that path, and compare every report with a one-process run: the
samples, a TCP segment whose messages belong to calls of different partitions, and the
command line with ``--jobs 2`` (real worker processes).
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scapy.packet import Packet

import sipstats
from sipstats import workers
from sipstats.cli import main
from sipstats.errors import ReportError
from sipstats.render import RENDERERS, RenderOptions
from tests.conftest import SAMPLES
from tests.sipfactory import UAC, UAS, sip_request, sip_response, tcp, write_pcap

analysis_module = importlib.import_module("sipstats.analyze")  # the package, not the function
DOCUMENTS = ("json", "md", "html", "text")


@pytest.fixture
def partitioned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partition any capture, however small, even for two processes; and build the
    breakdown tables in a forked process."""
    monkeypatch.setattr(analysis_module, "MIN_PARTITION_MESSAGES", 1)
    monkeypatch.setattr(analysis_module, "MIN_POOL_PROCESSES", 2)
    monkeypatch.setattr(analysis_module, "MIN_FORKED_MESSAGES", 1)


def _reports(analysis: sipstats.Analysis) -> dict[str, str]:
    return {fmt: RENDERERS[fmt].render(analysis, RenderOptions()) for fmt in DOCUMENTS}  # type: ignore[misc]


@pytest.mark.usefixtures("partitioned")
@pytest.mark.parametrize("jobs", [3])
@pytest.mark.parametrize("name", ["outage.pcap", "mixed.pcap", "register.pcap", "tcp.pcap"])
def test_partitions_in_processes_give_the_one_process_report(name: str, jobs: int) -> None:
    capture = sipstats.read_capture(SAMPLES / name)
    expected = sipstats.analyze(capture)
    got = sipstats.analyze(capture, jobs=jobs)
    assert _reports(got) == _reports(expected)
    pd.testing.assert_frame_equal(got.calls, expected.calls)
    pd.testing.assert_frame_equal(got.transactions, expected.transactions)
    assert got.messages is None
    assert got.sample_messages is not None
    for call_id in got.sample_messages["call_id"].astype("str").unique():
        assert got.flow(call_id) == expected.flow(call_id)


def _segment_of_calls(call_ids: list[str]) -> list[Packet]:
    """An INVITE per call, then one TCP segment carrying the 180 of every call, the last
    call's first."""
    packets, ringing, seq = [], [], 1000
    for n, call_id in enumerate(call_ids):
        dialog = {"call_id": call_id, "branch": f"z9hG4bK-seg-{n}", "cseq": 1}
        invite = sip_request("INVITE", **dialog)
        packets.append(tcp(invite, 0.01 * n, seq=seq))
        seq += len(invite)
        ringing.append(sip_response(180, "Ringing", cseq_method="INVITE", to_tag=f"t{n}", **dialog))
    packets.append(tcp(b"".join(reversed(ringing)), 0.5, seq=1, src=UAS, dst=UAC))
    return packets


@pytest.mark.usefixtures("partitioned")
def test_messages_of_one_segment_keep_their_order_across_partitions(tmp_path: Path) -> None:
    """Four responses in one frame, of calls in both partitions: the report's messages come
    in the order one pass reads them, not partition by partition."""
    call_ids = [f"segment-{n}@test" for n in range(4)]
    capture = sipstats.read_capture(
        write_pcap(tmp_path / "segment.pcap", _segment_of_calls(call_ids))
    )
    m = capture.messages
    responses = m[~m["is_request"]]
    assert responses["frame"].nunique() == 1
    partition = responses["call_id"].cat.codes % 2
    assert partition.iloc[0] > partition.min()  # a later partition's message comes first
    expected = sipstats.analyze(capture)
    got = sipstats.analyze(capture, jobs=2)
    pd.testing.assert_frame_equal(
        got.report_messages.astype("str"), expected.report_messages.astype("str")
    )
    assert _reports(got) == _reports(expected)


@pytest.mark.usefixtures("partitioned")
def test_a_call_outside_the_samples_is_refused_without_every_message() -> None:
    capture = sipstats.read_capture(SAMPLES / "outage.pcap")
    got = sipstats.analyze(capture, jobs=2)
    assert got.sample_messages is not None
    held = set(got.sample_messages["call_id"].astype("str"))
    other = next(c for c in capture.messages["call_id"].astype("str") if c not in held)
    with pytest.raises(ReportError, match="jobs > 1"):
        got.flow(other)


def test_small_captures_stay_in_one_process() -> None:
    capture = sipstats.read_capture(SAMPLES / "outage.pcap")
    assert sipstats.analyze(capture, jobs=4).messages is not None


def test_two_processes_do_not_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``MIN_POOL_PROCESSES`` the per-Call-ID step stays in this process, whatever the
    capture's size (the breakdown tables are built in a forked process): every message is
    kept, and the report is the one-process report."""
    monkeypatch.setattr(analysis_module, "MIN_PARTITION_MESSAGES", 1)
    monkeypatch.setattr(analysis_module, "MIN_FORKED_MESSAGES", 1)
    capture = sipstats.read_capture(SAMPLES / "outage.pcap")
    got = sipstats.analyze(capture, jobs=workers.MIN_POOL_PROCESSES - 1)
    assert got.messages is not None
    assert _reports(got) == _reports(sipstats.analyze(capture))


@pytest.mark.usefixtures("partitioned")
def test_cli_jobs_writes_the_one_process_reports(tmp_path: Path) -> None:
    """``--jobs 2`` through the command line, in real worker processes: the same files; CSV
    (every message) still gets every message."""
    formats = [arg for fmt in (*DOCUMENTS, "csv") for arg in ("--report", fmt)]
    runs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}"
        result = CliRunner().invoke(
            main, [str(SAMPLES / "outage.pcap"), *formats, "-o", str(out), "--jobs", jobs]
        )
        assert result.exit_code == 0, result.output
        runs[jobs] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(runs["1"]) == len(DOCUMENTS) + 5
    assert runs["2"] == runs["1"]


def test_fork_map_runs_the_tasks_in_child_processes() -> None:
    pids = workers.fork_map(lambda k: (k, os.getpid()), 3)
    assert [k for k, _ in pids] == [0, 1, 2]
    assert pids[0][1] == os.getpid()
    assert len({pid for _, pid in pids}) == 3


def _fails() -> None:
    raise ValueError("no partition")


def _dies() -> None:
    os._exit(3)


def test_a_child_failure_reaches_the_parent() -> None:
    with pytest.raises(ValueError, match="no partition"):
        workers.Forked(_fails).result()
    with pytest.raises(RuntimeError, match="exit code 3"):
        workers.Forked(_dies).result()


def _interrupted() -> str:
    os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C reaches the whole process group
    time.sleep(0.1)
    return "done"


def test_a_child_ignores_ctrl_c_and_its_parent_decides() -> None:
    assert workers.Forked(_interrupted).result() == "done"


def test_a_child_whose_result_is_not_wanted_is_ended() -> None:
    child = workers.Forked(partial(time.sleep, 60))
    child.close()
    assert child._process is not None
    assert child._process.exitcode == -signal.SIGTERM


def _first_fails_while_the_other_works(pid_file: Path, k: int) -> int:
    if k == 0:  # this process: fails once the child is at work
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise ValueError("partition 0 failed")
    pid_file.write_text(str(os.getpid()))
    time.sleep(60)
    return k


def test_fork_map_ends_its_children_when_its_own_part_fails(tmp_path: Path) -> None:
    """The children ignore Ctrl-C, so this process ends them when it fails (or is
    interrupted) before taking their results: none is left working, none unreaped."""
    pid_file = tmp_path / "child.pid"
    with pytest.raises(ValueError, match="partition 0 failed"):
        workers.fork_map(partial(_first_fails_while_the_other_works, pid_file), 2)
    child = int(pid_file.read_text())
    if Path(f"/proc/{child}").exists():
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child was left running or unreaped")


def test_a_child_ends_soon_after_its_parent_is_killed() -> None:
    """The parent killed (SIGKILL) while its child works: the child's large result finds no
    reader, and the child ends instead of waiting for one forever."""
    code = (
        "import os, sys, time\n"
        "from sipstats import workers\n"
        "def task():\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(0.5)\n"
        "    return b'x' * (1 << 20)\n"
        "workers.Forked(task)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its parent")


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an adopting init may not reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.usefixtures("ctrl_c_after_fork")
def test_a_ctrl_c_while_a_child_is_forked_is_ignored_by_the_child() -> None:
    """Ctrl-C reaching the child before it has set SIGINT aside (here: at once after the
    fork) is held until it has: the child finishes its task, no KeyboardInterrupt."""
    assert workers.Forked(lambda: "done").result() == "done"


@pytest.mark.parametrize("frozen_before", [False, True])
def test_a_child_is_forked_with_the_collector_frozen_as_it_was_after(frozen_before: bool) -> None:
    """The child inherits the objects frozen (their pages stay shared); this process's
    collector is as it was afterwards, a freeze made before (the command's, once its analysis
    is made) included."""
    if frozen_before:
        gc.freeze()
    try:
        assert workers.Forked(gc.get_freeze_count).result() > 0
        assert (gc.get_freeze_count() > 0) is frozen_before
    finally:
        gc.unfreeze()


def test_a_child_holds_no_end_of_its_elder_siblings_pipes() -> None:
    """A younger child closes its copies of the parent's ends of its elders' pipes: once the
    parent is gone, an elder's send fails instead of waiting for that sibling to end."""
    elder = workers.Forked(partial(time.sleep, 60))
    try:
        younger = workers.Forked(lambda: (elder._receive.closed, set() == workers._PARENT_ENDS))
        assert younger.result() == (True, True)
        assert not elder._receive.closed  # this process's own end stays open
    finally:
        elder.close()
    assert elder._receive not in workers._PARENT_ENDS


def test_a_result_that_does_not_pickle_is_dropped_once_the_parent_is_gone() -> None:
    """The child's second send (the error saying the result does not pickle) also meets a
    closed pipe quietly: no traceback from a child nobody waits for."""
    receive, send = multiprocessing.Pipe(duplex=False)
    receive.close()
    workers._send_result(lambda: lambda: "a function does not pickle", send)
    assert send.closed


_real_fork = os.fork
_real_sigmask = signal.pthread_sigmask
_real_freeze = gc.freeze


def _children() -> list[int]:
    """This process's child processes, running or not yet reaped."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


def _ctrl_c_from_another_thread() -> None:
    """A Ctrl-C that the kernel gave another thread (a progress display's): Python raises it
    in the main thread at its next step, whatever the main thread's signal mask."""

    def take_it() -> None:
        _real_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a new thread inherits the mask
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    thread = threading.Thread(target=take_it)
    thread.start()
    thread.join()


def _fork_then_ctrl_c() -> int:
    pid = _real_fork()
    if pid:
        _ctrl_c_from_another_thread()
    return pid


def _fork_then_ctrl_c_to_the_process() -> int:
    pid = _real_fork()
    if pid:
        os.kill(os.getpid(), signal.SIGINT)  # held until SIGINT is unblocked here
    return pid


def _block_then_ctrl_c(how: int, mask: set[signal.Signals]) -> set[signal.Signals]:
    masked = _real_sigmask(how, mask)
    if how == signal.SIG_BLOCK:
        _ctrl_c_from_another_thread()
    return masked


def _freeze_then_ctrl_c() -> None:
    _real_freeze()
    _ctrl_c_from_another_thread()


@pytest.mark.parametrize(
    ("module", "name", "interrupted"),
    [
        (os, "fork", _fork_then_ctrl_c),
        (os, "fork", _fork_then_ctrl_c_to_the_process),
        (signal, "pthread_sigmask", _block_then_ctrl_c),
        (gc, "freeze", _freeze_then_ctrl_c),
    ],
)
def test_a_ctrl_c_while_this_process_forks_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, interrupted: object
) -> None:
    """Ctrl-C at any step of starting a child: KeyboardInterrupt is raised, the child is
    ended and reaped, the collector is not left frozen nor SIGINT blocked, no pipe end kept."""
    monkeypatch.setattr(module, name, interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            workers.Forked(partial(time.sleep, 60))
        monkeypatch.undo()
        assert gc.get_freeze_count() == 0
        assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert not workers._PARENT_ENDS
        assert _children() == []
    finally:
        monkeypatch.undo()
        gc.unfreeze()
        _real_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        workers._PARENT_ENDS.clear()
        for pid in _children():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_fork_that_fails_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork itself failing (out of memory, too many processes): its error raised, no
    state left changed."""

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(OSError, match="temporarily unavailable"):
        workers.Forked(lambda: "never")
    assert gc.get_freeze_count() == 0
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert not workers._PARENT_ENDS
