"""Catalogue stage: SIP status code -> registered reason, class, ops category and meaning.

The data lives in ``sipstats/data/status_codes.csv``: one row per code of the IANA SIP
"Response Codes" registry, with English and Chinese reason phrases and descriptions.
A valid code that is not registered (299, 499, 699) is never dropped: RFC 3261 §8.1.3.2 says
to treat it as the x00 code of its class, so it takes that code's meaning with
``registered=False``. A value that cannot be a status code at all raises
:class:`~sipstats.errors.CatalogueError`.
"""

from __future__ import annotations

import functools
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.errors import CatalogueError
from sipstats.vocabulary import STATUS_CLASSES as STATUS_CLASSES

#: The class headings of RFC 3261 §21, and their Chinese names.
CLASS_NAMES: Final[Mapping[str, str]] = {
    "1xx": "Provisional",
    "2xx": "Successful",
    "3xx": "Redirection",
    "4xx": "Request Failure",
    "5xx": "Server Failure",
    "6xx": "Global Failure",
}
CLASS_NAMES_ZH: Final[Mapping[str, str]] = {
    "1xx": "临时响应",
    "2xx": "成功",
    "3xx": "重定向",
    "4xx": "请求失败",
    "5xx": "服务器失败",
    "6xx": "全局失败",
}

#: What an ops engineer concludes from a code, whatever its class. Fixed; every one is used.
#:
#: - provisional: 1xx, the request is still in progress.
#: - success: 2xx.
#: - redirect: 3xx, try another address or proxy.
#: - auth-challenge: 401/407, send credentials and try again (normal once per request).
#: - not-found/routing: the target or the path to it does not exist or does not work:
#:   404, 410, 416, 430, 439, 440, 482-485, 604.
#: - callee-busy: 486, 600.
#: - callee-unavailable: 480.
#: - callee-declined: the callee or a service acting for it refused: 603, 607, 608.
#: - cancelled: 487, the caller gave up (CANCEL).
#: - timeout: 408, 504.
#: - media-negotiation: the session offer cannot be met: 488, 580, 606.
#: - policy/security: refused by policy, identity or security rules: 402, 403, 428, 429,
#:   433, 436-438, 470, 493, 494.
#: - request-error: the request itself is wrong for this server (syntax, extensions, timers,
#:   state): the remaining 4xx.
#: - overload: 503, the server is shedding load (RFC 3261 §21.5.4).
#: - server-error: the remaining 5xx.
CATEGORIES: Final = (
    "provisional",
    "success",
    "redirect",
    "auth-challenge",
    "not-found/routing",
    "callee-busy",
    "callee-unavailable",
    "callee-declined",
    "cancelled",
    "timeout",
    "media-negotiation",
    "policy/security",
    "request-error",
    "overload",
    "server-error",
)
CATEGORY_NAMES_ZH: Final[Mapping[str, str]] = {
    "provisional": "处理中",
    "success": "成功",
    "redirect": "重定向",
    "auth-challenge": "认证质询",
    "not-found/routing": "未找到/路由",
    "callee-busy": "被叫忙",
    "callee-unavailable": "被叫不可用",
    "callee-declined": "被叫拒绝",
    "cancelled": "已取消",
    "timeout": "超时",
    "media-negotiation": "媒体协商",
    "policy/security": "策略/安全",
    "request-error": "请求错误",
    "overload": "过载",
    "server-error": "服务器错误",
}

#: Columns of :func:`catalogue`, in order.
COLUMNS: Final = (
    "code",
    "status_class",
    "reason",
    "reason_zh",
    "description",
    "description_zh",
    "rfc",
    "category",
    "retry_after",
    "registered",
)

#: Columns of :func:`classify`, in order.
CLASSIFY_COLUMNS: Final = (
    "status_class",
    "category",
    "registered",
    "reason",
    "description",
    "reason_zh",
    "description_zh",
    "retry_after",
)

_STATUS_CLASS_DTYPE: Final = schema.category_dtype("status_class")
_CATEGORY_DTYPE: Final = pd.CategoricalDtype(list(CATEGORIES))
_THREE_DIGITS: Final = re.compile(r"[0-9]{3}")


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """Everything the catalogue knows about one status code.

    ``treated_as`` is the registered code whose meaning applies: the code itself, or the
    class's x00 for an unregistered code (RFC 3261 §8.1.3.2).
    """

    code: int
    status_class: str
    reason: str
    reason_zh: str
    description: str
    description_zh: str
    rfc: str
    category: str
    retry_after: bool
    registered: bool
    treated_as: int

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-safe fields, for ``--json`` and reports."""
        return asdict(self)


@functools.cache
def _load() -> pd.DataFrame:
    source = resources.files("sipstats") / "data" / "status_codes.csv"
    with source.open("rb") as handle:
        frame = pd.read_csv(
            handle,
            dtype={"code": "int64", "retry_after": "bool", "registered": "bool"},
            keep_default_na=False,
            encoding="utf-8",
        )
    frame["status_class"] = frame["status_class"].astype(_STATUS_CLASS_DTYPE)
    frame["category"] = frame["category"].astype(_CATEGORY_DTYPE)
    return frame.loc[:, list(COLUMNS)].sort_values("code", ignore_index=True)


@functools.cache
def _registered() -> dict[int, CodeInfo]:
    return {
        int(row["code"]): CodeInfo(
            code=int(row["code"]),
            status_class=str(row["status_class"]),
            reason=str(row["reason"]),
            reason_zh=str(row["reason_zh"]),
            description=str(row["description"]),
            description_zh=str(row["description_zh"]),
            rfc=str(row["rfc"]),
            category=str(row["category"]),
            retry_after=bool(row["retry_after"]),
            registered=True,
            treated_as=int(row["code"]),
        )
        for row in _load().to_dict("records")
    }


def catalogue(*, status_class: str | None = None) -> pd.DataFrame:
    """The registered codes as a fresh frame (callers may modify it), sorted by code.

    ``status_class`` ('4xx') keeps one class. Dtypes: ``code`` int64, ``status_class`` and
    ``category`` categorical (all of :data:`STATUS_CLASSES` / :data:`CATEGORIES`),
    ``retry_after`` and ``registered`` bool, the text columns str.
    """
    frame = _load()
    if status_class is not None:
        if status_class not in STATUS_CLASSES:
            raise CatalogueError(
                f"{status_class!r} is not a status class: "
                f"expected one of {', '.join(STATUS_CLASSES)}"
            )
        frame = frame[frame["status_class"] == status_class].reset_index(drop=True)
    return frame.copy()


def _parse(code: object) -> int:
    """The status code as an int; RFC 3261 §7.2: three digits whose first is the class 1-6."""
    if isinstance(code, str):
        if not _THREE_DIGITS.fullmatch(code.strip()):
            raise CatalogueError(
                f"{code!r} is not a SIP status code: expected three digits, 100 to 699"
            )
        number = int(code)
    elif isinstance(code, numbers.Integral) and not isinstance(code, bool):
        number = int(code)
    else:
        raise CatalogueError(
            f"{code!r} is not a SIP status code: expected an integer or three digits, 100 to 699"
        )
    if not 100 <= number <= 699:
        raise CatalogueError(
            f"{number} is not a SIP status code: classes run from 1xx to 6xx (RFC 3261 §7.2)"
        )
    return number


def _unregistered(code: int, base: CodeInfo) -> CodeInfo:
    """RFC 3261 §8.1.3.2: an unrecognised code means what its class's x00 means."""
    cls = base.status_class
    return CodeInfo(
        code=code,
        status_class=cls,
        reason=f"Unknown {cls} (treated as {base.code} {base.reason})",
        reason_zh=f"未注册的 {cls}（按 {base.code} {base.reason_zh}处理）",
        description=(
            f"Not in the IANA registry; RFC 3261 §8.1.3.2 treats an unknown code as the x00 "
            f"of its class, so this means {base.code} {base.reason}: {base.description}"
        ),
        description_zh=(
            f"未在 IANA 注册；按 RFC 3261 §8.1.3.2，未知状态码等同于本类的 x00，"
            f"即按 {base.code} {base.reason_zh}理解：{base.description_zh}"
        ),
        rfc="RFC 3261 §8.1.3.2",
        category=base.category,
        retry_after=base.retry_after,
        registered=False,
        treated_as=base.code,
    )


def lookup(code: int | str) -> CodeInfo:
    """What ``code`` means; unregistered valid codes are read as their class's x00.

    Raises :class:`CatalogueError` for anything that is not a status code (7xx, 99, 1000,
    'abc', '', None, negatives).
    """
    number = _parse(code)
    known = _registered()
    if number in known:
        return known[number]
    return _unregistered(number, known[number // 100 * 100])


def classify(codes: pd.Series) -> pd.DataFrame:
    """Catalogue columns for each code of a Series, aligned on its index (analysis stage).

    Accepts integer (``Int16`` with NA included) or digit-string codes. Unregistered codes get
    their class's x00 meaning with ``registered=False``; NA, and values that are no status
    code at all (the parser counts those as malformed), give NA in every column.
    Columns: :data:`CLASSIFY_COLUMNS`; text columns are categorical, ``registered`` and
    ``retry_after`` are nullable ``boolean``.
    """
    values = pd.to_numeric(codes, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    valid = (values >= 100) & (values <= 699) & (values == np.floor(values))
    distinct = np.unique(values[valid].astype("int64"))
    # Row len(distinct) of the table is the all-NA row for NA and malformed codes.
    rows = np.full(len(values), len(distinct), dtype="int64")
    rows[valid] = np.searchsorted(distinct, values[valid].astype("int64"))
    result = _table(tuple(distinct.tolist())).iloc[rows]
    result.index = codes.index
    return result


@functools.lru_cache(maxsize=8)
def _table(distinct: tuple[int, ...]) -> pd.DataFrame:
    """:func:`classify`'s columns for each of ``distinct`` (sorted status codes), then an
    all-NA row. Kept for the next call with the same codes: the analysis classifies the
    codes of every message, the code table the same codes again. Read only (``iloc``)."""
    infos = [lookup(code) for code in distinct]
    table = pd.DataFrame(
        {name: [getattr(info, name) for info in infos] + [None] for name in CLASSIFY_COLUMNS}
    )
    return table.astype(
        {
            "status_class": _STATUS_CLASS_DTYPE,
            "category": _CATEGORY_DTYPE,
            "registered": "boolean",
            "retry_after": "boolean",
            "reason": "category",
            "description": "category",
            "reason_zh": "category",
            "description_zh": "category",
        }
    )
