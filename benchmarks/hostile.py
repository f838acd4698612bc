"""Run the CLI on every crafted hostile input of issue 13 and print exit code, peak memory, time.

    python benchmarks/hostile.py [--sipstats PATH] [--small] [--keep DIR] [--only TEXT]

The inputs come from ``tests/hostile_inputs.py`` at the size the issue measured (``--small``:
the tests' size). Each runs as ``sipstats FILE --report text -o OUT --no-progress`` in its own
process; peak RSS is that process's own rusage (``os.wait4``), time is the wall clock.
``--sipstats`` runs another install (e.g. an older checkout's ``.venv/bin/sipstats``) on the
same files, which is how the before/after table of the closing note was made. The goal: every
input under 250 MB peak RSS and 30 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.hostile_inputs import inputs  # noqa: E402

RSS_GOAL_MB = 250
TIME_GOAL_S = 30


def run_one(sipstats: str, path: Path, out: Path, timeout: float) -> tuple[int, float, float, str]:
    """(exit code or -9 on timeout, peak RSS in MB, seconds, last stderr line) of one run."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sipstats, str(path), "--report", "text", "-o", str(out), "--no-progress"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    code = os.waitstatus_to_exitcode(status)
    return code, usage.ru_maxrss / 1024, seconds, lines[-1][:120] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sipstats", default=str(Path(sys.executable).parent / "sipstats"))
    parser.add_argument("--small", action="store_true", help="the tests' sizes")
    parser.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", default="", help="only the inputs whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print("| input | bytes | exit | peak RSS MB | seconds | last stderr line |")
        print("|---|---:|---:|---:|---:|---|")
        within = True
        for name, data in inputs(full=not args.small):
            if args.only not in name:
                continue
            path = folder / name
            path.write_bytes(data)
            code, rss, seconds, last = run_one(
                args.sipstats, path, Path(scratch) / "report.txt", args.timeout
            )
            within &= rss < RSS_GOAL_MB and seconds < TIME_GOAL_S
            last = last.replace("|", "\\|").replace(str(folder) + "/", "")
            print(f"| {name} | {len(data):,} | {code} | {rss:.0f} | {seconds:.1f} | {last} |")
    print(f"\nall under {RSS_GOAL_MB} MB and {TIME_GOAL_S} s: {within}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
