"""Retry behaviour after failed calls: calls + analysed messages -> retries table and summaries.

An *attempt* is one row of the calls table (an INVITE call). A *failed attempt* ended with a
final 3xx-6xx and was never answered; a 401/407 challenge that the caller answered with an
authenticated INVITE in the same call is not a failure of the call (RFC 3261 §22.2).

The *retry* of a failed attempt is the first attempt of the same caller to the same target
that starts at or after the failure's final response: caller = From URI and target =
request-URI (To URI when the request-URI is missing), both reduced to ``user@host`` (scheme,
port, parameters and headers dropped; host compared case-insensitively, user as sent,
RFC 3261 §19.1.4). Attempts are linked by caller and target, never by Call-ID text: a UA
that retries starts a new call with a new Call-ID, From tag and branch. An attempt that
started before the failure arrived cannot be a reaction to it, so it is not its retry.

``gap_s`` = first INVITE of the retry − first copy of the failure response. The retry
*honoured* Retry-After when ``gap_s >= N`` (N = delta-seconds, RFC 3261 §20.33) and came
*too early* when ``gap_s < N``. A failure without a usable Retry-After value (absent or
malformed) has no verdict (``honoured`` is NA).

A 503's Retry-After speaks for the server, not the callee (RFC 3261 §21.5.4): for 503 the
``server_*`` columns also follow the next INVITE from the same client host (any port, any
caller) to the same server address:port.

Retry-After figures count unique responses (retransmissions removed), every method, as the
clients got them: at a proxy a relayed response counts once, on the client's leg
(:mod:`.legs`), and a failure that stopped at the proxy (a 503 it turned into 500) not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sipstats import schema

#: Codes that invite a retry, listed first in the summaries (RFC 3261 §21.4.18, §21.4.25, §21.5.4).
RETRY_CODES = (480, 486, 503)

_URI = (
    r"^\s*<?\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?"  # scheme
    r"(?:(?P<user>[^@;?>]*)@)?"  # userinfo
    r"(?P<host>\[[^\]]*\]|[^:;?>\s]*)"  # host (IPv6 reference or name / IPv4)
)


def _per_value(values: pd.Series, func: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``func`` applied to the distinct values only, spread back over ``values`` (str, NA kept).

    Columns are categorical with few distinct values, so string work stays small.
    """
    cat = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    distinct = pd.Series(cat.cat.categories.astype("str"), dtype="str")
    # one extra NA slot at the end: code -1 (a missing value) picks it
    lookup = np.concatenate([func(distinct).to_numpy(dtype=object), np.array([None], dtype=object)])
    return pd.Series(lookup[cat.cat.codes.to_numpy()], index=values.index, dtype="str")


def _uri_key_of(values: pd.Series) -> pd.Series:
    parts = values.str.extract(_URI).astype("str")
    user = parts["user"].str.replace(r":.*", "", regex=True)  # drop a password (RFC 3261 §19.1.1)
    host = parts["host"].str.lower()
    key = (user + "@" + host).where(user.notna() & (user != ""), host)
    return key.where(key != "")


def uri_key(uris: pd.Series) -> pd.Series:
    """``user@host`` of each URI (scheme, password, port, parameters dropped; host lower-case).

    A URI without a user gives its host; NA and empty stay NA.
    """
    return _per_value(uris, _uri_key_of)


def _host(endpoints: pd.Series) -> pd.Series:
    """Host part of ``address:port`` strings (``[v6]:port`` or ``v6:port`` alike)."""

    def host_of(text: pd.Series) -> pd.Series:
        return text.str.rsplit(":", n=1).str[0].where(text.str.contains(":"), text)

    return _per_value(endpoints, host_of)


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps by position as UTC, also when a merge left them all missing (object dtype)."""
    out = values.reset_index(drop=True)
    if str(out.dtype) != schema.UTC_TS:
        out = pd.to_datetime(out, utc=True).astype(schema.UTC_TS)
    return out


def _gap_s(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """``later - earlier`` in seconds (NaN where either is missing), aligned by position."""
    return (_utc(later) - _utc(earlier)).dt.total_seconds().astype("float64")


def _failures(attempts: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Failed attempts (keyed calls) with the failure response's Retry-After."""
    status = attempts["final_status"]
    failed = attempts[
        status.ge(300).fillna(False) & attempts["answer_ts"].isna() & attempts["final_ts"].notna()
    ]
    failed = failed.assign(
        call_id_s=failed["call_id"].astype("str"),
        from_tag_s=failed["from_tag"].astype("str").fillna(""),
    )
    failed = _drop_answered_challenges(failed, messages)
    return _attach_retry_after(failed, messages)


def _drop_answered_challenges(failed: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """RFC 3261 §22.2: a 401/407 answered by an authenticated INVITE is part of the call."""
    challenged = failed["final_status"].isin([401, 407])
    if not challenged.any():
        return failed
    auth = messages[
        messages["is_request"] & (messages["method"] == "INVITE") & messages["has_auth"]
    ]
    last_auth = (
        auth.assign(
            call_id_s=auth["call_id"].astype("str"),
            from_tag_s=auth["from_tag"].astype("str").fillna(""),
        )
        .groupby(["call_id_s", "from_tag_s"])["ts"]
        .max()
        .rename("last_auth_ts")
    )
    joined = failed.join(last_auth, on=["call_id_s", "from_tag_s"])
    answered = challenged & (joined["last_auth_ts"] > joined["final_ts"]).fillna(False)
    return failed[~answered.to_numpy()]


def _attach_retry_after(failed: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Retry-After (value and text) of the response copy nearest to each failure's final_ts."""
    resp = messages[
        ~messages["is_request"]
        & (messages["cseq_method"] == "INVITE")
        & messages["status"].ge(300).fillna(False)
        & ~messages["retransmission"]
        & messages["client_leg"]
    ]
    resp = pd.DataFrame(
        {
            "call_id_s": resp["call_id"].astype("str"),
            "from_tag_s": resp["from_tag"].astype("str").fillna(""),
            "final_status": resp["status"].astype("Int16"),
            "resp_ts": resp["ts"],
            "retry_after": resp["retry_after"].astype("Int64"),
            "retry_after_raw": resp["retry_after_raw"].astype("str"),
        }
    ).sort_values("resp_ts", kind="stable")
    left = failed.assign(final_status=failed["final_status"].astype("Int16")).sort_values(
        "final_ts", kind="stable"
    )
    merged = pd.merge_asof(
        left,
        resp,
        left_on="final_ts",
        right_on="resp_ts",
        by=["call_id_s", "from_tag_s", "final_status"],
        direction="nearest",
    )
    return merged.sort_values("call", kind="stable").reset_index(drop=True)


def _next_attempt(failed: pd.DataFrame, attempts: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """For each failure, the first attempt with the same ``by`` keys starting at/after final_ts."""
    left = failed[["call", "final_ts", *by]].dropna(subset=by).sort_values("final_ts")
    right = (
        attempts[["call", "call_id", "start_ts", *by]]
        .dropna(subset=by)
        .rename(columns={"call": "next_call", "call_id": "next_call_id", "start_ts": "next_ts"})
        .sort_values("next_ts", kind="stable")
    )
    linked = pd.merge_asof(
        left, right, left_on="final_ts", right_on="next_ts", by=by, direction="forward"
    )
    return linked.set_index("call")[["next_call", "next_call_id", "next_ts"]]


def retry_table(calls: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """One row per failed INVITE attempt with its retry (if any), conforming to ``schema.RETRIES``.

    ``calls`` conforms to ``schema.CALLS``; ``messages`` is the analysed messages table
    (``schema.MESSAGES`` + ``retransmission``). See the module docstring for the rules.
    """
    if calls.empty:
        return schema.empty(schema.RETRIES)
    attempts = calls.assign(
        caller_key=uri_key(calls["caller"]),
        target_key=uri_key(calls["request_uri"]).fillna(uri_key(calls["callee"])),
        client=_host(calls["src"]),
        server=calls["dst"].astype("str"),
    )
    failed = _failures(attempts, messages)
    if failed.empty:
        return schema.empty(schema.RETRIES)

    retry = _next_attempt(failed, attempts, ["caller_key", "target_key"]).reindex(failed["call"])
    is_503 = (failed["final_status"] == 503).fillna(False).to_numpy()
    server = _next_attempt(failed[is_503], attempts, ["client", "server"]).reindex(failed["call"])

    n = failed["retry_after"].astype("Int64")
    gap = _gap_s(retry["next_ts"], failed["final_ts"])
    server_gap = _gap_s(server["next_ts"], failed["final_ts"])
    retried = retry["next_call"].notna().to_numpy()
    server_retried = pd.array(server["next_call"].notna().to_numpy(), dtype="boolean")
    server_retried[~is_503] = pd.NA

    out = pd.DataFrame(
        {
            "call": failed["call"].to_numpy(),
            "call_id": failed["call_id"].astype("str").to_numpy(),
            "caller": failed["caller_key"].to_numpy(),
            "callee": failed["target_key"].to_numpy(),
            "src": failed["src"].astype("str").to_numpy(),
            "dst": failed["dst"].astype("str").to_numpy(),
            "status": failed["final_status"].to_numpy(),
            "final_ts": _utc(failed["final_ts"]),
            "retry_after": n.to_numpy(),
            "retry_after_raw": failed["retry_after_raw"].to_numpy(),
            "retried": retried,
            "retry_call": retry["next_call"].astype("Int64").to_numpy(),
            "retry_call_id": retry["next_call_id"].astype("str").to_numpy(),
            "retry_ts": _utc(retry["next_ts"]),
            "gap_s": gap.to_numpy(),
            "honoured": _verdict(gap, n),
            "server_retried": server_retried,
            "server_retry_call": server["next_call"].astype("Int64").to_numpy(),
            "server_retry_ts": _utc(server["next_ts"]),
            "server_gap_s": server_gap.to_numpy(),
            "server_honoured": _verdict(server_gap, n),
        }
    )
    return schema.conform(out.sort_values("final_ts", kind="stable"), schema.RETRIES)


def within_window(table: pd.DataFrame, calls: int, end: pd.Timestamp) -> pd.DataFrame:
    """Rows of a retry table built on a window and what followed it, for the window alone.

    Keeps the failures of the window's ``calls`` (the first calls) whose final came before
    ``end``. A retry after the window keeps its time and gap but no call number
    (``retry_call``/``server_retry_call`` NA): that call is not in the window's calls table.
    """
    out = table[(table["call"] < calls) & (table["final_ts"] < end)].copy()
    for column in ("retry_call", "server_retry_call"):
        out[column] = out[column].where(out[column] < calls)
    return schema.conform(out, schema.RETRIES)


def _verdict(gap: pd.Series, retry_after: pd.Series) -> pd.arrays.BooleanArray:
    """gap >= Retry-After; NA without a gap or without a Retry-After value."""
    limit = retry_after.astype("Float64").to_numpy()
    g = pd.array(gap.to_numpy(), dtype="Float64")
    return pd.array(g >= limit, dtype="boolean")


def _unique_responses(messages: pd.DataFrame) -> pd.DataFrame:
    """Responses as their clients got them: no retransmission, no relayed copy on another leg."""
    return messages[~messages["is_request"] & ~messages["retransmission"] & messages["client_leg"]]


def retry_after_values(messages: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Retry-After delta-seconds per code over unique responses: ``{"503": {"10": 59}}``.

    Malformed values (header present, no delta-seconds) are not guessed; see
    :func:`retry_after_summary` for their count.
    """
    resp = _unique_responses(messages)
    resp = resp[resp["retry_after"].notna()]
    counts = (
        pd.DataFrame(
            {"code": resp["status"].astype("int64"), "value": resp["retry_after"].astype("int64")}
        )
        .value_counts()
        .reset_index()
        .sort_values(["code", "value"])
    )
    out: dict[str, dict[str, int]] = {}
    for code, value, count in counts.itertuples(index=False):
        out.setdefault(f"{code:03d}", {})[str(value)] = int(count)
    return out


def _values_text(values: dict[str, int]) -> str:
    """``{"60": 88, "10": 2}`` -> ``'60x88|10x2'`` (most frequent first, then by value)."""
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], int(kv[0])))
    return "|".join(f"{value}x{count}" for value, count in ranked)


def retry_after_summary(messages: pd.DataFrame, retries: pd.DataFrame) -> pd.DataFrame:
    """Per code (480, 486, 503 first, then every other code): Retry-After and retry figures.

    Rows: every code whose unique responses carried Retry-After, and every code of a failed
    attempt. Columns: ``schema.RETRY_AFTER``.
    """
    resp = _unique_responses(messages)
    resp = resp[resp["status"].notna()]
    code = resp["status"].astype("int64")
    has_ra = resp["retry_after_raw"].notna()
    per_response = pd.DataFrame(
        {
            "responses": code.value_counts(),
            "with_retry_after": code[has_ra].value_counts(),
            "malformed": code[has_ra & resp["retry_after"].isna()].value_counts(),
        }
    )
    r = retries.assign(code=retries["status"].astype("int64"))
    retried = r["retried"]
    verdict = r["honoured"]
    is_503 = r["code"] == 503
    per_attempt = pd.DataFrame(
        {
            "failures": r["code"].value_counts(),
            "retried": r.loc[retried, "code"].value_counts(),
            "honoured": r.loc[verdict.fillna(False).astype(bool), "code"].value_counts(),
            "too_early": r.loc[(~verdict).fillna(False).astype(bool), "code"].value_counts(),
            "without_retry_after_retried": r.loc[
                retried & r["retry_after"].isna(), "code"
            ].value_counts(),
            "not_retried": r.loc[~retried, "code"].value_counts(),
        }
    )
    server = pd.DataFrame(
        {
            "server_retried": r.loc[
                is_503 & r["server_retried"].fillna(False).astype(bool), "code"
            ].value_counts(),
            "server_honoured": r.loc[
                is_503 & r["server_honoured"].fillna(False).astype(bool), "code"
            ].value_counts(),
            "server_too_early": r.loc[
                is_503 & (~r["server_honoured"]).fillna(False).astype(bool), "code"
            ].value_counts(),
        }
    )
    codes = sorted(
        set(code[has_ra].unique()) | set(r["code"].unique()),
        key=lambda c: (c not in RETRY_CODES, c),
    )
    table = pd.concat([per_response, per_attempt], axis=1).reindex(codes).fillna(0).astype("int64")
    server = server.reindex(codes).astype("Int64")
    server.loc[server.index == 503] = server.loc[server.index == 503].fillna(0)
    values = retry_after_values(messages)
    table.insert(3, "values", [_values_text(values.get(f"{c:03d}", {})) for c in codes])
    table = pd.concat([table, server], axis=1)
    table.insert(0, "code", [f"{c:03d}" for c in codes])
    table = table.reset_index(drop=True)
    return schema.conform(table, schema.RETRY_AFTER)


def early_retriers(retries: pd.DataFrame) -> pd.DataFrame:
    """Callers that retried before Retry-After, most too-early retries first.

    Columns: caller, retries_too_early, retries (all their retries), worst_gap_s (the
    shortest gap of a too-early retry).
    """
    done = retries[retries["retried"]]
    early = (~done["honoured"]).fillna(False).astype(bool)
    table = pd.DataFrame(
        {
            "retries_too_early": early.groupby(done["caller"], observed=True).sum(),
            "retries": done.groupby("caller", observed=True).size(),
            "worst_gap_s": done["gap_s"].where(early).groupby(done["caller"], observed=True).min(),
        }
    )
    table = table[table["retries_too_early"] > 0].rename_axis("caller").reset_index()
    table = table.astype(
        {
            "caller": "str",
            "retries_too_early": "int64",
            "retries": "int64",
            "worst_gap_s": "float64",
        }
    )
    return table.sort_values(
        ["retries_too_early", "worst_gap_s", "caller"], ascending=[False, True, True]
    ).reset_index(drop=True)


def by_retry_after(retries: pd.DataFrame) -> pd.DataFrame:
    """Retry verdicts per code and Retry-After value (failures with a usable value only).

    Columns: code ('503'), retry_after (s), failures, honoured, too_early, not_retried;
    by code, then value. Shows whether callers respect a long value as well as a short one.
    """
    known = retries[retries["retry_after"].notna()]
    verdict = known["honoured"]
    keys = [known["status"].astype("int64").rename("code"), known["retry_after"].astype("int64")]
    table = pd.DataFrame(
        {
            "failures": known.groupby(keys).size(),
            "honoured": verdict.fillna(False).astype(bool).groupby(keys).sum(),
            "too_early": (~verdict).fillna(False).astype(bool).groupby(keys).sum(),
            "not_retried": (~known["retried"]).groupby(keys).sum(),
        }
    )
    table = table.astype("int64").reset_index()
    table["code"] = table["code"].map("{:03d}".format)
    return table.astype({"code": "str", "retry_after": "int64"})


#: Verdicts that :func:`gap_summary` describes, in its row order.
GAP_VERDICTS = ("honoured", "too_early", "without_retry_after")


def gap_summary(retries: pd.DataFrame) -> pd.DataFrame:
    """Gaps to the retry per verdict: how long callers waited, and in multiples of Retry-After.

    One row per :data:`GAP_VERDICTS` entry: verdict, retries, min_s, median_s, mean_s, p90_s,
    p95_s, max_s (nearest-rank percentiles), min_ratio, median_ratio, max_ratio (gap / N;
    NaN without Retry-After).
    """
    done = retries[retries["retried"]]
    verdict = pd.Series(
        np.select(
            [
                done["honoured"].fillna(False).astype(bool),
                (~done["honoured"]).fillna(False).astype(bool),
            ],
            ["honoured", "too_early"],
            default="without_retry_after",
        ),
        index=done.index,
    )
    ratio = done["gap_s"] / done["retry_after"].astype("float64")
    rows = []
    for name in GAP_VERDICTS:
        gaps, ratios = done["gap_s"][verdict == name], ratio[verdict == name]
        rows.append(
            {
                "verdict": name,
                "retries": len(gaps),
                "min_s": gaps.min(),
                "median_s": gaps.median(),
                "mean_s": gaps.mean(),
                "p90_s": gaps.quantile(0.9, interpolation="nearest"),
                "p95_s": gaps.quantile(0.95, interpolation="nearest"),
                "max_s": gaps.max(),
                "min_ratio": ratios.min(),
                "median_ratio": ratios.median(),
                "max_ratio": ratios.max(),
            }
        )
    return pd.DataFrame(rows).astype({"verdict": "str", "retries": "int64"})


def storms(retries: pd.DataFrame, *, window: str = "10s", threshold: int = 10) -> pd.DataFrame:
    """Retry storms: at least ``threshold`` pressing retries to one server within ``window``.

    The default (10 in 10 s: one pressing retry per second, sustained) flags a server that
    is being hammered, not the odd impatient caller (:func:`early_retriers` lists those).

    A *pressing* retry came too early (gap < Retry-After) or followed a 503 that gave no
    Retry-After (the server was overloaded and asked for nothing, RFC 3261 §21.5.4).
    Every window of ``window`` length that starts at a pressing retry and holds at least
    ``threshold`` of them marks its retries; overlapping marked windows merge into one storm.
    Columns: ``schema.STORMS``.
    """
    early = (~retries["honoured"]).fillna(False).astype(bool)
    after_bare_503 = (retries["status"] == 503).fillna(False) & retries["retry_after"].isna()
    pressing = retries[retries["retried"] & (early | after_bare_503)]
    events = pd.DataFrame(
        {
            "target": pressing["dst"].astype("str"),
            "ts": pressing["retry_ts"],
            "early": early[pressing.index],
            "caller": pressing["caller"].astype("str"),
        }
    ).sort_values(["target", "ts"], kind="stable")
    span = pd.Timedelta(window).value
    rows = []
    for target, group in events.groupby("target", sort=True):
        rows.extend(_storms_of(str(target), group, span, threshold))
    table = schema.conform(pd.DataFrame(rows, columns=list(schema.STORMS)), schema.STORMS)
    return table.sort_values(["start_ts", "target"], kind="stable").reset_index(drop=True)


def _storms_of(target: str, group: pd.DataFrame, span: int, threshold: int) -> list[dict[str, Any]]:
    """Storms towards one target: windows marked with searchsorted, then merged."""
    t = group["ts"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64")
    first = np.arange(len(t))
    last = np.searchsorted(t, t + span, side="right") - 1
    hot = (last - first + 1) >= threshold
    if not hot.any():
        return []
    starts, ends = first[hot], last[hot]
    reach = np.maximum.accumulate(ends)
    new = np.r_[True, starts[1:] > reach[:-1]]
    out = []
    for begin, end in zip(
        starts[new], np.r_[reach[np.flatnonzero(new)[1:] - 1], reach[-1]], strict=True
    ):
        part = group.iloc[begin : end + 1]
        out.append(
            {
                "start_ts": part["ts"].iloc[0],
                "end_ts": part["ts"].iloc[-1],
                "target": target,
                "retries": len(part),
                "early_retries": int(part["early"].sum()),
                "callers": part["caller"].nunique(),
            }
        )
    return out
