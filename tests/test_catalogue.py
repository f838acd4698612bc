"""The status-code catalogue against the IANA registry, the seed document and RFC 3261 §8.1.3.2."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sipstats.analyze.join import COLUMNS as JOIN_COLUMNS
from sipstats.analyze.join import join_catalogue
from sipstats.catalogue import (
    CATEGORIES,
    CATEGORY_NAMES_ZH,
    CLASSIFY_COLUMNS,
    COLUMNS,
    STATUS_CLASSES,
    CodeInfo,
    catalogue,
    classify,
    lookup,
)
from sipstats.errors import CatalogueError
from tests.conftest import SHARED

#: The IANA "Session Initiation Protocol (SIP) Parameters / Response Codes" registry:
#: code -> (reason phrase, reference). A blank reference there means RFC 3261. 202 is listed
#: as "Accepted (Deprecated)": RFC 6665 deprecates it, the phrase on the wire is "Accepted".
REGISTRY: dict[int, tuple[str, str]] = {
    100: ("Trying", "RFC 3261"),
    180: ("Ringing", "RFC 3261"),
    181: ("Call Is Being Forwarded", "RFC 3261"),
    182: ("Queued", "RFC 3261"),
    183: ("Session Progress", "RFC 3261"),
    199: ("Early Dialog Terminated", "RFC 6228"),
    200: ("OK", "RFC 3261"),
    202: ("Accepted", "RFC 6665"),
    204: ("No Notification", "RFC 5839"),
    300: ("Multiple Choices", "RFC 3261"),
    301: ("Moved Permanently", "RFC 3261"),
    302: ("Moved Temporarily", "RFC 3261"),
    305: ("Use Proxy", "RFC 3261"),
    380: ("Alternative Service", "RFC 3261"),
    400: ("Bad Request", "RFC 3261"),
    401: ("Unauthorized", "RFC 3261"),
    402: ("Payment Required", "RFC 3261"),
    403: ("Forbidden", "RFC 3261"),
    404: ("Not Found", "RFC 3261"),
    405: ("Method Not Allowed", "RFC 3261"),
    406: ("Not Acceptable", "RFC 3261"),
    407: ("Proxy Authentication Required", "RFC 3261"),
    408: ("Request Timeout", "RFC 3261"),
    410: ("Gone", "RFC 3261"),
    412: ("Conditional Request Failed", "RFC 3903"),
    413: ("Request Entity Too Large", "RFC 3261"),
    414: ("Request-URI Too Long", "RFC 3261"),
    415: ("Unsupported Media Type", "RFC 3261"),
    416: ("Unsupported URI Scheme", "RFC 3261"),
    417: ("Unknown Resource-Priority", "RFC 4412"),
    420: ("Bad Extension", "RFC 3261"),
    421: ("Extension Required", "RFC 3261"),
    422: ("Session Interval Too Small", "RFC 4028"),
    423: ("Interval Too Brief", "RFC 3261"),
    424: ("Bad Location Information", "RFC 6442"),
    425: ("Bad Alert Message", "RFC 8876"),
    428: ("Use Identity Header", "RFC 8224"),
    429: ("Provide Referrer Identity", "RFC 3892"),
    430: ("Flow Failed", "RFC 5626"),
    433: ("Anonymity Disallowed", "RFC 5079"),
    436: ("Bad Identity Info", "RFC 8224"),
    437: ("Unsupported Credential", "RFC 8224"),
    438: ("Invalid Identity Header", "RFC 8224"),
    439: ("First Hop Lacks Outbound Support", "RFC 5626"),
    440: ("Max-Breadth Exceeded", "RFC 5393"),
    469: ("Bad Info Package", "RFC 6086"),
    470: ("Consent Needed", "RFC 5360"),
    480: ("Temporarily Unavailable", "RFC 3261"),
    481: ("Call/Transaction Does Not Exist", "RFC 3261"),
    482: ("Loop Detected", "RFC 3261"),
    483: ("Too Many Hops", "RFC 3261"),
    484: ("Address Incomplete", "RFC 3261"),
    485: ("Ambiguous", "RFC 3261"),
    486: ("Busy Here", "RFC 3261"),
    487: ("Request Terminated", "RFC 3261"),
    488: ("Not Acceptable Here", "RFC 3261"),
    489: ("Bad Event", "RFC 6665"),
    491: ("Request Pending", "RFC 3261"),
    493: ("Undecipherable", "RFC 3261"),
    494: ("Security Agreement Required", "RFC 3329"),
    500: ("Server Internal Error", "RFC 3261"),
    501: ("Not Implemented", "RFC 3261"),
    502: ("Bad Gateway", "RFC 3261"),
    503: ("Service Unavailable", "RFC 3261"),
    504: ("Server Time-out", "RFC 3261"),
    505: ("Version Not Supported", "RFC 3261"),
    513: ("Message Too Large", "RFC 3261"),
    555: ("Push Notification Service Not Supported", "RFC 8599"),
    580: ("Precondition Failure", "RFC 3312"),
    600: ("Busy Everywhere", "RFC 3261"),
    603: ("Decline", "RFC 3261"),
    604: ("Does Not Exist Anywhere", "RFC 3261"),
    606: ("Not Acceptable", "RFC 3261"),
    607: ("Unwanted", "RFC 8197"),
    608: ("Rejected", "RFC 8688"),
}

#: RFC 3261 §20.33 names these codes as the ones Retry-After means something on; no later
#: registration gives it a meaning on another code.
RETRY_AFTER_CODES = {404, 413, 480, 486, 500, 503, 600, 603}

#: Every code the seed document (a Chinese rendering of RFC 3261 §21) names, with the
#: registered phrase. The seed gets some wrong; SEED_MISTAKES lists how it wrote them.
SEED_CODES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

#: The seed's summary table, as written -> what it should say. "181*" is its typo for 183.
SEED_MISTAKES: dict[tuple[str, str], tuple[int, str]] = {
    ("181", "call being forwarder"): (181, "Call Is Being Forwarded"),
    ("182", "queue"): (182, "Queued"),
    ("181", "session progress"): (183, "Session Progress"),
    ("300", "multiple"): (300, "Multiple Choices"),
    ("302", "moved temporaily"): (302, "Moved Temporarily"),
    ("405", "method no allowed"): (405, "Method Not Allowed"),
    ("414", "request-url too long"): (414, "Request-URI Too Long"),
    ("416", "unsupported url scheme"): (416, "Unsupported URI Scheme"),
}

#: Three-digit numbers in the seed that are not the code they stand for: its detailed
#: section heads 181 as "818 Call is Being Forwarded".
SEED_WRONG_NUMBERS = {818: 181}


def test_catalogue_is_exactly_the_registry() -> None:
    frame = catalogue()
    assert list(frame["code"]) == sorted(REGISTRY)
    got = {int(r.code): (r.reason, r.rfc) for r in frame.itertuples()}
    assert got == REGISTRY


def test_columns_and_dtypes() -> None:
    frame = catalogue()
    assert tuple(frame.columns) == COLUMNS
    assert frame["code"].dtype == "int64"
    assert list(frame["status_class"].cat.categories) == list(STATUS_CLASSES)
    assert list(frame["category"].cat.categories) == list(CATEGORIES)
    assert frame["retry_after"].dtype == bool
    assert frame["registered"].dtype == bool
    assert frame["code"].is_unique


def test_status_class_is_first_digit_and_every_class_present() -> None:
    frame = catalogue()
    assert (frame["status_class"].astype(str) == frame["code"].map(lambda c: f"{c // 100}xx")).all()
    assert set(frame["status_class"].astype(str)) == set(STATUS_CLASSES)


def test_every_category_used_and_none_missing() -> None:
    frame = catalogue()
    assert frame["category"].notna().all()
    assert set(frame["category"].astype(str)) == set(CATEGORIES)
    assert set(CATEGORY_NAMES_ZH) == set(CATEGORIES)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        (100, "provisional"),
        (200, "success"),
        (302, "redirect"),
        (401, "auth-challenge"),
        (407, "auth-challenge"),
        (404, "not-found/routing"),
        (604, "not-found/routing"),
        (486, "callee-busy"),
        (600, "callee-busy"),
        (480, "callee-unavailable"),
        (603, "callee-declined"),
        (607, "callee-declined"),
        (608, "callee-declined"),
        (487, "cancelled"),
        (408, "timeout"),
        (504, "timeout"),
        (488, "media-negotiation"),
        (606, "media-negotiation"),
        (403, "policy/security"),
        (429, "policy/security"),
        (400, "request-error"),
        (503, "overload"),
        (500, "server-error"),
    ],
)
def test_category_of_codes_ops_engineers_reason_with(code: int, category: str) -> None:
    assert lookup(code).category == category


def test_retry_after_is_meaningful_exactly_on_rfc3261_20_33_codes() -> None:
    frame = catalogue()
    assert set(frame.loc[frame["retry_after"], "code"]) == RETRY_AFTER_CODES


def test_texts_present_in_both_languages_and_short() -> None:
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for row in catalogue().itertuples():
        assert row.registered
        for text in (row.reason, row.reason_zh, row.description, row.description_zh, row.rfc):
            assert text, f"{row.code}: empty text"
            assert text.strip() == text, f"{row.code}: padded text"
        assert cjk.search(row.reason_zh), f"{row.code}: reason_zh is not Chinese"
        assert cjk.search(row.description_zh), f"{row.code}: description_zh is not Chinese"
        assert not cjk.search(row.description), f"{row.code}: description is not English"
        assert len(re.findall(r"[.!?](?:\s|$)", row.description)) <= 2, row.code
        assert row.description_zh.count("。") <= 2, row.code


def test_catalogue_returns_a_fresh_copy() -> None:
    first = catalogue()
    first.loc[0, "reason"] = "changed"
    assert catalogue().loc[0, "reason"] == "Trying"


def test_catalogue_one_class() -> None:
    frame = catalogue(status_class="6xx")
    assert list(frame["code"]) == [600, 603, 604, 606, 607, 608]
    assert list(frame.index) == list(range(6))


def test_catalogue_rejects_unknown_class() -> None:
    with pytest.raises(CatalogueError, match="'7xx' is not a status class"):
        catalogue(status_class="7xx")


def test_lookup_registered_code() -> None:
    info = lookup(486)
    assert info == CodeInfo(
        code=486,
        status_class="4xx",
        reason="Busy Here",
        reason_zh=info.reason_zh,
        description=info.description,
        description_zh=info.description_zh,
        rfc="RFC 3261",
        category="callee-busy",
        retry_after=True,
        registered=True,
        treated_as=486,
    )
    assert "busy" in info.description
    with pytest.raises(AttributeError):
        info.code = 487  # type: ignore[misc]


@pytest.mark.parametrize("code", [486, "486", " 486 ", np.int16(486), np.int64(486)])
def test_lookup_accepts_ints_and_digit_strings(code: object) -> None:
    assert lookup(code).code == 486  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "base", "reason"),
    [
        (150, 100, "Unknown 1xx (treated as 100 Trying)"),
        (299, 200, "Unknown 2xx (treated as 200 OK)"),
        (399, 300, "Unknown 3xx (treated as 300 Multiple Choices)"),
        (499, 400, "Unknown 4xx (treated as 400 Bad Request)"),
        (409, 400, "Unknown 4xx (treated as 400 Bad Request)"),
        (599, 500, "Unknown 5xx (treated as 500 Server Internal Error)"),
        (699, 600, "Unknown 6xx (treated as 600 Busy Everywhere)"),
    ],
)
def test_unregistered_code_is_its_class_x00(code: int, base: int, reason: str) -> None:
    info, x00 = lookup(code), lookup(base)
    assert info.code == code
    assert not info.registered
    assert info.treated_as == base
    assert info.reason == reason
    assert info.status_class == x00.status_class
    assert info.category == x00.category
    assert info.retry_after == x00.retry_after
    assert info.rfc == "RFC 3261 §8.1.3.2"
    assert x00.description in info.description
    assert x00.description_zh in info.description_zh
    assert x00.reason_zh in info.reason_zh


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (700, "700 is not a SIP status code"),
        (799, "799 is not a SIP status code"),
        (99, "99 is not a SIP status code"),
        (1000, "1000 is not a SIP status code"),
        (-486, "-486 is not a SIP status code"),
        (0, "0 is not a SIP status code"),
        ("abc", "'abc' is not a SIP status code"),
        ("", "'' is not a SIP status code"),
        ("7xx", "'7xx' is not a SIP status code"),
        ("48", "'48' is not a SIP status code"),
        ("4860", "'4860' is not a SIP status code"),
        ("-48", "'-48' is not a SIP status code"),
        ("099", "99 is not a SIP status code"),
        (None, "None is not a SIP status code"),
        (True, "True is not a SIP status code"),
        (486.0, "486.0 is not a SIP status code"),
    ],
)
def test_malformed_code_is_an_error(code: object, message: str) -> None:
    with pytest.raises(CatalogueError, match=re.escape(message)):
        lookup(code)  # type: ignore[arg-type]


def test_catalogue_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not a SIP status code"):
        lookup("abc")


@pytest.mark.parametrize(("code", "reason"), sorted(SEED_CODES.items()))
def test_every_code_of_the_seed_has_its_registered_phrase(code: int, reason: str) -> None:
    info = lookup(code)
    assert info.registered
    assert info.reason == reason


def _seed_document() -> str:
    folder = SHARED / "seed"
    if not folder.is_dir():
        pytest.skip(f"the seed document is not at {folder}: it exists only beside the checkout")
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt")))
    # The saved web page goes on with unrelated "related articles" (HTTP codes, H.264).
    return text.split("的相关文章")[0]


def test_seed_numbers_are_all_catalogued() -> None:
    text = _seed_document()
    numbers = {int(n) for n in re.findall(r"(?<![0-9])[0-9]{3}(?![0-9])", text)}
    assert SEED_WRONG_NUMBERS.keys() <= numbers
    named = {SEED_WRONG_NUMBERS.get(n, n) for n in numbers}
    assert named == set(SEED_CODES)
    registered = set(catalogue()["code"])
    assert named <= registered


def test_seed_summary_phrases_match_after_corrections() -> None:
    summary = _seed_document().split("SIP应答代码")[0]
    entries = re.findall(r"(?<![0-9])([0-9]{3})\*?\s*([A-Za-z][A-Za-z /-]*[a-z])", summary)
    assert len(entries) == 49
    assert "181* session progress" in summary
    for number, phrase in entries:
        code, expected = SEED_MISTAKES.get((number, phrase), (int(number), phrase))
        assert lookup(code).reason.casefold() == expected.casefold(), (number, phrase)
    assert {code for code, _ in SEED_MISTAKES.values()} <= SEED_CODES.keys()


def test_classify_aligns_on_the_index_with_na_and_unregistered_codes() -> None:
    codes = pd.Series([486, pd.NA, 299, 700, 100, 486], dtype="Int16", index=list("abcdef"))
    result = classify(codes)
    assert tuple(result.columns) == CLASSIFY_COLUMNS
    assert list(result.index) == list("abcdef")
    assert result.loc["a", "reason"] == "Busy Here"
    assert result.loc["a", "category"] == "callee-busy"
    assert result.loc["a", "registered"]
    assert result.loc["a", "retry_after"]
    assert result.loc["c", "status_class"] == "2xx"
    assert result.loc["c", "category"] == "success"
    assert not result.loc["c", "registered"]
    assert result.loc["c", "reason"] == "Unknown 2xx (treated as 200 OK)"
    assert result.loc["e", "reason_zh"] == lookup(100).reason_zh
    assert result.loc["f", "description_zh"] == lookup(486).description_zh
    for missing in ("b", "d"):  # NA, and 700 which is no status code at all
        assert result.loc[missing].isna().all(), missing


def test_classify_dtypes() -> None:
    result = classify(pd.Series([180, 487], dtype="int64"))
    assert list(result["status_class"].cat.categories) == list(STATUS_CLASSES)
    assert list(result["category"].cat.categories) == list(CATEGORIES)
    assert result["registered"].dtype == "boolean"
    assert result["retry_after"].dtype == "boolean"
    for name in ("reason", "description", "reason_zh", "description_zh"):
        assert isinstance(result[name].dtype, pd.CategoricalDtype), name


def test_classify_matches_lookup_for_every_code() -> None:
    every = pd.Series(range(100, 700), dtype="Int16")
    result = classify(every)
    for code, row in zip(every, result.itertuples(index=False), strict=True):
        info = lookup(int(code))
        assert (row.reason, row.category, row.registered) == (
            info.reason,
            info.category,
            info.registered,
        ), code


def test_classify_digit_strings_and_empty() -> None:
    result = classify(pd.Series(["486", "abc", None, "603"]))
    assert list(result["reason"].astype(object).fillna("-")) == ["Busy Here", "-", "-", "Decline"]
    empty = classify(pd.Series([], dtype="Int16"))
    assert empty.empty
    assert tuple(empty.columns) == CLASSIFY_COLUMNS
    assert empty["registered"].dtype == "boolean"


def test_a_classify_result_changed_by_its_caller_leaves_the_next_call_unchanged() -> None:
    """classify keeps the table of the last code sets: what it hands out is the caller's own.
    Every code once, in order, and NA: the rows are the whole kept table."""
    codes = pd.Series(pd.array([200, 503, None], dtype="Int16"))
    first = classify(codes)
    first["reason"] = "changed"
    first.loc[0, "registered"] = False
    first.loc[1, "category"] = first.loc[0, "category"]
    again = classify(codes)
    assert again["reason"].tolist()[:2] == ["OK", "Service Unavailable"]
    assert again["registered"].tolist()[:2] == [True, True]
    assert again["category"].tolist()[:2] == [lookup(200).category, lookup(503).category]


def test_join_catalogue_gives_each_row_its_codes_entry() -> None:
    """The join looks each distinct code up once and gives every row its code's entry, as
    classifying every row does; a row without a code (a request) or with no catalogue entry
    gets NA in every column."""
    status = pd.Series([486, None, 200, 486, 700, 180, None, 299], dtype="Int16")
    messages = pd.DataFrame({"status": status, "frame": np.arange(len(status))})
    joined = join_catalogue(messages)
    expected = classify(status)[list(JOIN_COLUMNS)].rename(columns=JOIN_COLUMNS)
    pd.testing.assert_frame_equal(joined[list(JOIN_COLUMNS.values())], expected, check_exact=True)
    pd.testing.assert_frame_equal(joined[list(messages)], messages)
