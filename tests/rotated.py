"""Rotated captures for dataset and engine tests: a real capture cut into files by ``editcap -c``.

The cuts fall every few hundred packets, so calls of ``sample_pcaps/outage.pcap`` (SIPp,
~50 s) cross file boundaries, as they do in an SBC's ``tcpdump -C`` rotation.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SAMPLES


def rotate(capture: Path, folder: Path, packets_per_file: int) -> list[Path]:
    """``capture`` cut into ``folder``/rot_NNNNN_<time>.pcap files of ``packets_per_file``."""
    if shutil.which("editcap") is None:
        pytest.skip("editcap (Debian package wireshark-common) is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["editcap", "-c", str(packets_per_file), str(capture), str(folder / "rot.pcap")],
        check=True,
    )
    return sorted(folder.glob("rot_*.pcap"))


def rotated_outage(folder: Path) -> list[Path]:
    """The outage sample in 8 rotated files (200 packets each)."""
    return rotate(SAMPLES / "outage.pcap", folder, 200)
