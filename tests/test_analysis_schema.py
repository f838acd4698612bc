"""One schema: every DataFrame of an Analysis has the columns and dtypes ``schema.py`` declares,
whether the capture is empty, small, or the bundled outage sample."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sipstats import analyze, read_capture, schema
from sipstats.analyze import Analysis
from sipstats.catalogue import classify
from sipstats.messages import Capture
from tests.conftest import ROOT
from tests.drill_captures import drill_capture
from tests.report_captures import mixed_capture


def _tables(analysis: Analysis) -> dict[str, pd.DataFrame]:
    return {
        field.name: getattr(analysis, field.name)
        for field in dataclasses.fields(analysis)
        if isinstance(getattr(analysis, field.name), pd.DataFrame)
    }


@pytest.fixture(scope="module")
def analyses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysis]:
    base = tmp_path_factory.mktemp("schema")
    return {
        "empty": analyze(Capture(messages=schema.empty(schema.MESSAGES))),
        "mixed": analyze(read_capture(mixed_capture(base / "mixed.pcap"))),
        "proxied": analyze(read_capture(drill_capture(base / "drill.pcap"))),  # a Q.850 cause
        "outage": analyze(read_capture(ROOT / "sample_pcaps" / "outage.pcap")),
        "register": analyze(read_capture(ROOT / "sample_pcaps" / "register.pcap")),
    }


def test_every_table_has_a_schema(analyses: dict[str, Analysis]) -> None:
    assert set(_tables(analyses["empty"])) == set(schema.ANALYSIS_TABLES)


@pytest.mark.parametrize("case", ["empty", "mixed", "proxied", "outage", "register"])
@pytest.mark.parametrize("name", list(schema.ANALYSIS_TABLES))
def test_table_follows_its_schema(analyses: dict[str, Analysis], case: str, name: str) -> None:
    table = _tables(analyses[case])[name]
    declared = schema.ANALYSIS_TABLES[name]
    assert list(table.columns) == list(declared)
    assert {c: str(t) for c, t in table.dtypes.items()} == {c: d for c, (d, _) in declared.items()}


@pytest.mark.parametrize("name", list(schema.ANALYSIS_TABLES))
def test_an_empty_table_has_the_categories_of_a_full_one(
    analyses: dict[str, Analysis], name: str
) -> None:
    """An empty table (a capture without REGISTER, ``--since`` past the end) had object
    categories where one with rows has str ones: ``pd.concat`` of the two made the column
    object (and ``union_categoricals``, the Dask engine's merge, refused them); and an
    unordered ``status_class`` where one with rows has the ordered scale of six classes."""
    empty = _tables(analyses["empty"])[name]
    full = next(t for a in analyses.values() if not (t := _tables(a)[name]).empty)
    for column, dtype in empty.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            assert dtype.categories.dtype == full[column].dtype.categories.dtype, column
            assert dtype.ordered == full[column].dtype.ordered, column
            if dtype.ordered:  # a scale: the same categories, in the same order
                assert dtype == full[column].dtype, column
            assert pd.concat([empty[column], full[column]]).dtype != np.dtype(object)


def _schemas() -> dict[str, schema.Schema]:
    """Every table schema the module declares (a column name -> (dtype, meaning) mapping),
    and every table of an analysis (some are declared inside ``FAILURES_BY`` only)."""
    declared = {
        name: value
        for name, value in vars(schema).items()
        if name.isupper()
        and not name.startswith("_")  # a group of columns several schemas share
        and isinstance(value, dict)
        and value
        and all(isinstance(v, tuple) and len(v) == 2 for v in value.values())
    }
    return declared | {f"analysis.{name}": table for name, table in schema.ANALYSIS_TABLES.items()}


@pytest.mark.parametrize("name", sorted(_schemas()))
def test_every_schema_s_empty_table_has_the_dtypes_of_a_full_one(name: str) -> None:
    """Each categorical column, empty, has the dtype it has with rows: a fixed scale
    (``status_class``) ordered with every class, as the catalogue gives it; any other
    without categories yet, of text; and an empty frame conformed gets the same."""
    declared = _schemas()[name]
    empty = schema.empty(declared)
    conformed = schema.conform(pd.DataFrame(columns=list(declared)), declared)
    for column, (dtype, _) in declared.items():
        if dtype != "category":
            continue
        assert conformed[column].dtype == empty[column].dtype, column
        if column in schema.SCALES:
            assert empty[column].dtype == classify(pd.Series([200]))[column].dtype, column
        else:
            assert not empty[column].dtype.ordered, column
            assert str(empty[column].dtype.categories.dtype) == "str", column


def test_the_bundled_captures_fill_every_table_somewhere(analyses: dict[str, Analysis]) -> None:
    """The dtype checks above mean something only for tables that hold rows in some case."""
    empty_everywhere = [
        name
        for name in schema.ANALYSIS_TABLES
        if all(_tables(analysis)[name].empty for analysis in analyses.values())
    ]
    assert empty_everywhere == []


def test_taken_rows_are_used_categories_of_those_rows() -> None:
    frame = pd.DataFrame(
        {
            "name": pd.Categorical(["a", "b", None, "c", "b"]),
            "scale": pd.Categorical(["x", "y", "x", "y", "x"], ordered=True),
            "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        }
    )
    columns = ["n", "name", "scale"]
    for rows in ([1, 2, 4], [0, 1, 2, 3, 4], [2], []):
        at = np.array(rows, dtype=np.int64)
        expected = frame.iloc[at][columns].reset_index(drop=True)
        # pandas' spelling: unordered categories narrowed, the ordered scale whole
        expected["name"] = expected["name"].cat.remove_unused_categories()
        pd.testing.assert_frame_equal(schema.taken(frame, at, columns), expected)
        part = frame.iloc[at].set_axis(at + 10)  # an index of its own: reset
        pd.testing.assert_frame_equal(schema.used_categories(part[columns]), expected)
    # every row, the columns left as they are shared: a change of the result stays there
    whole = schema.used_categories(frame)
    whole.loc[0, "n"] = 99
    whole.loc[0, "scale"] = "y"
    assert frame.loc[0, "n"] == 1
    assert frame.loc[0, "scale"] == "x"


def test_used_categories_of_a_frame_without_columns_keeps_its_rows() -> None:
    frame = pd.DataFrame(index=range(3))
    assert len(schema.used_categories(frame)) == 3
    assert len(schema.taken(frame, np.array([0, 2]), [])) == 2
