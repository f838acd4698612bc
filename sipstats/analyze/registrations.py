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
from sipstats.analyze import keys

#: The columns of :func:`sipstats.analyze.transactions.build`'s frame a registration reads.
COLUMNS = (
    *("call_id", "from_tag", "to_uri", "client", "server", "request_ts", "final_ts"),
    *("final_status", "min_expires", "expires"),
)
#: Final responses after which the UA is expected to send another REGISTER.
RECOVERABLE = (401, 407, 423)
CHALLENGES = (401, 407)


def build(transactions: pd.DataFrame) -> pd.DataFrame:
    """REGISTRATIONS from :func:`sipstats.analyze.transactions.build`'s wide frame."""
    # a REGISTER without a Call-ID belongs to no UA
    t = transactions
    wanted = (t["method"] == "REGISTER") & t["request_ts"].notna() & t["call_id"].notna()
    rows = np.flatnonzero(wanted.to_numpy(dtype=bool))
    if not len(rows):
        return schema.empty(schema.REGISTRATIONS)
    # by UA, then by time
    ua = _user_agents(t, rows)
    order = np.lexsort((keys.ns(t["request_ts"])[rows], ua))
    ua = ua[order]
    # the columns read below only: the transactions' other columns are not copied
    reg = t[list(COLUMNS)].iloc[rows[order]].reset_index(drop=True)
    final = reg["final_status"]
    ends = ~final.isin(RECOVERABLE).fillna(False).to_numpy(dtype=bool)
    # An attempt starts at a new UA and after a final that asks for nothing more.
    starts = np.r_[True, (ua[1:] != ua[:-1]) | ends[:-1]]
    attempt = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(reg)] - 1
    n = len(first)

    def first_known(column: str) -> pd.api.extensions.ExtensionArray:
        values = reg[column]
        return values.array.take(
            keys.first_in_group(attempt, values.notna().to_numpy(), n), allow_fill=True
        )

    def last_known(column: str) -> pd.api.extensions.ExtensionArray:
        values = reg[column]
        return values.array.take(
            keys.last_in_group(attempt, values.notna().to_numpy(), n), allow_fill=True
        )

    challenge = final.isin(CHALLENGES).fillna(False).to_numpy(dtype=bool)
    after_challenge = np.r_[False, challenge[:-1] & ~starts[1:]]
    texts = final.astype("str").fillna("none").tolist()
    out = pd.DataFrame(
        {
            "aor": first_known("to_uri"),
            "call_id": first_known("call_id"),
            "src": first_known("client"),
            "dst": first_known("server"),
            "start_ts": reg["request_ts"].array.take(first),
            "final_ts": reg["final_ts"].array.take(last),
            "requests": last - first + 1,
            "challenges": keys.count_in_group(attempt, challenge, n),
            "answered": keys.count_in_group(attempt, after_challenge, n) > 0,
            "interval_too_brief": keys.count_in_group(
                attempt, (final == 423).fillna(False).to_numpy(dtype=bool), n
            ),
            "min_expires": last_known("min_expires"),
            "expires": last_known("expires"),
            "finals": ["-".join(texts[a : b + 1]) for a, b in zip(first, last, strict=True)],
            "final_status": final.array.take(last).astype("Int16"),
        }
    )
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


def _user_agents(transactions: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Each of ``rows``'s UA as its rank in the order of the text ``Call-ID\\nFrom tag`` (no
    tag: empty): registrations are numbered in that order. The text is made once per
    distinct Call-ID and From tag, not once per transaction."""
    call_id, from_tag = transactions["call_id"], transactions["from_tag"]
    pair = keys.group_ids(keys.codes_at(call_id, rows), keys.codes_at(from_tag, rows))
    first = rows[keys.first_appearances(pair)]
    texts = call_id.iloc[first].astype("str") + "\n" + from_tag.iloc[first].astype("str").fillna("")
    named = keys.categorical(pd.Index(texts, dtype="str"), np.arange(len(first)))
    return np.asarray(named.codes, dtype=np.int64)[pair]
