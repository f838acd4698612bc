"""Engines: where the analysis runs. ``local`` is :func:`sipstats.analyze` in this process;
``dask`` (:mod:`sipstats.engines.dask_cluster`) spreads decoding and the per-Call-ID analysis
over a Dask cluster and gives the same :class:`~sipstats.analyze.Analysis`.
"""

from __future__ import annotations

from typing import Final, Literal

Engine = Literal["local", "dask"]

ENGINES: Final[tuple[Engine, ...]] = ("local", "dask")
