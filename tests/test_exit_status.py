"""One exit-status rule for every command that writes something: 0 every input read cleanly,
1 written although an input was damaged, unreadable or held no SIP, 2 nothing usable.

Each command is run on a good capture next to one without SIP (RTP only): all of them
exit 1 and name that input on stderr (diff used to exit 0 silently, and crashed on the
empty side), because they share ``sipstats.report.exit_status``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sipstats.capture.summary import InputSummary, Survey
from sipstats.cli import main
from sipstats.report import EXIT_DAMAGED, EXIT_OK, exit_status
from tests.report_captures import mixed_capture
from tests.sipfactory import T0, udp, write_pcap


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exit")
    rtp = [
        udp(b"\x80\x00" + bytes(170), T0 + n * 0.02, ("10.0.0.1", 40000), ("10.0.0.2", 40002))
        for n in range(20)
    ]
    return {
        "good": mixed_capture(base / "good.pcap"),
        "rtp": write_pcap(base / "rtp-only.pcap", rtp),
        "base": base,
    }


def test_the_rule() -> None:
    clean = InputSummary("a.pcap", format="pcap", packets=3)
    without_sip = InputSummary("b.pcap", format="pcap", packets=3, no_sip=Survey())
    damaged = InputSummary("c.pcap", format="pcap", packets=3, errors=["cut short"])
    assert exit_status([clean]) == EXIT_OK
    assert exit_status([clean, without_sip]) == EXIT_DAMAGED
    assert exit_status([damaged]) == EXIT_DAMAGED
    assert exit_status([clean], False, True) == EXIT_DAMAGED  # e.g. filters matched nothing


def _commands(captures: dict[str, Path]) -> dict[str, list[str]]:
    good, rtp, base = (str(captures[k]) for k in ("good", "rtp", "base"))
    return {
        "report": [good, rtp, "--report", "json", "-o", f"{base}/r.json"],
        "calls": ["calls", good, rtp],
        "flow": ["flow", good, rtp, "--call-id", "call-1@example.com"],
        "extract": ["extract", good, rtp, "--code", "486", "-o", f"{base}/x.pcap"],
        "diff": ["diff", good, rtp],  # one side per argument: the second holds no SIP
    }


@pytest.mark.parametrize("command", ["report", "calls", "flow", "extract", "diff"])
def test_every_command_exits_1_for_an_input_without_sip(
    captures: dict[str, Path], command: str
) -> None:
    result = CliRunner().invoke(main, _commands(captures)[command])
    assert result.exit_code == EXIT_DAMAGED, result.output
    assert str(captures["rtp"]) in result.stderr


def test_diff_names_a_saved_report_that_recorded_a_flagged_input(
    captures: dict[str, Path],
) -> None:
    saved = captures["base"] / "flagged.json"
    args = [str(captures["good"]), str(captures["rtp"]), "--report", "json", "-o", str(saved)]
    assert CliRunner().invoke(main, args).exit_code == EXIT_DAMAGED
    result = CliRunner().invoke(main, ["diff", str(captures["good"]), str(saved)])
    assert result.exit_code == EXIT_DAMAGED, result.output
    assert f"{saved}: the saved report records an input" in result.stderr


def test_ingest_exits_1_for_an_input_without_sip(captures: dict[str, Path]) -> None:
    pytest.importorskip("pyarrow.parquet", reason="the dask extra is not installed")
    dataset = captures["base"] / "dataset"
    args = ["ingest", str(captures["good"]), str(captures["rtp"]), "--to", str(dataset)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_DAMAGED, result.output
    assert str(captures["rtp"]) in result.stderr
