"""Analysis -> JSON: ``Analysis.to_dict()`` (schema ``sipstats.report/1``) as strict JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from sipstats.render.options import RenderOptions

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Spaces per level, as ``json.dumps(indent=2)`` writes them.
INDENT: Final = 2

#: The types json writes as they are (exactly these: a subclass may encode otherwise).
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})

#: The reference: what :func:`render_json` writes, encoded in Python (json's C encoder takes
#: no ``indent`` before Python 3.14).
_INDENTED: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=INDENT)


def render_json(analysis: Analysis, options: RenderOptions) -> str:
    """Indented UTF-8 JSON; NaN is refused (the analysis writes ``null`` for undefined values).

    The JSON form is language-neutral: ``options`` do not change it. The text is
    ``json.dumps(document, ensure_ascii=False, allow_nan=False, indent=2)``; each table of
    rows is written by json's C encoder at once (:func:`_rows`), about half the time.
    """
    del options
    document = analysis.to_dict()
    pieces: list[str] = []
    try:
        _encode(document, 0, pieces)
    except (ValueError, RecursionError):
        pieces = []
    if not pieces:  # the reference's text, or its error: one that names the NaN (Python
        # 3.11's C encoder does not), a circular reference, a deeper nesting than ours takes
        pieces = [_INDENTED.encode(document)]
    pieces.append("\n")
    return "".join(pieces)


def _encode(value: Any, level: int, pieces: list[str]) -> None:
    """Append ``value``'s text at nesting ``level`` to ``pieces``, as the reference writes it."""
    if isinstance(value, list | tuple) and value and _rows_of_scalars(value):
        pieces.append(_rows(value, level))
    elif isinstance(value, dict) and value and all(type(key) is str for key in value):
        key = _compact(0).encode
        _members(((key(name) + ": ", item) for name, item in value.items()), "{}", level, pieces)
    elif isinstance(value, list | tuple) and value:
        _members((("", item) for item in value), "[]", level, pieces)
    else:  # a scalar, an empty container, a dict with other keys: the reference, re-indented
        pieces.append(_INDENTED.encode(value).replace("\n", "\n" + " " * INDENT * level))


def _members(
    members: Iterable[tuple[str, Any]], brackets: str, level: int, pieces: list[str]
) -> None:
    """A container's members (the text before each value: its key, and the value) each on a
    line of its own, between ``brackets``."""
    inner = "\n" + " " * INDENT * (level + 1)
    opening = brackets[0]
    for before, item in members:
        pieces += (opening, inner, before)
        _encode(item, level + 1, pieces)
        opening = ","
    pieces += ("\n", " " * INDENT * level, brackets[1])


def _rows_of_scalars(rows: Iterable[object]) -> bool:
    """Whether ``rows`` are non-empty dicts of scalars keyed by text (table rows)."""
    keys: set[type] = set()
    values: set[type] = set()
    for row in rows:
        if type(row) is not dict or not row:
            return False
        keys.update(map(type, row))
        values.update(map(type, row.values()))
    return keys == {str} and values <= _SCALARS


def _rows(rows: list[Any] | tuple[Any, ...], level: int) -> str:
    """The text of a list of table rows at nesting ``level``, from one call of the C encoder.

    Given the item separator ``",\\n"`` plus the indentation of a row's fields, it writes
    ``[{f, f}, {f, f}]`` with each field on a line of its own. json escapes every line break
    inside a string, so ``"},\\n" + indentation + "{"`` occurs only between two rows: there,
    and at both ends, the rows' braces are put on lines of their own.
    """
    row = "\n" + " " * INDENT * (level + 1)
    field = "\n" + " " * INDENT * (level + 2)
    text = _compact(level + 2).encode(rows)
    between = text[2:-2].replace("}," + field + "{", row + "}," + row + "{" + field)
    return "".join(("[", row, "{", field, between, row, "}\n", " " * INDENT * level, "]"))


@cache
def _compact(level: int) -> json.JSONEncoder:
    """json's C encoder, each item on a line of its own, indented for nesting ``level``."""
    separators = (",\n" + " " * INDENT * level, ": ")
    return json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=separators)
