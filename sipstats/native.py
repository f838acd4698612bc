"""The optional C extensions: where they are loaded, and the one switch that turns them off.

``setup.py`` builds them at install when a C compiler is there. Each has a pure-Python twin
that gives the same results (the tests compare both ways), so a missing extension only costs
speed. ``SIPSTATS_PURE_PYTHON=1`` in the environment, read at import, runs everything on the
Python twins.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def pure_python() -> bool:
    """True when ``SIPSTATS_PURE_PYTHON`` asks for the Python twins (any value but '' or '0')."""
    return os.environ.get("SIPSTATS_PURE_PYTHON", "") not in ("", "0")


def extension(name: str) -> ModuleType | None:
    """The built extension ``sipstats.<name>``, or None when it is missing or switched off."""
    if pure_python():
        return None
    try:
        return importlib.import_module(f"sipstats.{name}")
    except ImportError:
        return None
