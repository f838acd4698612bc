"""Many rotated files: the local engine, a Dask LocalCluster, and ingest + report from Parquet.

    python benchmarks/bench_many.py [CAPTURE] [--files 20] [--workers 2]

The local engine runs twice: decoding with one process (``--jobs 1``) and with one per core.

Without CAPTURE the 1,000,000-packet benchmark capture is generated first (``make_capture.py``).
It is cut into ``--files`` rotated files (``editcap -c``), and each way of getting the JSON
report of all of them runs in its own process, which prints its wall time and its own peak
memory (``getrusage(RUSAGE_SELF)``: a Dask client's, without its workers'). Every run must
give the same report (timings aside); the script checks it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Run inside the child: one way of producing the report, timed, with the process's peak RSS.
CHILD = r"""
import json, resource, sys, time
from pathlib import Path

how, folder, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
import sipstats
from sipstats.engines.dask_cluster import analyze_on_dask

t0 = time.perf_counter()
steps = {}
if how == "local":
    jobs = int(sys.argv[4]) or None  # 0: one process per core
    analysis = sipstats.analyze(sipstats.read_capture(folder, jobs=jobs))
elif how == "dask":
    analysis = analyze_on_dask(folder, workers=int(sys.argv[4]))
elif how == "ingest":
    sipstats.ingest(folder, work / "dataset")
    steps["ingest_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    analysis = sipstats.analyze(sipstats.read_dataset(work / "dataset"))
    steps["report_s"] = time.perf_counter() - t1
report = analysis.to_dict()
wall = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
name = "-".join([how, *sys.argv[4:]]) + ".json"
(work / name).write_text(json.dumps(report, sort_keys=True))
messages = report["summary"]["sip_messages"]
print(json.dumps({"wall_s": wall, "peak_mib": peak_kb / 1024, "messages": messages, **steps}))
"""


def rotate(capture: Path, folder: Path, files: int) -> list[Path]:
    """``capture`` cut into ``files`` files of equal packet counts, as ``tcpdump -C`` would."""
    info = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True)
    packets = int(info.stdout.split("Number of packets:")[1].split()[0])
    per_file = -(-packets // files)
    subprocess.run(["editcap", "-c", str(per_file), str(capture), str(folder / "rot.pcap")])
    return sorted(folder.glob("rot_*.pcap"))


def run(how: str, folder: Path, work: Path, *extra: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, how, str(folder), str(work), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{how} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", type=Path)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("editcap") is None or shutil.which("capinfos") is None:
        raise SystemExit("editcap and capinfos are needed (apt-get install wireshark-common)")
    capture = args.capture or HERE / "data" / "bench-1000000.pcap"
    if not capture.exists():
        capture.parent.mkdir(exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(capture)], check=True)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        folder = work / "rotated"
        folder.mkdir()
        files = rotate(capture, folder, args.files)
        size = sum(path.stat().st_size for path in files) / 1e6
        print(f"{capture.name}: {len(files)} rotated files, {size:,.1f} MB")
        results = {
            "local engine, --jobs 1": run("local", folder, work, "1"),
            f"local engine, --jobs {os.cpu_count()} (all cores)": run("local", folder, work, "0"),
            f"dask engine, LocalCluster of {args.workers} workers": run(
                "dask", folder, work, str(args.workers)
            ),
            "ingest (one process per core), then report from the dataset": run(
                "ingest", folder, work
            ),
        }
        reports = {path.name: path.read_text() for path in sorted(work.glob("*.json"))}
        differ = [name for name, text in reports.items() if text != reports["local-1.json"]]
    for name, result in results.items():
        steps = "".join(
            f", {key.removesuffix('_s')} {value:.2f} s"
            for key, value in result.items()
            if key.endswith("_s") and key != "wall_s"
        )
        print(
            f"{name:62s} {result['wall_s']:7.2f} s  client peak {result['peak_mib']:7.0f} MiB"
            f"  ({int(result['messages']):,} SIP messages{steps})"
        )
    print(f"JSON reports identical to the local --jobs 1 one: {not differ} {differ or ''}")
    print(
        f"machine: {os.cpu_count()} cores, load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )


if __name__ == "__main__":
    main()
