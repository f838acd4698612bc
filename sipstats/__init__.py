"""sipstats: SIP response, call and Retry-After statistics from packet captures.

The library API, in the order data flows::

    capture = sipstats.read_capture("outage.pcap")     # decode: Capture(.messages, .inputs)
    analysis = sipstats.analyze(capture)               # DataFrames + RFC 6076 metrics
    analysis.to_dict()                                 # the stable JSON form
    sipstats.lookup(486)                               # the status-code catalogue
    sipstats.ingest("captures/", "dataset/")           # decode once into Parquet (pyarrow)
    sipstats.read_dataset("dataset/")                  # ... and read it back as a Capture

Every error sipstats raises derives from :class:`SipstatsError`.
"""

from __future__ import annotations

from sipstats.analyze import Analysis, analyze
from sipstats.catalogue import CodeInfo, catalogue, classify, lookup
from sipstats.dataset import DatasetError, ingest, read_dataset
from sipstats.errors import CaptureError, CatalogueError, SipParseError, SipstatsError
from sipstats.messages import Capture, read_capture

__all__ = [
    "Analysis",
    "Capture",
    "CaptureError",
    "CatalogueError",
    "CodeInfo",
    "DatasetError",
    "SipParseError",
    "SipstatsError",
    "analyze",
    "catalogue",
    "classify",
    "ingest",
    "lookup",
    "read_capture",
    "read_dataset",
]
