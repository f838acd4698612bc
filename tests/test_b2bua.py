"""B2BUA legs joined by a correlation header: one end-to-end call, both legs in the table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sipstats import analyze, read_capture
from sipstats.analyze.b2bua import legs_of
from sipstats.cli import main
from sipstats.drill.flow import call_flow, sample_flows
from tests.sipfactory import sip_request, sip_response, udp, write_pcap

CALLER = ("10.2.0.10", 5060)
B2BUA = ("10.2.0.1", 5060)
CALLEE = ("10.2.0.20", 5060)


def _leg(
    call_id: str, src: tuple, dst: tuple, t: float, final: int, header: tuple, tag: str = ""
) -> list:
    """One leg: INVITE (with the correlation header), 100, final (486 with Retry-After), ACK.
    ``tag``: its From tag, when not the Call-ID's own (another call with that Call-ID)."""
    tag = tag or f"f-{call_id}"
    ids = {"call_id": call_id, "from_tag": tag, "cseq": 1,
           "branch": f"z9hG4bK-{call_id}-{tag}", "via_host": f"{src[0]}:{src[1]}"}  # fmt: skip
    reason = {486: "Busy Here", 200: "OK"}[final]
    extra = [("Retry-After", "30")] if final == 486 else []
    return [
        udp(sip_request("INVITE", headers=[header], **ids), t, src, dst),
        udp(sip_response(100, "Trying", cseq_method="INVITE", **ids), t + 0.01, dst, src),
        udp(
            sip_response(
                final, reason, cseq_method="INVITE", to_tag="t", headers=[header, *extra], **ids
            ),
            t + 0.5,
            dst,
            src,
        ),
        udp(sip_request("ACK", to_tag="t", **ids), t + 0.51, src, dst),
    ]


def _capture(path: Path, header_name: str, value: str, *later: list) -> Path:
    header = (header_name, value)
    packets = [
        *_leg("a-leg", CALLER, B2BUA, 0.0, 486, header),  # the caller's side
        *_leg("b-leg", B2BUA, CALLEE, 0.02, 486, header),  # the B2BUA's own call to the callee
        *_leg("other", CALLER, B2BUA, 3.0, 200, ("X-CID", "unrelated")),
        *(packet for leg in later for packet in leg),
    ]
    packets.sort(key=lambda p: p.time)
    return write_pcap(path, packets)


def b2bua_capture(path: Path) -> Path:
    """Two end-to-end calls through a B2BUA (X-CID), each leg a Call-ID of its own."""
    header = ("X-CID", "second")
    return _capture(
        path,
        "X-CID",
        "first",
        _leg("c-leg", CALLER, B2BUA, 5.0, 200, header),
        _leg("d-leg", B2BUA, CALLEE, 5.05, 200, header),
    )


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-CID", "7f3c-01"),
        ("X-Call-ID", "7f3c-01"),
        ("P-Charging-Vector", 'icid-value="AyretyU0dm+6O2IrT5tAF";orig-ioi=home1.net'),
    ],
)
def test_legs_with_the_same_correlation_id_are_one_call(
    tmp_path: Path, header: str, value: str
) -> None:
    a = analyze(read_capture(_capture(tmp_path / "b2bua.pcap", header, value)))
    calls = a.calls.set_index("call_id")
    assert list(calls.index) == ["a-leg", "b-leg", "other"]  # both legs are rows
    assert calls.loc["b-leg", "linked_to"] == calls.loc["a-leg", "call"]
    assert calls[["linked_to"]].isna().sum().item() == 2
    assert list(calls["e2e_outcome"]) == ["busy", "busy", "answered"]
    summary = a.to_dict()["calls"]
    assert (summary["total"], summary["b2bua_legs"]) == (2, 1)
    assert summary["by_outcome"]["busy"] == 1
    assert list(a.retries["call_id"]) == ["a-leg"]  # the failure counted once


def test_the_header_is_chosen_by_option_and_none_links_nothing(tmp_path: Path) -> None:
    pcap = _capture(tmp_path / "b2bua.pcap", "X-Call-ID", "shared")
    runner = CliRunner()

    def calls(*options: str) -> dict:
        result = runner.invoke(main, [str(pcap), "--report", "json", "-o", "-", *options])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["calls"]

    assert (calls()["total"], calls()["b2bua_legs"]) == (2, 1)
    assert calls("--correlation-header", "X-Call-ID")["b2bua_legs"] == 1
    assert calls("--correlation-header", "X-CID")["b2bua_legs"] == 0
    assert calls("--correlation-header", "none")["total"] == 3
    bad = runner.invoke(main, [str(pcap), "--correlation-header", "X-Foo"])
    assert bad.exit_code == 2
    with pytest.raises(ValueError, match="correlation header"):
        analyze(read_capture(pcap), correlation_header="X-Foo")  # type: ignore[arg-type]


def test_a_leg_started_during_the_set_up_joins_a_value_seen_again_later_does_not(
    tmp_path: Path,
) -> None:
    """The B2BUA's second try (after the first callee's 486) is a leg of the same call; the
    same X-CID on a call that starts after the caller got its answer is another call."""
    header = ("X-CID", "7f3c-01")
    pcap = _capture(
        tmp_path / "reused.pcap",
        *header,
        _leg("b-leg-2", B2BUA, ("10.2.0.21", 5060), 0.3, 486, header),
        _leg("again", CALLER, B2BUA, 9.0, 200, header),
    )
    calls = analyze(read_capture(pcap)).calls.set_index("call_id")
    a_leg = calls.loc["a-leg", "call"]
    assert calls.loc["b-leg", "linked_to"] == a_leg
    assert calls.loc["b-leg-2", "linked_to"] == a_leg
    assert pd.isna(calls.loc["again", "linked_to"])
    assert calls.loc["again", "e2e_outcome"] == "answered"
    assert calls.loc["a-leg", "correlation_id"] == "7f3c-01"


def test_figures_count_end_to_end_calls(tmp_path: Path) -> None:
    a = analyze(read_capture(b2bua_capture(tmp_path / "b2bua.pcap")))
    assert len(a.calls) == 5
    assert list(a.end_to_end_calls["call_id"]) == ["a-leg", "other", "c-leg"]
    metrics = dict(zip(a.metrics["name"], a.metrics["samples"], strict=True))
    assert metrics["ASR"] == 3  # settled end-to-end calls, not legs
    assert a.to_dict()["summary"]["calls"] == 3
    assert a.to_dict()["calls"]["pdd_ms"]["count"] == 2  # on the caller's legs, not the B2BUA's


def test_one_ladder_draws_every_leg_across_a_proxy_and_the_b2bua(tmp_path: Path) -> None:
    """Caller -> proxy -> B2BUA under one Call-ID, then B2BUA -> callee under another,
    linked by X-CID: the flow of either Call-ID is one diagram of all three hops."""
    proxy = ("10.2.0.5", 5060)
    header = ("X-CID", "via-proxy")
    packets = [
        *_leg("a-leg", CALLER, proxy, 0.0, 200, header),
        *_leg("a-leg", proxy, B2BUA, 0.005, 200, header),
        *_leg("b-leg", B2BUA, CALLEE, 0.02, 200, header),
    ]
    pcap = write_pcap(tmp_path / "proxied.pcap", sorted(packets, key=lambda p: p.time))
    analysis = analyze(read_capture(pcap))
    flow = analysis.flow("a-leg")
    assert flow.call_ids == ("a-leg", "b-leg")
    assert flow.hosts == ("10.2.0.10:5060", "10.2.0.5:5060", "10.2.0.1:5060", "10.2.0.20:5060")
    assert len(flow.arrows) == 12  # INVITE, 100, 200, ACK on each of the three hops
    assert analysis.flow("b-leg").arrows == flow.arrows
    result = CliRunner().invoke(main, ["flow", str(pcap), "--call-id", "b-leg"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == list(flow.hosts)
    alone = CliRunner().invoke(
        main, ["flow", str(pcap), "--call-id", "b-leg", "--correlation-header", "none"]
    )
    assert alone.stdout.splitlines()[1].split() == ["10.2.0.1:5060", "10.2.0.20:5060"]


def test_report_ladders_sample_end_to_end_calls_with_their_legs(tmp_path: Path) -> None:
    analysis = analyze(read_capture(b2bua_capture(tmp_path / "b2bua.pcap")))
    samples = dict(sample_flows(analysis))
    assert samples["busy"].call_ids == ("a-leg", "b-leg")  # one sample, both legs
    assert len(samples["busy"].hosts) == 3
    assert samples["busy"] == call_flow(analysis, "a-leg")  # read with the other samples


@pytest.mark.parametrize("every_message", [True, False])
def test_a_ladder_takes_the_legs_of_a_call_that_shares_a_legs_call_id(
    tmp_path: Path, every_message: bool
) -> None:
    """The B2BUA reuses the busy call's b-leg Call-ID (another From tag) for its leg of a
    later call: the busy ladder draws the messages of both b-leg calls, so it draws the later
    call's caller leg too, as call_flow does for the ladder's Call-IDs and for the call's
    own (before, the sample ladder read the legs once and left c-leg out)."""
    header = ("X-CID", "second")
    pcap = _capture(
        tmp_path / "shared.pcap",
        "X-CID",
        "first",
        _leg("c-leg", CALLER, B2BUA, 5.0, 200, header),
        _leg("b-leg", B2BUA, CALLEE, 5.05, 200, header, tag="f-again"),
    )
    analysis = analyze(read_capture(pcap), every_message=every_message)
    calls = analysis.calls
    shared = calls[calls["call_id"] == "b-leg"]
    assert list(shared["linked_to"]) == [0, 3]  # a leg of the busy call and of c-leg's
    busy = dict(sample_flows(analysis))["busy"]
    assert busy.call_ids == ("a-leg", "b-leg", "c-leg")
    assert busy == call_flow(analysis, busy.call_ids) == call_flow(analysis, "a-leg")
    assert len(busy.arrows) == 16  # four messages on each of the four legs


def test_legs_follow_a_chain_of_shared_call_ids_to_its_end() -> None:
    """End-to-end call i has legs x{i} and x{i+1}, so x{i+1} is also a leg of call i+1: the
    legs of x0 are the whole chain, in start order, and the legs of any link are the same."""
    links = 300
    rows = [
        row
        for i in range(links)
        for row in ((f"x{i}", 2 * i, None), (f"x{i + 1}", 2 * i + 1, 2 * i))
    ]
    calls = pd.DataFrame(rows, columns=["call_id", "call", "linked_to"])
    calls["linked_to"] = calls["linked_to"].astype("Int64")
    calls["start_ts"] = pd.to_datetime(calls["call"], unit="s", utc=True)
    chain = [f"x{i}" for i in range(links + 1)]
    assert legs_of(calls, ["x0"]) == chain
    assert legs_of(calls, ["x150"]) == ["x150", *chain[:150], *chain[151:]]
    assert legs_of(calls.iloc[:2], ["x0"]) == ["x0", "x1"]  # one link: its two legs


def test_the_call_list_shows_every_leg_with_its_correlation(tmp_path: Path) -> None:
    pcap = b2bua_capture(tmp_path / "b2bua.pcap")
    result = CliRunner().invoke(main, ["calls", str(pcap), "--report", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["call_id"]: row for row in json.loads(result.stdout)["calls"]}
    assert sorted(rows) == ["a-leg", "b-leg", "c-leg", "d-leg", "other"]
    assert rows["b-leg"]["correlation_id"] == rows["a-leg"]["correlation_id"] == "first"
    assert (rows["b-leg"]["outcome"], rows["b-leg"]["e2e_outcome"]) == ("busy", "busy")
    assert rows["d-leg"]["e2e_outcome"] == "answered"


def test_extract_writes_the_linked_legs_with_the_call(tmp_path: Path) -> None:
    pcap = b2bua_capture(tmp_path / "b2bua.pcap")
    out = tmp_path / "a.pcap"
    result = CliRunner().invoke(main, ["extract", str(pcap), "--call-id", "a-leg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "of 1 calls and 1 linked B2BUA legs" in result.stderr
    written = read_capture(out).messages
    assert sorted(written["call_id"].astype("str").unique()) == ["a-leg", "b-leg"]
    assert len(written) == 8  # INVITE, 100, 486, ACK on each leg
    alone = tmp_path / "alone.pcap"
    args = ["extract", str(pcap), "--call-id", "a-leg", "-o", str(alone)]
    result = CliRunner().invoke(main, [*args, "--correlation-header", "none"])
    assert result.exit_code == 0, result.output
    assert read_capture(alone).messages["call_id"].astype("str").unique().tolist() == ["a-leg"]
