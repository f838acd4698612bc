"""A record stamped well before an earlier one is counted, not silently trusted."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import wrpcapng

from sipstats.capture.decode import OUT_OF_ORDER
from sipstats.messages import read_capture
from tests.sipfactory import sip_request, udp, write_pcap


def _packets(step_back_s: float) -> list:
    invite = sip_request("INVITE", call_id="c1", cseq=1, branch="z9hG4bK1")
    options = sip_request("OPTIONS", call_id="c2", cseq=1, branch="z9hG4bK2")
    return [udp(invite, 10.0), udp(options, 10.0 - step_back_s)]


@pytest.mark.parametrize("writer", ["pcap", "pcapng"])
def test_a_jump_back_in_time_is_an_anomaly_and_the_message_stays(
    tmp_path: Path, writer: str
) -> None:
    path = tmp_path / f"jump.{writer}"
    if writer == "pcap":
        write_pcap(path, _packets(3600.0))
    else:
        wrpcapng(str(path), _packets(3600.0))
    capture = read_capture(path)
    [summary] = capture.inputs
    assert summary.malformed[OUT_OF_ORDER].frames == [2]
    assert summary.malformed[OUT_OF_ORDER].detail == "3600.000 s back"
    assert len(capture.messages) == 2


def test_small_reordering_is_normal(tmp_path: Path) -> None:
    """tcpdump -i any interleaves interfaces: steps back under a second are not damage."""
    capture = read_capture(write_pcap(tmp_path / "any.pcap", _packets(0.2)))
    assert OUT_OF_ORDER not in capture.inputs[0].malformed
    assert not capture.inputs[0].damaged
