"""Work on several cores: files, and parts of large files, decoded in worker processes; and
:class:`Forked`, work on tables this process already holds, done in a forked child.

``read_capture(..., jobs=N)`` comes here. Each uncompressed classic pcap file large enough
is cut into record-aligned parts (:func:`sipstats.capture.reader.parts`); every part and
every other file is a unit of work for a process pool. Workers decode what needs no earlier
packet and put off the rest (IP fragments, TCP, SCTP: :mod:`sipstats.capture.deferral`); the
parent appends the workers' tables in file order, replays the put-off calls of each file on
one decoder, and merges the parts' input summaries. The messages table is sorted by time at
the end and its categories follow the sorted rows, so the result equals one pass's.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Final, Generic, NamedTuple, ParamSpec, TypeVar

from sipstats.capture.decode import Decoder
from sipstats.capture.deferral import Deferred, replay
from sipstats.capture.duplicates import Copies, duplicate_filter
from sipstats.capture.pcap import FIRST_RECORD, Share
from sipstats.capture.reader import Part, iter_payloads, parts, rest_after
from sipstats.capture.summary import InputSummary
from sipstats.errors import CaptureError
from sipstats.messages import (
    Capture,
    DecodeOptions,
    MessageTable,
    Progress,
    decode_payloads,
    read_capture,
    survey_if_silent,
)

T = TypeVar("T")
P = ParamSpec("P")

#: Parts smaller than this are not worth a process: starting one and sending its table back
#: costs about what decoding this much takes.
MIN_PART_BYTES: Final = 32 << 20

#: Fewer processes than this and the local engine keeps decoding and the per-Call-ID step in
#: one process: measured on two cores, the parent unpickling the other process's tables (about
#: 0.85 s CPU for 700k messages) costs what that process saves; the saving grows with each
#: further process while that cost stays. Two processes still draw figures and build report
#: tables in a fork (:class:`Forked`), whose results are small.
MIN_POOL_PROCESSES: Final = 3


class Unit(NamedTuple):
    """One file, or one part of one (``part`` None: the whole file)."""

    path: str
    part: Part | None
    size: int


def plan(entries: list[str | InputSummary], jobs: int, lookback_ms: float = 0) -> list[Unit]:
    """The units of work: large uncompressed classic pcap files in up to ``jobs`` parts,
    each with a look-back of ``lookback_ms`` (the capture-duplicate window)."""
    lookback_ns = round(lookback_ms * 1_000_000)
    units: list[Unit] = []
    for entry in entries:
        if isinstance(entry, InputSummary):
            continue
        size = _size(entry)
        pieces = min(jobs, size // MIN_PART_BYTES)
        targets = [k * size // pieces for k in range(1, pieces)]
        cut = _parts(entry, targets, lookback_ns) if pieces > 1 else []
        if len(cut) < 2:
            units.append(Unit(entry, None, size))
            continue
        starts = [0, *(part.byte_range[0] for part in cut[1:])]  # the first holds the header
        ends = [*starts[1:], size]
        units += [
            Unit(entry, part, end - start)
            for part, start, end in zip(cut, starts, ends, strict=True)
        ]
    return units


def _parts(path: str, cuts: list[int], lookback_ns: int) -> list[Part]:
    try:
        return parts(path, cuts, lookback_ns)
    except (CaptureError, OSError):
        return []  # the file's own decoding reports what is wrong with it


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


#: What a unit gives: its table, its summary and the calls it put off.
Decoded = tuple[MessageTable, InputSummary, list[Deferred]]


def decode_unit(unit: Unit, options: DecodeOptions) -> Decoded:
    """Decode one unit (in a worker): its table, its summary and the calls it put off."""
    if unit.part is None:
        table, summary = options.decode(unit.path)
        return table, summary, []
    deferred: list[Deferred] = []
    table, summary = options.decode(
        unit.path,
        byte_range=unit.part.byte_range,
        clock=unit.part.clock,
        deferred=deferred,
        copies=_warmed_up(unit.path, unit.part, options),
    )
    return table, summary, deferred


def _warmed_up(path: str, part: Part, options: DecodeOptions) -> Copies | None:
    """A capture-duplicate filter that has seen the payloads stamped just before the part,
    as it would have in one pass (None: duplicates are not looked for)."""
    if options.duplicate_window_ms <= 0:
        return None
    copies = duplicate_filter(options.duplicate_window_ms)
    start, end, _ = part.warm_up
    if start < end:
        scratch = InputSummary(file=path)  # what the look-back meets is the previous part's
        copies.copies(
            list(
                iter_payloads(
                    path, scratch, ports=options.ports, byte_range=part.warm_up, deferred=[]
                )
            )
        )
    return copies


def merge_units(
    units: list[Unit],
    results: Iterable[Decoded],
    table: MessageTable,
    options: DecodeOptions,
    merged: Callable[[Unit, InputSummary], None] | None = None,
    *,
    kept: dict[str, Kept] | None = None,
) -> dict[str, InputSummary]:
    """Append the units' tables to ``table`` as they come and merge each file's summaries, in
    file order (``merged`` is told after each unit); then make each file's put-off calls on
    one decoder: the one ``kept`` for the file, if any (its first unit's, which counts in that
    unit's summary), else a new one."""
    summaries: dict[str, InputSummary] = {}
    deferred: dict[str, list[Deferred]] = {}
    kept = {} if kept is None else kept
    for unit, (part_table, summary, calls) in zip(units, results, strict=True):
        table.extend(part_table)
        del part_table  # its columns now live in ``table``
        if merged is not None:
            merged(unit, summary)
        if unit.path in summaries:
            summaries[unit.path].merge(summary)
        else:
            summaries[unit.path] = summary
        deferred.setdefault(unit.path, []).extend(calls)
    for path, calls in deferred.items():
        if path in kept:
            _made_on(kept[path], calls, table, options)
        elif calls:
            summaries[path].merge(_replayed(path, calls, table, options))
    for path in {unit.path for unit in units if unit.part is not None}:
        survey_if_silent(path, summaries[path])  # parts are whole again
    return summaries


def _replayed(
    path: str, calls: list[Deferred], table: MessageTable, options: DecodeOptions
) -> InputSummary:
    """Make a file's put-off calls in order on a new decoder; their messages go into ``table``
    (their capture duplicates judged among themselves: a copy has the transport of its
    original)."""
    summary = InputSummary(file=path)
    _made_on(Kept(Decoder(path, summary, options.ports), None), calls, table, options)
    return summary


class Kept(NamedTuple):
    """Where a read cut short left off (:attr:`sipstats.capture.pcap.Share.kept`): its
    decoder, unfinished, and its capture-duplicate filter (None: a new one)."""

    decoder: Decoder
    copies: Copies | None


def _made_on(
    kept: Kept, calls: list[Deferred], table: MessageTable, options: DecodeOptions
) -> None:
    """Make put-off calls in order on ``kept``, then finish its decoder; their messages go into
    ``table``, counted in the decoder's summary."""
    decoder = kept.decoder
    replay(decoder, calls)
    decoder.finish()
    decode_payloads(
        decoder.out,
        decoder.summary,
        table,
        strict=options.strict,
        duplicate_window_ms=options.duplicate_window_ms,
        keep_duplicates=options.keep_duplicates,
        copies=kept.copies,
    )


def decode_in_workers(
    entries: list[str | InputSummary],
    jobs: int,
    table: MessageTable,
    options: DecodeOptions,
    progress: Progress | None,
    *,
    threads: bool = False,
) -> list[InputSummary] | None:
    """Decode ``entries`` with ``jobs`` processes (with ``threads``: threads of this process)
    into ``table``; the inputs in order, or None when there is only one unit of work, or
    fewer than :data:`MIN_POOL_PROCESSES` processes (the caller then decodes alone)."""
    if jobs < MIN_POOL_PROCESSES and not threads:
        return None
    units = plan(entries, jobs, options.duplicate_window_ms)
    if len(units) < 2:
        return None
    total = sum(unit.size for unit in units)
    done = [0, 0]  # bytes, packets

    def merged(unit: Unit, summary: InputSummary) -> None:
        done[0] += unit.size
        done[1] += summary.packets
        if progress is not None:
            progress(done[0], total, done[1])

    work = partial(decode_unit, options=options)
    with _pool(min(jobs, len(units)), threads) as pool:
        summaries = merge_units(units, pool.map(work, units), table, options, merged)
    return [entry if isinstance(entry, InputSummary) else summaries[entry] for entry in entries]


def _pool(workers: int, threads: bool) -> Executor:
    """Threads share this process's tables (nothing is pickled; the C parser lets go of the
    GIL while it parses); processes each hold their own and send them back."""
    if threads:
        return ThreadPoolExecutor(workers)
    return process_pool(workers)


def process_pool(workers: int) -> Executor:
    """A pool of ``workers`` processes for a ``with`` block: forked, they leave Ctrl-C to this
    process, which ends them when it is interrupted (:class:`_ForkedPool`); elsewhere
    (Windows) spawned."""
    if not can_fork():
        return ProcessPoolExecutor(workers)
    return _ForkedPool(workers)


class _ForkedPool(ProcessPoolExecutor):
    """Forked worker processes (they start with everything imported; spawn would import
    pandas again) that leave Ctrl-C to this process, as :class:`Forked`'s children do, and
    that this process ends when it is interrupted.

    A worker that took Ctrl-C while it sent its table back left half a message in the
    result pipe, and the pool's thread in this process waited for the rest for ever: the
    command hung instead of ending with "Aborted!". The workers are forked by the first
    :meth:`submit`, with SIGINT blocked, and ignore it before they unblock it. Interrupted,
    the pool ends them (:meth:`_end_workers`) rather than wait for the units they decode.
    """

    def __init__(self, workers: int) -> None:
        super().__init__(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_ignore_ctrl_c
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """The workers are forked by the first call (CPython forks them all at once, and only
        then, with the fork start method); this process's copy of the result pipe's write end
        is closed after it, so that a worker ended while it sends leaves an end of file to
        the pool's reading thread, not half a message it would wait on for ever."""
        with _ctrl_c_blocked():  # a Ctrl-C held meanwhile comes once the write end is closed
            future = super().submit(fn, *args, **kwargs)
            self._result_queue._writer.close()  # type: ignore[attr-defined]
        return future

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Failed: the units not started yet are dropped, not decoded first. Interrupted
        (Ctrl-C, or another exception that is not an error): the workers are ended too."""
        if exc_type is None or issubclass(exc_type, Exception):
            self.shutdown(wait=True, cancel_futures=exc_type is not None)
        else:
            self._end_workers()

    def _end_workers(self) -> None:
        """Every unit dropped and every worker ended and reaped at once (what Python 3.14's
        ``terminate_workers`` does, from the same ``_processes``). The pool's thread then sees
        the workers gone and ends (:meth:`submit`: an end of file, whatever they were doing)."""
        processes = list(self._processes.values())
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()


#: Unread bytes from which a :class:`Helper` cuts off half of them: below, the walk to the
#: cut and a second table cost about what the half saves.
MIN_SHARED_BYTES: Final = 2 * MIN_PART_BYTES
#: The reader's CPU seconds left (:meth:`sipstats.capture.pcap.Share.seconds_left`) from which
#: a :class:`Helper` cuts: 64 MiB are 0.2 s of the 1M-packet benchmark capture but 0.06 s of
#: the RTP-heavy one, where a cut cost 0.08-0.1 s CPU more than one reader (0.29-0.33 s
#: against 0.21-0.25 s, 5 rounds) and took the core that reader needed on a busy machine.
MIN_SHARED_SECONDS: Final = 0.25


class Helper:
    """A thread's offer to decode part of the one capture file another thread reads, once it
    has nothing else to do (:meth:`help`): work sharing rather than a split fixed beforehand,
    so a read that is done or nearly done by then costs nothing more.

    The reading thread (:func:`decode_shared`) tells it which file it reads and how; the
    helper cuts off the second half of what that read has not reached yet (the reader stops
    there) and decodes it while the reader goes on; the reader then merges both, as the
    parts of a file decoded in worker processes are merged.
    """

    def __init__(self) -> None:
        self._read: tuple[str, DecodeOptions, Share] | None = None
        self._done = threading.Event()
        self._outcome: tuple[Unit, Decoded] | None = None
        self._error: BaseException | None = None

    def offer(self, path: str, options: DecodeOptions, share: Share) -> None:
        """The reading thread is about to read ``path`` with ``options`` and ``share``."""
        self._read = (path, options, share)

    def help(self) -> None:
        """Decode the second half of what the read has not reached, if that is worth it; what
        goes wrong goes to the reading thread (:meth:`outcome`)."""
        if self._read is None:
            return
        path, options, share = self._read
        at, end = share.at, share.end  # not the file's size now: it may be growing
        if at is None or end - at.offset < MIN_SHARED_BYTES:  # (end 0: it cannot be cut)
            return
        if share.seconds_left() < MIN_SHARED_SECONDS:
            return
        lookback_ns = round(options.duplicate_window_ms * 1_000_000)
        part = rest_after(path, at, at.offset + (end - at.offset) // 2, lookback_ns, end)
        if part is None or not share.cut(part.byte_range[0]):
            return
        try:
            unit = Unit(path, part, end - part.byte_range[0])
            self._outcome = (unit, decode_unit(unit, options))
        except BaseException as error:  # raised again in the reading thread
            self._error = error
            if not isinstance(error, Exception):
                raise
        finally:
            self._done.set()

    def outcome(self) -> tuple[Unit, Decoded]:
        """The part the helper cut off and what it decoded there (once it cut the read)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome


def decode_shared(
    entries: list[str | InputSummary],
    table: MessageTable,
    options: DecodeOptions,
    progress: Progress | None,
    helper: Helper,
) -> list[InputSummary] | None:
    """Decode the one capture file of ``entries`` into ``table``, with whatever part of it
    ``helper`` cuts off (:class:`Helper`); None when ``entries`` is not one file. The reader
    decodes as one pass does (TCP, SCTP and IP fragments as they come, nothing held for
    later); the helper's part puts off what needs earlier packets, and those calls are then
    made on the reader's decoder and duplicate filter, which stopped at the cut."""
    if len(entries) != 1 or not isinstance(entries[0], str):
        return None
    path = entries[0]
    size = _size(path)
    first = Part((0, sys.maxsize, 1), FIRST_RECORD, (0, 0, 1))
    share = Share()
    helper.offer(path, options, share)
    window = options.duplicate_window_ms
    copies = duplicate_filter(window) if window > 0 else None
    try:
        part_table, summary = options.decode(
            path,
            byte_range=first.byte_range,
            copies=copies,
            tick=None if progress is None else partial(_bytes_read, progress, size),
            share=share,
        )
    finally:
        cut = share.finish()
    whole = Unit(path, first, size)
    units, results = [whole], [(part_table, summary, list[Deferred]())]
    del part_table
    kept: dict[str, Kept] = {}
    if cut:
        unit, result = helper.outcome()
        units.append(unit)
        results.append(result)
        if share.kept is not None:  # else the read failed after the cut
            kept[path] = Kept(share.kept, copies)
    summaries = merge_units(units, results, table, options, kept=kept)
    if progress is not None:
        progress(size, size, summaries[path].packets)
    return [summaries[path]]


def _bytes_read(progress: Progress, size: int, summary: InputSummary) -> None:
    progress(min(summary.bytes, size), size, summary.packets)


def read_for_report(
    captures: Sequence[str | Path],
    ports: Iterable[int] | None,
    duplicate_window_ms: float,
    jobs: int | None,
    progress: Progress | None,
    helper: Helper | None = None,
) -> Capture:
    """A report's capture files read with its ``--jobs`` (:func:`read_capture`: worker
    processes from :data:`MIN_POOL_PROCESSES` on), and with a ``helper`` that may decode part
    of one file. Decoding threads (``threads=2``) are not used: on two idle cores they read
    the 1M-packet benchmark capture in 0.82-0.88 s against one thread's 1.21-1.37 s, but
    inside ``--report json --jobs 2``, whose one reading thread already overlaps the imports,
    they saved about 0.1 s there and cost 0.1 s on the RTP-heavy one (cut beforehand, its
    parts cost more than they save); a helper that joins once the imports are done cuts only
    what is still unread, and only when there is enough of it.
    The command line calls it in a thread before the analysis has loaded (:class:`SharedRead`:
    the main thread, its imports done, helps decode), the report API when it was not
    (:func:`sipstats.report.run_report`)."""
    return read_capture(
        captures,
        ports=ports,
        progress=progress,
        duplicate_window_ms=duplicate_window_ms,
        jobs=jobs,
        helper=helper,
    )


def can_fork() -> bool:
    """Whether this platform starts child processes by fork (they inherit every table)."""
    return "fork" in multiprocessing.get_all_start_methods()


class WorkerGone(RuntimeError):
    """A forked child ended without sending its result (killed, or it exited)."""


class Forked(Generic[T]):
    """``task()`` run in a forked child process from now on; :meth:`result` waits for it,
    :meth:`close` ends it when the result is no longer wanted.

    The child inherits what this process holds (the messages table, an analysis), so nothing
    is sent to it; only the result comes back, pickled. It holds no copy of this process's
    end of its own pipe nor of its elder siblings' (it closes them), so once this process is
    gone every child's send fails and it ends. It ignores Ctrl-C (SIGINT reaches the whole
    process group), even one that comes while it is being forked (SIGINT is blocked across
    the fork): this process decides. A Ctrl-C while this process forks is held until the
    fork is done, then raised once the child is ended; from then on the caller closes its
    children when it fails or is interrupted. Where there is no fork (Windows) the task runs
    here, when the result is asked for.
    """

    def __init__(self, task: Callable[[], T]) -> None:
        self._task = task
        self._process: multiprocessing.process.BaseProcess | None = None
        if not can_fork():
            return
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(task, send), daemon=True)
        try:
            with _ctrl_c_held() as interrupted:  # no KeyboardInterrupt between two steps
                try:
                    self._fork()
                finally:
                    send.close()  # the child's end: recv() sees EOF if it dies without a result
            if interrupted:  # a Ctrl-C came meanwhile: the child is not wanted
                raise KeyboardInterrupt
        except BaseException:  # no caller gets this object: its child is ended here, with
            self.close()  # Ctrl-C raised again (a second one can break a wait for a stuck child)
            raise

    def _fork(self) -> None:
        """The child started with SIGINT blocked (it unblocks it once it ignores it) and the
        collector frozen (the child's collections then leave the inherited objects' pages
        shared); both as they were again in this process, whatever raised. A freeze made
        before (the command's: :mod:`sipstats.cli.report`) is left as it is."""
        assert self._process is not None
        with _ctrl_c_blocked():
            thaw = not gc.get_freeze_count()
            if thaw:
                gc.freeze()
            try:
                _PARENT_ENDS.add(self._receive)  # the child closes its copy of it too
                self._process.start()
            finally:
                if thaw:
                    gc.unfreeze()

    def result(self) -> T:
        """The task's result; its exception raised here if it raised one, :class:`WorkerGone`
        if the child ended without one."""
        if self._process is None:
            return self._task()
        try:
            ok, value = self._receive.recv()  # before join: a large result fills the pipe
        except EOFError:
            ok, value = False, None
        except BaseException:  # interrupted here: the child's work is no longer wanted
            self.close()
            raise
        finally:
            self._closed()
            self._process.join()
        if ok:
            return value
        if isinstance(value, BaseException):
            raise value
        raise WorkerGone(
            f"a worker process ended without a result (exit code {self._process.exitcode})"
        )

    def close(self) -> None:
        """End the child if it still runs and reap it (a no-op once :meth:`result` returned)."""
        if self._process is None:
            return
        self._closed()
        if self._process.pid is None:  # never started: the fork failed
            return
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()

    def _closed(self) -> None:
        """This process's end of the pipe closed: no child forked from now on inherits it."""
        self._receive.close()
        _PARENT_ENDS.discard(self._receive)


@contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """Ctrl-C noted in the list instead of raised while the body runs, so that none comes
    between two of its steps: in the main thread under Python's default handler (no other
    thread raises KeyboardInterrupt; another handler is its installer's business)."""
    noted: list[int] = []
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield noted
        return
    signal.signal(signal.SIGINT, lambda signum, _frame: noted.append(signum))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def _ctrl_c_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread while the body forks: a child starts with it blocked
    and unblocks it once it ignores it (:func:`_ignore_ctrl_c`). A Ctrl-C that came
    meanwhile reaches this process's handler when the body is done."""
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in masked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _ignore_ctrl_c() -> None:
    """In a forked child: SIGINT ignored (Ctrl-C reaches the whole process group; the parent
    decides), then unblocked, so a Ctrl-C that came while it was forked is dropped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


#: This process's ends of the pipes of its :class:`Forked` children still running: each
#: child closes its copies, so that a child's send fails once this process is gone.
_PARENT_ENDS: Final[set[Connection]] = set()


def _child(task: Callable[[], object], send: Connection) -> None:
    """The child of :class:`Forked`: Ctrl-C ignored (:func:`_ignore_ctrl_c`), its copies of
    the parent's ends closed."""
    _ignore_ctrl_c()
    for end in list(_PARENT_ENDS):
        end.close()
    _PARENT_ENDS.clear()
    _send_result(task, send)


def _send_result(task: Callable[[], object], send: Connection) -> None:
    try:
        outcome: tuple[bool, object] = (True, task())
    except BaseException as error:  # every failure goes back to the parent
        outcome = (False, error)
    try:
        send.send(outcome)
    except OSError:  # the parent is gone (or closed its end): nobody wants the result
        pass
    except Exception as error:  # a result or an exception that does not pickle
        with suppress(OSError):  # the parent may be gone by now too
            send.send((False, RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        send.close()


class SharedRead:
    """``read(helper)`` (a report's capture read with a :class:`Helper`) run in a thread from
    now on (:class:`InThread`); :meth:`result` helps it, then waits for it."""

    def __init__(self, read: Callable[[Helper], Capture]) -> None:
        self._helper = Helper()
        self._thread = InThread(partial(read, self._helper))

    def result(self) -> Capture:
        """The capture read, handed over (:meth:`InThread.result`); this thread decodes part of
        it meanwhile if that is worth it (:meth:`Helper.help`)."""
        self._helper.help()
        return self._thread.result()


class InThread(Generic[T]):
    """``task()`` run in a daemon thread of this process from now on; :meth:`result` waits.

    What the task does without the GIL (the C SIP parser) overlaps what this thread does
    meanwhile (importing the analysis). Nothing is copied; a process that exits before asking
    for the result does not wait for it.
    """

    def __init__(self, task: Callable[[], T]) -> None:
        self._outcome: list[tuple[bool, T | BaseException]] = []
        self._thread = threading.Thread(target=self._run, args=(task,), daemon=True)
        self._thread.start()

    def _run(self, task: Callable[[], T]) -> None:
        try:
            self._outcome.append((True, task()))
        except BaseException as error:  # raised again in the thread that asks
            self._outcome.append((False, error))

    def result(self) -> T:
        """The task's result, handed over (asked for once: this object keeps no reference to
        it, so the caller alone decides how long it lives); its exception raised here if it
        raised one."""
        self._thread.join()
        ok, value = self._outcome.pop()
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]


def fork_map(task: Callable[[int], T], count: int) -> list[T]:
    """``[task(0), ..., task(count - 1)]``: ``task(0)`` in this process, the others each in a
    forked child at the same time (:class:`Forked`)."""
    if count < 1:
        return []
    children: list[Forked[T]] = []
    try:
        children.extend(Forked(partial(task, k)) for k in range(1, count))
        first = task(0)
        return [first, *(child.result() for child in children)]
    finally:
        for child in children:  # ended if this process failed or was interrupted first
            child.close()
