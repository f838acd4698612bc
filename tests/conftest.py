"""Shared fixtures: where the team's shared captures are, skipping cleanly when they are absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
PEERS = SHARED / "peers"
SAMPLES = ROOT / "sample_pcaps"


def _need(path: Path, what: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}: it exists only beside the team's checkout")
    return path


@pytest.fixture
def corpus_dir() -> Path:
    """../shared/corpus (real SIPp captures with truth.json), or skip."""
    return _need(CORPUS, "the shared capture corpus")


@pytest.fixture
def peers_dir() -> Path:
    """../shared/peers (other projects' captures with tshark's view), or skip."""
    return _need(PEERS, "the shared peer captures")


def load_truth(scenario: str) -> dict[str, Any]:
    """truth.json of one corpus scenario (call only from tests that took ``corpus_dir``)."""
    return json.loads((CORPUS / scenario / "truth.json").read_text())
