"""Analysis -> JSON: ``Analysis.to_dict()`` (schema ``sipstats.report/1``) as strict JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sipstats.render.options import RenderOptions

if TYPE_CHECKING:
    from sipstats.analyze import Analysis


def render_json(analysis: Analysis, options: RenderOptions) -> str:
    """Indented UTF-8 JSON; NaN is refused (the analysis writes ``null`` for undefined values).

    The JSON form is language-neutral: ``options`` do not change it.
    """
    del options
    return json.dumps(analysis.to_dict(), ensure_ascii=False, allow_nan=False, indent=2) + "\n"
