"""Call list -> text, CSV or JSON: one line (row, object) per call.

Text cells come from the capture: control characters are spelled out (no terminal escape
sequence reaches the terminal), CSV cells are formula-neutralised, JSON is strict.
"""

from __future__ import annotations

import json
from typing import Final

import pandas as pd

from sipstats.render.csvout import safe_frame
from sipstats.render.tables import fmt_num, fmt_timestamp, text
from sipstats.textsafe import visible

#: JSON schema identifier of the call list.
CALLS_SCHEMA: Final = "sipstats.calls/1"

_TEXT_COLUMNS: Final = (
    ("start (UTC)", "start_ts"),
    ("outcome", "outcome"),
    ("code", "final_status"),
    ("cause", "cause"),
    ("PDD ms", "pdd_ms"),
    ("dur s", "duration_s"),
    ("caller", "caller"),
    ("callee", "callee"),
    ("Call-ID", "call_id"),
)
_NUMERIC: Final = {"final_status", "cause", "pdd_ms", "duration_s"}


def _cell(column: str, value: object) -> str:
    if column == "start_ts":
        return fmt_timestamp(value)
    if column in ("pdd_ms", "duration_s"):
        return fmt_num(value, digits=0 if column == "pdd_ms" else 1)
    return visible(text(value))


def calls_text(frame: pd.DataFrame) -> str:
    """Aligned columns, one line per call, then a count."""
    rows = [
        [_cell(column, value) for _, column in _TEXT_COLUMNS for value in (row[column],)]
        for row in frame.to_dict("records")
    ]
    header = [name for name, _ in _TEXT_COLUMNS]
    widths = [max([len(header[i]), *(len(row[i]) for row in rows)]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if column in _NUMERIC else cell.ljust(width)
            for cell, width, (_, column) in zip(cells, widths, _TEXT_COLUMNS, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(header), *(line(row) for row in rows)]
    noun = "call" if len(rows) == 1 else "calls"
    lines.append(f"{len(rows)} {noun}" if rows else "no call matched")
    return "\n".join(lines) + "\n"


def calls_csv(frame: pd.DataFrame) -> str:
    """Every list column; text cells formula-neutralised; times ISO 8601 UTC."""
    out: str = safe_frame(frame).to_csv(
        index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ", lineterminator="\n"
    )
    return out


def calls_json(frame: pd.DataFrame) -> str:
    """``{"schema": "sipstats.calls/1", "calls": [...]}``; missing values are null."""
    records = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    document = {"schema": CALLS_SCHEMA, "count": len(records), "calls": records}
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=2) + "\n"
