"""``sipstats diff``: the tests, the ordering and the three forms, on captures made here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sipstats.cli import main
from sipstats.drill.diff import (
    FISHER,
    Z_TEST,
    compare,
    fisher_exact,
    holm,
    load_side,
    proportion_test,
)
from tests.report_captures import call
from tests.sipfactory import write_pcap


def test_fisher_exact_matches_the_textbook_values() -> None:
    # R: fisher.test(matrix(c(1, 9, 9, 1), 2))$p.value == 0.001093...
    assert fisher_exact(1, 10, 9, 10) == pytest.approx(0.0010933, rel=1e-4)
    # the tea-tasting table: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value == 0.4857
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857143, rel=1e-6)
    assert fisher_exact(5, 10, 5, 10) == pytest.approx(1.0)


def test_the_test_is_chosen_by_expected_counts() -> None:
    assert proportion_test(2, 20, 3, 20)[0] == FISHER
    name, p = proportion_test(50, 100, 70, 100)
    assert name == Z_TEST
    # z = 0.2 / sqrt(0.6 * 0.4 * 0.02) = 2.8868, two-sided p = 0.003892
    assert p == pytest.approx(0.003892, rel=1e-3)
    assert proportion_test(1, 0, 1, 5) == ("", None)


def test_holm_adjusts_in_order_and_keeps_na() -> None:
    adjusted = holm(pd.Series([0.01, None, 0.04, 0.03]))
    assert adjusted.tolist()[0] == pytest.approx(0.03)
    assert pd.isna(adjusted.iloc[1])
    assert adjusted.tolist()[2:] == pytest.approx([0.06, 0.06])


def _calls(path: Path, busy: int, answered: int) -> Path:
    packets = []
    for n in range(busy + answered):
        final = (0.5, 486, "Busy Here", ()) if n < busy else (0.5, 200, "OK", ())
        packets += call(
            n, n * 2.0, [(0.01, 100, "Trying", ()), final], bye_after=1.0 if n >= busy else None
        )
    return write_pcap(path, sorted(packets, key=lambda p: float(p.time)))


def test_diff_puts_the_changed_outcome_mix_first(tmp_path: Path) -> None:
    before = _calls(tmp_path / "before.pcap", busy=3, answered=37)
    after = _calls(tmp_path / "after.pcap", busy=25, answered=15)
    rows = compare(load_side([str(before)]).report, load_side([str(after)]).report)
    changed = rows[rows["significant"]]
    keys = set(zip(changed["section"], changed["key"], strict=True))
    assert {("outcome", "busy"), ("outcome", "answered"), ("code", "486")} <= keys
    busy = rows[(rows["section"] == "outcome") & (rows["key"] == "busy")].iloc[0]
    assert (busy["before"], busy["before_total"], busy["after"], busy["after_total"]) == (
        3,
        40,
        25,
        40,
    )
    assert busy["test"] == Z_TEST
    assert busy["change"] == pytest.approx(22 / 40)
    assert rows["significant"].iloc[0]
    assert not rows["significant"].iloc[-1]
    unchanged = rows[(rows["section"] == "method") & (rows["key"] == "INVITE")].iloc[0]
    assert not unchanged["significant"]


def test_diff_cli_reads_a_saved_report_and_writes_all_forms(tmp_path: Path) -> None:
    before = _calls(tmp_path / "before.pcap", busy=3, answered=37)
    after = _calls(tmp_path / "after.pcap", busy=25, answered=15)
    runner = CliRunner()
    saved = tmp_path / "before.json"
    assert (
        runner.invoke(main, [str(before), "--report", "json", "-o", str(saved), "-q"]).exit_code
        == 0
    )
    text = runner.invoke(main, ["diff", str(saved), str(after)])
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[3].startswith("What changed")
    assert "busy" in "\n".join(lines[4:12])
    document = json.loads(
        runner.invoke(main, ["diff", str(saved), str(after), "--report", "json"]).stdout
    )
    assert document["schema"] == "sipstats.diff/1"
    assert {(r["section"], r["key"]) for r in document["what_changed"]} >= {("outcome", "busy")}
    page = tmp_path / "diff.html"
    assert (
        runner.invoke(
            main, ["diff", str(saved), str(after), "--report", "html", "-o", str(page)]
        ).exit_code
        == 0
    )
    assert "What changed" in page.read_text()


def test_diff_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text('{"schema": "other"}')
    good = _calls(tmp_path / "a.pcap", busy=1, answered=1)
    result = CliRunner().invoke(main, ["diff", str(bogus), str(good)])
    assert result.exit_code == 2
    assert "not a sipstats JSON report" in result.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"nope")
    result = CliRunner().invoke(main, ["diff", str(junk), str(good)])
    assert result.exit_code == 2
    assert "nothing readable" in result.stderr


def test_diff_reads_a_dataset_like_its_captures(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="datasets need the 'dask' extra (pyarrow)")
    from sipstats import ingest

    before = _calls(tmp_path / "before.pcap", busy=3, answered=37)
    after = _calls(tmp_path / "after.pcap", busy=25, answered=15)
    ingest([before], tmp_path / "dataset", jobs=1)
    from_dataset = compare(
        load_side([str(tmp_path / "dataset")]).report, load_side([str(after)]).report
    )
    from_capture = compare(load_side([str(before)]).report, load_side([str(after)]).report)
    pd.testing.assert_frame_equal(from_dataset, from_capture)
