"""sip.parse_message: one test per parsing rule and per malformed reason (message matched)."""

from __future__ import annotations

import pytest

from sipstats.errors import SipParseError
from sipstats.schema import MALFORMED_REASONS
from sipstats.sip import COMPACT_FORMS, _sdp, param, parse_message, reason_fields
from tests.sipfactory import sip_request, sip_response

DIALOG = {"call_id": "c1@host", "cseq": 7, "branch": "z9hG4bK-top"}


def invite(**kwargs: object) -> bytes:
    return sip_request("INVITE", **{**DIALOG, **kwargs})  # type: ignore[arg-type]


def response(status: int, reason: str, **kwargs: object) -> bytes:
    merged = {**DIALOG, "cseq_method": "INVITE", "to_tag": "tt", **kwargs}
    return sip_response(status, reason, **merged)  # type: ignore[arg-type]


def raw(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


MANDATORY = (
    "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
    "From: <sip:a@h>;tag=f",
    "To: <sip:b@h>",
    "Call-ID: x@h",
    "CSeq: 1 OPTIONS",
)


def rejects(data: bytes, reason: str, detail: str = "", **kwargs: bool) -> SipParseError:
    assert reason in MALFORMED_REASONS
    with pytest.raises(SipParseError) as caught:
        parse_message(data, **kwargs)
    assert caught.value.reason == reason
    assert detail in caught.value.detail
    return caught.value


# --- start line: RFC 3261 §7.1 / §7.2 -----------------------------------------------------


def test_request_fields() -> None:
    msg = parse_message(invite(headers=[("User-Agent", "ua/1"), ("Expires", "300")]))
    assert msg.is_request
    assert (msg.method, msg.request_uri, msg.status, msg.reason) == (
        "INVITE",
        "sip:bob@example.com",
        0,
        "",
    )
    assert (msg.call_id, msg.cseq, msg.cseq_method, msg.branch) == (
        "c1@host",
        7,
        "INVITE",
        DIALOG["branch"],
    )
    assert (msg.from_uri, msg.from_tag, msg.to_uri, msg.to_tag) == (
        "sip:alice@example.com",
        "ftag1",
        "sip:bob@example.com",
        "",
    )
    assert (msg.user_agent, msg.expires, msg.has_auth, msg.via_count) == ("ua/1", 300, False, 1)


def test_response_fields() -> None:
    msg = parse_message(response(486, "Busy Here", headers=[("Server", "uas")]))
    assert not msg.is_request
    assert (msg.status, msg.reason, msg.method, msg.server, msg.to_tag) == (
        486,
        "Busy Here",
        "",
        "uas",
        "tt",
    )


def test_extension_method_is_any_token_and_case_is_kept() -> None:
    assert parse_message(raw("REGIStER sip:h SIP/2.0", *MANDATORY)).method == "REGIStER"
    assert parse_message(raw("X-Foo.bar! sip:h SIP/2.0", *MANDATORY)).method == "X-Foo.bar!"


def test_sip_version_is_case_insensitive() -> None:
    assert parse_message(raw("OPTIONS sip:h sip/2.0", *MANDATORY)).method == "OPTIONS"
    assert parse_message(raw("Sip/2.0 200 OK", *MANDATORY)).status == 200


def test_reason_phrase_may_be_empty_or_utf8() -> None:
    assert parse_message(raw("SIP/2.0 200", *MANDATORY)).reason == ""
    assert parse_message(raw("SIP/2.0 603 Abgelehnt – nö", *MANDATORY)).reason == "Abgelehnt – nö"


@pytest.mark.parametrize(
    "line",
    [
        "NOTIFY * HTTP/1.1",  # SSDP: looks like a request, is HTTP
        "HTTP/1.1 200 OK",
        "INVITE sip:b@h SIP/3.0",
        "OPTIONS * SIP/2.0",  # '*' is no SIP Request-URI (§25.1)
        "INVITE sip:b@h",
        "INVITE  sip:b@h SIP/2.0",
        "SIP/2.0 700 Nope",
        "SIP/2.0 99 Low",
        "SIP/2.0 2000 Long",
        "BAD(METHOD) sip:b@h SIP/2.0",
        "\x00\x00\x00\x00",  # zeek's junk before a request
    ],
)
def test_bad_start_line(line: str) -> None:
    error = rejects(raw(line, *MANDATORY), "bad start line")
    assert error.detail == line


def test_leading_crlf_before_start_line_is_ignored() -> None:
    # RFC 3261 §7.5
    data = b"\r\n\r\n" + invite()
    assert parse_message(data).size == len(invite())


# --- headers: names, compact forms, folding, Via ----------------------------------------------


def test_header_names_are_case_insensitive() -> None:
    data = raw(
        "OPTIONS sip:h SIP/2.0",
        "vIA: SIP/2.0/UDP h;branch=z9hG4bKa",
        "FROM: <sip:a@h>;tag=f",
        "to: <sip:b@h>",
        "CALL-ID: x@h",
        "cseq: 3 OPTIONS",
        "RETRY-after: 5",
        "content-LENGTH: 0",
    )
    msg = parse_message(data)
    assert (msg.branch, msg.call_id, msg.cseq, msg.retry_after, msg.content_length) == (
        "z9hG4bKa",
        "x@h",
        3,
        5,
        0,
    )


def test_compact_forms() -> None:
    body = "v=0\r\n"
    data = raw(
        "INVITE sip:b@h SIP/2.0",
        "v: SIP/2.0/UDP h;branch=z9hG4bKc",
        "f: <sip:a@h>;tag=f1",
        "t: <sip:b@h>;tag=t1",
        "i: compact@h",
        "CSeq: 1 INVITE",
        "c: application/sdp",
        "k: timer",
        "m: <sip:a@h>",
        "o: presence",
        f"l: {len(body)}",
        body=body,
    )
    msg = parse_message(data)
    assert (msg.call_id, msg.branch, msg.from_tag, msg.to_tag) == (
        "compact@h",
        "z9hG4bKc",
        "f1",
        "t1",
    )
    assert (msg.content_type, msg.content_length, msg.body_length) == ("application/sdp", 5, 5)
    assert set("ivftmlckseourxyba") <= set(COMPACT_FORMS)
    assert COMPACT_FORMS["o"] == "event"
    assert COMPACT_FORMS["x"] == "session-expires"


def test_folded_header_lines() -> None:
    # RFC 3261 §7.3.1: a line starting with SP or HTAB continues the header above.
    data = raw(
        "OPTIONS sip:h SIP/2.0",
        "Via: SIP/2.0/UDP h",
        "  ;branch=z9hG4bKfold",
        "From: <sip:a@h>",
        "\t;tag=folded",
        "To: <sip:b@h>",
        "Call-ID: x@h",
        "CSeq:",
        "   9 OPTIONS",
    )
    msg = parse_message(data)
    assert (msg.branch, msg.from_tag, msg.cseq) == ("z9hG4bKfold", "folded", 9)


def test_several_via_headers_and_values_top_one_counts() -> None:
    data = raw(
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP p1;branch=z9hG4bKtop, SIP/2.0/TCP p2;branch=z9hG4bK2",
        'Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK3;x="a,b"',
        "v: SIP/2.0/UDP p4;branch=z9hG4bK4",
        *MANDATORY[1:],
    )
    msg = parse_message(data)
    assert (msg.branch, msg.via_count) == ("z9hG4bKtop", 4)


def test_via_without_branch() -> None:
    data = raw("OPTIONS sip:h SIP/2.0", "Via: SIP/2.0/UDP h:5060", *MANDATORY[1:])
    assert parse_message(data).branch == ""


def test_bare_lf_line_endings() -> None:
    data = raw("SIP/2.0 407 Proxy Auth", *MANDATORY).replace(b"\r\n", b"\n")
    msg = parse_message(data)
    assert (msg.status, msg.call_id, msg.size) == (407, "x@h", len(data))


def test_header_block_ended_by_datagram_end() -> None:
    # No empty line, but the last header line is complete: a message without a body.
    data = ("\r\n".join(["ACK sip:b@h SIP/2.0", *MANDATORY]) + "\r\n").encode()
    assert parse_message(data).method == "ACK"


def test_first_of_a_repeated_single_header_counts() -> None:
    data = raw("OPTIONS sip:h SIP/2.0", *MANDATORY, "To: <sip:other@h>;tag=2")
    assert parse_message(data).to_uri == "sip:b@h"


def test_header_text_is_decoded_as_utf8_with_replacement() -> None:
    data = raw("OPTIONS sip:h SIP/2.0", *MANDATORY, "User-Agent: caf\xe9").replace(
        b"caf\xc3\xa9", b"caf\xe9"
    )
    assert parse_message(data).user_agent == "caf\ufffd"


# --- parameters and addresses: RFC 3261 §7.3.1, §20.10 ------------------------------------------


@pytest.mark.parametrize(
    ("value", "uri", "tag"),
    [
        ("<sip:a@h>;tag=1", "sip:a@h", "1"),
        ("<sip:a@h>;TAG=upper", "sip:a@h", "upper"),  # tshark 4.0 misses this one
        ("<sip:a@h> ; Tag = spaced", "sip:a@h", "spaced"),
        ('"Alice" <sip:a@h;transport=udp>;tag=2', "sip:a@h;transport=udp", "2"),
        ('"A <b>; tag=no" <sip:a@h>;tag=3', "sip:a@h", "3"),
        ('"esc \\" <x>" <sip:a@h>;tag=4', "sip:a@h", "4"),
        ('Alice <sip:a@h>;x="q;tag=no";tag=5', "sip:a@h", "5"),
        # addr-spec: the parameters after the URI belong to the header (§20.10)
        ("sip:a@h;tag=6", "sip:a@h", "6"),
        ("sip:a@h;tagx=7", "sip:a@h", ""),
        ("<sip:a@h>", "sip:a@h", ""),
    ],
)
def test_from_uri_and_tag(value: str, uri: str, tag: str) -> None:
    data = raw("OPTIONS sip:h SIP/2.0", "Via: SIP/2.0/UDP h", f"From: {value}", *MANDATORY[2:])
    msg = parse_message(data)
    assert (msg.from_uri, msg.from_tag) == (uri, tag)


def test_param_helper() -> None:
    assert param(';a=1;B="x;y";flag', "b") == "x;y"
    assert param(";a=1;flag", "flag") == ""
    assert param(";a=1", "b") is None


# --- Retry-After: RFC 3261 §20.33 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds", "duration"),
    [
        ("120", 120, None),
        ("120 (comment)", 120, None),
        ("300;duration=1800", 300, 1800),
        ("6 (in a meeting);duration=3600", 6, 3600),
        ("10 (overloaded)", 10, None),
        ("  18000;duration=3600;x=y ", 18000, 3600),
        ("99999999999", 2**32 - 1, None),
    ],
)
def test_retry_after(text: str, seconds: int, duration: int | None) -> None:
    msg = parse_message(response(503, "Service Unavailable", headers=[("Retry-After", text)]))
    assert (msg.retry_after, msg.retry_after_raw, msg.retry_after_duration) == (
        seconds,
        text.strip(),
        duration,
    )
    assert not msg.retry_after_malformed


@pytest.mark.parametrize("text", ["soon", "-5", "5.5", "(later) 5", ""])
def test_malformed_retry_after_keeps_the_message(text: str) -> None:
    msg = parse_message(response(503, "Service Unavailable", headers=[("Retry-After", text)]))
    assert msg.retry_after is None
    assert msg.retry_after_raw == text
    assert msg.retry_after_malformed


def test_no_retry_after() -> None:
    msg = parse_message(response(486, "Busy Here"))
    assert (msg.retry_after, msg.retry_after_raw, msg.retry_after_malformed) == (None, None, False)


# --- other headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Authorization", "Proxy-Authorization", "proxy-authorization"])
def test_has_auth(name: str) -> None:
    assert parse_message(invite(headers=[(name, 'Digest username="a", realm="r"')])).has_auth


def test_min_expires_and_bad_expires() -> None:
    msg = parse_message(response(423, "Interval Too Brief", headers=[("Min-Expires", "120")]))
    assert msg.min_expires == 120
    # RFC 2543 allowed a date here; it is no delta-seconds, so no number.
    assert (
        parse_message(invite(headers=[("Expires", "Thu, 01 Dec 1994 16:00:00 GMT")])).expires
        is None
    )


# --- bodies: Content-Length ---------------------------------------------------------------------


def test_body_by_content_length_and_extra_bytes_ignored() -> None:
    data = invite(headers=[("Content-Length", "4")], body=b"abcdEXTRA")
    msg = parse_message(data)
    assert (msg.content_length, msg.body_length, msg.size) == (4, 4, len(data) - 5)


def test_no_content_length_takes_the_rest_of_the_datagram() -> None:
    data = raw("MESSAGE sip:h SIP/2.0", *MANDATORY, body="hello")
    msg = parse_message(data)
    assert (msg.content_length, msg.body_length, msg.size) == (None, 5, len(data))


@pytest.mark.parametrize("value", ["bad", "xyz", "-1", "12 34", ""])
def test_bad_content_length(value: str) -> None:
    rejects(invite(headers=[("Content-Length", value)]), "bad Content-Length", value)


def test_body_shorter_than_content_length() -> None:
    data = invite(headers=[("Content-Length", "200")], body=b"v=0\r\n")
    rejects(data, "body shorter than Content-Length", "Content-Length 200, body 5")


def test_truncated_by_snaplen_wins_over_later_symptoms() -> None:
    data = invite(body=b"v=0\r\n" * 40)[:300]
    rejects(data, "truncated by snaplen", "INVITE sip:bob@example.com SIP/2.0", truncated=True)
    # ... but bytes that are not SIP at all stay a bad start line.
    rejects(b"\x80\x00garbage", "bad start line", truncated=True)


# --- mandatory headers and broken lines -------------------------------------------------------


@pytest.mark.parametrize(
    ("dropped", "named"),
    [("Call-ID", "call-id"), ("CSeq", "cseq"), ("From", "from"), ("To", "to"), ("Via", "via")],
)
def test_missing_mandatory_header(dropped: str, named: str) -> None:
    lines = [line for line in MANDATORY if not line.startswith(dropped + ":")]
    rejects(raw("SIP/2.0 200 OK", *lines), "missing mandatory header", named)


def test_missing_several_mandatory_headers_named_together() -> None:
    rejects(
        raw("SIP/2.0 503 Service Unavailable"),
        "missing mandatory header",
        "call-id, cseq, from, to, via",
    )


def test_header_line_without_colon() -> None:
    rejects(
        raw("OPTIONS sip:h SIP/2.0", *MANDATORY, "Bogus header line"),
        "bad header line",
        "Bogus header line",
    )


def test_unterminated_header_block() -> None:
    data = ("\r\n".join(["BYE sip:b@h SIP/2.0", *MANDATORY, "Content-Lengt"])).encode()
    rejects(data, "bad header line", "Content-Lengt")


@pytest.mark.parametrize("value", ["abc INVITE", "1", "1 INV(ITE", "4294967296 INVITE"])
def test_bad_cseq(value: str) -> None:
    lines = [f"CSeq: {value}" if line.startswith("CSeq") else line for line in MANDATORY]
    rejects(raw("OPTIONS sip:h SIP/2.0", *lines), "bad header line", "CSeq")


def test_delimited_message_keeps_a_short_body() -> None:
    # HEP frames exactly one message; hepgen counts CRLF but sends LF (peers hep.pcap).
    data = invite(headers=[("Content-Length", "20")], body=b"v=0\no=x\n")
    rejects(data, "body shorter than Content-Length")
    msg = parse_message(data, delimited=True)
    assert (msg.content_length, msg.body_length, msg.size) == (20, 8, len(data))


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        ('Q.850;cause=16;text="Normal call clearing"', ("Q.850", 16, "Normal call clearing")),
        ("SIP;cause=503, Q.850;cause=34", ("Q.850", 34, "")),  # RFC 3326 §2: Q.850 wins
        ('SIP;cause=487;text="a, b"', ("SIP", 487, "a, b")),
        ("SIP", ("SIP", None, "")),
        ("Q.850;cause=x", ("Q.850", None, "")),
        ("Q.850;cause=40000", ("Q.850", None, "")),
        ("", ("", None, "")),
    ],
)
def test_reason_fields(header: str, fields: tuple[str, int | None, str]) -> None:
    assert reason_fields(header) == fields


@pytest.mark.parametrize(
    ("content_type", "body", "summary"),
    [
        (
            "application/sdp",
            b"c=IN IP4 1.1.1.1\nm=audio 5 RTP/AVP 0 96\na=rtpmap:96 opus/48000",
            ("1.1.1.1", 5, "PCMU,opus"),
        ),
        (
            "application/sdp",
            b"c=IN IP4 1.1.1.1\r\nm=audio 5 RTP/AVP 0\r\nc=IN IP4 2.2.2.2/127\r\n",
            ("2.2.2.2", 5, "PCMU"),
        ),
        (
            "application/sdp",
            b"m=audio 5 RTP/AVP 0\r\nm=video 6 RTP/AVP 96\r\nc=IN IP4 3.3.3.3\r\n",
            ("", 5, "PCMU"),
        ),
        ("application/sdp", b"m=audio 70000 RTP/AVP 77", ("", None, "77")),
        ("application/sdp", b"v=0", ("", None, "")),
        ("text/plain", b"m=audio 5 RTP/AVP 0", ("", None, "")),
    ],
)
def test_sdp_summary(content_type: str, body: bytes, summary: tuple[str, int | None, str]) -> None:
    assert _sdp(content_type, body) == summary
