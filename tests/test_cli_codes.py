"""``sipstats codes`` through the real entry point: click's runner and a separate process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.cells import cell_len

from sipstats.catalogue import catalogue, lookup
from sipstats.cli import main
from tests.conftest import ROOT


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["codes", *args])


def _listed_codes(output: str) -> list[int]:
    return [int(m) for m in re.findall(r"^│ ([1-6][0-9]{2}) ", output, flags=re.MULTILINE)]


def test_one_code_in_english() -> None:
    result = _run("486")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "486 Busy Here"
    assert re.search(r"^Class +4xx Request Failure$", result.stdout, re.MULTILINE)
    assert re.search(r"^Category +callee-busy$", result.stdout, re.MULTILINE)
    assert re.search(r"^Retry-After +meaningful on this code", result.stdout, re.MULTILINE)
    assert re.search(r"^Defined in +RFC 3261$", result.stdout, re.MULTILINE)
    assert "Meaning      The callee was reached but is busy" in result.stdout
    assert result.stderr == ""


def test_one_code_in_chinese() -> None:
    result = _run("486", "--lang", "zh")
    assert result.exit_code == 0, result.output
    info = lookup(486)
    assert result.stdout.splitlines()[0] == f"486 {info.reason_zh} (Busy Here)"
    assert re.search(r"^类别 +4xx 请求失败$", result.stdout, re.MULTILINE)
    assert re.search(r"^分类 +被叫忙 \(callee-busy\)$", result.stdout, re.MULTILINE)
    # The description may be folded over lines: compare it without the layout.
    flat = re.sub(r"\s+", "", result.stdout)
    assert re.sub(r"\s+", "", info.description_zh) in flat
    assert "含义" in result.stdout
    assert info.description not in result.stdout


def test_unregistered_code_is_explained_as_x00_with_a_note() -> None:
    result = _run("499")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "499 Unknown 4xx (treated as 400 Bad Request)"
    flat = " ".join(result.stdout.split())
    assert "Note not registered with IANA; treated as 400 Bad Request (RFC 3261 §8.1.3.2)" in flat
    zh = _run("699", "--lang", "zh")
    assert zh.exit_code == 0, zh.output
    assert "未在 IANA 注册；按 600 Busy Everywhere 处理" in zh.stdout


def test_class_lists_exactly_that_class() -> None:
    result = _run("--class", "4xx")
    assert result.exit_code == 0, result.output
    expected = [int(c) for c in catalogue(status_class="4xx")["code"]]
    assert _listed_codes(result.stdout) == expected
    assert result.stdout.splitlines()[0] == f"4xx Request Failure: {len(expected)} registered codes"
    assert "│ 486  │ Busy Here" in result.stdout


def test_class_is_case_insensitive_and_chinese_labels() -> None:
    result = _run("--class", "6XX", "--lang", "zh")
    assert result.exit_code == 0, result.output
    assert _listed_codes(result.stdout) == [600, 603, 604, 606, 607, 608]
    assert result.stdout.splitlines()[0] == "6xx 全局失败：共 6 个已注册状态码"
    assert "代码" in result.stdout
    assert "被叫拒绝" in result.stdout


def test_no_argument_lists_everything() -> None:
    result = _run()
    assert result.exit_code == 0, result.output
    assert _listed_codes(result.stdout) == list(catalogue()["code"])


@pytest.mark.parametrize(
    "args",
    [(), ("--lang", "zh"), ("486",), ("499", "--lang", "zh"), ("555",), ("--class", "4xx")],
)
def test_output_fits_100_columns_without_colour(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert max(cell_len(line) for line in result.stdout.splitlines()) <= 100
    assert "\x1b" not in result.stdout
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_json_one_code() -> None:
    result = _run("486", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == lookup(486).to_dict()
    assert lookup(486).reason_zh in result.stdout  # ensure_ascii=False


def test_json_unregistered_code() -> None:
    result = _run("299", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["code"], data["registered"], data["treated_as"]) == (299, False, 200)


def test_json_class_and_all() -> None:
    one_class = json.loads(_run("--class", "6xx", "--json").stdout)
    assert [entry["code"] for entry in one_class] == [600, 603, 604, 606, 607, 608]
    everything = json.loads(_run("--json").stdout)
    assert [entry["code"] for entry in everything] == list(catalogue()["code"])
    assert set(everything[0]) == set(lookup(100).to_dict())


@pytest.mark.parametrize(
    "args", [("abc",), ("700",), ("99",), ("1000",), ("--", "-486"), ("4 86",), ("",)]
)
def test_invalid_code_is_one_error_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: invalid CODE: ")
    assert "is not a SIP status code" in result.stderr
    assert "Traceback" not in result.stderr


def test_code_and_class_together_is_a_usage_error() -> None:
    result = _run("486", "--class", "4xx")
    assert result.exit_code == 2
    assert "give a CODE or --class, not both" in result.stderr


def test_unknown_class_is_a_usage_error() -> None:
    result = _run("--class", "7xx")
    assert result.exit_code == 2
    assert "7xx" in result.stderr


def _entry_point() -> list[str]:
    """The installed console script, else ``python -m sipstats``, else ``main`` itself."""
    script = Path(sys.executable).parent / "sipstats"
    if script.is_file():
        return [str(script)]
    if (ROOT / "sipstats" / "__main__.py").is_file():
        return [sys.executable, "-m", "sipstats"]
    return [sys.executable, "-c", "from sipstats.cli import main; main()"]


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [*_entry_point(), "codes", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_entry_point_in_a_separate_process() -> None:
    english = _process("486")
    assert english.returncode == 0, english.stderr
    assert english.stdout.splitlines()[0] == "486 Busy Here"
    chinese = _process("486", "--lang", "zh", "--json")
    assert chinese.returncode == 0, chinese.stderr
    assert json.loads(chinese.stdout)["reason_zh"] == lookup(486).reason_zh
    listed = _process("--class", "1xx")
    assert _listed_codes(listed.stdout) == [100, 180, 181, 182, 183, 199]
    invalid = _process("7xx")
    assert invalid.returncode == 2
    assert invalid.stdout == ""
    assert invalid.stderr.splitlines() == [
        "Error: invalid CODE: '7xx' is not a SIP status code: expected three digits, 100 to 699"
    ]
