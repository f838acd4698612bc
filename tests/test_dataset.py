"""`sipstats ingest` and `read_dataset`: decode once into Parquet, report on it like a capture."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import sipstats
from sipstats import dataset as dataset_module
from sipstats.capture.framing import MAX_NUMBER
from sipstats.cli import main
from sipstats.dataset import (
    DatasetError,
    ingest,
    is_dataset,
    read_dataset,
    read_parts,
    stored_parts,
)
from sipstats.messages import decode_file
from sipstats.select import filter_capture
from tests.conftest import ROOT, SAMPLES, children_left
from tests.rotated import rotated_outage
from tests.sipfactory import T0, sip_request, udp, write_pcap
from tests.test_capture_duplicates import any_interface_packets

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rotated")
    rotated_outage(folder)
    return folder


@pytest.fixture(scope="module")
def stored(rotated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("stored") / "dataset"
    ingest(rotated, target, jobs=2)
    return target


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_calls_cross_the_rotated_files(rotated: Path) -> None:
    messages = sipstats.read_capture(rotated).messages
    files_per_call = messages.groupby("call_id", observed=True)["file"].nunique()
    assert len(list(rotated.glob("*.pcap"))) == 8
    assert (files_per_call > 1).sum() >= 5


def test_dataset_gives_the_captures_report(rotated: Path, stored: Path) -> None:
    from_files = sipstats.read_capture(rotated)
    from_dataset = read_dataset(stored)
    pd.testing.assert_frame_equal(
        from_dataset.messages.astype("str"), from_files.messages.astype("str")
    )
    assert [s.to_dict() for s in from_dataset.inputs] == [s.to_dict() for s in from_files.inputs]
    assert sipstats.analyze(from_dataset).to_dict() == sipstats.analyze(from_files).to_dict()
    assert sipstats.read_dataset is read_dataset


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's dtype, and a categorical's dtype of categories too."""
    return {
        name: f"{dtype} of {dtype.categories.dtype}"
        if isinstance(dtype, pd.CategoricalDtype)
        else str(dtype)
        for name, dtype in frame.dtypes.items()
    }


def test_each_input_reads_back_with_the_decoded_dtypes(tmp_path: Path) -> None:
    """basic.pcap has no Retry-After, mixed.pcap has: the Parquet files of the one without
    read back with ``str`` categories, as decoded, not Arrow's object for an empty dictionary
    (the Dask engine joins the inputs' messages, categories and all)."""
    ingest([SAMPLES / "basic.pcap", SAMPLES / "mixed.pcap"], tmp_path / "ds", jobs=1)
    inputs = stored_parts(tmp_path / "ds")
    assert len(inputs) == 2
    for summary, parts in inputs:
        stored = read_parts(tmp_path / "ds", parts, None, None)
        decoded = sipstats.read_capture(summary.file).messages
        assert _dtypes(stored) == _dtypes(decoded)
    assert _dtypes(read_dataset(tmp_path / "ds").messages) == _dtypes(
        sipstats.read_capture([SAMPLES / "basic.pcap", SAMPLES / "mixed.pcap"]).messages
    )


def test_files_carry_the_schema_and_the_version(stored: Path) -> None:
    parts = sorted(stored.glob("date=*/hour=*/*.parquet"))
    assert parts, "no Parquet part written"
    assert {p.parent.parent.name for p in parts} == {"date=2026-11-25"}
    assert {p.parent.name for p in parts} == {"hour=10", "hour=11"}
    meta = json.loads(pq.read_schema(parts[0]).metadata[b"sipstats"])
    assert meta["schema"] == "sipstats.messages/1"
    assert meta["version"] == sipstats_version()
    assert meta["columns"][:3] == ["ts", "file", "frame"]
    assert is_dataset(stored)
    assert not is_dataset(parts[0].parent)


def sipstats_version() -> str:
    from importlib import metadata

    return metadata.version("sipstats")


@pytest.mark.parametrize(
    ("since", "until", "peer"),
    [
        (pd.Timedelta("10s"), pd.Timedelta("30s"), "127.0.75.30"),
        (pd.Timestamp("2026-11-25T10:59:40Z"), None, None),
        (None, pd.Timedelta("5s"), "127.0.75.20:5060"),
        (None, None, "192.0.2.1"),
    ],
)
def test_window_and_peer_select_as_on_a_capture(
    rotated: Path, stored: Path, since: object, until: object, peer: str | None
) -> None:
    expected = filter_capture(sipstats.read_capture(rotated), since, until, peer)  # type: ignore[arg-type]
    got = read_dataset(stored, since=since, until=until, peer=peer)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got.messages.astype("str"), expected.messages.astype("str"))


def test_a_window_reads_from_its_first_hour_and_keeps_the_look_ahead(tmp_path: Path) -> None:
    """Hours before ``since`` are not read; those after ``until`` are, as the look-ahead that
    retry verdicts inside the window need (``Capture.after``, as ``filter_capture`` keeps)."""
    packets = [
        udp(
            sip_request("OPTIONS", call_id=f"c{hour}", cseq=1, branch=f"z9hG4bK{hour}"), hour * 3600
        )
        for hour in range(3)
    ]
    write_pcap(tmp_path / "day.pcap", packets)
    ingest(tmp_path / "day.pcap", tmp_path / "ds", jobs=1)
    pa = dataset_module._pyarrow()
    data = dataset_module._arrow_dataset(pa, tmp_path / "ds")
    since = pd.Timestamp(T0 + 3600, unit="s", tz="UTC")
    condition = dataset_module._pushdown(pa, since, None)
    assert len(list(data.get_fragments())) == 3
    assert len(list(data.get_fragments(filter=condition))) == 2
    assert list(read_dataset(tmp_path / "ds", since=since).messages["call_id"]) == ["c1", "c2"]
    window = read_dataset(tmp_path / "ds", since=since, until=since + pd.Timedelta("30min"))
    assert list(window.messages["call_id"]) == ["c1"]
    assert window.after is not None
    assert list(window.after["call_id"]) == ["c2"]


def test_rerun_decodes_only_new_files(rotated: Path, tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    files = sorted(rotated.glob("*.pcap"))
    for path in files[:5]:
        (folder / path.name).write_bytes(path.read_bytes())
    first = ingest(folder, tmp_path / "ds", jobs=1)
    assert (len(first.decoded), len(first.skipped)) == (5, 0)
    for path in files[5:]:
        (folder / path.name).write_bytes(path.read_bytes())
    second = ingest(folder, tmp_path / "ds", jobs=1)
    assert [Path(s.file).name for s in second.decoded] == [p.name for p in files[5:]]
    assert len(second.skipped) == 5
    assert len(read_dataset(tmp_path / "ds").messages) == len(
        sipstats.read_capture(rotated).messages
    )


def test_interrupted_run_finishes_without_duplicates(
    rotated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after an input's parts but before its summary: the re-run redoes that input."""
    real = dataset_module._write_atomic_text
    calls = []

    def crash_on_the_third(target: Path, text: str) -> None:
        calls.append(target)
        if len(calls) == 3:
            (target.parent / f".{target.name}.tmp").write_text("half")
            raise KeyboardInterrupt
        real(target, text)

    monkeypatch.setattr(dataset_module, "_write_atomic_text", crash_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        ingest(rotated, tmp_path / "ds", jobs=1)
    monkeypatch.setattr(dataset_module, "_write_atomic_text", real)
    assert len(list((tmp_path / "ds").glob("_sipstats/inputs/*.json"))) == 2
    again = ingest(rotated, tmp_path / "ds", jobs=1)
    assert (len(again.decoded), len(again.skipped)) == (6, 2)
    expected = sipstats.read_capture(rotated)
    got = read_dataset(tmp_path / "ds")
    pd.testing.assert_frame_equal(got.messages.astype("str"), expected.messages.astype("str"))


def test_changed_file_replaces_its_rows(rotated: Path, tmp_path: Path) -> None:
    capture = tmp_path / "grow.pcap"
    files = sorted(rotated.glob("*.pcap"))
    capture.write_bytes(files[0].read_bytes())
    ingest(capture, tmp_path / "ds", jobs=1)
    capture.write_bytes(files[1].read_bytes())
    assert len(ingest(capture, tmp_path / "ds", jobs=1).decoded) == 1
    expected = sipstats.read_capture(capture).messages
    assert len(read_dataset(tmp_path / "ds").messages) == len(expected)


def test_changed_file_with_a_pattern_in_its_name_leaves_no_stale_rows(tmp_path: Path) -> None:
    """The earlier version's rows sit in another hour's folder; they go although the name
    holds glob characters (they once made the stale-part search match nothing)."""
    capture = tmp_path / "grow[1].pcap"
    options = sip_request("OPTIONS", call_id="c1", cseq=1, branch="z9hG4bK1")
    write_pcap(capture, [udp(options, 0)])
    ingest(capture, tmp_path / "ds", jobs=1)
    write_pcap(capture, [udp(options, 2 * 3600)])
    ingest(capture, tmp_path / "ds", jobs=1)
    messages = read_dataset(tmp_path / "ds").messages
    assert messages["ts"].tolist() == sipstats.read_capture(capture).messages["ts"].tolist()


def test_cli_ingest_then_report(rotated: Path, tmp_path: Path) -> None:
    result = cli("ingest", rotated, "--to", tmp_path / "ds", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "8 capture(s) decoded, 0 already stored" in result.output
    result = cli("ingest", rotated, "--to", tmp_path / "ds")
    assert "0 capture(s) decoded, 8 already stored" in result.output
    from_dataset = cli(
        tmp_path / "ds", "--report", "json", "--since", "+5", "--peer", "127.0.75.10"
    )
    from_files = cli(rotated, "--report", "json", "--since", "+5", "--peer", "127.0.75.10")
    assert from_dataset.exit_code == from_files.exit_code == 0
    assert json.loads(from_dataset.stdout) == json.loads(from_files.stdout)
    html = cli(tmp_path / "ds", "--report", "html", "-o", tmp_path / "r.html")
    assert html.exit_code == 0
    assert "<html" in (tmp_path / "r.html").read_text()


def test_cli_damaged_input_is_stored_named_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "notes.pcap").write_text("this is not a capture\n")
    result = cli("ingest", tmp_path / "notes.pcap", "--to", tmp_path / "ds")
    assert result.exit_code == 1
    assert "notes.pcap: not a pcap or pcapng capture" in result.output
    report = cli(tmp_path / "ds", "--report", "json")
    assert report.exit_code == 2
    assert "nothing readable" in report.output


def test_cli_ingest_drops_capture_duplicates_with_the_window_given(tmp_path: Path) -> None:
    """``ingest --duplicate-window`` applies the report command's rule and records the window;
    a re-run with another window decodes the capture again."""
    capture = write_pcap(tmp_path / "any.pcap", any_interface_packets())
    result = cli("ingest", capture, "--to", tmp_path / "ds", "-q")
    assert result.exit_code == 0, result.output
    stored_report = json.loads(cli(tmp_path / "ds", "--report", "json").stdout)
    assert stored_report == json.loads(cli(capture, "--report", "json").stdout)
    assert stored_report["summary"]["duplicates"] == 4
    result = cli("ingest", capture, "--to", tmp_path / "ds", "--duplicate-window", "0")
    assert "1 capture(s) decoded, 0 already stored" in result.output
    kept = json.loads(cli(tmp_path / "ds", "--report", "json").stdout)
    assert kept == json.loads(cli(capture, "--report", "json", "--duplicate-window", "0").stdout)
    assert (kept["summary"]["sip_messages"], kept["summary"]["duplicates"]) == (8, 0)
    (part,) = (tmp_path / "ds").glob("date=*/hour=*/*.parquet")
    assert json.loads(pq.read_schema(part).metadata[b"sipstats"])["duplicate_window_ms"] == 0
    (record,) = (tmp_path / "ds").glob("_sipstats/inputs/*.json")
    assert json.loads(record.read_text())["source"]["duplicate_window_ms"] == 0
    again = cli("ingest", capture, "--to", tmp_path / "ds", "--duplicate-window", "0")
    assert "0 capture(s) decoded, 1 already stored" in again.output


def test_cli_dataset_is_read_alone(stored: Path, rotated: Path) -> None:
    for args in (
        (stored, rotated),
        (stored, "--ports", "5060"),
        (stored, "--duplicate-window", "0"),
    ):
        result = cli(*args)
        assert result.exit_code == 2
        assert "a dataset is read alone" in result.output


def test_without_pyarrow_the_extra_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(DatasetError, match=r"pip install 'sipstats\[dask\]'"):
        ingest(tmp_path, tmp_path / "ds")
    result = cli("ingest", tmp_path, "--to", tmp_path / "ds")
    assert result.exit_code == 2
    assert "sipstats[dask]" in result.output


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a sipstats dataset"):
        read_dataset(tmp_path)


def test_readme_example_queries_a_dataset(
    rotated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's DuckDB and pandas example runs as written on a dataset from ingest."""
    pytest.importorskip("duckdb")
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- dataset-example:start -->\n```python\n")
    end = readme.index("```\n<!-- dataset-example:end -->")
    code = readme[start:end].split("```python\n", 1)[1]
    ingest(rotated, tmp_path / "dataset", jobs=1)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    messages = sipstats.read_capture(rotated).messages
    responses = messages[~messages["is_request"]]["status"].astype("int64").value_counts()
    codes = scope["codes"]
    assert isinstance(codes, pd.DataFrame)
    assert dict(zip(codes["status"], codes["responses"], strict=True)) == responses.to_dict()
    invites = scope["invites"]
    assert isinstance(invites, pd.DataFrame)
    assert len(invites) == int((messages["method"] == "INVITE").sum())


def test_header_numbers_stored_as_int64_are_read_clamped(tmp_path: Path) -> None:
    """Versions that kept the header numbers as Int64 stored a HEP Content-Length above
    2**32 - 1 as it came; such a dataset reads back as UInt32, clamped as the parser clamps
    (reading it with the uint32 schema raised ArrowInvalid)."""
    write_pcap(
        tmp_path / "a.pcap",
        [udp(sip_request("OPTIONS", call_id="c", cseq=7, branch="z9hG4bKc"), T0)],
    )
    target = tmp_path / "dataset"
    ingest(tmp_path / "a.pcap", target, jobs=1)
    (part,) = target.glob("date=*/hour=*/*.parquet")
    table = pq.read_table(part)
    at = table.schema.get_field_index("content_length")
    wide = pa.array([2**32 + 5], pa.int64())
    pq.write_table(table.set_column(at, "content_length", wide), part)
    messages = read_dataset(target).messages
    assert str(messages["content_length"].dtype) == "UInt32"
    assert messages["content_length"].tolist() == [MAX_NUMBER]
    assert messages["cseq"].tolist() == [7]


def _decoded_slowly(path: str, **options: object) -> object:
    """A decoding that takes 20 s; the first to start sends Ctrl-C to the process group."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open("ctrl-c", os.O_CREAT | os.O_EXCL))
        os.killpg(0, signal.SIGINT)
    time.sleep(20)
    return decode_file(path, **options)


def _interrupt_ingest(folder: str) -> None:
    """In a process group of its own: an ingest of slow inputs, interrupted."""
    dataset_module.decode_file = _decoded_slowly  # type: ignore[assignment]
    start = time.monotonic()
    try:
        ingest(folder, "ds", jobs=2)
    except KeyboardInterrupt:
        print(f"{time.monotonic() - start:.2f}", children_left())


def test_a_ctrl_c_ends_the_ingest_at_once(tmp_path: Path) -> None:
    """Interrupted, the ingest's pool (a ProcessPoolExecutor of its own) went on decoding the
    inputs not started yet before it let the command end; it is now the decoding pool, whose
    workers are ended at once."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(6):
        shutil.copy(SAMPLES / "basic.pcap", folder / f"c{k}.pcap")
    main = f"from tests.test_dataset import _interrupt_ingest; _interrupt_ingest({str(folder)!r})"
    done = subprocess.run(
        [sys.executable, "-c", main],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        check=True,
    )
    seconds, children = done.stdout.split()
    assert float(seconds) < 10  # each input takes 20 s
    assert children == "0"
