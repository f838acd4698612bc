"""Retry analysis end to end: a capture built with scapy -> read_capture -> analyze."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sipstats import schema
from sipstats.analyze import Analysis, analyze, b2bua
from sipstats.analyze import dialogs as dialogs_stage
from sipstats.analyze.retries import _through_transactions, retry_table
from sipstats.messages import Capture, read_capture
from tests.sipfactory import UAC, UAS, sip_request, sip_response, udp, write_pcap

PROXY = ("10.0.0.3", 5060)


class Dialog:
    """Packets of one INVITE call from ``caller`` to ``callee`` (times in seconds)."""

    def __init__(self, call_id: str, caller: str, callee: str, dst: tuple[str, int] = UAS):
        self.call_id, self.dst = call_id, dst
        self.common = {
            "call_id": call_id,
            "from_tag": f"f-{call_id[-6:]}",
            "caller": f"sip:{caller}@example.com",
            "callee": f"sip:{callee}@example.com",
        }
        self.uri = f"sip:{callee}@example.com:5060;transport=udp"
        self.packets: list = []

    def invite(self, t: float, cseq: int = 1, auth: bool = False) -> Dialog:
        headers = [("Proxy-Authorization", 'Digest username="x"')] if auth else []
        payload = sip_request(
            "INVITE", self.uri, cseq=cseq, branch=f"z9hG4bK-{self.call_id}-{cseq}",
            headers=headers, **self.common,
        )  # fmt: skip
        self.packets.append(udp(payload, t, UAC, self.dst))
        return self

    def reply(
        self, t: float, status: int, reason: str, cseq: int = 1, headers: tuple = ()
    ) -> Dialog:
        payload = sip_response(
            status, reason, cseq=cseq, cseq_method="INVITE", to_tag="callee-tag",
            branch=f"z9hG4bK-{self.call_id}-{cseq}", headers=headers, **self.common,
        )  # fmt: skip
        self.packets.append(udp(payload, t, self.dst, UAC))
        return self


def _dialogs() -> list[Dialog]:
    return [
        # alice -> bob: 486 "Retry-After: 5 (in a meeting);duration=3600", sent twice, then a
        # retry with a new Call-ID exactly 5 s after the first copy: honoured.
        Dialog("a-1", "alice", "bob")
        .invite(0.0)
        .reply(0.1, 180, "Ringing")
        .reply(1.0, 486, "Busy Here", headers=(("Retry-After", "5 (in a meeting);duration=3600"),))
        .reply(1.5, 486, "Busy Here", headers=(("Retry-After", "5 (in a meeting);duration=3600"),)),
        Dialog("retry1///a-1", "alice", "bob").invite(6.0).reply(6.5, 200, "OK"),
        # carol -> bob through another server: 503 "retry-after: 10", retried after 2 s.
        Dialog("c-1", "carol", "bob", PROXY)
        .invite(2.0)
        .reply(2.1, 503, "Service Unavailable", headers=(("retry-after", "10"),)),
        Dialog("retry1///c-1", "carol", "bob", PROXY).invite(4.1).reply(4.2, 200, "OK"),
        # dave -> erin: 480 with an unreadable Retry-After, never retried.
        Dialog("d-1", "dave", "erin")
        .invite(3.0)
        .reply(3.5, 480, "Temporarily Unavailable", headers=(("Retry-After", "soon"),)),
        # frank -> bob: 407 challenge answered with credentials, then 200: not a failure.
        Dialog("f-1", "frank", "bob")
        .invite(5.0)
        .reply(5.1, 407, "Proxy Authentication Required")
        .invite(5.3, cseq=2, auth=True)
        .reply(5.6, 200, "OK", cseq=2),
        # greg -> bob: 603, then a call again a second later: retried, never "honoured".
        Dialog("g-1", "greg", "bob").invite(7.0).reply(7.5, 603, "Decline"),
        Dialog("g-2", "greg", "bob").invite(8.5).reply(9.0, 200, "OK"),
    ]


def _read(tmp_path: Path, dialogs: list[Dialog]) -> Capture:
    packets = sorted((p for d in dialogs for p in d.packets), key=lambda p: float(p.time))
    return read_capture([write_pcap(tmp_path / "retries.pcap", packets)])


def _build(tmp_path: Path) -> Analysis:
    return analyze(_read(tmp_path, _dialogs()))


def _report_parts(capture: Capture) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The end-to-end calls, the report's messages and the transactions that
    :func:`sipstats.analyze.assemble` hands the retry table."""
    messages = schema.conform(capture.messages, schema.MESSAGES)
    parts = dialogs_stage.reported(dialogs_stage.analyze_dialogs(messages))
    return b2bua.end_to_end(b2bua.link(parts.calls)), parts.messages, parts.wide


def test_messages_match_calls_through_their_transactions_as_by_their_texts(
    tmp_path: Path,
) -> None:
    calls, messages, transactions = _report_parts(_read(tmp_path, _dialogs()))
    every = np.ones(len(messages), dtype=bool)
    assert _through_transactions(messages, every, calls, transactions) is not None
    by_codes = retry_table(calls, messages, transactions=transactions)
    assert by_codes.equals(retry_table(calls, messages))
    assert len(by_codes) == 4


def test_a_response_whose_tag_is_not_its_transactions_is_matched_by_its_text(
    tmp_path: Path,
) -> None:
    # tina's 486 carries another From tag than her INVITE (RFC 3261 §8.2.6.2 says it must
    # not): it is no response of her call's dialog, which has no final response
    odd = Dialog("t-1", "tina", "bob").invite(0.0)
    odd.common["from_tag"] = "f-other"
    odd.reply(1.0, 486, "Busy Here", headers=(("Retry-After", "5"),))
    busy = Dialog("u-1", "ursula", "bob").invite(0.5)
    busy.reply(1.5, 486, "Busy Here", headers=(("Retry-After", "7"),))
    calls, messages, transactions = _report_parts(_read(tmp_path, [odd, busy]))
    every = np.ones(len(messages), dtype=bool)
    assert _through_transactions(messages, every, calls, transactions) is None
    table = retry_table(calls, messages, transactions=transactions)
    assert table.equals(retry_table(calls, messages))
    assert table["call_id"].tolist() == ["u-1"]
    assert table["retry_after"].tolist() == [7]


@pytest.fixture
def run(tmp_path: Path) -> Analysis:
    return _build(tmp_path)


def test_failed_attempts_and_their_retries(run: Analysis) -> None:
    table = run.retries.set_index(run.retries["call_id"].astype("str"))
    assert sorted(table.index) == ["a-1", "c-1", "d-1", "g-1"]  # the answered challenge is not
    alice = table.loc["a-1"]
    assert alice["retry_call_id"] == "retry1///a-1"
    assert alice["retry_after"] == 5
    assert alice["retry_after_raw"] == "5 (in a meeting);duration=3600"
    assert alice["gap_s"] == pytest.approx(5.0, abs=1e-6)
    assert alice["honoured"]
    carol = table.loc["c-1"]
    assert carol["dst"] == "10.0.0.3:5060"
    assert carol["gap_s"] == pytest.approx(2.0, abs=1e-6)
    assert not carol["honoured"]
    assert carol["server_retried"]
    dave = table.loc["d-1"]
    assert not dave["retried"]
    assert pd.isna(dave["retry_after"])
    assert dave["retry_after_raw"] == "soon"
    greg = table.loc["g-1"]
    assert greg["retried"]
    assert pd.isna(greg["honoured"])


def test_retry_after_summary_and_json(run: Analysis) -> None:
    summary = run.retry_after.set_index("code")
    assert summary.index.tolist() == ["480", "486", "503", "603"]
    busy = summary.loc["486"]
    # two 486 packets, one unique response
    assert (busy["responses"], busy["with_retry_after"], busy["values"]) == (1, 1, "5x1")
    assert (busy["retried"], busy["honoured"], busy["too_early"]) == (1, 1, 0)
    assert (summary.loc["480", "malformed"], summary.loc["480", "not_retried"]) == (1, 1)
    assert summary.loc["503", "too_early"] == 1
    assert summary.loc["603", "without_retry_after_retried"] == 1
    piece = json.loads(json.dumps(run.to_dict()))["retry_after"]
    assert piece["486"]["values_s"] == {"5": 1}
    assert piece["503"]["retries_too_early"] == 1
    assert piece["480"]["malformed"] == 1


def test_early_retriers_name_the_impatient_caller(run: Analysis) -> None:
    assert run.early_retriers["caller"].tolist() == ["carol@example.com"]
    assert run.early_retriers["worst_gap_s"].iloc[0] == pytest.approx(2.0, abs=1e-6)
