"""The fuzz campaign CI keeps: the whole regression corpus, then a bounded hypothesis run per
target (byte-level mutations of the corpus and plain random bytes; see ``tests/fuzz/``).

The long campaign is one command, ``python -m tests.fuzz TARGET --runs N`` (atheris when it
is installed, else :func:`campaign` below).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.corpus import CORPUS, TARGET_NAMES, files
from tests.fuzz.targets import TARGETS

#: Examples per target in CI: about a minute in total on the project's 2-core machine;
#: ``FUZZ_EXAMPLES=N`` runs N per target instead (``scripts/sanitize.sh`` does).
CI_EXAMPLES = {"reader": 300, "defrag": 1500, "sip": 1500, "tcp": 1000}
_ASKED = int(os.environ.get("FUZZ_EXAMPLES", "0"))

_EDIT = st.tuples(
    st.sampled_from(("flip", "insert", "delete", "overwrite")),
    st.integers(min_value=0, max_value=1 << 20),
    st.binary(min_size=1, max_size=16),
)


def _mutate(seed: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    """``seed`` after a few byte-level edits, each at a position taken modulo its length."""
    data = bytearray(seed)
    for kind, where, chunk in edits:
        at = where % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= chunk[0] or 0xFF
        elif kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


def mutants(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, or a corpus input with up to 8 edits."""
    edited = st.builds(_mutate, st.sampled_from(seeds), st.lists(_EDIT, max_size=8))
    return st.one_of(st.binary(max_size=4096), edited) if seeds else st.binary(max_size=4096)


def campaign(name: str, examples: int, *, derandomize: bool = False) -> int:
    """Run target ``name`` on ``examples`` mutants of its corpus; return how many ran."""
    target: Callable[[bytes], None] = TARGETS[name]
    seeds = [path.read_bytes() for path in files(name)]
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutants(seeds))
    def run(data: bytes) -> None:
        nonlocal ran
        ran += 1
        target(data)

    run()
    return ran


def test_every_target_has_a_corpus() -> None:
    assert sorted(TARGETS) == sorted(TARGET_NAMES)
    for name in TARGET_NAMES:
        assert files(name), f"no regression inputs in {CORPUS / name}"


@pytest.mark.parametrize(
    ("name", "path"),
    [(name, path) for name in TARGET_NAMES for path in files(name)],
    ids=lambda value: getattr(value, "name", value),
)
def test_regression_corpus(name: str, path: object) -> None:
    TARGETS[name](path.read_bytes())  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_bounded_campaign(name: str) -> None:
    examples = _ASKED or CI_EXAMPLES[name]
    assert campaign(name, examples, derandomize=not _ASKED) >= examples // 2
