"""Build hook for the optional C accelerators; everything else is in pyproject.toml.

Each has a pure-Python twin that gives the same results (tests compare them). ``optional``:
on a machine without a C compiler the install still succeeds and sipstats runs on the twins.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("sipstats._sipscan", ["sipstats/_sipscan.c"], optional=True),
        Extension("sipstats.capture._pcapscan", ["sipstats/capture/_pcapscan.c"], optional=True),
    ]
)
