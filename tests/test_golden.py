"""Golden reports (black's "cases" style): each bundled sample's text, Markdown, JSON and CSV
report, compared byte for byte with ``tests/golden/<sample>/``.

A change of output shows as a diff in review. After an intended change, refresh them with
``.venv/bin/python -m pytest tests/test_golden.py --update-golden`` and read the diff
(``git diff tests/golden``) before committing.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from sipstats.report import ReportRequest, run_report
from tests.conftest import ROOT, SAMPLES

GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLE_NAMES = sorted(path.stem for path in SAMPLES.glob("*.pcap"))
FORMATS = ("text", "md", "json", "csv")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every sample's reports, written once through the report API (relative input paths:
    the file name in a report is as given, so goldens do not depend on the checkout)."""
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        for name in SAMPLE_NAMES:
            target = tmp_path_factory.mktemp(name)
            run_report(
                ReportRequest([f"sample_pcaps/{name}.pcap"], formats=FORMATS, output=str(target))
            )
            out[name] = target
    return out


def _files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _diff(name: str, expected: str, actual: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        f"golden/{name}", "now", n=2,
    )  # fmt: skip
    shown = "".join(list(lines)[:80])
    return f"{name} differs from its golden file (refresh: pytest --update-golden)\n{shown}"


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_reports_match_their_golden_files(
    reports: dict[str, Path], sample: str, update_golden: bool
) -> None:
    actual = _files(reports[sample])
    golden = GOLDEN / sample
    if update_golden:
        for stale in golden.rglob("*") if golden.is_dir() else []:
            if stale.is_file() and stale.relative_to(golden).as_posix() not in actual:
                stale.unlink()
        for relative, text in actual.items():
            (golden / relative).parent.mkdir(parents=True, exist_ok=True)
            (golden / relative).write_text(text, encoding="utf-8")
    expected = _files(golden) if golden.is_dir() else {}
    assert sorted(expected) == sorted(actual), "files written differ from the golden set"
    for relative, text in actual.items():
        assert text == expected[relative], _diff(f"{sample}/{relative}", expected[relative], text)
