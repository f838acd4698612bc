"""Decode stage: link types the fast path does not know -> IP bytes, through scapy's dissectors.

Only the rare packets of an unfamiliar link type come here, so the cost of building a scapy
packet is acceptable; the result is plain bytes, and scapy objects never leave this module.
"""

from __future__ import annotations

from typing import Any


def link_type_name(linktype: int) -> str:
    """scapy's name of a link type ('LINKTYPE 147' when scapy has none)."""
    cls = _dissector(linktype)
    return f"LINKTYPE {linktype}" if cls is None else f"{cls.__name__} ({linktype})"


def _dissector(linktype: int) -> Any:
    # scapy registers a link type when the layer module that dissects it is imported.
    import scapy.layers.all  # noqa: F401
    from scapy.config import conf

    return conf.l2types.get(linktype)


def network_layer(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """Dissect ``frame`` with scapy; (4 or 6, IP packet bytes), or None without an IP layer.

    Raises ``LookupError`` when scapy knows no dissector for ``linktype``.
    """
    cls = _dissector(linktype)
    if cls is None:
        raise LookupError(linktype)
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    try:
        pkt = cls(frame)
    except Exception:  # scapy raises anything on hostile bytes; the caller counts it
        return None
    for version, layer in ((4, IP), (6, IPv6)):
        if pkt.haslayer(layer):
            return version, bytes(pkt[layer])
    return None
