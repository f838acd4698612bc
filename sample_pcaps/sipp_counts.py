"""What SIPp itself recorded during a run -> the expected counts of the capture (stdlib only).

A sample's working directory holds one sub-directory per sipp instance with its -trace_msg
(``*_messages.log``), -trace_counts (``*_counts.csv``), -trace_stat (``*_.csv``) and
-trace_logs (``*_logs.log``) files.  tcpdump sits on the loopback every sipp sends over, so the
capture holds exactly the messages the sipp instances logged as sent: per method and per status
code, every copy (``count``) and without retransmissions (``unique``: sipp re-sends a message
byte for byte, so a sent text seen before from the same sipp is a retransmission).

Used by ``make.sh`` (``python3 sipp_counts.py WORKDIR PCAP expected.json``) and by
``tests/test_e2e_sipp.py``.  No sipstats code is involved.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_ENTRY = re.compile(r"^-{20,} [0-9-]+ [0-9:.]+\n(?P<head>[^\n]*)\n\n", re.M)
_SENT = re.compile(r"^(UDP|TCP) message sent")


def sent_messages(messages_log: Path) -> list[str]:
    """The text of every message one sipp wrote to its socket (retransmissions included)."""
    text = messages_log.read_text(encoding="latin-1")
    starts = list(_ENTRY.finditer(text))
    out = []
    for i, m in enumerate(starts):
        if not _SENT.match(m.group("head")):
            continue
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        out.append(text[m.end() : end].strip("\n"))
    return out


def _kind(message: str) -> tuple[str, str]:
    """('request', METHOD) or ('response', CODE) from a message's start line."""
    first = message.split("\n", 1)[0].split()
    if first and first[0].startswith("SIP/"):
        return "response", first[1]
    return "request", first[0] if first else "?"


def count_sent(per_sipp: list[list[str]]) -> dict[str, Any]:
    """Requests by method and responses by code over several sipps: every copy and unique."""
    counts: dict[str, Counter[str]] = {"request": Counter(), "response": Counter()}
    unique: dict[str, Counter[str]] = {"request": Counter(), "response": Counter()}
    for messages in per_sipp:
        seen: set[str] = set()
        for msg in messages:
            kind, key = _kind(msg)
            counts[kind][key] += 1
            if msg not in seen:
                seen.add(msg)
                unique[kind][key] += 1

    def table(kind: str) -> dict[str, dict[str, int]]:
        return {
            k: {"count": counts[kind][k], "unique": unique[kind][k]} for k in sorted(counts[kind])
        }

    total = sum(counts["request"].values()) + sum(counts["response"].values())
    total_unique = sum(unique["request"].values()) + sum(unique["response"].values())
    return {
        "sip_messages": total,
        "retransmissions": total - total_unique,
        "requests_by_method": table("request"),
        "responses_by_code": table("response"),
    }


def last_row(csv_path: Path) -> dict[str, str]:
    """The last line of a sipp -trace_stat / -trace_counts file (cumulative totals)."""
    lines = [ln for ln in csv_path.read_text(encoding="latin-1").splitlines() if ln.strip()]
    header = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(header, values, strict=False))


def log_records(log_path: Path) -> list[list[str]]:
    """The tab-separated lines of a sipp -trace_logs file, without sipp's own timestamp prefix."""
    return [ln.split("\t") for ln in log_path.read_text(encoding="latin-1").splitlines() if ln]


def fields(record: list[str]) -> dict[str, str]:
    """key=value cells of one <log> record."""
    return dict(cell.split("=", 1) for cell in record if "=" in cell)


def _one(directory: Path, pattern: str) -> Path | None:
    found = sorted(directory.glob(pattern))
    return found[0] if found else None


def sipp_instance(directory: Path) -> dict[str, Any]:
    """sipp's statistics, per-line counters and exit status for one instance."""
    info: dict[str, Any] = {}
    rc = _one(directory, "*.rc")
    if rc is not None:
        info["exit_status"] = int(rc.read_text())
    stat = _one(directory, "*_[0-9]*_.csv")
    if stat is not None:
        row = last_row(stat)
        for name, key in [
            ("OutgoingCall(C)", "outgoing_calls"),
            ("IncomingCall(C)", "incoming_calls"),
            ("SuccessfulCall(C)", "successful_calls"),
            ("FailedCall(C)", "failed_calls"),
            ("Retransmissions(C)", "retransmissions"),
        ]:
            info[key] = int(row[name])
    counts = _one(directory, "*_counts.csv")
    if counts is not None:
        row = last_row(counts)
        # a scenario line that sends has a "<n>_<name>_Sent" column; its "_Retrans" column
        # counts re-sent copies (on a receiving line it counts copies received)
        info["sent_retransmissions"] = sum(
            int(row[k[: -len("_Sent")] + "_Retrans"]) for k in row if k.endswith("_Sent")
        )
    return info


def callers(directory: Path) -> dict[str, Any]:
    """From caller.xml's <log> records: INVITE attempts, final code per attempt, retry decisions."""
    log = _one(directory, "*_logs.log")
    attempts: list[str] = []
    final: dict[str, str] = {}
    decisions: dict[str, Counter[str]] = {}
    for rec in log_records(log) if log else []:
        if rec[0] == "attempt":
            attempts.append(rec[1])
        elif rec[0] == "answered":
            final[rec[1]] = "200"
        elif rec[0] == "decision":
            f = fields(rec)
            code = str(int(float(f["code"])))
            final[rec[1]] = code
            decisions.setdefault(code, Counter())[f["decision"]] += 1
    return {
        "invite_attempts": len(attempts),
        "original_calls": sum(1 for a in attempts if "///" not in a),
        "final_code_by_call_id": final,
        "retry_decisions": {c: dict(sorted(d.items())) for c, d in sorted(decisions.items())},
    }


def summarise(workdir: Path) -> dict[str, Any]:
    """Everything a sample's sipps recorded, in the shape expected.json keeps per capture."""
    dirs = sorted(d for d in workdir.iterdir() if d.is_dir())
    logs = [_one(d, "*_messages.log") for d in dirs]
    out = count_sent([sent_messages(p) for p in logs if p is not None])
    out["sipp"] = {d.name: sipp_instance(d) for d in dirs}
    for d in dirs:
        log = _one(d, "*_logs.log")
        plans = Counter(fields(r)["plan"] for r in log_records(log) if log and "plan" in fields(r))
        if plans:
            out["sipp"][d.name]["plans"] = dict(sorted(plans.items()))
    finals: Counter[str] = Counter()
    retry: dict[str, Counter[str]] = {}
    attempts = originals = 0
    for d in dirs:
        log = _one(d, "*_logs.log")
        if log is None or not log.read_text(encoding="latin-1").startswith("attempt\t"):
            continue
        c = callers(d)
        attempts += c["invite_attempts"]
        originals += c["original_calls"]
        finals.update(c["final_code_by_call_id"].values())
        for code, dec in c["retry_decisions"].items():
            retry.setdefault(code, Counter()).update(dec)
    if attempts:
        out["calls"] = {
            "invite_attempts": attempts,
            "original_calls": originals,
            "by_final_code": dict(sorted(finals.items())),
        }
        out["retry_decisions"] = {c: dict(sorted(d.items())) for c, d in sorted(retry.items())}
    return out


def main(argv: list[str]) -> int:
    """WORKDIR PCAP EXPECTED_JSON: add (or replace) the capture's entry in EXPECTED_JSON."""
    workdir, pcap, expected = Path(argv[1]), Path(argv[2]), Path(argv[3])
    data = json.loads(expected.read_text()) if expected.exists() else {}
    entry = summarise(workdir)
    entry["file_size"] = pcap.stat().st_size
    data[pcap.name] = entry
    expected.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
