"""The real command line on every shared capture: exit status and JSON figures against truth.

One ``python -m sipstats FILE --report json`` per capture, run in parallel once per module;
each test reads the JSON that run wrote. Where the decoder deliberately reads a damaged file
differently from tshark (documented in ``tests/test_decode_corpus.py``), the test asserts our
documented figures and says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS, PEERS, ROOT, load_truth
from tests.test_analyze_corpus import GARBAGE_LATE_COPY
from tests.test_decode_peers import CAPTURES as PEER_CAPTURES
from tests.test_decode_peers import DIFFERENCES as PEER_DIFFERENCES
from tests.test_decode_peers import REFERENCE as PEER_REFERENCE
from tests.test_decode_peers import hep_counts, tshark_counts


@dataclass(frozen=True)
class Run:
    """One CLI run: exit status, stderr and the JSON report (None when none was written)."""

    status: int
    stderr: str
    report: dict[str, Any] | None


def _corpus_captures() -> list[tuple[str, str]]:
    if not CORPUS.is_dir():
        return [("absent", "absent")]
    return [
        (truth.parent.name, name)
        for truth in sorted(CORPUS.glob("*/truth.json"))
        for name in json.loads(truth.read_text())["captures"]
    ]


CORPUS_CAPTURES = _corpus_captures()

#: Damaged files: the report is written and the exit status says some input was lost.
DAMAGED = {
    "c10_bad_record_header.pcap",
    "c10_garbage_records.pcap",
    "c10_snaplen300.pcap",
    "c10_truncated.pcapng",
    "c10_truncated_tail.pcap",
}
#: Read, but no SIP in it: the report says what the file held instead, and the exit status 1.
WITHOUT_SIP = {"c10_header_only.pcap"}
#: Nothing readable: a zero-byte file and a text file are no captures (exit 2, no report).
UNREADABLE = {"c10_empty.pcap", "c10_not_a_capture.pcap"}


def _run_cli(path: Path, out: Path) -> Run:
    command = [sys.executable, "-m", "sipstats", str(path), "--report", "json"]
    done = subprocess.run(
        [*command, "-o", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    report = json.loads(out.read_text()) if out.exists() else None
    return Run(done.returncode, done.stderr, report)


def _run_all(paths: dict[str, Path], tmp: Path) -> dict[str, Run]:
    outs = {key: tmp / f"{i}.json" for i, key in enumerate(paths)}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(_run_cli, paths[key], outs[key]) for key in paths}
        return {key: future.result() for key, future in futures.items()}


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared capture corpus not found at {CORPUS}")
    paths = {name: CORPUS / scenario / name for scenario, name in CORPUS_CAPTURES}
    return _run_all(paths, tmp_path_factory.mktemp("cli-corpus"))


def _report(runs: dict[str, Run], name: str) -> dict[str, Any]:
    run = runs[name]
    assert run.report is not None, run.stderr
    return run.report


def _truth(scenario: str, name: str) -> dict[str, Any]:
    return load_truth(scenario)["captures"][name]


def _snaplen300_sip() -> dict[str, Any]:
    """The first 800 packets of c02 counted from their start lines (tshark, c10_snaplen300)."""
    return _truth("c10_broken", "c10_snaplen300.pcap")["sip"]


def _expected_unique(scenario: str, name: str) -> tuple[dict[str, int], dict[str, int]]:
    if name == "c10_bad_record_header.pcap":
        # truth: 420 messages, tshark stops at the record header claiming 2 GB. We
        # resynchronise and read all 800 records: the first 800 packets of c02, as counted
        # for c10_snaplen300 (no retransmissions among them).
        sip = _snaplen300_sip()
        return sip["requests_by_method"], sip["responses_by_code"]
    if name == "c10_snaplen300.pcap":
        # every message lost headers and body to the 300-byte snaplen: counted malformed
        # ('truncated by snaplen'), none is a row.
        return {}, {}
    dedup = _truth(scenario, name)["sip"]["deduplicated"]
    codes = dict(dedup["responses_by_code"])
    if name == "c10_garbage_records.pcap":
        # the inserted bare 'SIP/2.0 503 Service Unavailable' has no headers: malformed here,
        # a 503 for tshark.
        codes["503"] -= 1
    methods = dict(dedup["requests_by_method"])
    if name == GARBAGE_LATE_COPY[0]:
        methods[GARBAGE_LATE_COPY[1]] += 1  # a copy an hour away is no retransmission
    return methods, codes


def _expected_calls(scenario: str, name: str) -> dict[str, int]:
    if name == "c10_bad_record_header.pcap":
        # all 800 records read (see above): the calls of c10_truncated_tail, whose 799
        # complete records are the same packets but for the last one (no final response).
        return _truth("c10_broken", "c10_truncated_tail.pcap")["calls"]["outcomes"]
    if name == "c10_snaplen300.pcap":
        return {}  # no message survived the snaplen, so no call
    if scenario == "c11_proxy":
        # the caller's view, as calls are counted on the caller leg at a proxy
        return dict(load_truth(scenario)["proxy"]["calls"]["caller_outcomes"])
    return dict(_truth(scenario, name)["calls"]["outcomes"])


def _expected_retry_after(scenario: str, name: str) -> dict[str, dict[str, int]]:
    if name == "c10_bad_record_header.pcap":
        return _truth("c10_broken", "c10_truncated_tail.pcap")["sip"]["retry_after"][
            "by_code_deduplicated"
        ]
    if name == "c10_snaplen300.pcap":
        return {}
    if scenario == "c11_proxy":
        # what the callers got: relayed responses once, on the caller leg
        caller_leg = load_truth(scenario)["proxy"]["legs"]["caller"]
        return dict(caller_leg["retry_after_header_text_by_code_deduplicated"])
    return dict(_truth(scenario, name)["sip"]["retry_after"]["by_code_deduplicated"])


corpus_cases = pytest.mark.parametrize(("scenario", "name"), CORPUS_CAPTURES)


@pytest.mark.corpus
@corpus_cases
def test_exit_status(corpus_runs: dict[str, Run], scenario: str, name: str) -> None:
    run = corpus_runs[name]
    assert "Traceback" not in run.stderr
    if name in UNREADABLE:
        assert run.status == 2
        assert run.stderr.splitlines()[-1].startswith("sipstats: error: nothing readable")
        assert run.report is None
    else:
        assert run.status == (1 if name in DAMAGED | WITHOUT_SIP else 0), run.stderr
        assert _report(corpus_runs, name)["schema"] == "sipstats.report/1"


def _skip_unreadable(name: str) -> None:
    if name in UNREADABLE:
        pytest.skip(f"{name}: nothing readable, no report (exit status tested above)")


@pytest.mark.corpus
@corpus_cases
def test_unique_counts_equal_truth(corpus_runs: dict[str, Run], scenario: str, name: str) -> None:
    _skip_unreadable(name)
    report = _report(corpus_runs, name)
    methods, codes = _expected_unique(scenario, name)
    assert {m: r["unique"] for m, r in report["requests_by_method"].items()} == methods
    assert {c: r["unique"] for c, r in report["responses_by_code"].items()} == codes


@pytest.mark.corpus
@corpus_cases
def test_retransmissions_equal_truth(corpus_runs: dict[str, Run], scenario: str, name: str) -> None:
    """count - unique per method and per code is what truth calls a retransmission."""
    _skip_unreadable(name)
    if name in ("c10_bad_record_header.pcap", "c10_snaplen300.pcap"):
        pytest.skip(f"{name}: rows differ from tshark's by design (see the unique test)")
    report = _report(corpus_runs, name)
    truth = _truth(scenario, name)["sip"]["retransmissions"]
    expected = dict(truth["requests_by_method"])
    total = truth["total"]
    if name == GARBAGE_LATE_COPY[0]:
        expected[GARBAGE_LATE_COPY[1]] -= 1  # a copy an hour away is no retransmission
        total -= 1
    methods = {m: r["count"] - r["unique"] for m, r in report["requests_by_method"].items()}
    codes = {c: r["count"] - r["unique"] for c, r in report["responses_by_code"].items()}
    assert {m: n for m, n in methods.items() if n} == {m: n for m, n in expected.items() if n}
    assert {c: n for c, n in codes.items() if n} == truth["responses_by_code"]
    assert report["summary"]["retransmissions"] == total


@pytest.mark.corpus
@corpus_cases
def test_calls_by_final_code_equal_truth(
    corpus_runs: dict[str, Run], scenario: str, name: str
) -> None:
    _skip_unreadable(name)
    report = _report(corpus_runs, name)
    assert report["calls"]["by_final_code"] == _expected_calls(scenario, name)


@pytest.mark.corpus
@corpus_cases
def test_retry_after_values_equal_truth(
    corpus_runs: dict[str, Run], scenario: str, name: str
) -> None:
    _skip_unreadable(name)
    report = _report(corpus_runs, name)
    values = {code: row["values_s"] for code, row in report["retry_after"].items()}
    assert {code: v for code, v in values.items() if v} == _expected_retry_after(scenario, name)


#: truth.json ``retries.totals_by_code`` key -> the JSON report's ``retry_after[code]`` key.
RETRY_TOTALS = {
    "failures": "failures",
    "retried": "retries",
    "retried_honoured": "retries_honoured",
    "retried_too_early": "retries_too_early",
    "retried_without_retry_after": "retries_without_retry_after",
    "not_retried": "not_retried",
}


@pytest.mark.corpus
def test_c10_retry_totals_per_code_equal_truth(corpus_runs: dict[str, Run]) -> None:
    if "c10_retry.pcap" not in corpus_runs:
        pytest.skip("c10_retry not in the corpus")
    report = _report(corpus_runs, "c10_retry.pcap")["retry_after"]
    truth = load_truth("c10_retry")["retries"]["totals_by_code"]
    got = {code: {k: report[code][ours] for k, ours in RETRY_TOTALS.items()} for code in truth}
    want = {code: {k: totals[k] for k in RETRY_TOTALS} for code, totals in truth.items()}
    assert got == want
    # failures with Retry-After are the failures whose final response carried one
    for code, totals in truth.items():
        assert (
            report[code]["failures"] - totals["without_retry_after"] == totals["with_retry_after"]
        )


@pytest.mark.corpus
def test_c11_proxy_outcomes_are_the_callers(corpus_runs: dict[str, Run]) -> None:
    if "c11_proxy.pcap" not in corpus_runs:
        pytest.skip("c11_proxy not in the corpus")
    report = _report(corpus_runs, "c11_proxy.pcap")
    proxy = load_truth("c11_proxy")["proxy"]["calls"]
    assert report["calls"]["by_final_code"] == proxy["caller_outcomes"]
    assert report["calls"]["total"] == proxy["call_ids"]["on_caller_leg"]
    assert report["calls"]["by_outcome"]["answered"] == proxy["answered_2xx_caller"]
    # transaction metrics count the caller's leg too: its BYEs and INVITE transactions
    caller = load_truth("c11_proxy")["proxy"]["legs"]["caller"]["transactions"]
    samples = {name: d["samples"] for name, d in report["metric_definitions"].items()}
    assert samples["SDD_success"] == caller["final_by_method"]["BYE"]["200"]
    invite_finals = caller["final_by_method"]["INVITE"]
    assert samples["SER_transactions"] == sum(
        n for code, n in invite_finals.items() if not code.startswith("3")
    )


@pytest.mark.corpus
def test_c06_registrations(corpus_runs: dict[str, Run]) -> None:
    """REGISTER attempts: final codes, final-response sequences, 423 with Min-Expires."""
    if "c06_register.pcap" not in corpus_runs:
        pytest.skip("c06_register not in the corpus")
    truth = _truth("c06_register", "c06_register.pcap")["registrations"]
    regs = _report(corpus_runs, "c06_register.pcap")["registrations"]
    assert regs["total"] == truth["count"]
    assert regs["by_final_code"] == truth["outcome"]
    assert regs["final_sequences"] == truth["final_sequences"]
    brief = sum(n for seq, n in truth["final_sequences"].items() if seq.startswith("423"))
    assert regs["interval_too_brief"] == brief
    assert regs["min_expires_s"] == {"120": brief}  # meta: min_expires 120
    assert regs["challenges_answered"] == regs["challenged"] == truth["count"]


@pytest.mark.corpus
def test_c05_transactions_without_final_response(corpus_runs: dict[str, Run]) -> None:
    """The BYEs that lost every response to the 15 % loss (truth: BYE finals 'none')."""
    if "c05_loss.pcap" not in corpus_runs:
        pytest.skip("c05_loss not in the corpus")
    truth = _truth("c05_loss", "c05_loss.pcap")
    report = _report(corpus_runs, "c05_loss.pcap")
    unanswered = sum(
        t["by_final"].get("none", 0) for t in truth["non_invite_transactions"].values()
    )
    unanswered += truth["calls"]["no_final_response"]
    assert report["summary"]["transactions_without_final"] == unanswered


# -- other projects' captures ---------------------------------------------------------------------


def _peer_messages(name: str) -> int:
    """The documented SIP message count of a peer capture (tests/test_decode_peers.py)."""
    path = PEERS / name
    if name in PEER_DIFFERENCES:
        requests, responses = PEER_DIFFERENCES[name][0]
    elif name in PEER_REFERENCE:
        reference = path.parent / PEER_REFERENCE[name]
        is_tsv = reference.suffix == ".tsv"
        requests, responses = tshark_counts(reference) if is_tsv else hep_counts(reference)
    else:
        requests, responses = tshark_counts(Path(f"{path}.messages.tsv"))
    return sum(requests.values()) + sum(responses.values())


@pytest.fixture(scope="module")
def peer_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    if not PEERS.is_dir():
        pytest.skip(f"the shared peer captures not found at {PEERS}")
    paths = {name: PEERS / name for name in PEER_CAPTURES}
    return _run_all(paths, tmp_path_factory.mktemp("cli-peers"))


@pytest.mark.peers
@pytest.mark.parametrize("name", PEER_CAPTURES)
def test_peer_capture_through_the_cli(peer_runs: dict[str, Run], name: str) -> None:
    """Every peer file is a readable capture: exit 0, or 1 exactly when input was damaged or
    held no SIP (the negatives: HTTP, WireGuard, TLS, SSDP), which stderr then says."""
    run = peer_runs[name]
    assert "Traceback" not in run.stderr
    report = _report(peer_runs, name)
    [summary] = report["inputs"]
    damaged = bool(summary["malformed"] or summary["errors"])
    assert run.status == (1 if damaged or summary["no_sip"] else 0), run.stderr
    if damaged or summary["no_sip"]:
        assert run.stderr.startswith(f"sipstats: warning: {summary['file']}: ")
    if summary["no_sip"]:
        assert f"{summary['file']}: no SIP found in " in run.stderr
    assert report["summary"]["sip_messages"] == _peer_messages(name)
