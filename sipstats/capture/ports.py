"""SIP port numbers: the defaults, and the one range check every option and address uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sipstats.errors import OptionError

#: Ports on which a payload is taken for SIP (and a non-SIP payload counted) without asking.
DEFAULT_SIP_PORTS: Final = frozenset({5060, 5061})


def port_number(value: int | str) -> int:
    """``value`` as a port number 1-65535, or :class:`OptionError` naming it."""
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise OptionError(f"not a port number: {text!r}")
    return int(text)


def parse_ports(text: str) -> tuple[int, ...]:
    """``"5060,5080"`` -> ``(5060, 5080)`` (the ``--ports`` syntax)."""
    return tuple(port_number(item) for item in text.split(","))


def port_filter(ports: Iterable[int | str] | None) -> frozenset[int] | None:
    """Checked ports to restrict decoding to; None (any port) stays None, an empty set is refused.

    An empty selection would silently decode nothing, so it is an error, not a filter.
    """
    if ports is None:
        return None
    checked = frozenset(port_number(port) for port in ports)
    if not checked:
        raise OptionError("no ports given (None means SIP on any port)")
    return checked


def sip_ports(ports: frozenset[int] | None) -> frozenset[int]:
    """The ports SIP is expected on: the chosen ones, else :data:`DEFAULT_SIP_PORTS`."""
    return DEFAULT_SIP_PORTS if ports is None else ports
