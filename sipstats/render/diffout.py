"""Diff rows -> text, JSON or HTML, "what changed" first.

Keys (codes, methods, responder addresses) can come from a capture: text shows them with
control characters spelled out, HTML escapes them (Jinja2 autoescape).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from typing import Any, Final

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from sipstats.drill.diff import ALPHA, Side, diff_document
from sipstats.textsafe import visible

_ENV = Environment(
    loader=PackageLoader("sipstats.render", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_HEADER: Final = ("section", "key", "before", "after", "change", "test", "p (Holm)")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _rate(value: Any, metric: bool) -> str:
    if _missing(value):
        return "–"
    return f"{value:.4g}" if metric else f"{100 * value:.1f} %"


def _cells(row: dict[Hashable, Any]) -> tuple[str, ...]:
    metric = row["section"] == "metric"
    if metric:
        before, after = _rate(row["before_rate"], True), _rate(row["after_rate"], True)
        change = "–" if _missing(row["change"]) else f"{row['change']:+.4g}"
    else:
        before = f"{int(row['before']):,} / {int(row['before_total']):,}"
        before += f" ({_rate(row['before_rate'], False)})"
        after = f"{int(row['after']):,} / {int(row['after_total']):,}"
        after += f" ({_rate(row['after_rate'], False)})"
        change = "–" if _missing(row["change"]) else f"{100 * row['change']:+.1f} pp"
    p = "–" if _missing(row["p_adjusted"]) else f"{row['p_adjusted']:.2g}"
    return (row["section"], visible(str(row["key"])), before, after, change, row["test"] or "–", p)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [_HEADER, *rows]) for i in range(len(_HEADER))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [_HEADER, *rows]
    ]


def diff_text(before: Side, after: Side, rows: pd.DataFrame) -> str:
    records = rows.to_dict("records")
    changed = [_cells(r) for r in records if r["significant"]]
    lines = [f"before: {visible(before.name)}", f"after:  {visible(after.name)}", ""]
    lines.append(f"What changed (Holm-adjusted p < {ALPHA}):")
    lines += _table(changed) if changed else ["  nothing significant"]
    lines += ["", "All rows:"]
    lines += _table([_cells(r) for r in records])
    return "\n".join(lines) + "\n"


def diff_json(before: Side, after: Side, rows: pd.DataFrame) -> str:
    document = diff_document(before, after, rows)
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=2) + "\n"


def diff_html(before: Side, after: Side, rows: pd.DataFrame) -> str:
    records = rows.to_dict("records")
    return _ENV.get_template("diff.html.j2").render(
        before=before.name,
        after=after.name,
        alpha=ALPHA,
        header=_HEADER,
        changed=[_cells(r) for r in records if r["significant"]],
        rows=[_cells(r) for r in records],
    )
