"""Text from a capture made safe to show: control characters spelled out.

Shared by every stage that puts capture text in front of a person (renderers, the ladder),
so that no terminal escape sequence from a packet reaches a terminal.
"""

from __future__ import annotations

import re
from typing import Final

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_NAMED: Final = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def visible(value: str) -> str:
    """``value`` with control characters spelled out (``\\r\\n``), for damaged bytes."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0], f"\\x{ord(m[0]):02x}"), value)
