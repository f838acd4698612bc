"""Time tshark and sipstats on the same capture, in one run, and print the ratios.

    python benchmarks/bench.py [CAPTURE] [--packets 1000000] [--noise 0.30] [--repeat 3]

Without CAPTURE a deterministic capture is generated first (``make_capture.py``, ``--noise``
its share of RTP/RTCP) under ``benchmarks/data/``. Each tool runs in its own process; wall
time comes from the clock and peak memory and CPU time from that process's own rusage
(``os.wait4``), so neither measurement sees the other; CPU time is the steadier figure on a
shared machine. The tools run in alternating rounds and each one's fastest round is reported.

First comes what a user sees: the whole command (``sipstats F --report json`` and ``html``,
imports included, with ``--jobs 1`` and with one process per core) against tshark; its CPU
time includes the worker processes (``wait4`` counts the descendants it reaped) and its peak
RSS is the largest process's. Then the stages, in-process: decoding alone (``read_capture``)
and decoding + analysis, and the memory per SIP message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Run inside the child: decode (and analyse), report counts, timings and resident memory.
CHILD = r"""
import json, sys, time
from pathlib import Path

def rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

# Imports are not part of the in-process measurement: read_capture loads pandas (and pyarrow,
# when installed) for its table on first use, ~90 MiB that would otherwise count as growth per
# SIP message and ~0.3 s as decoding. A decode-only process loads only what decoding needs.
import pandas  # noqa: F401
from sipstats.messages import read_capture
if sys.argv[2] == "analyze":
    from sipstats.analyze import analyze
    import matplotlib  # noqa: F401
baseline = rss_kb()
t0, c0 = time.perf_counter(), time.process_time()
capture = read_capture(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
after_decode = rss_kb()
analysis = analyze(capture) if sys.argv[2] == "analyze" else None
t2 = time.perf_counter()
print(json.dumps({
    "packets": capture.packets,
    "messages": len(capture.messages),
    "decode_s": t1 - t0,
    "decode_cpu_s": c1 - c0,
    "analyze_s": t2 - t1,
    "baseline_kb": baseline,
    "after_decode_kb": after_decode,
    "table_bytes": int(capture.messages.memory_usage(deep=True).sum()),
    "calls": None if analysis is None else len(analysis.calls),
}))
"""


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    """User + system CPU time of the process: steadier than wall time on a shared machine."""
    max_rss_kb: int
    stdout: str


def measure(argv: list[str]) -> Run:
    """Run ``argv`` to completion; its wall time, CPU time and its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} exited with {proc.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout)


def whole_commands(capture: Path, out: Path) -> dict[str, list[str]]:
    """The command lines a user runs, by the name the table shows; reports go into ``out``.
    Each format with one process (``--jobs 1``) and with the default, one per core."""
    sipstats = [sys.executable, "-m", "sipstats", str(capture), "-q"]
    cores = os.cpu_count() or 1
    return {
        f"sipstats --report {fmt} -j {jobs}": [
            *sipstats,
            *("--jobs", str(jobs)),
            *("--report", fmt, "-o", str(out / f"report.{fmt}")),
        ]
        for fmt in ("json", "html")
        for jobs in dict.fromkeys((1, cores))
    }


def tshark_messages(sipstat: str) -> int:
    for line in sipstat.splitlines():
        if line.startswith("Number of SIP messages:"):
            return int(line.split(":")[1])
    return 0


def compile_package() -> None:
    """Byte-compile sipstats as an installation does: an editable install run with
    ``PYTHONDONTWRITEBYTECODE`` set compiles every changed module again on every run, which
    costs the whole command about 0.15 s of CPU (measured on the RTP-heavy capture)."""
    import compileall

    import sipstats

    compileall.compile_dir(Path(sipstats.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.30, help="RTP/RTCP share when generating")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the fastest is shown")
    args = parser.parse_args()

    capture = args.capture
    if capture is None:
        stem = "bench" if args.noise == 0.30 else f"bench-noise{args.noise:g}"
        capture = HERE / "data" / f"{stem}-{args.packets}.pcap"
        if not capture.exists():
            capture.parent.mkdir(exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "make_capture.py"),
                    str(capture),
                    "--packets",
                    str(args.packets),
                    "--noise",
                    str(args.noise),
                ],
                check=True,
            )
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed (apt-get install tshark)")

    compile_package()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        rounds = run_rounds(capture, tshark, Path(out), args.repeat)
    print_results(capture, rounds, args.repeat)
    print(
        f"machine: {os.cpu_count()} cores, load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after; {installed()}"
    )


def installed() -> str:
    """The versions that change the figures: pandas loads pyarrow at start-up when it is
    installed (the ``dask`` and ``test`` extras), which costs the command start-up time and
    about 30 MiB of memory that a plain ``pip install sipstats`` does not pay."""
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    found = ", ".join(f"{name} {version(name)}" for name in ("pandas", "numpy", "pyarrow"))
    return f"Python {sys.version.split()[0]}, {found}"


def run_rounds(capture: Path, tshark: str, out: Path, repeat: int) -> list[tuple[Run, ...]]:
    """Rounds alternate the tools, so that a slow spell of a shared machine hits them all."""
    commands = whole_commands(capture, out)
    return [
        (
            measure([tshark, "-r", str(capture), "-q", "-z", "sip,stat"]),
            *(measure(argv) for argv in commands.values()),
            measure([sys.executable, "-c", CHILD, str(capture), "decode"]),
            measure([sys.executable, "-c", CHILD, str(capture), "analyze"]),
        )
        for _ in range(repeat)
    ]


def print_results(capture: Path, rounds: list[tuple[Run, ...]], repeat: int) -> None:
    """Each tool's fastest round: the whole command first, then the stages and the memory."""
    size_mb = capture.stat().st_size / 1e6
    commands = whole_commands(capture, Path())
    t, *whole, decode, full = (
        min(runs, key=lambda run: run.wall_s) for runs in zip(*rounds, strict=True)
    )
    d = min((json.loads(r[-2].stdout) for r in rounds), key=lambda child: child["decode_s"])
    f = json.loads(full.stdout)
    packets = d["packets"]

    def row(name: str, seconds: float, rss_kb: int, cpu_s: float | None = None) -> str:
        cpu = "" if cpu_s is None else f"{cpu_s:>8.2f} s{t.cpu_s / cpu_s:>6.2f}x"
        return (
            f"{name:<32}{seconds:>9.2f} s{packets / seconds:>12,.0f} pkt/s"
            f"{size_mb / seconds:>9.1f} MB/s{rss_kb / 1024:>9.0f} MiB"
            f"{t.wall_s / seconds:>8.2f}x{cpu}"
        )

    print(f"capture: {capture} ({packets:,} packets, {size_mb:.1f} MB), best of {repeat}")
    print(f"SIP messages: tshark {tshark_messages(t.stdout):,}, sipstats {d['messages']:,}")
    print(
        f"{'':<32}{'wall':>11}{'rate':>18}{'':>14}{'peak RSS':>13}{'vs tshark':>10}"
        f"{'CPU':>10}{'vs tshark':>10}"
    )
    print(row("tshark -z sip,stat", t.wall_s, t.max_rss_kb, t.cpu_s))
    for name, run in zip(commands, whole, strict=True):
        print(row(name, run.wall_s, run.max_rss_kb, run.cpu_s))
    print("stages:")
    print(row("sipstats decode (process)", decode.wall_s, decode.max_rss_kb, decode.cpu_s))
    print(row("sipstats decode (in-proc)", d["decode_s"], decode.max_rss_kb, d["decode_cpu_s"]))
    print(row("sipstats decode+analyze", full.wall_s, full.max_rss_kb, full.cpu_s))
    grown_kb = d["after_decode_kb"] - d["baseline_kb"]
    print(
        f"analysis {f['analyze_s']:.2f} s vs decoding {f['decode_s']:.2f} s "
        f"({f['analyze_s'] / f['decode_s']:.0%}; {f['calls']:,} calls)"
    )
    budget_kb = 100 * 1024 + 0.3 * d["messages"]
    peak_kb = max(run.max_rss_kb for run in whole)
    print(
        f"peak RSS of the whole command {peak_kb / 1024:,.0f} MiB; budget 100 MiB + 0.3 KiB "
        f"per SIP message = {budget_kb / 1024:,.0f} MiB"
    )
    print(
        f"memory: tshark {t.max_rss_kb * 1024 / packets:,.0f} B/packet; sipstats table "
        f"{d['table_bytes'] / max(d['messages'], 1):,.0f} B/message, process growth "
        f"{grown_kb * 1024 / max(d['messages'], 1):,.0f} B/message "
        f"(peak {decode.max_rss_kb / 1024:,.0f} MiB, "
        f"after imports {d['baseline_kb'] / 1024:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
