"""Response class colours, the same in every figure and in the HTML report's legend.

Here rather than in :mod:`sipstats.render.plots` so that the HTML page can name them without
importing matplotlib (its figures may be drawn in another process).
"""

from __future__ import annotations

from typing import Final

#: Response class -> colour, the same in every figure and in the HTML report.
CLASS_COLOURS: Final = {
    "1xx": "#8c8c8c",
    "2xx": "#2ca02c",
    "3xx": "#1f77b4",
    "4xx": "#ff7f0e",
    "5xx": "#d62728",
    "6xx": "#9467bd",
}
