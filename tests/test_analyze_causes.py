"""Final code x Q.850 cause (RFC 3398 contradictions) and software x outcome, per call."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sipstats.analyze import analyze
from tests.analysis_fixtures import capture, msg


def _failed_call(n: int, code: int, cause: int | None, agent: str) -> list[dict[str, Any]]:
    dialog: dict[str, Any] = {"call_id": f"call-{n}", "branch": f"z9hG4bK-{n}"}
    reason = None if cause is None else ("Q.850", cause, f"cause {cause}")
    final = msg(n + 0.5, code, to_tag=f"t{n}", reason_header=reason, **dialog)
    final["server"] = agent
    invite = msg(n, "INVITE", **dialog)
    invite["user_agent"] = "Phone/1"
    return [invite, final, msg(n + 0.6, "ACK", to_tag=f"t{n}", **dialog)]


def test_code_by_cause_flags_contradictions() -> None:
    rows = [
        *_failed_call(1, 503, 34, "GW/1"),  # no circuit -> 503: consistent
        *_failed_call(2, 503, 17, "GW/1"),  # user busy maps to 486: a 5xx contradicts it
        *_failed_call(3, 486, 16, "GW/2"),  # normal clearing on a failure
        *_failed_call(4, 503, 34, "GW/1"),
        *_failed_call(5, 404, None, "GW/2"),  # no cause: not in the table
    ]
    table = analyze(capture(rows)).code_by_cause
    found = {
        (int(r.final_status), int(r.cause)): (
            r.calls,
            None if pd.isna(r.expected) else int(r.expected),
            bool(r.contradicts),
            r.cause_text,
        )
        for r in table.itertuples()
    }
    assert found == {
        (503, 34): (2, 503, False, "cause 34"),
        (503, 17): (1, 486, True, "cause 17"),
        (486, 16): (1, None, True, "cause 16"),
    }


def test_agents_by_outcome_counts_calls_per_software() -> None:
    rows = [*_failed_call(1, 503, 34, "GW/1"), *_failed_call(2, 486, None, "GW/2")]
    rows += _failed_call(3, 503, None, "GW/1")
    table = analyze(capture(rows)).agents_by_outcome
    responders = table[table["side"] == "responder"].set_index("software")
    assert responders.loc["GW/1", "calls"] == 2
    assert responders.loc["GW/1", "server_failure"] == 2
    assert responders.loc["GW/2", "busy"] == 1
    callers = table[table["side"] == "caller"].set_index("software")
    assert callers.loc["Phone/1", "calls"] == 3
