"""The JSON report's text: json.dumps(indent=2)'s, written faster (render/jsonout.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats.render import RenderOptions, jsonout

#: Text that could confuse a writer that reasons about the encoder's output: braces, the
#: separator between rows, line breaks and quotes, non-ASCII, a lone surrogate.
TRICKY = ["", "}", "{", "},\n    {", "\n", '"', "\\", "é", "日本", "\u2028", "\x00", "\udcff"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(TRICKY),
    st.text(),
)
keys = st.one_of(st.sampled_from(TRICKY), st.text(max_size=5))
rows = st.lists(st.dictionaries(keys, scalars, max_size=4), max_size=4)
documents = st.recursive(
    st.one_of(scalars, rows),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=30,
)


class _Document:
    """An analysis as far as the JSON writer reads one."""

    def __init__(self, document: Any) -> None:
        self.document = document

    def to_dict(self) -> Any:
        return self.document


def _render(document: Any) -> str:
    return jsonout.render_json(_Document(document), RenderOptions())  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_text_is_json_dumps(document: Any) -> None:
    expected = json.dumps(document, ensure_ascii=False, allow_nan=False, indent=2)
    assert _render(document) == expected + "\n"


def test_a_table_of_rows_is_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One C encoder call per table of rows, not one per row; the same text."""
    table = [{"code": "486", "share": 0.5, "peer": "},\n      {"}, {"code": "503", "n": None}]
    document = {"rows": table, "nested": {"deeper": [table, []], "empty": {}}}
    encoded: list[object] = []
    compact = jsonout._compact

    def counted(level: int) -> json.JSONEncoder:
        encoder = compact(level)
        return type(
            "Counted",
            (),
            {"encode": lambda _, value: encoded.append(value) or encoder.encode(value)},
        )()

    monkeypatch.setattr(jsonout, "_compact", counted)
    expected = json.dumps(document, ensure_ascii=False, allow_nan=False, indent=2)
    assert _render(document) == expected + "\n"
    assert sum(value is table for value in encoded) == 2  # the table at both places it is


def test_what_nests_deeper_than_the_writer_goes_is_the_reference_encoders() -> None:
    """The writer recurses twice per level; json.dumps, once: a document it writes is
    written, a circular one refused as json.dumps refuses it, with one traceback."""
    deep: Any = []
    for _ in range(600):
        deep = [deep, 1]
    assert _render(deep) == json.dumps(deep, ensure_ascii=False, indent=2) + "\n"
    circular: list[Any] = [1]
    circular.append(circular)
    with pytest.raises(ValueError, match=r"^Circular reference detected$") as raised:
        _render(circular)
    assert raised.value.__context__ is None


@pytest.mark.parametrize(
    ("document", "value"),
    [({"rows": [{"x": float("nan")}]}, "nan"), ([1, {"y": -math.inf}], "-inf")],
)
def test_nan_is_refused_with_the_value_named(document: Any, value: str) -> None:
    """Python 3.11's C encoder leaves the value out of its error; the command prints it."""
    with pytest.raises(
        ValueError, match=f"^Out of range float values are not JSON compliant: {value}$"
    ):
        _render(document)
