"""Decoding acceptance on other projects' captures: our SIP counts equal tshark's.

tshark's view is ``F.messages.tsv`` (one row per frame; several messages of one frame are
joined with ``|``). Where tshark is blind (HEP, SIP on TCP 6060 without a decode-as) the
reference is the other file named in ``REFERENCE``; where it counts something RFC 3261 says is
no usable message, ``DIFFERENCES`` states the right number and why.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from sipstats.messages import Capture, read_capture
from tests.conftest import PEERS

pytestmark = pytest.mark.peers

Counts = tuple[dict[str, int], dict[str, int]]


def _captures() -> list[str]:
    """Every peer capture: a file with tshark's ``.messages.tsv`` beside it."""
    found = sorted(
        str(tsv.relative_to(PEERS))[: -len(".messages.tsv")]
        for tsv in PEERS.rglob("*.messages.tsv")
        if ".decodeas-" not in tsv.name
    )
    return found or ["absent"]  # the peers_dir fixture then skips


CAPTURES = _captures()


def tshark_counts(tsv: Path) -> Counts:
    requests: Counter[str] = Counter()
    responses: Counter[str] = Counter()
    with tsv.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            requests.update(m for m in row["sip.Method"].split("|") if m)
            responses.update(c for c in row["sip.Status-Code"].split("|") if c)
    return dict(requests), dict(responses)


def hep_counts(decoded: Path) -> Counts:
    """Counts of the SIP payloads (ptype=1) listed in a ``.hep-decoded.txt``."""
    requests: Counter[str] = Counter()
    responses: Counter[str] = Counter()
    for line in decoded.read_text().splitlines():
        match = re.search(r" ptype=1 .* b'(\S+) (\S+)", line)
        if match is None:
            continue
        if match[1] == "SIP/2.0":
            responses[match[2]] += 1
        else:
            requests[match[1]] += 1
    return dict(requests), dict(responses)


def counts(messages: pd.DataFrame) -> Counts:
    requests = Counter(messages.loc[messages["is_request"], "method"].astype(str))
    responses = Counter(str(code) for code in messages.loc[~messages["is_request"], "status"])
    return dict(requests), dict(responses)


#: Where tshark's default view is blind, the reference that sees the SIP.
REFERENCE = {
    # tshark 4.0 has no HEP dissector: 0 SIP. The decoded HEPv3 chunks list 6 SIP payloads.
    "hep-wireshark/hep.pcap": "hep.pcap.hep-decoded.txt",
    # tshark dissects TCP 6060 as X11; with -d tcp.port==6060,sip it finds 406 messages.
    "heplify/sip_ipv4_tcp_fragmented.pcap": (
        "sip_ipv4_tcp_fragmented.pcap.decodeas-tcp6060.messages.tsv"
    ),
}

#: capture -> (right counts, why tshark's differ)
DIFFERENCES: dict[str, tuple[Counts, str]] = {
    "ndpi/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap": (
        (
            {"INVITE": 12, "ACK": 13, "OPTIONS": 6, "BYE": 3},
            {"100": 12, "180": 3, "200": 18, "488": 3},
        ),
        "the gateway-side leg (10.35.40.x) was captured twice: 22 frames repeat the frame before "
        "byte for byte (same MACs, TTL and IP id) 0.3-1 ms later, which no SIP timer does. They "
        "are capture duplicates, counted, not rows; tshark lists all 92 (and calls 14 resent).",
    ),
    "hep-wireshark/hep3_compressed.pcap.pcapng": (
        ({"REGISTER": 4}, {"401": 2, "200": 1}),
        "21 HEP SIP payloads (the .hep-decoded.txt) are 7 messages, each reported by 3 capture "
        "agents with the same bytes and timestamp: 14 capture duplicates, counted, not rows.",
    ),
    "pcapplusplus/sip_reqs.pcap": (
        ({"INVITE": 1, "CANCEL": 1, "ACK": 1}, {}),
        "the BYE is cut inside its header block (last line 'Content-Lengt', no colon, no end): "
        "a 'bad header line', not a row. tshark's sip,stat also counts 3.",
    ),
    "zeek/invalid-content-length.pcap": (
        ({}, {}),
        "Content-Length 'bad' and 'xyz' (RFC 3261 §20.14 needs digits): the body cannot be "
        "framed, so both are 'bad Content-Length', as Zeek's weird.log also says.",
    ),
    "zeek/sip-junk-before-request.pcap": (
        ({}, {}),
        "the REGISTER carries only Expires: no Call-ID, CSeq, From, To or Via (RFC 3261 "
        "§8.1.1), so 'missing mandatory header'; the NUL datagram is 'not SIP on a SIP port'.",
    ),
    "ndpi/fuzz-2006-06-26-2594.pcap": (
        (
            {"REGISTER": 2, "INVITE": 1, "CANCEL": 1, "ACK": 1},
            {"401": 3, "407": 1, "100": 1, "200": 1},
        ),
        "a bit-flipped copy of aaa.pcap: tshark labels 52 frames SIP (its sip,stat counts 28), "
        "but most have mandatory headers destroyed, header blocks overwritten with 0xAA up to "
        "the datagram end, or a broken CSeq/start line; 11 are complete messages and every "
        "other one is counted per reason.",
    ),
}


@pytest.mark.parametrize("name", CAPTURES)
def test_requests_by_method_and_responses_by_code_equal_tshark(peers_dir: Path, name: str) -> None:
    path = peers_dir / name
    if name in DIFFERENCES:
        expected = DIFFERENCES[name][0]
    elif name in REFERENCE:
        reference = path.parent / REFERENCE[name]
        expected = tshark_counts(reference) if reference.suffix == ".tsv" else hep_counts(reference)
    else:
        expected = tshark_counts(Path(f"{path}.messages.tsv"))
    capture = read_capture(path)
    assert counts(capture.messages) == expected
    assert not capture.inputs[0].errors


def read(peers_dir: Path, name: str) -> Capture:
    return read_capture(peers_dir / name)


def test_blind_spots_have_their_reference(peers_dir: Path) -> None:
    assert hep_counts(peers_dir / "hep-wireshark" / REFERENCE["hep-wireshark/hep.pcap"]) == (
        {"INVITE": 1, "OPTIONS": 1, "PUBLISH": 1},
        {"100": 1, "407": 1, "200": 1},
    )
    capture = read(peers_dir, "heplify/sip_ipv4_tcp_fragmented.pcap")
    assert len(capture.messages) == 406
    assert set(capture.messages["dport"]) | set(capture.messages["sport"]) >= {6060}


def test_differences_are_counted_per_reason(peers_dir: Path) -> None:
    def malformed(name: str) -> dict[str, int]:
        [summary] = read(peers_dir, name).inputs
        return {reason: a.count for reason, a in summary.malformed.items()}

    assert malformed("pcapplusplus/sip_reqs.pcap") == {"bad header line": 1}
    assert malformed("zeek/invalid-content-length.pcap") == {"bad Content-Length": 2}
    assert malformed("zeek/sip-junk-before-request.pcap") == {
        "not SIP on a SIP port": 1,
        "missing mandatory header": 1,
    }
    fuzz = malformed("ndpi/fuzz-2006-06-26-2594.pcap")
    sip_level = ("bad header line", "missing mandatory header", "bad start line")
    assert sum(fuzz[reason] for reason in sip_level) >= 52 - 11 - 6  # 6 never reach SIP


@pytest.mark.parametrize(
    "name",
    [
        "ndpi/http_on_sip_port.pcap",
        "ndpi/mullvad_wireguard.pcap",
        "suricata-verify/sip-ssdp-pm/ssdp.pcap",
        "suricata-verify/http-evader-486/input.pcap",
        "sngrep/tlssaved.pcap",
    ],
)
def test_negatives_have_no_sip(peers_dir: Path, name: str) -> None:
    assert read(peers_dir, name).messages.empty


def test_responses_without_requests_keep_their_fields(peers_dir: Path) -> None:
    messages = read(peers_dir, "pcapplusplus/sip_resp.pcap").messages
    assert messages["status"].tolist() == [100, 180, 200, 401, 401, 504, 503]
    assert messages["transport"].tolist() == ["udp"] * 4 + ["tcp"] + ["udp"] * 2
    last = messages.iloc[-1]
    assert (last["retry_after"], last["retry_after_raw"]) == (0, "0")
    assert messages["to_tag"].notna().all()
