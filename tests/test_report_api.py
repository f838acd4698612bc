"""The report API: the library refuses what the CLI refuses, with the same words.

Every option check runs before a capture is read, so a notebook's typo fails at once with a
one-line :class:`OptionError`, never later inside a renderer with a pandas error.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipstats import analyze, read_capture
from sipstats.checks import parse_peer
from sipstats.cli import main
from sipstats.errors import OptionError, ReportError
from sipstats.report import (
    EXIT_DAMAGED,
    EXIT_OK,
    ReportHooks,
    ReportRequest,
    load,
    plan_outputs,
    read_selected,
    run_report,
)
from tests.report_captures import report_inputs

#: Interval -> the start of the one-line error both the library and the CLI give for it.
BAD_INTERVALS = {
    "bananas": "not a fixed interval: 'bananas'",
    "1ME": "not a fixed interval: '1ME'",  # a calendar month: buckets of unequal length
    "0s": "interval must be longer than zero: '0s'",  # was a ZeroDivisionError
    "-1s": "interval must be longer than zero: '-1s'",  # was accepted silently
    "1000000D": "interval too long: '1000000D'",  # was an OutOfBoundsTimedelta
}
#: pandas deprecates the lower-case day unit; outside tests the warning is not shown.
OLD_DAY_UNIT = pytest.mark.filterwarnings("ignore:'d' is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return report_inputs(tmp_path_factory.mktemp("api"))


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        *BAD_INTERVALS.items(),
        pytest.param("1000000d", "interval too long: '1000000d'", marks=OLD_DAY_UNIT),
    ],
)
def test_a_bad_interval_fails_at_once_in_the_library_and_the_cli(
    captures: dict[str, Path], interval: str, message: str
) -> None:
    capture = read_capture(captures["mixed"])
    with pytest.raises(OptionError, match=f"^{message}"):
        analyze(capture, interval=interval)
    with pytest.raises(OptionError, match=f"^{message}"):
        ReportRequest([captures["mixed"]], interval=interval)
    analysis = analyze(capture, interval="10s")
    with pytest.raises(OptionError, match=f"^{message}"):
        analysis.timeline(interval)
    result = CliRunner().invoke(main, [str(captures["mixed"]), "--interval", interval])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_refuses_an_interval_before_reading(tmp_path: Path) -> None:
    """A usage error needs no capture: the missing file is never opened."""
    result = CliRunner().invoke(main, [str(tmp_path / "missing.pcap"), "--interval", "0s"])
    assert result.exit_code == 2
    assert "interval must be longer than zero" in result.stderr
    assert "missing.pcap" not in result.stderr


def test_the_longest_interval_still_makes_a_report(captures: dict[str, Path]) -> None:
    analysis = load(captures["mixed"], interval="365D")
    assert len(analysis.timeline()) == 1
    assert analysis.to_dict()["timeline"]["interval"] == "365D"


@pytest.mark.parametrize("ports", [[70000], [0], ["50x0"], []])
def test_bad_ports_are_refused_by_read_capture(captures: dict[str, Path], ports: list) -> None:
    with pytest.raises(OptionError, match=r"not a port number|no ports given"):
        read_capture(captures["mixed"], ports=ports)


def test_one_port_rule_for_ports_and_peers() -> None:
    with pytest.raises(OptionError, match=r"^not a port number: '70000' in '10\.0\.0\.1:70000'$"):
        parse_peer("10.0.0.1:70000")
    result = CliRunner().invoke(main, ["x.pcap", "--ports", "5060,70000"])
    assert result.exit_code == 2
    assert "not a port number: '70000'" in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"formats": ["pdf"]}, "unknown report format 'pdf'"),
        ({"top": 0}, "top must be at least 1"),
        ({"peer": "pbx.example.com"}, "not an IP address"),
        ({"since": "teatime"}, "not a time: 'teatime'"),
        ({"lang": "fr"}, "unknown language 'fr'"),
    ],
)
def test_a_request_is_checked_when_made(
    captures: dict[str, Path], options: dict, message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        ReportRequest([captures["mixed"]], **options)


def test_read_selected_applies_ports_window_and_peer(captures: dict[str, Path]) -> None:
    whole = read_selected(captures["mixed"])
    assert len(whole.messages) == 35
    assert len(read_selected(captures["mixed"], ports=["5060"]).messages) == 35
    assert len(read_selected(captures["mixed"], peer="192.0.2.7").messages) == 0
    late = read_selected(captures["mixed"], since="+8s")
    assert 0 < len(late.messages) < 35


def test_nothing_readable_is_a_report_error(captures: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"^nothing readable"):
        load([captures["text"], tmp_path / "missing.pcap"])


def test_run_report_writes_every_format_and_earns_its_exit_status(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    notes: list[str] = []
    request = ReportRequest(
        [captures["truncated"]], formats=("json", "csv", "json"), output=str(tmp_path / "out")
    )
    analysed: list[tuple[object, int]] = []  # the analysis, and how many reports were written
    hooks = ReportHooks(wrote=notes.append, analysed=lambda a: analysed.append((a, len(notes))))
    result = run_report(request, hooks)
    [(made, written)] = analysed
    assert (made is result.analysis, written) == (True, 0)  # before any report is written
    assert result.exit_status == EXIT_DAMAGED
    assert [summary.file for summary in result.damaged] == [str(captures["truncated"])]
    assert [fmt for fmt, _ in result.written] == ["json", "csv"]
    document = json.loads((tmp_path / "out" / "truncated.sipstats.json").read_text())
    assert document["summary"]["sip_messages"] == len(result.analysis.messages)
    assert (tmp_path / "out" / "truncated.by_code.csv").is_file()
    assert notes == [f"wrote json report: {tmp_path / 'out' / 'truncated.sipstats.json'}",
                     f"wrote csv report: {tmp_path / 'out'}"]  # fmt: skip


def test_run_report_streams_a_single_document(captures: dict[str, Path]) -> None:
    stream = io.StringIO()
    result = run_report(ReportRequest([captures["mixed"]], formats=["md"]), stdout=stream)
    assert result.exit_status == EXIT_OK
    assert result.written == []
    assert stream.getvalue().startswith("# SIP capture report")


def test_plan_outputs_needs_a_directory_for_several_reports(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ReportError, match="not a directory"):
        plan_outputs(["html", "json"], str(file), "x")
    assert plan_outputs(["html"], None, "x").uses_stdout
    assert plan_outputs(["json"], "-", "x").uses_stdout
    assert plan_outputs(["md"], str(tmp_path) + "/", "x").targets == [
        ("md", tmp_path / "x.sipstats.md")
    ]


@pytest.mark.parametrize("formats", [["csv"], ["json", "md"]])
def test_plan_outputs_refuses_standard_output_for_more_than_one_document(
    formats: list[str],
) -> None:
    """The API planned ``./-/`` (a directory named ``-``), which the command line refuses."""
    with pytest.raises(OptionError, match=r"^-o -: standard output takes one document"):
        plan_outputs(formats, "-", "x")


@pytest.mark.parametrize("output", ["-", None, "x.json", "out/"])
def test_plan_outputs_refuses_no_format(output: str | None) -> None:
    """No format to plan: with ``"-"`` the message read "not : give a directory", with any
    other output the plan was empty and nothing was written."""
    with pytest.raises(OptionError, match=r"^no report format asked: give one or more"):
        plan_outputs([], output, "x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheduler": "tcp://127.0.0.1:8786"}, "--scheduler needs --engine dask"),
        ({"engine": "spark"}, "unknown engine 'spark'"),
        ({"jobs": 0}, "jobs must be at least 1"),
        ({"formats": ["json"], "output": "x.html"}, "the name says html but --report json"),
        ({"engine": "dask", "formats": ["csv"]}, "--report csv writes every message"),
    ],
)
def test_engine_jobs_and_format_are_checked_when_made(
    captures: dict[str, Path], options: dict, message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        ReportRequest([captures["mixed"]], **options)


def test_the_cli_refuses_csv_from_the_dask_engine_before_reading(tmp_path: Path) -> None:
    """The Dask engine keeps the messages on its workers; CSV would fail after the analysis."""
    missing = str(tmp_path / "missing.pcap")
    result = CliRunner().invoke(main, [missing, "--engine", "dask", "--report", "csv"])
    assert result.exit_code == 2
    assert "--report csv writes every message" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_output_name_chooses_the_format(captures: dict[str, Path]) -> None:
    assert ReportRequest([captures["mixed"]], output="r.md").formats == ("md",)
    assert ReportRequest([captures["mixed"]]).formats == ("text",)


def test_a_selection_that_matches_nothing_earns_exit_1(captures: dict[str, Path]) -> None:
    seen: list[bool] = []
    request = ReportRequest([captures["mixed"]], formats=["json"], peer="192.0.2.7")
    hooks = ReportHooks(read=lambda capture: seen.append(capture.selected_nothing))
    result = run_report(request, hooks, stdout=io.StringIO())
    assert seen == [True]
    assert result.exit_status == EXIT_DAMAGED


def test_ingest_checks_ports_like_the_report(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.parquet", reason="the dask extra is not installed")
    from sipstats.dataset import ingest

    with pytest.raises(OptionError, match="not a port number: '70000'"):
        ingest([tmp_path / "none.pcap"], tmp_path / "dataset", ports=[70000])


def test_run_report_writes_every_format_of_a_file_name_that_is_not_utf8(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    """The JSON, Markdown, text and HTML files failed (UnicodeEncodeError); CSV was written."""
    capture = tmp_path / os.fsdecode(b"caf\xe9.pcap")
    capture.write_bytes(captures["mixed"].read_bytes())
    formats = ["text", "md", "json", "html", "csv"]
    request = ReportRequest([capture], formats=formats, output=str(tmp_path / "out"))
    result = run_report(request)
    assert result.exit_status == EXIT_OK
    written = dict(result.written)
    document = json.loads(written["json"].read_text("utf-8"))
    assert document["inputs"][0]["file"].endswith("caf\\udce9.pcap")
    for fmt, spelled in (("text", "caf\\udce9"), ("md", "caf\\\\udce9"), ("html", "caf\\udce9")):
        assert spelled in written[fmt].read_text("utf-8"), fmt  # Markdown escapes the "\\"
    (messages,) = written["csv"].glob("*.messages.csv")
    assert "caf\\udce9" in messages.read_text("utf-8")
