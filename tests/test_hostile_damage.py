"""Issue 13, damage keeps what came before it: one flipped byte in the middle of a gzip or xz
capture keeps every record that decodes before the damage."""

from __future__ import annotations

import gzip
import lzma
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipstats.capture import source
from sipstats.cli import main
from sipstats.messages import read_capture
from tests import hostile_inputs as hostile

COMPRESS = {"gzip": lambda data: gzip.compress(data, mtime=0), "xz": lzma.compress}
DECOMPRESSOR = {"gzip": lambda: zlib.decompressobj(31), "xz": lzma.LZMADecompressor}


def _messages_before(plain: bytes, damaged_at: int) -> int:
    """Records (one message each) that end before byte ``damaged_at`` of ``plain``."""
    count, off = 0, 24
    while off + 16 <= len(plain):
        caplen = int.from_bytes(plain[off + 8 : off + 12], "little")
        if off + 16 + caplen > damaged_at:
            break
        count += 1
        off += 16 + caplen
    return count


def _first_wrong_byte(kind: str, damaged: bytes, plain: bytes) -> int:
    """Where the decoded bytes first differ from the original: fed a byte at a time, the
    decompressor hands over everything it decodes before it notices the damage."""
    engine = DECOMPRESSOR[kind]()
    out = bytearray()
    for i in range(len(damaged)):
        try:
            out += engine.decompress(damaged[i : i + 1])
        except (zlib.error, lzma.LZMAError):
            break
    return next((i for i, (a, b) in enumerate(zip(out, plain, strict=False)) if a != b), len(out))


@pytest.mark.parametrize("kind", ["gzip", "xz"])
def test_a_flipped_middle_byte_keeps_every_record_before_it(tmp_path: Path, kind: str) -> None:
    plain = hostile.many_messages(300)
    damaged = hostile.flip_middle_byte(COMPRESS[kind](plain))
    path = tmp_path / f"flipped.pcap.{kind}"
    path.write_bytes(damaged)
    capture = read_capture(path)
    assert any(e.startswith(f"{kind} data damaged") for e in capture.inputs[0].errors)
    intact = _messages_before(plain, _first_wrong_byte(kind, damaged, plain))
    assert intact > 100
    assert capture.messages["call_id"].head(intact).tolist() == [
        f"call-{n // 2}@test" for n in range(intact)
    ]
    result = CliRunner().invoke(main, [str(path), "--report", "json", "-o", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output


def test_a_small_damaged_xz_capture_is_not_empty(tmp_path: Path) -> None:
    """All of it fits one decompression call: before, that call's loss was the whole file."""
    path = tmp_path / "small.pcap.xz"
    path.write_bytes(hostile.compressed_flipped("xz", 150))
    capture = read_capture(path)
    assert len(capture.messages) > 50


def test_a_cut_file_is_not_decoded_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = hostile.many_messages(200)
    packed = gzip.compress(plain, mtime=0)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    monkeypatch.setattr(source.Source, "_salvage", None)  # would raise if it were called
    capture = read_capture(path)
    assert capture.inputs[0].errors[-1].startswith("gzip data damaged after decompressed byte")
    assert len(capture.messages) > 100
