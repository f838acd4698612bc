"""The committed fuzz regression corpus: ``tests/fuzz/regressions/TARGET/NAME``, one input a file.

Each issue 13 input the target reads (written from ``tests/hostile_inputs.py`` by
``python -m tests.fuzz.corpus``) and every crash a campaign found, kept after its fix.
"""

from __future__ import annotations

import struct
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "regressions"
TARGET_NAMES = ("defrag", "reader", "sip", "tcp")


def files(target: str) -> list[Path]:
    """Every corpus input of ``target``, sorted by name."""
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


def _segment(conn: int, flags: int, step: int, payload: bytes) -> bytes:
    """One record of the ``tcp`` target's input (see ``targets.segments``)."""
    return struct.pack(">BBhH", conn, flags, step, len(payload)) + payload


def _fragment(key: int, offset: int, more: bool, data: bytes, step: int = 0) -> bytes:
    """One record of the ``defrag`` target's input (see ``targets.fragments``)."""
    return struct.pack(">BHBH", key, offset // 8 | (0x8000 if more else 0), step, len(data)) + data


def seeds() -> dict[str, dict[str, bytes]]:
    """The crafted inputs of issue 13 in each target's input format (small sizes)."""
    from tests.hostile_inputs import HUGE_DIGITS, _message, inputs, invite
    from tests.sipfactory import sip_request

    datagram = b"\x13\xc4\x13\xc4\x00\x00\x00\x00" + invite(1)
    # 1 MiB ahead (the step is in units of 64), then 65 contiguous KiB of junk.
    junk_ahead = _segment(0, 0x18, 1 << 14, b"J" * 1024)
    junk_ahead += b"".join(_segment(0, 0x18, 0, b"J" * 1024) for _ in range(64))
    no_length = _message(1).replace(b"Content-Length: 0\r\n", b"")
    return {
        "reader": dict(inputs()),
        "sip": {
            "digits-cseq": _message(1).replace(b"CSeq: 1 ", f"CSeq: {HUGE_DIGITS} ".encode()),
            "digits-expires": _message(1, Expires=HUGE_DIGITS),
            "controls": _message(1, User_Agent="\x1b[2J\x1b]0;t\x07\x7f"),
            "long-value": _message(1, User_Agent="A" * 30_000),
            "cr-in-call-id": _message(1).replace(b"Call-ID: h1@x", b"Call-ID: inj\r=1+1@x"),
            # Found by scripts/sanitize.sh: memchr(NULL, ...) in _sipscan.c (UBSan).
            "sdp-media-without-port": sip_request(
                "INVITE",
                call_id="sdp@x",
                cseq=1,
                branch="z9hG4bK-sdp",
                headers=[("Content-Type", "application/sdp")],
                body=b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio\r\n",
            ),
        },
        "tcp": {
            "far-ahead": _segment(0, 0x18, 0, invite(1))
            + junk_ahead
            + _segment(0, 0x18, -(1 << 14) - 65 * 1024 // 64, invite(2)),
            "no-length-streams": b"".join(
                _segment(c, 0x18, 0, no_length + b"x" * 3000) for c in range(8)
            ),
            "syn-fin": _segment(0, 0x02, 0, b"") + _segment(0, 0x19, 0, invite(3)),
        },
        "defrag": {
            "overlapping": b"".join(_fragment(0, 8 * k, True, b"o" * 40) for k in range(1100)),
            "twice": _fragment(1, 0, True, datagram[:64])
            + _fragment(1, 64, False, datagram[64:])
            + _fragment(1, 64, False, datagram[64:]),
            "empty": _fragment(2, 0, True, b"")
            + _fragment(2, 0, True, datagram[:64])
            + _fragment(2, 64, False, datagram[64:]),
        },
    }


def write_seeds() -> None:
    """(Re)write the crafted inputs into the corpus; found crashes sit beside them."""
    for target, named in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    write_seeds()
