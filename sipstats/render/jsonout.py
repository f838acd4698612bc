"""Analysis -> JSON: ``Analysis.to_dict()`` (schema ``sipstats.report/1``) as strict JSON."""

from __future__ import annotations

import json
from itertools import islice
from typing import TYPE_CHECKING, Final

from sipstats.render.options import RenderOptions

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Pieces of the encoder's output joined at a time. ``json.dumps`` with an indent keeps every
#: piece in a list until it joins them: a few hundred thousand small strings for a large
#: capture's report, 30 MiB more than the text itself on the 1M-packet benchmark capture.
JOINED_AT_ONCE: Final = 16384


def render_json(analysis: Analysis, options: RenderOptions) -> str:
    """Indented UTF-8 JSON; NaN is refused (the analysis writes ``null`` for undefined values).

    The JSON form is language-neutral: ``options`` do not change it.
    """
    del options
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=2)
    pieces = encoder.iterencode(analysis.to_dict())  # what json.dumps joins, one by one
    joined = []
    while batch := list(islice(pieces, JOINED_AT_ONCE)):
        joined.append("".join(batch))
    joined.append("\n")
    return "".join(joined)
