"""Analysis -> JSON: ``Analysis.to_dict()`` (schema ``sipstats.report/1``) as strict JSON."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from sipstats.render.options import RenderOptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sipstats.analyze import Analysis

__all__ = ["indented_json", "render_json"]

#: One level of indentation (``json.dumps(..., indent=2)``).
_INDENT = "  "


def render_json(analysis: Analysis, options: RenderOptions) -> str:
    """Indented UTF-8 JSON; NaN is refused (the analysis writes ``null`` for undefined values).

    The JSON form is language-neutral: ``options`` do not change it.
    """
    del options
    return indented_json(analysis.to_dict()) + "\n"


def indented_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, allow_nan=False, indent=2)``, byte for byte.

    With ``indent`` set, ``json`` writes with its pure-Python encoder (0.05-0.07 s on a report
    of 2 MB, mostly rows of the failure tables). Here each container holding no other (a row)
    is written by its C encoder, which lays out values as ``indent`` does given the
    separators of the row's depth; only the containers above the rows are walked in Python.
    """
    out: list[str] = []
    _write(value, 0, out)
    return "".join(out)


@cache
def _encoder(level: int) -> Callable[[Any], str]:
    """The C encoder writing the items of a container at ``level`` - 1 as ``indent`` does:
    one per line at ``level``. It writes a container holding none (a row) or a value."""
    item_separator = ",\n" + _INDENT * level
    encoder = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, separators=(item_separator, ": ")
    )
    return encoder.encode


def _write(value: Any, level: int, out: list[str]) -> None:
    """Append ``value`` at indentation ``level`` to ``out``."""
    items: Iterable[Any]
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        out.append(_encoder(level)(value))
        return
    for item in items:
        if isinstance(item, dict | list | tuple) and item:
            if isinstance(value, dict):
                _write_dict(value, level, out)
            else:
                _write_list(value, level, out)
            return
    # a row ('{}' and '[]' are written alike at any depth)
    text = _encoder(level + 1)(value)
    if len(text) > 2:
        text = f"{text[0]}\n{_INDENT * (level + 1)}{text[1:-1]}\n{_INDENT * level}{text[-1]}"
    out.append(text)


def _write_list(value: list[Any] | tuple[Any, ...], level: int, out: list[str]) -> None:
    separator = "[\n"
    inner = _INDENT * (level + 1)
    for item in value:
        out.append(separator + inner)
        _write(item, level + 1, out)
        separator = ",\n"
    out.append(f"\n{_INDENT * level}]")


def _write_dict(value: dict[Any, Any], level: int, out: list[str]) -> None:
    if not all(isinstance(key, str) for key in value):
        # keys that json turns into text (numbers, None, booleans): its own encoder, whose
        # lines are moved to this depth (a newline in JSON text is always written escaped)
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=len(_INDENT))
        out.append(text.replace("\n", "\n" + _INDENT * level))
        return
    separator = "{\n"
    inner = _INDENT * (level + 1)
    encode_key = _encoder(0)
    for key, item in value.items():
        out.append(f"{separator}{inner}{encode_key(key)}: ")
        _write(item, level + 1, out)
        separator = ",\n"
    out.append(f"\n{_INDENT * level}}}")
