"""Every table's columns and dtypes, declared once; :func:`conform` enforces them.

Stages hand each other plain pandas DataFrames. Their columns live here so that the decoder,
the analysis, the renderers, the README and the tests all agree on one definition.
Empty input gives an empty frame with the full schema, never ``None``.

Conventions: timestamps are ``datetime64[ns, UTC]``; durations are float milliseconds
(``*_ms``) or seconds (``*_s``); nullable integers use pandas' ``Int64``/``Int16``, and the
messages' header numbers (:data:`HEADER_NUMBERS`: CSeq, Expires, ...) ``UInt32``: a CSeq
above 2**32 - 1 (:data:`sipstats.capture.framing.MAX_NUMBER`) makes the message malformed;
an Expires, Min-Expires or Retry-After above it is clamped to it (``sip._clamped``), as are a
HEP message's Content-Length and a dataset's stored values when read; any other message with
such a Content-Length is malformed (no body that long follows), so 4 bytes hold every one;
low- and high-cardinality strings alike are ``category`` (a message table stays compact:
each distinct Call-ID or tag is stored once). Group categoricals with ``observed=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from sipstats.vocabulary import OUTCOMES as OUTCOMES
from sipstats.vocabulary import STATUS_CLASSES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# pandas is imported by the functions that build frames: decoding reads the column tables
# here and can start before pandas has loaded.

#: Column name -> (dtype, one-line meaning). The order is the column order.
Schema = Mapping[str, tuple[str, str]]

UTC_TS: Final = "datetime64[ns, UTC]"

#: Identifier of the JSON report (:func:`sipstats.render.document.report_document`); a report
#: read back (``sipstats diff``) must carry it. Bump the suffix on an incompatible change.
REPORT_ID: Final = "sipstats.report/1"

MESSAGES: Final[Schema] = {
    "ts": (UTC_TS, "capture time of the (first) packet that carried the message"),
    "file": ("category", "capture file the message came from"),
    "frame": ("int64", "1-based record number of that packet in its file"),
    "src": ("category", "source IP address (inner address for HEP)"),
    "sport": ("int32", "source port"),
    "dst": ("category", "destination IP address"),
    "dport": ("int32", "destination port"),
    "transport": ("category", "udp, tcp, sctp or ws"),
    "encap": ("category", "encapsulation the message was unwrapped from: '' or 'hep'"),
    "is_request": ("bool", "True for a request, False for a response"),
    "method": ("category", "request method (requests only)"),
    "status": ("Int16", "status code (responses only)"),
    "reason": ("category", "reason phrase as sent (responses only)"),
    "call_id": ("category", "Call-ID header"),
    "cseq": ("UInt32", "CSeq sequence number"),
    "cseq_method": ("category", "CSeq method"),
    "branch": ("category", "branch parameter of the top Via"),
    "via_count": ("int16", "number of Via entries"),
    "from_tag": ("category", "tag parameter of From"),
    "to_tag": ("category", "tag parameter of To"),
    "from_uri": ("category", "URI of From"),
    "to_uri": ("category", "URI of To"),
    "request_uri": ("category", "Request-URI (requests only)"),
    "user_agent": ("category", "User-Agent header"),
    "server": ("category", "Server header"),
    "retry_after": (
        "UInt32",
        "Retry-After delta-seconds (RFC 3261 §20.33); NA if absent/malformed",
    ),
    "retry_after_raw": ("category", "Retry-After header text as sent"),
    "expires": ("UInt32", "Expires header, seconds"),
    "min_expires": ("UInt32", "Min-Expires header, seconds"),
    "has_auth": ("bool", "request carries Authorization or Proxy-Authorization"),
    "content_length": ("UInt32", "Content-Length header (NA if absent)"),
    "size": ("int32", "bytes of the whole SIP message"),
    "fragmented": ("bool", "reassembled from IP fragments"),
    "segments": ("int16", "TCP segments the message spanned (1 for UDP)"),
    "reason_protocol": ("category", "Reason header (RFC 3326) protocol: SIP, Q.850, ..."),
    "reason_cause": ("Int16", "Reason cause (a Q.850 cause or a SIP code); Q.850 preferred"),
    "reason_text": ("category", "Reason text parameter"),
    "sdp_address": ("category", "SDP body: connection address of the first media"),
    "sdp_port": ("Int32", "SDP body: port of the first m= line (NA without SDP)"),
    "sdp_codecs": ("category", "SDP body: codecs of the first m= line, in offer order"),
    "x_cid": ("category", "X-CID header as sent (B2BUA correlation id)"),
    "x_call_id": ("category", "X-Call-ID header as sent (B2BUA correlation id)"),
    "charging_vector": ("category", "P-Charging-Vector header as sent (RFC 7315: icid-value)"),
    "duplicate": ("bool", "a capture duplicate kept by keep_duplicates (the analysis skips it)"),
}

#: The messages' header numbers (CSeq, Expires, ...): UInt32, 5 bytes a row with the NA mask
#: where Int64 took 9. Every UInt32 column is one, clamped as the parser clamps when a dataset
#: is read (``dataset._messages_of``): a count that may pass 2**32 - 1 takes another dtype.
HEADER_NUMBERS: Final = tuple(name for name, (dtype, _) in MESSAGES.items() if dtype == "UInt32")

#: Reasons a payload is counted as malformed instead of becoming a row.
MALFORMED_REASONS: Final = (
    "bad start line",
    "missing mandatory header",
    "bad header line",
    "bad Content-Length",
    "body shorter than Content-Length",
    "truncated by snaplen",
    "not SIP on a SIP port",
    # Counted, but the message stays a row with retry_after NA (RFC 3261 §20.33 syntax not met).
    "bad Retry-After",
)

TRANSACTIONS: Final[Schema] = {
    "transaction": ("int64", "transaction id (row number of this table)"),
    "key": ("category", "RFC 3261 §17 key: branch + CSeq method, or the RFC 2543 fallback"),
    "call_id": ("category", "Call-ID"),
    "method": (
        "category",
        "request method; ACK only for the ACK to a 2xx (an ACK to a non-2xx is in its INVITE's)",
    ),
    "cseq": ("Int64", "CSeq number"),
    "client": ("category", "address:port that sent the request"),
    "server": ("category", "address:port the request went to"),
    "request_ts": (UTC_TS, "first copy of the request"),
    "first_provisional_ts": (UTC_TS, "first 1xx"),
    "first_provisional_status": ("Int16", "its code"),
    "final_ts": (UTC_TS, "first copy of the first final response"),
    "final_status": ("Int16", "first final response code"),
    "provisional_ms": ("float64", "request -> first 1xx, ms"),
    "final_ms": ("float64", "request -> first final, ms"),
    "requests": ("int32", "request copies seen (1 + retransmissions)"),
    "responses": ("int32", "response packets seen"),
    "retransmissions": ("int32", "request and response retransmissions"),
    "has_final": ("bool", "a final response was seen"),
    "acks": ("int32", "ACK copies inside the transaction (ACK to a non-2xx, RFC 3261 §17.1.1.3)"),
}


CALLS: Final[Schema] = {
    "call": ("int64", "call id (row number of this table)"),
    "call_id": ("category", "Call-ID"),
    "from_tag": ("category", "caller's From tag"),
    "caller": ("category", "From URI"),
    "callee": ("category", "To URI"),
    "request_uri": ("category", "Request-URI of the first INVITE"),
    "src": ("category", "address:port of the caller side (first INVITE's source)"),
    "dst": ("category", "address:port the first INVITE went to"),
    "start_ts": (UTC_TS, "first INVITE"),
    "ringing_ts": (UTC_TS, "first 180/181/182/183"),
    "answer_ts": (UTC_TS, "first 2xx to an INVITE"),
    "final_ts": (UTC_TS, "final response that decided the outcome"),
    "end_ts": (UTC_TS, "first BYE after the answer (or in the dialog when the 2xx is missing)"),
    "pdd_ms": ("float64", "post-dial delay: first INVITE -> first 18x (or 2xx without 18x), ms"),
    "answer_ms": ("float64", "first INVITE -> 2xx, ms"),
    "duration_s": ("float64", "2xx -> BYE, seconds"),
    "final_status": ("Int16", "final response to the last INVITE transaction"),
    "final_reason": ("category", "its reason phrase as sent"),
    "outcome": ("category", "one of OUTCOMES"),
    "invites": ("int16", "INVITE transactions folded into this call (auth retries, re-INVITEs)"),
    "auth_challenges": ("int16", "401/407 challenges seen"),
    "to_tags": ("int16", "distinct To tags on responses (forking > 1)"),
    "cancelled": ("bool", "caller sent CANCEL"),
    "has_bye": ("bool", "a BYE was seen"),
    "answer_missing": (
        "bool",
        "answered (a BYE in the confirmed dialog proves it) but no 2xx in the capture",
    ),
    "bye_status": ("Int16", "final response to the first BYE after the answer (NA: none seen)"),
    "correlation_id": ("category", "B2BUA correlation id of the first INVITE (X-CID, ...)"),
    "linked_to": ("Int64", "B2BUA: call (the caller's leg) this call is another leg of; NA on it"),
    "e2e_outcome": ("category", "outcome of the end-to-end call as its caller saw it (A leg)"),
    "offered_codecs": ("category", "codecs of the first INVITE's SDP offer"),
    "offer_media": ("category", "address:port the offer asked media to be sent to"),
    "answered_codecs": ("category", "codecs of the first SDP answer (18x or 2xx)"),
    "answer_media": ("category", "address:port of the answer"),
    "early_media": ("bool", "a 183 carried SDP (early media, RFC 3960)"),
    "cause_protocol": ("category", "Reason protocol of the call's end (RFC 3326): Q.850, SIP"),
    "cause": ("Int16", "Reason cause of the final response, CANCEL or BYE (Q.850 preferred)"),
    "cause_text": ("category", "Reason text"),
    "caller_agent": ("category", "User-Agent of the first INVITE"),
    "responder_agent": ("category", "Server (else User-Agent) of the final response"),
}

#: The messages table after analysis: every MESSAGES column plus transaction, retransmission
#: flag and the catalogue join (NA on requests).
ANALYZED_MESSAGES: Final[Schema] = {
    **MESSAGES,
    "transaction": ("int64", "TRANSACTIONS.transaction the message belongs to"),
    "retransmission": ("bool", "repeats an earlier message of its transaction, same direction"),
    "challenge": ("bool", "401/407 the client answered with credentials (RFC 3261 §22.2)"),
    "client_leg": (
        "bool",
        "request, or response on its client's leg (at a proxy: not the copy on another leg)",
    ),
    "status_class": ("category", "1xx .. 6xx from the catalogue (responses only)"),
    "category": ("category", "catalogue category (responses only)"),
    "registered": ("boolean", "the code is in the IANA registry (responses only)"),
    "catalogue_reason": ("category", "the catalogue's reason phrase for the code"),
    "description": ("category", "the catalogue's description of the code"),
}

#: What the report reads of each message it reads one by one (unique responses, authenticated
#: INVITEs: :func:`sipstats.analyze.tally.report_messages`): ANALYZED_MESSAGES columns.
REPORT_MESSAGES: Final[Schema] = {
    name: ANALYZED_MESSAGES[name]
    for name in (
        *("ts", "file", "frame", "src", "sport", "dst", "dport", "is_request", "method"),
        *("status", "reason", "call_id", "cseq_method", "from_tag", "from_uri", "to_uri"),
        *("retry_after", "retry_after_raw", "has_auth", "transaction", "retransmission"),
        *("challenge", "client_leg", "status_class", "category", "catalogue_reason"),
    )
}

RETRIES: Final[Schema] = {
    "call": ("int64", "failed call (CALLS.call)"),
    "call_id": ("category", "Call-ID of the failed call"),
    "caller": ("category", "caller: From URI reduced to user@host (no scheme, port, params)"),
    "callee": ("category", "target: request-URI (else To URI) reduced to user@host"),
    "src": ("category", "address:port that sent the failed INVITE (CALLS.src)"),
    "dst": ("category", "address:port the failed INVITE went to, which answered (CALLS.dst)"),
    "status": ("Int16", "final failure code"),
    "final_ts": (UTC_TS, "first copy of the failure response"),
    "retry_after": ("Int64", "Retry-After delta-seconds on the failure (NA if none or malformed)"),
    "retry_after_raw": ("category", "Retry-After header text as sent (NA if none)"),
    "retried": ("bool", "the same caller tried the same target again"),
    "retry_call": ("Int64", "CALLS.call of the retry"),
    "retry_call_id": ("category", "Call-ID of the retry"),
    "retry_ts": (UTC_TS, "first INVITE of the retry"),
    "gap_s": ("float64", "retry_ts - final_ts, seconds"),
    "honoured": ("boolean", "gap >= Retry-After; False = too early (NA without retry or value)"),
    "server_retried": ("boolean", "503 only: a later INVITE from that client host to that server"),
    "server_retry_call": ("Int64", "503 only: CALLS.call of that next INVITE"),
    "server_retry_ts": (UTC_TS, "503 only: its first INVITE"),
    "server_gap_s": ("float64", "503 only: server_retry_ts - final_ts, seconds"),
    "server_honoured": ("boolean", "503 only: server gap >= Retry-After (NA without it)"),
}

REGISTRATIONS: Final[Schema] = {
    "registration": (
        "int64",
        "attempt id: REGISTERs of one Call-ID + From tag up to a final other than 401/407/423",
    ),
    "aor": ("category", "address of record (To URI)"),
    "call_id": ("category", "Call-ID"),
    "src": ("category", "registering UA address:port"),
    "dst": ("category", "registrar address:port"),
    "start_ts": (UTC_TS, "first REGISTER"),
    "final_ts": (UTC_TS, "final response of the last REGISTER"),
    "final_status": ("Int16", "final response of the last REGISTER transaction"),
    "requests": ("int16", "REGISTER transactions in the attempt"),
    "challenges": ("int16", "401/407 challenges"),
    "challenge_answered": ("boolean", "a challenged attempt sent credentials (NA: no challenge)"),
    "interval_too_brief": ("int16", "423 responses"),
    "min_expires": ("Int64", "Min-Expires of the last 423"),
    "expires": ("Int64", "Expires the UA asked for"),
    "rrd_ms": ("float64", "RFC 6076 §4.1 RRD, successful attempts only, ms"),
    "outcome": ("category", "registered, failed, challenged_unanswered, no_final_response"),
    "finals": ("str", "final codes of its REGISTER transactions in order, e.g. '423-401-200'"),
}


#: One row per finding of :mod:`sipstats.analyze.findings`, most severe first.
FINDINGS: Final[Schema] = {
    "kind": ("str", "detector: failure_burst, failure_level, retry_storm, ... (module doc)"),
    "start": (UTC_TS, "first event of the finding"),
    "end": (UTC_TS, "last event of the finding"),
    "subject": ("str", "what it is about: a code and responder, a server, a caller"),
    "evidence": ("object", "the numbers behind it (dict; keys per kind, see findings.describe)"),
    "severity": ("str", "high, medium or low"),
    "text": ("str", "one sentence in English (describe(row, 'zh') for Chinese)"),
}


# -- aggregate tables: counts, breakdowns, retries, metrics (``Analysis`` attributes) ------

_COUNTS: Final[Schema] = {
    "count": ("int64", "every packet"),
    "unique": ("int64", "packets with retransmissions left out"),
}
_RETRANSMITTED: Final[Schema] = {
    **_COUNTS,
    "retransmissions": ("int64", "count - unique"),
    "retransmission_ratio": ("float64", "retransmissions / count"),
}
_SHARE: Final = ("float64", "share of unique responses (NaN when there are none)")

BY_METHOD: Final[Schema] = {"method": ("str", "request method"), **_RETRANSMITTED}

BY_CODE: Final[Schema] = {
    "code": ("str", "status code, 3 digits"),
    **_RETRANSMITTED,
    "reason": ("category", "the catalogue's reason phrase"),
    "reasons_sent": ("str", "every reason phrase sent with the code, most frequent first"),
    "status_class": ("category", "1xx .. 6xx"),
    "category": ("category", "catalogue category"),
    "registered": ("boolean", "the code is in the IANA registry"),
    "description": ("category", "the catalogue's description"),
    "reason_zh": ("category", "the reason phrase in Chinese"),
    "description_zh": ("category", "the description in Chinese"),
}

BY_CLASS: Final[Schema] = {
    "status_class": ("str", "1xx .. 6xx, all six"),
    **_COUNTS,
    "share": _SHARE,
}

BY_CATEGORY: Final[Schema] = {"category": ("str", "catalogue category"), **_COUNTS, "share": _SHARE}

CODE_SHARES: Final[Schema] = {
    "code": ("str", "status code, 3 digits"),
    "status_class": ("str", "1xx .. 6xx"),
    **_COUNTS,
    "share": _SHARE,
}

FAILURES_BY_METHOD: Final[Schema] = {
    "method": ("str", "CSeq method of the responses"),
    "responses": ("int64", "unique responses"),
    **{
        cls: ("int64", f"unique {cls} responses")
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx", "6xx")
    },
    "failures": ("int64", "unique 4xx-6xx responses"),
    "failure_share": ("float64", "failures / responses"),
    "challenges": ("int64", "answered 401/407 challenges (left out of every other column)"),
}

BY_PEER: Final[Schema] = {
    "responder": ("str", "address:port that sent the 4xx-6xx"),
    "requester": ("str", "address:port it went to"),
    "failures": ("int64", "unique failures"),
    "share": ("float64", "share of all unique failures"),
    "top_code": ("str", "most frequent code (the lowest on a tie)"),
    "codes": ("str", "codes 'CODExCOUNT|...', most frequent first"),
}

USER_AGENTS: Final[Schema] = {
    "header": ("str", "User-Agent or Server"),
    "value": ("str", "the value as sent"),
    "messages": ("int64", "messages (every packet) carrying it"),
}

RETRY_AFTER: Final[Schema] = {
    "code": ("str", "status code, 3 digits"),
    "responses": ("int64", "unique responses with this code (every method)"),
    "with_retry_after": ("int64", "of those, carrying a Retry-After header"),
    "malformed": ("int64", "of those, Retry-After without delta-seconds (counted, not guessed)"),
    "values": ("str", "Retry-After delta-seconds 'NxCOUNT|...', most frequent first"),
    "failures": ("int64", "failed INVITE attempts that ended with this code"),
    "retried": ("int64", "failures the same caller retried to the same target"),
    "honoured": ("int64", "retried with gap >= Retry-After"),
    "too_early": ("int64", "retried with gap < Retry-After"),
    "without_retry_after_retried": ("int64", "retried although there was no usable Retry-After"),
    "not_retried": ("int64", "failures never retried"),
    "server_retried": ("Int64", "503 only: followed by any INVITE from that client to that server"),
    "server_honoured": ("Int64", "503 only: that next INVITE came at or after Retry-After"),
    "server_too_early": ("Int64", "503 only: that next INVITE came before Retry-After"),
}

RETRIES_BY_RETRY_AFTER: Final[Schema] = {
    "code": ("str", "status code, 3 digits"),
    "retry_after": ("int64", "Retry-After delta-seconds on the failure"),
    "failures": ("int64", "failures with that code and value"),
    "honoured": ("int64", "retried at or after Retry-After"),
    "too_early": ("int64", "retried before Retry-After"),
    "not_retried": ("int64", "never retried"),
}

RETRY_GAPS: Final[Schema] = {
    "verdict": ("str", "honoured, too_early or without_retry_after"),
    "retries": ("int64", "retries with that verdict"),
    **{
        f"{stat}_s": ("float64", f"{stat} gap to the retry, s")
        for stat in ("min", "median", "mean", "p90", "p95", "max")
    },
    **{
        f"{stat}_ratio": ("float64", f"{stat} gap / Retry-After")
        for stat in ("min", "median", "max")
    },
}

EARLY_RETRIERS: Final[Schema] = {
    "caller": ("str", "caller (user@host)"),
    "retries_too_early": ("int64", "retries before Retry-After"),
    "retries": ("int64", "all its retries"),
    "worst_gap_s": ("float64", "its shortest gap of a too-early retry, s"),
}

STORMS: Final[Schema] = {
    "start_ts": (UTC_TS, "first pressing retry of the storm"),
    "end_ts": (UTC_TS, "last pressing retry of the storm"),
    "target": ("str", "server address:port the retries went to"),
    "retries": ("int64", "pressing retries in the storm"),
    "early_retries": ("int64", "of those, retries before Retry-After"),
    "callers": ("int64", "distinct callers among them"),
}

METRICS: Final[Schema] = {
    "name": ("str", "RFC 6076 or operator metric: RRD, SRD, ..., ASR, NER, ACD, PDD"),
    "value": ("float64", "NaN when undefined (zero denominator, RFC 6076 §4)"),
    "unit": ("str", "ms, s or %"),
    "samples": ("int64", "events the value is computed from"),
    "definition": ("str", "how it is computed"),
    "reference": ("str", "where the definition lives (RFC section)"),
}


def _failures_by(key: str, meaning: str) -> Schema:
    return {
        key: ("str", meaning),
        "finals": ("int64", "unique final responses (2xx-6xx)"),
        "failures": ("int64", "of those, 4xx-6xx"),
        "failure_share": ("float64", "failures / finals of this row"),
        "share_of_failures": ("float64", "share of all unique failures"),
        "top_code": ("str", "most frequent failure code (the lowest on a tie)"),
        "codes": ("str", "failure codes 'CODExCOUNT|...', most frequent first"),
    }


#: Final responses and failures per responder, requester, caller and callee (rows with a failure).
FAILURES_BY: Final[Mapping[str, Schema]] = {
    "responder": _failures_by("responder", "address:port that sent the final response"),
    "requester": _failures_by("requester", "address:port the response went to"),
    "caller": _failures_by("caller", "From user@host"),
    "callee": _failures_by("callee", "To user@host"),
}

CODE_BY_CAUSE: Final[Schema] = {
    "final_status": ("Int64", "the call's final status code"),
    "cause": ("Int64", "Q.850 cause of its Reason header"),
    "cause_text": ("str", "the cause text most of those calls carried"),
    "calls": ("int64", "calls with that code and cause"),
    "expected": ("Int64", "the code RFC 3398 maps the cause to"),
    "contradicts": ("bool", "code and cause disagree (class, or normal clearing on a failure)"),
}

#: Calls per software and outcome: one ``int64`` column per outcome, in :data:`OUTCOMES` order.
AGENTS_BY_OUTCOME: Final[Schema] = {
    "side": ("str", "caller or responder"),
    "software": ("str", "User-Agent of the caller / Server of the responder"),
    "calls": ("int64", "calls with that software"),
    **{outcome: ("int64", f"of those, {outcome}") for outcome in OUTCOMES},
}

BY_RESPONDER: Final[Schema] = {
    "responder": ("str", "address:port (or trunk name) that answered INVITEs"),
    "invites": ("int64", "INVITE transactions it gave a final response"),
    "answered": ("float64", "share of those answered 2xx"),
    "codes": ("str", "final codes 'CODExCOUNT|...', most frequent first"),
}

#: Every DataFrame attribute of ``Analysis`` -> its schema; ``analyze`` conforms each once.
ANALYSIS_TABLES: Final[Mapping[str, Schema]] = {
    "messages": ANALYZED_MESSAGES,
    "report_messages": REPORT_MESSAGES,
    "transactions": TRANSACTIONS,
    "calls": CALLS,
    "registrations": REGISTRATIONS,
    "retries": RETRIES,
    "by_code": BY_CODE,
    "by_method": BY_METHOD,
    "by_class": BY_CLASS,
    "by_category": BY_CATEGORY,
    "by_peer": BY_PEER,
    "retry_after": RETRY_AFTER,
    "early_retriers": EARLY_RETRIERS,
    "storms": STORMS,
    "metrics": METRICS,
    "code_shares": CODE_SHARES,
    "failures_by_method": FAILURES_BY_METHOD,
    "retries_by_retry_after": RETRIES_BY_RETRY_AFTER,
    "retry_gaps": RETRY_GAPS,
    "user_agents": USER_AGENTS,
    "findings": FINDINGS,
    **{f"failures_by_{key}": table for key, table in FAILURES_BY.items()},
    "code_by_cause": CODE_BY_CAUSE,
    "agents_by_outcome": AGENTS_BY_OUTCOME,
    "by_responder": BY_RESPONDER,
}


#: Categorical columns that are a fixed scale, by name: ordered, every step a category
#: whether the table has rows or not (:func:`used_categories` keeps them whole).
SCALES: Final[Mapping[str, tuple[str, ...]]] = {"status_class": STATUS_CLASSES}


def empty(schema: Schema) -> pd.DataFrame:
    """An empty frame with every column of ``schema`` and its dtype (categories:
    :func:`category_dtype`, what the column has with rows)."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: pd.Series(dtype=category_dtype(name) if dtype == "category" else dtype)
            for name, (dtype, _) in schema.items()
        }
    )


def category_dtype(name: str) -> pd.CategoricalDtype:
    """The dtype of categorical column ``name`` before any value is in it: its scale
    (:data:`SCALES`), ordered, as the catalogue gives it; else :func:`no_categories`."""
    import pandas as pd

    if name in SCALES:
        return pd.CategoricalDtype(pd.Index(SCALES[name], dtype=str), ordered=True)
    return no_categories()


def no_categories() -> pd.CategoricalDtype:
    """The dtype of a categorical column that holds no value: ``str`` categories, as a
    column with values has (pandas 3; ``pd.Series(dtype="category")`` and Arrow's empty
    dictionary make them object), so that it joins one: ``pd.concat`` keeps the text dtype
    and ``union_categoricals`` (the Dask engine's merge) wants one dtype of categories."""
    import pandas as pd

    return pd.CategoricalDtype(pd.Index([], dtype=str))


def conform(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Return ``df`` with exactly the schema's columns, in order, cast to the schema's dtypes.

    A missing column is an error (a stage forgot to compute it); extra columns are dropped.
    """
    import pandas as pd

    columns = df.columns.tolist()
    # each column's dtype read once, by name: no Series of them looked up label by label
    dtypes = dict(zip(columns, df.dtypes.tolist(), strict=True))
    missing = [name for name in schema if name not in dtypes]
    if missing:
        raise KeyError(f"missing columns: {', '.join(missing)}")
    if df.empty:
        return empty(schema)
    names = list(schema)
    casts = {name: dtype for name, (dtype, _) in schema.items() if str(dtypes[name]) != dtype}
    # each step only when needed: a frame that already conforms costs a shallow copy
    out = df if columns == names else df.loc[:, names]
    if casts:
        out = out.astype(casts)
    index = out.index
    plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    if not plain or index.name is not None:
        return out.reset_index(drop=True)
    return out.copy(deep=False) if out is df else out


def used_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (index reset) whose categorical columns keep only the categories it holds:
    rows taken from a larger table, sent elsewhere, carry only their own texts. Ordered
    categories (a fixed scale such as the status classes) stay whole."""
    return taken(frame, None, list(frame.columns))


def taken(frame: pd.DataFrame, rows: np.ndarray | None, columns: Sequence[str]) -> pd.DataFrame:
    """:func:`used_categories` of ``frame``'s ``columns`` at ``rows`` (positions; None: every
    row, no column copied but those narrowed), each column taken once: no copy of the rows
    whose categories are then narrowed again."""
    import pandas as pd

    if rows is None:
        frame = frame.reset_index(drop=True)  # pandas 3 (copy-on-write) copies no column
    out: dict[str, Any] = {}
    for name in columns:
        column = frame[name]
        whole = column.array
        values = whole if rows is None else whole.take(rows)
        if isinstance(values, pd.Categorical) and not values.ordered:
            values = _without_unused(values)
        # a column left as it is goes in as the Series: pandas keeps ``frame`` apart (by
        # copy-on-write from pandas 3, by a copy before)
        out[name] = column if values is whole else values
    if not out:  # no columns: the rows are still there
        return pd.DataFrame(index=pd.RangeIndex(len(frame) if rows is None else len(rows)))
    return pd.DataFrame(out, copy=False)


def _without_unused(values: pd.Categorical[Any]) -> pd.Categorical[Any]:
    """``values.remove_unused_categories()`` by counting codes: the categories kept are
    distinct already, so no hash table of their texts is built to check it (pandas' own
    removal sorts the codes; a new category list checked by pandas hashes every text)."""
    import numpy as np
    import pandas as pd

    codes = values.codes
    categories = values.categories
    used = used_codes(codes, len(categories))
    if len(used) == len(categories):
        return values
    # in the codes' own width, not widened to int64 on the way: fewer categories fit it
    # (``from_codes`` narrows them again to the fewest bytes the kept categories need)
    renumbered = np.full(len(categories) + 1, -1, dtype=codes.dtype)  # the last: code -1 (NA)
    renumbered[used] = np.arange(len(used))
    kept = distinct_categories(categories.take(used))
    return pd.Categorical.from_codes(renumbered[codes], dtype=kept, validate=False)


def used_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """The codes 0..n-1 that ``codes`` holds (-1, a missing value, left out), in order: which
    categories a column uses, by counting (no sort of the row codes). Counted one up, -1 in
    the first slot: no copy of the rows with a code is made first."""
    import numpy as np

    return np.flatnonzero(np.bincount(np.add(codes, 1, dtype=np.intp), minlength=n + 1)[1:])


def distinct_categories(categories: pd.Index) -> pd.CategoricalDtype:
    """The unordered categorical dtype of ``categories``, which the caller knows are distinct:
    pandas' check of that hashes every text (the most of the work for a list of Call-IDs)."""
    import pandas as pd

    return pd.CategoricalDtype._from_fastpath(categories, ordered=False)  # type: ignore[attr-defined]


def markdown_table(schema: Schema) -> str:
    """The schema as a Markdown table (column, dtype, meaning) for docstrings and the README."""
    lines = ["| column | dtype | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {meaning} |" for name, (dtype, meaning) in schema.items()]
    return "\n".join(lines) + "\n"
