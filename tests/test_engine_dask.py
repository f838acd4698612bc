"""The Dask engine gives the local engine's report: a real LocalCluster and a real scheduler.

Rotated files of a SIPp capture (calls cross the cuts) are decoded on worker processes,
shuffled by Call-ID and analysed per partition; the JSON report must equal the local one.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from scapy.packet import Packet

import sipstats
from sipstats import workers
from sipstats.analyze import BuiltOnRead, assemble
from sipstats.analyze.dialogs import analyze_dialogs, merge, reported
from sipstats.analyze.tally import combine, tally
from sipstats.capture import pcap
from sipstats.cli import main
from sipstats.dataset import ingest, read_dataset
from sipstats.drill.flow import sample_calls
from sipstats.engines import dask_cluster
from sipstats.engines.dask_cluster import EngineError, analyze_on_dask
from sipstats.errors import ReportError
from sipstats.select import filter_capture
from tests.conftest import SAMPLES
from tests.rotated import rotated_outage
from tests.sipfactory import UAC, UAS, sip_request, sip_response, tcp, udp, write_pcap
from tests.test_b2bua import b2bua_capture


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rotated")
    rotated_outage(folder)
    return folder


@pytest.mark.parametrize(
    ("name", "parts"),
    [("outage.pcap", 5), ("mixed.pcap", 3), ("register.pcap", 4), ("tcp.pcap", 2)],
)
def test_call_id_partitions_merge_into_the_whole_analysis(name: str, parts: int) -> None:
    """What the engine does on workers, done here in one process: same report."""
    capture = sipstats.read_capture(SAMPLES / name)
    m = capture.messages
    bucket = pd.util.hash_array(m["call_id"].astype("str").to_numpy(dtype=object)) % parts
    pieces = [
        analyze_dialogs(m[bucket == k].reset_index(drop=True), capture_end=m["ts"].max())
        for k in range(parts)
    ]
    merged = merge([reported(piece) for piece in pieces], [s.file for s in capture.inputs])
    expected = sipstats.analyze(capture)
    got = assemble(capture, merged, combine([tally(piece.messages) for piece in pieces]))
    assert got.to_dict() == expected.to_dict()
    pd.testing.assert_frame_equal(got.calls.astype("str"), expected.calls.astype("str"))
    pd.testing.assert_frame_equal(
        got.transactions.astype("str"), expected.transactions.astype("str")
    )


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize(
    ("since", "until", "peer"),
    [
        (None, None, None),
        (pd.Timedelta("10s"), pd.Timedelta("30s"), "127.0.75.10"),
    ],
)
def test_local_cluster_gives_the_local_report(
    rotated: Path, local_cluster: str, since: object, until: object, peer: str | None
) -> None:
    capture = sipstats.read_capture(rotated)
    calls_across_files = capture.messages.groupby("call_id", observed=True)["file"].nunique()
    assert (calls_across_files > 1).any()
    expected = sipstats.analyze(filter_capture(capture, since, until, peer))  # type: ignore[arg-type]
    got = analyze_on_dask(
        rotated,
        scheduler=local_cluster,
        since=since,  # type: ignore[arg-type]
        until=until,  # type: ignore[arg-type]
        peer=peer,
        partitions=3,
    )
    assert json.dumps(got.to_dict(), sort_keys=True) == json.dumps(
        expected.to_dict(), sort_keys=True
    )
    assert isinstance(vars(got)["transactions"], BuiltOnRead)  # the report built no key
    pd.testing.assert_frame_equal(
        got.transactions.astype("str"), expected.transactions.astype("str")
    )
    pd.testing.assert_frame_equal(got.calls.astype("str"), expected.calls.astype("str"))
    pd.testing.assert_frame_equal(got.retries.astype("str"), expected.retries.astype("str"))
    pd.testing.assert_frame_equal(
        got.report_messages.astype("str"), expected.report_messages.astype("str")
    )
    # The client got the report's rows and counts, not the messages: those stay on the cluster.
    assert got.messages is None
    assert expected.messages is not None
    assert got.tally.messages == len(expected.messages)
    assert len(got.report_messages) < 0.75 * got.tally.messages
    samples = {call_id for _, ids in sample_calls(got.calls) for call_id in ids}
    assert samples == set(got.sample_messages["call_id"].astype("str"))
    for call_id in samples:  # the report's ladders: every message of those calls is there
        assert got.flow(call_id) == expected.flow(call_id)
    other = next(c for c in got.calls["call_id"].astype("str") if c not in samples)
    with pytest.raises(ReportError, match="Dask engine keeps them on the cluster"):
        got.flow(other)


@pytest.mark.parametrize(
    ("since", "until", "peer"),
    [(None, None, None), (pd.Timedelta("10s"), pd.Timedelta("30s"), "127.0.75.10")],
)
def test_a_dataset_is_read_on_the_workers(
    rotated: Path,
    local_cluster: str,
    tmp_path: Path,
    since: pd.Timedelta | None,
    until: pd.Timedelta | None,
    peer: str | None,
) -> None:
    """The workers read the stored Parquet files (window and peer pushed down): the report is
    the local engine's on the dataset."""
    ingest(rotated, tmp_path / "ds", jobs=1)
    expected = sipstats.analyze(read_dataset(tmp_path / "ds", since=since, until=until, peer=peer))
    got = analyze_on_dask(
        tmp_path / "ds", scheduler=local_cluster, since=since, until=until, peer=peer
    )
    assert got.to_dict() == expected.to_dict()
    assert got.messages is None


@pytest.mark.parametrize(
    "names",
    [("basic.pcap", "mixed.pcap"), ("basic.pcap", "mixed.pcap", "register.pcap")],
)
def test_a_dataset_of_inputs_with_a_column_empty_in_one(
    names: tuple[str, ...], local_cluster: str, tmp_path: Path
) -> None:
    """basic.pcap has no Retry-After, the others have: each input's Parquet files, read on
    a worker, join the others' in the Call-ID partitions, and the JSON report is the local
    engine's, byte for byte. (The rotated files of one capture all hold the same columns.)"""
    ingest([SAMPLES / name for name in names], tmp_path / "ds", jobs=1)
    local = cli(tmp_path / "ds", "--report", "json", "-o", tmp_path / "local.json")
    on_dask = cli(
        *(tmp_path / "ds", "--report", "json", "-o", tmp_path / "dask.json"),
        *("--engine", "dask", "--scheduler", local_cluster),
    )
    assert local.exit_code == on_dask.exit_code == 0, on_dask.output
    assert (tmp_path / "dask.json").read_bytes() == (tmp_path / "local.json").read_bytes()


def straddling_packets() -> list[Packet]:
    """A call whose INVITE and 200 sit on both sides of the middle record boundary, and a TCP
    message whose two segments do."""
    dialog = {"call_id": "straddle@test", "branch": "z9hG4bK-s", "cseq": 1}
    ok = sip_response(200, "OK", cseq_method="INVITE", to_tag="t", **dialog)
    stream = sip_request("OPTIONS", call_id="tcp-straddle", cseq=1, branch="z9hG4bK-ts")
    return [
        udp(sip_request("INVITE", **dialog), 0.0),
        tcp(stream[:100], 0.1, seq=1000),
        tcp(stream[100:], 0.2, seq=1100),
        udp(ok, 0.3, UAS, UAC),
    ]


def test_a_large_capture_is_decoded_in_byte_ranges_on_several_workers(
    local_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A classic pcap cut at a record boundary that a call and a TCP stream straddle, its two
    parts decoded on the workers (the stream's put-off segments made in order on one): the
    messages, summary and report of one pass."""
    if pcap.c_walk() is None:
        pytest.skip("cutting a file needs the C walk (sipstats.capture._pcapscan)")
    capture = write_pcap(tmp_path / "straddle.pcap", straddling_packets())
    monkeypatch.setattr(workers, "MIN_PART_BYTES", 256)  # the cut is planned on the client
    planned: list[list[workers.Unit]] = []

    def recorded(*args: object) -> list[workers.Unit]:
        planned.append(workers.plan(*args))  # type: ignore[arg-type]
        return planned[-1]

    monkeypatch.setattr(dask_cluster, "plan", recorded)
    got = analyze_on_dask(capture, scheduler=local_cluster)
    (units,) = planned
    assert [unit.part.byte_range[2] for unit in units] == [1, 3]  # type: ignore[union-attr]
    whole = sipstats.read_capture(capture, jobs=1)
    assert whole.messages["frame"].tolist() == [1, 2, 4]  # the TCP message ends in record 3
    assert got.to_dict() == sipstats.analyze(whole).to_dict()
    assert got.capture.inputs == whole.inputs
    assert got.calls["call_id"].astype("str").tolist() == ["straddle@test"]


def test_cli_engine_dask_runs_its_own_local_cluster(rotated: Path, tmp_path: Path) -> None:
    """Every report renders from what the client holds (no messages): as the local one."""
    pytest.importorskip("distributed")
    formats = ["--report", "json", "--report", "md", "--report", "html", "--report", "text"]
    local = cli(rotated, *formats, "-o", tmp_path / "local")
    on_dask = cli(rotated, *formats, "-o", tmp_path / "dask", "--engine", "dask")
    assert local.exit_code == on_dask.exit_code == 0, on_dask.output
    written = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert len(written) == 4
    for name in written:
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "local" / name).read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_b2bua_legs_in_other_partitions_and_on_a_cluster_link_as_locally(
    tmp_path: Path, local_cluster: str
) -> None:
    """Linking crosses Call-IDs: legs hashed into different partitions, or analysed on
    different workers, are linked after the merge as one process links them, and the
    report's sample ladders hold every leg."""
    pcap = b2bua_capture(tmp_path / "b2bua.pcap")
    capture = sipstats.read_capture(pcap)
    expected = sipstats.analyze(capture)
    assert expected.calls["linked_to"].notna().sum() == 2
    m = capture.messages
    pieces = [  # one Call-ID per partition
        analyze_dialogs(
            m[m["call_id"] == call_id].reset_index(drop=True), capture_end=m["ts"].max()
        )
        for call_id in m["call_id"].unique()
    ]
    merged = merge([reported(piece) for piece in pieces], [s.file for s in capture.inputs])
    in_one = assemble(capture, merged, combine([tally(piece.messages) for piece in pieces]))
    on_cluster = analyze_on_dask(pcap, scheduler=local_cluster, partitions=4)
    for got in (in_one, on_cluster):
        assert got.to_dict() == expected.to_dict()
        pd.testing.assert_frame_equal(got.calls.astype("str"), expected.calls.astype("str"))
    assert on_cluster.sample_messages is not None
    held = set(on_cluster.sample_messages["call_id"].astype("str"))
    assert {"a-leg", "b-leg"} <= held  # both legs of the busy sample
    assert "b-leg" in on_cluster.flow("a-leg").call_ids


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, stopped by their PIDs."""
    distributed = pytest.importorskip("distributed")
    dask = Path(sys.executable).with_name("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    common = ["--no-dashboard"]
    logs = [(tmp_path / f"dask-{i}.log").open("w") for i in range(3)]
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", port, *common],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        for i in (1, 2):
            worker = [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1"]
            processes.append(
                subprocess.Popen([*worker, *common], stdout=logs[i], stderr=subprocess.STDOUT)
            )
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + 30
        for process in processes:
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_scheduler_and_workers_started_by_hand(
    rotated: Path, tmp_path: Path, dask_processes: str
) -> None:
    """``--scheduler`` sends the work to an existing cluster, captures or a dataset (its
    Parquet files read by the workers); the report is the local one."""
    ingest(rotated, tmp_path / "ds", jobs=1)
    for source in (rotated, tmp_path / "ds"):
        command = [sys.executable, "-m", "sipstats", str(source), "--report", "json"]
        local = subprocess.run([*command, "-o", str(tmp_path / "local.json")], check=True)
        on_dask = ["--engine", "dask", "--scheduler", dask_processes]
        remote = subprocess.run(
            [*command, "-o", str(tmp_path / "dask.json"), *on_dask],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert local.returncode == remote.returncode == 0, remote.stderr
        assert json.loads((tmp_path / "dask.json").read_text()) == json.loads(
            (tmp_path / "local.json").read_text()
        )


def test_without_distributed_the_extra_is_named(
    rotated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(EngineError, match=r"pip install 'sipstats\[dask\]'"):
        analyze_on_dask(rotated)
    result = cli(rotated, "--engine", "dask")
    assert result.exit_code == 2
    assert "sipstats[dask]" in result.output


def test_scheduler_needs_the_dask_engine(rotated: Path) -> None:
    result = cli(rotated, "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 2
    assert "--scheduler needs --engine dask" in result.output
