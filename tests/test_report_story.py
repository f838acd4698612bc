"""When and who: the timeline section, failure tables per responder / requester / caller /
callee, the HTML key figures and the failures figure, on a capture whose truth is known."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from sipstats.analyze import Analysis, analyze
from sipstats.cli import main
from sipstats.messages import read_capture
from sipstats.render import RENDERERS, RenderOptions, plots
from sipstats.render.tables import report_tables
from sipstats.select import filter_capture
from tests.analysis_fixtures import capture, invite_call
from tests.conftest import SAMPLES


def _outage() -> Analysis:
    """2 calls/s for 60 s from two callers' hosts; the callee host answers 503 from 20 to 35 s."""
    rows: list[dict[str, Any]] = []
    for i in range(120):
        t = i / 2
        final = 503 if 20 <= t + 1.0 < 35 else 200
        for row in invite_call(f"c{i}", final, t=t, bye_after=0.5):
            row["from_uri"] = f"sip:user{i % 4}@example.com"
            row["to_uri"] = "sip:shop@example.com" if i % 3 else "sip:desk@example.com"
            rows.append(row)
    return analyze(capture(sorted(rows, key=lambda r: r["ts"])), interval="5s")


@pytest.fixture(scope="module")
def outage() -> Analysis:
    return _outage()


def _render(analysis: Analysis, fmt: str, lang: str = "en") -> str:
    render = RENDERERS[fmt].render
    assert render is not None
    return render(analysis, RenderOptions(lang="zh" if lang == "zh" else "en"))


def test_failures_per_responder_requester_caller_and_callee(outage: Analysis) -> None:
    responder = outage.failures_by_responder
    assert responder["responder"].tolist() == ["10.0.0.2:5060"]
    assert responder["failures"].tolist() == [30]
    # 120 INVITE finals + 90 BYE 200s: every final counts in the row's denominator
    assert responder["finals"].tolist() == [210]
    assert responder["failure_share"].iloc[0] == pytest.approx(30 / 210)
    assert outage.failures_by_requester["requester"].tolist() == ["10.0.0.1:5060"]
    callers = outage.failures_by_caller
    assert sorted(callers["caller"]) == [f"user{n}@example.com" for n in range(4)]
    assert callers["failures"].sum() == 30
    assert callers["share_of_failures"].sum() == pytest.approx(1.0)
    callees = outage.failures_by_callee.set_index("callee")["failures"].to_dict()
    assert callees == {"shop@example.com": 20, "desk@example.com": 10}
    assert outage.failures_by_callee["codes"].tolist() == ["503x20", "503x10"]


def test_timeline_section_in_text_markdown_and_json(outage: Analysis) -> None:
    text = _render(outage, "text")
    assert "Final responses over time" in text
    assert re.search(r"22:13:40 .* onset #1", text)
    assert re.search(r"22:13:5[05] .* end #1", text)
    md = _render(outage, "md")
    assert "## Final responses over time" in md
    buckets = json.loads(_render(outage, "json"))["timeline"]["buckets"]
    outage_bucket = next(b for b in buckets if b["start"].startswith("2023-11-14T22:13:45"))
    assert outage_bucket["5xx"] == 10
    assert outage_bucket["finals"] == outage_bucket["2xx"] + 10
    assert outage_bucket["failure_share"] == pytest.approx(10 / outage_bucket["finals"])


def test_every_section_comes_after_the_findings(outage: Analysis) -> None:
    keys = [t.key for t in report_tables(outage)]
    assert keys[:4] == ["findings", "selection", "summary", "failure_timeline"]
    for fmt in ("text", "md"):
        body = _render(outage, fmt)
        assert body.index("Findings") < body.index("Summary") < body.index("Failures per responder")


def test_ratios_say_their_denominator(outage: Analysis) -> None:
    text = _render(outage, "text")
    settled = len(outage.calls)
    assert re.search(rf"Answer ratio \(ASR\)\s+75\.0 % of {settled}", text)
    asr = outage.metrics.set_index("name").loc["ASR", "definition"]
    assert "in progress" in asr


def test_html_key_figures_first(outage: Analysis) -> None:
    page = _render(outage, "html")
    cards = dict(
        re.findall(r'id="card-(\w+)"><div class="k">[^<]*</div><div class="v">([^<]*)<', page)
    )
    assert cards["calls"] == "120"
    assert cards["asr"] == "75.0 %"
    assert cards["failed"] == "30"
    assert cards["top_failure"] == "503 × 30"
    assert cards["worst_responder"] == "10.0.0.2:5060"
    assert cards["onset"] == "22:13:40"
    assert (
        page.index('id="key_figures"') < page.index('id="findings"') < page.index('id="by_method"')
    )


def test_failures_figure_marks_onset_and_end_with_wall_clock_ticks(outage: Analysis) -> None:
    fig = plots.failures(outage)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Time (UTC), 2023-11-14"
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in ticks), ticks
    marks = [t.get_text() for t in ax.texts]
    assert marks == ["onset #1", "end #1"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["5xx", "Failure share"]


def test_outcome_bars_are_coloured_by_outcome(outage: Analysis) -> None:
    fig = plots.outcomes(outage)
    bars = fig.axes[0].patches
    colours = {round(b.get_width()): b.get_facecolor() for b in bars}
    to_rgba = pd.Series(plots.OUTCOME_COLOURS).map(
        lambda c: tuple(int(c[i : i + 2], 16) / 255 for i in (1, 3, 5))
    )
    assert colours[90][:3] == pytest.approx(to_rgba["answered"])
    assert colours[30][:3] == pytest.approx(to_rgba["server_failure"])


def test_independent_calls_are_not_retries_nor_a_storm() -> None:
    """Many callers to many callees, every other call a 503 with Retry-After: 10; nobody ever
    calls the same callee twice, so nobody retried, whatever the server view shows."""
    rows: list[dict[str, Any]] = []
    for i in range(80):
        final = 503 if i % 2 else 200
        call = invite_call(
            f"i{i}", final, t=i / 4, bye_after=0.5, retry_after=10 if i % 2 else None
        )
        for row in call:
            row["from_uri"] = f"sip:caller{i}@example.com"
            row["to_uri"] = f"sip:callee{i}@example.com"
        rows += call
    analysis = analyze(capture(sorted(rows, key=lambda r: r["ts"])))
    per_target = analysis.retry_after.set_index("code").loc["503"]
    assert (per_target["retried"], per_target["too_early"], per_target["not_retried"]) == (0, 0, 40)
    assert analysis.storms.empty
    assert not analysis.findings["kind"].isin(["retry_storm", "retry_after_ignored"]).any()
    text = _render(analysis, "text")
    server = text[text.index("Retry-After per server") :]
    header = next(line for line in server.splitlines() if line.lstrip().startswith("Code"))
    assert "Too early" not in header
    assert "During Retry-After" in header
    assert "Retry-After per target" in text


def test_every_output_records_inputs_filters_and_the_window_covered() -> None:
    whole = read_capture(SAMPLES / "outage.pcap", ports=[5060])
    selected = filter_capture(whole, since=pd.Timedelta(seconds=20), peer="127.0.75.20")
    analysis = analyze(selected)
    data = analysis.to_dict()["selection"]
    assert data["filters"]["ports"] == "5060"
    assert data["filters"]["peer"] == "127.0.75.20"
    assert data["filters"]["since"].startswith("2026-11-25T10:59:30.723")
    assert data["messages_before_selection"] == 1523
    assert data["messages"] == len(analysis.messages) < 1523
    assert data["window"]["start"] >= "2026-11-25T10:59:30.723"
    assert data["matched_nothing"] is False
    for fmt in ("text", "md", "html"):
        body = _render(analysis, fmt)
        assert "outage.pcap" in body
        assert "peer 127.0.75.20" in body, fmt
        assert "Window analysed" in body, fmt
    assert "统计范围" in _render(analysis, "text", lang="zh")


def test_a_filter_that_matches_nothing_warns_and_exits_1() -> None:
    result = CliRunner().invoke(
        main, [str(SAMPLES / "outage.pcap"), "--peer", "10.9.9.9", "--report", "json"]
    )
    assert result.exit_code == 1
    assert "--peer 10.9.9.9: no SIP message matched" in result.stderr
    report = json.loads(result.stdout)
    assert report["selection"]["matched_nothing"] is True
    unfiltered = CliRunner().invoke(main, [str(SAMPLES / "outage.pcap"), "--report", "json"])
    assert unfiltered.exit_code == 0
    assert json.loads(unfiltered.stdout)["selection"]["filters"] == {}


def test_two_captures_write_csv_into_one_folder_without_overwriting(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    for name in ("outage", "basic"):
        result = CliRunner().invoke(
            main, [str(SAMPLES / f"{name}.pcap"), "--report", "csv", "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
    names = {p.name for p in out.iterdir()}
    assert {"outage.calls.csv", "basic.calls.csv", "outage.by_code.csv"} <= names
    with (out / "outage.calls.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pdd = [row["pdd_ms"] for row in rows if row["pdd_ms"]]
    assert pdd
    assert all(len(value.partition(".")[2]) <= 3 for value in pdd), pdd[:5]
