/* sipstats._sipscan: the common shape of a SIP message, parsed in C (sip.py's hot path).
 *
 * The reference is sipstats/sip.py: _parse_general defines every rule and _parse_common is
 * its fast Python twin. This file implements the same rules once more, for the shapes most
 * captures are made of, and tests/test_sip_scan.py feeds it and the Python code the same
 * bytes and compares all 33 fields. parse() answers None for anything outside its scope and
 * sip.py then parses the message itself: declining is always safe, a different answer never
 * is, so the scope is deliberately narrow. parse() declines when
 *
 *   - the header block (up to the first CRLFCRLF) holds a byte >= 0x7f or a control other
 *     than HT, CR, LF: UTF-8 decoding is then the identity and Python's str.strip() strips
 *     only SP and HT, so both can be done on the bytes;
 *   - a line does not end in CRLF, a header line starts with a blank or a colon (folding)
 *     or has no colon, or the start line is not one (Python raises for those);
 *   - a mandatory header is missing, CSeq or Content-Length is not plain digits (CSeq:
 *     digits, blanks, a method token) or above 2**32 - 1, or the body is shorter than
 *     Content-Length and the message is not ``delimited``;
 *   - a quote appears where Python takes its quoted-string branch: in any Via value, or in
 *     the From/To parameters after the URI (a quoted display name before it is handled);
 *   - Retry-After is not RFC 3261 §20.33 syntax, or its parameters hold a quote;
 *   - an application/sdp body holds a byte outside printable ASCII, HT, CR and LF, or a CR
 *     that does not end a line.
 *
 * Phase one (scan) only records spans of the input and small integers, so every decline is
 * a plain "return 0" that owns nothing; phase two (build) makes the Python objects.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#include "_columns.h"

/* SipMessage's fields, in order (sip.py); MESSAGE_FIELDS tells Python, which checks it
 * against SipMessage._fields when it loads this module (sipstats.native). */
#define FIELDS 33
/* sip.py _MAX_NUMBER: numbers above it are clamped (Expires) or refused (CSeq). */
#define MAX_NUMBER 4294967295ULL

/* sip.py SDP_MAX_FORMATS, SDP_MAX_RTPMAPS. */
#define SDP_MAX_FORMATS 16
#define SDP_MAX_RTPMAPS 32

/* Slots of the wanted headers: sip.py _WANTED, same order. */
enum {
    CALL_ID,
    CSEQ,
    FROM,
    TO,
    VIA,
    USER_AGENT,
    SERVER,
    RETRY_AFTER,
    EXPIRES,
    MIN_EXPIRES,
    AUTHORIZATION,
    PROXY_AUTHORIZATION,
    CONTENT_LENGTH,
    CONTENT_TYPE,
    REASON,
    X_CID,
    X_CALL_ID,
    P_CHARGING_VECTOR,
    SLOTS,
    NOT_WANTED = -1
};

/* A slice of the input; p == NULL: absent. */
typedef struct {
    const char *p;
    Py_ssize_t n;
} Span;

/* Phase one's result: everything build() needs, nothing owned. */
typedef struct {
    int is_request;
    Span method, request_uri;
    int status;
    Span reason;
    Span values[SLOTS]; /* first value of each wanted header, stripped (Via: unused) */
    uint64_t cseq;
    Span cseq_method;
    Span branch;
    Py_ssize_t via_count;
    Span from_uri, from_tag, to_uri, to_tag;
    uint64_t retry_after;
    int has_duration; /* the duration retry-param, when a number */
    uint64_t duration;
    int has_expires, has_min_expires; /* present and a number (else None) */
    uint64_t expires, min_expires;
    int has_length;
    uint64_t content_length;
    Py_ssize_t body_length, size;
    /* sip.py _sdp: the first media description of an application/sdp body */
    Span sdp_address;
    int has_sdp_port;
    long sdp_port;
    Py_ssize_t sdp_formats;
    /* the name of each format; last, and only the first sdp_formats are set (scan() clears
     * what comes before) */
    Span sdp_codecs[SDP_MAX_FORMATS];
} Scan;

/* SipMessage, from set_message_type(); parse() declines until it is set. */
static PyTypeObject *message_type = NULL;

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3261 §25.1 token characters (sip.py's [!%'*+\-.0-9A-Z_`a-z~]). */
static int
is_token(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!%'*+-._`~", c) != NULL);
}

/* Printable ASCII and HT only: the bytes on which decoding and str.strip() are trivial. */
static int
is_printable(char c)
{
    unsigned u = (unsigned char)c;
    return u - 0x20u < 0x5fu || u == '\t';
}

/* The CR of the line that starts at ``s``: where its first byte that is not printable ASCII or
 * HT lies, when that is a CR followed by an LF; NULL otherwise (no CRLF before ``end``, or a
 * control, DEL or non-ASCII byte first). One pass for what was the search of the LF and a
 * second look at every byte before it: with SSE2 (GCC or Clang on x86-64), sixteen bytes at a
 * time; elsewhere (aarch64, MSVC) one byte at a time. */
static const char *
line_cr(const char *s, const char *end)
{
    const char *c = s;
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    for (; end - c >= 16; c += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)c);
        /* compared as signed bytes, those of 0x80 and above are below the space too */
        unsigned odd = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
        for (; odd != 0; odd &= odd - 1) {
            const char *at = c + __builtin_ctz(odd);
            if (*at != '\t') {
                return *at == '\r' && end - at >= 2 && at[1] == '\n' ? at : NULL;
            }
        }
    }
#endif
    for (; c < end; c++) {
        if (!is_printable(*c)) {
            return *c == '\r' && end - c >= 2 && c[1] == '\n' ? c : NULL;
        }
    }
    return NULL;
}

/* str.strip() on printable ASCII: only SP and HT are whitespace there. */
static Span
strip(const char *p, Py_ssize_t n)
{
    while (n > 0 && is_blank(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_blank(p[n - 1])) {
        n--;
    }
    return (Span){p, n};
}

/* p[:n] equals ``lower`` (lower-case ASCII) ignoring ASCII case. */
static int
same_lower(const char *p, const char *lower, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c + ('a' - 'A'));
        }
        if (c != lower[i]) {
            return 0;
        }
    }
    return 1;
}

/* sip.py _slot: a name maps by name.rstrip(" \t").lower(), compact forms included
 * (COMPACT_FORMS restricted to the wanted headers). */
static int
slot_of(const char *p, Py_ssize_t n)
{
    while (n > 0 && is_blank(p[n - 1])) {
        n--;
    }
#define IS(lit) (n == (Py_ssize_t)sizeof(lit) - 1 && same_lower(p, lit, n))
    switch (n) {
    case 1:
        /* | 0x20 lowers letters and maps no other byte onto these letters */
        switch (p[0] | 0x20) {
        case 'i':
            return CALL_ID;
        case 'f':
            return FROM;
        case 't':
            return TO;
        case 'v':
            return VIA;
        case 'l':
            return CONTENT_LENGTH;
        case 'c':
            return CONTENT_TYPE;
        }
        return NOT_WANTED;
    case 2:
        return IS("to") ? TO : NOT_WANTED;
    case 3:
        return IS("via") ? VIA : NOT_WANTED;
    case 4:
        return IS("from") ? FROM : IS("cseq") ? CSEQ : NOT_WANTED;
    case 5:
        return IS("x-cid") ? X_CID : NOT_WANTED;
    case 6:
        return IS("server") ? SERVER : IS("reason") ? REASON : NOT_WANTED;
    case 7:
        return IS("call-id") ? CALL_ID : IS("expires") ? EXPIRES : NOT_WANTED;
    case 9:
        return IS("x-call-id") ? X_CALL_ID : NOT_WANTED;
    case 10:
        return IS("user-agent") ? USER_AGENT : NOT_WANTED;
    case 11:
        return IS("retry-after") ? RETRY_AFTER : IS("min-expires") ? MIN_EXPIRES : NOT_WANTED;
    case 12:
        return IS("content-type") ? CONTENT_TYPE : NOT_WANTED;
    case 13:
        return IS("authorization") ? AUTHORIZATION : NOT_WANTED;
    case 14:
        return IS("content-length") ? CONTENT_LENGTH : NOT_WANTED;
    case 17:
        return IS("p-charging-vector") ? P_CHARGING_VECTOR : NOT_WANTED;
    case 19:
        return IS("proxy-authorization") ? PROXY_AUTHORIZATION : NOT_WANTED;
    }
    return NOT_WANTED;
#undef IS
}

/* Non-empty digits only; the value saturates at MAX_NUMBER + 1 so that callers can clamp
 * (sip.py _number) or refuse (CSeq, Content-Length) without overflow. */
static int
digits(Span s, uint64_t *out)
{
    uint64_t value = 0;
    if (s.n == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (!is_digit(s.p[i])) {
            return 0;
        }
        value = value * 10 + (uint64_t)(s.p[i] - '0');
        if (value > MAX_NUMBER) {
            value = MAX_NUMBER + 1;
        }
    }
    *out = value;
    return 1;
}

/* sip.py _start_line on the first line without its CRLF: the request pattern
 * "token SP scheme:rest SP SIP/2.0" or the status pattern "SIP/2.0 [1-6]dd[ reason]"
 * (SIP case-insensitive), after rstrip(" \t"). 0: not a start line. */
static int
start_line(Span line, Scan *m)
{
    const char *p = line.p;
    Py_ssize_t n = line.n;
    while (n > 0 && is_blank(p[n - 1])) {
        n--;
    }

    if (n >= 11 && same_lower(p, "sip/2.0 ", 8) && p[8] >= '1' && p[8] <= '6' &&
        is_digit(p[9]) && is_digit(p[10])) {
        if (n > 11 && p[11] != ' ') {
            return 0;
        }
        m->is_request = 0;
        m->status = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
        m->reason = n > 11 ? strip(p + 12, n - 12) : (Span){p, 0};
        return 1;
    }
    /* Method: the token before the first space (a token holds no space). */
    Py_ssize_t i = 0;
    while (i < n && is_token(p[i])) {
        i++;
    }
    if (i == 0 || i >= n || p[i] != ' ') {
        return 0;
    }
    /* Request-URI: up to the next space; the version is all that may follow it. */
    const char *uri = p + i + 1;
    const char *space = memchr(uri, ' ', (size_t)(p + n - uri));
    if (space == NULL || p + n - (space + 1) != 7 || !same_lower(space + 1, "sip/2.0", 7)) {
        return 0;
    }
    Py_ssize_t uri_n = space - uri;
    /* scheme ":" at least one more character; the scheme ends at the first colon */
    const char *colon = memchr(uri, ':', (size_t)uri_n);
    if (colon == NULL || colon == uri || colon + 1 >= space || !is_alpha(uri[0])) {
        return 0;
    }
    for (const char *c = uri + 1; c < colon; c++) {
        if (!(is_alpha(*c) || is_digit(*c) || *c == '+' || *c == '-' || *c == '.')) {
            return 0;
        }
    }
    m->is_request = 1;
    m->method = (Span){p, i};
    m->request_uri = (Span){uri, uri_n};
    m->reason = (Span){p, 0};
    return 1;
}

/* sip.py param() for parameter ``name`` (lower-case) in a quote-free ``;a=b;c`` string: the
 * first match of ;[ \t]*name[ \t]*(?:=([^;]*))?(?:;|$), case-insensitive, value stripped
 * (empty for a flag parameter). 0: absent. */
static int
param(Span params, const char *name, Span *out)
{
    const char *p = params.p;
    Py_ssize_t n = params.n, name_n = (Py_ssize_t)strlen(name);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] != ';') {
            continue;
        }
        Py_ssize_t j = i + 1;
        while (j < n && is_blank(p[j])) {
            j++;
        }
        if (n - j < name_n || !same_lower(p + j, name, name_n)) {
            continue;
        }
        j += name_n;
        while (j < n && is_blank(p[j])) {
            j++;
        }
        if (j == n || p[j] == ';') {
            *out = (Span){p + j, 0};
            return 1;
        }
        if (p[j] == '=') {
            Py_ssize_t k = j + 1;
            while (k < n && p[k] != ';') {
                k++;
            }
            *out = strip(p + j + 1, k - j - 1);
            return 1;
        }
    }
    return 0;
}

/* sip.py _address: URI and tag of a From/To value (stripped). 0: declined (a quote in the
 * parameters, where Python splits on quoted strings). */
static int
address(Span v, Span *uri, Span *tag)
{
    const char *end = v.p + v.n;
    const char *start = v.p;
    Span params;
    *tag = (Span){v.p, 0};
    if (v.n > 0 && v.p[0] == '"') {
        /* _QUOTED: "(?:[^"\\]|\\.)*" at the start; unterminated: the name is everything */
        start = end;
        for (const char *c = v.p + 1; c < end; c++) {
            if (*c == '\\') {
                if (c + 1 >= end) {
                    break;
                }
                c++;
            } else if (*c == '"') {
                start = c + 1;
                break;
            }
        }
    }
    const char *open = memchr(start, '<', (size_t)(end - start));
    if (open != NULL) {
        const char *close = memchr(open, '>', (size_t)(end - open));
        if (close == NULL) {
            *uri = strip(open + 1, end - open - 1);
            return 1;
        }
        *uri = strip(open + 1, close - open - 1);
        params = (Span){close + 1, end - close - 1};
    } else {
        /* addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10) */
        const char *semi = memchr(start, ';', (size_t)(end - start));
        *uri = strip(start, (semi != NULL ? semi : end) - start);
        params = semi != NULL ? (Span){semi, end - semi} : (Span){end, 0};
    }
    if (memchr(params.p, '"', (size_t)params.n) != NULL) {
        return 0;
    }
    param(params, "tag", tag);
    return 1;
}

/* sip.py _via for the top Via value (quote-free): the branch of its first non-blank
 * comma-separated entry. */
static Span
top_branch(Span top)
{
    const char *p = top.p, *end = top.p + top.n;
    Span branch = {p, 0};
    if (memchr(p, ',', (size_t)top.n) != NULL) {
        /* _split: the first entry with a non-blank character, or "" */
        const char *entry = p, *entry_end = p;
        for (;;) {
            const char *comma = memchr(entry, ',', (size_t)(end - entry));
            entry_end = comma != NULL ? comma : end;
            if (strip(entry, entry_end - entry).n > 0) {
                break;
            }
            if (comma == NULL) {
                return branch;
            }
            entry = comma + 1;
        }
        p = entry;
        end = entry_end;
    }
    /* via-parm = sent-protocol LWS sent-by *( SEMI via-params ): sent-by holds no ';' */
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (semi != NULL) {
        param((Span){semi, end - semi}, "branch", &branch);
    }
    return branch;
}

/* sip.py _retry_after (RFC 3261 §20.33): delta-seconds [ comment ] *( SEMI retry-param ),
 * parameters without quotes. Bad syntax or a quote: 0 (Python's). */
static int
retry_after(Span v, Scan *m)
{
    Py_ssize_t i = 0;
    while (i < v.n && is_digit(v.p[i])) {
        i++;
    }
    if (!digits((Span){v.p, i}, &m->retry_after)) {
        return 0;
    }
    m->retry_after = m->retry_after > MAX_NUMBER ? MAX_NUMBER : m->retry_after;
    while (i < v.n && is_blank(v.p[i])) {
        i++;
    }
    if (i < v.n && v.p[i] == '(') {
        /* comment: "(" [^)]* ")" blanks, as sip.py's pattern has it (no nesting) */
        const char *close = memchr(v.p + i, ')', (size_t)(v.n - i));
        if (close == NULL) {
            return 0;
        }
        i = close + 1 - v.p;
        while (i < v.n && is_blank(v.p[i])) {
            i++;
        }
    }
    if (i == v.n) {
        return 1;
    }
    Span params = {v.p + i, v.n - i}, duration;
    if (v.p[i] != ';' || memchr(params.p, '"', (size_t)params.n) != NULL) {
        return 0;
    }
    if (param(params, "duration", &duration) && digits(duration, &m->duration)) {
        m->has_duration = 1;
        m->duration = m->duration > MAX_NUMBER ? MAX_NUMBER : m->duration;
    }
    return 1;
}

/* The next blank-separated token of [*p, end) (Python's str.split() on printable ASCII),
 * p == NULL when there is none; *p moves past it. */
static Span
token(const char **p, const char *end)
{
    const char *c = *p;
    while (c < end && is_blank(*c)) {
        c++;
    }
    const char *start = c;
    while (c < end && !is_blank(*c)) {
        c++;
    }
    *p = c;
    return start == c ? (Span){NULL, 0} : (Span){start, c - start};
}

/* s up to its first occurrence of ``stop`` (all of s when there is none). An empty span may
 * have no pointer (token() at the end of a line), and memchr(NULL, ...) is undefined. */
static Span
before(Span s, char stop)
{
    if (s.p == NULL) {
        return s;
    }
    const char *at = memchr(s.p, stop, (size_t)s.n);
    return at == NULL ? s : (Span){s.p, at - s.p};
}

static int
same(Span a, Span b)
{
    return a.n == b.n && memcmp(a.p, b.p, (size_t)a.n) == 0;
}

/* sip.py STATIC_PAYLOAD_TYPES: the RFC 3551 name of a static payload type, or NULL. */
static const char *
static_payload_type(Span fmt)
{
    static const char *const names[][2] = {
        {"0", "PCMU"}, {"3", "GSM"}, {"4", "G723"}, {"8", "PCMA"},
        {"9", "G722"}, {"13", "CN"}, {"18", "G729"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((size_t)fmt.n == strlen(names[i][0]) && memcmp(fmt.p, names[i][0], (size_t)fmt.n) == 0) {
            return names[i][1];
        }
    }
    return NULL;
}

/* sip.py _sdp on the body of an application/sdp message. 0: declined (a byte outside
 * printable ASCII, HT, CR, LF, or a CR that does not end a line). */
static int
sdp(const char *body, Py_ssize_t n, Scan *m)
{
    const char *end = body + n;
    for (const char *c = body; c < end; c++) {
        unsigned u = (unsigned char)*c;
        if ((u - 0x20u >= 0x5fu && u != '\t' && u != '\r' && u != '\n') ||
            (u == '\r' && (c + 1 == end || c[1] != '\n'))) {
            return 0;
        }
    }
    Span session_c = {NULL, 0}, media_c = {NULL, 0}, media = {NULL, 0};
    Span rtp_types[SDP_MAX_RTPMAPS], rtp_names[SDP_MAX_RTPMAPS];
    int rtpmaps = 0;
    for (const char *line = body; line <= end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl != NULL ? nl : end;
        Span l = {line, line_end - line};
        if (l.n > 0 && l.p[l.n - 1] == '\r') {
            l.n--;
        }
        if (l.n >= 2 && l.p[0] == 'm' && l.p[1] == '=') {
            if (media.p != NULL) {
                break;
            }
            media = (Span){l.p + 2, l.n - 2};
        } else if (l.n >= 2 && l.p[0] == 'c' && l.p[1] == '=') {
            if (media.p == NULL) {
                session_c = (Span){l.p + 2, l.n - 2};
            } else if (media_c.p == NULL) {
                media_c = (Span){l.p + 2, l.n - 2};
            }
        } else if (media.p != NULL && l.n >= 9 && memcmp(l.p, "a=rtpmap:", 9) == 0 &&
                   rtpmaps < SDP_MAX_RTPMAPS) {
            const char *c = l.p + 9, *l_end = l.p + l.n;
            Span type = token(&c, l_end), name = token(&c, l_end);
            if (name.p != NULL) {
                int known = 0;
                for (int i = 0; i < rtpmaps && !known; i++) {
                    known = same(rtp_types[i], type);
                }
                if (!known) {
                    rtp_types[rtpmaps] = type;
                    rtp_names[rtpmaps++] = before(name, '/');
                }
            }
        }
        if (nl == NULL) {
            break;
        }
        line = nl + 1;
    }
    /* the connection address: the third token of c=, up to a '/' (TTL or count) */
    Span connection = media_c.p != NULL ? media_c : session_c;
    if (connection.p != NULL) {
        const char *c = connection.p, *c_end = connection.p + connection.n;
        token(&c, c_end);
        token(&c, c_end);
        Span address = token(&c, c_end);
        if (address.p != NULL) {
            m->sdp_address = before(address, '/');
        }
    }
    if (media.p == NULL) {
        return 1;
    }
    const char *c = media.p, *c_end = media.p + media.n;
    token(&c, c_end);
    Span port = before(token(&c, c_end), '/');
    uint64_t value;
    if (port.p != NULL && port.n <= 5 && digits(port, &value) && value <= 65535) {
        m->has_sdp_port = 1;
        m->sdp_port = (long)value;
    }
    token(&c, c_end);
    for (Span fmt = token(&c, c_end); fmt.p != NULL && m->sdp_formats < SDP_MAX_FORMATS;
         fmt = token(&c, c_end)) {
        Span name = {NULL, 0};
        for (int i = 0; i < rtpmaps && name.p == NULL; i++) {
            if (same(rtp_types[i], fmt)) {
                name = rtp_names[i];
            }
        }
        if (name.n == 0) {
            const char *known = static_payload_type(fmt);
            name = known != NULL ? (Span){known, (Py_ssize_t)strlen(known)} : fmt;
        }
        m->sdp_codecs[m->sdp_formats++] = name;
    }
    return 1;
}

/* Phase one: 1 and ``m`` filled when the message is in the handled shape, else 0. */
static int
scan(const char *d, Py_ssize_t n, int delimited, Scan *m)
{
    const char *end = d + n;
    Span top_via = {NULL, 0};
    Py_ssize_t lines = 0;

    memset(m, 0, offsetof(Scan, sdp_codecs));
    /* Leading CRLFs (RFC 3261 §7.5) and the empty message are the general path's. */
    if (n == 0 || d[0] == '\r' || d[0] == '\n') {
        return 0;
    }
    const char *cr = line_cr(d, end);
    if (cr == NULL || !start_line((Span){d, cr - d}, m)) {
        return 0;
    }
    const char *s = cr + 2;
    /* Header lines up to the empty line; every earlier CR or LF is refused by line_cr(),
     * so that empty line is the first CRLFCRLF, where Python's header block ends. */
    while (!(end - s >= 2 && s[0] == '\r' && s[1] == '\n')) {
        cr = line_cr(s, end); /* not s itself: the line is not empty */
        if (cr == NULL) {
            return 0;
        }
        Py_ssize_t line_n = cr - s;
        /* a blank first: folding (RFC 3261 §7.3.1); a colon first: no name */
        if (is_blank(s[0]) || s[0] == ':') {
            return 0;
        }
        const char *colon = memchr(s, ':', (size_t)line_n);
        if (colon == NULL) {
            return 0;
        }
        lines++;
        int slot = slot_of(s, colon - s);
        if (slot != NOT_WANTED) {
            Span value = strip(colon + 1, cr - (colon + 1));
            if (slot == VIA) {
                /* RFC 3261 §20.42: every comma-separated entry of every line counts */
                if (memchr(value.p, '"', (size_t)value.n) != NULL) {
                    return 0;
                }
                if (top_via.p == NULL) {
                    top_via = value;
                }
                m->via_count += 1;
                for (Py_ssize_t i = 0; i < value.n; i++) {
                    m->via_count += value.p[i] == ',';
                }
            } else if (m->values[slot].p == NULL) {
                m->values[slot] = value; /* the first value counts (RFC 3261 §7.3.1) */
            }
        }
        s = cr + 2;
    }
    /* sip.py needs a line between the start line and the empty line */
    if (lines == 0) {
        return 0;
    }
    Py_ssize_t body_start = (s + 2) - d;

    Span *values = m->values;
    if (values[CALL_ID].p == NULL || values[CSEQ].p == NULL || values[FROM].p == NULL ||
        values[TO].p == NULL || top_via.p == NULL) {
        return 0;
    }

    /* CSeq (RFC 3261 §8.1.1.5): 32-bit number, blanks, method token; already stripped */
    Span cseq = values[CSEQ];
    Py_ssize_t i = 0;
    while (i < cseq.n && is_digit(cseq.p[i])) {
        i++;
    }
    Py_ssize_t j = i;
    while (j < cseq.n && is_blank(cseq.p[j])) {
        j++;
    }
    if (!digits((Span){cseq.p, i}, &m->cseq) || m->cseq > MAX_NUMBER || j == i || j == cseq.n) {
        return 0;
    }
    for (Py_ssize_t k = j; k < cseq.n; k++) {
        if (!is_token(cseq.p[k])) {
            return 0;
        }
    }
    m->cseq_method = (Span){cseq.p + j, cseq.n - j};

    m->body_length = n - body_start;
    if (values[CONTENT_LENGTH].p != NULL) {
        /* beyond 2**32 - 1 it is left to Python (HEP: clamped; otherwise: says why) */
        if (!digits(values[CONTENT_LENGTH], &m->content_length) ||
            m->content_length > MAX_NUMBER) {
            return 0;
        }
        m->has_length = 1;
        if ((Py_ssize_t)m->content_length <= m->body_length) {
            m->body_length = (Py_ssize_t)m->content_length;
        } else if (!delimited) {
            return 0; /* RFC 3261 §18.3: a lost tail; Python says why */
        }
    }
    m->size = body_start + m->body_length;
    if (values[CONTENT_TYPE].p != NULL) {
        Span type = before(values[CONTENT_TYPE], ';');
        type = strip(type.p, type.n);
        if (type.n == 15 && same_lower(type.p, "application/sdp", 15) &&
            !sdp(d + body_start, m->body_length, m)) {
            return 0;
        }
    }

    m->branch = top_branch(top_via);
    if (!address(values[FROM], &m->from_uri, &m->from_tag) ||
        !address(values[TO], &m->to_uri, &m->to_tag)) {
        return 0;
    }
    if (values[RETRY_AFTER].p != NULL && !retry_after(values[RETRY_AFTER], m)) {
        return 0;
    }
    if (values[EXPIRES].p != NULL && digits(values[EXPIRES], &m->expires)) {
        m->has_expires = 1;
        m->expires = m->expires > MAX_NUMBER ? MAX_NUMBER : m->expires;
    }
    if (values[MIN_EXPIRES].p != NULL && digits(values[MIN_EXPIRES], &m->min_expires)) {
        m->has_min_expires = 1;
        m->min_expires = m->min_expires > MAX_NUMBER ? MAX_NUMBER : m->min_expires;
    }
    return 1;
}

/* str of printable ASCII bytes, copied without a decoder; "" for an absent span. */
static PyObject *
text(Span s)
{
    PyObject *str = PyUnicode_New(s.n, 127);
    if (str != NULL && s.n > 0) {
        memcpy(PyUnicode_1BYTE_DATA(str), s.p, (size_t)s.n);
    }
    return str;
}

static PyObject *
number_or_none(int present, uint64_t value)
{
    return present ? PyLong_FromUnsignedLongLong(value) : Py_NewRef(Py_None);
}

/* sip.py _sdp's codecs: the names of the formats joined by commas; its length in bytes. */
static Py_ssize_t
codecs_length(const Scan *m)
{
    Py_ssize_t length = m->sdp_formats > 0 ? m->sdp_formats - 1 : 0;
    for (Py_ssize_t i = 0; i < m->sdp_formats; i++) {
        length += m->sdp_codecs[i].n;
    }
    return length;
}

/* Write the joined codecs (codecs_length(m) bytes) to ``out``. */
static void
codecs_join(const Scan *m, char *out)
{
    for (Py_ssize_t i = 0; i < m->sdp_formats; i++) {
        if (i > 0) {
            *out++ = ',';
        }
        memcpy(out, m->sdp_codecs[i].p, (size_t)m->sdp_codecs[i].n);
        out += m->sdp_codecs[i].n;
    }
}

static PyObject *
codecs(const Scan *m)
{
    PyObject *str = PyUnicode_New(codecs_length(m), 127);
    if (str != NULL) {
        codecs_join(m, (char *)PyUnicode_1BYTE_DATA(str));
    }
    return str;
}

/* Phase two: the SipMessage, built as structseq builds its instances (no Python call). */
static PyObject *
build(const Scan *m)
{
    const Span *values = m->values;
    PyObject *message = message_type->tp_alloc(message_type, FIELDS);
    if (message == NULL) {
        return NULL;
    }
    /* An item that failed leaves NULLs behind, which the tuple's dealloc skips. */
#define SET(index, expression)                                                                 \
    do {                                                                                       \
        PyObject *item_ = (expression);                                                        \
        if (item_ == NULL) {                                                                   \
            Py_DECREF(message);                                                                \
            return NULL;                                                                       \
        }                                                                                      \
        PyTuple_SET_ITEM(message, (index), item_);                                             \
    } while (0)
    SET(0, PyBool_FromLong(m->is_request));
    SET(1, text(m->method));
    SET(2, text(m->request_uri));
    SET(3, PyLong_FromLong(m->status));
    SET(4, text(m->reason));
    SET(5, text(values[CALL_ID]));
    SET(6, PyLong_FromUnsignedLongLong(m->cseq));
    SET(7, text(m->cseq_method));
    SET(8, text(m->branch));
    SET(9, PyLong_FromSsize_t(m->via_count));
    SET(10, text(m->from_uri));
    SET(11, text(m->from_tag));
    SET(12, text(m->to_uri));
    SET(13, text(m->to_tag));
    SET(14, text(values[USER_AGENT]));
    SET(15, text(values[SERVER]));
    SET(16, number_or_none(values[RETRY_AFTER].p != NULL, m->retry_after));
    SET(17, values[RETRY_AFTER].p != NULL ? text(values[RETRY_AFTER]) : Py_NewRef(Py_None));
    SET(18, number_or_none(m->has_duration, m->duration));
    SET(19, number_or_none(m->has_expires, m->expires));
    SET(20, number_or_none(m->has_min_expires, m->min_expires));
    SET(21, PyBool_FromLong(values[AUTHORIZATION].p != NULL ||
                            values[PROXY_AUTHORIZATION].p != NULL));
    SET(22, number_or_none(m->has_length, m->content_length));
    SET(23, PyLong_FromSsize_t(m->body_length));
    SET(24, PyLong_FromSsize_t(m->size));
    SET(25, text(values[CONTENT_TYPE]));
    SET(26, text(values[REASON]));
    SET(27, text(m->sdp_address));
    SET(28, m->has_sdp_port ? PyLong_FromLong(m->sdp_port) : Py_NewRef(Py_None));
    SET(29, codecs(m));
    SET(30, text(values[X_CID]));
    SET(31, text(values[X_CALL_ID]));
    SET(32, text(values[P_CHARGING_VECTOR]));
#undef SET
    return message;
}

static PyObject *
set_message_type(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "set_message_type() needs a tuple subclass");
        return NULL;
    }
    Py_XSETREF(message_type, (PyTypeObject *)Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyObject *
parse(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse() takes (data, delimited)");
        return NULL;
    }
    int delimited = PyObject_IsTrue(args[1]);
    if (delimited < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (message_type == NULL || !PyBytes_Check(args[0])) {
        Py_RETURN_NONE;
    }
    Scan m;
    if (!scan(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), delimited, &m)) {
        Py_RETURN_NONE;
    }
    return build(&m);
}

/* ---- Columns: the messages table built in C ------------------------------------------------
 *
 * A SipMessage per message, whose fields the messages stage then coded into columns, cost a
 * Python object per field per message and a dict lookup per text value: most of the
 * decoding time. A Columns object holds the table's columns
 * itself: numbers go straight into fixed-width buffers, and text is coded against a hash
 * table of the distinct byte strings, so a message in the common shape makes no Python
 * object at all. Messages that scan() declines are parsed by sip.py and added with add();
 * the Python MessageTable stays the reference (tests build tables both ways). */

/* Failures of the code that runs without the GIL (scan() parses a batch with it released),
 * where no exception can be set: returned as these numbers, raised by raise_failure() once the
 * GIL is held again. Its memory comes from PyMem_Raw*, which needs no GIL either. -1 stays a
 * code's NA. */
enum {
    FAILED_MEMORY = -2,
    FAILED_TOO_MANY = -3, /* a column with INT32_MAX - 1 distinct strings */
    FAILED_RAISED = -4,   /* a Python exception is set already (GIL held) */
};

/* Set the exception of ``failed`` (one of FAILED_*); the GIL must be held. NULL. */
static PyObject *
raise_failure(int failed)
{
    if (failed == FAILED_TOO_MANY) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct strings in one column");
    } else if (failed == FAILED_MEMORY) {
        PyErr_NoMemory();
    }
    return NULL;
}

/* A growable byte buffer. */
typedef struct {
    char *p;
    Py_ssize_t n, cap;
} Buf;

/* buf_reserve() when the buffer must grow. */
static int
buf_grow(Buf *b, Py_ssize_t more)
{
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            return FAILED_MEMORY;
        }
        cap *= 2;
    }
    char *p = PyMem_RawRealloc(b->p, (size_t)cap);
    if (p == NULL) {
        return FAILED_MEMORY;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Room for ``more`` bytes after the buffer's content. 0, or FAILED_MEMORY. */
static inline int
buf_reserve(Buf *b, Py_ssize_t more)
{
    return b->n + more <= b->cap ? 0 : buf_grow(b, more);
}

static int
buf_put(Buf *b, const void *src, Py_ssize_t k)
{
    if (buf_reserve(b, k) < 0) {
        return FAILED_MEMORY;
    }
    memcpy(b->p + b->n, src, (size_t)k);
    b->n += k;
    return 0;
}

/* A slot of a Coder's hash table: the high half of the string's hash (the low bits pick the
 * slot) beside its code, so that a probe reads one cache line; code + 1, 0 for an empty slot.
 * Eight bytes: the tables of columns with many distinct values outgrow the CPU caches, and
 * a smaller slot halves what a probe misses. */
typedef struct {
    uint32_t check;
    int32_t code1;
} Slot;

/* Distinct byte strings -> codes (0, 1, ...) in order of first appearance (open addressing);
 * a column keeps each code in code_width() bytes. */
typedef struct {
    Buf arena;   /* the strings, back to back */
    Buf starts;  /* Py_ssize_t per code: where its string starts; one more at the end */
    Slot *slots;
    Py_ssize_t mask, count;
    Slot *recent; /* RECENT slots, or NULL (coder_find_recent) */
} Coder;

/* Slots of a coder's cache of recently coded strings: 32 KiB per column that has one (a dozen
 * of a builder's columns: some 350 KiB, which the CPU's second-level cache can hold).
 * Most rows repeat a value seen a little before (the addresses and URIs of a few thousand
 * hosts, the Call-ID, tags and branch of a call in progress): 77 % of the lookups that
 * hashed on the 1M benchmark capture find their code here, without SipHash and without
 * touching the table, whose slots and strings are cache misses in the columns of many values. */
#define RECENT_BITS 12
#define RECENT (1 << RECENT_BITS)

/* Python's own keyed hash of the bytes (SipHash, _Py_HashBytes: what hash(bytes) gives), as
 * the duplicate filter uses: every value comes from the capture, and an unkeyed hash lets a
 * crafted capture send every Call-ID to one slot (a lookup per row that compares them all).
 * Codes do not depend on it: equal hashes are confirmed by comparing the bytes. */
static uint64_t
hash_bytes(const char *p, Py_ssize_t n)
{
    return (uint64_t)_Py_HashBytes(p, n);
}

static int
coder_grow(Coder *c)
{
    Py_ssize_t size = c->slots == NULL ? 1024 : (c->mask + 1) * 2;
    Slot *slots = PyMem_RawCalloc((size_t)size, sizeof *slots);
    if (slots == NULL) {
        return FAILED_MEMORY;
    }
    /* the slots keep half of each hash: the strings are hashed again, in code order */
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    for (Py_ssize_t code = 0; code < c->count; code++) {
        uint64_t h = hash_bytes(c->arena.p + starts[code], starts[code + 1] - starts[code]);
        Py_ssize_t i = (Py_ssize_t)(h & (uint64_t)(size - 1));
        while (slots[i].code1) {
            i = (i + 1) & (size - 1);
        }
        slots[i] = (Slot){(uint32_t)(h >> 32), (int32_t)(code + 1)};
    }
    PyMem_RawFree(c->slots);
    c->slots = slots;
    c->mask = size - 1;
    return 0;
}

/* Make room for ``more`` more strings: a table at most half full. 0, or FAILED_MEMORY. */
static inline int
coder_reserve(Coder *c, Py_ssize_t more)
{
    while ((c->count + more) * 2 > c->mask + 1) {
        if (c->mask > PY_SSIZE_T_MAX / 4 || coder_grow(c) < 0) {
            return FAILED_MEMORY;
        }
    }
    return 0;
}

/* The code of p[:n] (n > 0) whose hash_bytes() is h, or -1 when it is not there yet; *at
 * (unless NULL): the slot where it is, or where it would go. */
static int32_t
coder_find(const Coder *c, const char *p, Py_ssize_t n, uint64_t h, Py_ssize_t *at)
{
    if (c->slots == NULL) {
        return -1;
    }
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    Py_ssize_t i = (Py_ssize_t)(h & (uint64_t)c->mask);
    for (; c->slots[i].code1; i = (i + 1) & c->mask) {
        if (c->slots[i].check == (uint32_t)(h >> 32)) {
            Py_ssize_t code = c->slots[i].code1 - 1;
            if (starts[code + 1] - starts[code] == n &&
                memcmp(c->arena.p + starts[code], p, (size_t)n) == 0) {
                return (int32_t)code;
            }
        }
    }
    if (at != NULL) {
        *at = i;
    }
    return -1;
}

/* Room for a new string of n bytes, whatever else it takes (coder_reserve() aside): once
 * this succeeded, coding one more string cannot fail. 0, or FAILED_*. */
static int
coder_reserve_bytes(Coder *c, Py_ssize_t strings, Py_ssize_t n)
{
    if (c->count > INT32_MAX - 1 - strings) {
        return FAILED_TOO_MANY;
    }
    Py_ssize_t offsets = (strings + (c->count == 0)) * (Py_ssize_t)sizeof(Py_ssize_t);
    return buf_reserve(&c->arena, n) < 0 || buf_reserve(&c->starts, offsets) < 0 ? FAILED_MEMORY
                                                                                : 0;
}

/* The code of p[:n] whose hash_bytes() is h, a new one when it was not seen before; -1 (NA)
 * for ""; FAILED_* on error. */
static int32_t
coder_code_hashed(Coder *c, const char *p, Py_ssize_t n, uint64_t h)
{
    if (n == 0) {
        return -1;
    }
    if (coder_reserve(c, 1) < 0) {
        return FAILED_MEMORY;
    }
    Py_ssize_t i;
    int32_t found = coder_find(c, p, n, h, &i);
    if (found >= 0) {
        return found;
    }
    int failed = coder_reserve_bytes(c, 1, n);
    if (failed < 0) {
        return failed;
    }
    if (c->count == 0) {
        Py_ssize_t zero = 0;
        buf_put(&c->starts, &zero, sizeof zero);
    }
    Py_ssize_t end = c->arena.n + n;
    buf_put(&c->arena, p, n); /* neither can fail: coder_reserve_bytes() made the room */
    buf_put(&c->starts, &end, sizeof end);
    c->slots[i] = (Slot){(uint32_t)(h >> 32), (int32_t)(c->count + 1)};
    return (int32_t)c->count++;
}

/* A coder of at most this many strings is searched string by string: they are in the CPU's
 * caches, and comparing a few lengths costs less than hashing (method, CSeq method, reason,
 * User-Agent: most rows' text). */
#define FEW_STRINGS 16

/* The code of p[:n] (n > 0) when the coder has few strings (FEW_STRINGS) and it is one of
 * them; -1 otherwise (not among them, or too many strings to search: hash it). */
static int32_t
coder_find_few(const Coder *c, const char *p, Py_ssize_t n)
{
    if (c->count > FEW_STRINGS) {
        return -1;
    }
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    for (Py_ssize_t code = 0; code < c->count; code++) {
        if (starts[code + 1] - starts[code] == n &&
            memcmp(c->arena.p + starts[code], p, (size_t)n) == 0) {
            return (int32_t)code;
        }
    }
    return -1;
}

/* A quick hash of p[:n] (n > 0), which picks a slot of the recent cache. Unkeyed, so a
 * crafted capture can make its values share slots: they then miss the cache, whose misses
 * go to the keyed table as every lookup did before; a wrong code is never given (the
 * string is compared). */
static uint64_t
quick_hash(const char *p, Py_ssize_t n)
{
    const uint64_t mul = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * mul, w;
    uint32_t a, b;
    if (n >= 8) {
        const char *last = p + n - 8;
        for (; p < last; p += 8) {
            memcpy(&w, p, sizeof w);
            h = (h ^ w) * mul;
            h ^= h >> 32;
        }
        memcpy(&w, last, sizeof w); /* the last eight bytes, which may overlap the word before */
    } else if (n >= 4) {
        memcpy(&a, p, sizeof a);
        memcpy(&b, p + n - 4, sizeof b);
        w = (uint64_t)a << 32 | b;
    } else {
        w = (uint64_t)(unsigned char)p[0] << 16 | (uint64_t)(unsigned char)p[n / 2] << 8 |
            (unsigned char)p[n - 1];
    }
    h = (h ^ w) * mul;
    return h ^ (h >> 29);
}

/* The code of p[:n] (n > 0, its quick_hash() q) when the recent cache holds it; -1 otherwise. */
static int32_t
coder_find_recent(const Coder *c, const char *p, Py_ssize_t n, uint64_t q)
{
    if (c->recent == NULL) {
        return -1;
    }
    Slot slot = c->recent[q >> (64 - RECENT_BITS)];
    Py_ssize_t code = slot.code1 - 1;
    if (slot.code1 == 0 || slot.check != (uint32_t)q || code >= c->count) {
        return -1; /* empty, another string's, or a string taken back (columns_undo_row) */
    }
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    if (starts[code + 1] - starts[code] != n || memcmp(c->arena.p + starts[code], p, (size_t)n)) {
        return -1;
    }
    return (int32_t)code;
}

/* Note ``code`` (a coder's answer for a string of quick_hash() q) in the recent cache, made
 * once the coder holds more than FEW_STRINGS (which coder_find_few() searches faster). Without
 * memory for it, nothing is noted: the cache only saves time. */
static void
coder_note_recent(Coder *c, uint64_t q, int32_t code)
{
    if (code < 0 || c->count <= FEW_STRINGS) {
        return;
    }
    if (c->recent == NULL && (c->recent = PyMem_RawCalloc(RECENT, sizeof(Slot))) == NULL) {
        return;
    }
    c->recent[q >> (64 - RECENT_BITS)] = (Slot){(uint32_t)q, code + 1};
}

/* The code of p[:n], a new one when it was not seen before; -1 (NA) for ""; FAILED_* on
 * error. */
static int32_t
coder_code(Coder *c, const char *p, Py_ssize_t n)
{
    if (n == 0) {
        return -1;
    }
    int32_t code = coder_find_few(c, p, n);
    if (code >= 0) {
        return code;
    }
    uint64_t q = quick_hash(p, n);
    code = coder_find_recent(c, p, n, q);
    if (code < 0) {
        code = coder_code_hashed(c, p, n, hash_bytes(p, n));
        coder_note_recent(c, q, code);
    }
    return code;
}

/* Hash p[:n] for coder_code_hashed() and start loading its first slot: a column of many
 * distinct values (Call-ID, branch, tags) has a table far larger than the CPU caches, and
 * waiting for each row's slots one after the other was most of the time of scan(); started
 * for all of a row's columns first, the loads overlap. 0, or FAILED_MEMORY. */
static int
coder_prepare(Coder *c, const char *p, Py_ssize_t n, uint64_t *h)
{
    if (n == 0 || coder_reserve(c, 1) < 0) {
        return n == 0 ? 0 : FAILED_MEMORY;
    }
    *h = hash_bytes(p, n);
#if defined(__GNUC__) /* GCC and Clang; elsewhere the loads wait their turn */
    __builtin_prefetch(&c->slots[*h & (uint64_t)c->mask]);
#endif
    return 0;
}

static void
coder_free(Coder *c)
{
    PyMem_RawFree(c->arena.p);
    PyMem_RawFree(c->starts.p);
    PyMem_RawFree(c->slots);
    PyMem_RawFree(c->recent);
}

/* Where a column's value comes from: a Payload field, a SipMessage field, or the row's
 * duplicate mark (1 for a capture duplicate kept as a row), which the caller gives beside the
 * message, so that a row and its mark are added, or taken back, together. */
enum { RECORD_PAYLOAD = 0, RECORD_MESSAGE = 1, RECORD_MARK = 2 };

/* One column: where its value comes from and its buffer. */
typedef struct {
    PyObject *name;
    char kind;  /* 'q' int64, 'i' int32, 'h' int16, 'b' bool, 't' text (codes, see width) */
    int width;  /* bytes per code of a text column: code_width() of its strings so far */
    int record; /* RECORD_*: a Payload field, a SipMessage field, or the duplicate mark */
    Py_ssize_t field;
    Buf data;
    Coder coder;
    const Span *text; /* this row's value (a scanned text column), as the first pass found it */
    uint64_t hash;  /* its hash, from coder_prepare() */
    uint64_t quick; /* its quick_hash() */
    int32_t known;  /* its code when coder_find_few() or coder_find_recent() found it; -1
                     * otherwise (NA or empty, or neither found it: then hashed) */
    Py_ssize_t count_before; /* its strings before the row being added (columns_undo_row) */
} Column;

typedef struct {
    PyObject_HEAD
    Py_ssize_t ncols, rows;
    Py_ssize_t payload_cols; /* the columns given beside the message (records 0 and 2) */
    int busy;                /* scan(), append() or a held walk, without the GIL: no other call */
    Column *cols;
} ColumnsObject;

static PyTypeObject ColumnsType;
static int columns_busy(ColumnsObject *self);

/* A Payload field read while the GIL is held, for a row put without it (Value: _columns.h). */

/* A payload staged for the parse: the tuple (referenced meanwhile), its message and whether
 * it is delimited (HEP). */
typedef struct {
    PyObject *payload;
    const char *data;
    Py_ssize_t size;
    int delimited;
} Staged;

/* Append a number, clamped to the column's width (as numpy.clip does in the Python table).
 * 0, or FAILED_MEMORY. */
static int
column_put_number(Column *col, long long v)
{
    if (buf_reserve(&col->data, 8) < 0) {
        return FAILED_MEMORY;
    }
    char *at = col->data.p + col->data.n;
    switch (col->kind) {
    case 'q': {
        int64_t x = v;
        memcpy(at, &x, sizeof x);
        col->data.n += sizeof x;
        return 0;
    }
    case 'i': {
        int32_t x = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        memcpy(at, &x, sizeof x);
        col->data.n += sizeof x;
        return 0;
    }
    case 'h': {
        int16_t x = v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : (int16_t)v;
        memcpy(at, &x, sizeof x);
        col->data.n += sizeof x;
        return 0;
    }
    default:
        *at = v != 0;
        col->data.n += 1;
        return 0;
    }
}

/* Bytes per code of a text column of ``count`` distinct strings: the narrowest integer that
 * pandas keeps a categorical's codes in (int8 below 127 categories, int16 below 32,767), so
 * the frame takes the builder's codes as they are, and a column of few distinct values (most
 * of them) holds a byte per row, not four. */
static int
code_width(Py_ssize_t count)
{
    return count < INT8_MAX ? 1 : count < INT16_MAX ? 2 : 4;
}

/* Row ``r``'s code in a text column. */
static int32_t
code_at(const Column *col, Py_ssize_t r)
{
    const char *at = col->data.p + r * col->width;
    switch (col->width) {
    case 1: return *(const int8_t *)at;
    case 2: {
        int16_t x;
        memcpy(&x, at, sizeof x);
        return x;
    }
    default: {
        int32_t x;
        memcpy(&x, at, sizeof x);
        return x;
    }
    }
}

/* Write ``code`` at ``at`` in ``width`` bytes (it fits: code_width()). */
static void
code_write(char *at, int width, int32_t code)
{
    if (width == 1) {
        *(int8_t *)at = (int8_t)code;
    } else if (width == 2) {
        int16_t x = (int16_t)code;
        memcpy(at, &x, sizeof x);
    } else {
        memcpy(at, &code, sizeof code);
    }
}

/* Widen a text column's codes to ``width`` bytes, in place from the last row back (each
 * row's new place starts at or after its old one). 0, or FAILED_MEMORY. */
static int
column_widen(Column *col, int width)
{
    Py_ssize_t rows = col->data.n / col->width;
    if (buf_reserve(&col->data, rows * (width - col->width)) < 0) {
        return FAILED_MEMORY;
    }
    for (Py_ssize_t r = rows - 1; r >= 0; r--) {
        code_write(col->data.p + r * width, width, code_at(col, r));
    }
    col->data.n = rows * width;
    col->width = width;
    return 0;
}

/* Append a code; ``code`` may be a coder's failure, returned as it is. 0, or FAILED_*. */
static int
column_put_code(Column *col, int32_t code)
{
    if (code < -1) {
        return code;
    }
    int width = code_width(col->coder.count);
    if (width != col->width && column_widen(col, width) < 0) {
        return FAILED_MEMORY;
    }
    if (buf_reserve(&col->data, width) < 0) {
        return FAILED_MEMORY;
    }
    code_write(col->data.p + col->data.n, width, code);
    col->data.n += width;
    return 0;
}

/* Append a staged Payload field (no GIL needed). 0, or FAILED_*. */
static int
column_put_value(Column *col, const Value *value)
{
    if (col->kind != 't') {
        return column_put_number(col, value->number);
    }
    return column_put_code(col, value->p == NULL ? -1 : coder_code(&col->coder, value->p, value->n));
}

/* Read a Payload field for column_put_value(); the GIL must be held. Text without a UTF-8 form
 * of its own (lone surrogates) is encoded into a bytes object that ``keep`` holds. 0, or -1
 * (the field is of a type the column does not take; an exception is set). */
static int
value_of(const Column *col, PyObject *field, Value *out, PyObject *keep)
{
    out->p = NULL;
    out->n = 0;
    out->number = -1;
    if (field == Py_None) {
        return 0;
    }
    if (col->kind != 't') {
        out->number = PyLong_AsLongLong(field);
        return out->number == -1 && PyErr_Occurred() ? -1 : 0;
    }
    if (!PyUnicode_Check(field)) {
        PyErr_SetString(PyExc_TypeError, "text column value must be str or None");
        return -1;
    }
    out->p = PyUnicode_AsUTF8AndSize(field, &out->n);
    if (out->p != NULL) {
        return 0;
    }
    PyErr_Clear();
    PyObject *raw = PyUnicode_AsEncodedString(field, "utf-8", "surrogatepass");
    if (raw == NULL || PyList_Append(keep, raw) < 0) {
        Py_XDECREF(raw);
        return -1;
    }
    Py_DECREF(raw);
    out->p = PyBytes_AS_STRING(raw);
    out->n = PyBytes_GET_SIZE(raw);
    return 0;
}

#define CODECS_FIELD 29

/* SipMessage field ``field`` of a scanned message: a number (*text == NULL, -1 when None) or
 * a span of text (*text set; NULL p for None). The order is build()'s; the codecs (field
 * CODECS_FIELD), which are no span of the message, are columns_put_row's. */
static void
scanned_field(const Scan *m, Py_ssize_t field, long long *number, const Span **text)
{
    static const Span none = {NULL, 0};
    const Span *values = m->values;
    *text = NULL;
    *number = -1;
    switch (field) {
    case 0: *number = m->is_request; return;
    case 1: *text = &m->method; return;
    case 2: *text = &m->request_uri; return;
    case 3: *number = m->status; return;
    case 4: *text = &m->reason; return;
    case 5: *text = &values[CALL_ID]; return;
    case 6: *number = (long long)m->cseq; return;
    case 7: *text = &m->cseq_method; return;
    case 8: *text = &m->branch; return;
    case 9: *number = m->via_count; return;
    case 10: *text = &m->from_uri; return;
    case 11: *text = &m->from_tag; return;
    case 12: *text = &m->to_uri; return;
    case 13: *text = &m->to_tag; return;
    case 14: *text = &values[USER_AGENT]; return;
    case 15: *text = &values[SERVER]; return;
    case 16: if (values[RETRY_AFTER].p != NULL) *number = (long long)m->retry_after; return;
    case 17: *text = values[RETRY_AFTER].p != NULL ? &values[RETRY_AFTER] : &none; return;
    case 18: if (m->has_duration) *number = (long long)m->duration; return;
    case 19: if (m->has_expires) *number = (long long)m->expires; return;
    case 20: if (m->has_min_expires) *number = (long long)m->min_expires; return;
    case 21:
        *number = values[AUTHORIZATION].p != NULL || values[PROXY_AUTHORIZATION].p != NULL;
        return;
    case 22: if (m->has_length) *number = (long long)m->content_length; return;
    case 23: *number = m->body_length; return;
    case 24: *number = m->size; return;
    case 25: *text = &values[CONTENT_TYPE]; return;
    case 26: *text = &values[REASON]; return;
    case 27: *text = &m->sdp_address; return;
    case 30: *text = &values[X_CID]; return;
    case 31: *text = &values[X_CALL_ID]; return;
    case 32: *text = &values[P_CHARGING_VECTOR]; return;
    default: if (m->has_sdp_port) *number = m->sdp_port; return;
    }
}

/* Bytes per value of a number column. */
static int
number_size(char kind)
{
    return kind == 'q' ? 8 : kind == 'i' ? 4 : kind == 'h' ? 2 : 1;
}

/* Forget a coder's last string (its slot, bytes and offset): the one a failed row added. */
static void
coder_drop_last(Coder *c)
{
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    Py_ssize_t code = c->count - 1;
    const char *p = c->arena.p + starts[code];
    uint64_t h = hash_bytes(p, starts[code + 1] - starts[code]);
    Py_ssize_t i = (Py_ssize_t)(h & (uint64_t)c->mask);
    while (c->slots[i].code1 != code + 1) {
        i = (i + 1) & c->mask;
    }
    /* it was the last one placed, so no other string's probe runs past its slot */
    c->slots[i] = (Slot){0, 0};
    c->count = code;
}

/* Take back what a row that failed part-way wrote (no GIL needed): every column as it was
 * after ``self->rows`` rows. A text column gains at most one string per row, its last, which
 * goes again (count_before tells), and its codes narrow back if that string widened them. */
static void
columns_undo_row(ColumnsObject *self)
{
    Py_ssize_t rows = self->rows;
    for (Py_ssize_t k = 0; k < self->ncols; k++) {
        Column *col = &self->cols[k];
        if (col->kind != 't') {
            col->data.n = rows * number_size(col->kind);
            continue;
        }
        Coder *c = &col->coder;
        if (c->count > col->count_before) {
            coder_drop_last(c);
        }
        /* the dropped string's bytes and offset go with it */
        c->arena.n = c->count > 0 ? ((const Py_ssize_t *)c->starts.p)[c->count] : 0;
        c->starts.n = c->count > 0 ? (c->count + 1) * (Py_ssize_t)sizeof(Py_ssize_t) : 0;
        int width = code_width(c->count);
        for (Py_ssize_t r = 0; width != col->width && r < rows; r++) {
            /* narrower: each row's new place is at or before its old one */
            code_write(col->data.p + r * width, width, code_at(col, r));
        }
        col->width = width;
        col->data.n = rows * width;
    }
}

/* One row of a scanned message: its Payload fields and duplicate mark staged in ``values``
 * (one per RECORD_PAYLOAD or RECORD_MARK column, in column order), its SipMessage fields from
 * ``scanned``. Runs without the GIL.
 * A failure part-way is taken back (columns_undo_row): no part of the row stays. 0, or
 * FAILED_*. */
static int
columns_put_scanned(ColumnsObject *self, const Value *values, const Scan *scanned)
{
    for (Py_ssize_t k = 0; k < self->ncols; k++) {
        Column *col = &self->cols[k];
        if (col->kind != 't') {
            continue;
        }
        col->count_before = col->coder.count;
        if (col->record == RECORD_MESSAGE && col->field != CODECS_FIELD) {
            long long number;
            const Span *text;
            scanned_field(scanned, col->field, &number, &text);
            col->text = text; /* a text field: columns_new() sees to it */
            /* found among few strings or recent ones, or hashed and its slot's load begun */
            Coder *c = &col->coder;
            col->known = -1;
            if (text != NULL && text->n > 0 &&
                (col->known = coder_find_few(c, text->p, text->n)) < 0) {
                col->quick = quick_hash(text->p, text->n);
                col->known = coder_find_recent(c, text->p, text->n, col->quick);
            }
            if (col->known < 0 && coder_prepare(c, text->p, text->n, &col->hash) < 0) {
                return FAILED_MEMORY; /* nothing written yet */
            }
        }
    }
    int failed = 0;
    for (Py_ssize_t k = 0; k < self->ncols && failed == 0; k++) {
        Column *col = &self->cols[k];
        if (col->record != RECORD_MESSAGE) {
            failed = column_put_value(col, values++);
        } else if (col->field == CODECS_FIELD && col->kind == 't') {
            char small[256];
            Py_ssize_t n = codecs_length(scanned);
            char *joined = n <= (Py_ssize_t)sizeof small ? small : PyMem_RawMalloc((size_t)n);
            if (joined == NULL) {
                failed = FAILED_MEMORY;
                break;
            }
            codecs_join(scanned, joined);
            failed = column_put_code(col, coder_code(&col->coder, joined, n));
            if (joined != small) {
                PyMem_RawFree(joined);
            }
        } else if (col->kind != 't') {
            long long number;
            const Span *text;
            scanned_field(scanned, col->field, &number, &text);
            failed = column_put_number(col, number);
        } else if (col->known >= 0) {
            failed = column_put_code(col, col->known);
        } else {
            const Span *text = col->text;
            int32_t code = coder_code_hashed(&col->coder, text->p, text->n, col->hash);
            if (text->n > 0) {
                coder_note_recent(&col->coder, col->quick, code);
            }
            failed = column_put_code(col, code);
        }
    }
    if (failed < 0) {
        columns_undo_row(self);
        return failed;
    }
    self->rows++;
    return 0;
}

/* Most columns a builder may have: put_datagram() stages a row's Payload fields on the stack. */
#define MAX_COLUMNS 64

/* ColumnsApi.parse: phase one on a datagram of the C walk. */
static int
parse_datagram(const char *data, Py_ssize_t size, void *scanned)
{
    return scan(data, size, 0, (Scan *)scanned);
}

/* ColumnsApi.put: the row of a datagram the C walk parsed, its Payload fields by index and
 * its duplicate mark. The text lives only for this call. */
static int
put_datagram(PyObject *columns, const void *scanned, const Value *fields, Py_ssize_t count,
             int duplicate)
{
    ColumnsObject *self = (ColumnsObject *)columns;
    Value values[MAX_COLUMNS];
    Py_ssize_t row = 0;
    for (Py_ssize_t k = 0; k < self->ncols; k++) {
        Column *col = &self->cols[k];
        if (col->record == RECORD_MARK) {
            values[row++] = (Value){NULL, 0, duplicate};
        } else if (col->record == RECORD_PAYLOAD) {
            values[row++] = col->field < count ? fields[col->field] : (Value){NULL, 0, -1};
        }
    }
    return columns_put_scanned(self, values, (const Scan *)scanned);
}

/* ColumnsApi.hold: the busy mark a scan() sets, for a walk that adds rows without the GIL. */
static int
hold_columns(PyObject *columns, int on)
{
    ColumnsObject *self = (ColumnsObject *)columns;
    if (on && columns_busy(self)) {
        return -1;
    }
    self->busy = on;
    return 0;
}

/* One row of a message that sip.py parsed: every field from the two tuples, and its duplicate
 * mark. The GIL must be held. Every value is read before any column takes one, and a failure
 * part-way (no memory) is taken back (columns_undo_row), so no part of the row stays. 0, or
 * -1 with an exception set. */
static int
columns_put_row(ColumnsObject *self, PyObject *payload, PyObject *message, int duplicate)
{
    Value values[MAX_COLUMNS];
    PyObject *keep = PyList_New(0); /* UTF-8 of text with lone surrogates (value_of) */
    if (keep == NULL) {
        return -1;
    }
    int failed = 0;
    for (Py_ssize_t k = 0; k < self->ncols && failed == 0; k++) {
        Column *col = &self->cols[k];
        PyObject *record = col->record == RECORD_PAYLOAD ? payload : message;
        col->count_before = col->coder.count;
        if (col->record == RECORD_MARK) {
            values[k] = (Value){NULL, 0, duplicate};
        } else if (col->field >= PyTuple_GET_SIZE(record)) {
            PyErr_SetString(PyExc_IndexError, "column field beyond the record");
            failed = FAILED_RAISED;
        } else if (value_of(col, PyTuple_GET_ITEM(record, col->field), &values[k], keep) < 0) {
            failed = FAILED_RAISED;
        }
    }
    for (Py_ssize_t k = 0; k < self->ncols && failed == 0; k++) {
        failed = column_put_value(&self->cols[k], &values[k]);
        if (failed < 0) {
            columns_undo_row(self);
        }
    }
    Py_DECREF(keep);
    if (failed < 0) {
        raise_failure(failed);
        return -1;
    }
    self->rows++;
    return 0;
}

/* Is SipMessage field ``field`` text (a number column cannot hold it)? */
static int
is_text_field(Py_ssize_t field)
{
    static const Scan blank;
    long long number;
    const Span *text;
    scanned_field(&blank, field, &number, &text);
    return text != NULL || field == CODECS_FIELD;
}

static void
columns_dealloc(ColumnsObject *self)
{
    for (Py_ssize_t k = 0; k < self->ncols; k++) {
        Py_XDECREF(self->cols[k].name);
        PyMem_RawFree(self->cols[k].data.p);
        coder_free(&self->cols[k].coder);
    }
    PyMem_Free(self->cols);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
columns_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *layout;
    if (no_keywords("Columns", kwargs) < 0) {
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!:Columns", &PyTuple_Type, &layout)) {
        return NULL;
    }
    ColumnsObject *self = (ColumnsObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(layout);
    if (n > MAX_COLUMNS) {
        PyErr_Format(PyExc_ValueError, "at most %d columns", MAX_COLUMNS);
        Py_DECREF(self);
        return NULL;
    }
    self->cols = PyMem_Calloc((size_t)(n ? n : 1), sizeof *self->cols);
    if (self->cols == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        Column *col = &self->cols[k];
        PyObject *name;
        int kind;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(layout, k), "UCin", &name, &kind, &col->record,
                              &col->field)) {
            Py_DECREF(self);
            return NULL;
        }
        self->ncols = k + 1; /* from here on dealloc frees this column */
        col->name = Py_NewRef(name);
        col->kind = (char)kind;
        col->width = 1;
        if (strchr("qihbt", kind) == NULL || col->record < RECORD_PAYLOAD ||
            col->record > RECORD_MARK || col->field < 0 ||
            (col->record == RECORD_MESSAGE && col->field >= FIELDS) ||
            (col->record == RECORD_MESSAGE && (kind == 't') != is_text_field(col->field)) ||
            (col->record == RECORD_MARK && (kind != 'b' || col->field != 0))) {
            PyErr_Format(PyExc_ValueError, "bad layout for column %R", name);
            Py_DECREF(self);
            return NULL;
        }
        self->payload_cols += col->record != RECORD_MESSAGE;
    }
    return (PyObject *)self;
}

PyDoc_STRVAR(columns_scan_doc,
"scan(payloads, start, data_at, encap_at, truncated_at, delimiting[, copies]) -> int\n\n"
"Add a row for each Payload from ``start`` on whose message is in the common shape; stop at\n"
"the first that is not (or is truncated) and return its index (len(payloads) when none).\n"
"``copies`` (bytes-like, a byte per payload; None: all 0) gives each row's duplicate mark.\n"
"The messages are parsed with the GIL released, so other threads run meanwhile.");

/* Payloads staged per release of the GIL: their fields stay in the CPU's caches until the
 * parse reads them. */
#define STAGED_AT_ONCE 256

/* Raise when another thread is inside this builder's scan(), append() or a held walk (which
 * run without the GIL). */
static int
columns_busy(ColumnsObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Columns used by two threads at once");
        return 1;
    }
    return 0;
}

static void
unstage(Staged *staged, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(staged[i].payload);
    }
}

/* Stage the payloads from ``first`` to ``end`` for the parse, up to the first that is no candidate
 * (truncated, its data not bytes, a field the columns do not take): that one is Python's.
 * The staged tuples are referenced (released by unstage()). The index of that payload, or -1
 * on error (nothing staged then). */
static Py_ssize_t
stage(ColumnsObject *self, PyObject *payloads, Py_ssize_t first, Py_ssize_t end,
      const Py_ssize_t at[3], PyObject *delimiting, const Py_buffer *marks, Staged *staged,
      Value *values, PyObject *keep)
{
    Py_ssize_t i;
    for (i = first; i < end; i++) {
        PyObject *payload = PyList_GET_ITEM(payloads, i);
        Py_ssize_t size = PyTuple_Check(payload) ? PyTuple_GET_SIZE(payload) : 0;
        if (at[0] < 0 || at[1] < 0 || at[2] < 0 || at[0] >= size || at[1] >= size ||
            at[2] >= size) {
            break;
        }
        PyObject *data = PyTuple_GET_ITEM(payload, at[0]);
        if (PyTuple_GET_ITEM(payload, at[2]) != Py_False || !PyBytes_Check(data)) {
            break;
        }
        int delimited = PyObject_RichCompareBool(PyTuple_GET_ITEM(payload, at[1]), delimiting,
                                                 Py_EQ);
        if (delimited < 0) {
            unstage(staged, i - first);
            return -1;
        }
        Value *row = values + (i - first) * self->payload_cols;
        /* the previous payload: a field that is the same object has the same value */
        PyObject *before = i > first ? staged[i - first - 1].payload : NULL;
        int usable = 1;
        for (Py_ssize_t k = 0; usable && k < self->ncols; k++) {
            const Column *col = &self->cols[k];
            if (col->record == RECORD_MARK) {
                int duplicate = marks->buf != NULL && ((const char *)marks->buf)[i] != 0;
                *row++ = (Value){NULL, 0, duplicate};
                continue;
            }
            if (col->record != RECORD_PAYLOAD) {
                continue;
            }
            /* a field it cannot take goes to Python, whose add() raises for it */
            usable = col->field < size;
            PyObject *field = usable ? PyTuple_GET_ITEM(payload, col->field) : NULL;
            if (usable && before != NULL && col->field < PyTuple_GET_SIZE(before) &&
                PyTuple_GET_ITEM(before, col->field) == field) {
                *row = row[-self->payload_cols];
            } else if (usable) {
                usable = value_of(col, field, row, keep) == 0;
            }
            row++;
        }
        if (!usable) {
            PyErr_Clear();
            break;
        }
        Py_INCREF(payload);
        staged[i - first] =
            (Staged){payload, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), delimited};
    }
    return i;
}

static PyObject *
columns_scan(ColumnsObject *self, PyObject *args)
{
    PyObject *payloads, *delimiting, *copies = Py_None;
    Py_ssize_t start, at[3];
    if (columns_busy(self) ||
        !PyArg_ParseTuple(args, "O!nnnnU|O", &PyList_Type, &payloads, &start, &at[0], &at[1],
                          &at[2], &delimiting, &copies)) {
        return NULL;
    }
    Py_ssize_t first = start < 0 ? 0 : start, n = PyList_GET_SIZE(payloads);
    if (first >= n) {
        return PyLong_FromSsize_t(first);
    }
    Py_buffer marks = {.buf = NULL};
    if (copies != Py_None) {
        if (PyObject_GetBuffer(copies, &marks, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        if (marks.len < n) {
            PyBuffer_Release(&marks);
            PyErr_SetString(PyExc_ValueError, "scan() takes a duplicate mark per payload");
            return NULL;
        }
    }
    Py_ssize_t cols = self->payload_cols ? self->payload_cols : 1;
    Staged *staged = PyMem_RawMalloc(STAGED_AT_ONCE * sizeof *staged);
    Value *values = PyMem_RawMalloc(STAGED_AT_ONCE * (size_t)cols * sizeof *values);
    PyObject *keep = PyList_New(0);
    if (staged == NULL || values == NULL || keep == NULL) {
        PyMem_RawFree(staged);
        PyMem_RawFree(values);
        Py_XDECREF(keep);
        if (marks.buf != NULL) {
            PyBuffer_Release(&marks);
        }
        return keep == NULL ? NULL : PyErr_NoMemory();
    }
    Py_ssize_t i = first, ready = first;
    int failed = 0;
    while (i < n) {
        Py_ssize_t end = n - i > STAGED_AT_ONCE ? i + STAGED_AT_ONCE : n, chunk = i;
        ready = stage(self, payloads, chunk, end, at, delimiting, &marks, staged, values, keep);
        if (ready <= chunk) {
            break;
        }
        /* The staged tuples hold every byte the parse reads: the GIL can go. */
        self->busy = 1;
        Py_BEGIN_ALLOW_THREADS
        for (; i < ready; i++) {
            const Staged *p = &staged[i - chunk];
            Scan m;
            if (!scan(p->data, p->size, p->delimited, &m)) {
                break;
            }
            failed = columns_put_scanned(self, values + (i - chunk) * self->payload_cols, &m);
            if (failed < 0) {
                break;
            }
        }
        Py_END_ALLOW_THREADS
        self->busy = 0;
        unstage(staged, ready - chunk);
        if (i < end) {
            break; /* declined, failed, or the next payload is not a candidate */
        }
    }
    PyMem_RawFree(staged);
    PyMem_RawFree(values);
    Py_DECREF(keep);
    if (marks.buf != NULL) {
        PyBuffer_Release(&marks);
    }
    if (ready < 0 || failed < 0) {
        return raise_failure(failed);
    }
    return PyLong_FromSsize_t(i);
}

PyDoc_STRVAR(columns_add_doc,
"add(payload, message[, duplicate]) -> None\n\n"
"Add the row of a message that sip.py parsed, with its duplicate mark (default False).");

static PyObject *
columns_add(ColumnsObject *self, PyObject *args)
{
    PyObject *payload, *message;
    int duplicate = 0;
    if (columns_busy(self) ||
        !PyArg_ParseTuple(args, "O!O!|p", &PyTuple_Type, &payload, &PyTuple_Type, &message,
                          &duplicate) ||
        columns_put_row(self, payload, message, duplicate) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(columns_append_doc,
"append(other) -> None\n\n"
"Move every row of ``other``, a builder of the same layout, after this one's rows: numbers\n"
"copied, text coded again against this builder's strings (new ones in the order ``other``\n"
"met them, as one builder fed both batches would have). ``other`` is empty afterwards.\n"
"The rows are moved with the GIL released, so other threads run meanwhile; a call on either\n"
"builder from another thread meanwhile raises RuntimeError, as during scan().");

/* Free a column's rows and strings, keeping its layout. */
static void
column_clear(Column *col)
{
    PyMem_RawFree(col->data.p);
    col->data = (Buf){NULL, 0, 0};
    coder_free(&col->coder);
    memset(&col->coder, 0, sizeof col->coder);
    col->width = 1;
}

/* Make room in ``to`` for ``from``'s rows (same kind), so that appending them cannot fail,
 * without changing ``to``'s rows or strings: a text column looks ``from``'s strings up
 * (``*remap``, PyMem_Raw: at code + 1 the code in ``to``, NA at 0, NEW_STRING for a string
 * ``to`` lacks) and reserves what the new ones need. 0, or FAILED_*. */
#define NEW_STRING INT32_MIN

static int
column_prepare_append(Column *to, const Column *from, int32_t **remap)
{
    if (to->kind != 't') {
        return buf_reserve(&to->data, from->data.n);
    }
    const Coder *c = &from->coder;
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    int32_t *codes = *remap = PyMem_RawMalloc((size_t)(c->count + 1) * sizeof *codes);
    if (codes == NULL) {
        return FAILED_MEMORY;
    }
    codes[0] = -1;
    Py_ssize_t strings = 0, bytes = 0;
    for (Py_ssize_t code = 0; code < c->count; code++) {
        const char *p = c->arena.p + starts[code];
        Py_ssize_t n = starts[code + 1] - starts[code];
        codes[code + 1] = coder_find(&to->coder, p, n, hash_bytes(p, n), NULL);
        if (codes[code + 1] < 0) {
            codes[code + 1] = NEW_STRING;
            strings++;
            bytes += n;
        }
    }
    int width = code_width(to->coder.count + strings);
    width = width > to->width ? width : to->width;
    Py_ssize_t rows = to->data.n / to->width + from->data.n / from->width;
    int failed = coder_reserve(&to->coder, strings);
    if (failed == 0) {
        failed = coder_reserve_bytes(&to->coder, strings, bytes);
    }
    return failed < 0 ? failed : buf_reserve(&to->data, rows * width - to->data.n);
}

/* Append ``from``'s rows to ``to``, prepared by column_prepare_append(): the new strings are
 * coded in the order ``from`` met them. Cannot fail. */
static void
column_append(Column *to, const Column *from, int32_t *remap)
{
    if (to->kind != 't') {
        if (from->data.n > 0) {
            memcpy(to->data.p + to->data.n, from->data.p, (size_t)from->data.n);
            to->data.n += from->data.n;
        }
        return;
    }
    const Coder *c = &from->coder;
    const Py_ssize_t *starts = (const Py_ssize_t *)c->starts.p;
    for (Py_ssize_t code = 0; code < c->count; code++) {
        if (remap[code + 1] == NEW_STRING) {
            const char *p = c->arena.p + starts[code];
            Py_ssize_t n = starts[code + 1] - starts[code];
            remap[code + 1] = coder_code_hashed(&to->coder, p, n, hash_bytes(p, n));
        }
    }
    int width = code_width(to->coder.count);
    if (width != to->width) {
        column_widen(to, width);
    }
    Py_ssize_t rows = from->data.n / from->width;
    for (Py_ssize_t r = 0; r < rows; r++) {
        code_write(to->data.p + to->data.n, to->width, remap[code_at(from, r) + 1]);
        to->data.n += to->width;
    }
}

static PyObject *
columns_append(ColumnsObject *self, PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &ColumnsType)) {
        PyErr_SetString(PyExc_TypeError, "append() takes a Columns");
        return NULL;
    }
    ColumnsObject *other = (ColumnsObject *)arg;
    if (columns_busy(self) || columns_busy(other)) {
        return NULL;
    }
    int same = other != self && other->ncols == self->ncols;
    for (Py_ssize_t k = 0; same && k < self->ncols; k++) {
        const Column *a = &self->cols[k], *b = &other->cols[k];
        same = a->kind == b->kind && a->record == b->record && a->field == b->field &&
               PyUnicode_Compare(a->name, b->name) == 0;
    }
    if (!same) {
        PyErr_SetString(PyExc_ValueError, "append() takes another builder of the same layout");
        return NULL;
    }
    /* every column made ready first: a failure leaves both builders as they were */
    int32_t **remaps = PyMem_RawCalloc((size_t)(self->ncols ? self->ncols : 1), sizeof *remaps);
    if (remaps == NULL) {
        return PyErr_NoMemory();
    }
    /* Builder memory only from here (PyMem_Raw, SipHash): the GIL can go, as in scan(). The
     * rows of half a large file take seconds (0.47 s CPU for 1.3M of them), which the main
     * thread, waiting for this reading thread, spent unable to act on a Ctrl-C. */
    self->busy = other->busy = 1;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; failed == 0 && k < self->ncols; k++) {
        failed = column_prepare_append(&self->cols[k], &other->cols[k], &remaps[k]);
    }
    for (Py_ssize_t k = 0; k < self->ncols; k++) {
        if (failed == 0) {
            column_append(&self->cols[k], &other->cols[k], remaps[k]);
            column_clear(&other->cols[k]);
        }
        PyMem_RawFree(remaps[k]);
    }
    Py_END_ALLOW_THREADS
    self->busy = other->busy = 0;
    PyMem_RawFree(remaps);
    if (failed < 0) {
        return raise_failure(failed);
    }
    self->rows += other->rows;
    other->rows = 0;
    Py_RETURN_NONE;
}

/* Memory a builder gave away: a column's buffer, read through the buffer protocol (numpy's
 * frombuffer) with no copy, freed with the last view of it. */
typedef struct {
    PyObject_HEAD
    char *p;
    Py_ssize_t n;
} BlockObject;

static int
block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
    static char nothing[1]; /* an empty column has no memory; readers want a pointer all the same */
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p != NULL ? self->p : nothing, self->n,
                             0, flags);
}

static void
block_dealloc(BlockObject *self)
{
    PyMem_RawFree(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
block_len(BlockObject *self)
{
    return self->n;
}

/* Pickled as the bytes it holds (a table sent from a worker process): bytes on the other side. */
static PyObject *
block_reduce(BlockObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(O(y#))", (PyObject *)&PyBytes_Type, self->p != NULL ? self->p : "",
                         self->n);
}

static PyMethodDef block_methods[] = {
    {"__reduce__", (PyCFunction)block_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyBufferProcs block_as_buffer = {.bf_getbuffer = (getbufferproc)block_getbuffer};
static PySequenceMethods block_as_sequence = {.sq_length = (lenfunc)block_len};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipstats._sipscan.Block",
    .tp_basicsize = sizeof(BlockObject),
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_as_buffer,
    .tp_as_sequence = &block_as_sequence,
    .tp_methods = block_methods,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("A column's memory, given away by Columns.export()."),
};

/* An empty Block, to take a buffer's memory with block_take(). NULL with an exception. */
static BlockObject *
block_new(void)
{
    BlockObject *block = PyObject_New(BlockObject, &BlockType);
    if (block != NULL) {
        block->p = NULL;
        block->n = 0;
    }
    return block;
}

/* Move ``b``'s memory into the empty ``block`` (``b`` is empty afterwards). Cannot fail. */
static void
block_take(BlockObject *block, Buf *b)
{
    /* what the buffer grew by and did not fill goes back: the frame keeps the block */
    char *fitted = b->n > 0 && b->n < b->cap ? PyMem_RawRealloc(b->p, (size_t)b->n) : NULL;
    block->p = fitted != NULL ? fitted : b->p;
    block->n = b->n;
    *b = (Buf){NULL, 0, 0};
}

PyDoc_STRVAR(columns_export_doc,
"export() -> dict\n\n"
"Every column by name: the values (native byte order) for a number column, or (codes,\n"
"width, strings, offsets) for a text column: its codes as signed integers of ``width``\n"
"bytes (1, 2 or 4: the narrowest that pandas keeps that many categories' codes in), its\n"
"distinct strings in code order as UTF-8\n"
"back to back (lone surrogates passed through), and where each starts as native int64, one\n"
"more than there are strings. Each buffer is a Block, the builder's own memory given away (read it\n"
"with the buffer protocol). The rows move out: the object is empty afterwards.");

static PyObject *
columns_export(ColumnsObject *self, PyObject *Py_UNUSED(ignored))
{
    if (columns_busy(self)) {
        return NULL;
    }
    /* Every object is made first, its blocks still empty, and each text column's offsets
     * given their first entry: a failure there leaves the builder whole. Then the memory
     * moves into the blocks, which cannot fail. */
    Py_ssize_t count = self->ncols * 3;
    BlockObject **blocks = PyMem_Calloc((size_t)(count ? count : 1), sizeof *blocks);
    PyObject *out = PyDict_New();
    int made = blocks != NULL && out != NULL;
    for (Py_ssize_t k = 0; made && k < self->ncols; k++) {
        Column *col = &self->cols[k];
        int parts = col->kind == 't' ? 3 : 1;
        for (int part = 0; made && part < parts; part++) {
            made = (blocks[3 * k + part] = block_new()) != NULL;
        }
        if (made && col->kind == 't' && col->coder.count == 0 &&
            buf_reserve(&col->coder.starts, sizeof(Py_ssize_t)) < 0) {
            PyErr_NoMemory();
            made = 0;
        }
        PyObject *item = !made           ? NULL
                         : parts == 1    ? Py_NewRef(blocks[3 * k])
                                         : Py_BuildValue("(OiOO)", blocks[3 * k], col->width,
                                                         blocks[3 * k + 1], blocks[3 * k + 2]);
        made = item != NULL && PyDict_SetItem(out, col->name, item) == 0;
        Py_XDECREF(item);
    }
    if (made) {
        for (Py_ssize_t k = 0; k < self->ncols; k++) {
            Column *col = &self->cols[k];
            Coder *c = &col->coder;
            block_take(blocks[3 * k], &col->data);
            if (col->kind == 't') {
                /* the strings as they are held, no str made: a column of many distinct values
                 * (Call-ID, branch) would make hundreds of thousands */
                if (c->count == 0) {
                    Py_ssize_t none = 0;
                    buf_put(&c->starts, &none, sizeof none); /* reserved above */
                }
                block_take(blocks[3 * k + 1], &c->arena);
                block_take(blocks[3 * k + 2], &c->starts);
            }
            column_clear(col);
        }
        self->rows = 0;
    }
    for (Py_ssize_t i = 0; blocks != NULL && i < count; i++) {
        Py_XDECREF(blocks[i]);
    }
    PyMem_Free(blocks);
    if (!made) {
        Py_XDECREF(out);
        return blocks == NULL ? PyErr_NoMemory() : NULL;
    }
    return out;
}

static Py_ssize_t
columns_len(ColumnsObject *self)
{
    return self->rows;
}

static PyMethodDef columns_methods[] = {
    {"scan", (PyCFunction)columns_scan, METH_VARARGS, columns_scan_doc},
    {"add", (PyCFunction)columns_add, METH_VARARGS, columns_add_doc},
    {"append", (PyCFunction)columns_append, METH_O, columns_append_doc},
    {"export", (PyCFunction)columns_export, METH_NOARGS, columns_export_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods columns_as_sequence = {
    .sq_length = (lenfunc)columns_len,
};

static PyTypeObject ColumnsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipstats._sipscan.Columns",
    .tp_basicsize = sizeof(ColumnsObject),
    .tp_dealloc = (destructor)columns_dealloc,
    .tp_as_sequence = &columns_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("Columns(layout)\n--\n\n"
                        "The messages table under construction, in C. ``layout`` holds one\n"
                        "(name, kind, record, field) per column: kind 'q', 'i', 'h' (ints),\n"
                        "'b' (bool) or 't' (coded text); record 0 a Payload field, 1 a\n"
                        "SipMessage field, field its index; or record 2 (kind 'b', field 0)\n"
                        "the duplicate mark given with each row."),
    .tp_methods = columns_methods,
    .tp_new = columns_new,
};

static PyMethodDef methods[] = {
    {"set_message_type", set_message_type, METH_O,
     "set_message_type(cls)\n--\n\nThe tuple subclass (sip.SipMessage) parse() returns."},
    {"parse", (PyCFunction)(void (*)(void))parse, METH_FASTCALL,
     "parse(data, delimited, /)\n--\n\n"
     "sip.parse_message(data, delimited=delimited) for the common shape of a message, "
     "None for any other (the caller then parses it in Python)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "sipstats._sipscan",
    "C twin of sipstats.sip's fast path for the common shape of a SIP message.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* What the C walk calls (_columns.h). */
static ColumnsApi columns_api = {
    .version = COLUMNS_API_VERSION,
    .scanned_size = sizeof(Scan),
    .parse = parse_datagram,
    .put = put_datagram,
    .hold = hold_columns,
    .raise_failure = raise_failure,
    .columns_type = &ColumnsType,
};

PyMODINIT_FUNC
PyInit__sipscan(void)
{
    if (PyType_Ready(&ColumnsType) < 0 || PyType_Ready(&BlockType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    PyObject *api = module == NULL ? NULL : PyCapsule_New(&columns_api, COLUMNS_API_CAPSULE, NULL);
    if (module != NULL &&
        (api == NULL || PyModule_AddObjectRef(module, "Columns", (PyObject *)&ColumnsType) < 0 ||
         PyModule_AddIntConstant(module, "MESSAGE_FIELDS", FIELDS) < 0 ||
         PyModule_AddIntConstant(module, "INTERFACE_VERSION", INTERFACE_VERSION) < 0 ||
         PyModule_AddObjectRef(module, "COLUMNS_API", api) < 0)) {
        Py_CLEAR(module);
    }
    Py_XDECREF(api);
    return module;
}
