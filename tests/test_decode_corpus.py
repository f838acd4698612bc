"""Decoding acceptance on the shared corpus: every capture's SIP counts equal its truth.json.

The truth is what tshark 4.0 and sipp saw. Where tshark counts something RFC 3261 says is not
a usable message (a bare status line, messages cut by the snaplen), or stops where we read on
(a bogus record header), ``DIFFERENCES`` states the truth's number, ours, and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sipstats.messages import Capture, read_capture
from tests.conftest import CORPUS, load_truth

pytestmark = pytest.mark.corpus


def _captures() -> list[tuple[str, str]]:
    """(scenario, file) for every capture that a truth.json describes."""
    found = []
    for truth in sorted(CORPUS.glob("c*/truth.json")):
        found += [(truth.parent.name, name) for name in load_truth(truth.parent.name)["captures"]]
    return found or [("absent", "absent")]  # the corpus_dir fixture then skips


CAPTURES = _captures()
_read: dict[str, Capture] = {}


def read(corpus_dir: Path, scenario: str, name: str) -> Capture:
    """Each file is decoded once per session (several tests look at it)."""
    key = f"{scenario}/{name}"
    if key not in _read:
        _read[key] = read_capture(corpus_dir / scenario / name)
    return _read[key]


def counts(messages: pd.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    requests = Counter(messages.loc[messages["is_request"], "method"].astype(str))
    responses = Counter(str(code) for code in messages.loc[~messages["is_request"], "status"])
    return dict(requests), dict(responses)


Counts = tuple[dict[str, int], dict[str, int]]


def _same_as_snaplen300(_: Counts) -> Counts:
    # The 800 records are the first 800 packets of c02, as in c10_snaplen300 (whose truth
    # counts them from their start lines).
    sip = load_truth("c10_broken")["captures"]["c10_snaplen300.pcap"]["sip"]
    return sip["requests_by_method"], sip["responses_by_code"]


def _minus_bare_503(truth: Counts) -> Counts:
    requests, responses = truth
    return requests, {**responses, "503": responses["503"] - 1}


def _nothing(_: Counts) -> Counts:
    return {}, {}


#: file -> (how our counts follow from the truth's, why)
DIFFERENCES: dict[str, tuple[Callable[[Counts], Counts], str]] = {
    "c10_bad_record_header.pcap": (
        _same_as_snaplen300,
        "truth 420 messages: tshark stops at the record header claiming 2 GB. The 380 records "
        "after it are intact; we resynchronise on the next plausible record and read all 800.",
    ),
    "c10_garbage_records.pcap": (
        _minus_bare_503,
        "truth 802 includes frame 517, a bare 'SIP/2.0 503 Service Unavailable' line. Without "
        "Call-ID, CSeq, From, To and Via (RFC 3261 §8.1.1) it is no usable message: 801 rows "
        "and one 'missing mandatory header'.",
    ),
    "c10_snaplen300.pcap": (
        _nothing,
        "truth 800: tshark dissects the first 300 bytes of each message (without Call-ID). A "
        "message cut by the snaplen has lost headers and body, so none is a row: 0 rows, 800 "
        "counted as 'truncated by snaplen'.",
    ),
}


@pytest.mark.parametrize(("scenario", "name"), CAPTURES, ids=[n for _, n in CAPTURES])
def test_requests_by_method_and_responses_by_code_equal_truth(
    corpus_dir: Path, scenario: str, name: str
) -> None:
    sip = load_truth(scenario)["captures"][name].get("sip", {})
    expected: Counts = (sip.get("requests_by_method", {}), sip.get("responses_by_code", {}))
    if name in DIFFERENCES:
        expected = DIFFERENCES[name][0](expected)
    capture = read(corpus_dir, scenario, name)
    assert counts(capture.messages) == expected
    assert capture.inputs[0].sip_messages == len(capture.messages)


#: Captures where our table and the truth describe the same messages.
AGREED = [(scenario, name) for scenario, name in CAPTURES if name not in DIFFERENCES]


@pytest.mark.parametrize(("scenario", "name"), AGREED, ids=[n for _, n in AGREED])
def test_transport_reassembly_and_retry_after_equal_truth(
    corpus_dir: Path, scenario: str, name: str
) -> None:
    sip: dict[str, Any] = load_truth(scenario)["captures"][name].get("sip", {})
    messages = read(corpus_dir, scenario, name).messages
    by_transport = Counter(t.upper() for t in messages["transport"].astype(str))
    assert dict(by_transport) == sip.get("by_transport", {})
    assert int(messages["fragmented"].sum()) == sip.get("messages_from_ip_fragments", 0)
    assert int((messages["segments"] > 1).sum()) == sip.get("messages_spanning_tcp_segments", 0)
    # RFC 3261 §20.33 delta-seconds of every copy: '10 (overloaded)' is 10, not tshark's 0.
    with_value = messages.dropna(subset=["retry_after"])
    retry_after: dict[str, dict[str, int]] = {}
    pairs = zip(with_value["status"], with_value["retry_after"], strict=True)
    for (code, value), n in Counter(pairs).items():
        retry_after.setdefault(str(code), {})[str(value)] = n
    assert retry_after == sip.get("retry_after", {}).get("by_code", {})


def test_every_scenario_is_covered(corpus_dir: Path) -> None:
    names = {name for _, name in CAPTURES}
    broken = set(load_truth("c10_broken")["captures"])
    assert {"c10_retry.pcap", "c11_proxy.pcap", *broken} <= names
    assert len(broken) == 8


# --- damaged files: the errors the decoder must give ---------------------------------------------


def broken(corpus_dir: Path, name: str) -> Capture:
    return read(corpus_dir, "c10_broken", name)


@pytest.mark.parametrize("name", ["c10_empty.pcap", "c10_not_a_capture.pcap"])
def test_unusable_file_is_a_one_line_error_naming_it(corpus_dir: Path, name: str) -> None:
    capture = broken(corpus_dir, name)
    assert capture.messages.empty
    [summary] = capture.inputs
    [error] = summary.errors
    assert name in error
    assert "\n" not in error
    assert summary.packets == 0


def test_header_only_is_no_messages_and_no_error(corpus_dir: Path) -> None:
    [summary] = broken(corpus_dir, "c10_header_only.pcap").inputs
    assert (summary.packets, summary.sip_messages, summary.errors, summary.malformed) == (
        0,
        0,
        [],
        {},
    )
    assert summary.format == "pcap"


@pytest.mark.parametrize(
    ("name", "messages", "where"),
    [
        ("c10_truncated_tail.pcap", 799, "record 800 at byte offset 414822"),
        ("c10_truncated.pcapng", 1993, "byte offset 1106452"),
    ],
)
def test_truncated_file_keeps_every_intact_message_and_says_where(
    corpus_dir: Path, name: str, messages: int, where: str
) -> None:
    capture = broken(corpus_dir, name)
    assert len(capture.messages) == messages
    [error] = capture.inputs[0].errors
    assert "truncated" in error
    assert where in error


def test_bad_record_header_is_reported_and_skipped(corpus_dir: Path) -> None:
    capture = broken(corpus_dir, "c10_bad_record_header.pcap")
    [error] = capture.inputs[0].errors
    assert "record 421" in error
    assert "2147483632" in error
    assert capture.packets == 800
    assert len(capture.messages) == 800


def test_garbage_records_are_counted_per_reason_with_their_frames(corpus_dir: Path) -> None:
    # broken_files.json: non-SIP UDP payloads at frames 57 and 646, random bytes at 213 and
    # 784, the bare 503 status line at 517, an out-of-order copy at 381 (a good message).
    capture = broken(corpus_dir, "c10_garbage_records.pcap")
    malformed = {reason: a.frames for reason, a in capture.inputs[0].malformed.items()}
    assert malformed["not SIP on a SIP port"] == [57, 646]
    assert malformed["missing mandatory header"] == [517]
    assert malformed["timestamp out of order"] == [381]  # still a row, but flagged
    assert sum(len(frames) for frames in malformed.values()) == 6
    assert {213, 784} <= {frame for frames in malformed.values() for frame in frames}
    assert 381 in set(capture.messages["frame"])
    assert capture.messages["ts"].is_monotonic_increasing  # the copy sorts an hour earlier
    assert capture.messages["frame"].iloc[0] == 381


def test_snaplen_truncated_messages_are_counted_not_rows(corpus_dir: Path) -> None:
    [summary] = broken(corpus_dir, "c10_snaplen300.pcap").inputs
    assert summary.sip_messages == 0
    truncated = summary.malformed["truncated by snaplen"]
    assert truncated.count == 800
    assert truncated.frames == [1, 2, 3, 4, 5]
    assert summary.packets == 800
