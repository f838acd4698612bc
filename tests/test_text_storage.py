"""Text rules give one answer whatever holds pandas' ``str``: Python objects (an install
without pyarrow, and the ``sipstats`` program, which loads pandas without it) or Arrow.
pandas' ``.str`` methods do not: Arrow lower-cases ``İ`` to ``i``, Python to ``i̇``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sipstats import analyze, read_capture
from sipstats.analyze.keys import per_category
from sipstats.drill.calls import select_calls
from sipstats.report import ReportRequest, run_report
from tests.conftest import ROOT
from tests.sipfactory import sip_request, sip_response, udp, write_pcap

#: One host in two spellings that Python's ``str.lower`` makes one (``"İ".lower()`` is
#: ``"i̇"``, i and a combining dot above) and Arrow's makes two.
HOSTS = ("İSTANBUL.example", "i̇stanbul.example")
STORAGES = ["python"] + (["pyarrow"] if importlib.util.find_spec("pyarrow") else [])


def _busy_call(n: int, caller: str) -> list:
    """A call from ``caller`` refused 486 with a Q.850 Reason whose protocol is lower case, its
    INVITE correlated by X-CID and P-Charging-Vector (a B2BUA's headers) of non-ASCII text."""
    ids = {"call_id": f"call-{n}", "branch": f"z9hG4bK-{n}", "cseq": 1, "caller": caller}
    reason = ("Reason", 'q.850;cause=17;text="User busy"')
    busy = sip_response(486, "Busy", cseq_method="INVITE", to_tag="t", headers=[reason], **ids)
    correlated = [("X-CID", f"İD-{n}"), ("P-Charging-Vector", f"icid-value=Straße-{n}")]
    return [
        udp(sip_request("INVITE", headers=correlated, **ids), n),
        udp(busy, n + 0.2, ("10.0.0.2", 5060), ("10.0.0.1", 5060)),
        udp(sip_request("ACK", to_tag="t", **ids), n + 0.3),
    ]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Busy calls, one from each spelling of :data:`HOSTS` and one from a Greek user at a
    German host, in a file named ``café``."""
    callers = [f"sip:ali@{host}" for host in HOSTS] + ["sip:ΟΔΟΣΑ@Straße.example"]
    packets = [packet for n, caller in enumerate(callers) for packet in _busy_call(n, caller)]
    return write_pcap(tmp_path / "café.pcap", packets)


def test_hosts_that_differ_only_in_case_are_one_caller(capture: Path) -> None:
    analysis = analyze(read_capture(capture))
    table = analysis.failures_by_caller
    assert table[["caller", "failures"]].values.tolist() == [
        ["ali@i̇stanbul.example", 2],
        ["ΟΔΟΣΑ@straße.example", 1],
    ]
    assert analysis.code_by_cause[["final_status", "cause", "calls"]].values.tolist() == [
        [486, 17, 3]
    ]


def test_the_caller_filter_ignores_case_as_python_does(capture: Path) -> None:
    analysis = analyze(read_capture(capture))
    assert len(select_calls(analysis, caller="İSTANBUL")) == 2
    assert len(select_calls(analysis, caller="i̇stanbul.EXAMPLE")) == 2
    assert len(select_calls(analysis, caller="ΟΔΟΣ")) == 1  # the final σ folds as ς does
    assert len(select_calls(analysis, caller="STRASSE")) == 1


@pytest.mark.parametrize("storage", STORAGES)
def test_a_rule_reads_each_category_as_python_str(storage: str) -> None:
    dtype = pd.StringDtype(storage, na_value=np.nan)  # type: ignore[call-overload]
    texts = pd.Index(["İX", "i̇x", "ix", "Straße"], dtype=dtype)
    column = pd.Series(pd.Categorical.from_codes([0, 1, 2, 3, -1], categories=texts))
    chosen = per_category(column, lambda text: text.lower() == "i̇x")
    assert chosen.tolist() == [True, True, False, False, False]  # the last: NA


@pytest.mark.skipif("pyarrow" not in STORAGES, reason="pyarrow is not installed")
def test_the_program_writes_the_reports_of_the_api(capture: Path, tmp_path: Path) -> None:
    """The program (``str`` in Python objects) writes every report format byte for byte as
    the report API in this process (``str`` in Arrow)."""
    formats = ("json", "csv", "md", "text")
    run_report(ReportRequest([capture], formats=formats, output=str(tmp_path / "api")))
    command = [sys.executable, "-m", "sipstats", str(capture), "-q", "-o", str(tmp_path / "cli")]
    for fmt in formats:
        command += ["--report", fmt]
    subprocess.run(command, capture_output=True, cwd=ROOT, check=True)
    written = sorted(p.relative_to(tmp_path / "api") for p in (tmp_path / "api").rglob("*"))
    assert written == sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*"))
    assert written
    for path in written:
        if (tmp_path / "api" / path).is_file():
            assert (tmp_path / "cli" / path).read_bytes() == (tmp_path / "api" / path).read_bytes()
