"""Render stage: Analysis -> reports (text, HTML, JSON, CSV, Markdown) and figures.

:data:`RENDERERS` is the registry the CLI's ``--report`` choices come from (datasette's
output-renderer pattern), so the help text cannot drift from what exists. Every renderer
only formats what the analysis computed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sipstats.render.options import RenderOptions

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

__all__ = [
    "CALL_RENDERERS",
    "DIFF_RENDERERS",
    "RENDERERS",
    "RenderOptions",
    "Renderer",
    "format_of",
    "load_renderers",
    "write_report",
]


class Renderer(NamedTuple):
    """One report format: a document renderer, or a writer of a directory of files."""

    suffix: str
    """File suffix of the document, or '' for a format that writes a directory (CSV)."""
    render: Callable[[Analysis, RenderOptions], str] | None
    """Analysis -> the whole document as text; None for directory formats."""
    write_dir: Callable[[Analysis, Path, RenderOptions], list[Path]] | None = None
    """Analysis + directory -> the files written; only for directory formats."""
    draws: bool = False
    """Whether it draws figures (matplotlib, whose import :func:`load_renderers` does too)."""

    @property
    def is_directory(self) -> bool:
        return self.render is None


class _OnUse:
    """``sipstats.render.<module>.<name>``, imported when first called: a JSON report never
    loads Jinja2 or rich, and a command's ``--help`` no renderer."""

    def __init__(self, module: str, name: str) -> None:
        self.module = f"sipstats.render.{module}"
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.__name__)(*args)


RENDERERS: Final[dict[str, Renderer]] = {
    "text": Renderer(".txt", _OnUse("text", "render_text")),
    "html": Renderer(".html", _OnUse("html", "render_html"), draws=True),
    "json": Renderer(".json", _OnUse("jsonout", "render_json")),
    "csv": Renderer("", None, _OnUse("csvout", "write_csv")),
    "md": Renderer(".md", _OnUse("markdown", "render_markdown")),
}

#: ``sipstats calls --report`` format -> renderer of the call list (a DataFrame -> text).
CALL_RENDERERS: Final[dict[str, Callable[..., str]]] = {
    "text": _OnUse("calllist", "calls_text"),
    "csv": _OnUse("calllist", "calls_csv"),
    "json": _OnUse("calllist", "calls_json"),
}

#: ``sipstats diff --report`` format -> renderer of a diff (two sides and their rows -> text).
DIFF_RENDERERS: Final[dict[str, Callable[..., str]]] = {
    "text": _OnUse("diffout", "diff_text"),
    "json": _OnUse("diffout", "diff_json"),
    "html": _OnUse("diffout", "diff_html"),
}


def load_renderers(formats: Iterable[str]) -> None:
    """Import what writing ``formats`` will use, figures included: the command line does it
    while the capture is read in another thread, instead of once the analysis is done."""
    for fmt in formats:
        renderer = RENDERERS[fmt]
        used = renderer.render or renderer.write_dir
        if isinstance(used, _OnUse):
            importlib.import_module(used.module)
        if renderer.draws:
            importlib.import_module("sipstats.render.plots")


def format_of(path: str) -> str | None:
    """The document format a file name's suffix names (``x.html`` -> ``html``), else None."""
    lowered = path.lower()
    for name, renderer in RENDERERS.items():
        if renderer.suffix and lowered.endswith(renderer.suffix):
            return name
    return None


def write_report(
    analysis: Analysis, fmt: str, path: Path, options: RenderOptions | None = None
) -> list[Path]:
    """Render ``analysis`` as ``fmt`` into ``path`` (a file, or a directory for CSV)."""
    renderer = RENDERERS[fmt]
    options = options or RenderOptions()
    if renderer.write_dir is not None:
        return renderer.write_dir(analysis, path, options)
    assert renderer.render is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(renderer.render(analysis, options), encoding="utf-8")
    return [path]
