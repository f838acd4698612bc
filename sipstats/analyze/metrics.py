"""Metrics stage: calls, transactions, registrations -> RFC 6076 metrics and operator KPIs.

Every metric is one row: name, value (NaN = undefined, RFC 6076 §4: "When the denominator of
this ratio is 0, the metric is undefined"), unit, samples (the denominator or the number of
delays averaged), a one-sentence definition and its reference. Delays are means.

Counting choices (RFC 6076 leaves them open; see each function): a "session request" is a
call (Call-ID + From tag, 401/407 challenges folded in, §5.3 and the §4.8/§4.9 examples),
not an INVITE transaction; retransmissions never count (§4); calls still in progress at the
end of the capture are censored (left out of numerator and denominator). Only 3XX is
subtracted from the SER/SEER denominators, as the published RFC says (§4.6, §4.7); some
drafts and tools also subtract 401/402/407. One capture has one clock: the clock offset the
RFC asks to report (§3) is 0 between messages and unknown to UTC.

Legs: at a proxy one capture holds the caller's leg and the callee's (same Call-ID). Like the
calls, the transaction-based metrics (SDD, SER_transactions) count on the caller's leg only:
a transaction of a call's Call-ID between other addresses than the call's first INVITE
(:func:`caller_leg_rows`) is left out, so one BYE is one disconnect, not two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.analyze.transactions import codes, recode

#: §4.7: responses that "clearly indicate the effect of an individual user of the UA".
SEER_CODES = (200, 480, 486, 600, 603)
#: §4.8: Ineffective Session Attempt responses, the RFC's guideline list exactly.
ISA_CODES = (408, 500, 503, 504)
#: ITU-T E.411 NER: answered, user busy, no answer / ring no answer, terminal rejection.
NER_OUTCOMES = ("answered", "busy", "unavailable", "declined", "cancelled")


def _row(
    name: str, value: float, unit: str, samples: int, definition: str, ref: str
) -> dict[str, object]:
    return {
        "name": name,
        "value": float(value),
        "unit": unit,
        "samples": int(samples),
        "definition": definition,
        "reference": ref,
    }


def _ratio(numerator: int, denominator: int) -> float:
    """Percentage, NaN when the denominator is 0 (RFC 6076 §4)."""
    return 100.0 * numerator / denominator if denominator else float("nan")


def _mean(values: pd.Series) -> tuple[float, int]:
    v = values.dropna()
    return (float(v.mean()) if len(v) else float("nan")), len(v)


def rrd(registrations: pd.DataFrame) -> dict[str, object]:
    """RFC 6076 §4.1 RRD: first REGISTER of a successful attempt -> its 2xx, in ms.

    Successful attempts only; the attempt spans 401/407 challenges and 423 re-tries
    (see :mod:`sipstats.analyze.registrations`).
    """
    value, n = _mean(registrations["rrd_ms"])
    return _row(
        "RRD",
        value,
        "ms",
        n,
        "Mean time from the first REGISTER of a successful registration to its 2xx, "
        "challenges included.",
        "RFC 6076 §4.1",
    )


def ira(registrations: pd.DataFrame) -> dict[str, object]:
    """RFC 6076 §4.2 IRA: attempts ending in 4xx (not 401/402/407), 5xx, 6xx or no response.

    Per registration attempt, so the credentialed REGISTER after a 401 is not a second
    request; an attempt left at an unanswered 401/407 is not a failure response.
    """
    status = registrations["final_status"].astype("float64")
    failed = ((status >= 400) & ~status.isin((401, 402, 407))) | status.isna()
    return _row(
        "IRA",
        _ratio(int(failed.sum()), len(registrations)),
        "%",
        len(registrations),
        "Registration attempts ending in a failure (4xx except 401/402/407, 5xx, 6xx) or "
        "without a final response, per 100 attempts.",
        "RFC 6076 §4.2",
    )


def srd(calls: pd.DataFrame) -> list[dict[str, object]]:
    """RFC 6076 §4.3 SRD, successful (§4.3.1) and failed (§4.3.2) setups apart, in seconds.

    t1 = first INVITE of the call (before any challenge). Success: t4 = first 18x (the
    "non-100 Trying provisional" indicating audible or visual status), else the 2xx. Failure
    (final 4xx other than 401/402/407, 5xx, 6xx; calls cancelled by the caller are left out):
    t4 = first 18x, else the failure response.
    """
    status = calls["final_status"].to_numpy(dtype="float64", na_value=np.nan)
    outcome = calls["outcome"]
    answered = (outcome == "answered").to_numpy(dtype=bool)
    failed = (
        (status >= 400)
        & ~np.isin(status, (401, 402, 407))
        & (outcome != "cancelled").to_numpy(dtype=bool)
    )

    def setup_s(rows: np.ndarray, otherwise: str) -> pd.Series:
        """t4 - t1 of the calls at ``rows``: t4 the first 18x, else ``otherwise``."""
        t4 = calls["ringing_ts"][rows].fillna(calls[otherwise][rows])
        return (t4 - calls["start_ts"][rows]).dt.total_seconds()

    ok_s, fail_s = setup_s(answered, "answer_ts"), setup_s(failed, "final_ts")
    ok, n_ok = _mean(ok_s)
    bad, n_bad = _mean(fail_s)
    return [
        _row(
            "SRD_success",
            ok,
            "s",
            n_ok,
            "Mean time from a call's first INVITE to its first non-100 provisional response "
            "(or 2xx), answered calls.",
            "RFC 6076 §4.3.1",
        ),
        _row(
            "SRD_failure",
            bad,
            "s",
            n_bad,
            "Mean time from a call's first INVITE to its first non-100 provisional response "
            "or failure response, failed calls (cancelled ones left out).",
            "RFC 6076 §4.3.2",
        ),
    ]


def caller_leg_rows(transactions: pd.DataFrame, calls: pd.DataFrame) -> np.ndarray:
    """Where a transaction is not on another leg of a call (a mask): the caller's view.

    A transaction whose Call-ID belongs to a call is kept when its two addresses are the
    call's (``src``/``dst`` of its first INVITE, either direction: the callee may send the
    BYE); transactions of Call-IDs that no call has (a capture that starts mid-call,
    OPTIONS, REGISTER) are all kept.
    """
    call_ids = transactions["call_id"]
    ends = transactions["client"].cat.categories.union(transactions["server"].cat.categories)

    def codes_in(column: pd.Series, categories: pd.Index) -> np.ndarray:
        return recode(column.astype("category"), categories)

    call = codes_in(calls["call_id"], call_ids.cat.categories)
    src, dst = codes_in(calls["src"], ends), codes_in(calls["dst"], ends)
    client = codes_in(transactions["client"], ends)
    server = codes_in(transactions["server"], ends)
    tx_call = codes(call_ids)
    # Most Call-IDs hold one call: its two addresses are compared with the transaction's; a
    # Call-ID of several calls looks its transactions' keys up among all their legs.
    of_call = call >= 0
    calls_of = np.bincount(call[of_call], minlength=len(call_ids.cat.categories) + 1)
    calls_of[-1] = 0  # code -1: no Call-ID
    one_src = np.full(len(calls_of), -1, dtype=np.int64)
    one_dst = np.full(len(calls_of), -1, dtype=np.int64)
    one_src[call[of_call]], one_dst[call[of_call]] = src[of_call], dst[of_call]
    a, b = one_src[tx_call], one_dst[tx_call]
    known = (client >= 0) & (server >= 0) & (a >= 0) & (b >= 0)
    keep = (calls_of[tx_call] == 0) | (
        known & (((client == a) & (server == b)) | ((client == b) & (server == a)))
    )
    several = np.flatnonzero(calls_of[tx_call] > 1)
    if len(several):
        # one key for Call-ID x endpoint x endpoint, over both tables at once
        key = _leg_keys(
            np.concatenate([tx_call[several], call, call]),
            np.concatenate([client[several], src, dst]),
            np.concatenate([server[several], dst, src]),
            calls=len(call_ids.cat.categories),
            ends=len(ends),
        )
        legs = key[len(several) :]
        keep[several] = keys.isin(key[: len(several)], legs[legs >= 0])
    return keep


def _leg_keys(
    call: np.ndarray, one: np.ndarray, other: np.ndarray, *, calls: int, ends: int
) -> np.ndarray:
    """Call-ID x endpoint x endpoint codes (below ``calls``, ``ends``) as one int64, -1 where
    one is missing: packed as they are while that fits (no renumbering), else
    :func:`keys.combine`."""
    if calls * ends * ends >= 1 << 62:
        return keys.combine(call, one, other)
    valid = (call >= 0) & (one >= 0) & (other >= 0)
    return np.where(valid, (call * ends + one) * ends + other, -1)


def sdd(transactions: pd.DataFrame) -> list[dict[str, object]]:
    """RFC 6076 §4.4 SDD: BYE -> its final response, ms; 2xx and non-2xx apart.

    BYE transactions without a final response (Timer F) are left out, as §4.4 says.
    """
    bye = transactions[(transactions["method"] == "BYE") & transactions["request_ts"].notna()]
    status = bye["final_status"].astype("float64")
    ok_v, n_ok = _mean(bye["final_ms"].where((status >= 200) & (status < 300)))
    bad_v, n_bad = _mean(bye["final_ms"].where(status >= 300))
    return [
        _row(
            "SDD_success",
            ok_v,
            "ms",
            n_ok,
            "Mean time from a BYE to its 2xx (at a proxy: on the caller's leg).",
            "RFC 6076 §4.4",
        ),
        _row(
            "SDD_failure",
            bad_v,
            "ms",
            n_bad,
            "Mean time from a BYE to a final non-2xx response (disconnects that failed; at a "
            "proxy: on the caller's leg).",
            "RFC 6076 §4.4",
        ),
    ]


def sdt(calls: pd.DataFrame) -> list[dict[str, object]]:
    """RFC 6076 §4.5 SDT: 2xx to the first INVITE -> BYE, seconds; successful and failed.

    §4.5.1: the BYE received a 2xx. §4.5.2: the BYE got no final response, so the session
    ends at its Timer F expiry (BYE + 32 s). Calls still up at the end are censored.
    """
    status = calls["bye_status"].astype("float64")
    ok_v, n_ok = _mean(calls["duration_s"].where((status >= 200) & (status < 300)))
    timed_out = calls["end_ts"].notna() & status.isna()
    bad_v, n_bad = _mean((calls["duration_s"] + 32.0).where(timed_out))
    return [
        _row(
            "SDT_success",
            ok_v,
            "s",
            n_ok,
            "Mean time from the 2xx answering a call to its BYE, BYE answered with 2xx.",
            "RFC 6076 §4.5.1",
        ),
        _row(
            "SDT_failure",
            bad_v,
            "s",
            n_bad,
            "Mean time from the 2xx answering a call to the Timer F expiry (32 s) of a BYE "
            "that got no response.",
            "RFC 6076 §4.5.2",
        ),
    ]


def ser_seer(settled: pd.DataFrame) -> list[dict[str, object]]:
    """RFC 6076 §4.6 SER and §4.7 SEER, per session request; only 3XX leaves the denominator.

    ``settled``: the calls whose outcome is known (in-progress calls are censored), here and in
    :func:`isa`, :func:`scr` and :func:`operator_kpis`.
    """
    c = settled
    status = c["final_status"].astype("float64")
    denominator = int(len(c) - ((status >= 300) & (status < 400)).sum())
    return [
        _row(
            "SER",
            _ratio(int((status == 200).sum()), denominator),
            "%",
            denominator,
            "Calls answered with 200 per 100 calls, calls redirected with 3xx left out.",
            "RFC 6076 §4.6",
        ),
        _row(
            "SEER",
            _ratio(int(status.isin(SEER_CODES).sum()), denominator),
            "%",
            denominator,
            "Calls ending in 200, 480, 486, 600 or 603 per 100 calls, calls redirected with "
            "3xx left out.",
            "RFC 6076 §4.7",
        ),
    ]


def ser_per_transaction(transactions: pd.DataFrame) -> dict[str, object]:
    """RFC 6076 §4.6 SER read literally, per INVITE transaction (the variant).

    Every new-session INVITE transaction (no To tag, retransmissions excluded) counts, so a
    407-challenged INVITE stays in the denominator without a 200: each challenge lowers it.
    """
    invites = transactions[
        (transactions["method"] == "INVITE")
        & transactions["request_ts"].notna()
        & ~transactions["in_dialog"]
    ]
    status = invites["final_status"].astype("float64")
    denominator = int(len(invites) - ((status >= 300) & (status < 400)).sum())
    return _row(
        "SER_transactions",
        _ratio(int((status == 200).sum()), denominator),
        "%",
        denominator,
        "New-session INVITE transactions answered with 200 per 100 such transactions (each "
        "401/407 challenge counts), 3xx left out; at a proxy: on the caller's leg.",
        "RFC 6076 §4.6 (per transaction)",
    )


def isa(settled: pd.DataFrame) -> dict[str, object]:
    """RFC 6076 §4.8 ISA: calls ending in 408, 500, 503 or 504 per 100 session requests."""
    c = settled
    hits = int(c["final_status"].isin(ISA_CODES).sum())
    return _row(
        "ISA",
        _ratio(hits, len(c)),
        "%",
        len(c),
        "Calls ending in 408, 500, 503 or 504 per 100 calls.",
        "RFC 6076 §4.8",
    )


def scr(settled: pd.DataFrame) -> list[dict[str, object]]:
    """RFC 6076 §4.9 SCR in two readings.

    SCR (primary, reading A, the RFC's example): answered with 2xx and ended by a BYE that
    received a 2xx. SCR_literal (reading B): every call that did not fail for lack of response
    (no final response, 408, or a BYE that went unanswered). Answered calls without a BYE yet
    are still up: censored in both.
    """
    c = settled
    c = c[~((c["outcome"] == "answered") & c["end_ts"].isna())]
    bye = c["bye_status"].astype("float64")
    completed = (c["outcome"] == "answered") & (bye >= 200) & (bye < 300)
    no_response = (
        (c["outcome"] == "no_final_response")
        | (c["final_status"] == 408).fillna(False)
        | ((c["outcome"] == "answered") & bye.isna())
    )
    return [
        _row(
            "SCR",
            _ratio(int(completed.sum()), len(c)),
            "%",
            len(c),
            "Calls answered and ended by a BYE that got a 2xx, per 100 calls (calls still up "
            "at the end of the capture left out).",
            "RFC 6076 §4.9",
        ),
        _row(
            "SCR_literal",
            _ratio(int((~no_response).sum()), len(c)),
            "%",
            len(c),
            "Calls that did not fail for lack of a response (no final response, 408, "
            "unanswered BYE), per 100 calls.",
            "RFC 6076 §4.9 (literal reading)",
        ),
    ]


def operator_kpis(settled: pd.DataFrame) -> list[dict[str, object]]:
    """ASR and NER (ITU-T E.411 style), ACD and PDD as operators use them."""
    c = settled
    n = len(c)
    answered = int((c["outcome"] == "answered").sum())
    ner = int(c["outcome"].isin(NER_OUTCOMES).sum())
    acd, n_acd = _mean(c["duration_s"])
    pdd, n_pdd = _mean(c["pdd_ms"])
    return [
        _row(
            "ASR",
            _ratio(answered, n),
            "%",
            n,
            "Answer-seizure ratio: calls answered with 2xx per 100 settled calls (calls still "
            "in progress when the capture ends are left out of the denominator).",
            "operator KPI (ITU-T E.411)",
        ),
        _row(
            "NER",
            _ratio(ner, n),
            "%",
            n,
            "Network effectiveness ratio: calls answered, busy, unanswered, declined or "
            "cancelled by the caller (the network did its job) per 100 settled calls (calls "
            "still in progress when the capture ends left out).",
            "operator KPI (ITU-T E.411)",
        ),
        _row(
            "ACD",
            acd,
            "s",
            n_acd,
            "Average call duration: mean time from the 2xx to the BYE of answered calls.",
            "operator KPI",
        ),
        _row(
            "PDD",
            pdd,
            "ms",
            n_pdd,
            "Post-dial delay: mean time from a call's first INVITE to its first 18x (or its "
            "2xx when no 18x came).",
            "operator KPI",
        ),
    ]


#: The transaction columns SDD and SER_transactions read: the rows they count are copied
#: with these only.
_TRANSACTION_COLUMNS = ("method", "request_ts", "final_status", "final_ms", "in_dialog")


#: The call columns :func:`ser_seer`, :func:`isa`, :func:`scr` and :func:`operator_kpis` read.
_SETTLED_COLUMNS = ("outcome", "final_status", "end_ts", "bye_status", "duration_s", "pdd_ms")

#: The call columns the metrics read: each filter of the calls copies these only.
_CALL_COLUMNS = (
    *("call_id", "src", "dst", "start_ts", "ringing_ts", "answer_ts", "final_ts", "end_ts"),
    *("final_status", "bye_status", "outcome", "duration_s", "pdd_ms"),
)


def compute(
    calls: pd.DataFrame,
    transactions: pd.DataFrame,
    registrations: pd.DataFrame,
) -> pd.DataFrame:
    """Every metric, one row each, in the order reports list them."""
    calls = calls.loc[:, list(_CALL_COLUMNS)]
    t = transactions
    # only the transactions SDD and SER_transactions read are copied
    asked = (
        caller_leg_rows(t, calls)
        & t["method"].isin(("BYE", "INVITE")).to_numpy(dtype=bool)
        & t["request_ts"].notna().to_numpy(dtype=bool)
    )
    transactions = t.loc[asked, list(_TRANSACTION_COLUMNS)]
    settled = calls.loc[(calls["outcome"] != "in_progress").to_numpy(), list(_SETTLED_COLUMNS)]
    rows = [
        rrd(registrations),
        *srd(calls),
        *sdd(transactions),
        *sdt(calls),
        *ser_seer(settled),
        ser_per_transaction(transactions),
        isa(settled),
        *scr(settled),
        ira(registrations),
        *operator_kpis(settled),
    ]
    return schema.conform(pd.DataFrame(rows, columns=list(schema.METRICS)), schema.METRICS)
