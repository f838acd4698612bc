"""Calls stage: analysed messages + transactions -> CALLS (one row per INVITE dialog attempt).

A call is an out-of-dialog INVITE (no To tag) and everything that belongs to it, grouped by
Call-ID + From tag (RFC 3261 §12: the caller's half of the dialog id; §22.2: the INVITE
that answers a 401/407 challenge keeps Call-ID and From tag, so it folds into the same call,
as do re-INVITEs). In-dialog requests the callee sends (its BYE) carry the caller's tag in
To and are found through it.

Legs: a capture taken at a proxy holds the same Call-ID and From tag on the caller's leg and
on the callee's. A call is measured on the leg of its first INVITE (the caller's leg: the
pair of IP addresses that INVITE travelled between); messages of the same dialog on the pair
of addresses of another leg (another copy of the initial INVITE, relayed by a proxy) are left
out, so the outcome is what the caller saw. Messages of the dialog between any other pair of
addresses took another path and belong to the caller's leg: an ACK or BYE sent straight to
the remote target (RFC 3261 §12.2.1.1: the Contact) past a proxy that did not Record-Route,
or a UA that answers from one address and receives its BYE on another.

The final status is the first final response to the highest-CSeq out-of-dialog INVITE; the
outcome follows from it (:func:`outcome`). Calls whose INVITE saw no final response are
``in_progress`` when the capture ended while they were ringing (a provisional arrived, so
RFC 3261 §17.1.1.2 Timer B no longer runs) or within Timer B (64·T1 = 32 s) of the end, and
``no_final_response`` otherwise. A BYE in the dialog (it carries both tags) proves that a 2xx
confirmed it (RFC 3261 §15): such a call was ``answered`` and has ended even when its 2xx is
not in the capture; ``answer_missing`` flags it. A capture that starts mid-call (BYE or
responses without their INVITE) yields no call for that dialog.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import b2bua, keys
from sipstats.analyze.media import call_media
from sipstats.analyze.transactions import endpoints, recode

#: RFC 3261 §17.1.1.2 Timer B = 64·T1 with T1 = 500 ms.
TIMER_B = pd.Timedelta(seconds=32)

#: Final status -> outcome; codes absent here fall back to their class (:func:`outcome`).
OUTCOME_BY_CODE = {
    486: "busy",
    600: "busy",
    480: "unavailable",
    408: "unavailable",
    603: "declined",
    607: "declined",
    608: "declined",
    404: "not_found",
    604: "not_found",
    484: "not_found",
    485: "not_found",
    401: "auth_failed",
    407: "auth_failed",
    403: "auth_failed",
}


#: Position of each outcome in ``schema.OUTCOMES``: the codes of the calls' outcome column.
OUTCOME_CODE: Final = {name: code for code, name in enumerate(schema.OUTCOMES)}
_BY_CODE = np.full(1000, -1, dtype=np.int64)
for _status, _name in OUTCOME_BY_CODE.items():
    _BY_CODE[_status] = OUTCOME_CODE[_name]


def outcome(final_status: np.ndarray, cancelled: np.ndarray) -> np.ndarray:
    """Outcome of each final status (float, NaN for none) as an :data:`OUTCOME_CODE`.

    2xx answered; 3xx redirected; the codes of :data:`OUTCOME_BY_CODE`; 487 cancelled when the
    caller sent CANCEL (else rejected); other 4xx and 6xx rejected; 5xx server_failure.
    A 401/407 here is a challenge the caller never satisfied (it is the last INVITE's final).
    No final status gives -1 (decided by the caller from timing).
    """
    status = final_status
    known = ~np.isnan(status) & (status >= 0) & (status < len(_BY_CODE))
    by_code = np.where(known, _BY_CODE[np.where(known, status, 0).astype(np.int64)], -1)
    return np.select(
        [
            np.isnan(status),
            (status >= 200) & (status < 300),
            (status >= 300) & (status < 400),
            by_code >= 0,
            (status == 487) & cancelled,
            (status >= 500) & (status < 600),
            status >= 400,
        ],
        [
            -1,
            OUTCOME_CODE["answered"],
            OUTCOME_CODE["redirected"],
            by_code,
            OUTCOME_CODE["cancelled"],
            OUTCOME_CODE["server_failure"],
            OUTCOME_CODE["rejected"],
        ],
        default=-1,
    )


#: Member rows of the calls (positions in the messages, in order) and the call of each.
_Rows = tuple[np.ndarray, np.ndarray]

#: The columns a call takes from its first INVITE.
FIRST_INVITE_COLUMNS = (
    *("ts", "call_id", "from_tag", "from_uri", "to_uri", "request_uri"),
    *("src", "sport", "dst", "dport"),
    *b2bua.CORRELATION_COLUMNS.values(),
)


def _members(
    m: pd.DataFrame, initial: np.ndarray, sender: np.ndarray
) -> tuple[pd.DataFrame, _Rows, _Rows, np.ndarray, np.ndarray]:
    """First INVITE of each call, which rows belong to which call on its leg.

    ``sender`` is :func:`sipstats.analyze.keys.senders` of ``m``: a call is a Call-ID and
    From tag. Returns (first INVITE rows, the member requests and the member responses to
    INVITEs (:data:`_Rows`), call number of each row by its From tag and by its To tag, -1
    for none). A row
    belongs to a call when its Call-ID and From tag (or, for requests the callee sends, its
    To tag) match the call's and it travels between the first INVITE's addresses. The call by
    To tag is looked for only where it is read: rows without a call by From tag, and rows
    with a Reason (:func:`sipstats.analyze.media.call_media` finds the callee's BYE by it).
    """
    # calls are numbered in time order of their first INVITE; int32: the row-long call
    # numbers below are held through the rest of the step
    first_of = keys.first_in_group(sender, initial, int(sender.max()) + 1)
    first_row = np.sort(first_of[first_of >= 0])
    number = np.full(len(first_of) + 1, -1, dtype=np.int32)  # the last: no Call-ID (-1)
    number[sender[first_row]] = np.arange(len(first_row))
    by_from = number[sender]
    del first_of, number
    first = m[list(FIRST_INVITE_COLUMNS)].iloc[first_row]
    tags = m["from_tag"].cat.categories
    call_codes = keys.codes_at(m["call_id"], first_row)
    # the calls' keys as a To tag names them, sorted for :func:`keys.lookup_packed`
    call_keys = keys.dialog_key(call_codes, keys.codes_at(m["from_tag"], first_row), tags)
    by_key = np.argsort(call_keys)
    call_keys, numbers = call_keys[by_key], by_key.astype(np.int32)

    pair, pairs = _address_pairs(m)
    call_pair = pair[first_row]

    read = (by_from < 0) | m["reason_protocol"].notna().to_numpy(dtype=bool)
    # only rows of a Call-ID that holds a call can match one (REGISTER, OPTIONS do not)
    of_call = np.zeros(len(m["call_id"].cat.categories) + 1, dtype=bool)  # the last: NA
    of_call[call_codes] = True
    read &= of_call[m["call_id"].cat.codes.to_numpy()]
    if read.any():
        to_key = keys.dialog(m["call_id"], m["to_tag"], tags, rows=read)
        by_to = keys.lookup_packed(call_keys, numbers, to_key, keys.dialog_width(tags))
        del to_key
    else:  # no row to look up by To tag: each found its call by From tag and carries no
        # Reason, or its Call-ID holds no call (REGISTER, OPTIONS)
        by_to = np.full(len(by_from), -1, dtype=by_from.dtype)
    call = np.where(by_from >= 0, by_from, by_to)
    # Legs of each call: the pairs of all its initial INVITEs (the caller's and relayed ones).
    legs = by_from[initial].astype(np.int64) * pairs + pair[initial]
    elsewhere = np.flatnonzero((call >= 0) & (pair != call_pair[call]))
    on_other_leg = np.zeros(len(call), dtype=bool)
    on_other_leg[elsewhere] = keys.isin(
        call[elsewhere].astype(np.int64) * pairs + pair[elsewhere], legs
    )
    member = (call >= 0) & ~on_other_leg
    # The member rows that tell something, in two subsets: the responses to INVITEs (status,
    # To tag) and the requests (BYE, CANCEL, the INVITEs themselves); no array of every
    # member row is held beside them (peak memory).
    request = m["is_request"].to_numpy()
    q_rows = np.flatnonzero(member & request)
    r_rows = np.flatnonzero(member & ~request & (m["cseq_method"] == "INVITE").to_numpy())
    return first, (q_rows, call[q_rows]), (r_rows, call[r_rows]), by_from, by_to


def _address_pairs(m: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Leg of each row: the unordered pair of its IP addresses, as a code below the second
    value returned (an initial INVITE's pair is its call's leg)."""
    ips = m["src"].cat.categories.union(m["dst"].cat.categories)
    src_ip, dst_ip = recode(m["src"], ips), recode(m["dst"], ips)
    low = np.minimum(src_ip, dst_ip)
    high = np.maximum(src_ip, dst_ip, out=src_ip)  # in place: row-long arrays at the peak
    del dst_ip
    pair = keys.indexable(low, high)
    return pair, int(pair.max(initial=-1)) + 1


def _from_members(
    m: pd.DataFrame,
    transactions: pd.DataFrame,
    members: tuple[_Rows, _Rows, int],
    invite_req: np.ndarray,
    initial: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray, Any]:
    """The calls' columns read from their member rows, whether each call saw a provisional
    response to its last INVITE, and the time of that INVITE.

    ``members``: the member requests and responses to INVITEs (:data:`_Rows`) and how
    many calls there are;
    ``invite_req`` and ``initial`` mark the rows of ``m`` that are first copies of INVITEs
    and of out-of-dialog INVITEs with a Call-ID. :func:`build` keeps no row-long array past
    this step.
    """
    (q_rows, q_cid), (r_rows, r_cid), n = members
    retrans = m["retransmission"].to_numpy()
    ts = m["ts"].array

    def first_row(at: np.ndarray, group: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Each call's first row (position in ``m``) of ``at`` where ``mask``; -1 for none."""
        return keys.take(at, keys.first_in_group(group, mask, n))

    def any_row(group: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return keys.count_in_group(group, mask, n) > 0

    def floats(name: str, at: np.ndarray) -> np.ndarray:
        return m[name].array.take(at).to_numpy(dtype="float64", na_value=np.nan)

    q_initial = initial[q_rows]
    top_cseq = keys.max_in_group(q_cid[q_initial], floats("cseq", q_rows[q_initial]), n)
    st = keys.statuses(m["status"].array.take(r_rows))
    to_top = floats("cseq", r_rows) == top_cseq[r_cid]
    final_row = first_row(r_rows, r_cid, to_top & (st >= 200))
    answer_row = first_row(r_rows, r_cid, (st >= 200) & (st < 300))
    answer_ts = ts.take(answer_row, allow_fill=True)
    provisional = any_row(r_cid, to_top & (st > 100) & (st < 200))
    last_invite = ts.take(
        keys.take(q_rows, keys.last_in_group(q_cid, q_initial, n)), allow_fill=True
    )

    method = m["method"]
    bye = (method == "BYE").to_numpy()[q_rows] & ~retrans[q_rows]
    # RFC 3261 §15: a BYE with both tags is sent in a confirmed dialog, so a 2xx was sent.
    confirmed = any_row(q_cid, bye & m["to_tag"].notna().to_numpy()[q_rows])
    answer_missing = confirmed & (answer_row < 0)
    # at or after the call's answer (never, without one), on the int64 nanoseconds
    request_ns, answer_ns = keys.ns(m["ts"])[q_rows], keys.ns(pd.Series(answer_ts))[q_cid]
    after_answer = (request_ns >= answer_ns) & (answer_ns != keys.NAT) & (request_ns != keys.NAT)
    end_row = first_row(q_rows, q_cid, bye & (after_answer | answer_missing[q_cid]))
    del request_ns, answer_ns, after_answer
    transaction = m["transaction"].to_numpy()
    bye_status = transactions["final_status"].array.take(
        np.where(end_row >= 0, transaction.take(end_row), -1), allow_fill=True
    )
    tag_codes = keys.codes_at(m["to_tag"], r_rows)
    to_tags = keys.distinct_in_group(r_cid, tag_codes, to_top & (st > 100) & (tag_codes >= 0), n)
    invites = keys.distinct_in_group(q_cid, transaction[q_rows], invite_req[q_rows], n)

    cancelled = any_row(q_cid, (method == "CANCEL").to_numpy()[q_rows])
    columns = {
        "ringing_ts": ts.take(first_row(r_rows, r_cid, (st >= 180) & (st <= 183)), allow_fill=True),
        "answer_ts": answer_ts,
        "final_ts": ts.take(final_row, allow_fill=True),
        "end_ts": ts.take(end_row, allow_fill=True),
        "final_status": m["status"].array.take(final_row, allow_fill=True),
        "final_reason": m["reason"].array.take(final_row, allow_fill=True),
        "invites": invites.astype(np.int16),
        "auth_challenges": keys.count_in_group(
            r_cid, ~retrans[r_rows] & ((st == 401) | (st == 407)), n
        ).astype(np.int16),
        "to_tags": to_tags.astype(np.int16),
        "cancelled": cancelled,
        "has_bye": any_row(q_cid, bye),
        "answer_missing": answer_missing,
        "bye_status": bye_status,
    }
    return columns, provisional, last_invite


def build(
    messages: pd.DataFrame,
    transactions: pd.DataFrame,
    sender: np.ndarray,
    *,
    capture_end: pd.Timestamp | None = None,
    correlation: b2bua.Correlation = "auto",
) -> pd.DataFrame:
    """CALLS rows from analysed messages in time order.

    ``transactions`` is :func:`sipstats.analyze.transactions.build`'s frame (for the final
    status of each call's BYE), ``sender`` :func:`sipstats.analyze.keys.senders` of the
    messages. ``capture_end`` is the capture's last message time when
    ``messages`` are only some of its Call-IDs (default: their own last time).
    ``correlation`` names the header whose value in the first INVITE is ``correlation_id``;
    the B2BUA legs it links cross Call-IDs, so ``linked_to`` and ``e2e_outcome`` are left
    unlinked here and set by :func:`sipstats.analyze.b2bua.link` on the whole calls table.
    """
    if len(sender) != len(messages):  # ids of another frame would group rows silently wrong
        raise ValueError(f"{len(sender)} sender ids for {len(messages)} messages")
    m = messages
    if m.empty:
        return schema.empty(schema.CALLS)
    is_request = m["is_request"].to_numpy()
    retrans = m["retransmission"].to_numpy()
    method = m["method"]
    invite_req = is_request & (method == "INVITE").to_numpy() & ~retrans
    # out of dialog (no To tag) and with a Call-ID (sender -1: none), the call's key
    initial = invite_req & m["to_tag"].isna().to_numpy() & (sender >= 0)
    if not initial.any():
        return schema.empty(schema.CALLS)
    first, requests, responses, by_from, by_to = _members(m, initial, sender)
    n = len(first)
    # first, while few row-long arrays are held: the analysis's peak memory is here
    media = call_media(m, by_from, by_to, n)
    del by_from, by_to

    per_call, provisional, last_invite = _from_members(
        m, transactions, (requests, responses, n), invite_req, initial
    )
    del requests, responses  # row-long: the calls table is made without them
    if capture_end is None:
        capture_end = m["ts"].max()
    calls = pd.DataFrame(
        {
            "call": np.arange(n, dtype=np.int64),
            "call_id": first["call_id"].array,
            "from_tag": first["from_tag"].array,
            "caller": first["from_uri"].array,
            "callee": first["to_uri"].array,
            "request_uri": first["request_uri"].array,
            "src": endpoints(first["src"], first["sport"]),
            "dst": endpoints(first["dst"], first["dport"]),
            "start_ts": first["ts"].array,
            **per_call,
            "correlation_id": b2bua.correlation_ids(first, correlation),
            **media,
        },
        copy=False,  # the columns as they are: no copy of them into blocks (peak memory)
    )
    start, ringing, answer, end = (
        keys.ns(calls[name]) for name in ("start_ts", "ringing_ts", "answer_ts", "end_ts")
    )
    # PDD: first 18x, or the 2xx when the call was answered without one.
    alerted = np.where(ringing != keys.NAT, ringing, answer)
    calls["pdd_ms"] = keys.milliseconds(alerted, start)
    calls["answer_ms"] = keys.milliseconds(answer, start)
    calls["duration_s"] = keys.seconds(end, answer)
    answer_missing = calls["answer_missing"].to_numpy()
    decided = outcome(
        calls["final_status"].to_numpy(dtype="float64", na_value=np.nan),
        calls["cancelled"].to_numpy(),
    )
    decided = np.where(answer_missing & (decided < 0), OUTCOME_CODE["answered"], decided)
    pending = provisional | np.asarray(last_invite >= capture_end - TIMER_B, dtype=bool)
    waiting = np.where(pending, OUTCOME_CODE["in_progress"], OUTCOME_CODE["no_final_response"])
    calls["outcome"] = pd.Categorical.from_codes(
        np.where(decided >= 0, decided, waiting), categories=pd.Index(schema.OUTCOMES, dtype="str")
    )
    calls["linked_to"] = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    calls["e2e_outcome"] = calls["outcome"]
    return schema.conform(calls, schema.CALLS)
