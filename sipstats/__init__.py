"""sipstats: SIP response, call and Retry-After statistics from packet captures.

The library API, in the order data flows::

    capture = sipstats.read_capture("outage.pcap")     # decode: Capture(.messages, .inputs)
    analysis = sipstats.analyze(capture)               # DataFrames + RFC 6076 metrics
    analysis.to_dict()                                 # the stable JSON form
    sipstats.lookup(486)                               # the status-code catalogue
    calls = sipstats.select_calls(analysis, codes=[503])   # drill down: the calls behind it
    analysis.flow(calls["call_id"].iloc[0])            # their ladder (SVG in Jupyter)
    sipstats.extract_calls(analysis, calls, Path("503.pcap"))  # their original packets
    sipstats.ingest("captures/", "dataset/")           # decode once into Parquet (pyarrow)
    sipstats.read_dataset("dataset/")                  # ... and read it back as a Capture

Every error sipstats raises derives from :class:`SipstatsError`.
"""

from __future__ import annotations

from sipstats.analyze import Analysis, analyze
from sipstats.catalogue import CodeInfo, catalogue, classify, lookup
from sipstats.dataset import DatasetError, ingest, read_dataset
from sipstats.drill.calls import call_list, select_calls
from sipstats.drill.extract import extract_calls
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
    "call_list",
    "catalogue",
    "classify",
    "extract_calls",
    "ingest",
    "lookup",
    "read_capture",
    "read_dataset",
    "select_calls",
]
