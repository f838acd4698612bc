"""Capture duplicates: one message seen twice is one message, never a retransmission.

Captures built here copy what produces duplicates in the field: ``tcpdump -i any`` seeing a
datagram on its way in and out (same bytes, another TTL, IP id and checksum, microseconds
apart), several HEP agents reporting one message, and the cases that must stay apart: a real
retransmission (T1 later), the same bytes between other endpoints.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from sipstats.analyze import analyze
from sipstats.capture import pcap
from sipstats.capture.duplicates import MAX_REMEMBERED, Copies, DuplicateFilter, duplicate_filter
from sipstats.capture.reader import iter_payloads
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from sipstats.cli import main
from sipstats.errors import CaptureError
from sipstats.messages import read_capture
from tests.capture_builders import T0_NS, ether, hep3, ip_udp, pcap_bytes, write
from tests.conftest import SAMPLES
from tests.sipfactory import T0, UAC, UAS, sip_request, sip_response, write_pcap

INVITE = sip_request("INVITE", call_id="dup@t", cseq=1, branch="z9hG4bK-dup")
RINGING = sip_response(180, "Ringing", call_id="dup@t", cseq=1, cseq_method="INVITE",
                       branch="z9hG4bK-dup", to_tag="b")  # fmt: skip
OK = sip_response(200, "OK", call_id="dup@t", cseq=1, cseq_method="INVITE",
                  branch="z9hG4bK-dup", to_tag="b")  # fmt: skip


def _seen(payload: bytes, t: float, src: tuple[str, int], dst: tuple[str, int], ttl: int,
          ident: int) -> Packet:  # fmt: skip
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkt = pkt / IP(src=src[0], dst=dst[0], ttl=ttl, id=ident) / UDP(sport=src[1], dport=dst[1])
    pkt = pkt / Raw(payload)
    pkt.time = T0 + t
    return pkt


def any_interface_packets() -> list[Packet]:
    """Each datagram twice, 30 µs apart, as a router's ``tcpdump -i any`` records it; the
    INVITE is retransmitted after T1 (500 ms) and that retransmission is seen twice too."""
    packets = []
    for t, payload, src, dst in (
        (0.0, INVITE, UAC, UAS),
        (0.5, INVITE, UAC, UAS),
        (0.6, RINGING, UAS, UAC),
        (0.9, OK, UAS, UAC),
    ):
        packets.append(_seen(payload, t, src, dst, ttl=64, ident=int(t * 10) + 1))
        packets.append(_seen(payload, t + 0.00003, src, dst, ttl=63, ident=int(t * 10) + 1))
    return packets


def test_copies_are_counted_not_rows_and_retransmissions_stay(tmp_path: Path) -> None:
    capture = read_capture(write_pcap(tmp_path / "any.pcap", any_interface_packets()))
    assert len(capture.messages) == 4
    assert capture.inputs[0].duplicates == 4
    analysis = analyze(capture)
    assert int(analysis.messages["retransmission"].sum()) == 1  # the INVITE after T1
    assert analysis.to_dict()["summary"]["duplicates"] == 4


def test_the_window_is_configurable_and_zero_keeps_every_copy(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "any.pcap", any_interface_packets())
    off = read_capture(path, duplicate_window_ms=0)
    assert len(off.messages) == 8
    assert off.inputs[0].duplicates == 0
    assert int(analyze(off).messages["retransmission"].sum()) == 5
    narrow = read_capture(path, duplicate_window_ms=0.01)  # 10 µs: the copies are 30 µs apart
    assert narrow.inputs[0].duplicates == 0
    wide = read_capture(path, duplicate_window_ms=600)  # wider than T1: swallows the retransmission
    assert wide.inputs[0].duplicates == 5


def test_kept_copies_are_flagged_and_the_analysis_skips_them(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "any.pcap", any_interface_packets())
    kept = read_capture(path, keep_duplicates=True)
    assert kept.messages["duplicate"].tolist() == [False, True] * 4
    assert kept.inputs[0].duplicates == 4
    plain = read_capture(path)
    assert not plain.messages["duplicate"].any()
    pd.testing.assert_frame_equal(
        kept.messages[~kept.messages["duplicate"]].reset_index(drop=True), plain.messages
    )
    with_copies, without = analyze(kept).to_dict(), analyze(plain).to_dict()
    assert with_copies.pop("inputs")[0]["sip_messages"] == 8  # the rows read, copies included
    without.pop("inputs")
    assert with_copies == without


def test_same_bytes_between_other_endpoints_are_not_copies(tmp_path: Path) -> None:
    packets = [
        _seen(INVITE, 0.0, UAC, UAS, 64, 1),
        _seen(INVITE, 0.0001, ("10.0.0.3", 5060), UAS, 64, 1),  # another source
        _seen(INVITE, 0.0002, UAC, ("10.0.0.2", 5070), 64, 1),  # another port
    ]
    capture = read_capture(write_pcap(tmp_path / "other.pcap", packets))
    assert len(capture.messages) == 3
    assert capture.inputs[0].duplicates == 0


def test_hep_agents_reporting_one_message(tmp_path: Path) -> None:
    """Three HEP agents send each message; their HEP timestamps differ by up to 2 ms."""
    frames = []
    messages = [(INVITE, "10.0.0.1", "10.0.0.2", 0), (OK, "10.0.0.2", "10.0.0.1", 40_000)]
    for n, (sip, src, dst, us) in enumerate(messages):
        for agent in range(3):
            hep = hep3(sip, src=src, dst=dst, sport=5060, dport=5060, ts_us=us + agent * 1000)
            outer = ip_udp(hep, src=f"192.168.9.{agent + 1}", dst="192.168.9.100", dport=9060)
            frames.append((T0_NS + n * 40_000_000 + agent * 100_000, ether(outer)))
    capture = read_capture(write(tmp_path / "hep.pcap", pcap_bytes(frames)))
    assert capture.messages["status"].tolist()[1] == 200
    assert len(capture.messages) == 2
    assert capture.inputs[0].duplicates == 4
    assert int(analyze(capture).messages["retransmission"].sum()) == 0


def test_the_cli_counts_copies_and_takes_the_window(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "any.pcap", any_interface_packets())
    result = CliRunner().invoke(main, [str(path), "--report", "json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["summary"]["sip_messages"], report["summary"]["duplicates"]) == (4, 4)
    assert report["inputs"][0]["duplicates"] == 4
    result = CliRunner().invoke(main, [str(path), "--report", "json", "--duplicate-window", "0"])
    assert json.loads(result.output)["summary"]["retransmissions"] == 5
    markdown = CliRunner().invoke(main, [str(path), "--report", "md", "-q"]).output
    assert "capture duplicates: 4" in markdown


def test_memory_is_bounded_when_the_clock_stands_still() -> None:
    from sipstats.capture import duplicates

    copies = DuplicateFilter(5.0)
    batch = [
        Payload(T0_NS, "f", n, "a", 1, "b", 2, "udp", b"%d" % n)
        for n in range(duplicates.MAX_REMEMBERED * 3)
    ]
    assert copies.copies(batch) == []
    assert len(copies._current) + len(copies._previous) <= 2 * duplicates.MAX_REMEMBERED
    assert copies.copies(batch[-3:]) == [0, 1, 2]  # the latest are still remembered


@pytest.mark.peers
def test_peer_capture_of_three_hep_agents(peers_dir: Path) -> None:
    """hep-wireshark's compressed-HEP capture: 7 messages, each sent by 3 agents."""
    capture = read_capture(peers_dir / "hep-wireshark" / "hep3_compressed.pcap.pcapng")
    assert len(capture.messages) == 7
    assert capture.inputs[0].duplicates == 14
    assert analyze(capture).to_dict()["summary"]["retransmissions"] == 0


def _both_filters(window_ms: float) -> tuple[Copies, Copies]:
    """The Python filter (the reference) and the one read_capture uses: its C twin."""
    if pcap.c_walk() is None:
        pytest.skip("the C extensions are not built or SIPSTATS_PURE_PYTHON is set")
    made = duplicate_filter(window_ms)
    assert not isinstance(made, DuplicateFilter)
    return DuplicateFilter(window_ms), made


def _judged_alike(payloads: list[Payload], window_ms: float, seed: int = 0) -> int:
    """Feed both filters the payloads in the same (random) batches; the copies found."""
    python, built = _both_filters(window_ms)
    rng = random.Random(seed)
    found = start = 0
    while start < len(payloads):
        batch = payloads[start : start + rng.choice((1, 7, 300, 2048))]
        expected = python.copies(batch)
        assert built.copies(batch) == expected, f"batch from payload {start}"
        found += len(expected)
        start += len(batch)
    return found


def _wandering_payloads(seed: int, count: int) -> list[Payload]:
    """Few distinct messages between a few endpoints, at steps around the window (5 ms),
    sometimes back in time: copies, chains of copies, and near misses of every kind."""
    rng = random.Random(seed)
    texts = [b"OPTIONS sip:%d@t SIP/2.0\r\n\r\n" % k for k in range(6)]
    ends = [
        ("10.0.0.1", 5060, "10.0.0.2", 5060, "udp"),
        ("10.0.0.1", 5060, "10.0.0.2", 5060, "tcp"),
        ("10.0.0.3", 5060, "10.0.0.2", 5060, "udp"),
        ("10.0.0.1", 5062, "10.0.0.2", 5060, "udp"),
    ]
    steps = (0, 1, 30_000, 2_500_000, 4_999_999, 5_000_000, 5_000_001, 9_000_000, 40_000_000)
    ts, payloads = T0_NS, []
    for frame in range(1, count + 1):
        ts += rng.choice(steps) * (-1 if rng.random() < 0.1 else 1)
        end = rng.choice(ends)
        payloads.append(Payload(ts, "f", frame, *end, rng.choice(texts)))
    return payloads


@pytest.mark.parametrize("seed", range(4))
def test_the_c_filter_judges_like_the_python_one(seed: int) -> None:
    payloads = _wandering_payloads(seed, 5000)
    assert _judged_alike(payloads, 5.0, seed) > 0
    assert _judged_alike(payloads, 0.001, seed) >= 0  # 1 µs: only simultaneous copies


def test_the_c_filter_is_bounded_like_the_python_one() -> None:
    """A clock that stands still, then moves: the memory cap turns generations early in both,
    and what it forgets stays a row in both."""
    burst = [
        Payload(T0_NS, "f", n, "a", 1, "b", 2, "udp", b"%d" % (n % 70_000))
        for n in range(MAX_REMEMBERED * 3)
    ]
    later = [p._replace(ts_ns=T0_NS + 1_000_000) for p in burst[::997]]
    assert _judged_alike(burst + later, 5.0) > 0
    _, built = _both_filters(5.0)
    built.copies(burst)
    assert built.remembered <= 2 * MAX_REMEMBERED  # type: ignore[attr-defined]
    assert built.copies(burst[-3:]) == [0, 1, 2]  # the latest are still remembered


def test_the_c_filter_stores_a_message_repeated_at_one_time_once() -> None:
    """One message seen again and again while the clock stands still (a looped capture, a
    mirror of a mirror) grows no store: its bytes are kept once, its endpoints rewritten,
    including when they change length; the judging stays the Python filter's."""
    sent = Payload(T0_NS, "f", 1, "10.0.0.1", 5060, "10.0.0.2", 5060, "udp", b"OPTIONS x" * 50)
    longer = sent._replace(src="2001:db8::1")
    repeats = [
        (longer if n % 3 == 2 else sent)._replace(frame=n) for n in range(MAX_REMEMBERED * 3)
    ]
    assert _judged_alike(repeats, 5.0) > 0
    _, built = _both_filters(5.0)
    built.copies(repeats[:10])
    held = built.stored  # type: ignore[attr-defined]
    built.copies(repeats)
    assert built.stored == held  # type: ignore[attr-defined]
    assert built.copies([repeats[-1]._replace(frame=0)]) == [0]


def test_the_c_filter_judges_a_capture_of_copies_like_the_python_one(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "any.pcap", any_interface_packets())
    payloads = list(iter_payloads(path, InputSummary(str(path))))
    assert _judged_alike(payloads, 5.0) == 4
    assert _judged_alike(payloads, 600.0) == 5


def _judged_alike_in(paths: list[Path]) -> None:
    """Every capture's payloads, at the default window and one that swallows retransmissions."""
    for path in paths:
        try:
            payloads = list(iter_payloads(path, InputSummary(str(path))))
        except CaptureError:  # not a capture at all (the damaged-input cases)
            continue
        for window_ms in (5.0, 2000.0):
            _judged_alike(payloads, window_ms)


def test_the_c_filter_judges_the_samples_like_the_python_one() -> None:
    _judged_alike_in(sorted(SAMPLES.glob("*.pcap*")))


def test_the_c_filter_judges_the_shared_captures_like_the_python_one(
    corpus_dir: Path, peers_dir: Path
) -> None:
    _judged_alike_in(sorted([*corpus_dir.glob("*/*.pcap*"), *peers_dir.glob("**/*.pcap*")]))
