"""Types of the optional C extension (sipstats/_sipscan.c), the twin of sip._parse_common."""

from sipstats.sip import SipMessage

def set_message_type(cls: type[SipMessage], /) -> None: ...
def parse(data: bytes, delimited: bool, /) -> SipMessage | None: ...
def parse_batch(
    payloads: list[tuple[object, ...]],
    data_at: int,
    encap_at: int,
    truncated_at: int,
    delimiting: str,
    /,
) -> list[SipMessage | None]: ...
