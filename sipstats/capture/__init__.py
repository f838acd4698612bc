"""Decode stage: capture files (pcap, pcapng, compressed) -> candidate SIP payloads.

``iter_payloads`` is the entry point; the modules below it each take one layer:
``source`` (file, compression) → ``pcap`` / ``pcapng`` (records) → ``decode`` (link layers,
IP, tunnels, UDP, SCTP; with ``defrag``, ``hep``, ``fallback``) → ``tcp`` (streams).
"""

from sipstats.capture.reader import iter_payloads, looks_like_sip, record_boundaries
from sipstats.capture.records import Payload
from sipstats.capture.summary import Anomaly, InputSummary

__all__ = [
    "Anomaly",
    "InputSummary",
    "Payload",
    "iter_payloads",
    "looks_like_sip",
    "record_boundaries",
]
