"""Issue 5 and 6 items that had no test of their own: each test names the line it checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from sipstats.analyze import Analysis, analyze
from sipstats.capture.decode import BAD_HEP, INCOMPLETE_FRAGMENTS, OUT_OF_ORDER, UNDECODABLE
from sipstats.capture.pcapng import INTERFACE_CAP
from sipstats.render import RENDERERS, RenderOptions, plots
from sipstats.render.labels import (
    LABELS,
    MALFORMED_ZH,
    category_label,
    malformed_label,
    reference_label,
)
from sipstats.schema import MALFORMED_REASONS
from tests.analysis_fixtures import capture, invite_call, msg
from tests.conftest import ROOT

PROXY = ("10.0.0.5", 5060)
PHONE = ("10.0.0.1", 5060)
PBX = ("10.0.0.2", 5060)


def _retry_analysis() -> Analysis:
    """A 486 with Retry-After: 60 retried after 9 s, a 503 without one, software headers."""
    rows = invite_call("a", 486, retry_after=60) + invite_call("b", 200, t=10)
    rows += invite_call("c", 503, t=20)
    for row in rows:
        row["user_agent" if row["is_request"] else "server"] = (
            "Phone/1" if row["is_request"] else "PBX/2"
        )
    return analyze(capture(rows))


@pytest.fixture(scope="module")
def retry_analysis() -> Analysis:
    return _retry_analysis()


# -- issue 5: failure classes by code, by method, over time ------------------------------------


def test_code_shares_are_of_unique_responses(retry_analysis: Analysis) -> None:
    shares = retry_analysis.code_shares.set_index("code")
    assert shares["share"].sum() == pytest.approx(1.0)
    unique = retry_analysis.by_code.set_index("code")["unique"]
    assert (shares["unique"] == unique.reindex(shares.index)).all()
    report = retry_analysis.to_dict()["responses_by_code"]
    assert report["486"]["share"] == pytest.approx(shares.loc["486", "share"])


def test_failures_by_method_counts_classes_per_cseq_method(retry_analysis: Analysis) -> None:
    table = retry_analysis.failures_by_method.set_index("method")
    assert table.loc["INVITE", "4xx"] == 1
    assert table.loc["INVITE", "5xx"] == 1
    assert table.loc["INVITE", "failures"] == 2
    assert table.loc["BYE", "failures"] == 0
    report = retry_analysis.to_dict()["failures_by_method"]
    assert report["INVITE"]["failure_share"] == pytest.approx(2 / 3)


def test_timeline_per_class_and_per_category(retry_analysis: Analysis) -> None:
    by_class = retry_analysis.timeline("10s")
    assert list(by_class.columns) == ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "challenges"]
    assert retry_analysis.timeline("10s", by="class").equals(by_class)
    by_category = retry_analysis.timeline("10s", by="category")
    assert by_category.to_numpy().sum() == by_class.to_numpy().sum()
    assert {"callee-busy", "success"} <= set(by_category.columns)
    with pytest.raises(ValueError, match="use 'class' or 'category'"):
        retry_analysis.timeline(by="method")  # type: ignore[arg-type]
    buckets = retry_analysis.to_dict()["timeline"]["buckets"]
    assert sum(b["4xx"] for b in buckets) == 1
    assert buckets[0]["start"] == retry_analysis.timeline().index[0].isoformat()


def test_transactions_without_final_response_are_counted() -> None:
    """An INVITE nobody answered and a BYE that timed out; ACKs are never answered."""
    rows = invite_call("a", 200, bye_after=None)
    rows.append(msg(5, "INVITE", call_id="lost", branch="z9hG4bK-lost", from_tag="fl"))
    rows.append(msg(6, "BYE", call_id="a", cseq=2, branch="z9hG4bK-a-bye", from_tag="f-a"))
    analysis = analyze(capture(rows))
    assert analysis.transactions_without_final == 2
    assert analysis.to_dict()["summary"]["transactions_without_final"] == 2


# -- issue 5: Retry-After behaviour per value, gaps ----------------------------------------------


def test_retries_per_retry_after_value(retry_analysis: Analysis) -> None:
    table = retry_analysis.retries_by_retry_after
    assert table.to_dict("records") == [
        {
            "code": "486",
            "retry_after": 60,
            "failures": 1,
            "honoured": 0,
            "too_early": 1,
            "not_retried": 0,
        }
    ]
    by_value = retry_analysis.to_dict()["retry_after"]["486"]["by_value_s"]
    assert by_value == {"60": {"failures": 1, "honoured": 0, "too_early": 1, "not_retried": 0}}


def test_retry_gaps_per_verdict(retry_analysis: Analysis) -> None:
    gaps = retry_analysis.retry_gaps.set_index("verdict")
    assert gaps.loc["too_early", "retries"] == 1
    assert gaps.loc["too_early", "min_s"] == pytest.approx(9.0)  # 486 at 1 s, retry at 10 s
    assert gaps.loc["too_early", "median_ratio"] == pytest.approx(9.0 / 60)
    assert gaps.loc["honoured", "retries"] == 0
    report = retry_analysis.to_dict()["retry_gaps"]
    assert report["honoured"]["min_s"] is None  # no NaN in the JSON form
    json.dumps(retry_analysis.to_dict(), allow_nan=False)


# -- issue 6: software headers counted by the analysis, renderers only format ------------------


def test_user_agents_are_counted_by_the_analysis(retry_analysis: Analysis) -> None:
    table = retry_analysis.user_agents
    assert table.to_dict("records") == [
        {"header": "User-Agent", "value": "Phone/1", "messages": 7},
        {"header": "Server", "value": "PBX/2", "messages": 10},
    ]
    assert retry_analysis.to_dict()["user_agents"] == {
        "User-Agent": {"Phone/1": 7},
        "Server": {"PBX/2": 10},
    }


def test_report_shows_the_analysis_user_agents_table() -> None:
    analysis = _retry_analysis()
    analysis.user_agents = pd.DataFrame(
        {"header": ["Server"], "value": ["Only-This/9"], "messages": [123]}
    )
    # the software x outcome table names PBX/2 from the calls; it is not this table
    analysis.agents_by_outcome = analysis.agents_by_outcome.iloc[0:0]
    text = RENDERERS["text"].render(analysis, RenderOptions())  # type: ignore[misc]
    assert "Only-This/9" in text
    assert "PBX/2" not in text


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_new_tables_appear_in_every_report(retry_analysis: Analysis, fmt: str) -> None:
    render = RENDERERS[fmt].render
    assert render is not None
    for lang in ("en", "zh"):
        out = render(retry_analysis, RenderOptions(lang=lang))
        index = 0 if lang == "en" else 1
        for key in ("failures_by_method", "retry_by_value", "retry_gaps"):
            assert LABELS[key][index] in out, (fmt, lang, key)
        assert LABELS["transactions_without_final"][index] in out


# -- issue 5: metrics at a proxy count the caller's leg ------------------------------------------


def _proxied_call() -> list[dict[str, Any]]:
    """One answered call through a proxy, both legs captured (same Call-ID and From tag)."""
    ids = {"call_id": "px", "from_tag": "f-px", "to_tag": "t-px"}
    rows = []
    for leg, (caller, callee), t in (("1", (PHONE, PROXY), 0.0), ("2", (PROXY, PBX), 0.01)):
        b = f"z9hG4bK-{leg}"
        inv = {"call_id": "px", "from_tag": "f-px", "branch": b}
        rows += [
            msg(t, "INVITE", src=caller, dst=callee, **inv),
            msg(t + 0.5, 200, src=callee, dst=caller, to_tag="t-px", **inv),
            msg(t + 0.6, "ACK", src=caller, dst=callee, branch=f"{b}-ack", **ids),
        ]
    for leg, (caller, callee), t in (("1", (PHONE, PROXY), 3.0), ("2", (PROXY, PBX), 3.01)):
        bye = {"branch": f"z9hG4bK-{leg}-bye", "cseq": 2, **ids}
        rows += [
            msg(t, "BYE", src=caller, dst=callee, **bye),
            msg(t + 0.1, 200, src=callee, dst=caller, cseq_method="BYE", **bye),
        ]
    return sorted(rows, key=lambda r: r["ts"])


def test_transaction_metrics_count_the_callers_leg_at_a_proxy() -> None:
    analysis = analyze(capture(_proxied_call()))
    assert len(analysis.calls) == 1
    assert len(analysis.transactions[analysis.transactions["method"] == "BYE"]) == 2
    metrics = analysis.metrics.set_index("name")
    assert metrics.loc["SDD_success", "samples"] == 1  # one disconnect, not one per leg
    assert metrics.loc["SDD_success", "value"] == pytest.approx(100.0)
    assert metrics.loc["SER_transactions", "samples"] == 1
    assert "caller's leg" in metrics.loc["SDD_success", "definition"]


# -- issue 6: errors say how to get help --------------------------------------------------------


def test_usage_error_points_to_sipstats_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sipstats", "--no-such-option", "x.pcap"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "Try 'sipstats --help' for help." in done.stderr
    assert "sipstats report" not in done.stderr
    assert "Traceback" not in done.stderr


def test_every_label_is_translated_in_the_chinese_report(retry_analysis: Analysis) -> None:
    """--lang zh: no English heading or column name of the English report is left."""
    english = RENDERERS["md"].render(retry_analysis, RenderOptions(lang="en"))  # type: ignore[misc]
    chinese = RENDERERS["md"].render(retry_analysis, RenderOptions(lang="zh"))  # type: ignore[misc]
    shown = [en for en, zh in LABELS.values() if en != zh and "{" not in en and en in english]
    assert len(shown) > 40
    # words only ('p90 (s)' stays as is); 'Retry' is also part of the header name Retry-After
    words = [en for en in shown if re.search(r"[a-z]{4}", en) and en != "Retry"]
    assert [en for en in words if en in chinese] == []


def test_chinese_report_translates_metric_references_and_malformed_reasons(
    retry_analysis: Analysis,
) -> None:
    chinese = RENDERERS["md"].render(retry_analysis, RenderOptions(lang="zh"))  # type: ignore[misc]
    assert "operator KPI" not in chinese
    assert "运营指标" in chinese
    readers = {UNDECODABLE, OUT_OF_ORDER, INCOMPLETE_FRAGMENTS, BAD_HEP, INTERFACE_CAP}
    assert set(MALFORMED_REASONS) | readers <= set(MALFORMED_ZH)
    assert all(malformed_label(r, "zh") != r for r in MALFORMED_REASONS)
    assert malformed_label("bad start line") == "bad start line"
    assert reference_label("RFC 6076 §4.6 (per transaction)", "zh") == "RFC 6076 §4.6 (按事务)"


def test_timeline_figure_per_category(retry_analysis: Analysis) -> None:
    fig = plots.timeline(retry_analysis, interval="10s", by="category")
    ax = fig.axes[0]
    assert ax.get_title() == "Unique responses per 10s by category"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    frame = retry_analysis.timeline("10s", by="category")
    assert len(legend) == int((frame.sum() > 0).sum())
    assert legend[0] == category_label(str(frame.sum().idxmax()))  # most frequent at the bottom
    zh = plots.timeline(retry_analysis, interval="10s", by="category", lang="zh").axes[0]
    if plots.figure_lang("zh") == "zh":
        assert "类型" in zh.get_title()
    else:  # no CJK font installed: the figure falls back to English text
        assert zh.get_title() == ax.get_title()
