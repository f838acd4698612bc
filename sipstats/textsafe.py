"""Text from a capture made safe to show: control characters spelled out, and the lone
surrogates of a file name that is not UTF-8.

Shared by every stage that puts capture text in front of a person (renderers, the ladder),
so that no terminal escape sequence from a packet reaches a terminal, and every stage that
stores or writes a file name as UTF-8 (the messages' file column, the reports).
"""

from __future__ import annotations

import re
from typing import Final

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_NAMED: Final = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def visible(value: str) -> str:
    """``value`` with control characters spelled out (``\\r\\n``), for damaged bytes."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0], f"\\x{ord(m[0]):02x}"), value)


def spelled_out(value: str) -> str:
    """``value`` with its lone surrogates spelled out (``\\udce9``): a file name that is not
    UTF-8 reaches us with one per undecodable byte (``os.fsdecode``), which no UTF-8 text,
    Arrow string or report file can hold."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
