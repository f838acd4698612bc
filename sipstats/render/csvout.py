"""Analysis -> CSV: one file per table in an output directory, formulas neutralised.

Cells from a capture are hostile: a From display name ``=HYPERLINK(...)`` must not become a
live formula when an operator opens the file in a spreadsheet (OWASP "CSV injection"). Control
characters in a text cell are spelled out first (a bare CR or LF inside a Call-ID would start
a new row whose first cell is the formula after it), then every text cell that starts with
``= + - @`` gets a leading ``'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import pandas as pd

from sipstats.messages import capture_stem
from sipstats.render.options import RenderOptions
from sipstats.textsafe import visible

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Analysis attribute -> file name stem, in the order the files are written.
TABLES: Final = ("by_code", "calls", "retries", "transactions", "messages")

_FORMULA_START: Final = ("=", "+", "-", "@")


def neutralise(value: object) -> object:
    """A string with its control characters spelled out and ``'`` before what a spreadsheet
    would run as a formula; other values unchanged."""
    if not isinstance(value, str):
        return value
    value = visible(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def _safe_column(column: pd.Series) -> pd.Series:
    """Neutralise one text column; a categorical one through its (few) categories only."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        renamed = [neutralise(c) for c in categories]
        if renamed == list(categories):
            return column
        if len(set(renamed)) == len(renamed):
            return column.cat.rename_categories(renamed)
        column = column.astype("object")  # "'=x" already a category next to "=x"
    return column.map(neutralise, na_action="ignore")


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text columns are neutralised (numbers and times untouched)."""
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            out[name] = _safe_column(out[name])
    return out


#: Decimals kept per column-name ending: milliseconds to the microsecond, seconds to the
#: nanosecond's thousand, other fractions (shares, ratios) to six places.
_DECIMALS: Final = (("_ms", 3), ("_s", 6))


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns rounded as :data:`_DECIMALS` says: 151.234 ms, not 151.23400000000001."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_float_dtype(out[name].dtype):
            digits = next((d for end, d in _DECIMALS if str(name).endswith(end)), 6)
            out[name] = out[name].round(digits)
    return out


def write_csv(analysis: Analysis, directory: Path, options: RenderOptions) -> list[Path]:
    """Write ``<stem>.<table>.csv`` for each table of :data:`TABLES` into ``directory``.

    ``stem`` names the capture (:func:`sipstats.messages.capture_stem`), so the tables of two
    captures can share a folder. CSV is language-neutral (column names are the schema's);
    ``options`` do not change it. Returns the paths written.
    """
    del options
    directory.mkdir(parents=True, exist_ok=True)
    stem = capture_stem([summary.file for summary in analysis.capture.inputs])
    written = []
    for name in TABLES:
        path = directory / f"{stem}.{name}.csv"
        rounded(safe_frame(getattr(analysis, name))).to_csv(
            path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ", lineterminator="\n"
        )
        written.append(path)
    return written
