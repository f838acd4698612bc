"""Decoding in several processes (``read_capture(jobs=N)``, ``--jobs``) gives what one pass gives.

A capture is cut into parts at record boundaries; each part is decoded on its own, and what
needs earlier packets (TCP streams, IP fragments) is replayed by the parent; a part's
capture-duplicate filter first sees the packets stamped just before it. The tests cut
captures at every record boundary (and at pairs of them) and compare the messages table and
the input summaries with a single pass: a TCP stream whose messages span segments, an
INVITE in IP fragments, capture duplicates, a timestamp stepping back, a malformed message
and a call whose messages sit on both sides of every cut.
"""

from __future__ import annotations

import gzip
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from sipstats import workers
from sipstats.capture import pcap, reader
from sipstats.capture.reader import open_capture, parts
from sipstats.capture.summary import InputSummary
from sipstats.messages import DecodeOptions, MessageTable, read_capture
from tests.conftest import CORPUS, ROOT, children_left
from tests.sipfactory import T0, UAC, UAS, sip_request, sip_response, tcp, udp, write_pcap


def _call(n: int, t: float) -> list[Packet]:
    dialog = {"call_id": f"jobs-{n}@test", "branch": f"z9hG4bK-jobs-{n}", "cseq": 1}
    ok = sip_response(200, "OK", cseq_method="INVITE", to_tag="t", **dialog)
    return [udp(sip_request("INVITE", **dialog), t), udp(ok, t + 0.02, UAS, UAC)]


def _packets() -> list[Packet]:
    packets = _call(1, 0.0)
    # a TCP stream: two messages in one segment, then one message over two segments
    first = sip_request("OPTIONS", call_id="tcp-1", cseq=1, branch="z9hG4bK-t1")
    second = sip_request("OPTIONS", call_id="tcp-2", cseq=1, branch="z9hG4bK-t2")
    third = sip_request("INVITE", call_id="tcp-3", cseq=1, branch="z9hG4bK-t3")
    packets += [
        tcp(first + second, 0.1, seq=1000),
        *_call(2, 0.15),
        tcp(third[:100], 0.2, seq=1000 + len(first + second)),
        tcp(third[100:], 0.3, seq=1100 + len(first + second)),
    ]
    # an INVITE in three IP fragments, with a call in between
    body = b"v=0\r\n" + b"a=x\r\n" * 500
    big = sip_request("INVITE", call_id="frag@test", cseq=1, branch="z9hG4bK-frag", body=body)
    pieces = fragment(IP(src=UAC[0], dst=UAS[0]) / UDP(sport=5060, dport=5060) / Raw(big), 1000)
    assert len(pieces) == 3
    for i, piece in enumerate(pieces):
        packets.append(Ether() / piece)
        packets[-1].time = T0 + 0.4 + i / 100
        if i == 0:
            packets += _call(3, 0.405)
    # the same INVITE captured twice 1 ms apart, twice over (kept as rows or not, see below)
    for n, t in ((5, 0.5), (6, 0.52)):
        packets += [_call(n, t)[0], _call(n, t + 0.001)[0]]
    # a timestamp two seconds back, a malformed message, a last call
    packets += [
        udp(sip_request("OPTIONS", call_id="late", cseq=1, branch="z9hG4bK-l"), -1.6),
        udp(b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n", 0.6),
        *_call(4, 0.7),
    ]
    return packets


#: read_capture's defaults
ONE_PASS = DecodeOptions()


def _record_offsets(path: Path) -> list[int]:
    """Byte offset of every record of a classic pcap (little-endian, as scapy writes)."""
    data = path.read_bytes()
    offsets, off = [], 24
    while off + 16 <= len(data):
        offsets.append(off)
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    return offsets


def _split_read(
    path: Path, cuts: list[int], options: DecodeOptions
) -> tuple[pd.DataFrame, InputSummary]:
    """Decode the parts one after the other in this process, merged as the workers' are."""
    lookback_ns = round(options.duplicate_window_ms * 1_000_000)
    units = [workers.Unit(str(path), part, 0) for part in parts(path, cuts, lookback_ns)]
    assert len(units) == len(set(cuts)) + 1
    table = MessageTable()
    results = map(partial(workers.decode_unit, options=options), units)
    summaries = workers.merge_units(units, results, table, options)
    return table.to_frame(), summaries[str(path)]


def _assert_same_as_one_pass(
    path: Path, cut_sets: list[list[int]], options: DecodeOptions = ONE_PASS
) -> None:
    whole = read_capture(
        path,
        jobs=1,
        duplicate_window_ms=options.duplicate_window_ms,
        keep_duplicates=options.keep_duplicates,
    )
    for cuts in cut_sets:
        messages, summary = _split_read(path, cuts, options)
        pd.testing.assert_frame_equal(messages, whole.messages, obj=f"cut at {cuts}")
        assert summary == whole.inputs[0], cuts


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("jobs") / "mixed.pcap", _packets())


def test_the_capture_has_every_case(capture: Path) -> None:
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    whole = read_capture(capture)
    assert whole.messages["transport"].value_counts().to_dict() == {"udp": 12, "tcp": 3}
    assert whole.messages["fragmented"].sum() == 1
    assert whole.inputs[0].duplicates == 2
    assert set(whole.inputs[0].malformed) == {"timestamp out of order", "missing mandatory header"}


@pytest.mark.parametrize(
    "options",
    [DecodeOptions(), DecodeOptions(keep_duplicates=True), DecodeOptions(duplicate_window_ms=0)],
    ids=["duplicates-dropped", "duplicates-kept", "duplicates-not-looked-for"],
)
def test_every_cut_gives_one_pass(capture: Path, options: DecodeOptions) -> None:
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    offsets = _record_offsets(capture)[1:]
    _assert_same_as_one_pass(capture, [[offset] for offset in offsets], options)


def test_every_pair_of_cuts_gives_one_pass(capture: Path) -> None:
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    offsets = _record_offsets(capture)[1:]
    _assert_same_as_one_pass(capture, [list(pair) for pair in combinations(offsets, 2)])


def test_cuts_inside_records_move_to_the_next_record(capture: Path) -> None:
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    offsets = _record_offsets(capture)
    found = parts(capture, [offsets[3] + 1, offsets[7] - 1, capture.stat().st_size + 10])
    assert [part.byte_range[:2] for part in found] == [
        (24, offsets[4]),
        (offsets[4], offsets[7]),
        (offsets[7], sys.maxsize),
    ]
    assert [part.byte_range[2] for part in found] == [1, 5, 8]


@pytest.mark.parametrize(
    "spread",
    [{"jobs": 3}, {"threads": 3}],
    ids=["process-pool", "threads"],
)
def test_read_capture_spread_over_units(
    capture: Path, monkeypatch: pytest.MonkeyPatch, spread: dict[str, int]
) -> None:
    """Parts and whole files decoded in worker processes (through the real pool) or in threads
    of this process (their C-built tables moved into one without a copy through Python): the
    result is one pass's."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    monkeypatch.setattr(workers, "MIN_PART_BYTES", 1024)
    other = write_pcap(capture.parent / "other.pcap", _call(9, 0.25))
    seen: list[tuple[int, int, int]] = []
    spread_out = read_capture([capture, other], progress=lambda *a: seen.append(a), **spread)
    single = read_capture([capture, other], jobs=1)
    assert len(workers.plan([str(capture), str(other)], 3)) == 4
    pd.testing.assert_frame_equal(spread_out.messages, single.messages)
    assert spread_out.inputs == single.inputs
    assert seen[-1][0] == seen[-1][1] == capture.stat().st_size + other.stat().st_size


def test_two_processes_decode_in_this_one(capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``MIN_POOL_PROCESSES`` no pool is started, even for a file that would be cut:
    the caller decodes in its own process."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    monkeypatch.setattr(workers, "MIN_PART_BYTES", 1024)
    jobs = workers.MIN_POOL_PROCESSES - 1
    assert len(workers.plan([str(capture)], jobs)) == jobs
    table = MessageTable()
    assert workers.decode_in_workers([str(capture)], jobs, table, DecodeOptions(), None) is None
    assert table.to_frame().empty


def test_in_thread_gives_the_result_or_raises_the_error() -> None:
    assert workers.InThread(lambda: threading.current_thread().name).result() != (
        threading.current_thread().name
    )
    handed = workers.InThread(lambda: [1, 2])
    assert handed.result() == [1, 2]
    assert not handed._outcome  # handed over: the thread object keeps no reference to it
    failing = workers.InThread(lambda: int("not a number"))
    with pytest.raises(ValueError, match="not a number"):
        failing.result()


def test_a_report_on_a_capture_read_beforehand_is_the_same(capture: Path, tmp_path: Path) -> None:
    """``run_report(decoded=...)``, as the command line runs it after reading in a thread
    (the capture, or a function that hands it over), writes the report a run that reads for
    itself writes; the window still selects."""
    from sipstats.report import ReportRequest, run_report

    runs = []
    for name in ("own", "early", "handed over"):
        request = ReportRequest(
            [capture], formats=("json",), output=str(tmp_path / f"{name}.json"), since="+0.1"
        )
        read = workers.InThread(
            partial(workers.read_for_report, [capture], None, request.duplicate_window_ms, 1, None)
        )
        decoded = {"own": None, "early": read.result, "handed over": read.result}[name]
        result = run_report(request, decoded=decoded() if name == "early" else decoded)
        runs.append((result.exit_status, (tmp_path / f"{name}.json").read_bytes()))
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][1]


def test_compressed_and_small_files_are_not_cut(tmp_path: Path, capture: Path) -> None:
    import gzip

    packed = tmp_path / "mixed.pcap.gz"
    packed.write_bytes(gzip.compress(capture.read_bytes()))
    assert len(parts(packed, [100, 200])) == 1
    assert workers.plan([str(capture)], 4) == [
        workers.Unit(str(capture), None, capture.stat().st_size)
    ]


def test_cli_jobs_option(capture: Path, tmp_path: Path) -> None:
    """``--jobs`` reaches read_capture (a file this small is still read in one process)."""
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        argv = [sys.executable, "-m", "sipstats", str(capture), "--jobs", jobs, "-q"]
        done = subprocess.run(
            [*argv, "--report", "json", "-o", str(out)], capture_output=True, text=True
        )
        assert done.returncode == 1, done.stderr  # the capture holds damage on purpose
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


CORPUS_CUTS = ("c03_tcp_v4/c03_tcp_v4.pcap", "c08_frag/c08_frag.pcap", "c05_loss/c05_loss.pcap")


@pytest.mark.parametrize("name", CORPUS_CUTS)
def test_corpus_captures_cut_anywhere(name: str) -> None:
    """Real TCP streams, fragments and retransmissions: cut at 40 record boundaries spread
    over the file (each one alone, and in threes)."""
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"the shared corpus capture {path} is not there")
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    offsets = _record_offsets(path)[1:]
    chosen = offsets[:: max(1, len(offsets) // 40)]
    _assert_same_as_one_pass(path, [[o] for o in chosen] + [chosen[k : k + 3] for k in (0, 9, 20)])


@pytest.mark.parametrize("lookback_ms", [0, 4.0])
def test_a_cut_from_a_reader_position_is_a_cut_from_the_start(
    capture: Path, lookback_ms: float
) -> None:
    """``cut_after`` walks only from where a reader is, with its records and clock so far:
    it finds the cut a walk from the first record finds, or none (a look-back that may reach
    back before the reader's position)."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    lookback_ns = round(lookback_ms * 1_000_000)
    offsets = _record_offsets(capture)
    src, header = open_capture(str(capture), InputSummary(str(capture)))
    found = 0
    try:
        for here, target in combinations(offsets, 2):
            before = pcap.cut_points(src, header, [here], lookback_ns)[0]
            at = pcap.Position(before.offset, before.frame, before.clock)
            cut = pcap.cut_after(src, header, at, target, lookback_ns, len(src.buf))
            if cut is not None:
                assert cut == pcap.cut_points(src, header, [target], lookback_ns)[0]
                found += 1
    finally:
        src.close()
    assert found > len(offsets)  # the clock stepping back and the fragments among them


@pytest.fixture
def short_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shares of a small capture cut at any step: the reader reports every 64 bytes, records
    are at most 1100 bytes (the cut's reach back is short) and no size or time left is too
    small to share."""
    monkeypatch.setattr(pcap, "RELEASE_STEP", 64)
    monkeypatch.setattr(pcap, "MAX_CAPLEN", 1100)
    monkeypatch.setattr(workers, "MIN_SHARED_BYTES", 0)
    monkeypatch.setattr(workers, "MIN_SHARED_SECONDS", 0)


def _helping_at(k: int, helper: workers.Helper) -> Callable[[int, int, int], None]:
    """A progress callback that has ``helper`` help at its ``k``-th call."""
    calls = iter(range(1, sys.maxsize))

    def progress(*_read: int) -> None:
        if next(calls) == k:
            helper.help()

    return progress


def test_a_read_helped_at_any_step_gives_one_pass(capture: Path, short_shares: None) -> None:
    """The helper cuts the rest of the file wherever the reader is (a step of a few bytes,
    records of at most 1100 bytes: its reach is short) and decodes it meanwhile, here in the
    reading thread itself at the k-th progress report: one pass's table and summary."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    whole = read_capture(capture)
    cuts = set()
    for k in range(len(_record_offsets(capture))):
        helper = workers.Helper()
        helped = read_capture(capture, jobs=2, progress=_helping_at(k, helper), helper=helper)
        pd.testing.assert_frame_equal(helped.messages, whole.messages, obj=f"help at {k}")
        assert helped.inputs == whole.inputs, k
        if helper._outcome is not None:
            cuts.add(helper._outcome[0].part.byte_range[0])
    assert len(cuts) > 3


def test_a_read_no_one_helps_puts_nothing_off(
    capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until a helper cuts the read, the reader decodes TCP, SCTP and IP fragments as they
    come, as one pass does: nothing is copied aside for later (a capture of TCP bulk traffic
    would be held whole)."""

    def defers(*_args: object) -> None:
        raise AssertionError("a read that was not cut put something off")

    monkeypatch.setattr(reader, "DeferringDecoder", defers)
    whole = read_capture(capture)
    helper = workers.Helper()
    alone = read_capture(capture, jobs=2, progress=_helping_at(0, helper), helper=helper)
    pd.testing.assert_frame_equal(alone.messages, whole.messages)
    assert alone.inputs == whole.inputs


def test_a_file_written_on_while_it_is_read_is_cut_as_the_reader_sees_it(
    tmp_path: Path, short_shares: None
) -> None:
    """A capture still being written is longer by the time the helper comes: it cuts what the
    reader sees (the file as it was opened), and its part ends where the reader's bytes end,
    so that nothing between is lost and nothing after is read."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    packets = [
        udp(sip_request("OPTIONS", call_id=f"grow-{i}", cseq=1, branch=f"z9hG4bK-g{i}"), i / 100)
        for i in range(400)
    ]
    path = write_pcap(tmp_path / "growing.pcap", packets[:40])
    written_later = write_pcap(tmp_path / "later.pcap", packets[40:]).read_bytes()[24:]
    as_opened = read_capture(path)
    helper = workers.Helper()
    steps = iter(range(1, sys.maxsize))

    def progress(*_read: int) -> None:
        if next(steps) == 3:
            with path.open("ab") as capture:
                capture.write(written_later)
            helper.help()

    grown = read_capture(path, jobs=2, progress=progress, helper=helper)
    assert helper._outcome is not None  # it did cut the read
    pd.testing.assert_frame_equal(grown.messages, as_opened.messages)
    assert grown.inputs == as_opened.inputs


def test_the_helper_leaves_a_compressed_read_at_once(
    capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressed file cannot be cut: the helper does not open it (nor decompress its first
    chunk) to find that out."""
    monkeypatch.setattr(pcap, "RELEASE_STEP", 64)
    monkeypatch.setattr(workers, "MIN_SHARED_BYTES", 0)

    def opens(*_args: object) -> None:
        raise AssertionError("the helper opened a file it cannot cut")

    monkeypatch.setattr(workers, "rest_after", opens)
    packed = tmp_path / "mixed.pcap.gz"
    packed.write_bytes(gzip.compress(capture.read_bytes()))
    helper = workers.Helper()
    helped = read_capture(packed, jobs=2, progress=_helping_at(1, helper), helper=helper)
    assert len(helped.messages) == len(read_capture(capture).messages)


def test_a_share_is_not_cut_where_the_reader_may_have_read() -> None:
    """A cut before what the reader may have reached by its next step, or after another cut,
    or once the reader is done, is refused; the reader then reads on."""
    share = pcap.Share()
    here = pcap.Position(24, 0, pcap.FIRST_RECORD)
    assert share.step(here, 1000) == sys.maxsize
    assert not share.cut(999)
    assert share.cut(1000)
    assert not share.cut(2000)
    assert share.step(here, 1000) == 1000
    assert share.finish()
    done = pcap.Share()
    done.step(here, 1000)
    assert not done.finish()
    assert not done.cut(5000)


Step = Callable[[pcap.Share, pcap.Position, int], int]


def _helping_behind(k: int, helper: workers.Helper, step: Step) -> Step:
    """``Share.step`` (``step``) that has ``helper`` help just before the reader's step k + 2,
    with the reader's position of step k."""
    positions: list[pcap.Position] = []

    def stale(share: pcap.Share, at: pcap.Position, reach: int) -> int:
        if len(positions) == k + 2:
            share.at = positions[k]
            helper.help()
        positions.append(at)
        return step(share, at, reach)

    return stale


def test_a_helper_behind_the_reader_gives_one_pass(
    capture: Path, monkeypatch: pytest.MonkeyPatch, short_shares: None
) -> None:
    """The helper may come with the reader's position of a step before (it read the share
    just before the reader stepped on): a cut the reader may have passed since is refused,
    whichever step that is."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    whole = read_capture(capture)
    step = pcap.Share.step
    for k in range(len(_record_offsets(capture))):
        helper = workers.Helper()
        monkeypatch.setattr(pcap.Share, "step", _helping_behind(k, helper, step))
        helped = read_capture(capture, jobs=2, helper=helper)
        pd.testing.assert_frame_equal(helped.messages, whole.messages, obj=f"help at {k}")
        assert helped.inputs == whole.inputs, k


def test_what_fails_in_the_helper_is_raised_by_the_read(
    capture: Path, monkeypatch: pytest.MonkeyPatch, short_shares: None
) -> None:
    """The helper's failure reaches the caller of the read (the command line's one error
    line), not the thread that helped."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")

    def fails(*_args: object) -> workers.Decoded:
        raise ValueError("the helper failed")

    monkeypatch.setattr(workers, "decode_unit", fails)
    helper = workers.Helper()
    with pytest.raises(ValueError, match="the helper failed"):
        read_capture(capture, jobs=2, progress=_helping_at(2, helper), helper=helper)


@pytest.mark.parametrize(("left", "cut"), [(0.1, False), (1.0, True)])
def test_the_helper_cuts_only_a_read_with_enough_cpu_time_left(
    capture: Path, short_shares: None, monkeypatch: pytest.MonkeyPatch, left: float, cut: bool
) -> None:
    """However many bytes are left, a read whose pace says they take the reader little CPU
    time is not cut (RTP is read fast; a cut costs a walk to it and a second table)."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    monkeypatch.setattr(workers, "MIN_SHARED_SECONDS", 0.25)
    monkeypatch.setattr(pcap.Share, "seconds_left", lambda _share: left)
    helper = workers.Helper()
    helped = read_capture(capture, jobs=2, progress=_helping_at(2, helper), helper=helper)
    assert (helper._outcome is not None) is cut
    pd.testing.assert_frame_equal(helped.messages, read_capture(capture).messages)


def test_the_seconds_left_are_at_the_readers_cpu_pace() -> None:
    """CPU seconds per byte between the reader's first step and its last, times the bytes
    left; not known before a second step."""
    share = pcap.Share(clock=iter([1.0, 1.5]).__next__)
    share.end = 2024
    assert share.seconds_left() == math.inf
    share.step(pcap.Position(24, 0, pcap.FIRST_RECORD), 100)
    assert share.seconds_left() == math.inf
    share.step(pcap.Position(1024, 9, pcap.FIRST_RECORD), 1100)
    assert share.seconds_left() == pytest.approx(0.5)


def _interrupted(k: int) -> int:
    os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C reaches the whole process group
    time.sleep(0.1)
    return k


def test_decoding_workers_leave_ctrl_c_to_this_process() -> None:
    """A worker interrupted while it sent its table back left half a message in the pool's
    result pipe, and the pool waited for the rest for ever: the workers ignore Ctrl-C."""
    with workers._pool(2, threads=False) as pool:
        assert list(pool.map(_interrupted, range(4))) == [0, 1, 2, 3]


@pytest.mark.usefixtures("ctrl_c_after_fork")
def test_a_ctrl_c_while_the_decoding_workers_are_forked_is_ignored_by_them() -> None:
    """Ctrl-C reaching a worker at once after the fork, before it has set SIGINT aside, is
    held until it has (SIGINT blocked across the fork): no worker dies of it."""
    with workers._pool(2, threads=False) as pool:
        assert list(pool.map(abs, [-1, -2])) == [1, 2]


def _asleep(k: int) -> int:
    time.sleep(20)
    return k


def _sent_late(k: int) -> bytes:
    time.sleep(0.5)
    return bytes(16 << 20)  # far more than a pipe holds: the worker waits for the reader


def _spin(seconds: float) -> None:
    """Hold the GIL (no call that lets it go) for ``seconds``: the pool's thread cannot read."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _interrupt_slow_units() -> None:
    """In a process of its own: Ctrl-C to its group while its workers decode slow units."""
    start = time.monotonic()
    try:
        with workers._pool(3, threads=False) as pool:
            threading.Timer(0.5, os.killpg, (0, signal.SIGINT)).start()
            list(pool.map(_asleep, range(6)))
    except KeyboardInterrupt:
        print(f"{time.monotonic() - start:.2f}", children_left())


def _interrupt_a_send() -> None:
    """In a process of its own: Ctrl-C while a worker is half-way through sending its result,
    the pool's thread (starved of the GIL) having read only the beginning."""
    try:
        with workers._pool(3, threads=False) as pool:
            pool.submit(_sent_late, 0)
            time.sleep(0.2)  # the unit reaches the worker
            sys.setswitchinterval(30)
            _spin(1.5)  # the worker has written what the pipe holds and waits
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print(children_left())


def _in_a_process_group(main: str) -> str:
    """What ``main`` (a function of this module) prints, run in a process group of its own;
    it must end within 60 s, its exit included (the pool's thread joined)."""
    done = subprocess.run(
        [sys.executable, "-c", f"from tests.test_workers import {main}; {main}()"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        start_new_session=True,
        check=True,
    )
    return done.stdout


def test_a_ctrl_c_ends_the_decoding_workers_at_once() -> None:
    """Interrupted, the pool waited for the units its workers were decoding (the workers
    ignore Ctrl-C): the command took seconds to abort. Its workers are now ended."""
    seconds, children = _in_a_process_group("_interrupt_slow_units").split()
    assert float(seconds) < 10  # the units sleep 20 s
    assert children == "0"


def test_a_worker_ended_while_it_sends_leaves_no_half_message() -> None:
    """A worker ended half-way through sending its result left the pool's thread waiting for
    the rest for ever (this process held a write end of the result pipe too): the process
    hung at exit, where that thread is joined."""
    assert _in_a_process_group("_interrupt_a_send").split() == ["0"]
