"""What a renderer may be told besides the analysis: language and how many rows to rank."""

from __future__ import annotations

from dataclasses import dataclass

from sipstats.render.labels import Lang


@dataclass(frozen=True)
class RenderOptions:
    """Presentation choices shared by every renderer (``--lang``, ``--top``)."""

    lang: Lang = "en"
    top: int = 10
    """Rows kept in ranked tables (failing peers, early retriers, storms)."""
