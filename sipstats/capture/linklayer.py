"""Decode stage: names of link types and ethertypes (the tcpdump LINKTYPE_ registry).

Kept apart from the decoder so that readers can name the link types in a file without it.
"""

from __future__ import annotations

#: The link types the fast path decodes, by their tcpdump.org LINKTYPE_ names.
LINK_TYPES = {
    0: "NULL",
    1: "EN10MB",
    9: "PPP",
    12: "RAW",
    14: "RAW",
    50: "PPP_HDLC",
    101: "RAW",
    108: "LOOP",
    113: "LINUX_SLL",
    228: "IPV4",
    229: "IPV6",
    276: "LINUX_SLL2",
}

#: Tag protocol identifiers of 802.1Q, 802.1ad (QinQ) and the older QinQ values.
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
#: Ethertypes that are known not to carry IP: counted by name, not as damage.
NON_IP_ETHERTYPES = {
    0x0806: "arp",
    0x8035: "rarp",
    0x809B: "appletalk",
    0x8137: "ipx",
    0x8808: "ethernet flow control",
    0x8809: "slow protocols",
    0x8863: "pppoe discovery",
    0x888E: "eapol",
    0x8892: "profinet",
    0x88CC: "lldp",
    0x88E1: "homeplug",
    0x88E5: "macsec",
    0x88F7: "ptp",
    0x8899: "realtek",
    0x893A: "ieee 1905",
    0x9000: "loopback",
    0x22F0: "avtp",
}


def link_name(linktype: int) -> str:
    """The LINKTYPE_ name of ``linktype`` without its prefix ('LINKTYPE 147' when unknown)."""
    return LINK_TYPES.get(linktype, f"LINKTYPE {linktype}")
