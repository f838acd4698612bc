"""Build hook for the optional C accelerators; everything else is in pyproject.toml.

Each has a pure-Python twin that gives the same results (tests compare them). ``optional``:
on a machine without a C compiler the install still succeeds and sipstats runs on the twins.
"""

from setuptools import Extension, setup

#: The builder's C functions that the record walk calls (both include it).
COLUMNS_API = "sipstats/_columns.h"

setup(
    ext_modules=[
        Extension(
            "sipstats._sipscan", ["sipstats/_sipscan.c"], depends=[COLUMNS_API], optional=True
        ),
        Extension(
            "sipstats.capture._pcapscan",
            ["sipstats/capture/_pcapscan.c"],
            depends=[COLUMNS_API],
            optional=True,
        ),
    ]
)
