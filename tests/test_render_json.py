"""The JSON writer: ``json.dumps(..., indent=2)``'s text, byte for byte, written faster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipstats.render.jsonout import indented_json

FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers() | FINITE | st.text()
KEYS = st.text() | st.integers() | st.booleans() | st.none() | FINITE
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=3)
    ),
    max_leaves=30,
)


def _reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=2)


@given(VALUES)
def test_as_json_dumps_indents(value: Any) -> None:
    assert indented_json(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"rows": [{"caller": 'a"b\n\u00e9}', "n": 1, "share": 0.5, "none": None}, {}, []]},
        [[], {}, [[]], [{}], {"a": {}}, {"a": []}],
        {"a": {1: [1, 2], None: {"b": True}, 2.5: "x"}},  # keys json turns into text
        {"deep": {"deeper": {"rows": [[1, 2], ["3", {"k": False}]]}}},
        "text",
        1.0e-7,
    ],
)
def test_as_json_dumps_on_report_shapes(value: Any) -> None:
    assert indented_json(value) == _reference(value)


@pytest.mark.parametrize(
    "value", [{"rows": [{"x": float("nan")}]}, [float("inf")], {"a": object()}]
)
def test_refuses_what_json_refuses(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as raised:
        _reference(value)
    with pytest.raises(raised.type):
        indented_json(value)
