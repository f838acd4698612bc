"""Any messages table, however odd, analyses without error and keeps the counting invariants."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipstats import schema
from sipstats.analyze import analyze
from tests.analysis_fixtures import UAC, UAS, capture, msg

PROXY = ("10.0.0.3", 5060)

message = st.builds(
    msg,
    st.floats(min_value=0, max_value=120, allow_nan=False),
    st.one_of(
        st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS"]),
        st.sampled_from([100, 180, 183, 200, 302, 401, 407, 423, 486, 487, 503, 603, 699]),
    ),
    call_id=st.sampled_from(["a", "b", "c"]),
    cseq=st.integers(min_value=1, max_value=3),
    cseq_method=st.one_of(st.none(), st.sampled_from(["INVITE", "BYE", "REGISTER", "ACK"])),
    branch=st.sampled_from(["z9hG4bK-1", "z9hG4bK-2", "legacy", "z9hG4bK-3"]),
    src=st.sampled_from([UAC, UAS, PROXY]),
    dst=st.sampled_from([UAC, UAS, PROXY]),
    from_tag=st.sampled_from([None, "f1", "f2"]),
    to_tag=st.sampled_from([None, "t1", "t2", "f1"]),
    retry_after=st.one_of(st.none(), st.integers(min_value=0, max_value=600)),
)


@settings(
    max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(message, max_size=25))
def test_any_message_list_analyses(rows: list[dict]) -> None:
    a = analyze(capture(rows))
    m = a.messages
    assert list(m.columns) == list(schema.ANALYZED_MESSAGES)
    assert len(m) == len(rows)
    assert list(a.transactions.columns) == list(schema.TRANSACTIONS)
    assert list(a.calls.columns) == list(schema.CALLS)
    assert list(a.registrations.columns) == list(schema.REGISTRATIONS)
    # Every message sits in a transaction; the first message of one is never a copy.
    assert set(m["transaction"]) == set(a.transactions["transaction"])
    assert not m.drop_duplicates("transaction")["retransmission"].any()
    assert a.transactions["retransmissions"].sum() == m["retransmission"].sum()
    for table in (a.by_code, a.by_method):
        assert (table["count"] == table["unique"] + table["retransmissions"]).all()
    first_invites = m[m["is_request"] & (m["method"] == "INVITE") & m["to_tag"].isna()]
    assert len(a.calls) <= len(first_invites)
    assert a.calls["outcome"].notna().all()
    json.dumps(a.to_dict(), allow_nan=False)
