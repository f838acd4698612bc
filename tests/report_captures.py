"""Small captures for report and CLI tests, built with :mod:`tests.sipfactory` (fixed times).

``mixed_capture`` holds an answered call, a 486 and a 503 with Retry-After, each retried too
early by its caller and then answered, and calls whose responses carry hostile text: a reason
phrase that is a script tag, a User-Agent that closes an attribute and opens an img tag, rich
markup and spreadsheet formulas (reason phrase, User-Agent, From display name). The reports
must show all of it as plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.packet import Packet

from sipstats.analyze import Analysis, analyze
from sipstats.messages import read_capture
from tests.sipfactory import UAC, UAS, sip_request, sip_response, udp, write_pcap

SCRIPT = "<script>alert(1)</script>"
IMG_UA = '"><img src=x onerror=alert(1)>'
MARKUP = "[bold red]alarm[/bold red]"
FORMULA = '=HYPERLINK("http://evil.example/","click")'
AT_FORMULA = "@SUM(1)"

Response = tuple[float, int, str, Sequence[tuple[str, str]]]


def call(
    n: int,
    t: float,
    responses: Sequence[Response],
    *,
    caller: str = "sip:alice@example.com",
    callee: str = "sip:bob@example.com",
    bye_after: float | None = None,
    display_name: str | None = None,
) -> list[Packet]:
    """One INVITE call starting at ``t``: its responses (offset, code, reason, headers),
    the ACK of the final response and, for an answered call, a BYE ``bye_after`` s later.
    ``display_name`` goes in front of the From URI of every message."""
    dialog = {
        "call_id": f"call-{n}@example.com",
        "branch": f"z9hG4bK-{n}",
        "caller": caller,
        "callee": callee,
        "from_tag": f"ft{n}",
    }
    packets = [udp(sip_request("INVITE", callee, cseq=1, **dialog), t)]
    final_t = t
    for dt, code, reason, headers in responses:
        to_tag = None if code == 100 else f"tt{n}"
        raw = sip_response(
            code, reason, headers=headers, cseq=1, cseq_method="INVITE", to_tag=to_tag, **dialog
        )
        packets.append(udp(raw, t + dt, src=UAS, dst=UAC))
        final_t = t + dt
    ack = sip_request("ACK", callee, cseq=1, to_tag=f"tt{n}", **dialog)
    packets.append(udp(ack, final_t + 0.01))
    if bye_after is not None:
        bye = {**dialog, "branch": f"z9hG4bK-{n}-bye"}
        packets.append(
            udp(sip_request("BYE", callee, cseq=2, to_tag=f"tt{n}", **bye), final_t + bye_after)
        )
        ok = sip_response(200, "OK", cseq=2, cseq_method="BYE", to_tag=f"tt{n}", **bye)
        packets.append(udp(ok, final_t + bye_after + 0.005, src=UAS, dst=UAC))
    if display_name is not None:
        named = f'From: "{display_name}" <'.encode()
        for packet in packets:
            packet["Raw"].load = packet["Raw"].load.replace(b"From: <", named, 1)
    return packets


def mixed_packets() -> list[Packet]:
    """Every packet of :func:`mixed_capture`, in time order."""
    ring = (0.15, 180, "Ringing", ())
    packets = [
        *call(1, 0.0, [(0.01, 100, "Trying", ()), ring, (1.2, 200, "OK", ())], bye_after=3.0),
        *call(
            2,
            1.0,
            [(0.01, 100, "Trying", ()), (0.3, 486, "Busy Here", [("Retry-After", "30")])],
            caller="sip:carol@example.com",
        ),
        # carol retries after 5 s although the 486 asked for 30 s: too early
        *call(3, 6.3, [ring, (0.9, 200, "OK", ())], caller="sip:carol@example.com", bye_after=2.0),
        *call(
            4,
            8.0,
            [(0.05, 503, "Service Unavailable", [("Retry-After", "10")])],
            caller="sip:dave@example.com",
            callee="sip:erin@example.com",
        ),
        *call(
            5,
            9.0,
            [(0.2, 486, SCRIPT, [("User-Agent", IMG_UA), ("Server", MARKUP)])],
            caller="sip:mallory@example.com",
            callee="sip:trent@example.com",
            display_name=AT_FORMULA,
        ),
        *call(
            6,
            10.0,
            [(0.2, 480, FORMULA, [("User-Agent", AT_FORMULA)])],
            caller="sip:oscar@example.com",
            callee="sip:peggy@example.com",
            display_name=FORMULA.replace('"', "'"),
        ),
        *call(
            7,
            11.0,
            [(0.2, 603, MARKUP, ())],
            caller="sip:victor@example.com",
            callee="sip:walter@example.com",
        ),
    ]
    # dave retries 2.15 s after the 503 that asked for 10 s: too early as well
    packets += call(
        8, 10.2, [ring, (0.5, 200, "OK", ())], caller="sip:dave@example.com",
        callee="sip:erin@example.com", bye_after=1.0,
    )  # fmt: skip
    return sorted(packets, key=lambda p: float(p.time))


def mixed_capture(path: Path) -> Path:
    """Write :func:`mixed_packets` as a classic pcap at ``path``."""
    return write_pcap(path, mixed_packets())


def truncated_capture(path: Path) -> Path:
    """The mixed capture with its last packet cut in half (a capture tool killed mid-write)."""
    mixed_capture(path)
    data = path.read_bytes()
    path.write_bytes(data[:-150])
    return path


def report_inputs(directory: Path) -> dict[str, Path]:
    """The inputs the report tests share: the mixed capture, its truncated copy, and a text
    file named like a capture."""
    text = directory / "notes.pcap"
    text.write_text("this is not a capture\n")
    return {
        "mixed": mixed_capture(directory / "mixed.pcap"),
        "truncated": truncated_capture(directory / "truncated.pcap"),
        "text": text,
    }


def mixed_analysis(directory: Path) -> Analysis:
    """The analysis of :func:`mixed_capture` written into ``directory``."""
    return analyze(read_capture([mixed_capture(directory / "mixed.pcap")]))
