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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sipstats.analyze import Analysis, analyze
    from sipstats.catalogue import CodeInfo, catalogue, classify, lookup
    from sipstats.dataset import DatasetError, ingest, read_dataset
    from sipstats.drill.calls import call_list, select_calls
    from sipstats.drill.extract import extract_calls
    from sipstats.errors import CaptureError, CatalogueError, SipParseError, SipstatsError
    from sipstats.messages import Capture, read_capture

#: Each name of the API -> the module that defines it. Imported on first use (PEP 562), so
#: ``sipstats --help`` and the decoding a report starts with do not wait for pandas.
_API: Final = {
    "Analysis": "sipstats.analyze",
    "analyze": "sipstats.analyze",
    "CodeInfo": "sipstats.catalogue",
    "catalogue": "sipstats.catalogue",
    "classify": "sipstats.catalogue",
    "lookup": "sipstats.catalogue",
    "DatasetError": "sipstats.dataset",
    "ingest": "sipstats.dataset",
    "read_dataset": "sipstats.dataset",
    "call_list": "sipstats.drill.calls",
    "select_calls": "sipstats.drill.calls",
    "extract_calls": "sipstats.drill.extract",
    "CaptureError": "sipstats.errors",
    "CatalogueError": "sipstats.errors",
    "SipParseError": "sipstats.errors",
    "SipstatsError": "sipstats.errors",
    "Capture": "sipstats.messages",
    "read_capture": "sipstats.messages",
}

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


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'sipstats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


class _Api(types.ModuleType):
    """The package keeps ``sipstats.analyze`` and ``sipstats.catalogue`` naming the functions
    of the API: importing the submodules of those names would otherwise set the package's
    attributes to the modules (which stay in ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _API:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Api
