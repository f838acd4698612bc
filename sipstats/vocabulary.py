"""Fixed vocabularies: the names the command line offers as choices and the tables use as
categories. Free of pandas, so that a command's ``--help`` and its option checks load none."""

from __future__ import annotations

from typing import Final, Literal

#: RFC 3261 §7.2: the first digit of a status code is its class.
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx")

#: Call outcomes, in the order reports list them.
OUTCOMES: Final = (
    "answered",
    "busy",
    "unavailable",
    "declined",
    "cancelled",
    "not_found",
    "redirected",
    "auth_failed",
    "rejected",
    "server_failure",
    "no_final_response",
    "in_progress",
)

#: ``--correlation-header`` choices -> messages column; "auto" takes the first one present.
CORRELATION_COLUMNS: Final = {
    "X-CID": "x_cid",
    "X-Call-ID": "x_call_id",
    "P-Charging-Vector": "charging_vector",
}
Correlation = Literal["auto", "X-CID", "X-Call-ID", "P-Charging-Vector", "none"]
CORRELATIONS: Final = ("auto", *CORRELATION_COLUMNS, "none")
