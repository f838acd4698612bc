"""The optional C extensions: where they are loaded and checked, and the switch that turns them off.

``setup.py`` builds them at install when a C compiler is there. Each has a pure-Python twin
that gives the same results (the tests compare both ways), so a missing extension only costs
speed. ``SIPSTATS_PURE_PYTHON=1`` in the environment, read once at import, runs everything on
the Python twins; :func:`python_twins` does the same for a block of code (the tests' switch).

A build left over from another version (an old ``.so`` beside newer Python after a checkout)
would be called with arguments it does not take, or fill records wrongly, and could crash the
process. So each extension says which version of the interface it was built for
(``INTERFACE_VERSION``) and, as it fills Python records (``Payload``, ``SipMessage``) slot by
slot, how many fields it fills (``PAYLOAD_FIELDS``, ``MESSAGE_FIELDS``); :func:`extension`
compares both with this code when the owning module loads it: a build that disagrees is not
used (the Python twin runs), with a warning that says why and to rebuild.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Final

#: The version of the extensions' interface this code calls (``INTERFACE_VERSION`` in
#: ``_columns.h``, which both extensions report): bumped together with any change of a C
#: function, its arguments or results that Python sees.
INTERFACE_VERSION: Final = 3

#: The environment variable that switches every extension off for the whole process.
PURE_PYTHON_ENV: Final = "SIPSTATS_PURE_PYTHON"

#: Read once: the extensions are not even loaded when it is set.
_OFF_FROM_START: Final = os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")
#: Extensions :func:`python_twins` has switched off ("*": every one).
_switched_off: frozenset[str] = frozenset()


def pure_python() -> bool:
    """True while every Python twin runs: ``SIPSTATS_PURE_PYTHON`` was set (any value but ''
    or '0') when sipstats was imported, or inside ``python_twins()``."""
    return _OFF_FROM_START or "*" in _switched_off


def enabled(name: str) -> bool:
    """True unless the extension ``name`` is switched off (by the environment or
    :func:`python_twins`); its owner asks this each time it would use it."""
    return not (pure_python() or name in _switched_off)


@contextmanager
def python_twins(*names: str) -> Iterator[None]:
    """Run the block on the Python twins of ``names`` (``"capture._pcapscan"``, ``"_sipscan"``;
    none: every extension), then restore the backends in force before it.

    The switch takes effect at once in this process; worker processes start from the
    environment variable.
    """
    global _switched_off
    before = _switched_off
    _switched_off = before | frozenset(names or ("*",))
    try:
        yield
    finally:
        _switched_off = before


def extension(name: str, **layout: tuple[str, ...]) -> ModuleType | None:
    """The built extension ``sipstats.<name>``, or None when it is missing, switched off by the
    environment, or stale. Owners load theirs once, at import.

    Stale: built for another :data:`INTERFACE_VERSION`, or for other records: ``layout`` maps
    each field-count constant of the extension to the fields of the record it fills
    (``PAYLOAD_FIELDS=Payload._fields``). A stale build is refused with a
    :class:`RuntimeWarning` that says why.
    """
    if _OFF_FROM_START:
        return None
    try:
        module = importlib.import_module(f"sipstats.{name}")
    except ImportError:
        return None
    built = getattr(module, "INTERFACE_VERSION", None)
    why = (
        None
        if built == INTERFACE_VERSION
        else f"was built for interface version {built}, this code calls {INTERFACE_VERSION}"
    )
    for constant, fields in layout.items():
        built = getattr(module, constant, None)
        if why is None and built != len(fields):
            why = f"was built with {constant} {built}, the record has {len(fields)} fields"
    if why is not None:
        warnings.warn(
            f"sipstats.{name} {why}: a stale build, not used (rebuild: pip install -e .)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return module
