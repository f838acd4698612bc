"""The terminal report at 80 and 100 columns: no line wider, no token (address, port, code
list, path, category) broken across lines; a cell too long for any layout is shortened
with an ellipsis, never folded mid-token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from sipstats.analyze import Analysis, analyze
from sipstats.messages import read_capture
from sipstats.render import RenderOptions
from sipstats.render.tables import report_tables
from sipstats.render.text import print_report
from tests.conftest import SAMPLES
from tests.report_captures import call
from tests.sipfactory import write_pcap

V6_UAC, V6_UAS = ("fd00:1234:5678:9abc::10", 5060), ("fd00:1234:5678:9abc::20", 5080)


def _v6_capture(directory: Path) -> Analysis:
    """IPv6 endpoints, long callee URIs and several failure codes per pair."""
    packets = []
    codes = [(486, "Busy Here"), (503, "Service Unavailable"), (480, "Temporarily Unavailable")]
    for n in range(12):
        code, reason = codes[n % 3]
        for packet in call(
            n,
            n * 0.5,
            [(0.01, 100, "Trying", ()), (0.3, code, reason, ())],
            caller=f"sip:a-rather-long-caller-name-{n}@customer-{n}.example.com",
            callee=f"sip:+4930123456{n:02d}@very-long-domain-of-the-callee.example.org",
        ):
            packets.append(packet)
    path = write_pcap(directory / "a-capture-with-a-long-name-to-show-in-the-inputs.pcap", packets)
    capture = read_capture(path)
    swap = {"10.0.0.1": V6_UAC[0], "10.0.0.2": V6_UAS[0]}
    messages = capture.messages
    for column in ("src", "dst"):
        messages[column] = messages[column].astype("str").map(swap).astype("category")
    return analyze(capture)


def _text(analysis: Analysis, width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    print_report(analysis, console, RenderOptions())
    return buffer.getvalue()


def _broken_tokens(analysis: Analysis, out: str) -> list[str]:
    """Cell tokens missing from ``out`` whose cell was not shortened with an ellipsis."""
    broken = []
    for table in report_tables(analysis, definitions=False):
        if table.hidden or not table.rows:
            continue
        for row in table.rows:
            for cell in row:
                missing = [token for token in cell.split() if token not in out]
                if missing and f"{cell.split()[0][:6]}" not in _shortened(out):
                    broken += missing
    return broken


def _shortened(out: str) -> str:
    """Every line that holds an ellipsis."""
    return "\n".join(line for line in out.splitlines() if "…" in line)


@pytest.fixture(scope="module")
def analyses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysis]:
    return {
        "outage": analyze(read_capture(SAMPLES / "outage.pcap")),
        "mixed": analyze(read_capture(SAMPLES / "mixed.pcap")),
        "v6": _v6_capture(tmp_path_factory.mktemp("v6")),
    }


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("name", ["outage", "mixed", "v6"])
def test_no_line_wider_and_no_token_broken(
    analyses: dict[str, Analysis], name: str, width: int
) -> None:
    out = _text(analyses[name], width)
    assert max(len(line) for line in out.splitlines()) <= width
    assert _broken_tokens(analyses[name], out) == []


def test_the_v6_capture_has_the_long_tokens_it_is_meant_to() -> None:
    """The fixture is only worth its name if its addresses are long: guard against drift."""
    assert len(f"[{V6_UAS[0]}]:{V6_UAS[1]}") > 25


@pytest.mark.parametrize("width", [80, 100])
def test_chinese_report_fits_in_terminal_cells(analyses: dict[str, Analysis], width: int) -> None:
    """Chinese characters take two cells: widths are counted in cells, and no column vanishes."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    print_report(analyses["outage"], console, RenderOptions(lang="zh"))
    lines = buffer.getvalue().splitlines()
    assert max(cell_len(line) for line in lines) <= width
    findings = lines[lines.index(next(line for line in lines if line.startswith("发现"))) + 3]
    assert findings.split()[:2] == ["1", "高"]
    assert "无最终响应的事务" in buffer.getvalue()
