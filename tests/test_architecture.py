"""The one-way data flow (STYLE: read -> decode -> sessionize -> join -> aggregate -> render).

A module may import only from its own stage or stages to its left; a backwards arrow fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sipstats"

#: Stage rank of each top-level module or sub-package; lower ranks sit further left.
STAGES = {
    "errors": 0,
    "native": 0,
    "schema": 0,
    "textsafe": 0,
    "capture": 1,
    "sip": 2,
    "_sipscan": 2,  # the C twin of sip.py's fast path
    "progress": 2,
    "messages": 3,
    "workers": 3,  # the messages stage on several processes
    "select": 4,
    "dataset": 4,
    "catalogue": 4,
    "analyze": 5,
    "engines": 5,
    "drill": 5,  # calls, flows and packets of an analysis; Analysis.flow() draws through it
    "render": 6,
    "report": 7,
    "cli": 8,
    "__main__": 9,
    "__init__": 9,
}


def _stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sipstats" and node.level == 0:
            found.extend(f"sipstats.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name == "sipstats" or name.startswith("sipstats.")]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_left(path: Path) -> None:
    relative = path.relative_to(PACKAGE).with_suffix("")
    own = relative.parts[0]
    assert own in STAGES, f"{relative}: add its stage to STAGES in this test"
    for imported in _imports(path):
        target = _stage_of(imported)
        assert target in STAGES, f"{relative} imports unknown stage {imported}"
        assert STAGES[target] <= STAGES[own], f"{relative} imports {imported}: a backwards arrow"


def test_scapy_stays_in_the_decode_stage() -> None:
    """Only the decode stage knows packet libraries; scapy objects never reach analysis."""
    for path in _modules():
        own = path.relative_to(PACKAGE).parts[0]
        text = path.read_text()
        if own != "capture":
            assert "import scapy" not in text, path
            assert "from scapy" not in text, path
