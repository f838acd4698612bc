"""``sipstats CAPTURE... [OPTIONS]`` through the real entry point: every option, every exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sipstats.cli import main
from sipstats.cli import report as report_module
from sipstats.errors import EXIT_CLOSED_OUTPUT, EXIT_DAMAGED
from sipstats.render.labels import label
from tests.conftest import ROOT
from tests.report_captures import report_inputs


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return report_inputs(tmp_path_factory.mktemp("cli"))


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def run_in(directory: Path, *args: str | Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(directory)
    return run(*args)


def json_of(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- default, formats, output ------------------------------------------------------------------


def test_default_is_the_text_report_on_stdout(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"])
    assert result.exit_code == 0, result.output
    assert label("by_code") in result.stdout
    assert "\x1b" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert result.stderr == ""


def test_json_goes_to_stdout(captures: dict[str, Path]) -> None:
    data = json_of(run(captures["mixed"], "--report", "json"))
    assert data["schema"] == "sipstats.report/1"
    assert data["summary"]["sip_messages"] == 35
    assert data["calls"]["total"] == 8


def test_markdown_goes_to_stdout(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--report", "md")
    assert result.exit_code == 0
    assert result.stdout.startswith("# SIP capture report")


def test_html_without_output_goes_to_stdout(
    captures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sipstats F --report html > out.html`` writes the report, nothing else, into out.html."""
    result = run_in(tmp_path, captures["mixed"], "--report", "html", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert "&lt;script&gt;" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_output_suffix_names_the_format(captures: dict[str, Path], tmp_path: Path) -> None:
    for suffix, start in ((".html", "<!DOCTYPE html>"), (".json", "{"), (".md", "# SIP")):
        target = tmp_path / f"r{suffix}"
        result = run(captures["mixed"], "-o", target)
        assert result.exit_code == 0, result.output
        assert target.read_text(encoding="utf-8").startswith(start)
        assert result.stdout == ""
        assert result.stderr == f"wrote {suffix[1:]} report: {target}\n"


def test_output_suffix_that_contradicts_the_format_is_refused(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "r.html"
    result = run(captures["mixed"], "--report", "json", "-o", target)
    assert result.exit_code == 2
    assert "the name says html but --report json was asked" in result.stderr
    assert not target.exists()


def test_output_file(captures: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    result = run(captures["mixed"], "--report", "md", "-o", target)
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("# SIP capture report")
    assert result.stdout == ""
    assert result.stderr == f"wrote md report: {target}\n"


def test_output_ending_in_a_slash_is_a_directory(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["mixed"], "--report", "json", "-o", f"{tmp_path / 'new'}/")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "mixed.sipstats.json").is_file()


def test_usage_names_the_program(captures: dict[str, Path]) -> None:
    result = run("--help")
    assert result.stdout.startswith("Usage: main [OPTIONS] CAPTURE...")  # CliRunner's name


def test_output_into_an_existing_directory(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["mixed"], "--report", "text", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert label("by_code") in (tmp_path / "mixed.sipstats.txt").read_text(encoding="utf-8")


def test_several_reports_into_a_directory(captures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [a for f in ("html", "json", "md", "csv", "text") for a in ("--report", f)]
    result = run(captures["mixed"], *args, "-o", out)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["mixed.sipstats.html", "mixed.sipstats.json", "mixed.sipstats.md", "mixed.sipstats.txt",
         "mixed.by_code.csv", "mixed.calls.csv", "mixed.retries.csv", "mixed.transactions.csv",
         "mixed.messages.csv"]
    )  # fmt: skip
    assert result.stdout == ""
    assert result.stderr.count("wrote ") == 5


def test_several_reports_need_a_directory(captures: dict[str, Path], tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    result = run(captures["mixed"], "--report", "html", "--report", "json", "-o", file)
    assert result.exit_code == 2
    assert result.stderr.startswith("sipstats: error: ")
    assert "not a directory" in result.stderr


def test_csv_writes_a_directory(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["mixed"], "--report", "csv", "-o", tmp_path / "tables")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tables" / "mixed.by_code.csv").is_file()


@pytest.mark.parametrize("formats", [("csv",), ("json", "md")])
def test_standard_output_takes_one_document_only(
    captures: dict[str, Path],
    formats: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = [a for f in formats for a in ("--report", f)]
    result = run_in(tmp_path, captures["mixed"], *args, "-o", "-", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.startswith("sipstats: error: -o -: standard output takes one document")
    assert list(tmp_path.iterdir()) == []  # not a directory named "-"


def test_text_and_another_report_without_output(
    captures: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = (captures["mixed"], "--report", "text", "--report", "json")
    result = run_in(tmp_path, *args, monkeypatch=monkeypatch)
    assert result.exit_code == 0
    assert label("by_code") in result.stdout
    assert "wrote json report: mixed.sipstats.json" in result.stderr  # stdout holds the report
    assert (tmp_path / "mixed.sipstats.json").is_file()


def test_unknown_report_format_is_a_usage_error(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--report", "pdf")
    assert result.exit_code == 2
    assert "'pdf' is not one of 'text', 'html', 'json', 'csv', 'md'" in result.stderr


# -- options --------------------------------------------------------------------------------------


def test_lang_zh(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--lang", "zh")
    assert result.exit_code == 0
    assert label("by_code", "zh") in result.stdout
    assert label("by_code") not in result.stdout


def test_ports(captures: dict[str, Path]) -> None:
    assert (
        json_of(run(captures["mixed"], "--report", "json", "--ports", "5060"))["summary"][
            "sip_messages"
        ]
        == 35
    )
    other = run(captures["mixed"], "--report", "json", "--ports", "5070,5080")
    assert other.exit_code == 1  # no SIP on those ports: stderr says where the traffic was
    assert json.loads(other.stdout)["summary"]["sip_messages"] == 0
    assert "no SIP found in " in other.stderr
    assert "udp/5060" in other.stderr
    assert "--ports 5070,5080: no SIP message matched" in other.stderr


def test_bad_ports(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--ports", "50x0")
    assert result.exit_code == 2
    assert "not a port number: '50x0'" in result.stderr


def test_since_and_until(captures: dict[str, Path]) -> None:
    full = json_of(run(captures["mixed"], "--report", "json"))
    late = json_of(run(captures["mixed"], "--report", "json", "--since", "+8s"))
    window = json_of(
        run(captures["mixed"], "--report", "json", "--since", "2023-11-14T22:13:20",
            "--until", "2023-11-14T22:13:26")
    )  # fmt: skip
    assert late["calls"]["total"] == 5  # calls 4 to 8 start at 8 s or later
    assert window["calls"]["total"] == 2  # calls 1 and 2 start before 6 s
    assert full["calls"]["total"] == 8


def test_bad_since(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--since", "teatime")
    assert result.exit_code == 2
    assert "not a time: 'teatime'" in result.stderr


def test_peer(captures: dict[str, Path]) -> None:
    assert (
        json_of(run(captures["mixed"], "--report", "json", "--peer", "10.0.0.2:5060"))["summary"][
            "sip_messages"
        ]
        == 35
    )
    nobody = run(captures["mixed"], "--report", "json", "--peer", "192.0.2.7")
    assert nobody.exit_code == 1  # a filter that matches nothing is a warning
    assert "--peer 192.0.2.7: no SIP message matched" in nobody.stderr
    assert json.loads(nobody.stdout)["summary"]["sip_messages"] == 0


def test_bad_peer(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--peer", "pbx.example.com")
    assert result.exit_code == 2
    assert "not an IP address" in result.stderr


def test_interval_and_html_to_stdout(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--report", "html", "-o", "-", "--interval", "2s")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert f"{label('note_interval')}: 2s" in result.stdout


def test_interval_defaults_to_auto(captures: dict[str, Path]) -> None:
    report = json_of(run(captures["mixed"], "--report", "json"))
    buckets = report["timeline"]["buckets"]
    assert report["timeline"]["interval"] in {"1s", "2s", "5s", "10s", "15s", "30s", "1min"}
    assert 1 < len(buckets) <= 60


def test_top(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], "--top", "1")
    assert result.exit_code == 0
    early = result.stdout.split(label("early_retriers"))[1].split(label("storms"))[0]
    assert "dave@example.com" in early
    assert "carol@example.com" not in early
    assert label("note_top", n=1) in early


def test_top_must_be_positive(captures: dict[str, Path]) -> None:
    assert run(captures["mixed"], "--top", "0").exit_code == 2


def test_plots(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["mixed"], "--report", "json", "--plots", tmp_path / "figs")
    assert result.exit_code == 0, result.output
    assert (
        len(list((tmp_path / "figs").glob("*.png"))) == 7
    )  # failures, timeline, classes, outcomes, pdd, answer_time, retries
    assert len(list((tmp_path / "figs").glob("*.svg"))) == 7
    assert "wrote 14 figure files" in result.stderr


def test_quiet(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["truncated"], "-q", "--report", "md", "-o", tmp_path / "r.md")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == ""


def test_progress_bar_only_on_a_terminal(
    captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "reading" not in run(captures["mixed"], "--report", "json").stderr
    monkeypatch.setattr(report_module, "_stderr_is_terminal", lambda: True)
    shown = run(captures["mixed"], "--report", "json")
    assert shown.exit_code == 0
    assert "reading" in shown.stderr
    assert "analysing" in shown.stderr
    assert json.loads(shown.stdout)["summary"]["sip_messages"] == 35
    assert "reading" not in run(captures["mixed"], "--report", "json", "--no-progress").stderr
    assert "reading" not in run(captures["mixed"], "--report", "json", "-q").stderr


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("sipstats ")


def test_help_lists_every_option() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--report", "--output", "--lang", "--ports", "--since", "--until", "--peer",
                   "--interval", "--top", "--plots", "--quiet", "--no-progress", "--debug",
                   "--version", "text|html|json|csv|md", "sipstats codes"):  # fmt: skip
        assert option in result.stdout, option


def test_codes_subcommand_still_works() -> None:
    result = run("codes", "486")
    assert result.exit_code == 0
    assert "Busy Here" in result.stdout


# -- exit codes -----------------------------------------------------------------------------------


def test_exit_1_on_damaged_input(captures: dict[str, Path]) -> None:
    result = run(captures["truncated"], "--report", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["sip_messages"] >= 30  # the report is written
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"sipstats: warning: {captures['truncated']}: ")
    assert "truncated" in lines[0]


def test_exit_1_when_one_input_is_unreadable(captures: dict[str, Path]) -> None:
    result = run(captures["mixed"], captures["text"], "--report", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["sip_messages"] == 35
    assert result.stderr.startswith(f"sipstats: warning: {captures['text']}: ")


def test_exit_2_when_nothing_is_readable(captures: dict[str, Path], tmp_path: Path) -> None:
    result = run(captures["text"], tmp_path / "missing.pcap")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "sipstats: error: nothing readable: no input is a capture file sipstats can read"
    )
    assert "Traceback" not in result.stderr


def test_exit_2_when_the_report_cannot_be_written(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(captures["mixed"], "--report", "md", "-o", blocker / "r.md")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sipstats: error: {blocker}")
    assert len(result.stderr.splitlines()) == 1


def test_exit_2_without_captures() -> None:
    result = run()
    assert result.exit_code == 2
    assert "Missing argument 'CAPTURE...'" in result.stderr


def test_exit_2_on_unknown_option(captures: dict[str, Path]) -> None:
    assert run(captures["mixed"], "--colour").exit_code == 2


def test_debug_shows_the_traceback(captures: dict[str, Path]) -> None:
    result = run(captures["text"], "--debug")
    assert result.exit_code == 1  # CliRunner's code for an exception that escaped
    assert result.exception is not None
    assert "nothing readable" in str(result.exception)


# -- a real process -------------------------------------------------------------------------------


def _python_m(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sipstats", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=120,
    )  # fmt: skip


def test_python_m_sipstats(captures: dict[str, Path], tmp_path: Path) -> None:
    ok = _python_m(captures["mixed"], "--report", "json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["responses_by_code"]["486"]["unique"] == 2
    bad = _python_m(captures["text"], cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].startswith("sipstats: error: nothing readable")


def test_json_report_does_not_load_matplotlib() -> None:
    """Figures are drawn only for HTML or --plots: a JSON run starts without matplotlib."""
    code = "import sys, sipstats.cli.report, sipstats.render; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("display", ["spinner", "progress bar"])
def test_a_fork_waits_until_the_display_is_not_drawing(
    display: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process forked while a spinner or the progress bar draws (its refresh thread
    holding the display's lock): the fork waits for the drawing to end, so the child does
    not inherit a lock held by a thread it lacks (which would hang its first write)."""
    import threading
    import time

    from rich.live import Live

    from sipstats.workers import Forked

    drawing = threading.Event()

    def slow_refresh(self: Live) -> None:
        if threading.current_thread() is not threading.main_thread():
            drawing.set()  # the refresh thread, holding the lock for the next 0.3 s
        time.sleep(0.3)

    monkeypatch.setattr(Live, "refresh", slow_refresh)
    shown = (
        report_module._spinner(True, "analysing")
        if display == "spinner"
        else report_module._progress_bar(True)
    )
    with shown:
        live = report_module._SHOWN[-1]
        assert drawing.wait(5)
        child = Forked(lambda: live._lock.acquire(timeout=2))
        assert child.result() is True


class _AskedLock:
    """A display's lock that tells when a thread asks for it."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.RLock()
        self.asked = threading.Event()

    def acquire(self, timeout: float = -1) -> bool:
        self.asked.set()
        return self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        self.lock.release()


def test_two_threads_forking_at_once_each_let_go_of_the_display(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second thread forks while the first one's fork holds a display: each lets go of what
    it held and the display's lock is free afterwards (with one list for the process, the
    first thread's release emptied the second's, whose hold then stayed for good)."""
    import threading
    from types import SimpleNamespace

    lock = _AskedLock()
    monkeypatch.setattr(report_module, "_SHOWN", [SimpleNamespace(_lock=lock)])
    report_module._hold_displays()  # this thread is forking
    lock.asked.clear()

    def fork_too() -> None:
        report_module._hold_displays()
        report_module._let_go_displays()

    second = threading.Thread(target=fork_too, daemon=True)
    second.start()
    assert lock.asked.wait(5)  # the second thread waits for this one's fork
    report_module._let_go_displays()
    second.join(5)
    free = lock.lock.acquire(timeout=2)
    if free:
        lock.lock.release()
    assert free
    assert not second.is_alive()


@pytest.mark.parametrize(
    "args",
    [
        ("CAPTURE",),
        ("CAPTURE", "--report", "json", "-o", "-"),
        ("CAPTURE", "--report", "md"),
        ("calls", "CAPTURE", "--report", "csv"),
    ],
)
def test_a_closed_output_ends_the_command_quietly(
    captures: dict[str, Path], args: tuple[str, ...], tmp_path: Path
) -> None:
    """``sipstats F | head -1``: the text report exited 1 (rich's choice; here damaged
    input) and the others 2 with "Broken pipe"; now every one 141, as a shell shows a
    command a closed pipe ended, and nothing on stderr."""
    argv = [str(captures["mixed"]) if arg == "CAPTURE" else arg for arg in args]
    done = _into_a_closed_pipe([sys.executable, "-m", "sipstats", *argv, "-q"], "stdout", tmp_path)
    assert (done.returncode, done.stderr) == (EXIT_CLOSED_OUTPUT, "")


def _into_a_closed_pipe(
    argv: list[str], stream: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``argv`` run with its ``stream`` (stdout or stderr) a pipe whose reader is gone before
    anything is written, the other one read."""
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as closed:
        streams: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        streams[stream] = closed
        return subprocess.run(
            argv,
            **streams,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
            check=False,
        )


@pytest.mark.parametrize("stderr", ["closed pipe", "none"])
@pytest.mark.parametrize("output", ["-", "report.json"])
def test_a_closed_stderr_drops_the_warnings_and_changes_nothing_else(
    captures: dict[str, Path], stderr: str, output: str, tmp_path: Path
) -> None:
    """``sipstats DAMAGED 2>&-`` (or stderr a pipe nobody reads): the warning that cannot be
    written is dropped; the report is written and the exit status still says damaged input
    (it was 141, the closed *output*'s, for a pipe, and 2 without stderr)."""
    argv = [sys.executable, "-m", "sipstats", str(captures["truncated"]), "--report", "json"]
    if stderr == "none":
        argv = ["sh", "-c", '"$@" 2>&-', "sh", *argv]
    done = _into_a_closed_pipe([*argv, "-o", output], "stderr", tmp_path)  # 2>&- closes it again
    written = done.stdout if output == "-" else (tmp_path / output).read_bytes()
    assert done.returncode == EXIT_DAMAGED
    assert json.loads(written)["summary"]["sip_messages"] > 0


def test_debug_shows_the_traceback_of_a_closed_output(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    """``sipstats F --debug | head -1``: still 141, and the traceback of the failed write on
    stderr, which is what --debug is for (the closed output ended the command silently)."""
    argv = [str(captures["mixed"]), "--report", "json", "--debug", "-q"]
    done = _into_a_closed_pipe([sys.executable, "-m", "sipstats", *argv], "stdout", tmp_path)
    assert done.returncode == EXIT_CLOSED_OUTPUT
    assert "Traceback (most recent call last):\n" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("BrokenPipeError: ")


def undecodable_copy(of: Path, directory: Path) -> Path:
    """``of`` copied under a name that is not UTF-8 (``caf\\xe9.pcap``, Latin-1)."""
    target = directory / os.fsdecode(b"caf\xe9.pcap")
    target.write_bytes(of.read_bytes())
    return target


#: How every report shows that name: its undecodable byte spelled out, as the messages'
#: file column has it (:func:`sipstats.messages.text_index`); Markdown and JSON escape the "\\".
SPELLED_OUT = "caf\\udce9.pcap"
ESCAPED = {"md": "caf\\\\udce9.pcap", "json": "caf\\\\udce9.pcap"}


@pytest.mark.parametrize("fmt", ["text", "md", "json", "html"])
def test_a_file_name_that_is_not_utf8_is_spelled_out_on_stdout(
    captures: dict[str, Path], fmt: str, tmp_path: Path
) -> None:
    """The JSON, Markdown, text and HTML reports failed with exit 2 (UnicodeEncodeError), or
    wrote the byte itself, which is not UTF-8, where stdout escapes surrogates (C locale)."""
    capture = undecodable_copy(captures["mixed"], tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "sipstats", capture, "--report", fmt, "-q"],
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout.decode("utf-8")
    if fmt == "json":
        assert json.loads(shown)["inputs"][0]["file"].endswith(SPELLED_OUT)
    else:
        assert ESCAPED.get(fmt, SPELLED_OUT) in shown


def test_a_file_name_that_is_not_utf8_is_spelled_out_in_every_file(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    capture = undecodable_copy(captures["mixed"], tmp_path)
    formats = [arg for fmt in ("text", "md", "json", "html", "csv") for arg in ("--report", fmt)]
    result = run(capture, *formats, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    for fmt, suffix in (("text", "txt"), ("md", "md"), ("json", "json"), ("html", "html")):
        (written,) = (tmp_path / "out").glob(f"*.sipstats.{suffix}")
        assert ESCAPED.get(fmt, SPELLED_OUT) in written.read_text("utf-8"), fmt
    (messages,) = (tmp_path / "out").glob("*.messages.csv")
    assert SPELLED_OUT in messages.read_text("utf-8")


def test_a_file_name_that_is_not_utf8_is_ingested_and_compared(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    """ingest failed (UnicodeEncodeError: the dataset's part file was named after the input,
    which pyarrow opens only as UTF-8), and diff wrote the name as given (exit 2 to a file)."""
    capture = undecodable_copy(captures["mixed"], tmp_path)
    ingested = run("ingest", capture, "--to", tmp_path / "ds")
    assert ingested.exit_code == 0, ingested.output
    report = run(tmp_path / "ds", "--report", "json", "-o", tmp_path / "ds.json", "-q")
    assert report.exit_code == 0, report.output
    inputs = json.loads((tmp_path / "ds.json").read_text("utf-8"))["inputs"]
    assert inputs[0]["file"].endswith(SPELLED_OUT)
    compared = run("diff", capture, tmp_path / "ds", "--report", "json", "-o", tmp_path / "d.json")
    assert compared.exit_code == 0, compared.output
    assert json.loads((tmp_path / "d.json").read_text("utf-8"))["before"].endswith(SPELLED_OUT)


@pytest.mark.parametrize(
    "args",
    [
        ["F", "--report", "json", "-q"],
        ["F", "--report", "text", "-q"],
        ["calls", "F"],
        ["codes", "486"],
    ],
)
def test_a_program_started_without_stdout_exits_141(
    captures: dict[str, Path], args: list[str]
) -> None:
    """Started with ``>&-`` (Python's stdout None) the report was an internal error (exit 2)
    and ``calls`` wrote nothing and exited 0: the output was not delivered, as with a closed
    pipe."""
    args = [str(captures["mixed"]) if arg == "F" else arg for arg in args]
    closed = ["sh", "-c", 'exec "$0" "$@" >&-', sys.executable, "-m", "sipstats"]
    done = subprocess.run([*closed, *args], capture_output=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == EXIT_CLOSED_OUTPUT, done.stderr


def test_a_file_name_with_an_escape_sequence_reaches_no_report_raw(
    captures: dict[str, Path], tmp_path: Path
) -> None:
    """A name with ESC in it reached the text and Markdown "Captures" line, the HTML title and
    header and every ladder's arrow titles as the byte itself (a terminal that showed it ran
    the sequence; XML holds no such character); the input tables spelled it out."""
    capture = tmp_path / "esc\x1b[31mred.pcap"
    capture.write_bytes(captures["mixed"].read_bytes())
    formats = [arg for fmt in ("text", "md", "html") for arg in ("--report", fmt)]
    result = run(capture, *formats, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    for written in (tmp_path / "out").iterdir():
        shown = written.read_text("utf-8")
        assert "\x1b" not in shown, written.name
        assert "esc\\x1b" in shown.replace("\\\\", "\\"), written.name  # Markdown escapes "\\"


def test_a_warning_about_a_file_with_an_escape_sequence_runs_no_escape(tmp_path: Path) -> None:
    """The warnings named a damaged file as it is: an escape in its name reached the terminal
    (click strips colour codes from a pipe, not a sequence that sets the window title)."""
    capture = tmp_path / "cut\x1b]0;owned\x07.pcap"
    capture.write_bytes((ROOT / "sample_pcaps" / "outage.pcap").read_bytes()[:3000])
    done = subprocess.run(
        [sys.executable, "-m", "sipstats", str(capture), "--report", "json", "-o", "o.json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_DAMAGED
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    assert "cut\\x1b]0;owned\\x07.pcap: truncated inside record" in done.stderr
