"""The selection options read without pandas: what they accept, pandas' rules accept too.

``plain_time`` and ``plain_interval`` may only say "accepted" for text the pandas rules
(``parse_time``, ``check_interval``) accept; anything else they leave to those rules, so
the command line accepts and refuses exactly what it did when it asked pandas.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipstats.analyze.breakdown import check_interval
from sipstats.checks import plain_interval, plain_time
from sipstats.errors import OptionError
from sipstats.select import parse_time

_TIMES = r"\A ?[0-9]{4}-[01][0-9]-[0-3][0-9]([T ][0-2][0-9]:[0-6][0-9](:[0-6][0-9])?"
_TIMES += r"(\.[0-9]{1,10})?(Z|[+-][0-2][0-9]:[0-6][0-9])?)? ?\Z"
_OFFSETS = r"\A\+ ?[0-9]{1,22}(\.[0-9]{1,12})? ?(ms|s|sec|min|m|h)?\Z"
_INTERVALS = r"\A[0-9]{1,20}(ms|s|min|h|D|us)\Z"


@pytest.mark.parametrize(
    "text",
    ["2026-11-25", "2026-11-25T09:34", " 2026-11-25 09:34:50 ", "2026-11-25T09:34:50Z",
     "2026-11-25T09:34:50.123456789+01:00", "2023-11-14 23:13:25+01:00", "+90s", "+1.5",
     "+ 2min", "+250ms"],
)  # fmt: skip
def test_the_forms_everyone_writes_need_no_pandas(text: str) -> None:
    assert plain_time(text)
    parse_time(text)


@pytest.mark.parametrize(
    "text",
    ["yesterday", "+5 parsecs", "", "2026-02-30", "2026-11-25+01:00", "1500-01-01",
     "2262-04-11T23:00-05:00", "Nov 25 2026", "+99999999999999h", "2026-11-25T24:00"],
)  # fmt: skip
def test_other_forms_are_left_to_pandas(text: str) -> None:
    assert not plain_time(text)


@pytest.mark.parametrize("text", ["+١٠s", "+99999999999999999999", "+2562048h"])
def test_digits_beyond_ascii_and_offsets_beyond_range_are_option_errors(text: str) -> None:
    """Arabic-Indic digits passed the plain forms (Python's \\d), then pandas failed with a
    bare ValueError; offsets beyond pandas' range escaped as OutOfBoundsTimedelta."""
    assert not plain_time(text)
    with pytest.raises(OptionError):
        parse_time(text)


@pytest.mark.parametrize("text", ["10s", "1min", "2h", "250ms", "8760h"])
def test_one_unit_intervals_need_no_pandas(text: str) -> None:
    assert plain_interval(text)
    assert check_interval(text) == text


@pytest.mark.parametrize("text", ["auto", "60", "0s", "8761h", "1h30min", "1.5h", "1D", " 10s"])
def test_other_intervals_are_left_to_pandas(text: str) -> None:
    assert not plain_interval(text)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(_TIMES) | st.from_regex(_OFFSETS))
def test_a_plain_time_is_one_parse_time_accepts(text: str) -> None:
    if plain_time(text):
        parse_time(text)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(_INTERVALS))
def test_a_plain_interval_is_one_check_interval_accepts(text: str) -> None:
    if plain_interval(text):
        assert check_interval(text) == text
