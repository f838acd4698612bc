"""The one-way data flow (STYLE: read -> decode -> sessionize -> join -> aggregate -> render).

A module may import only from its own stage or stages to its left, and inside ``capture/`` and
``analyze/`` only from modules before it in that package's order. Every way of importing
counts: absolute and relative ``import``/``from`` statements at any depth (inside functions
and ``TYPE_CHECKING`` blocks too), ``importlib.import_module``/``__import__`` and
``native.extension`` with a literal name, and any string naming a sipstats module (the CLI's
lazy subcommand table). :func:`violations` is run here on the package and, to prove it
bites, on a copy with wrong-way imports written into it.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sipstats"

#: Stage rank of each top-level module or sub-package; lower ranks sit further left.
STAGES = {
    "errors": 0,
    "ranking": 0,
    "native": 0,
    "schema": 0,
    "textsafe": 0,
    "vocabulary": 0,
    "capture": 1,
    "sip": 2,
    "_sipscan": 2,  # the C twin of sip.py's fast path
    "progress": 2,
    "messages": 3,
    "workers": 3,  # the messages stage on several processes
    "select": 4,
    "checks": 4,  # the selection options as written, read without pandas
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

#: Hand-off records and the leaf layers of the decode stage: they import no capture module.
_LEAF_CAPTURE_MODULES = ("records", "summary", "ports", "magic", "sniff", "linklayer")
_LEAF_CAPTURE_MODULES += ("framing", "websocket", "defrag", "sctp", "fallback", "_pcapscan")
_LEAF_CAPTURE_MODULES += ("icmp", "tunnels")

#: Order inside a sub-package: a module imports only modules of a lower rank.
INNER = {
    "capture": {
        **dict.fromkeys(_LEAF_CAPTURE_MODULES, 0),
        "tcp": 1,
        "hep": 1,
        "source": 1,
        "duplicates": 1,
        "decode": 2,
        "pcap": 3,
        "pcapng": 4,
        "deferral": 3,
        "reader": 5,
        "survey": 6,
        "frames": 6,
        "__init__": 7,
    },
    "analyze": {
        "keys": -2,  # integer keys and group helpers: every analysis module may use them
        "tally": 0,  # counts that add up over partitions: imports no other analysis module
        "responses": -1,  # the response rule: the tally counts by it too
        "transactions": 0,
        "join": 1,
        "media": 1,
        "challenges": 1,
        "legs": 1,
        "b2bua": 1,
        "calls": 2,
        "registrations": 3,
        "retries": 3,
        "dialogs": 4,
        "counts": 4,
        "breakdown": 4,
        "causes": 4,
        "trunks": 4,
        "metrics": 5,
        "findings": 6,
        "__init__": 7,
    },
}

#: What the rest of sipstats may import from a sub-package: its entry points and hand-off
#: records, not its internals (analysis never reaches into TCP reassembly).
#: ``framing`` holds the SIP number and header-length rules the parser shares with TCP
#: framing; ``duplicates`` the capture-duplicate filter the messages stage applies; ``survey``
#: what a file without SIP held instead; ``magic`` the file magics the directory scan asks.
#: ``--jobs`` cuts pcap files at records (``pcap``) and replays the deferred TCP, fragments and
#: SCTP (``deferral``) on one ``decode`` Decoder; ``extract`` re-walks files for ``frames``.
PUBLIC = {
    "capture": {
        *("__init__", "records", "summary", "ports", "reader", "framing", "duplicates", "survey"),
        *("magic", "pcap", "deferral", "decode", "frames"),
    }
}

#: Known arrows against the flow, each for a reason. A delegation is a function-level import
#: in a method the public API promises; the work is done on the right-hand side.
EXCEPTIONS = {
    ("analyze/__init__.py", "sipstats.render.document"): "Analysis.to_dict() delegates",
    ("analyze/__init__.py", "sipstats.render.notebook"): "Analysis._repr_html_ delegates",
    ("messages.py", "sipstats.render.notebook"): "Capture._repr_html_ delegates",
    ("analyze/trunks.py", "sipstats.analyze"): "a type only: apply_trunks relabels an Analysis",
}

_MODULE_TEXT = re.compile(r"^sipstats(?:\.[A-Za-z_]\w*)+(?::\w+)?$")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str, root: Path) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    base = root / relative
    return (
        base.with_suffix(".py").is_file()
        or (base / "__init__.py").is_file()
        or any(base.parent.glob(f"{base.name}.*.so"))
    )


def _absolute(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The module an ``ImportFrom`` names, relative levels resolved against ``path``."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _literal(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every sipstats module ``path`` loads, by any of the means the module docstring lists."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path, root)
            for alias in node.names:
                child = f"{module}.{alias.name}"
                found.add(child if _exists(child, root) else module)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            text = _literal(node)
            if text is not None and name in ("import_module", "__import__"):
                found.add(text)
            elif text is not None and name == "extension":  # native.extension("_sipscan")
                found.add(f"sipstats.{text}")
        elif isinstance(node, ast.Constant) and _MODULE_TEXT.match(str(node.value)):
            found.add(node.value.partition(":")[0])
    return {name for name in found if name == "sipstats" or name.startswith("sipstats.")}


def _place(module: str) -> tuple[str, str]:
    """(stage, module inside the stage's package or '__init__') of a dotted sipstats name."""
    parts = module.split(".")[1:] or ["__init__"]
    return parts[0], parts[1] if len(parts) > 1 else "__init__"


def violations(root: Path = PACKAGE) -> list[str]:
    """One line per import against the flow in the package at ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        own_stage, own_inner = _place(_module_name(path, root))
        if own_stage not in STAGES:
            found.append(f"{relative}: add its stage to STAGES in this test")
            continue
        for imported in sorted(imports(path, root)):
            stage, inner = _place(imported)
            if (relative, imported) in EXCEPTIONS:
                continue
            if stage not in STAGES:
                found.append(f"{relative} imports unknown stage {imported}")
            elif STAGES[stage] > STAGES[own_stage]:
                found.append(f"{relative} imports {imported}: a backwards arrow")
            elif stage != own_stage and inner not in PUBLIC.get(stage, {inner}):
                found.append(f"{relative} imports {imported}: internal to {stage}/")
            elif stage == own_stage and stage in INNER and inner != own_inner:
                order = INNER[stage]
                if inner not in order or own_inner not in order:
                    found.append(f"{relative} imports {imported}: add both to INNER[{stage!r}]")
                elif order[inner] >= order[own_inner]:
                    found.append(f"{relative} imports {imported}: against the order in {stage}/")
    return found


def test_imports_point_left() -> None:
    assert violations() == []


def test_every_exception_is_still_needed() -> None:
    for module, imported in EXCEPTIONS:
        assert imported in imports(PACKAGE / module), f"{module} no longer imports {imported}"


BACKWARDS, ORDER, INTERNAL = "a backwards arrow", "against the order in", "internal to"

#: (file, line written into it, the module it then imports, why that is wrong)
INJECTED = [
    ("analyze/calls.py", "from ..render import text", "render.text", BACKWARDS),
    ("capture/pcap.py", 'importlib.import_module("sipstats.analyze")', "analyze", BACKWARDS),
    ("analyze/transactions.py", "from sipstats.analyze import retries", "analyze.retries", ORDER),
    ("analyze/retries.py", "from sipstats.capture import tcp", "capture.tcp", INTERNAL),
    ("capture/records.py", "from . import reader", "capture.reader", ORDER),
    ("sip.py", "def later():\n    from sipstats import messages", "messages", BACKWARDS),
    ("schema.py", 'LAZY = {"x": "sipstats.cli.report:report"}', "cli.report", BACKWARDS),
]


@pytest.mark.parametrize(
    ("module", "line", "target", "why"), INJECTED, ids=[i[0] for i in INJECTED]
)
def test_the_check_fails_on_a_wrong_way_import(
    tmp_path: Path, module: str, line: str, target: str, why: str
) -> None:
    copy = tmp_path / "sipstats"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    path.write_text(path.read_text() + f"\n\n{line}\n")
    [found] = violations(copy)
    assert found.startswith(f"{module} imports sipstats.{target}: {why}")


@pytest.mark.parametrize("stage", ["capture", "sip.py", "messages.py", "analyze"])
def test_only_renderers_format(stage: str) -> None:
    """Markup and the JSON document are built in ``render/``; the stages before it compute."""
    paths = [PACKAGE / stage] if stage.endswith(".py") else sorted((PACKAGE / stage).rglob("*.py"))
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                assert not {"html", "json"} & {*names, getattr(node, "module", None)}, path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"<(table|td|th|tr|div|p)\b", node.value), path


def test_scapy_stays_in_the_decode_stage() -> None:
    """Only the decode stage knows packet libraries; scapy objects never reach analysis."""
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0]
        text = path.read_text()
        if own != "capture":
            assert "import scapy" not in text, path
            assert "from scapy" not in text, path
