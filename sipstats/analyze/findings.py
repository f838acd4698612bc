"""Findings stage: the analysis tables -> a ranked list of what went wrong, in plain words.

An operator after an outage asks four things first: what failed, when did it start and end,
who was hit, did callers back off. Each detector below answers one of them from tables the
analysis already built, and only speaks when its evidence passes a minimum count, so a
handful of calls is never an incident.

Detectors (constants below hold every threshold):

``failure_burst``
    Per failure code (4xx-6xx; 401/407 challenges and 487 after CANCEL left out), unique final
    responses are counted per timeline bucket. The code's *baseline* is the median over buckets
    of its share of the bucket's final responses. A bucket is *elevated* when it holds at least
    :data:`BURST_MIN_BUCKET` responses of the code and their share is at least
    :data:`BURST_RISE` above the baseline and at least twice it. Elevated buckets at most
    :data:`BURST_GAP` buckets apart form one burst; a burst of at least
    :data:`BURST_MIN_FAILURES` responses is reported. Onset = the first response of the code in
    the first elevated bucket, end = the last in the last one.
``failure_level``
    A 5xx code that is at least :data:`LEVEL_MIN_SHARE` of all final responses (and at least
    :data:`BURST_MIN_FAILURES` of them) without a burst: a server failing all along.
``retry_storm``
    Each row of the storms table (:func:`sipstats.analyze.retries.storms`).
``retry_after_ignored``
    At least :data:`EARLY_MIN` retries came before the failure's Retry-After ran out
    (the per-target verdict of the retries table).
``timeouts``
    At least :data:`TIMEOUT_MIN` transactions got no final response (ACK left out, and those
    whose request came in the last 32 s, RFC 3261 Timer B, which may still be pending) or a
    408 Request Timeout.
``auth_loop``
    At least :data:`AUTH_LOOP_MIN` calls or registrations challenged (401/407) at least twice
    that never succeeded: credentials refused over and over.
``icmp_unreachable``
    At least :data:`ICMP_MIN` ICMP/ICMPv6 destination-unreachable errors quoted a SIP packet
    (counted per destination while reading, ``InputSummary.icmp_unreachable``): a SIP peer,
    or the route to it, was down. The reader keeps frame numbers, not times, so the finding
    has no start or end.
``pdd_degradation``
    Post-dial delay per bucket (median over calls started in it, at least
    :data:`PDD_MIN_BUCKET` calls) at least twice the capture's median and
    :data:`PDD_MIN_RISE_MS` above it; neighbouring buckets merge as for bursts, and a run of at
    least :data:`PDD_MIN_CALLS` calls is reported.

Findings are ranked by severity (high, medium, low), then by how many events they cover.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Literal, cast

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.breakdown import fixed_step, without_gaps
from sipstats.analyze.calls import TIMER_B
from sipstats.analyze.responses import response_rows
from sipstats.analyze.retries import UriKeys, uri_key
from sipstats.analyze.transactions import endpoints
from sipstats.capture.summary import InputSummary
from sipstats.ranking import most_first

Lang = Literal["en", "zh"]

BURST_MIN_BUCKET: Final = 3
BURST_MIN_FAILURES: Final = 10
BURST_RISE: Final = 0.2
BURST_GAP: Final = 1
LEVEL_MIN_SHARE: Final = 0.2
EARLY_MIN: Final = 5
TIMEOUT_MIN: Final = 3
AUTH_LOOP_MIN: Final = 2
ICMP_MIN: Final = 3
PDD_MIN_BUCKET: Final = 3
PDD_MIN_CALLS: Final = 10
PDD_MIN_RISE_MS: Final = 100.0

#: Codes that are not failures of the service: a challenge (RFC 3261 §22.2) and the caller's
#: own CANCEL (§9.1).
NOT_BURSTS: Final = (401, 407, 487)
SEVERITIES: Final = ("high", "medium", "low")
#: Most names listed in a finding's evidence (responders, callees).
TOP: Final = 3


def _top(values: pd.Series, n: int = TOP) -> dict[str, int]:
    """The ``n`` most frequent values with their counts (ties by value). A categorical is
    counted on its codes, and only the values that can be among the ``n`` are read as text."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        counted = values.astype("str").value_counts()
        return dict(most_first((str(k), int(v)) for k, v in counted.items())[:n])
    at = keys.codes(values)
    counts = np.bincount(at[at >= 0], minlength=len(values.cat.categories))
    shown = np.flatnonzero(counts)
    if len(shown) > n:  # the n-th largest count decides; its ties are ranked by text below
        least = np.partition(counts[shown], len(shown) - n)[len(shown) - n]
        shown = shown[counts[shown] >= least]
    texts = values.cat.categories.take(shown).astype("str").tolist()
    return dict(most_first(zip(texts, counts[shown].tolist(), strict=True))[:n])


def _runs(elevated: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Index ranges [first, last] of elevated buckets at most ``gap`` quiet buckets apart."""
    hot = np.flatnonzero(elevated)
    if hot.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hot) > gap + 1)
    starts = np.r_[hot[0], hot[breaks + 1]]
    ends = np.r_[hot[breaks], hot[-1]]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _bursts(messages: pd.DataFrame, step: pd.Timedelta, uris: UriKeys) -> list[dict[str, Any]]:
    final, code = response_rows(messages, unique=True, lowest=200, highest=699)
    ns = keys.ns(messages["ts"])[final]
    timed = ns != keys.NAT  # a final without a time falls in no bucket
    if not timed.all():  # else no copy of every final's code and time
        final[final] = timed
        code, ns = code[timed], ns[timed]
    if not len(code):
        return []
    at_message = np.flatnonzero(final)  # each final's row in ``messages``
    width = step.value
    bucket = ns - ns % width  # floored, as ``dt.floor(step)`` in UTC
    starts, slot = keys.sorted_ids(bucket)  # the buckets that hold a final, in time order
    totals = np.bincount(slot, minlength=len(starts))
    out: list[dict[str, Any]] = []
    failing = np.flatnonzero((code >= 400) & ~np.isin(code, NOT_BURSTS))
    for failure in np.unique(code[failing]).tolist():
        at = failing[code[failing] == failure]
        k = np.bincount(slot[at], minlength=len(totals))
        share = k / totals
        baseline = float(np.median(share))
        elevated = (
            (k >= BURST_MIN_BUCKET) & (share >= baseline + BURST_RISE) & (share >= 2 * baseline)
        )
        runs = _runs(elevated, BURST_GAP)
        covered = np.zeros(len(at), dtype=bool)
        for first, last in runs:
            low, high = starts[first], starts[last]
            within = (bucket[at] >= low) & (bucket[at] <= high)
            if within.sum() < BURST_MIN_FAILURES:
                continue
            covered |= within
            inside = messages.iloc[at_message[at[within]]]
            begin, end = ns[at[within]].min(), ns[at[within]].max()
            outside = (ns < low) | (ns >= high + width)
            base_n = int(outside.sum())
            base_k = int((outside & (code == failure)).sum())
            severity = "high" if failure >= 500 or failure == 408 else "medium"
            out.append(
                _code_finding(
                    "failure_burst",
                    failure,
                    inside,
                    int(((ns >= begin) & (ns <= end)).sum()),
                    severity,
                    baseline_failures=base_k,
                    baseline_finals=base_n,
                    baseline_share=base_k / base_n if base_n else None,
                    buckets=last - first + 1,
                    bucket_s=step.total_seconds(),
                    ongoing=bool(last == len(starts) - 1),
                    responders=_top(_endpoints(inside, "src", "sport")),
                    requesters=int(_endpoints(inside, "dst", "dport").nunique()),
                    callers=_distinct_keys(uris, inside["from_uri"]),
                    callees=_top(_keys(uris, inside["to_uri"])),
                )
            )
        rest = at[~covered]
        steady = failure >= 500 and not runs and len(rest) >= BURST_MIN_FAILURES
        if steady and len(rest) / len(code) >= LEVEL_MIN_SHARE:
            rows = messages.iloc[at_message[rest]]
            out.append(
                _code_finding(
                    "failure_level",
                    failure,
                    rows,
                    len(code),
                    "high",
                    responders=_top(_endpoints(rows, "src", "sport")),
                    callers=_distinct_keys(uris, rows["from_uri"]),
                )
            )
    return out


def _keys(uris: UriKeys, column: pd.Series) -> pd.Series:
    """The ``user@host`` keys of a URI column as a categorical (NA: no key)."""
    ids = uris.ids(column)
    return pd.Series(keys.categorical(uris.names, ids), index=column.index)


def _distinct_keys(uris: UriKeys, column: pd.Series) -> int:
    """How many distinct ``user@host`` keys a URI column holds."""
    ids = uris.ids(column)
    return len(np.unique(ids[ids >= 0]))


def _code_finding(
    kind: str, code: int, rows: pd.DataFrame, finals: int, severity: str, **evidence: Any
) -> dict[str, Any]:
    """A finding about ``rows``, failures with ``code`` among ``finals`` final responses: its
    time span, subject and weight, and evidence that starts as every such finding's does
    (code, reason, failures, finals, share) and goes on with ``evidence``."""
    head = {
        "code": f"{code:03d}",
        "reason": _reason(rows),
        "failures": len(rows),
        "finals": finals,
        "share": len(rows) / finals,
    }
    return _finding(
        kind,
        rows["ts"].min(),
        rows["ts"].max(),
        subject=_code_subject(code, rows),
        severity=severity,
        weight=len(rows),
        evidence=head | evidence,
    )


def _endpoints(rows: pd.DataFrame, address: str, port: str) -> pd.Series:
    """``address:port`` (``[v6]:port``) of each row as a categorical of the endpoints the rows
    hold (:func:`~sipstats.analyze.transactions.endpoints`)."""
    return pd.Series(endpoints(rows[address], rows[port]), index=rows.index)


def _reason(rows: pd.DataFrame) -> str:
    reasons = rows["catalogue_reason"].dropna()
    return str(reasons.iloc[0]) if not reasons.empty else ""


def _code_subject(code: int, rows: pd.DataFrame) -> str:
    """``503 from 10.0.0.2:5060`` when one responder sent most of them, else the code alone."""
    responders = _endpoints(rows, "src", "sport").value_counts()
    if not responders.empty and responders.iloc[0] >= 0.8 * len(rows):
        return f"{code:03d} from {responders.index[0]}"
    return f"{code:03d} from {len(responders)} responders"


def _storm_findings(storms: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        _finding(
            "retry_storm",
            row.start_ts,
            row.end_ts,
            subject=str(row.target),
            severity="high",
            weight=int(row.retries),
            evidence={
                "target": str(row.target),
                "retries": int(row.retries),
                "early_retries": int(row.early_retries),
                "callers": int(row.callers),
            },
        )
        for row in cast(Iterator[Any], storms.itertuples(index=False))
    ]


def _early_findings(retries: pd.DataFrame) -> list[dict[str, Any]]:
    honoured = retries["honoured"]
    judged = int(honoured.notna().sum())
    # only the columns read are copied, of the too-early rows only
    too_early = (~honoured).fillna(False).to_numpy(dtype=bool)
    early = retries.loc[too_early, ["caller", "retry_ts", "status"]]
    if len(early) < EARLY_MIN:
        return []
    callers = _top(early["caller"], n=len(early))  # every caller with an early retry
    worst = next(iter(callers.items()))
    return [
        _finding(
            "retry_after_ignored",
            early["retry_ts"].min(),
            early["retry_ts"].max(),
            subject=f"{len(callers)} callers",
            severity="medium",
            weight=len(early),
            evidence={
                "too_early": len(early),
                "judged": judged,
                "share": len(early) / judged,
                "callers": len(callers),
                "codes": _top(_code_texts(early["status"]), n=len(early)),
                "worst_caller": str(worst[0]),
                "worst_caller_too_early": int(worst[1]),
            },
        )
    ]


def _code_texts(status: pd.Series) -> pd.Series:
    """Status codes as 'CODE' texts (a categorical: each distinct code formatted once, in
    code order; NA stays NA)."""
    code = status.to_numpy(dtype=np.int64, na_value=-1)
    known = code >= 0
    distinct, at = np.unique(code[known], return_inverse=True)
    row_codes = np.full(len(code), -1, dtype=np.int64)
    row_codes[known] = at.reshape(-1)
    texts = pd.Index([f"{c:03d}" for c in distinct.tolist()], dtype="str")
    dtype = schema.distinct_categories(texts)
    return pd.Series(pd.Categorical.from_codes(row_codes, dtype=dtype), index=status.index)


def _timeout_findings(
    capture_end: pd.Timestamp | None, transactions: pd.DataFrame
) -> list[dict[str, Any]]:
    t = transactions
    if t.empty or capture_end is None:
        return []
    request_ts = t["request_ts"]
    unanswered = (
        ~t["has_final"]
        & request_ts.notna()
        & (t["method"] != "ACK")
        & (request_ts < capture_end - TIMER_B)
    ).to_numpy(dtype=bool)
    timed_out = t["final_status"].eq(408).fillna(False).to_numpy(dtype=bool)
    if int(unanswered.sum()) + int(timed_out.sum()) < TIMEOUT_MIN:  # counted before any copy
        return []
    columns = ["request_ts", "method", "server"]
    both = pd.concat([t.loc[unanswered, columns], t.loc[timed_out, columns]])
    servers = _top(both["server"].dropna())
    return [
        _finding(
            "timeouts",
            both["request_ts"].min(),
            both["request_ts"].max(),
            subject=next(iter(servers), ""),
            severity="high" if len(both) >= 0.1 * len(t) else "medium",
            weight=len(both),
            evidence={
                "no_final": int(unanswered.sum()),
                "responses_408": int(timed_out.sum()),
                "transactions": len(t),
                "methods": _top(both["method"].dropna(), n=len(both)),
                "servers": servers,
            },
        )
    ]


def _auth_findings(calls: pd.DataFrame, registrations: pd.DataFrame) -> list[dict[str, Any]]:
    call_loops = calls[(calls["auth_challenges"] >= 2) & (calls["outcome"] != "answered")]
    reg_loops = registrations[
        (registrations["challenges"] >= 2) & (registrations["outcome"] != "registered")
    ]
    attempts = len(call_loops) + len(reg_loops)
    if attempts < AUTH_LOOP_MIN:
        return []
    who = pd.concat([uri_key(call_loops["caller"]).dropna(), uri_key(reg_loops["aor"]).dropna()])
    starts = pd.concat([call_loops["start_ts"], reg_loops["start_ts"]])
    ends = pd.concat([call_loops["final_ts"], reg_loops["final_ts"]]).fillna(starts)
    challenges = int(call_loops["auth_challenges"].sum() + reg_loops["challenges"].sum())
    return [
        _finding(
            "auth_loop",
            starts.min(),
            ends.max(),
            subject=f"{who.nunique()} users",
            severity="medium",
            weight=attempts,
            evidence={
                "calls": len(call_loops),
                "registrations": len(reg_loops),
                "challenges": challenges,
                "users": _top(who),
                "servers": _top(pd.concat([call_loops["dst"], reg_loops["dst"]]).dropna()),
            },
        )
    ]


def _icmp_findings(inputs: Sequence[InputSummary]) -> list[dict[str, Any]]:
    per_destination: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for summary in inputs:
        for destination, errors in summary.icmp_unreachable.items():
            per_destination[destination] = per_destination.get(destination, 0) + errors.count
            reasons.setdefault(destination, errors.detail)
    total = sum(per_destination.values())
    if total < ICMP_MIN:
        return []
    ranked = dict(most_first(per_destination.items()))
    worst = next(iter(ranked))
    return [
        _finding(
            "icmp_unreachable",
            pd.NaT,
            pd.NaT,
            subject=worst,
            severity="high",
            weight=total,
            evidence={
                "errors": total,
                "destinations": dict(list(ranked.items())[:TOP]),
                "destination_count": len(ranked),
                "first_reason": reasons[worst],
            },
        )
    ]


def _pdd_findings(calls: pd.DataFrame, step: pd.Timedelta) -> list[dict[str, Any]]:
    c = calls.loc[calls["pdd_ms"].notna().to_numpy(), ["pdd_ms", "start_ts", "dst"]]
    if len(c) < PDD_MIN_CALLS:
        return []
    baseline = float(c["pdd_ms"].median())
    bucket = c["start_ts"].dt.floor(step)
    grouped = c["pdd_ms"].groupby(bucket)
    table = pd.DataFrame({"n": grouped.size(), "p50": grouped.median()})
    table = without_gaps(table, step)
    elevated = (
        (table["n"] >= PDD_MIN_BUCKET)
        & (table["p50"] >= 2 * baseline)
        & (table["p50"] >= baseline + PDD_MIN_RISE_MS)
    ).to_numpy()
    out = []
    for first, last in _runs(elevated, BURST_GAP):
        inside = c[bucket.between(table.index[first], table.index[last])]
        if len(inside) < PDD_MIN_CALLS:
            continue
        out.append(
            _finding(
                "pdd_degradation",
                inside["start_ts"].min(),
                inside["start_ts"].max(),
                subject=next(iter(_top(inside["dst"].dropna(), n=1)), ""),
                severity="medium",
                weight=len(inside),
                evidence={
                    "calls": len(inside),
                    "pdd_p50_ms": float(inside["pdd_ms"].median()),
                    "baseline_p50_ms": baseline,
                    "servers": _top(inside["dst"].dropna()),
                },
            )
        )
    return out


def _finding(
    kind: str,
    start: Any,
    end: Any,
    *,
    subject: str,
    severity: str,
    weight: int,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    return {
        "kind": kind,
        "start": start,
        "end": end,
        "subject": subject,
        "evidence": evidence,
        "severity": severity,
        "weight": weight,
    }


def detect(
    *,
    messages: pd.DataFrame,
    runs: pd.DataFrame,
    transactions: pd.DataFrame,
    calls: pd.DataFrame,
    registrations: pd.DataFrame,
    retries: pd.DataFrame,
    storms: pd.DataFrame,
    interval: str,
    inputs: Sequence[InputSummary] = (),
    uris: UriKeys | None = None,
) -> pd.DataFrame:
    """Every finding (``schema.FINDINGS`` columns), ranked; empty when none passed a threshold.

    ``messages`` holds at least the unique responses (:func:`~.tally.report_messages`);
    ``runs`` are the times of every message (:func:`~.tally.time_runs`: the capture's end).
    ``interval`` is the timeline bucket the burst and PDD detectors count in; ``inputs`` are
    the capture's input summaries (ICMP errors are counted there); ``uris`` the URI keys
    already made.
    """
    step = fixed_step(runs, interval)
    found = [
        *_bursts(messages, step, UriKeys() if uris is None else uris),
        *_storm_findings(storms),
        *_early_findings(retries),
        *_timeout_findings(None if runs.empty else runs["end"].max(), transactions),
        *_auth_findings(calls, registrations),
        *_pdd_findings(calls, step),
        *_icmp_findings(inputs),
    ]
    if not found:
        return schema.empty(schema.FINDINGS)
    table = pd.DataFrame(found)
    for edge in ("start", "end"):  # a finding without times (ICMP) has NaT, naive by default
        table[edge] = pd.to_datetime(table[edge], utc=True)
    table["text"] = [describe(cast(dict[str, Any], row)) for row in table.to_dict("records")]
    rank = table["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    table = table.assign(_rank=rank).sort_values(
        ["_rank", "weight", "start"], ascending=[True, False, True], kind="stable"
    )
    return schema.conform(table, schema.FINDINGS)


# -- words --------------------------------------------------------------------------------------


def _clock(value: Any) -> str:
    """A finding time as ``HH:MM:SS`` UTC (the report states the date once)."""
    return "?" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%H:%M:%S")


def _pct(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{100.0 * float(value):.1f} %"


def _names(mapping: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n:,})" for name, n in mapping.items())


def _burst_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    base = _pct(e["baseline_share"])
    if lang == "zh":
        until = "抓包结束时仍在持续" if e["ongoing"] else f"至 {end} 结束"
        return (
            f"{e['code']} {e['reason']} 激增：{start} 开始，{until}；"
            f"{e['failures']:,} 个，占该时段 {e['finals']:,} 个最终响应的 {_pct(e['share'])}"
            f"（其余时间 {base}）。响应方：{_names(e['responders'])}；"
            f"受影响主叫 {e['callers']:,} 个，被叫最多：{_names(e['callees'])}。"
        )
    until = "still going at the end of the capture" if e["ongoing"] else f"ended {end}"
    return (
        f"Burst of {e['code']} {e['reason']}: began {start}, {until}; "
        f"{e['failures']:,} of the {e['finals']:,} final responses in that time "
        f"({_pct(e['share'])}; {base} outside it). Sent by {_names(e['responders'])}; "
        f"{e['callers']:,} callers hit; callees hit most: {_names(e['callees'])}."
    )


def _level_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    if lang == "zh":
        return (
            f"{e['code']} {e['reason']} 贯穿整个抓包（{start}–{end}）：{e['failures']:,} 个，"
            f"占全部 {e['finals']:,} 个最终响应的 {_pct(e['share'])}；"
            f"响应方：{_names(e['responders'])}；受影响主叫 {e['callers']:,} 个。"
        )
    return (
        f"{e['code']} {e['reason']} all along ({start}–{end}): {e['failures']:,} of all "
        f"{e['finals']:,} final responses ({_pct(e['share'])}), sent by "
        f"{_names(e['responders'])}; {e['callers']:,} callers hit."
    )


def _storm_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    if lang == "zh":
        return (
            f"重试风暴冲击 {e['target']}：{start}–{end} 期间 {e['callers']:,} 个主叫"
            f"发起 {e['retries']:,} 次催促重试，其中 {e['early_retries']:,} 次早于 Retry-After。"
        )
    return (
        f"Retry storm on {e['target']}: {e['retries']:,} pressing retries from "
        f"{e['callers']:,} callers between {start} and {end}, {e['early_retries']:,} of them "
        f"before Retry-After ran out."
    )


def _early_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    codes = _names(e["codes"])
    if lang == "zh":
        return (
            f"主叫无视 Retry-After：在可判定的 {e['judged']:,} 次重试中有 {e['too_early']:,} 次"
            f"（{_pct(e['share'])}）早于 Retry-After 到期（{start}–{end}，{e['callers']:,} 个主叫；"
            f"失败码 {codes}）；最严重：{e['worst_caller']}（{e['worst_caller_too_early']:,} 次）。"
        )
    return (
        f"Callers ignored Retry-After: {e['too_early']:,} of {e['judged']:,} retries a "
        f"Retry-After could judge ({_pct(e['share'])}) came before it ran out ({start}–{end}, "
        f"{e['callers']:,} callers; after {codes}); worst: {e['worst_caller']} "
        f"({e['worst_caller_too_early']:,})."
    )


def _timeout_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    if lang == "zh":
        return (
            f"事务超时：{e['no_final']:,} 个事务没有最终响应，{e['responses_408']:,} 个收到 408"
            f"（共 {e['transactions']:,} 个事务；{start}–{end}）；方法 {_names(e['methods'])}；"
            f"服务器 {_names(e['servers'])}。"
        )
    return (
        f"Transactions timed out: {e['no_final']:,} got no final response and "
        f"{e['responses_408']:,} a 408 (of {e['transactions']:,} transactions; {start}–{end}); "
        f"methods {_names(e['methods'])}; servers {_names(e['servers'])}."
    )


def _auth_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    if lang == "zh":
        return (
            f"鉴权循环：{e['calls']:,} 个呼叫和 {e['registrations']:,} 个注册被反复质询"
            f"（共 {e['challenges']:,} 次 401/407）却从未成功（{start}–{end}）；"
            f"用户 {_names(e['users'])}；服务器 {_names(e['servers'])}。"
        )
    return (
        f"Authentication loops: {e['calls']:,} calls and {e['registrations']:,} registrations "
        f"were challenged again and again ({e['challenges']:,} 401/407 in all) and never "
        f"succeeded ({start}–{end}); users {_names(e['users'])}; servers {_names(e['servers'])}."
    )


def _pdd_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    if lang == "zh":
        return (
            f"接续时延（PDD）变差：{start}–{end} 开始的 {e['calls']:,} 个呼叫 PDD 中位数 "
            f"{e['pdd_p50_ms']:,.0f} ms，整个抓包为 {e['baseline_p50_ms']:,.0f} ms；"
            f"服务器 {_names(e['servers'])}。"
        )
    return (
        f"Post-dial delay degraded: median {e['pdd_p50_ms']:,.0f} ms over the "
        f"{e['calls']:,} calls started {start}–{end}, against {e['baseline_p50_ms']:,.0f} ms "
        f"over the whole capture; servers {_names(e['servers'])}."
    )


def _icmp_text(e: dict[str, Any], start: str, end: str, lang: Lang) -> str:
    del start, end  # the reader counts ICMP errors by frame, not time
    if lang == "zh":
        return (
            f"SIP 目的地不可达：{e['errors']:,} 个 ICMP 目的不可达差错引用了发往 "
            f"{e['destination_count']:,} 个目的地的 SIP 包（{_names(e['destinations'])}；"
            f"首个原因：{e['first_reason']}）：对端或其路由已中断。"
        )
    return (
        f"SIP destinations unreachable: {e['errors']:,} ICMP destination-unreachable errors "
        f"quoted SIP packets to {e['destination_count']:,} destinations "
        f"({_names(e['destinations'])}; first: {e['first_reason']}): the peer, or the route "
        f"to it, was down."
    )


_TEXTS: Final[dict[str, Callable[[dict[str, Any], str, str, Lang], str]]] = {
    "failure_burst": _burst_text,
    "failure_level": _level_text,
    "retry_storm": _storm_text,
    "retry_after_ignored": _early_text,
    "timeouts": _timeout_text,
    "auth_loop": _auth_text,
    "pdd_degradation": _pdd_text,
    "icmp_unreachable": _icmp_text,
}


def describe(finding: dict[str, Any], lang: Lang = "en") -> str:
    """One finding (a row of ``schema.FINDINGS`` as a dict) as a sentence in ``lang``."""
    text = _TEXTS[str(finding["kind"])]
    return text(finding["evidence"], _clock(finding["start"]), _clock(finding["end"]), lang)
