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

if TYPE_CHECKING:  # "X as X": re-exported (the names are in __all__ only at run time)
    from sipstats.analyze import Analysis as Analysis
    from sipstats.analyze import analyze as analyze
    from sipstats.catalogue import CodeInfo as CodeInfo
    from sipstats.catalogue import catalogue as catalogue
    from sipstats.catalogue import classify as classify
    from sipstats.catalogue import lookup as lookup
    from sipstats.dataset import DatasetError as DatasetError
    from sipstats.dataset import ingest as ingest
    from sipstats.dataset import read_dataset as read_dataset
    from sipstats.drill.calls import call_list as call_list
    from sipstats.drill.calls import select_calls as select_calls
    from sipstats.drill.extract import extract_calls as extract_calls
    from sipstats.errors import CaptureError as CaptureError
    from sipstats.errors import CatalogueError as CatalogueError
    from sipstats.errors import SipParseError as SipParseError
    from sipstats.errors import SipstatsError as SipstatsError
    from sipstats.messages import Capture as Capture
    from sipstats.messages import read_capture as read_capture

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

__all__ = sorted(_API)


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
