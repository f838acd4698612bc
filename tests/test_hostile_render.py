"""Issue 13, packet text is inert everywhere: CSV cells with CR/LF, terminal control sequences
in the text and Markdown reports, 30 KB header values in tables (the DataFrames keep them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from click.testing import CliRunner

from sipstats.analyze import analyze
from sipstats.cli import main
from sipstats.messages import read_capture
from sipstats.render import RenderOptions
from sipstats.render.csvout import neutralise
from sipstats.render.markdown import render_markdown
from sipstats.render.tables import MAX_CELL, cell
from sipstats.render.text import render_text
from tests import hostile_inputs as hostile


def _capture(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_line_break_inside_a_csv_cell_cannot_start_a_row_with_a_formula(
    tmp_path: Path,
) -> None:
    path = _capture(tmp_path, "inj.pcap", hostile.csv_line_break())
    out = tmp_path / "csv"
    result = CliRunner().invoke(main, [str(path), "--report", "csv", "-o", str(out), "-q"])
    assert result.exit_code in (0, 1), result.output
    text = (out / "inj.messages.csv").read_text()  # CSV names carry the capture's stem
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + len(read_capture(path).messages)
    assert not any(cell_.startswith(("=", "+", "-", "@")) for row in rows for cell_ in row)
    assert "\r" not in text
    assert "inj\\r=1+1@x" in text


def test_neutralise_spells_controls_out_before_looking_for_a_formula() -> None:
    assert neutralise("inj\r=1+1@x") == "inj\\r=1+1@x"
    assert neutralise("\n=1+1") == "\\n=1+1"
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise(42) == 42


def test_terminal_control_sequences_from_packets_are_spelled_out(tmp_path: Path) -> None:
    path = _capture(tmp_path, "ctl.pcap", hostile.terminal_controls())
    analysis = analyze(read_capture(path))
    options = RenderOptions()
    for report in (render_text(analysis, options), render_markdown(analysis, options)):
        assert not any(ch in report for ch in "\x1b\x07\x7f")
        assert "Busy\\\\x1b" in report or "Busy\\x1b[2J" in report  # Markdown escapes the \\
    result = CliRunner().invoke(main, [str(path), "-q"])
    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "Busy\\x1b[2J" in result.output


def test_long_header_values_are_shortened_in_tables_only(tmp_path: Path) -> None:
    path = _capture(tmp_path, "long.pcap", hostile.long_header_values(3, 30_000))
    capture = read_capture(path)
    assert capture.messages["user_agent"].str.len().max() == 30_000
    report = render_text(analyze(capture), RenderOptions())
    assert "…" in report  # the values are shown, cut (the text report folds them to its width)
    assert report.count("A") < 10 * MAX_CELL  # three values of 30,000 in two tables before


def test_a_cell_is_bounded_and_inert() -> None:
    assert cell("x" * 5000) == "x" * (MAX_CELL - 1) + "…"
    assert cell("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert cell("short") == "short"
