"""Types of the optional C extension (sipstats/_sipscan.c), the twin of sip._parse_common."""

from sipstats.sip import SipMessage

def set_message_type(cls: type[SipMessage], /) -> None: ...
def parse(data: bytes, delimited: bool, /) -> SipMessage | None: ...

class Columns:
    """The messages table under construction, in C (see sipstats.messages.MessageTable)."""

    def __init__(self, layout: tuple[tuple[str, str, int, int], ...], /) -> None: ...
    def __len__(self) -> int: ...
    def scan(
        self,
        payloads: list[tuple[object, ...]],
        start: int,
        data_at: int,
        encap_at: int,
        truncated_at: int,
        delimiting: str,
        /,
    ) -> int: ...
    def add(self, payload: tuple[object, ...], message: SipMessage, /) -> None: ...
    def export(self) -> dict[str, bytes | tuple[bytes, list[str]]]: ...
