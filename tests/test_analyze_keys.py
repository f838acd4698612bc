"""Integer-code helpers of the analysis against the plain pandas/numpy spelling of each."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from sipstats.analyze import keys


@pytest.mark.parametrize("seed", range(5))
def test_lookup_packed_matches_hash_lookup(seed: int) -> None:
    rng = np.random.default_rng(seed)
    width = 7
    # majors holding one key, several keys (the hash path) or none
    distinct = np.unique(rng.integers(0, 40, 25) * width + rng.integers(0, width, 25))
    values = rng.integers(0, 1000, len(distinct))
    wanted = np.where(rng.random(500) < 0.1, -1, rng.integers(0, 45 * width, 500))
    expected = keys.lookup(distinct, values, wanted)
    assert (expected >= 0).any()
    assert (expected < 0).any()
    np.testing.assert_array_equal(keys.lookup_packed(distinct, values, wanted, width), expected)


def _parts(seed: int) -> list[np.ndarray]:
    """Key parts as the analysis has them: codes with -1 for NA, a part that another decides
    (a branch's Call-ID), a wide one (a CSeq number), a constant one."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 3000))
    branch = rng.integers(-1, rows, rows)
    return [
        branch,
        (branch * 7 + 3) % 11,
        rng.integers(0, 1 << 40, rows) if seed % 2 else rng.integers(0, 3, rows),
        rng.integers(-1, 4, rows),
        np.zeros(rows, dtype=np.int64),
    ]


@pytest.mark.parametrize("seed", range(8))
def test_group_ids_number_like_groupby_in_order_of_first_appearance(seed: int) -> None:
    parts = _parts(seed)
    for used in (parts[:1], parts[:2], parts[1:4], parts):
        frame = pd.DataFrame(dict(enumerate(used)))
        expected = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
        np.testing.assert_array_equal(keys.group_ids(*used), expected)
        packed = keys.packed(*used)
        np.testing.assert_array_equal(keys.group_ids(packed), expected)


@pytest.mark.parametrize("seed", range(3))
def test_senders_and_request_keys_group_as_their_columns(seed: int) -> None:
    """A sender is a Call-ID and From tag (none without a Call-ID); a request key adds the
    CSeq method: equal ids exactly where the columns are equal."""
    rng = np.random.default_rng(seed)
    rows = 2000
    call = rng.integers(0, 300, rows)
    tag = np.where(rng.random(rows) < 0.9, call, rng.integers(0, 320, rows))
    messages = pd.DataFrame(
        {
            "call_id": pd.Categorical.from_codes(
                np.where(rng.random(rows) < 0.05, -1, call), [f"c{i}" for i in range(300)]
            ),
            "from_tag": pd.Categorical.from_codes(
                np.where(rng.random(rows) < 0.05, -1, tag), [f"t{i}" for i in range(320)]
            ),
            "cseq_method": pd.Categorical.from_codes(
                rng.integers(-1, 3, rows), ["ACK", "BYE", "INVITE"]
            ),
        }
    )
    sender = keys.senders(messages)
    has_call = messages["call_id"].notna().to_numpy()
    np.testing.assert_array_equal(sender < 0, ~has_call)
    expected = (
        messages[has_call].groupby(["call_id", "from_tag"], dropna=False, observed=True).ngroup()
    )
    assert pd.crosstab(sender[has_call], expected.to_numpy()).astype(bool).sum().eq(1).all()
    assert len(np.unique(sender[has_call])) == expected.nunique()
    request = keys.request_key(messages, sender)
    by_columns = messages[has_call].groupby(list(messages), dropna=False, observed=True).ngroup()
    assert len(np.unique(request[has_call])) == by_columns.nunique()
    assert pd.crosstab(request[has_call], by_columns.to_numpy()).astype(bool).sum().eq(1).all()
    # rows without a Call-ID share keys with none of the others
    assert not np.isin(request[~has_call], request[has_call]).any()


@pytest.mark.parametrize("seed", range(4))
def test_led_group_ids_are_group_ids(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 3000
    # a lead that nearly decides the group: most rows of a lead agree on the other parts
    lead = rng.integers(-1, 400, rows)
    method = np.where(rng.random(rows) < 0.9, lead % 3, rng.integers(0, 5, rows))
    cseq = np.where(rng.random(rows) < 0.95, lead * 7, rng.integers(0, 50, rows))
    flag = rng.random(rows) < 0.02
    expected = keys.group_ids(lead, method, cseq, flag)
    np.testing.assert_array_equal(keys.led_group_ids(lead, method, cseq, flag), expected)
    led = np.maximum(lead, 0)  # every row led: the path without copies of the led rows
    np.testing.assert_array_equal(
        keys.led_group_ids(led, method, cseq, flag), keys.group_ids(led, method, cseq, flag)
    )
    missing = np.full(rows, -1)
    np.testing.assert_array_equal(
        keys.led_group_ids(missing, method), keys.group_ids(missing, method)
    )
    assert len(keys.led_group_ids(lead[:0], method[:0])) == 0
    # a lead numbered in order of first appearance, as the decoder numbers branches
    ordered = pd.factorize(np.where(lead >= 0, lead, np.nan))[0]  # NaN: -1
    assert keys.first_appearances(ordered).size == ordered.max() + 1
    np.testing.assert_array_equal(
        keys.led_group_ids(ordered, method, cseq, flag),
        keys.group_ids(ordered, method, cseq, flag),
    )


@pytest.mark.parametrize("seed", range(4))
def test_first_last_and_count_in_group_are_groupby_of_the_masked_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 50, 2000)
    mask = rng.random(2000) < (0.02, 0.5, 0.98, 0.0)[seed]
    n = 53  # groups 50..52 hold no row
    rows = pd.Series(np.arange(2000))[mask].groupby(group[mask])
    expected = pd.DataFrame({"first": rows.min(), "last": rows.max(), "count": rows.size()})
    expected = expected.reindex(range(n)).fillna({"first": -1, "last": -1, "count": 0})
    np.testing.assert_array_equal(keys.first_in_group(group, mask, n), expected["first"])
    np.testing.assert_array_equal(keys.last_in_group(group, mask, n), expected["last"])
    np.testing.assert_array_equal(keys.count_in_group(group, mask, n), expected["count"])


@pytest.mark.parametrize("seed", range(3))
def test_pick_is_where_of_integers_to_the_extremes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    condition = rng.random(1000) < 0.5
    wide = np.iinfo(np.int64)
    yes = rng.integers(wide.min, wide.max, 1000, endpoint=True)
    no = rng.integers(wide.min, wide.max, 1000, endpoint=True)
    np.testing.assert_array_equal(keys.pick(condition, yes, no), np.where(condition, yes, no))
    np.testing.assert_array_equal(
        keys.pick(condition, yes, wide.max), np.where(condition, yes, wide.max)
    )
    narrow = rng.integers(-128, 128, 1000).astype(np.int8)
    got = keys.pick(condition, narrow, -1)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, np.where(condition, narrow, -1))


@pytest.mark.parametrize("seed", range(4))
def test_first_of_each_is_first_in_group_whatever_the_numbering(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scattered = rng.integers(-1, 300, 2000)
    ordered = pd.factorize(np.where(scattered >= 0, scattered, np.nan))[0]  # NaN: -1
    for ids in (scattered, ordered, ordered[::-1]):
        for n in (int(ids.max()) + 1, int(ids.max()) + 3):  # + 3: ids no row holds, -1
            np.testing.assert_array_equal(
                keys.first_of_each(ids, n), keys.first_in_group(ids, ids >= 0, n)
            )
    # the ids the decoder gives, every one held: the rows where each id appears first
    assert len(keys.first_appearances(ordered)) == ordered.max() + 1


@pytest.mark.parametrize("seed", range(3))
def test_group_ids_number_keys_first_seen_after_the_head_like_groupby(seed: int) -> None:
    """Keys that the first 4,096 rows hold, then keys first seen after them: group_ids finds
    the first rows of the latter separately."""
    rng = np.random.default_rng(seed)
    head = rng.integers(0, 3, 4096)
    later = np.r_[rng.integers(0, 3, 500), rng.integers(3, 40, 3000), [45, 45, 2, 44]]
    for parts in ((np.r_[head, later],), (np.r_[head, later], rng.integers(-1, 2, 4096 + 3504))):
        frame = pd.DataFrame(dict(enumerate(parts)))
        expected = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
        np.testing.assert_array_equal(keys.group_ids(*parts), expected)
    # a key of the head and new keys after it (the reviewer's case: 5 and 1 after 4,096 zeros)
    np.testing.assert_array_equal(
        keys.group_ids(np.r_[np.zeros(4096, dtype=np.int64), [5, 5, 1]]),
        np.r_[np.zeros(4096), [1, 1, 2]],
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_ns_reads_any_unit_and_refuses_what_nanoseconds_cannot_hold(unit: str) -> None:
    times = pd.Series(pd.to_datetime(["2024-05-01 12:00:01", None], utc=True)).dt.as_unit(unit)
    np.testing.assert_array_equal(
        keys.ns(times), [pd.Timestamp("2024-05-01 12:00:01", tz="UTC").value, keys.NAT]
    )
    naive = pd.Series(pd.to_datetime(["2024-05-01 12:00:01"])).dt.as_unit(unit)
    assert keys.ns(naive)[0] == pd.Timestamp("2024-05-01 12:00:01", tz="UTC").value
    if unit != "ns":  # numpy's cast to nanoseconds would wrap 2500 round to 1915
        late = pd.Series(pd.to_datetime(["2500-01-01"], utc=True)).dt.as_unit(unit)
        with pytest.raises(pd.errors.OutOfBoundsDatetime):
            keys.ns(late)


@pytest.mark.parametrize("seed", range(4))
def test_sorted_ids_are_numpy_unique(seed: int) -> None:
    for values in _parts(seed)[:3]:
        distinct, ids = keys.sorted_ids(values)
        want_distinct, want_ids = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(distinct, want_distinct)
        np.testing.assert_array_equal(ids, want_ids)
    distinct, ids = keys.sorted_ids(np.zeros(0, dtype=np.int64))
    assert len(distinct) == len(ids) == 0


@pytest.mark.parametrize(
    "values",
    [
        np.array([0]),  # a lone key 0: the table path
        np.array([0, 3, 3, 4 + 1024]),  # the largest key the table takes for four rows
        np.array([0, 3, 3, 4 + 1025]),  # one past it: hashed
        np.array([7, 2, 7, 0], dtype=np.int32),
        np.array([7, 2, 7, 0], dtype=np.int8),
        np.array([2**63 + 5, 3, 3], dtype=np.uint64),
        np.zeros(0, dtype=np.uint64),
        np.array([True, False, True]),
        np.array([2.5, -1.0, 2.5]),
        np.array([-1, 5, -1]),
    ],
)
def test_sorted_ids_take_numpy_uniques_types(values: np.ndarray) -> None:
    distinct, ids = keys.sorted_ids(values)
    want_distinct, want_ids = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(distinct, want_distinct)
    assert distinct.dtype == want_distinct.dtype
    np.testing.assert_array_equal(ids, want_ids)


def test_lookup_packed_without_keys() -> None:
    out = keys.lookup_packed(
        np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.array([3, -1]), 4
    )
    np.testing.assert_array_equal(out, [-1, -1])


def test_categorical_is_astype_category_with_repeated_texts() -> None:
    texts = pd.Index(["b", "a", "c", "a", "b", "z"], dtype="str")  # texts repeat across columns
    at = np.array([0, 1, 3, -1, 4, 2, 1, 3])
    got = keys.categorical(texts, at)
    expected = pd.Series([texts[i] if i >= 0 else None for i in at], dtype="str").astype("category")
    pd.testing.assert_series_equal(pd.Series(got), expected)
    assert list(got.categories) == ["a", "b", "c"]


def test_code_texts_most_frequent_first_then_lowest() -> None:
    group = np.array([0, 0, 0, 0, 1, 1, 1])
    code = np.array([503, 486, 486, 503, 404, 480, 480])
    top, texts = keys.code_texts(group, code)
    assert list(top) == ["486", "480"]
    assert list(texts) == ["486x2|503x2", "480x2|404x1"]


def _last_group_tabled(rows: int, codes: int) -> int:
    """The highest group :func:`keys._pair_counts` still counts in a table, for ``rows`` rows
    holding ``codes`` distinct codes."""
    return (keys._INDEXED_PER_ROW * rows + keys._INDEXED_LEAST) // codes - 1


_RNG = np.random.default_rng(1)
_LAST = _last_group_tabled(3, 2)
PAIR_CASES = {
    "mixed": (_RNG.integers(0, 50, 300), _RNG.choice([0, 404, 486, 503, 999], 300), True),
    "one group": (np.zeros(5, dtype=np.int64), np.array([486, 404, 486, 0, 999]), True),
    "codes 0 and 999": (np.array([3, 0, 3, 1]), np.array([999, 0, 0, 999]), True),
    "group at the bound": (np.array([0, _LAST, _LAST]), np.array([0, 999, 999]), True),
    "past the bound": (np.array([0, _LAST + 1, _LAST + 1]), np.array([0, 999, 999]), False),
    "sparse": (_RNG.integers(0, 50, 300) * 100_000, _RNG.choice([404, 503], 300), False),
}


@pytest.mark.parametrize("case", PAIR_CASES)
def test_pair_counts_as_np_unique_by_table_or_by_sort(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Groups few enough are counted in a group x code table (no sort), sparse ones by a sort:
    both as ``np.unique`` counts them."""
    group, code, tabled = PAIR_CASES[case]
    pair, count = np.unique(group * 1000 + code, return_counts=True)
    sorted_by_unique: list[tuple[Any, ...]] = []
    unique = np.unique

    def counted_unique(*args: Any, **kwargs: Any) -> Any:
        sorted_by_unique.append(args)
        return unique(*args, **kwargs)

    monkeypatch.setattr(np, "unique", counted_unique)
    got_pair, got_count = keys._pair_counts(group, code)
    assert len(sorted_by_unique) == (not tabled)
    np.testing.assert_array_equal(got_pair, pair)
    np.testing.assert_array_equal(got_count, count)


@pytest.mark.parametrize("seed", range(4))
def test_distinct_in_group_is_nunique_per_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, rows = 30, 500
    group = rng.integers(0, n, rows)
    # most groups hold one value, some several, some none under the mask
    values = np.where(rng.random(rows) < 0.9, group * 2, rng.integers(0, 5, rows))
    mask = (rng.random(rows) < 0.8) & (group < n - 3)
    expected = (
        pd.Series(values[mask]).groupby(group[mask]).nunique().reindex(range(n), fill_value=0)
    )
    got = keys.distinct_in_group(group, values, mask, n)
    np.testing.assert_array_equal(got, expected.to_numpy())


@pytest.mark.parametrize("seed", range(8))
def test_indexable_ids_are_equal_where_the_parts_are_and_index_a_short_table(seed: int) -> None:
    for parts in (_parts(seed)[:1], _parts(seed)[2:4], _parts(seed)):  # packed as is, or not
        ids = keys.indexable(*parts)
        groups = keys.group_ids(*parts)
        assert ids.min() >= 0
        assert ids.max() < 4 * len(ids) + 1024
        # the same partition of the rows as group_ids
        assert len(np.unique(np.stack([ids, groups]), axis=1)[0]) == len(np.unique(groups))
        assert len(np.unique(ids)) == len(np.unique(groups))


@pytest.mark.parametrize("seed", range(4))
def test_first_appearances_are_the_first_rows_of_each_id(seed: int) -> None:
    ids = keys.group_ids(*_parts(seed)[:2])
    expected = pd.Series(ids).drop_duplicates().index.to_numpy()
    np.testing.assert_array_equal(keys.first_appearances(ids), expected)
    assert len(keys.first_appearances(ids[:0])) == 0


def test_dialog_keys_and_codes_read_at_rows_from_narrow_codes() -> None:
    """Category codes come as int8 for few categories: keys made of them do not wrap."""
    tags = pd.Index([f"t{i}" for i in range(200)], dtype="str")
    call_id = pd.Series(pd.Categorical(["a", "b", None, "b"]))
    from_tag = pd.Series(pd.Categorical(["t199", None, "t0", "t5"], categories=tags))
    assert from_tag.cat.codes.dtype == np.int16
    assert call_id.cat.codes.dtype == np.int8
    width = keys.dialog_width(tags)
    assert width == len(tags) + 1
    np.testing.assert_array_equal(
        keys.dialog_key(call_id.cat.codes.to_numpy(), from_tag.cat.codes.to_numpy(), tags),
        [200, width, -1, width + 6],
    )
    # the same key of a table's columns, none for a row without a tag
    np.testing.assert_array_equal(keys.dialog(call_id, from_tag, tags), [200, -1, -1, width + 6])
    rows = np.array([False, True, True, True])
    np.testing.assert_array_equal(
        keys.dialog(call_id, from_tag, tags, rows=rows), [-1, -1, -1, width + 6]
    )
    codes = keys.codes_at(from_tag, np.array([0, -1, 1, 3]))
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, [199, -1, -1, 5])
    status = pd.Series([None, 180, 200], dtype="Int16")
    np.testing.assert_array_equal(keys.statuses(status), [0, 180, 200])


@pytest.mark.parametrize(
    ("seed", "groups", "rows", "first"),
    [
        *((seed, 40, 400, 0) for seed in range(4)),
        (4, 50, 200_000, 0),  # many rows per CODExCOUNT text: numbered by a table
        (5, 40, 400, 2**52),  # group ids whose packed sort key passes 2**62: a lexsort
    ],
)
def test_code_texts_agree_with_counting_each_group(
    seed: int, groups: int, rows: int, first: int
) -> None:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, rows) + first
    code = rng.choice([404, 480, 486, 503, 603], rows, p=[0.1, 0.1, 0.5, 0.2, 0.1])
    top, texts = keys.code_texts(group, code)
    want_top, want_texts = [], []
    for g in np.unique(group).tolist():
        counted = pd.Series(code[group == g]).value_counts()
        ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
        want_top.append(f"{ranked[0][0]:03d}")
        want_texts.append("|".join(f"{c:03d}x{n}" for c, n in ranked))
    assert list(top) == want_top
    assert list(texts) == want_texts
    empty_top, empty_texts = keys.code_texts(group[:0], code[:0])
    assert len(empty_top) == len(empty_texts) == 0


def test_ns_reads_any_unit_in_utc_and_nat_as_the_least_int64() -> None:
    times = pd.Series(
        [pd.Timestamp("2024-01-01 01:00", tz="Europe/Paris"), pd.NaT],
        dtype="datetime64[ms, Europe/Paris]",
    )
    assert keys.ns(times).tolist() == [pd.Timestamp("2024-01-01", tz="UTC").value, keys.NAT]


def test_ns_reads_arrow_timestamps() -> None:
    """A frame read with ``dtype_backend="pyarrow"`` holds Arrow timestamps: no int64 view."""
    pa = pytest.importorskip("pyarrow")
    times = pd.Series(pd.to_datetime(["2024-05-01 12:00:01", None], utc=True)).astype(
        pd.ArrowDtype(pa.timestamp("ns", tz="UTC"))
    )
    assert keys.ns(times).tolist() == [
        pd.Timestamp("2024-05-01 12:00:01", tz="UTC").value,
        keys.NAT,
    ]


def test_ns_of_nanosecond_times_is_a_read_only_view_of_the_column() -> None:
    """No copy of a row-long column per call; the view cannot change the times."""
    times = pd.Series(pd.to_datetime(["2024-05-01 12:00:01", None], utc=True)).dt.as_unit("ns")
    got = keys.ns(times)
    assert np.shares_memory(got, times.array.view("i8"))
    with pytest.raises(ValueError, match="read-only"):
        got[0] = 0


def test_ranked_texts_rank_the_texts_the_rows_hold_and_name_the_missing() -> None:
    column = pd.Series(["b", None, "a", "c", "b"], dtype="category")
    rows = np.array([True, True, True, False, True])
    rank, names = keys.ranked_texts(column, rows, "unknown")
    assert names == ["a", "b", "unknown"]
    assert rank.tolist() == [1, 2, 0, 1]
    text_rank, text_names = keys.ranked_texts(column.astype("str"), rows, "")
    assert text_names == ["", "a", "b"]
    assert text_rank.tolist() == [2, 0, 1, 2]


@pytest.mark.parametrize("seed", range(3))
def test_seconds_are_total_seconds_of_the_difference_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    later = pd.Series(pd.to_datetime(rng.integers(0, 2**62, 500), utc=True))
    # near gaps (the usual ones) and any gap, beyond 2**53 ns too; NaT on either side
    near = later.to_numpy(dtype="datetime64[ns]").view(np.int64) - rng.integers(
        -(10**12), 10**12, 500
    )
    for earlier in (
        pd.Series(pd.to_datetime(near, utc=True)),
        later.sample(frac=1, random_state=seed),
    ):
        earlier = earlier.reset_index(drop=True)
        earlier[::5], later[::7] = pd.NaT, pd.NaT
        expected = (later - earlier).dt.total_seconds().to_numpy()
        got = keys.seconds(keys.ns(later), keys.ns(earlier))
        np.testing.assert_array_equal(got, expected)
