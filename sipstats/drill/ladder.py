"""Drill-down: Flow -> SVG ladder diagram: hosts as vertical lines, messages as labelled arrows.

Hand-written SVG (no matplotlib): it is small, deterministic and text stays selectable. Every
host and label comes from a capture and is XML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

from sipstats.textsafe import visible

if TYPE_CHECKING:
    from sipstats.drill.flow import Flow

_LANE: Final = 190
_ROW: Final = 22
_LEFT: Final = 80
_TOP: Final = 44
_COLOURS: Final = {
    "1": "#6b7280",
    "2": "#15803d",
    "3": "#1d4ed8",
    "4": "#b45309",
    "5": "#b91c1c",
    "6": "#7e22ce",
}


def _colour(label: str) -> str:
    return _COLOURS.get(label[:1], "#111827") if label[:1].isdigit() else "#111827"


def ladder_svg(flow: Flow) -> str:
    """The ladder as a standalone ``<svg>`` element."""
    width = _LEFT + _LANE * max(1, len(flow.hosts) - 1) + 100
    height = _TOP + _ROW * (len(flow.arrows) + 1) + (_ROW if flow.omitted else 0)
    x = [_LEFT + 50 + index * _LANE for index in range(len(flow.hosts))]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        'font-size="11">',
        '<defs><marker id="ladder-head" markerWidth="8" markerHeight="8" refX="8" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#374151"/></marker></defs>',
    ]
    for position, host in zip(x, flow.hosts, strict=True):
        parts.append(
            f'<text x="{position}" y="16" text-anchor="middle" font-weight="bold">'
            f"{_shown(host)}</text>"
            f'<line x1="{position}" y1="24" x2="{position}" y2="{height - 6}" '
            'stroke="#9ca3af" stroke-dasharray="3,3"/>'
        )
    for row, arrow in enumerate(flow.arrows):
        y = _TOP + row * _ROW
        a, b = x[arrow.src], x[arrow.dst]
        colour = _colour(arrow.label)
        label = arrow.label + (" (SDP)" if arrow.sdp else "")
        dash = ' stroke-dasharray="5,3"' if arrow.retransmission else ""
        title = f"{arrow.file} frame {arrow.frame}" + (
            " (retransmission)" if arrow.retransmission else ""
        )
        parts.append(f"<g><title>{_shown(title)}</title>")
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 4}" text-anchor="end" fill="#6b7280">'
            f"{arrow.offset_ms / 1000.0:+.3f}</text>"
        )
        if a == b:
            parts.append(
                f'<path d="M{a},{y - 5} h30 v10 h-28" fill="none" stroke="{colour}"{dash} '
                'marker-end="url(#ladder-head)"/>'
                f'<text x="{a + 36}" y="{y + 4}" fill="{colour}">{_shown(label)}</text>'
            )
        else:
            parts.append(
                f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" stroke-width="1.5"'
                f'{dash} marker-end="url(#ladder-head)"/>'
                f'<text x="{(a + b) / 2:.0f}" y="{y - 4}" text-anchor="middle" fill="{colour}">'
                f"{_shown(label)}{' ↻' if arrow.retransmission else ''}</text>"
            )
        parts.append("</g>")
    if flow.omitted:
        parts.append(
            f'<text x="{_LEFT}" y="{height - 8}">… {flow.omitted} more messages not drawn</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _shown(text: str) -> str:
    """Capture text in the SVG: control characters spelled out (XML holds none of them, and a
    terminal that shows the file must not run an escape) and markup escaped."""
    return escape(visible(text))
