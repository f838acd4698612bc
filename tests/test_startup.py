"""Start-up loads only what the command needs: help and the package itself load no pandas.

Each check runs a fresh interpreter (``python -c``) and reads its ``sys.modules``: what one
test imported cannot hide what another needs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sipstats.cli import SUBCOMMANDS
from sipstats.dataset import ingest
from sipstats.sip import c_scanner
from tests.conftest import ROOT

#: Code that records, each time the reading thread starts, whether pandas was loaded then.
_READING_SPY = (
    "import sys\n"
    "from sipstats import workers\n"
    "started = []\n"
    "class Spy(workers.InThread):\n"
    "    def __init__(self, task):\n"
    "        started.append('pandas' in sys.modules)\n"
    "        super().__init__(task)\n"
    "workers.InThread = Spy\n"
)


def _loaded_after(
    code: str, modules: tuple[str, ...] = ("pandas", "numpy", "matplotlib")
) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of ``modules`` it loaded."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in "
    probe += f"{modules!r}}}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_every_help_loads_no_pandas() -> None:
    """``sipstats --help`` and each subcommand's help: click and the option tables only."""
    helps = [["--help"]] + [[name, "--help"] for name in sorted(SUBCOMMANDS)]
    code = (
        "import contextlib, io\n"
        "from sipstats.cli import main\n"
        f"for args in {helps!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(args)\n"
        "        except SystemExit as done:\n"
        "            assert done.code == 0, (args, done.code)\n"
    )
    assert _loaded_after(code) == {"pandas": False, "numpy": False, "matplotlib": False}


def test_importing_the_package_loads_no_pandas_until_the_api_is_used() -> None:
    listed = "import sipstats\nassert set(sipstats.__all__) <= set(dir(sipstats))"
    assert _loaded_after(listed)["pandas"] is False
    assert _loaded_after("import sipstats\nsipstats.analyze")["pandas"] is True


def test_every_name_of_the_api_resolves_and_analyze_stays_the_function() -> None:
    """The names load on first use; importing the ``sipstats.analyze`` package or the
    catalogue module first does not turn ``sipstats.analyze`` or ``sipstats.catalogue`` into
    a module."""
    code = (
        "import sipstats, sipstats.analyze.b2bua, sipstats.catalogue\n"
        "assert callable(sipstats.analyze) and callable(sipstats.catalogue)\n"
        "assert sipstats.analyze.__module__ == 'sipstats.analyze'\n"
        "assert all(getattr(sipstats, name) is not None for name in sipstats.__all__)\n"
    )
    assert _loaded_after(code)["pandas"] is True


def test_the_decoding_path_loads_no_pandas_until_it_builds_the_frame() -> None:
    """The command line starts reading in a thread before it imports the analysis: what the
    reading imports first must not wait for pandas, nor for numpy, which decoding into the C
    builder does not use either (the frame is built once the main thread has imported it)."""
    capture = ROOT / "sample_pcaps" / "outage.pcap"
    code = (
        "import sipstats.workers, sipstats.messages, sipstats.capture.reader, sipstats.sip\n"
        f"table, summary = sipstats.messages.decode_file({str(capture)!r})\n"
        "assert summary.sip_messages\n"
    )
    loaded = _loaded_after(code, ("pandas", "numpy"))
    assert loaded["pandas"] is False
    if c_scanner() is not None:  # the Python builder stores its columns with numpy
        assert loaded["numpy"] is False


def test_jobs_2_starts_reading_before_pandas_loads(tmp_path: Path) -> None:
    """``--jobs 2`` on a capture file: the reading thread starts before pandas is imported
    (the imports then overlap the C parser, which runs without the GIL); ``--jobs 1`` reads
    in the main thread, after."""
    capture = ROOT / "sample_pcaps" / "outage.pcap"
    code = (
        f"{_READING_SPY}"
        "from sipstats.cli import main\n"
        "for jobs in ('2', '1'):\n"
        f"    args = [{str(capture)!r}, '--report', 'json', '-q', '-j', jobs,"
        f" '-o', {str(tmp_path / 'out.json')!r}]\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, done.code\n"
        "assert started == [False], started\n"
    )
    _loaded_after(code)


def test_the_selection_options_load_no_pandas_before_the_reading_starts(tmp_path: Path) -> None:
    """``--since``, ``--until``, ``--interval`` and ``--peer`` in the forms everyone writes are
    checked without pandas: loaded while click parses, it would come before the decoding
    workers fork (each would carry it) and off the overlap with the reading."""
    capture = ROOT / "sample_pcaps" / "outage.pcap"
    args = [str(capture), "--report", "json", "-q", "-j", "2", "-o", str(tmp_path / "out.json")]
    args += ["--since", "2020-01-01T00:00:00", "--until", "+1h", "--interval", "1min"]
    args += ["--peer", "10.0.0.1:5060"]
    code = (
        f"{_READING_SPY}"
        "from sipstats.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code in (0, 1), done.code\n"
        "assert started == [False], started\n"
    )
    _loaded_after(code)


def test_start_up_reads_no_package_metadata() -> None:
    """The version is looked up when ``--version`` asks for it, not on every start."""
    code = (
        "from importlib import metadata\n"
        "def looked_up(name):\n"
        "    raise AssertionError('metadata read at start-up')\n"
        "metadata.version = looked_up\n"
        "import sipstats.cli.report\n"
    )
    _loaded_after(code)


def test_a_json_report_loads_only_what_it_writes_with(tmp_path: Path) -> None:
    """A JSON report on the local engine: no package metadata, no Dask engine, no figure,
    template or terminal library."""
    args = [str(ROOT / "sample_pcaps" / "outage.pcap"), "--report", "json", "-q"]
    code = (
        "from sipstats.cli import main\n"
        "try:\n"
        f"    main({[*args, '-o', str(tmp_path / 'o.json')]!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
    )
    unused = ("importlib.metadata", "sipstats.engines.dask_cluster", "matplotlib", "jinja2", "rich")
    assert _loaded_after(code, ("pandas", *unused)) == {
        "pandas": True,
        **dict.fromkeys(unused, False),
    }


def test_a_usage_error_loads_no_pandas() -> None:
    """``fail()``, every subcommand's error exit, needs the exit status only."""
    code = (
        "import click\n"
        "from sipstats.cli.report import fail\n"
        "try:\n"
        "    fail('no such thing')\n"
        "except click.exceptions.Exit as done:\n"
        "    assert done.exit_code == 2\n"
    )
    assert _loaded_after(code)["pandas"] is False


_WITH_ARROW = importlib.util.find_spec("pyarrow") is not None


@pytest.mark.skipif(not _WITH_ARROW, reason="pyarrow is not installed")
@pytest.mark.parametrize(
    ("call", "arrow_from", "arrow"),
    [
        ("run()", None, False),
        ("run()", 0, True),
        ("__import__('runpy').run_module('sipstats', run_name='__main__')", None, False),
        ("main(sys.argv[1:], standalone_mode=False)", None, True),
    ],
    ids=["program", "program-large-capture", "python-m", "called"],
)
def test_only_the_program_loads_pandas_without_pyarrow_for_small_captures(
    tmp_path: Path, call: str, arrow_from: int | None, arrow: bool
) -> None:
    """pandas 3 imports pyarrow as it loads (about 0.05 s and 50 MiB) only to keep ``str``
    columns in Arrow: the ``sipstats`` program's report of capture files reads no Parquet and
    does without, unless the captures are large enough for Arrow's text to use less memory
    (``ARROW_TEXT_FROM``, set to 0 here). :func:`sipstats.cli.main` called by a program
    leaves that program the pandas it would have had."""
    args = [str(ROOT / "sample_pcaps" / "outage.pcap"), "--report", "json", "-q"]
    args += ["-o", str(tmp_path / "o.json")]
    code = (
        "import atexit, sys\n"
        "def loaded():\n"
        "    from pandas.compat.pyarrow import HAS_PYARROW\n"
        "    print('pyarrow' in sys.modules, HAS_PYARROW)\n"
        "atexit.register(loaded)\n"
        "import sipstats.cli.report\n"
        "from sipstats.cli import main, run\n"
        + ("" if arrow_from is None else f"sipstats.cli.report.ARROW_TEXT_FROM = {arrow_from}\n")
        + f"sys.argv = ['sipstats', *{args!r}]\n"
        f"{call}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.split() == [str(arrow), str(arrow)]


@pytest.mark.skipif(not _WITH_ARROW, reason="pyarrow is not installed")
def test_the_program_loads_pandas_with_pyarrow_for_a_dataset(tmp_path: Path) -> None:
    """A folder may be a dataset, which pandas reads with pyarrow."""
    ingest([ROOT / "sample_pcaps" / "outage.pcap"], tmp_path / "ds", jobs=1)
    args = [str(tmp_path / "ds"), "--report", "json", "-q", "-o", str(tmp_path / "o.json")]
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(__import__('pandas').compat.pyarrow.HAS_PYARROW))\n"
        "from sipstats.cli import run\n"
        f"sys.argv = ['sipstats', *{args!r}]\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["True"]
