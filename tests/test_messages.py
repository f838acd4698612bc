"""messages: Payload stream -> messages table, Capture, read_capture over files/dirs/globs."""

from __future__ import annotations

import gzip
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest

from sipstats import native, schema
from sipstats.capture.framing import MAX_NUMBER
from sipstats.capture.reader import record_boundaries
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from sipstats.errors import CaptureError, SipParseError
from sipstats.messages import Capture, MessageTable, decode_file, decode_payloads, read_capture
from sipstats.sip import C_SCAN_NAME
from tests.conftest import SAMPLES
from tests.sipfactory import T0, UAC, UAS, sip_request, sip_response, udp, write_pcap

NS = 1_000_000_000


def payload(data: bytes, frame: int, t: float = 0.0, **kwargs: object) -> Payload:
    fields: dict[str, object] = {
        "ts_ns": int(T0 * NS) + int(t * NS),
        "file": "a.pcap",
        "frame": frame,
        "src": UAC[0],
        "sport": UAC[1],
        "dst": UAS[0],
        "dport": UAS[1],
        "transport": "udp",
        "data": data,
    }
    fields.update(kwargs)
    return Payload(**fields)  # type: ignore[arg-type]


def invite(call: int = 1, **kwargs: object) -> bytes:
    return sip_request("INVITE", call_id=f"call-{call}", cseq=1, branch=f"z9hG4bK{call}", **kwargs)  # type: ignore[arg-type]


def busy(call: int = 1, retry_after: str | None = "60") -> bytes:
    headers = [("Retry-After", retry_after)] if retry_after is not None else []
    return sip_response(
        486,
        "Busy Here",
        call_id=f"call-{call}",
        cseq=1,
        cseq_method="INVITE",
        branch=f"z9hG4bK{call}",
        to_tag="tt",
        headers=headers,
    )


def decode(payloads: list[Payload], **kwargs: bool) -> tuple[pd.DataFrame, InputSummary]:
    summary = InputSummary(file="a.pcap")
    table = MessageTable()
    decode_payloads(payloads, summary, table, **kwargs)
    return table.to_frame(), summary


def test_rows_have_the_schema_dtypes_and_values() -> None:
    frame, summary = decode([payload(invite(), 1), payload(busy(), 2, 0.5, src=UAS[0], dst=UAC[0])])
    assert list(frame.columns) == list(schema.MESSAGES)
    assert {c: str(frame[c].dtype) for c in frame} == {
        c: d for c, (d, _) in schema.MESSAGES.items()
    }
    assert summary.sip_messages == 2
    request, reply = frame.iloc[0], frame.iloc[1]
    assert request["method"] == "INVITE"
    assert pd.isna(request["status"])
    assert pd.isna(request["reason"])
    assert pd.isna(request["to_tag"])
    assert reply["status"] == 486
    assert pd.isna(reply["method"])
    assert reply["retry_after"] == 60
    assert reply["retry_after_raw"] == "60"
    assert reply["src"] == UAS[0]
    assert frame["ts"].iloc[1] - frame["ts"].iloc[0] == pd.Timedelta("500ms")
    assert str(frame["ts"].iloc[0]) == "2023-11-14 22:13:20+00:00"
    assert frame["call_id"].cat.categories.tolist() == ["call-1"]


def test_empty_input_gives_the_full_schema() -> None:
    frame, summary = decode([])
    assert frame.empty
    assert list(frame.columns) == list(schema.MESSAGES)
    assert str(frame["ts"].dtype) == schema.UTC_TS
    assert summary.sip_messages == 0


def test_malformed_payloads_are_counted_not_rows() -> None:
    bad_cl = invite(2, headers=[("Content-Length", "bad")])
    frame, summary = decode(
        [
            payload(invite(), 1),
            payload(b"hello", 2),  # not SIP at all
            payload(b"INVITE sip:x SIP/3.0\r\n\r\n", 3),  # broken SIP start line
            payload(bad_cl, 4),
            payload(invite(3)[:200], 5, truncated=True),
            payload(b"SIP/2.0 503 Service Unavailable\r\n\r\n", 6),
            payload(b"\r\n\r\n", 7),  # RFC 5626 keep-alive
        ]
    )
    assert len(frame) == 1
    assert summary.sip_messages == 1
    assert summary.keepalives == 1
    found = {reason: (a.count, a.frames) for reason, a in summary.malformed.items()}
    assert found == {
        "not SIP on a SIP port": (1, [2]),
        "bad start line": (1, [3]),
        "bad Content-Length": (1, [4]),
        "truncated by snaplen": (1, [5]),
        "missing mandatory header": (1, [6]),
    }
    assert summary.malformed["bad start line"].detail == "INVITE sip:x SIP/3.0"


def test_bad_retry_after_is_counted_and_the_row_kept() -> None:
    frame, summary = decode([payload(busy(retry_after="soon"), 1)])
    assert len(frame) == 1
    assert pd.isna(frame["retry_after"].iloc[0])
    assert frame["retry_after_raw"].iloc[0] == "soon"
    assert summary.malformed["bad Retry-After"].count == 1


def test_strict_raises_on_the_first_malformed_message() -> None:
    with pytest.raises(SipParseError, match=r"a.pcap frame 2: Content-Length") as caught:
        decode(
            [payload(invite(), 1), payload(invite(2, headers=[("Content-Length", "9")]), 2)],
            strict=True,
        )
    assert caught.value.reason == "body shorter than Content-Length"


def test_rows_sorted_by_time_then_file_then_frame() -> None:
    payloads = [
        payload(invite(1), 5, 2.0),
        payload(invite(2), 1, 1.0, file="b.pcap"),
        payload(invite(3), 9, 1.0),
        payload(invite(4), 2, 1.0, file="b.pcap"),
    ]
    frame, _ = decode(payloads)
    assert frame["call_id"].tolist() == ["call-3", "call-2", "call-4", "call-1"]


def test_tcp_messages_of_one_segment_keep_stream_order() -> None:
    payloads = [payload(invite(call), 3, 1.0, transport="tcp", segments=2) for call in (7, 5, 6)]
    frame, _ = decode(payloads)
    assert frame["call_id"].tolist() == ["call-7", "call-5", "call-6"]
    assert frame["segments"].tolist() == [2, 2, 2]


def test_tables_of_chunks_merge() -> None:
    first, second = MessageTable(), MessageTable()
    decode_payloads([payload(invite(1), 1), payload(busy(1), 2, 0.1)], InputSummary("a"), first)
    decode_payloads(
        [payload(busy(2), 3, 0.2), payload(invite(1), 4, 0.3)], InputSummary("a"), second
    )
    first.extend(second)
    frame = first.to_frame()
    assert frame["frame"].tolist() == [1, 2, 3, 4]
    assert frame["call_id"].tolist() == ["call-1", "call-1", "call-2", "call-1"]
    assert frame["retry_after"].tolist() == [pd.NA, 60, 60, pd.NA]
    assert sorted(frame["call_id"].cat.categories) == ["call-1", "call-2"]


def test_table_keeps_no_payload_bytes_and_stays_small() -> None:
    table = MessageTable()
    body = b"v=0\r\n" * 60
    for call in range(5000):
        decode_payloads([payload(invite(call, body=body), call + 1)], InputSummary("a"), table)
    assert len(table.to_frame()) == 5000
    held = sum(len(c.codes) * c.codes.itemsize for c in table.text.values())
    held += sum(len(a) * a.itemsize for a in table.ints.values())
    held += sum(len(f) for f in table.flags.values())
    # Fixed-width columns alone; the distinct strings are counted by the benchmark.
    assert held / len(table) < 200
    assert not any(isinstance(v, bytes) for c in table.text.values() for v in c.index)


def test_capture_repr_and_html_escape() -> None:
    summary = InputSummary(file="<evil>.pcap", packets=3, sip_messages=1, errors=["<b>cut</b>"])
    frame, _ = decode([payload(invite(), 1)])
    capture = Capture(messages=frame, inputs=[summary, InputSummary(file="b.pcap", packets=2)])
    assert capture.packets == 5
    assert (
        repr(capture) == "<Capture: 2 file(s), 5 packets, 1 SIP messages, 0 malformed, 1 error(s)>"
    )
    page = capture._repr_html_()
    assert "&lt;evil&gt;.pcap" in page
    assert "&lt;b&gt;cut&lt;/b&gt;" in page
    assert "<evil>" not in page


# --- read_capture over real (scapy-built) files -----------------------------------------------


def dialog_pcap(path: Path, t0: float = 0.0, calls: range = range(1)) -> Path:
    packets = []
    for n, call in enumerate(calls):
        packets.append(udp(invite(call), t0 + n))
        packets.append(udp(busy(call), t0 + n + 0.25, src=UAS, dst=UAC))
    return write_pcap(path, packets)


def test_read_capture_one_file(tmp_path: Path) -> None:
    capture = read_capture(dialog_pcap(tmp_path / "one.pcap", calls=range(3)))
    assert len(capture.messages) == 6
    assert capture.packets == 6
    assert capture.messages["status"].dropna().tolist() == [486, 486, 486]
    assert [s.sip_messages for s in capture.inputs] == [6]


def test_read_capture_merges_files_dirs_and_globs_by_time(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    dialog_pcap(tmp_path / "d" / "early.pcap", 0.0, range(2))
    dialog_pcap(tmp_path / "d" / "sub" / "late.pcapng.x", 0.5, range(10, 11))  # found by magic
    (tmp_path / "d" / "notes.txt").write_text("not a capture")
    raw = dialog_pcap(tmp_path / "g.pcap", 0.1, range(20, 21)).read_bytes()
    (tmp_path / "g.pcap").unlink()
    (tmp_path / "zipped.pcap.gz").write_bytes(gzip.compress(raw))
    capture = read_capture([tmp_path / "d", str(tmp_path / "*.gz")])
    assert sorted(Path(s.file).name for s in capture.inputs) == [
        "early.pcap",
        "late.pcapng.x",
        "zipped.pcap.gz",
    ]
    assert capture.messages["ts"].is_monotonic_increasing
    assert capture.messages["call_id"].tolist()[:4] == ["call-0", "call-20", "call-0", "call-20"]
    assert len(capture.messages) == 8


def test_unusable_files_become_inputs_with_errors(tmp_path: Path) -> None:
    good = dialog_pcap(tmp_path / "good.pcap")
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "text.pcap").write_text("hello, I am not a capture\n")
    capture = read_capture(
        [good, tmp_path / "empty.pcap", tmp_path / "text.pcap", tmp_path / "missing.pcap"]
    )
    assert len(capture.messages) == 2
    errors = {Path(s.file).name: s.errors for s in capture.inputs}
    assert errors["good.pcap"] == []
    for name in ("empty.pcap", "text.pcap", "missing.pcap"):
        assert len(errors[name]) == 1
        assert name in errors[name][0]
        assert "\n" not in errors[name][0]


def test_glob_without_match_is_an_input_error_in_its_place(tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.pcapng")
    good = dialog_pcap(tmp_path / "good.pcap")
    capture = read_capture([pattern, good, good])
    assert [s.file for s in capture.inputs] == [pattern, str(good)]
    assert capture.inputs[0].errors == [f"{pattern}: no capture file matches"]
    assert len(capture.messages) == 2


def test_strict_raises_on_an_unusable_file(tmp_path: Path) -> None:
    (tmp_path / "text.pcap").write_text("not a capture")
    with pytest.raises(CaptureError, match=r"text\.pcap"):
        read_capture(tmp_path / "text.pcap", strict=True)


def test_ports_restrict_sip(tmp_path: Path) -> None:
    packets = [
        udp(invite(1), 0.0),
        udp(invite(2), 1.0, src=("10.0.0.1", 5080), dst=("10.0.0.2", 5080)),
    ]
    path = write_pcap(tmp_path / "ports.pcap", packets)
    assert len(read_capture(path).messages) == 2
    assert read_capture(path, ports=[5080]).messages["call_id"].tolist() == ["call-2"]


def test_progress_reports_bytes_up_to_the_total(tmp_path: Path) -> None:
    paths = [dialog_pcap(tmp_path / f"{n}.pcap", n, range(n, n + 2)) for n in range(3)]
    total = sum(p.stat().st_size for p in paths)
    seen: list[tuple[int, int]] = []
    read_capture(paths, progress=lambda done, all_, _packets: seen.append((done, all_)))
    assert seen[-1] == (total, total)
    assert all(all_ == total for _, all_ in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_byte_range_chunks_merge_to_the_whole_file(tmp_path: Path) -> None:
    path = dialog_pcap(tmp_path / "chunks.pcap", calls=range(6))
    ranges = record_boundaries(path, 3)
    assert len(ranges) == 3
    merged = MessageTable()
    for byte_range in ranges:
        table, summary = decode_file(path, byte_range=byte_range)
        assert summary.sip_messages == len(table) > 0
        merged.extend(table)
    whole = read_capture(path).messages
    pd.testing.assert_frame_equal(merged.to_frame(), whole)


def test_directory_scan_picks_captures_by_name_or_magic(tmp_path: Path) -> None:
    raw = dialog_pcap(tmp_path / "src.pcap").read_bytes()
    (tmp_path / "src.pcap").unlink()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "trace.gz").write_bytes(gzip.compress(raw))  # pcap inside: by magic
    (tmp_path / "d" / "sipp_messages.log.gz").write_bytes(gzip.compress(b"INVITE ...\n"))
    (tmp_path / "d" / "truth.json").write_text("{}")
    (tmp_path / "d" / "broken.pcap").write_bytes(b"")  # named like a capture: reported
    capture = read_capture(tmp_path / "d")
    assert sorted(Path(s.file).name for s in capture.inputs) == ["broken.pcap", "trace.gz"]
    assert len(capture.messages) == 2


OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_reason_and_sdp_columns(pure: bool) -> None:
    sdp = [("Content-Type", "application/sdp")]
    cleared = [("Reason", 'SIP;cause=200;text="x", Q.850 ;cause=16 ;text="Normal call clearing"')]
    with native.python_twins(C_SCAN_NAME) if pure else nullcontext():
        frame, _ = decode(
            [
                payload(invite(headers=sdp, body=OFFER), 1),
                payload(busy(), 2, 0.5, src=UAS[0], dst=UAC[0]),
                payload(invite(2, headers=cleared), 3, 1.0),
                payload(invite(3, headers=[("Reason", "Q.850;cause=999999")]), 4, 1.5),
            ]
        )
    offer, reply, bye, huge = (frame.iloc[i] for i in range(4))
    assert (offer["sdp_address"], offer["sdp_port"], offer["sdp_codecs"]) == (
        "10.0.0.1",
        4000,
        "PCMA,PCMU,telephone-event",
    )
    assert pd.isna(reply["sdp_port"])
    assert pd.isna(reply["sdp_codecs"])
    assert (bye["reason_protocol"], bye["reason_cause"], bye["reason_text"]) == (
        "Q.850",
        16,
        "Normal call clearing",
    )
    assert pd.isna(offer["reason_protocol"])
    assert pd.isna(offer["reason_cause"])
    assert huge["reason_protocol"] == "Q.850"
    assert pd.isna(huge["reason_cause"])


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_header_numbers_take_five_bytes_and_keep_the_largest_value(pure: bool) -> None:
    """CSeq, Expires and the other header numbers are UInt32, 4 bytes and the NA mask: no
    parser lets a value above 2**32 - 1 through, and that value stays apart from NA."""
    register = sip_request(
        "REGISTER",
        call_id="reg-1",
        cseq=MAX_NUMBER,
        branch="z9hG4bKr",
        headers=[("Expires", "9" * 20), ("Min-Expires", "0")],
    )
    with native.python_twins(C_SCAN_NAME) if pure else nullcontext():
        frame, summary = decode([payload(register, 1), payload(busy(), 2, 0.5)])
    assert summary.sip_messages == 2
    for name in schema.HEADER_NUMBERS:
        assert str(frame[name].dtype) == "UInt32"
        assert frame[name].memory_usage(index=False) == 5 * len(frame)
    assert frame["cseq"].tolist() == [MAX_NUMBER, 1]
    assert frame["expires"].tolist() == [MAX_NUMBER, pd.NA]
    assert frame["min_expires"].tolist() == [0, pd.NA]
    assert frame["retry_after"].tolist() == [pd.NA, 60]
    assert frame["content_length"].tolist() == [0, 0]


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_a_hep_content_length_above_the_largest_number_is_clamped_to_it(pure: bool) -> None:
    """HEP frames the message, so a Content-Length longer than the body keeps the message; a
    value above 2**32 - 1 is clamped to it like Expires (it wrapped to 0 in the UInt32 column),
    while over UDP the message is malformed as before."""
    lengths = (str(MAX_NUMBER + 1), "9" * 20, "5", str(MAX_NUMBER + 1))
    messages = [
        sip_request(
            "OPTIONS",
            call_id=f"call-{i}",
            cseq=1,
            branch=f"z9hG4bKh{i}",
            headers=[("Content-Length", length)],
        )
        for i, length in enumerate(lengths)
    ]
    payloads = [payload(data, i + 1, encap="hep") for i, data in enumerate(messages[:3])]
    with native.python_twins(C_SCAN_NAME) if pure else nullcontext():
        frame, summary = decode([*payloads, payload(messages[3], 4)])
    assert summary.sip_messages == 3
    assert frame["content_length"].tolist() == [MAX_NUMBER, MAX_NUMBER, 5]
    assert list(summary.malformed) == ["body shorter than Content-Length"]


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
def test_correlation_header_columns(pure: bool) -> None:
    vector = 'icid-value="AyretyU0dm+6O2IrT5tAF";orig-ioi=home1.net'
    with native.python_twins(C_SCAN_NAME) if pure else nullcontext():
        frame, _ = decode(
            [
                payload(invite(headers=[("X-CID", " 7f3c-01 "), ("x-call-id", "x-1")]), 1),
                payload(invite(2, headers=[("P-Charging-Vector", vector)]), 2, 0.5),
                payload(invite(3), 3, 1.0),
            ]
        )
    both, charged, plain = (frame.iloc[i] for i in range(3))
    assert (both["x_cid"], both["x_call_id"]) == ("7f3c-01", "x-1")
    assert pd.isna(both["charging_vector"])
    assert charged["charging_vector"] == vector
    assert plain[["x_cid", "x_call_id", "charging_vector"]].isna().all()


@pytest.mark.parametrize("name", ["outage.pcap", "mixed.pcap", "tcp.pcap"])
@pytest.mark.parametrize("keep_duplicates", [False, True])
def test_a_frame_taken_from_the_builder_is_the_frame(name: str, keep_duplicates: bool) -> None:
    """``take_frame`` (read_capture's: the frame over the memory the C builder gives away)
    gives what ``to_frame`` gives from the table's own columns."""
    path = SAMPLES / name
    taken = decode_file(path, keep_duplicates=keep_duplicates)[0].take_frame()
    table = decode_file(path, keep_duplicates=keep_duplicates)[0]
    pd.testing.assert_frame_equal(taken, table.to_frame())
    assert len(taken) > 0


@pytest.mark.parametrize(
    ("first", "second"), [(100, 100), (20_000, 13_000)], ids=["to-int16", "to-int32"]
)
def test_builder_codes_widen_as_the_distinct_values_grow(first: int, second: int) -> None:
    """The C builder keeps a text column's codes in as few bytes as its distinct values allow
    and widens them in place (1, 2, then 4 bytes), also when a second builder's rows join it
    (decoding threads): the frame is the Python table's, the Call-ID codes as wide as pandas
    keeps them."""
    payloads = [payload(invite(call), call + 1, call / 1000) for call in range(first + second)]
    built, joined = MessageTable(), MessageTable()
    decode_payloads(payloads[:first], InputSummary("a.pcap"), built)
    decode_payloads(payloads[first:], InputSummary("a.pcap"), joined)
    built.extend(joined)
    with native.python_twins(C_SCAN_NAME):
        expected, _ = decode(payloads)
    frame = built.take_frame()
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["call_id"].cat.codes.dtype.itemsize == (2 if first + second < 32767 else 4)
