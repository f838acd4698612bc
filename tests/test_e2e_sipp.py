"""End to end against a real peer: a fresh SIPp run over a lossy link, captured and analysed.

A sipp caller and callee (``sample_pcaps/scenarios``) talk over the loopback of a private
network namespace made for this test.  The callee draws a random outcome per call (200, 486 /
480 / 503 with Retry-After, 503 without, 603, 404); nftables drops 12 % of the SIP packets in
the namespace's input hook, after tcpdump has seen them, so both sides retransmit (RFC 3261
§17 timers).  ``sipstats FILE --report json`` (the CLI, in a subprocess) must count what SIPp
says it wrote (its -trace_msg log, -trace_counts and -trace_stat files, and the plan each
call drew in its -trace_logs file) and what ``tshark -z sip,stat`` counts.

tshark's "resent" flag is a heuristic, so it is compared frame by frame, and every frame where
it disagrees with sipstats must be one its rule explains: tshark compares a message only with
the previous one of the same Call-ID in the same direction (CSeq, method, status), never flags
an ACK, and ignores the Via branch -- so it calls SIPp's closing BYE (same CSeq, new branch, a
new transaction by RFC 3261 §17.2.3) "resent".

Skipped, with the reason, when not root or when sipp, tcpdump, tshark, nft or ``ip netns`` is
missing.  Every process is bounded by ``timeout`` / sipp ``-timeout`` and stopped by its PID;
the namespace is deleted at the end.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sipstats import analyze, read_capture
from tests.conftest import SAMPLES
from tests.sipp_paths import caller_calls_callee, json_report, run

pytestmark = pytest.mark.netns

CALLS = 60
LOSS_PERCENT = 12
CALLER, CALLEE = "127.0.99.10", "127.0.99.20"
# the callee's plan -> the final response it sends
PLAN_FINAL = {"200": "200", "486": "486", "480": "480", "503": "503"}
PLAN_FINAL |= {"503_no_retry_after": "503", "603": "603", "404": "404"}


def _load_sipp_counts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sipp_counts", SAMPLES / "sipp_counts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lossy(ns: str) -> None:
    """Drop LOSS_PERCENT % of the SIP packets delivered inside the namespace (no netem here)."""
    rules = f"""
table inet lossy {{
  chain input {{
    type filter hook input priority 0; policy accept;
    udp dport 5060 numgen random mod 100 < {LOSS_PERCENT} counter drop
  }}
}}
"""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
        input=rules,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _dropped(ns: str) -> int:
    table = run("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "lossy").stdout
    counter = re.search(r"counter packets (\d+)", table)
    assert counter is not None, table
    return int(counter[1])


def _tshark_sipstat(pcap: Path) -> dict[str, Any]:
    """tshark's own SIP statistics: packets per status code and per method, resent total."""
    text = run("tshark", "-r", str(pcap), "-q", "-z", "sip,stat").stdout
    codes = {m[0]: int(m[1]) for m in re.findall(r"SIP (\d{3}) [^:\n]*:\s+(\d+) Packets", text)}
    methods = {m[0]: int(m[1]) for m in re.findall(r"^\s+([A-Z]+)\s+:\s+(\d+) Packets", text, re.M)}
    resent = re.search(r"Number of resent SIP messages: (\d+)", text)
    total = re.search(r"Number of SIP messages: (\d+)", text)
    assert resent is not None, text
    assert total is not None, text
    return {"codes": codes, "methods": methods, "resent": int(resent[1]), "total": int(total[1])}


_FIELDS = ("frame.number", "sip.resend", "sip.Call-ID", "ip.src", "udp.srcport", "ip.dst")
_FIELDS += ("udp.dstport", "sip.CSeq", "sip.Status-Code", "sip.Via.branch")


def _tshark_resent_frames(pcap: Path) -> list[dict[str, str]]:
    """One dict per SIP frame: tshark's resent flag and what its resend rule looks at."""
    args = [f"-e{field}" for field in _FIELDS]
    text = run("tshark", "-r", str(pcap), "-Y", "sip", "-T", "fields", "-E", "occurrence=f",
                *args).stdout  # fmt: skip
    return [dict(zip(_FIELDS, line.split("\t"), strict=True)) for line in text.splitlines()]


def _unexplained_resent_differences(
    frames: list[dict[str, str]], ours: dict[int, bool]
) -> tuple[list[str], int, int]:
    """Frames where tshark's resent flag and sipstats' retransmission flag differ unexplained.

    Also returns how many frames only tshark flags and how many only sipstats flags.
    """
    previous: dict[tuple[str, ...], dict[str, str]] = {}
    unexplained, only_tshark, only_ours = [], 0, 0
    for f in frames:
        direction = (f["sip.Call-ID"], f["ip.src"], f["udp.srcport"], f["ip.dst"], f["udp.dstport"])
        before = previous.get(direction, {})
        previous[direction] = f
        repeats = all(before.get(k) == f[k] for k in ("sip.CSeq", "sip.Status-Code"))
        new_branch = repeats and before["sip.Via.branch"] != f["sip.Via.branch"]
        is_ack = f["sip.CSeq"].endswith(" ACK")
        theirs, mine = f["sip.resend"] == "1", ours[int(f["frame.number"])]
        if theirs and not mine:
            only_tshark += 1
            if not new_branch:
                unexplained.append(
                    f"frame {f['frame.number']}: tshark resent, not a retransmission"
                )
        elif mine and not theirs:
            only_ours += 1
            if repeats and not is_ack:
                unexplained.append(f"frame {f['frame.number']}: retransmission tshark missed")
    return unexplained, only_tshark, only_ours


def test_sipstats_counts_what_sipp_sent_over_a_lossy_link(namespace: str, tmp_path: Path) -> None:
    began = time.monotonic()
    ns, pcap = namespace, tmp_path / "e2e.pcap"
    _lossy(ns)
    caller_calls_callee(
        ns, tmp_path, pcap, addresses=(CALLER, CALLEE), calls=CALLS, rate=10,
        callee_sets={
            "p200": "50", "p486": "15", "p480": "8", "p503": "10", "p503n": "5", "p603": "5",
            "wait_retry": "0", "t0": "0", "out_from": "0", "out_to": "0",
        },
        callee_keys={"ra486": "20", "ra480": "300;duration=1800", "ra503": "5", "ra_outage": "5"},
    )  # fmt: skip
    dropped = _dropped(ns)

    sipp = _load_sipp_counts().summarise(tmp_path)
    tshark = _tshark_sipstat(pcap)
    report = json_report(pcap)

    # the link really was lossy, and SIPp's three records agree with each other
    assert dropped > 0
    assert sipp["retransmissions"] > 0
    instances = sipp["sipp"].values()
    assert sipp["retransmissions"] == sum(i["sent_retransmissions"] for i in instances)  # counts
    assert sipp["retransmissions"] == sum(i["retransmissions"] for i in instances)  # stat
    assert sipp["sipp"]["caller"]["outgoing_calls"] == CALLS
    assert sipp["sipp"]["callee"]["incoming_calls"] == CALLS

    # every message: sipstats == what the sipps wrote == what tshark counts
    assert report["summary"]["sip_messages"] == sipp["sip_messages"] == tshark["total"]
    for code, n in sipp["responses_by_code"].items():
        got = report["responses_by_code"][code]
        assert (got["count"], got["unique"]) == (n["count"], n["unique"]), code
        assert tshark["codes"][code] == n["count"], code
    assert set(report["responses_by_code"]) == set(sipp["responses_by_code"])
    for method, n in sipp["requests_by_method"].items():
        got = report["requests_by_method"][method]
        assert (got["count"], got["unique"]) == (n["count"], n["unique"]), method
        assert tshark["methods"][method] == n["count"], method
    assert set(report["requests_by_method"]) == set(sipp["requests_by_method"])

    # retransmissions: SIPp's count; tshark's resent flags differ only where its rule says so
    assert report["summary"]["retransmissions"] == sipp["retransmissions"]
    messages = analyze(read_capture(pcap)).messages
    ours = dict(zip(messages["frame"].tolist(), messages["retransmission"].tolist(), strict=True))
    frames = _tshark_resent_frames(pcap)
    unexplained, only_tshark, only_ours = _unexplained_resent_differences(frames, ours)
    assert unexplained == []
    assert tshark["resent"] == sipp["retransmissions"] + only_tshark - only_ours

    # calls: one per sipp call, each with the final its drawn plan prescribes
    plans = sipp["sipp"]["callee"]["plans"]
    by_plan: dict[str, int] = {}
    for plan, n in plans.items():
        by_plan[PLAN_FINAL[plan]] = by_plan.get(PLAN_FINAL[plan], 0) + n
    assert report["calls"]["total"] == CALLS == sipp["calls"]["invite_attempts"]
    finals = {code: n for code, n in report["calls"]["by_final_code"].items() if n}
    assert finals == by_plan == sipp["calls"]["by_final_code"]

    # Retry-After as the callee sent it (unique responses; "300;duration=1800" is 300 s)
    sent_retry_after = {"486": ("20", "486"), "480": ("300", "480"), "503": ("5", "503")}
    for code, (value, plan) in sent_retry_after.items():
        got, n = report["retry_after"].get(code, {}), plans.get(plan, 0)
        assert got.get("with_retry_after", 0) == n, code
        assert got.get("values_s", {}) == ({value: n} if n else {}), code
    without = report["retry_after"].get("503", {}).get("without_retry_after", 0)
    assert without == plans.get("503_no_retry_after", 0)
    assert time.monotonic() - began < 60
