"""Decode stage: names of link types, ethertypes and IP protocol numbers.

Kept apart from the decoder so that readers can name the link types in a file without it.
"""

from __future__ import annotations

#: tcpdump.org LINKTYPE_ values the decoder reads by name.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
#: The values some systems wrote for raw IP before LINKTYPE_RAW (DLT_RAW on BSD, OpenBSD).
LINKTYPE_RAW_LEGACY = (12, 14)
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

#: Ethertypes the decoder follows (IEEE registry); VLAN tags are :data:`VLAN_TPIDS`.
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_PPPOE_SESSION = 0x8864
ETHERTYPE_MPLS = (0x8847, 0x8848)  # unicast, multicast
ETHERTYPE_PPP = 0x880B
#: Transparent Ethernet bridging: an Ethernet frame inside GRE.
ETHERTYPE_TEB = 0x6558
#: ERSPAN types I/II and III as GRE protocol types.
ETHERTYPE_ERSPAN = 0x88BE
ETHERTYPE_ERSPAN_III = 0x22EB

#: IP protocol numbers (IANA "Assigned Internet Protocol Numbers") the decoder follows.
IPPROTO_ICMP = 1
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_IPV6_FRAGMENT = 44
IPPROTO_GRE = 47
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

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
