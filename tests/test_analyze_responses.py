"""The one rule for which messages the report tables count as responses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import analyze, breakdown, counts, retries, tally
from sipstats.analyze.responses import response_rows
from sipstats.messages import Capture
from tests.retry_fixtures import ANALYZED, T0, _message, messages_frame


def _messages() -> pd.DataFrame:
    """A request, a response without a status, a 180, a 486 and its retransmission, a 503
    relayed by a proxy (its copy on the server's leg is not the client's), a 603."""
    rows = [
        {"is_request": True, "method": "INVITE", "status": None},
        {"is_request": False, "status": None},
        {"is_request": False, "status": 180},
        {"is_request": False, "status": 486, "retry_after": 4, "retry_after_raw": "4"},
        {"is_request": False, "status": 486, "retransmission": True},
        {"is_request": False, "status": 503, "client_leg": False},
        {"is_request": False, "status": 503, "retry_after": 9, "retry_after_raw": "9"},
        {"is_request": False, "status": 603},
    ]
    common = {
        **{"src": "10.0.0.2", "sport": 5060, "dst": "10.0.0.1", "dport": 5060, "cseq": 1},
        **{"call_id": "c", "cseq_method": "INVITE", "branch": "z9hG4bK-c", "from_tag": "t"},
    }
    return messages_frame(
        [
            _message(**common, **row, ts=T0 + pd.Timedelta(at, unit="s"))
            for at, row in enumerate(rows)
        ]
    )


def test_response_rows_by_each_option() -> None:
    m = _messages()
    keep, code = response_rows(m)
    assert keep.tolist() == [False, False, True, True, True, True, True, True]
    assert code.tolist() == [180, 486, 486, 503, 503, 603]
    assert response_rows(m, unique=True)[1].tolist() == [180, 486, 503, 503, 603]
    assert response_rows(m, client=True)[1].tolist() == [180, 486, 486, 503, 603]
    assert response_rows(m, lowest=400, highest=599)[1].tolist() == [486, 486, 503, 503]
    assert response_rows(m, unique=True, client=True, lowest=300)[1].tolist() == [486, 503, 603]


def test_the_tables_pick_the_same_responses() -> None:
    """by_code and code_shares count every response (``unique`` without retransmissions);
    the Retry-After summary counts what the clients got: the same rule, two options."""
    m = _messages()
    by_code = counts.by_code(m).set_index("code")
    shares = breakdown.code_shares(m).set_index("code")
    assert by_code["count"].to_dict() == {"180": 1, "486": 2, "503": 2, "603": 1}
    assert by_code["unique"].to_dict() == shares["unique"].to_dict()
    assert shares["unique"].to_dict() == {"180": 1, "486": 1, "503": 2, "603": 1}
    summary = retries.retry_after_summary(m, retries.retry_table(_no_calls(), m))
    assert summary.set_index("code")["responses"].to_dict() == {"486": 1, "503": 1}
    assert retries.retry_after_values(m) == {"486": {"4": 1}, "503": {"9": 1}}


def _no_calls() -> pd.DataFrame:
    return schema.empty(schema.CALLS)


def test_no_response_without_a_status() -> None:
    m = _messages()
    keep, _ = response_rows(m)
    assert not keep[np.flatnonzero(m["status"].isna().to_numpy())].any()


def test_the_report_messages_and_the_summary_follow_the_rule() -> None:
    """The report's messages keep the unique responses the rule counts (no response without
    a status), and the summary's responses add up to the class table's unique responses."""
    m = _messages()
    kept = tally.report_messages(m)
    assert kept["status"].tolist() == [180, 486, 503, 503, 603]
    counted = tally.tally(m)
    assert counted.responses == 6  # every copy with a status; the one without is none
    assert counted.responses == int(breakdown.by_class(counted.groups)["count"].sum())
    analysis = analyze(Capture(messages=m.drop(columns=list(ANALYZED)), inputs=[]))
    summary = analysis.summary()
    assert summary["responses"] == 6
    assert summary["sip_messages"] == summary["requests"] + summary["responses"] + 1


def test_the_tally_groups_are_those_with_the_category_the_catalogue_gives_each_status() -> None:
    """The tally numbers its groups without ``category``, which the catalogue join gives per
    status (none without one): the analysed messages keep to that, and the groups and their
    counts are those of every ``GROUP_KEYS``, category included."""
    m = analyze(Capture(messages=_messages().drop(columns=list(ANALYZED)), inputs=[])).messages
    assert m is not None
    status = m["status"].astype("float64").fillna(-1)
    per_status = m["category"].astype("str").groupby(status).nunique(dropna=False)
    assert (per_status == 1).all()
    assert len(per_status) == 5
    assert m.loc[m["status"].isna(), "category"].isna().all()
    group_keys = list(tally.GROUP_KEYS)
    expected = m.astype({"category": "str", "reason": "str", "method": "str"}).groupby(
        group_keys, dropna=False, sort=False
    )
    got = tally.tally(m).groups.astype({"category": "str", "reason": "str", "method": "str"})
    assert len(got) == expected.ngroups
    pd.testing.assert_series_equal(
        got.set_index(group_keys)["n"].sort_index(),
        expected.size().rename("n").sort_index(),
        check_index_type=False,
    )


def test_the_tally_keeps_a_missing_status_apart_from_every_value() -> None:
    """A status NA is a group key of its own, also beside 0 and below-zero values (which
    no parser gives, but an Int16 column holds)."""
    for values in ([None, 0, 486, None], [None, -3, 0, 200], [-5, 7], [None, None], []):
        column = pd.Series(values, dtype="Int16")
        got = tally._codes(column)
        assert got.dtype == np.int64
        expected = pd.factorize(column.astype("float64"), use_na_sentinel=False)[0]
        assert pd.factorize(got)[0].tolist() == expected.tolist()
        present = column.notna().to_numpy()
        assert got[present].tolist() == column[present].astype("int64").tolist()
        assert (got[~present] < got[present].min(initial=0)).all()
