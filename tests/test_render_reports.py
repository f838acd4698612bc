"""Text, Markdown, JSON and CSV reports of a capture built here, hostile text included."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from sipstats.analyze import Analysis, analyze
from sipstats.messages import capture_stem, read_capture
from sipstats.render import RENDERERS, RenderOptions, jsonout, write_report
from sipstats.render.csvout import TABLES, neutralise, safe_frame
from sipstats.render.labels import LABELS, label
from sipstats.render.tables import report_tables
from sipstats.render.text import print_report
from tests.conftest import load_truth
from tests.report_captures import AT_FORMULA, FORMULA, IMG_UA, MARKUP, SCRIPT, mixed_analysis


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return mixed_analysis(tmp_path_factory.mktemp("mixed"))


def test_text_fits_100_columns_without_colour(analysis: Analysis) -> None:
    out = RENDERERS["text"].render(analysis, RenderOptions())
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "\x1b" not in out
    for key in ("summary", "by_code", "by_class", "by_category", "outcomes", "delays",
                "retry_after", "early_retriers", "by_peer", "metrics", "inputs"):  # fmt: skip
        assert label(key) in out
    assert "Busy Here" in out
    assert "carol@example.com" in out


def test_text_shows_rich_markup_from_the_capture_as_typed(analysis: Analysis) -> None:
    buffer = io.StringIO()
    print_report(analysis, Console(file=buffer, width=250, color_system=None), RenderOptions())
    out = buffer.getvalue()
    assert MARKUP in out  # interpreted markup would have lost its brackets
    assert SCRIPT in out
    assert IMG_UA in out


def test_text_in_chinese_uses_chinese_labels_and_catalogue(analysis: Analysis) -> None:
    out = RENDERERS["text"].render(analysis, RenderOptions(lang="zh"))
    assert label("by_code", "zh") in out
    assert label("by_code") not in out
    reason_zh = analysis.by_code.set_index("code").loc["486", "reason_zh"]
    assert reason_zh in out


def test_every_label_exists_in_both_languages() -> None:
    for key, (en, zh) in LABELS.items():
        assert en.strip(), key
        assert zh.strip(), key
        assert en.count("{") == zh.count("{"), key


def test_report_tables_have_distinct_keys(analysis: Analysis) -> None:
    """The HTML template finds each table by its key: two tables with one key lose one."""
    keys = [table.key for table in report_tables(analysis)]
    assert len(keys) == len(set(keys)), keys
    assert report_tables(analysis, data=analysis.to_dict()) == report_tables(analysis)


def test_ranked_tables_keep_top_n(analysis: Analysis) -> None:
    top1 = RENDERERS["text"].render(analysis, RenderOptions(top=1))
    assert label("note_top", n=1) in top1
    assert "dave@example.com" in top1
    assert (
        "carol@example.com" not in top1.split(label("early_retriers"))[1].split(label("storms"))[0]
    )


def test_markdown_escapes_capture_text(analysis: Analysis) -> None:
    out = RENDERERS["md"].render(analysis, RenderOptions())
    assert not re.search(r"(?<!\\)<", out)  # every < from the capture is escaped
    assert r"\<script\>alert(1)\</script\>" in out
    assert r"\[bold red\]alarm\[/bold red\]" in out
    assert "## Responses by code" in out
    assert "|---:|" in out
    header = next(line for line in out.splitlines() if line.startswith("| Code |"))
    row = next(line for line in out.splitlines() if line.startswith("| 486 |"))

    def columns(line: str) -> int:
        return len(re.findall(r"(?<!\\)\|", line))

    assert columns(header) == columns(row)


def test_json_is_the_analysis_dict(analysis: Analysis) -> None:
    data = json.loads(RENDERERS["json"].render(analysis, RenderOptions(lang="zh")))
    assert data == json.loads(json.dumps(analysis.to_dict()))
    assert data["schema"] == "sipstats.report/1"
    assert data["responses_by_code"]["486"]["unique"] == 2


def test_json_refuses_nan(analysis: Analysis) -> None:
    broken = dataclasses.replace(analysis)
    broken.to_dict = lambda: {"value": float("nan")}  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="JSON compliant"):
        RENDERERS["json"].render(broken, RenderOptions())


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(1)", "'@SUM(1)"),
     ("\tx", "\\tx"), ("\rx", "\\rx"), ("sip:a@b", "sip:a@b"), (5, 5), (-5, -5)],
)  # fmt: skip
def test_neutralise(value: object, expected: object) -> None:
    assert neutralise(value) == expected


def test_csv_writes_one_file_per_table_with_formulas_neutralised(
    analysis: Analysis, tmp_path: Path
) -> None:
    written = write_report(analysis, "csv", tmp_path / "csv")
    stem = capture_stem([i.file for i in analysis.capture.inputs])
    assert [p.name for p in written] == [f"{stem}.{name}.csv" for name in TABLES]
    cells = []
    for path in written:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == list(getattr(analysis, path.stem.split(".")[-1]).columns)
        cells += [cell for row in rows[1:] for cell in row]
    assert "'" + FORMULA in cells
    assert "'" + AT_FORMULA in cells
    assert SCRIPT in cells
    assert IMG_UA in cells
    for cell in cells:
        if cell[:1] in ("=", "+", "@", "\t", "\r"):
            pytest.fail(f"live formula in CSV: {cell!r}")
        if cell.startswith("-"):
            float(cell)  # only numbers may start with a minus


def test_write_report_creates_parent_directories(analysis: Analysis, tmp_path: Path) -> None:
    (path,) = write_report(analysis, "md", tmp_path / "a" / "b" / "r.md")
    assert path.read_text(encoding="utf-8").startswith("# SIP capture report")


@pytest.mark.corpus
@pytest.mark.parametrize("scenario", ["c02_mixed_udp", "c06_register", "c10_retry"])
def test_text_report_of_corpus_capture_shows_truth(corpus_dir: Path, scenario: str) -> None:
    truth = load_truth(scenario)["captures"][f"{scenario}.pcap"]["sip"]
    analysis = analyze(read_capture([corpus_dir / scenario / f"{scenario}.pcap"]))
    out = RENDERERS["text"].render(analysis, RenderOptions())
    table = out.split(label("by_code"))[1].split(label("by_class"))[0]
    for code, count in truth["responses_by_code"].items():
        row = next(line for line in table.splitlines() if line.split()[:1] == [code])
        assert f" {count:,} " in row, (code, row)
    if scenario == "c06_register":
        sequences = out.split(label("reg_sequences"))[1]
        assert re.search(r"423-401-200\s+13\s", sequences)


def test_safe_frame_keeps_numbers_and_handles_category_clashes() -> None:
    frame = pd.DataFrame(
        {
            "cat": pd.Categorical(["=x", "ok", None]),
            "clash": pd.Categorical(["=x", "'=x", "ok"]),  # renaming would duplicate "'=x"
            "text": pd.Series(["-1", "x", None], dtype="str"),
            "number": [-1, 2, 3],
        }
    )
    out = safe_frame(frame)
    assert out["cat"].tolist()[:2] == ["'=x", "ok"]
    assert out["clash"].tolist() == ["'=x", "'=x", "ok"]
    assert out["text"].tolist()[:2] == ["'-1", "x"]
    assert out["number"].tolist() == [-1, 2, 3]
    assert frame["cat"].tolist()[0] == "=x"  # the analysis' own frame is not changed


def test_frames_become_the_records_their_values_would_give() -> None:
    """The JSON form turns a frame into records column by column: the same values, of the same
    Python types, as the row-by-row conversion (NA and non-finite numbers as null)."""
    import json

    import numpy as np

    from sipstats.render.document import _json_safe

    frame = pd.DataFrame(
        {
            "nullable_int": pd.Series([1, None], dtype="Int64"),
            "int32": pd.Series([1, 2], dtype="int32"),
            "uint8": pd.Series([1, 2], dtype="uint8"),
            "boolean": pd.Series([True, None], dtype="boolean"),
            "bool": [True, False],
            "category": pd.Series(["a", None], dtype="category"),
            "int_category": pd.Series([3, None], dtype="Int16").astype("category"),
            "float": [1.5, np.inf],
            "float32": pd.Series([np.nan, 2.0], dtype="float32"),
            "str": pd.Series(["x", None], dtype="str"),
            "object": pd.Series(["x", None], dtype=object),
        }
    )
    by_row = _json_safe(frame.to_dict("records"))
    by_column = _json_safe(frame)
    assert by_column == by_row
    assert [[type(v) for v in row.values()] for row in by_column] == [
        [type(v) for v in row.values()] for row in by_row
    ]
    assert json.dumps(by_column, allow_nan=False) == json.dumps(by_row, allow_nan=False)


def test_json_is_json_dumps(analysis: Analysis) -> None:
    """The report's text is ``json.dumps`` with its options (tables written at once)."""
    expected = json.dumps(analysis.to_dict(), ensure_ascii=False, allow_nan=False, indent=2)
    assert jsonout.render_json(analysis, RenderOptions()) == expected + "\n"
