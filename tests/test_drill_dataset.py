"""Drill-down on a dataset: `sipstats calls`, `flow` and `extract` take what `ingest` made."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipstats.cli import main
from sipstats.dataset import ingest
from tests.drill_captures import drill_capture
from tests.test_b2bua import b2bua_capture

pytest.importorskip("pyarrow.parquet")


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    """(folder of two captures, the dataset ingested from it)."""
    captures = tmp_path / "captures"
    captures.mkdir()
    drill_capture(captures / "drill.pcap")
    b2bua_capture(captures / "b2bua.pcap")
    ingest(captures, tmp_path / "dataset", jobs=1)
    return captures, tmp_path / "dataset"


@pytest.mark.parametrize(
    "args",
    [
        ("calls", "--report", "json"),
        ("calls", "--outcome", "busy", "--correlation-header", "none"),
        ("flow", "--call-id", "call-a@10.0.0.1"),
        ("flow", "--call-id", "b-leg"),  # its caller's leg is drawn with it
    ],
    ids=["calls-json", "calls-unlinked", "flow-proxy", "flow-b2bua"],
)
def test_calls_and_flow_of_a_dataset_are_those_of_its_captures(
    stored: tuple[Path, Path], args: tuple[str, ...]
) -> None:
    captures, dataset = stored
    command, *options = args
    from_captures = run(command, captures, *options)
    assert from_captures[0] == 0, from_captures
    assert run(command, dataset, *options) == from_captures


def test_extract_from_a_dataset_reads_the_ingested_captures(
    stored: tuple[Path, Path], tmp_path: Path
) -> None:
    captures, dataset = stored
    out = {side: tmp_path / f"{side}.pcap" for side in ("captures", "dataset")}
    for side, source in (("captures", captures), ("dataset", dataset)):
        code, _, err = run("extract", source, "--call-id", "a-leg", "-o", out[side])
        assert code == 0, err
    assert out["dataset"].read_bytes() == out["captures"].read_bytes()
    code, listed, _ = run("calls", out["dataset"], "--correlation-header", "none")
    assert code == 0
    assert "a-leg" in listed


def test_extract_says_why_it_cannot_read_the_packets_again(
    stored: tuple[Path, Path], tmp_path: Path
) -> None:
    captures, dataset = stored
    shutil.move(captures / "b2bua.pcap", tmp_path / "moved.pcap")
    target = tmp_path / "out.pcap"
    code, _, err = run("extract", dataset, "--call-id", "a-leg", "-o", target)
    assert code == 2
    assert "b2bua.pcap is missing (moved or deleted since ingest)" in err
    assert not target.exists()
    # The other capture is still as ingested: its calls are extracted.
    code, _, err = run("extract", dataset, "--call-id", "call-a@10.0.0.1", "-o", target)
    assert code == 0, err
    shutil.move(tmp_path / "moved.pcap", captures / "b2bua.pcap")
    with (captures / "b2bua.pcap").open("ab") as grown:
        grown.write(bytes(16))
    os.utime(captures / "b2bua.pcap", ns=(0, 0))
    code, _, err = run("extract", dataset, "--call-id", "a-leg", "-o", target)
    assert code == 2
    assert "b2bua.pcap changed since it was ingested" in err


def test_a_dataset_is_read_alone_and_without_ports(stored: tuple[Path, Path]) -> None:
    captures, dataset = stored
    for args in (
        ("calls", dataset, "--ports", "5060"),
        ("flow", dataset, captures, "--call-id", "a-leg"),
    ):
        code, _, err = run(*args)
        assert code == 2
        assert "a dataset is read alone and without --ports" in err
