"""Render stage: Analysis -> reports (text, HTML, JSON, CSV, Markdown) and figures.

:data:`RENDERERS` is the registry the CLI's ``--report`` choices come from (datasette's
output-renderer pattern), so the help text cannot drift from what exists. Every renderer
only formats what the analysis computed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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

    @property
    def is_directory(self) -> bool:
        return self.render is None


def _on_use(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called: a JSON report never loads Jinja2 or rich,
    and a command's ``--help`` no renderer."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"sipstats.render.{module}"), name)(*args)

    call.__name__ = call.__qualname__ = name
    return call


RENDERERS: Final[dict[str, Renderer]] = {
    "text": Renderer(".txt", _on_use("text", "render_text")),
    "html": Renderer(".html", _on_use("html", "render_html")),
    "json": Renderer(".json", _on_use("jsonout", "render_json")),
    "csv": Renderer("", None, _on_use("csvout", "write_csv")),
    "md": Renderer(".md", _on_use("markdown", "render_markdown")),
}

#: ``sipstats calls --report`` format -> renderer of the call list (a DataFrame -> text).
CALL_RENDERERS: Final[dict[str, Callable[..., str]]] = {
    "text": _on_use("calllist", "calls_text"),
    "csv": _on_use("calllist", "calls_csv"),
    "json": _on_use("calllist", "calls_json"),
}

#: ``sipstats diff --report`` format -> renderer of a diff (two sides and their rows -> text).
DIFF_RENDERERS: Final[dict[str, Callable[..., str]]] = {
    "text": _on_use("diffout", "diff_text"),
    "json": _on_use("diffout", "diff_json"),
    "html": _on_use("diffout", "diff_html"),
}


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
