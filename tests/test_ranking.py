"""Most first, then by name: one helper, and no other copy of the rule in the package."""

from __future__ import annotations

import re

from sipstats.ranking import most_first, most_first_order
from tests.test_architecture import PACKAGE


def test_most_first_breaks_ties_by_name() -> None:
    counted = {"b": 2, "c": 5, "a": 2, "d": 0}
    assert most_first(counted.items()) == [("c", 5), ("a", 2), ("b", 2), ("d", 0)]
    assert most_first_order(list(counted), list(counted.values())) == [1, 2, 0, 3]
    assert most_first([(10, 1), (9, 1)]) == [(9, 1), (10, 1)]  # numbers as numbers


#: The rule written out by hand: a sort on the negated count then the name, a frame sort
#: with the count descending and the name ascending, a lexsort of (name, -count). Sorts
#: that rank within groups (a third key, first) are vectorised on purpose and not matched.
_WRITTEN_OUT = re.compile(
    r"key=lambda[^:]*:\s*\(\s*-"
    r"|ascending=\[False, True\]"
    r"|lexsort\(\((?:[^,]|\([^)]*\))+,\s*-[^,]+\)\)"
)


def test_no_module_writes_the_rule_out() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "ranking.py"
        for line in path.read_text().splitlines()
        if _WRITTEN_OUT.search(line)
    ]
    assert found == []
