"""The ``sipstats`` program as a process (:func:`sipstats.cli.run`): it ends without the
interpreter's teardown once the atexit functions ran and its output is flushed, keeps the
exit status, falls back to the normal exit while a thread that is not a daemon runs, a
profiler follows it, the command ends with a message or its output cannot be flushed, and
keeps numpy's OpenBLAS to one thread unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: A program around ``run()``: ``torn down`` is written when the interpreter frees
#: ``__main__``'s objects; ``atexit: N`` by an atexit function, with OpenBLAS's setting.
PROGRAM = """
import atexit, os, sys, threading, time
from sipstats.cli import run

class Loud:
    def __del__(self, write=os.write):
        write(1, b"torn down\\n")

loud = Loud()
atexit.register(lambda: print("atexit:", os.environ.get("OPENBLAS_NUM_THREADS")))
def until_exit():
    while threading.main_thread().is_alive():  # the normal exit stops the main thread first
        time.sleep(0.01)

if sys.argv[1] == "thread":
    threading.Thread(target=until_exit).start()
if sys.argv[1] == "message":  # a command that ends with a message, not a status
    sys.modules["sipstats.cli"].main = lambda **_: sys.exit("no status")
sys.argv = ["sipstats", *sys.argv[2:]]
run()
"""


#: A program around ``run()`` that says at exit whether the collector is frozen.
FROZEN_AT_EXIT = """
import atexit, gc, sys
from sipstats.cli import run

atexit.register(lambda: print("frozen:", gc.get_freeze_count() > 0))
sys.argv = ["sipstats", *sys.argv[1:]]
run()
"""


#: A program around ``run()`` that says at exit the most objects a young collection walked.
YOUNG_WALKED = """
import atexit, gc, sys
from sipstats.cli import run

walked = [0]

def young(phase, info):
    if phase == "start" and info["generation"] < 2:
        held = sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1))
        walked[0] = max(walked[0], held)

gc.callbacks.append(young)
atexit.register(lambda: print("walked:", walked[0]))
sys.argv = ["sipstats", *sys.argv[1:]]
run()
"""


#: A program around ``run()`` that says at exit how many collections ran while the HTML
#: renderer's modules (Jinja2, matplotlib) were being imported, and whether they were.
IMPORT_COLLECTED = """
import atexit, gc, importlib.util, sys
from sipstats.cli import run

RENDERER = ("sipstats.render.html", "sipstats.render.plots")
importing = []
during = [0]

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name not in RENDERER:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        sys.meta_path.insert(0, self)
        load = spec.loader.exec_module

        def exec_module(module):
            importing.append(name)
            try:
                load(module)
            finally:
                importing.remove(name)

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Watch())

def collecting(phase, info):
    during[0] += phase == "start" and bool(importing)

gc.callbacks.append(collecting)
atexit.register(lambda: print("during:", during[0], all(n in sys.modules for n in RENDERER)))
sys.argv = ["sipstats", *sys.argv[1:]]
run()
"""


def _program(
    *args: str, stdout: int = subprocess.PIPE, **env: str
) -> subprocess.CompletedProcess[str]:
    return _python("-c", PROGRAM, *args, stdout=stdout, **env)


def _python(
    *args: str, stdout: int = subprocess.PIPE, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    return subprocess.run(
        [sys.executable, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **env},
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("args", "status"), [(("codes", "486"), 0), (("codes", "7xx"), 2)])
def test_it_ends_without_teardown_after_atexit_and_output(
    args: tuple[str, ...], status: int
) -> None:
    done = _program("alone", *args)
    assert done.returncode == status, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "atexit: 1"
    assert "torn down" not in lines
    if status == 0:
        assert lines[0] == "486 Busy Here"


def test_a_thread_still_running_gets_the_normal_exit() -> None:
    done = _program("thread", "codes", "486")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["atexit: 1", "torn down"]


def test_openblas_threads_given_are_kept() -> None:
    done = _program("alone", "codes", "486", OPENBLAS_NUM_THREADS="2")
    assert done.stdout.splitlines()[-1] == "atexit: 2"


def test_a_profiler_around_the_program_still_writes_its_results(tmp_path: Path) -> None:
    profile = tmp_path / "sipstats.prof"
    done = _python("-m", "cProfile", "-o", str(profile), "-m", "sipstats", "codes", "486")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("486 Busy Here")
    assert profile.stat().st_size > 0


def test_a_message_instead_of_a_status_gets_the_normal_exit() -> None:
    done = _program("message")
    assert (done.returncode, done.stderr) == (1, "no status\n")
    assert done.stdout.splitlines()[-2:] == ["atexit: 1", "torn down"]


def test_output_that_cannot_be_flushed_gets_the_normal_exit() -> None:
    """Standard output's reader has gone: the atexit line, still in the buffer, cannot be
    flushed, and the normal exit tears down and reports it as for any program (status 120)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = _program("alone", "codes", "7xx", stdout=write_end, PYTHONUNBUFFERED="")
    finally:
        os.close(write_end)
    assert done.returncode == 120, done.stderr
    before_teardown, torn_down, _ = done.stderr.partition("Loud.__del__")
    assert torn_down  # its line could not be written either
    assert "BrokenPipeError" in before_teardown
    assert "Traceback" not in before_teardown


@pytest.mark.parametrize("report", ["json", "html"])
def test_a_report_freezes_the_collector_once_its_analysis_is_made(
    tmp_path: Path, report: str
) -> None:
    """The analysis lives until the program ends, so the collections while the reports are
    written leave its objects out (gc.freeze); a command without an analysis does not freeze,
    and neither does :func:`sipstats.cli.main` in a caller's process (tests/test_render_html)."""
    capture = str(ROOT / "sample_pcaps" / "basic.pcap")
    done = _python("-c", FROZEN_AT_EXIT, capture, "--report", report, "-o", str(tmp_path), "-q")
    assert (done.returncode, done.stdout) == (0, "frozen: True\n"), done.stderr
    done = _python("-c", FROZEN_AT_EXIT, "codes", "486")
    assert done.stdout.splitlines()[-1] == "frozen: False"


@pytest.mark.parametrize("report", ["json", "html"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_young_collections_leave_out_what_imports_made(
    tmp_path: Path, report: str, jobs: str
) -> None:
    """Start-up imports pandas, numpy and pyarrow with the collector paused, and so does the
    HTML report matplotlib (at start-up, or once the analysis is made with ``--jobs`` 1);
    their objects then leave the young generations at once, so no young collection walks
    them (there are more than 50,000 of each)."""
    capture = str(ROOT / "sample_pcaps" / "basic.pcap")
    args = (capture, "--report", report, "-o", str(tmp_path), "-q", "--jobs", jobs)
    done = _python("-c", YOUNG_WALKED, *args)
    assert done.returncode == 0, done.stderr
    walked = int(done.stdout.removeprefix("walked:"))
    assert 0 < walked < 20_000


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_no_collection_runs_while_the_renderers_are_imported(tmp_path: Path, jobs: str) -> None:
    """matplotlib and Jinja2 are imported with the collector paused: at start-up while the
    capture is read (``--jobs`` 2), else once the analysis is made (``--jobs`` 1)."""
    capture = str(ROOT / "sample_pcaps" / "basic.pcap")
    args = (capture, "--report", "html", "-o", str(tmp_path), "-q", "--jobs", jobs)
    done = _python("-c", IMPORT_COLLECTED, *args)
    assert (done.returncode, done.stdout) == (0, "during: 0 True\n"), done.stderr
