"""Registrations stage: REGISTER transactions -> REGISTRATIONS (one row per attempt).

An attempt is a run of REGISTER transactions of one UA (Call-ID + From tag; RFC 3261 §10.2
keeps the Call-ID for a registrar, §22.2 the credentialed retry increments CSeq) that ends at
the first final response which asks for nothing more: a 2xx, a failure, or no response at all.
401/407 (challenge) and 423 (Interval Too Brief, retried with a longer Expires, §10.2.8) are
recoverable and keep the attempt open, so ``423-401-200`` is one successful attempt and its
RRD spans all three transactions (the RFC 6076 §4 preamble: an end time is a final response
"for which there is no recovery"; §4.1's figure includes the challenge). A later refresh in
the same Call-ID starts a new attempt.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sipstats import schema

#: Final responses after which the UA is expected to send another REGISTER.
RECOVERABLE = (401, 407, 423)
CHALLENGES = (401, 407)


def build(transactions: pd.DataFrame) -> pd.DataFrame:
    """REGISTRATIONS from :func:`sipstats.analyze.transactions.build`'s wide frame."""
    reg = transactions[
        (transactions["method"] == "REGISTER") & transactions["request_ts"].notna()
    ].copy()
    if reg.empty:
        return schema.empty(schema.REGISTRATIONS)
    reg["_ua"] = reg["call_id"].astype("str") + "\n" + reg["from_tag"].astype("str").fillna("")
    reg = reg.sort_values(["_ua", "request_ts"], kind="stable")
    final = reg["final_status"]
    ends = ~final.isin(RECOVERABLE).fillna(False).to_numpy(dtype=bool)
    ends_s = pd.Series(ends, index=reg.index)
    # Attempt number within the UA: how many attempts ended before this transaction.
    before = ends_s.groupby(reg["_ua"], sort=False).cumsum() - ends_s
    reg["_attempt"] = reg.groupby([reg["_ua"], before], sort=False).ngroup()
    challenge = final.isin(CHALLENGES).fillna(False)
    reg["_challenge"] = challenge.to_numpy(dtype=bool)
    reg["_after_challenge"] = (
        reg["_challenge"].groupby(reg["_attempt"]).shift(fill_value=False).astype(bool)
    )
    reg["_423"] = (final == 423).fillna(False).to_numpy(dtype=bool)
    reg["_final_text"] = final.astype("str").fillna("none")
    g = reg.groupby("_attempt", sort=True)
    out = g.agg(
        aor=("to_uri", "first"),
        call_id=("call_id", "first"),
        src=("client", "first"),
        dst=("server", "first"),
        start_ts=("request_ts", "min"),
        final_ts=("final_ts", "last"),
        requests=("request_ts", "size"),
        challenges=("_challenge", "sum"),
        answered=("_after_challenge", "any"),
        interval_too_brief=("_423", "sum"),
        min_expires=("min_expires", "last"),
        expires=("expires", "last"),
        finals=("_final_text", "-".join),
    )
    last = reg.drop_duplicates("_attempt", keep="last").set_index("_attempt")
    out["final_status"] = last["final_status"].astype("Int16")
    out["final_ts"] = last["final_ts"]
    out = out.reset_index(drop=True)
    out["registration"] = np.arange(len(out), dtype=np.int64)
    out["challenge_answered"] = out["answered"].astype("boolean")
    out.loc[out["challenges"] == 0, "challenge_answered"] = pd.NA
    status = out["final_status"].astype("float64")
    ok = ((status >= 200) & (status < 300)).to_numpy()
    out["rrd_ms"] = ((out["final_ts"] - out["start_ts"]).dt.total_seconds() * 1000.0).where(ok)
    out["outcome"] = np.select(
        [ok, status.isna().to_numpy(), out["final_status"].isin(CHALLENGES).to_numpy()],
        ["registered", "no_final_response", "challenged_unanswered"],
        default="failed",
    )
    return schema.conform(out, schema.REGISTRATIONS)
