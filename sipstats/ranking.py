"""The one order of counted things in every table and finding: most first, then by name.

Equal counts fall back on the name, so a report lists ties the same way on every run and in
every format. Plain Python, no numpy: the decoding stage ranks what it surveyed with it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

_Name = TypeVar("_Name")


def most_first(counted: Iterable[tuple[_Name, int]]) -> list[tuple[_Name, int]]:
    """``(name, count)`` pairs, the largest count first, equal counts by name."""
    return sorted(counted, key=lambda pair: (-pair[1], pair[0]))


def most_first_order(names: Sequence[Any], counts: Sequence[int]) -> list[int]:
    """The positions of ``names`` / ``counts`` (side by side) in :func:`most_first` order."""
    return sorted(range(len(names)), key=lambda at: (-counts[at], names[at]))
