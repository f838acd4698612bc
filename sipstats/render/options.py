"""What a renderer may be told besides the analysis: language, how many rows to rank, and how
many processes it may use."""

from __future__ import annotations

from dataclasses import dataclass

from sipstats.render.labels import Lang


@dataclass(frozen=True)
class RenderOptions:
    """Presentation choices shared by every renderer (``--lang``, ``--top``), and ``--jobs``."""

    lang: Lang = "en"
    top: int = 10
    """Rows kept in ranked tables (failing peers, early retriers, storms)."""
    jobs: int = 1
    """Processes a renderer may use at once (HTML draws its figures in a second one)."""
