"""Issue 13, one crafted packet must not lose the report: each input of
``tests/hostile_inputs.py`` that used to end the run ("internal error", exit 2) or to pass in
silence, read through the CLI and the library, with the C walk and without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sipstats import native, sip
from sipstats.capture import framing, pcap, pcapng
from sipstats.cli import main
from sipstats.errors import SipParseError
from sipstats.messages import Capture, read_capture
from tests import hostile_inputs as hostile


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _run(path: Path, tmp_path: Path) -> Result:
    out = tmp_path / "report.txt"
    return CliRunner().invoke(
        main, [str(path), "--report", "text", "-o", str(out), "--no-progress"]
    )


def _both_ways(path: Path) -> tuple[Capture, Capture]:
    with_c = read_capture(path)
    with native.python_twins(pcap.C_WALK_NAME):
        pure = read_capture(path)
    assert with_c.inputs == pure.inputs
    assert with_c.messages["call_id"].tolist() == pure.messages["call_id"].tolist()
    return with_c, pure


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("CSeq", "bad header line"),
        ("Content-Length", {"udp": "body shorter than Content-Length", "tcp": None}),
        ("Expires", None),
    ],
)
def test_a_number_of_5000_digits_is_a_malformed_message_not_a_crash(
    tmp_path: Path, header: str, reason: str | dict[str, str | None] | None, transport: str
) -> None:
    path = _write(tmp_path, "digits.pcap", hostile.long_number(header, transport))
    capture = read_capture(path)
    summary = capture.inputs[0]
    expected = reason.get(transport) if isinstance(reason, dict) else reason
    calls = set(capture.messages["call_id"])
    if header == "Expires":  # a delta-seconds value saturates at 2**32 - 1, as it always did
        assert calls == {"h1@x", "h2@x", "h3@x"}
        assert capture.messages["expires"].max() == framing.MAX_NUMBER
        assert not summary.damaged
        assert _run(path, tmp_path).exit_code == 0
        return
    if expected is None:  # TCP: the stream framing counts the 5,000-digit length as too big
        assert summary.malformed["TCP message over size cap"].count == 1
        assert calls == {"h1@x"}  # and skips the body it claims: message 3 with it
    else:
        assert summary.malformed[expected].count == 1
        assert calls == {"h1@x", "h3@x"}
    result = _run(path, tmp_path)
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output


def test_both_parsers_refuse_a_5000_digit_cseq() -> None:
    message = hostile._message(1).replace(b"CSeq: 1 INVITE", f"CSeq: {'9' * 5000} INVITE".encode())
    with pytest.raises(SipParseError, match="bad header line"):
        sip.parse_message(message)
    with pytest.raises(SipParseError, match="bad header line"):
        sip._parse_general(message, False, False)


def test_decimal_saturates_instead_of_raising() -> None:
    assert framing.decimal("0" * 5000 + "42") == 42
    assert framing.decimal("9" * 5000) == framing.MAX_NUMBER + 1
    assert framing.decimal(str(framing.MAX_NUMBER)) == framing.MAX_NUMBER


@pytest.mark.parametrize("kind", ["tsoffset-9e9s", "tsoffset-min", "ts-max", "tsresol-s"])
def test_a_pcapng_time_outside_the_ns_range_flags_that_packet_only(
    tmp_path: Path, kind: str
) -> None:
    path = _write(tmp_path, "time.pcapng", hostile.pcapng_time(kind))
    capture, _ = _both_ways(path)
    summary = capture.inputs[0]
    assert set(capture.messages["call_id"]) == {"call-1@test", "call-3@test"}
    anomaly = summary.malformed["timestamp out of range"]
    assert (anomaly.count, anomaly.frames) == (1, [2])
    assert "timestamp out of order" not in summary.malformed
    result = _run(path, tmp_path)
    assert result.exit_code == 1, result.output
    assert "timestamp out of range: 1" in result.output


def test_an_interface_option_running_past_its_block_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "idb.pcapng", hostile.idb_option_past_block())
    summary = read_capture(path).inputs[0]
    assert summary.errors == [
        "interface description block at byte offset 48 cut short (option 2 runs past the block)"
    ]
    result = _run(path, tmp_path)
    assert result.exit_code == 1
    assert "interface description block at byte offset 48 cut short" in result.output


def test_packets_on_interfaces_over_the_cap_are_skipped_and_counted(tmp_path: Path) -> None:
    """Each packet follows its own interface block: interfaces past the cap are not kept, and
    their packets are counted (the INVITE on the last interface among them)."""
    count = pcapng.MAX_INTERFACES + 100
    path = _write(tmp_path, "ifaces.pcapng", hostile.interface_per_packet(count))
    capture, _ = _both_ways(path)
    summary = capture.inputs[0]
    assert capture.messages["call_id"].tolist() == ["call-1@test", "call-1@test"]
    skipped = summary.malformed[pcapng.INTERFACE_CAP]
    assert skipped.count == 101
    assert skipped.frames[0] == pcapng.MAX_INTERFACES + 1
    assert skipped.detail == f"interface {pcapng.MAX_INTERFACES}"
    assert summary.packets == count + 2
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith(f"more than {pcapng.MAX_INTERFACES} interfaces")
    result = _run(path, tmp_path)
    assert result.exit_code == 1, result.output
    assert f"{pcapng.INTERFACE_CAP}: 101" in result.output


def test_the_interface_cap_counts_each_section_alone(tmp_path: Path) -> None:
    """Two sections of 3,000 interfaces each: 6,000 in the file, none over the cap."""
    one = hostile.interface_per_packet(3000)
    path = _write(tmp_path, "sections.pcapng", one + one)
    capture, _ = _both_ways(path)
    summary = capture.inputs[0]
    assert summary.packets == 2 * (3000 + 2)
    assert pcapng.INTERFACE_CAP not in summary.malformed
    assert not summary.errors


def test_times_before_1970_are_not_out_of_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "old.pcapng", hostile.negative_tsoffset())
    capture, _ = _both_ways(path)
    assert capture.inputs[0].malformed == {}
    assert capture.messages["ts"].dt.year.tolist() == [1906, 1906]
    assert capture.inputs[0].first_ts_ns == -2 * 10**18 + 1_000_000_000
    assert _run(path, tmp_path).exit_code == 0


def test_an_unknown_link_type_is_named_and_exits_1(tmp_path: Path) -> None:
    path = _write(tmp_path, "user0.pcap", hostile.unknown_link_type())
    summary = read_capture(path).inputs[0]
    assert summary.unsupported == {"LINKTYPE 147": 2}
    assert summary.errors == ["link type 147 has no decoder: its 2 packets were skipped"]
    result = _run(path, tmp_path)
    assert result.exit_code == 1
    assert "link type 147 has no decoder" in result.output


def test_a_record_length_over_256_kib_is_damage_whatever_the_snaplen(tmp_path: Path) -> None:
    path = _write(tmp_path, "huge.pcap.gz", hostile.huge_caplen_gzip(8))
    capture = read_capture(path)
    summary = capture.inputs[0]
    assert capture.messages["call_id"].tolist() == ["call-1@test"]
    assert summary.errors == [
        f"record 2 at byte offset 312 claims {0xF0000000} captured bytes (limit 262144); "
        "no plausible record follows, reading stopped"
    ]
    assert _run(path, tmp_path).exit_code == 1
