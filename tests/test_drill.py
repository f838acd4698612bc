"""Drill-down: ``sipstats calls``, ``flow`` and ``extract`` on captures the tests build."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sipstats import analyze, read_capture
from sipstats.analyze import Analysis
from sipstats.analyze.trunks import load_trunks
from sipstats.cli import main
from sipstats.drill.calls import select_calls
from sipstats.drill.extract import extract_calls
from sipstats.drill.flow import _hosts, call_flow, sample_calls, sample_flows
from sipstats.errors import OptionError
from tests.analysis_fixtures import capture, invite_call
from tests.drill_captures import HOSTILE_CALL_ID, drill_capture
from tests.report_captures import truncated_capture

SAMPLES = Path(__file__).resolve().parent.parent / "sample_pcaps"


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return drill_capture(tmp_path_factory.mktemp("drill") / "drill.pcap")


@pytest.fixture(scope="module")
def analysis(capture_path: Path) -> Analysis:
    return analyze(read_capture(capture_path))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# -- calls -------------------------------------------------------------------------------------


def test_calls_list_one_line_per_call(capture_path: Path) -> None:
    code, out, _ = run("calls", str(capture_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["start", "(UTC)", "outcome"]
    assert lines[-1] == "4 calls"
    assert [line.split()[2] for line in lines[1:-1]] == [
        "server_failure",
        "answered",
        "busy",
        "not_found",
    ]


@pytest.mark.parametrize(
    ("args", "call_ids"),
    [
        (("--outcome", "busy"), ["call-c@10.0.0.6"]),
        (("--code", "503", "--code", "200"), ["call-a@10.0.0.1", "call-b@10.0.0.3"]),
        (("--since", "+1.5", "--until", "+3.5"), ["call-b@10.0.0.3", "call-c@10.0.0.6"]),
        (
            ("--callee", "BOB@"),
            ["call-a@10.0.0.1", "call-b@10.0.0.3", "call-c@10.0.0.6", HOSTILE_CALL_ID],
        ),
        (("--caller", "nobody"), []),
    ],
)
def test_calls_filters(capture_path: Path, args: tuple[str, ...], call_ids: list[str]) -> None:
    code, out, _ = run("calls", str(capture_path), "--report", "json", *args)
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "sipstats.calls/1"
    assert [call["call_id"] for call in document["calls"]] == call_ids


def test_calls_json_has_sdp_and_cause(capture_path: Path) -> None:
    _, out, _ = run("calls", str(capture_path), "--report", "json", "--code", "503")
    (call,) = json.loads(out)["calls"]
    assert call["final_status"] == 503
    assert call["cause"] == 34
    assert call["offered_codecs"] == "PCMU,PCMA,telephone-event"
    assert call["answered_codecs"] == "PCMU,telephone-event"
    assert call["early_media"] is True


def test_calls_hostile_text_is_neutralised(capture_path: Path, tmp_path: Path) -> None:
    code, out, _ = run("calls", str(capture_path), "--outcome", "not_found")
    assert code == 0
    assert "\x1b" not in out
    assert "\\x1b[31m" in out
    target = tmp_path / "calls.csv"
    code, _, err = run("calls", str(capture_path), "--report", "csv", "-o", str(target))
    assert code == 0
    assert "wrote 4 calls" in err
    frame = pd.read_csv(target)
    assert frame["call_id"].iloc[-1].startswith("'=HYPERLINK")


def test_calls_exit_status_on_damage(tmp_path: Path) -> None:
    code, out, err = run("calls", str(truncated_capture(tmp_path / "cut.pcap")))
    assert code == 1
    assert "warning" in err
    assert out.splitlines()[-1].endswith("calls")
    not_capture = tmp_path / "x.pcap"
    not_capture.write_bytes(b"hello")
    code, _, err = run("calls", str(not_capture))
    assert code == 2
    assert "nothing readable" in err


def test_select_calls_refuses_an_unknown_outcome(analysis: Analysis) -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        select_calls(analysis, outcomes=["bussy"])


def test_select_calls_reads_a_window_as_the_command_line_does(analysis: Analysis) -> None:
    """Text bounds are parsed as ``--since``/``--until`` are (a TypeError before: the API
    compared times with the text)."""
    selected = select_calls(analysis, since="+1.5", until="+3.5")
    assert selected["call_id"].tolist() == ["call-b@10.0.0.3", "call-c@10.0.0.6"]
    with pytest.raises(OptionError, match="not a time"):
        select_calls(analysis, since="yesterday-ish")


def test_calls_on_the_bundled_sample_agree_with_the_analysis() -> None:
    analysis = analyze(read_capture(SAMPLES / "outage.pcap"))
    code, out, _ = run(
        "calls", str(SAMPLES / "outage.pcap"), "--outcome", "busy", "--report", "csv"
    )
    assert code == 0
    listed = pd.read_csv(pd.io.common.StringIO(out))
    assert len(listed) == int((analysis.calls["outcome"] == "busy").sum()) > 0
    assert set(listed["final_status"]) <= {486, 600}


# -- flow --------------------------------------------------------------------------------------


def test_flow_draws_both_legs_across_the_proxy(capture_path: Path, tmp_path: Path) -> None:
    svg = tmp_path / "a.svg"
    code, out, _ = run("flow", str(capture_path), "--call-id", "call-a@10.0.0.1", "--svg", str(svg))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["10.0.0.1:5060", "10.0.0.5:5060", "10.0.0.2:5060"]
    arrows = lines[2:]
    assert len(arrows) == 10
    assert arrows[0].startswith("    +0.000 |")
    assert "INVITE (sdp)-" in arrows[0]
    assert "-->|" in arrows[0]  # caller -> proxy
    assert "INVITE* (sdp)" in arrows[3]
    assert arrows[3].index("INVITE") > arrows[3].index("|", 12)
    assert "+0.520" in arrows[3]
    assert "<" in arrows[6]
    assert "503 Service Unavailable" in arrows[6]
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    assert sum(1 for element in root.iter() if element.tag.endswith("line")) == 3 + 10


def test_flow_of_an_unknown_call_is_a_usage_error(capture_path: Path) -> None:
    code, _, err = run("flow", str(capture_path), "--call-id", "nope")
    assert code == 2
    assert "no message with Call-ID nope" in err


def test_analysis_flow_svg_escapes_capture_text(analysis: Analysis) -> None:
    flow = analysis.flow(HOSTILE_CALL_ID)
    assert "\x1b" not in str(flow)
    svg = flow._repr_svg_()
    ET.fromstring(svg)  # well-formed: every capture string escaped
    assert "404 Not Found" in svg


# -- extract -----------------------------------------------------------------------------------


def _tshark_sip(path: Path) -> list[tuple[str, str, str]]:
    """(Call-ID, method, status) of each SIP message tshark dissects in ``path``."""
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]  # type: ignore[misc]


def _ours(analysis: Analysis) -> list[tuple[str, str, str]]:
    m = analysis.messages
    return [
        (
            str(row.call_id),
            "" if pd.isna(row.method) else str(row.method),
            "" if pd.isna(row.status) else str(row.status),
        )
        for row in m.itertuples(index=False)
    ]


@pytest.mark.parametrize(
    ("call_id", "packets"),
    [("call-a@10.0.0.1", 10), ("call-b@10.0.0.3", 4), ("call-c@10.0.0.6", 6)],
    ids=["udp-proxy", "tcp-segments", "ip-fragments"],
)
def test_extract_rereads_to_the_same_messages(
    analysis: Analysis, capture_path: Path, tmp_path: Path, call_id: str, packets: int
) -> None:
    out = tmp_path / "one.pcap"
    code, _, err = run("extract", str(capture_path), "--call-id", call_id, "-o", str(out))
    assert code == 0, err
    assert f"wrote {packets} packets" in err
    again = analyze(read_capture(out))
    original = analysis.messages[analysis.messages["call_id"] == call_id]
    assert set(again.messages["call_id"].astype(str)) == {call_id}
    columns = ["method", "status", "src", "dst", "size", "segments", "fragmented"]
    pd.testing.assert_frame_equal(
        again.messages[columns].astype(str).reset_index(drop=True),
        original[columns].astype(str).reset_index(drop=True),
    )
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: the sipstats re-read was checked")
    assert _tshark_sip(out) == _ours(again)


def test_extract_finds_the_packets_of_a_file_whose_name_is_not_utf8(
    capture_path: Path, tmp_path: Path
) -> None:
    """The messages name such a file spelled out (``caf\\udce9.pcap``), its input summary by
    the name that opens it: extract looked the frames up by the latter and wrote no packet."""
    renamed = tmp_path / os.fsdecode(b"caf\xe9.pcap")
    shutil.copyfile(capture_path, renamed)
    analysis = analyze(read_capture(renamed))
    calls = select_calls(analysis, call_ids=["call-a@10.0.0.1"])
    written = extract_calls(analysis, calls, tmp_path / "one.pcap")
    assert (written.calls, written.packets) == (1, 10)


def test_extract_with_media_adds_the_negotiated_rtp(analysis: Analysis, tmp_path: Path) -> None:
    calls = select_calls(analysis, codes=[503])
    plain = extract_calls(analysis, calls, tmp_path / "plain.pcap")
    media = extract_calls(analysis, calls, tmp_path / "media.pcap", with_media=True)
    assert (plain.packets, plain.media_packets) == (10, 0)
    assert (media.packets, media.media_packets) == (12, 2)
    again = read_capture(tmp_path / "media.pcap")
    assert again.packets == 12
    assert len(again.messages) == 10


def test_extract_names_the_file_a_warning_is_about(tmp_path: Path) -> None:
    """Reading the packets again meets the cut record the report warned about: the warning
    names the capture (it gave the record alone)."""
    damaged = truncated_capture(tmp_path / "cut.pcap")
    out = tmp_path / "out.pcap"
    code, _, err = run("extract", str(damaged), "--code", "200", "-o", str(out))
    assert code == 1
    assert [line for line in err.splitlines() if "truncated inside record" in line]
    for line in err.splitlines():
        if "truncated inside record" in line:
            assert str(damaged) in line


def test_extract_needs_a_selection(capture_path: Path, tmp_path: Path) -> None:
    code, _, err = run("extract", str(capture_path), "-o", str(tmp_path / "x.pcap"))
    assert code == 2
    assert "choose calls" in err
    code, _, err = run(
        "extract", str(capture_path), "--code", "600", "-o", str(tmp_path / "x.pcap")
    )
    assert code == 2
    assert "no call matches" in err


def test_html_report_embeds_sample_ladders(analysis: Analysis) -> None:
    from sipstats.render.html import render_html
    from sipstats.render.options import RenderOptions

    page = render_html(analysis, RenderOptions())
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert captions == [
        "busy: Call-ID call-c@10.0.0.6",
        "not found: Call-ID =HYPERLINK(&#34;x&#34;)\\x1b[31m@evil",
        "server failure: Call-ID call-a@10.0.0.1",
        "Longest post-dial delay: Call-ID call-a@10.0.0.1",
    ]
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="ladder"') == 4
    assert "\x1b" not in page


@pytest.mark.parametrize("every_message", [True, False])
def test_sample_flows_are_the_flows_of_the_sample_calls_read_at_once(
    analysis: Analysis, capture_path: Path, monkeypatch: pytest.MonkeyPatch, every_message: bool
) -> None:
    """The report's ladders are what :func:`call_flow` draws for each sample call, with the
    messages of them all taken from the table in one read (with every message or only the
    sample calls')."""
    if not every_message:
        analysis = analyze(read_capture(capture_path), every_message=False)
        assert analysis.messages is None
    expected = [(name, call_flow(analysis, ids)) for name, ids in sample_calls(analysis.calls)]
    reads: list[object] = []
    messages_of = Analysis.messages_of

    def counted(self: Analysis, call_ids: object) -> pd.DataFrame:
        reads.append(call_ids)
        return messages_of(self, call_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(Analysis, "messages_of", counted)
    assert sample_flows(analysis) == expected
    assert len(expected) == 4
    assert len(reads) == 1


# -- trunks ------------------------------------------------------------------------------------


def test_trunks_file_names_peers_by_the_most_specific_entry(tmp_path: Path) -> None:
    path = tmp_path / "trunks.csv"
    path.write_text(
        "# peers\n10.0.0.0/8,lab\n10.0.0.0/24,core\n10.0.0.5,proxy\n10.0.0.2:5060,pbx\n"
    )
    trunks = load_trunks(path)
    assert trunks.name_of("10.0.0.2:5060") == "pbx"
    assert trunks.name_of("10.0.0.2:5070") == "core"
    assert trunks.name_of("10.0.0.5:5060") == "proxy"
    assert trunks.name_of("10.1.2.3:5060") == "lab"
    assert trunks.name_of("192.0.2.1:5060") is None
    assert trunks.label("10.0.0.5:5060") == "proxy (10.0.0.5:5060)"
    for bad, message in (
        ("10.0.0.1\n", "expected"),
        ("10.0.0/33,x\n", "not a network"),
        ("nope,x\n", "not an IP"),
    ):
        path.write_text(bad)
        with pytest.raises(ValueError, match=message):
            load_trunks(path)


def test_trunks_name_peers_in_tables_and_the_ladder(capture_path: Path, tmp_path: Path) -> None:
    trunks = tmp_path / "trunks.csv"
    trunks.write_text("10.0.0.5,proxy\n10.0.0.2,pbx\n")
    code, out, _ = run(
        "calls", str(capture_path), "--trunks", str(trunks), "--report", "json", "--code", "503"
    )
    assert code == 0
    assert json.loads(out)["calls"][0]["dst"] == "proxy (10.0.0.5:5060)"
    code, out, _ = run(
        "flow", str(capture_path), "--call-id", "call-a@10.0.0.1", "--trunks", str(trunks)
    )
    assert code == 0
    assert "proxy (10.0.0.5:5060)" in out.splitlines()[1]
    assert "pbx (10.0.0.2:5060)" in out.splitlines()[1]
    code, out, _ = run(str(capture_path), "--trunks", str(trunks))
    assert code == 0
    assert "pbx (10.0.0.2:5060)" in out  # failing peers and responders
    trunks.write_text("garbage\n")
    code, _, err = run("calls", str(capture_path), "--trunks", str(trunks))
    assert code == 2
    assert "Invalid value for '--trunks'" in err


def test_by_responder_counts_final_codes_per_responder(analysis: Analysis) -> None:
    table = analysis.by_responder.set_index("responder")
    assert table.loc["10.0.0.5:5060", "codes"] == "503x1"
    assert table.loc["10.0.0.4:5060", "answered"] == 1.0


def test_extract_keeps_several_link_types_in_pcapng(tmp_path: Path) -> None:
    """A pcapng input with an Ethernet and a raw-IP interface: the output is pcapng with
    one interface per link type, and reads back to the same messages (and in tshark)."""
    from tests import capture_builders as cb

    base = 1_700_000_000 * 1_000_000
    data = cb.shb() + cb.idb(1, tsresol=6) + cb.idb(101, tsresol=6)
    data += cb.epb(0, base, cb.ether(cb.ip_udp(cb.invite(1))))
    data += cb.epb(1, base + 10_000, cb.ip_udp(cb.ok(1), src="10.0.0.2", dst="10.0.0.1"))
    data += cb.epb(0, base + 20_000, cb.ether(cb.ip_udp(cb.invite(2))))  # another call
    source = cb.write(tmp_path / "two-links.pcapng", data)
    out = tmp_path / "one.pcapng"
    code, _, err = run("extract", str(source), "--call-id", "call-1@test", "-o", str(out))
    assert code == 0, err
    assert "(pcapng)" in err
    again = read_capture(out)
    assert again.inputs[0].format == "pcapng"
    assert sorted(again.inputs[0].link_types) == ["EN10MB", "RAW"]
    assert again.messages["call_id"].astype(str).tolist() == ["call-1@test", "call-1@test"]
    assert again.messages["status"].astype("Int64").tolist()[1] == 200
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: the sipstats re-read was checked")
    assert _tshark_sip(out) == _ours(analyze(again))


def test_extract_writes_hep_packets_as_captured(tmp_path: Path) -> None:
    from tests import capture_builders as cb

    frames = [
        (1_700_000_000_000_000_000, cb.ether(cb.ip_udp(cb.hep3(cb.invite(1)), dport=9060))),
        (1_700_000_000_100_000_000, cb.ether(cb.ip_udp(cb.hep3(cb.invite(2)), dport=9060))),
    ]
    source = cb.write(tmp_path / "hep.pcap", cb.pcap_bytes(frames, nano=True))
    original = analyze(read_capture(source))
    assert set(original.messages["encap"].astype(str)) == {"hep"}
    out = tmp_path / "one.pcap"
    result = extract_calls(original, select_calls(original, call_ids=["call-1@test"]), out)
    assert (result.packets, result.format) == (1, "pcap")
    again = read_capture(out)
    assert again.messages["call_id"].astype(str).tolist() == ["call-1@test"]
    assert again.messages["encap"].astype(str).tolist() == ["hep"]


def test_flow_draws_several_call_ids_in_one_diagram(analysis: Analysis) -> None:
    """Two Call-IDs (as a B2BUA's two legs would be) share one ladder, in time order."""
    flow = analysis.flow(["call-b@10.0.0.3", "call-c@10.0.0.6"])
    assert flow.call_ids == ("call-b@10.0.0.3", "call-c@10.0.0.6")
    assert flow.hosts == ("10.0.0.3:5070", "10.0.0.4:5060", "10.0.0.6:5060", "10.0.0.2:5060")
    offsets = [arrow.offset_ms for arrow in flow.arrows]
    assert offsets == sorted(offsets)
    assert len(flow.arrows) == 6


def test_flow_keeps_hosts_apart_that_lack_an_address_or_a_port() -> None:
    """A host missing a part is named by the part it has: two hosts without an address but
    with different ports are two columns, as are two addresses without a port (the analysis
    gives a message without an address; ports are never missing there, so that case is
    checked on the hosts alone)."""
    rows = []
    for row in invite_call("c0", 503, bye_after=None):
        if row["is_request"]:
            row["dst"], row["dport"] = None, 5070 if row["method"] == "INVITE" else 5080
        else:
            row["src"], row["sport"] = None, 5070
        rows.append(row)
    flow = analyze(capture(rows)).flow("c0")
    assert flow.hosts == ("10.0.0.1:5060", "?:5070", "?:5080")
    assert [(arrow.src, arrow.dst) for arrow in flow.arrows][-1] == (0, 2)
    address = pd.Series(["10.0.0.2", "2001:db8::1", None, "10.0.0.2"], dtype="category")
    port = pd.Series(pd.array([None, None, None, 5060], dtype="Int32"))
    assert _hosts(address, port) == ["10.0.0.2:?", "[2001:db8::1]:?", "?:?", "10.0.0.2:5060"]


def test_sample_calls_are_the_first_started_of_each_outcome() -> None:
    """The first call by start (none: last), then by call number, of each failure outcome;
    the slowest post-dial delay, the first started on a tie."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    calls = pd.DataFrame(
        {
            "call": [3, 2, 1, 0],
            "call_id": pd.Categorical(["a", "b", "c", "d"]),
            "start_ts": pd.Series([t0 + pd.Timedelta(1, "s")] * 2 + [pd.NaT, t0]),
            "outcome": pd.Categorical(["busy", "busy", "busy", "unavailable"]),
            "pdd_ms": [50.0, 300.0, 300.0, None],
            "linked_to": pd.array([None] * 4, dtype="Int64"),
        }
    )
    assert sample_calls(calls) == [
        ("busy", ("b",)),
        ("unavailable", ("d",)),
        ("slowest_pdd", ("b",)),
    ]
    assert sample_calls(calls.iloc[:0]) == []
