"""Two reports -> what changed: counts, rates, change and a significance test per row.

Each side is a capture (files, directories, globs), a dataset written by ``sipstats ingest``
or a saved JSON report (``sipstats.report/1``); all become the JSON form, so a report saved
last month compares with today's capture. Rows are per call outcome, status code, response
category and class, request method and failing responder (each a share of its side's
total), and per metric.

Rate changes are tested with the two-proportion z-test, or Fisher's exact test (two-sided)
when an expected cell count is below 5, where the normal approximation fails. Each test is
named in its row. The p-values are Holm-adjusted over all tested rows (many rows are tested
at once: unadjusted, about one in twenty unchanged rows would look significant); a row is
significant when its adjusted p-value is below :data:`ALPHA`. "What changed" lists the
significant rows first, most significant first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from sipstats.analyze import analyze
from sipstats.capture.summary import InputSummary
from sipstats.dataset import is_dataset, read_dataset
from sipstats.messages import read_capture
from sipstats.schema import REPORT_ID
from sipstats.textsafe import spelled_out

ALPHA: Final = 0.05
DIFF_SCHEMA: Final = "sipstats.diff/1"
Z_TEST: Final = "two-proportion z"
FISHER: Final = "Fisher's exact"

COLUMNS: Final = (
    "section",
    "key",
    "before",
    "before_total",
    "before_rate",
    "after",
    "after_total",
    "after_rate",
    "change",
    "test",
    "p_value",
    "p_adjusted",
    "significant",
)


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its name and its report in the JSON form."""

    name: str
    """The side's inputs as reports show them (lone surrogates of a file name spelled out)."""
    report: dict[str, Any]
    flagged: bool
    """An input was damaged, unreadable or without SIP (``InputSummary.flagged``)."""
    inputs: tuple[InputSummary, ...] = ()
    """The inputs read for this side, to name the flagged ones (none for a saved report)."""


def load_side(specs: Sequence[str]) -> Side:
    """A JSON report, a dataset, or captures -> :class:`Side` (raises ValueError on a JSON
    file that is not a sipstats report)."""
    name = spelled_out(" ".join(specs))
    if len(specs) == 1 and specs[0].endswith(".json") and Path(specs[0]).is_file():
        report = json.loads(Path(specs[0]).read_text(encoding="utf-8"))
        if not isinstance(report, dict) or report.get("schema") != REPORT_ID:
            raise ValueError(f"{specs[0]}: not a sipstats JSON report ({REPORT_ID})")
        inputs = report.get("inputs", [])
        flagged = any(i.get("errors") or i.get("malformed") or i.get("no_sip") for i in inputs)
        return Side(name, report, bool(flagged))
    if len(specs) == 1 and is_dataset(specs[0]):
        capture = read_dataset(specs[0])
    else:
        capture = read_capture(list(specs))
    if not any(summary.readable for summary in capture.inputs):
        raise ValueError(f"{name}: nothing readable")
    analysis = analyze(capture)
    inputs = tuple(capture.inputs)
    return Side(name, analysis.to_dict(), any(summary.flagged for summary in inputs), inputs)


def _shares(report: dict[str, Any]) -> Iterator[tuple[str, str, int, int]]:
    """(section, key, count, total) of every share the report holds."""
    calls = report.get("calls", {})
    for key, n in calls.get("by_outcome", {}).items():
        yield "outcome", key, int(n), int(calls.get("total", 0))
    for section, table in (
        ("code", report.get("responses_by_code", {})),
        ("category", report.get("responses_by_category", {})),
        ("class", report.get("responses_by_class", {})),
        ("method", report.get("requests_by_method", {})),
    ):
        total = sum(int(row.get("unique", 0)) for row in table.values())
        for key, row in table.items():
            yield section, key, int(row.get("unique", 0)), total
    peers = report.get("failures_by_peer", [])
    by_responder: dict[str, int] = {}
    for row in peers:
        by_responder[row["responder"]] = by_responder.get(row["responder"], 0) + int(
            row["failures"]
        )
    total = sum(by_responder.values())
    for key, n in by_responder.items():
        yield "responder", key, n, total


def _metric_counts(report: dict[str, Any], name: str) -> tuple[float | None, int]:
    value = report.get("metrics", {}).get(name)
    samples = report.get("metric_definitions", {}).get(name, {}).get("samples") or 0
    return value, int(samples)


def compare(before: dict[str, Any], after: dict[str, Any]) -> pd.DataFrame:
    """Every row of :data:`COLUMNS`; significant rows first (see the module docstring)."""
    old = {(s, k): (n, t) for s, k, n, t in _shares(before)}
    new = {(s, k): (n, t) for s, k, n, t in _shares(after)}
    rows = []
    for section, key in list(dict.fromkeys([*old, *new])):
        n1, t1 = old.get((section, key), (0, _total(old, section)))
        n2, t2 = new.get((section, key), (0, _total(new, section)))
        if n1 == 0 and n2 == 0:
            continue
        test, p = proportion_test(n1, t1, n2, t2)
        rows.append(_row(section, key, n1, t1, n2, t2, test, p))
    units = {**before.get("metric_definitions", {}), **after.get("metric_definitions", {})}
    for name in units:
        (v1, s1), (v2, s2) = _metric_counts(before, name), _metric_counts(after, name)
        if v1 is None and v2 is None:
            continue
        test, p = "", None
        if units[name].get("unit") == "%" and v1 is not None and v2 is not None and s1 and s2:
            test, p = proportion_test(round(v1 * s1 / 100), s1, round(v2 * s2 / 100), s2)
        row = _row("metric", name, v1, s1, v2, s2, test, p)
        change = v2 - v1 if v1 is not None and v2 is not None else None
        row.update(before_rate=v1, after_rate=v2, change=change)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("before", "after"):  # counts stay integers next to the metrics' values
        frame[column] = pd.Series([row[column] for row in rows], dtype="object")
    frame["p_adjusted"] = holm(frame["p_value"])
    frame["significant"] = (frame["p_adjusted"] < ALPHA).fillna(False).astype(bool)
    frame["_order"] = frame["p_adjusted"].where(frame["significant"])
    frame["_size"] = -frame["change"].astype("float64").abs().fillna(0)  # None: no rate
    frame = frame.sort_values(["_order", "_size"], na_position="last", kind="stable")
    return frame.drop(columns=["_order", "_size"]).reset_index(drop=True)


def _total(shares: dict[tuple[str, str], tuple[int, int]], section: str) -> int:
    return next((t for (s, _), (_, t) in shares.items() if s == section), 0)


def _row(
    section: str, key: str, n1: Any, t1: int, n2: Any, t2: int, test: str, p: float | None
) -> dict[str, Any]:
    r1 = n1 / t1 if t1 else None
    r2 = n2 / t2 if t2 else None
    return {
        "section": section,
        "key": key,
        "before": n1,
        "before_total": t1,
        "before_rate": r1,
        "after": n2,
        "after_total": t2,
        "after_rate": r2,
        "change": None if r1 is None or r2 is None else r2 - r1,
        "test": test,
        "p_value": p,
    }


def proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[str, float | None]:
    """(test name, two-sided p-value) for x1/n1 against x2/n2; no test when a side is empty.

    Fisher's exact test when any expected count of the 2x2 table is below 5, else the
    two-proportion z-test with the pooled proportion.
    """
    if n1 <= 0 or n2 <= 0:
        return "", None
    pooled = (x1 + x2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) < 5:
        return FISHER, fisher_exact(x1, n1, x2, n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return Z_TEST, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return Z_TEST, math.erfc(abs(z) / math.sqrt(2))


def fisher_exact(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided Fisher's exact p-value of the table [[x1, n1-x1], [x2, n2-x2]]: the total
    probability of the tables (same margins) no more likely than the one observed."""
    k = x1 + x2

    def log_p(a: int) -> float:
        return _log_comb(n1, a) + _log_comb(n2, k - a) - _log_comb(n1 + n2, k)

    observed = log_p(x1)
    total = 0.0
    for a in range(max(0, k - n2), min(k, n1) + 1):
        lp = log_p(a)
        if lp <= observed + 1e-7:
            total += math.exp(lp)
    return min(1.0, total)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def holm(p_values: pd.Series) -> pd.Series:
    """Holm-Bonferroni adjusted p-values (NA stays NA)."""
    p = p_values.astype("float64")
    tested = p.dropna().sort_values(kind="stable")
    m = len(tested)
    adjusted = (tested * (m - pd.Series(range(m), index=tested.index))).cummax().clip(upper=1.0)
    return adjusted.reindex(p.index)


def diff_document(before: Side, after: Side, rows: pd.DataFrame) -> dict[str, Any]:
    """The JSON form: ``sipstats.diff/1``."""
    records = json.loads(rows.to_json(orient="records"))
    return {
        "schema": DIFF_SCHEMA,
        "before": before.name,
        "after": after.name,
        "alpha": ALPHA,
        "adjustment": "holm",
        "what_changed": [r for r in records if r["significant"]],
        "rows": records,
    }
