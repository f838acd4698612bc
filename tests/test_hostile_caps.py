"""Issue 13, every buffer has a cap and what a cap drops is counted: IP fragments and TCP
streams, each with its crafted capture from ``tests/hostile_inputs.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipstats.capture import defrag, tcp
from sipstats.capture.summary import InputSummary
from sipstats.messages import read_capture
from tests import hostile_inputs as hostile
from tests.capture_builders import invite


def _read(tmp_path: Path, name: str, data: bytes) -> tuple[list[str], InputSummary]:
    path = tmp_path / name
    path.write_bytes(data)
    capture = read_capture(path)
    return capture.messages["call_id"].tolist(), capture.inputs[0]


def test_a_fragment_seen_twice_is_ignored(tmp_path: Path) -> None:
    calls, summary = _read(tmp_path, "twice.pcap", hostile.fragment_twice())
    assert calls == ["call-1@test"]
    assert summary.malformed == {}


def test_an_empty_fragment_does_not_take_the_place_of_data(tmp_path: Path) -> None:
    calls, summary = _read(tmp_path, "empty.pcap", hostile.fragment_empty())
    assert calls == ["call-1@test"]
    assert summary.malformed == {}


def test_the_held_bytes_cap_applies_to_every_fragment_added() -> None:
    joiner = defrag.Defragmenter()
    piece = b"o" * 1480
    for k in range(200):  # overlapping copies of one datagram, 8 bytes apart
        joiner.add(("a",), 8 * k, True, piece, k, k + 1, False)
        assert joiner.held_bytes <= defrag.MAX_HELD
    assert joiner.dropped[0] == (1, f"overlapping fragments over {defrag.MAX_HELD} bytes")


def test_a_datagram_of_too_many_fragments_is_dropped() -> None:
    joiner = defrag.Defragmenter()
    for k in range(defrag.MAX_FRAGMENTS + 1):
        joiner.add(("a",), 8 * k, True, b"12345678", k, k + 1, False)
    assert joiner.dropped == [(1, f"over {defrag.MAX_FRAGMENTS} fragments")]


def test_the_total_cap_crowds_out_the_oldest_datagram_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(defrag, "MAX_BYTES", 3000)
    joiner = defrag.Defragmenter()
    joiner.add(("old",), 0, True, b"x" * 2000, 0, 1, False)
    joiner.add(("new",), 0, True, b"y" * 1500, 1, 2, False)  # 3,500 held: the old one goes
    assert joiner.held_bytes == 1500
    assert joiner.dropped == [(1, "incomplete: crowded out by newer fragments")]


def test_overlapping_fragments_of_a_capture_are_counted(tmp_path: Path) -> None:
    calls, summary = _read(tmp_path, "overlap.pcap", hostile.fragments_overlapping(200))
    assert calls == []
    anomaly = summary.malformed["incomplete IP fragments"]
    assert anomaly.detail == f"overlapping fragments over {defrag.MAX_HELD} bytes"


def test_data_far_outside_the_window_does_not_make_the_stream_jump(tmp_path: Path) -> None:
    calls, summary = _read(tmp_path, "far.pcap", hostile.tcp_far_ahead(65))
    assert calls == ["call-1@test", "call-2@test"]
    anomaly = summary.malformed["TCP data outside the window"]
    assert anomaly.count == 1
    assert anomaly.detail == f"65000 bytes {(1 << 20) - len(invite(1))} bytes ahead"


def test_far_data_twice_in_a_row_is_a_real_loss_and_the_stream_jumps() -> None:
    summary = InputSummary("x")
    joiner = tcp.TcpReassembler("x", summary, None)
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 5060)
    out = joiner.feed(1, 1, *a, *b, 1000, 0x18, invite(1), False)
    later = 1000 + len(invite(1)) + (1 << 20)
    for k in range(2 * (tcp.OOO_SEGMENTS + 1)):
        data = invite(2) if k == tcp.OOO_SEGMENTS + 1 else b"\r\n"
        out += joiner.feed(2 + k, 2 + k, *a, *b, later, 0x18, data, False)
        later += len(data)
    out += joiner.flush()
    assert [p.data for p in out] == [invite(1), invite(2)]
    assert summary.malformed["TCP data outside the window"].count == 1
    assert summary.malformed["TCP gap"].count == 1


def test_all_streams_together_hold_at_most_the_global_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tcp, "MAX_BUFFERED", 300_000)
    path = tmp_path / "streams.pcap.gz"
    path.write_bytes(hostile.tcp_streams(15, 256))  # 15 streams of 260 KB held at once
    capture = read_capture(path)
    summary = capture.inputs[0]
    dropped = summary.malformed["TCP buffer cap: stream dropped"]
    assert dropped.count >= 10
    assert dropped.frames[0] > 15  # after the headers, while the bodies pile up
    assert summary.malformed["TCP message without Content-Length"].count == 15 - dropped.count


def test_idle_streams_holding_bytes_are_closed_after_the_longer_idle_time() -> None:
    summary = InputSummary("x")
    joiner = tcp.TcpReassembler("x", summary, None)
    a, b = ("10.0.0.1", 40000), ("10.0.0.2", 5060)
    joiner.feed(0, 1, *a, *b, 1000, 0x18, invite(1)[:40], False)
    later = tcp.IDLE_HOLDING_NS + 10**9
    joiner.feed(later, 2, "10.0.0.9", 5060, *b, 1, 0x18, invite(3), False)
    assert (*a, *b) not in joiner._streams
    assert summary.malformed["TCP stream ended inside a message"].frames == [1]
