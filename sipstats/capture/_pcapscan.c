/* The record walks of sipstats.capture.pcap.PcapReader.read and pcapng.PcapngReader.read, the
 * hot path of sipstats.capture.decode.Decoder.packet, and the capture-duplicate filter
 * (sipstats.capture.duplicates.DuplicateFilter), in C, for the records that need no state.
 *
 * Most of a real capture is RTP, and most SIP rides in plain IPv4/UDP datagrams. For those
 * records Python's per-record cost (a loop turn, a method call, a few unpacks) is most of the
 * decode time, so a walk reads them without Python: a datagram that cannot be SIP is skipped;
 * a SIP datagram on a SIP port is, with an intake, judged by the duplicate filter and parsed
 * and added as a row of the messages table by the C builder of sipstats._sipscan
 * (_columns.h), with no Python object made and, for classic pcap, the GIL released; without
 * an intake it becomes a Payload. A walk stops, and hands the record back, at the first record
 * it is not sure of: anything else (TCP, fragments, IPv6 SIP, HEP, a GTP-U or VXLAN tunnel
 * port, a short or damaged record, a timestamp out of order, the end of the buffer; without an
 * intake a new address pair; with one a snaplen cut or a message the C parser declines).
 * Python then reads that record its usual way and calls back in, so the Python reader and
 * decoder stay the reference for every rule; tests compare both ways.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#include "../_columns.h"

/* RFC 3261 token characters (§25.1), the ones a start-line can begin with (sniff.START_BYTES). */
static unsigned char token_char[256];

static void init_tables(void)
{
    const char *token = "-!%*_+`'~.";
    for (int c = '0'; c <= '9'; c++) token_char[c] = 1;
    for (int c = 'A'; c <= 'Z'; c++) token_char[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) token_char[c] = 1;
    for (const char *p = token; *p; p++) token_char[(unsigned char)*p] = 1;
}

static inline uint32_t u32(const unsigned char *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

/* tunnels.TUNNEL_PORTS: GTP-U and VXLAN datagrams are unwrapped by the Python decoder. */
static inline int is_tunnel_port(unsigned port) { return port == 2152 || port == 4789; }

static inline int is_vlan(unsigned et)
{
    return et == 0x8100 || et == 0x88A8 || et == 0x9100 || et == 0x9200;
}

static inline int sip_version_at(const unsigned char *d, Py_ssize_t n, Py_ssize_t i)
{
    return i + 7 <= n && (d[i] | 0x20) == 's' && (d[i + 1] | 0x20) == 'i' &&
           (d[i + 2] | 0x20) == 'p' && d[i + 3] == '/' && d[i + 4] == '2' && d[i + 5] == '.' &&
           d[i + 6] == '0';
}

/* sniff.looks_like_sip: CRLFs skipped, then a request line or a status line. */
static int looks_like_sip(const unsigned char *d, Py_ssize_t n)
{
    Py_ssize_t i = 0, j;
    while (i < n && (d[i] == '\r' || d[i] == '\n')) i++;
    /* Method SP Request-URI SP SIP/2.0 (CRLF | LF | end) */
    for (j = i; j < n && token_char[d[j]]; j++) {}
    if (j > i && j < n && d[j] == ' ') {
        Py_ssize_t k = j + 1;
        while (k < n && d[k] != ' ' && d[k] != '\r' && d[k] != '\n') k++;
        if (k > j + 1 && k < n && d[k] == ' ' && sip_version_at(d, n, k + 1)) {
            Py_ssize_t e = k + 8;
            if (e == n || d[e] == '\n' || (d[e] == '\r' && e + 1 < n && d[e + 1] == '\n'))
                return 1;
        }
    }
    /* SIP/2.0 SP [1-9]DD ([ \r\n] | end) */
    if (sip_version_at(d, n, i) && i + 11 <= n && d[i + 7] == ' ' && d[i + 8] >= '1' &&
        d[i + 8] <= '9' && d[i + 9] >= '0' && d[i + 9] <= '9' && d[i + 10] >= '0' &&
        d[i + 10] <= '9') {
        Py_ssize_t e = i + 11;
        return e == n || d[e] == ' ' || d[e] == '\r' || d[e] == '\n';
    }
    return 0;
}

enum verdict { HAND_BACK, SKIP, KEEP };

typedef struct {
    int filtered; /* the user restricted ports: no SIP off them */
    unsigned char sip_port[65536 / 8];
} Rules;

static inline int port_in(const Rules *r, unsigned port)
{
    return r->sip_port[port >> 3] >> (port & 7) & 1;
}

/* The SIP ports (a frozenset of int) as a bitmap: a port test per datagram costs no object. */
static int set_ports(Rules *r, PyObject *ports)
{
    memset(r->sip_port, 0, sizeof r->sip_port);
    PyObject *iter = PyObject_GetIter(ports), *item;
    if (iter == NULL) return -1;
    while ((item = PyIter_Next(iter)) != NULL) {
        long port = PyLong_AsLong(item);
        Py_DECREF(item);
        if (port == -1 && PyErr_Occurred()) break;
        if (port >= 0 && port < 65536) r->sip_port[port >> 3] |= (unsigned char)(1 << (port & 7));
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

/* Decoder.packet's decision for the frame d[o:end]; on KEEP, *p / *udp_end bound the payload
 * and *ip the IPv4 header. */
static int classify(const Rules *r, int linktype, const unsigned char *d, Py_ssize_t o,
                    Py_ssize_t end,
                    Py_ssize_t *ip, Py_ssize_t *p_out, Py_ssize_t *udp_end_out,
                    unsigned *sport_out, unsigned *dport_out)
{
    unsigned et;
    Py_ssize_t n;
    if (linktype == 1) {
        if (end - o < 34) return HAND_BACK;
        et = be16(d + o + 12);
        n = o + 14;
    } else { /* 276: SLL2, 113: SLL */
        Py_ssize_t hlen = linktype == 276 ? 20 : 16;
        if (end - o < hlen + 20) return HAND_BACK;
        et = be16(d + (linktype == 276 ? o : o + 14));
        n = o + hlen;
    }
    while (is_vlan(et) && end - n >= 24) {
        et = be16(d + n + 2);
        n += 4;
    }
    if (et == 0x0800) {
        if (d[n] != 0x45 || d[n + 9] != 17 || (d[n + 6] & 0x3F) || d[n + 7]) return HAND_BACK;
        Py_ssize_t p = n + 28;
        if (p >= end) return SKIP;
        unsigned sport = be16(d + n + 20), dport = be16(d + n + 22);
        unsigned char first = d[p];
        int sport_sip = port_in(r, sport), dport_sip = port_in(r, dport);
        int hep_port = sport == 9060 || dport == 9060;
        if (!token_char[first] && first > 13 && !sport_sip && !dport_sip && !hep_port)
            return SKIP;
        Py_ssize_t ip_end = n + be16(d + n + 2);
        if (ip_end > end || ip_end < p) return HAND_BACK;
        Py_ssize_t udp_end = n + 20 + be16(d + n + 24);
        if (udp_end <= p || udp_end > ip_end || first == '\r' || first == '\n' || first == ' ' ||
            first == '\t' || hep_port || first == 'H' || is_tunnel_port(sport) ||
            is_tunnel_port(dport))
            return HAND_BACK;
        if (!sport_sip && !dport_sip) {
            if (r->filtered || !looks_like_sip(d + p, udp_end - p)) return SKIP;
        }
        *ip = n;
        *p_out = p;
        *udp_end_out = udp_end;
        *sport_out = sport;
        *dport_out = dport;
        return KEEP;
    }
    if (et == 0x86DD && d[n + 6] == 17 && end - n > 48) {
        unsigned sport = be16(d + n + 40), dport = be16(d + n + 42);
        unsigned char first = d[n + 48];
        int sport_sip = port_in(r, sport), dport_sip = port_in(r, dport);
        if (!token_char[first] && first > 13 && !sport_sip && !dport_sip && sport != 9060 &&
            dport != 9060)
            return SKIP;
    }
    return HAND_BACK;
}

/* A Payload for a kept datagram, or NULL with *known = 0 when its address pair is new. */
/* Payload's fields, in order (capture/records.py); PAYLOAD_FIELDS tells Python, which checks
 * it against Payload._fields when it loads this module (sipstats.native). */
#define PAYLOAD_FIELDS 14

static PyObject *make_payload(PyObject *payload_type, PyObject *file, PyObject *udp,
                              PyObject *pairs, const unsigned char *d, Py_ssize_t ip,
                              Py_ssize_t p, Py_ssize_t udp_end, unsigned sport, unsigned dport,
                              long long ts, long long frame, int trunc, int *known)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)d + ip + 12, 8);
    if (key == NULL) return NULL;
    PyObject *pair = PyDict_GetItemWithError(pairs, key); /* borrowed */
    Py_DECREF(key);
    if (pair == NULL && PyErr_Occurred()) return NULL;
    if (pair == NULL || !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        *known = 0;
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)payload_type;
    PyObject *item = type->tp_alloc(type, PAYLOAD_FIELDS);
    if (item == NULL) return NULL;
    PyObject *fields[PAYLOAD_FIELDS] = {
        PyLong_FromLongLong(ts),
        Py_NewRef(file),
        PyLong_FromLongLong(frame),
        Py_NewRef(PyTuple_GET_ITEM(pair, 0)),
        PyLong_FromUnsignedLong(sport),
        Py_NewRef(PyTuple_GET_ITEM(pair, 1)),
        PyLong_FromUnsignedLong(dport),
        Py_NewRef(udp),
        PyBytes_FromStringAndSize((const char *)d + p, udp_end - p),
        Py_NewRef(Py_False),
        PyLong_FromLong(1),
        PyUnicode_FromStringAndSize("", 0),
        Py_NewRef(trunc ? Py_True : Py_False),
        PyLong_FromLong(1),
    };
    int failed = 0;
    for (int i = 0; i < PAYLOAD_FIELDS; i++) {
        if (fields[i] == NULL) failed = 1;
        PyTuple_SET_ITEM(item, i, fields[i]); /* NULL slots are skipped by the tuple's dealloc */
    }
    if (failed) {
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

/* Where kept datagrams go: Payload fields that do not change, and the list they land in. */
typedef struct {
    PyObject *payload_type, *file, *udp, *pairs, *out;
} Sink;

static inline int walkable(int linktype)
{
    return linktype == 1 || linktype == 113 || linktype == 276;
}

/* The record times seen so far, as the readers keep them (see OUT_OF_ORDER in decode.py). */
typedef struct {
    long long tmin, tmax, out_of_order_ns;
} Clock;

/* decode.NO_TIME: no record seen yet (NaT; no record carries it, times may be negative). */
#define NO_TIME LLONG_MIN

/* ts lies more than out_of_order_ns before tmax (the difference taken unsigned: it may need
 * all 64 bits when one time is before 1970 and the other after). */
static inline int steps_back(const Clock *clock, long long ts)
{
    return clock->tmax != NO_TIME && ts < clock->tmax &&
           (unsigned long long)clock->tmax - (unsigned long long)ts >
               (unsigned long long)clock->out_of_order_ns;
}

static inline void see(Clock *clock, long long ts)
{
    if (ts > clock->tmax) {
        clock->tmax = ts;
        if (clock->tmin == NO_TIME) clock->tmin = ts;
    } else if (ts < clock->tmin) {
        clock->tmin = ts;
    }
}

/* ---- Capture duplicates: sipstats.capture.duplicates.DuplicateFilter, in C ---------------
 *
 * The same rule, step for step: sightings keyed by their bytes in two generations (the
 * current one and the one before); a sighting whose bytes were seen within the window, the
 * latest sighting between the same endpoints, is a copy; every sighting becomes the latest
 * of its bytes; a generation turns when time passes its end or when it holds
 * MAX_REMEMBERED sightings. A generation keeps a copy of each sighting's bytes and endpoints,
 * so the walk can judge a datagram straight from the capture's buffer (with the GIL released)
 * and copies() a Payload, against the same memory. The key is Python's own keyed hash of the
 * bytes (SipHash, _Py_HashBytes: what hash(bytes) gives), so a crafted collision needs the
 * process's random key and costs a comparison, never a wrong answer. The Python class stays
 * the reference; tests run both over the same payloads. */

typedef struct {
    Py_hash_t hash;
    long long ts;
    Py_ssize_t at1; /* 1 + where its bytes, then its endpoints key (ends_key), lie in the
                     * generation's store; 0: an empty slot */
    Py_ssize_t size, ends_size;
    Py_ssize_t ends_room; /* the store's room for its endpoints key: the longest one it held */
} CopySlot;

/* A generation: its sightings' slots and their bytes back to back in one store, which is
 * emptied (not freed) when the generation turns: no allocation per sighting. ``used`` holds
 * the index of each slot taken (``count`` of them, room for half the table): a turn empties
 * those slots only, since a table that a burst grew would cost its whole size at every turn of
 * the window (most generations hold a few sightings; it was 7 % of decoding's instructions). */
typedef struct {
    CopySlot *slots;
    Py_ssize_t mask, count;
    char *store;
    Py_ssize_t stored, room;
    Py_ssize_t *used;
} Generation;

#define NO_GENERATION ((Generation){NULL, -1, 0, NULL, 0, 0, NULL})

typedef struct {
    PyObject_HEAD
    Generation current, previous;
    long long turn_at, window_ns;
    Py_ssize_t max_remembered;
    int busy; /* a walk judges datagrams without the GIL: no other call may touch it */
} CopyFilterObject;

/* A sighting to judge: its bytes, time, and endpoints key. */
typedef struct {
    const char *data;
    Py_ssize_t size;
    long long ts;
    const char *ends;
    Py_ssize_t ends_size;
} Sighting;

/* The endpoints of a sighting (source, port, destination, port, transport) as bytes that are
 * equal exactly when the endpoints are: each text with its length before it. Written to
 * ``out`` when it is not NULL; its length. */
static Py_ssize_t ends_key(char *out, const char *src, Py_ssize_t src_n, long long sport,
                           const char *dst, Py_ssize_t dst_n, long long dport,
                           const char *transport, Py_ssize_t transport_n)
{
    const struct {
        const char *p;
        Py_ssize_t n;
        long long number;
    } parts[3] = {{src, src_n, sport}, {dst, dst_n, dport}, {transport, transport_n, 0}};
    Py_ssize_t at = 0;
    for (int k = 0; k < 3; k++) {
        if (out != NULL) {
            memcpy(out + at, &parts[k].n, sizeof parts[k].n);
            memcpy(out + at + sizeof parts[k].n, parts[k].p, (size_t)parts[k].n);
            memcpy(out + at + sizeof parts[k].n + parts[k].n, &parts[k].number,
                   sizeof parts[k].number);
        }
        at += (Py_ssize_t)(sizeof parts[k].n + sizeof parts[k].number) + parts[k].n;
    }
    return at;
}

static void generation_free(Generation *g)
{
    PyMem_RawFree(g->slots);
    PyMem_RawFree(g->store);
    PyMem_RawFree(g->used);
    *g = NO_GENERATION;
}

/* Forget every sighting: the slots taken are emptied. A generation that a burst made large is
 * freed rather than kept, so that its store does not stay as large as the burst. */
static void generation_clear(Generation *g)
{
    if (g->mask >= 1024 || g->room > (4 << 20)) {
        generation_free(g);
        return;
    }
    for (Py_ssize_t k = 0; k < g->count; k++) g->slots[g->used[k]] = (CopySlot){0};
    g->count = 0;
    g->stored = 0;
}

/* The slot of the bytes ``data`` (hash h): the one holding equal bytes, else the empty one
 * where they would go. */
static CopySlot *generation_find(Generation *g, const char *data, Py_ssize_t size, Py_hash_t h)
{
    for (Py_ssize_t i = (Py_ssize_t)((size_t)h & (size_t)g->mask);; i = (i + 1) & g->mask) {
        CopySlot *slot = &g->slots[i];
        if (slot->at1 == 0) return slot;
        if (slot->hash == h && slot->size == size &&
            memcmp(g->store + slot->at1 - 1, data, (size_t)size) == 0)
            return slot;
    }
}

/* Room for one more sighting of ``bytes`` bytes: a table at most half full, and space in the
 * store. 0, or -1 (no memory). */
static int generation_reserve(Generation *g, Py_ssize_t bytes)
{
    if (g->stored + bytes > g->room) {
        Py_ssize_t room = g->room ? g->room : 65536;
        while (room < g->stored + bytes) {
            if (room > PY_SSIZE_T_MAX / 2) return -1;
            room *= 2;
        }
        char *store = PyMem_RawRealloc(g->store, (size_t)room);
        if (store == NULL) return -1;
        g->store = store;
        g->room = room;
    }
    if ((g->count + 1) * 2 <= g->mask + 1) return 0;
    Py_ssize_t size = g->slots == NULL ? 256 : (g->mask + 1) * 2;
    CopySlot *slots = PyMem_RawCalloc((size_t)size, sizeof *slots);
    Py_ssize_t *used = PyMem_RawMalloc((size_t)(size / 2) * sizeof *used);
    if (slots == NULL || used == NULL) {
        PyMem_RawFree(slots);
        PyMem_RawFree(used);
        return -1;
    }
    for (Py_ssize_t k = 0, taken = 0; taken < g->count; k++) {
        if (g->slots[k].at1 == 0) continue;
        Py_ssize_t i = (Py_ssize_t)((size_t)g->slots[k].hash & (size_t)(size - 1));
        while (slots[i].at1 != 0) i = (i + 1) & (size - 1);
        slots[i] = g->slots[k];
        used[taken++] = i;
    }
    PyMem_RawFree(g->slots);
    PyMem_RawFree(g->used);
    g->slots = slots;
    g->used = used;
    g->mask = size - 1;
    return 0;
}

/* |a - b| <= w for any two int64 times (the difference taken unsigned: it may need 64 bits). */
static inline int within(long long a, long long b, long long w)
{
    unsigned long long d = a >= b ? (unsigned long long)a - (unsigned long long)b
                                  : (unsigned long long)b - (unsigned long long)a;
    return d <= (unsigned long long)w;
}

/* A sighting judged and not yet remembered: the slot of its bytes in the current generation
 * (holding them, or empty where they go) and its hash; ``copy``: 1 when it repeats one seen
 * within the window. */
typedef struct {
    CopySlot *slot;
    Py_hash_t hash;
    int copy;
} Judged;

/* The first half of DuplicateFilter.copies for one sighting: judge it, making room to remember
 * it (nothing else changes but the turn of the generations, which its time would make anyway).
 * 0, or -1 when memory ran out. Nothing may touch the filter before copy_filter_remember().
 * Needs no GIL. */
static int copy_filter_judge(CopyFilterObject *self, const Sighting *s, Judged *judged)
{
    long long window = self->window_ns;
    if (s->ts > self->turn_at || self->current.count >= self->max_remembered) {
        Generation older = self->previous;
        self->previous = self->current;
        generation_clear(&older);
        self->current = older;
        /* ts + window, saturated (Python's ints do not overflow) */
        self->turn_at = s->ts > LLONG_MAX - window ? LLONG_MAX : s->ts + window;
    }
    Py_hash_t h = _Py_HashBytes(s->data, s->size);
    Generation *now = &self->current;
    if (generation_reserve(now, s->size + s->ends_size) < 0) return -1;
    CopySlot *slot = generation_find(now, s->data, s->size, h);
    const CopySlot *earlier = slot->at1 != 0 ? slot : NULL;
    const Generation *of = now;
    if (earlier == NULL && self->previous.count > 0) {
        const CopySlot *found = generation_find(&self->previous, s->data, s->size, h);
        earlier = found->at1 != 0 ? found : NULL;
        of = &self->previous;
    }
    judged->slot = slot;
    judged->hash = h;
    judged->copy = earlier != NULL && within(s->ts, earlier->ts, window) &&
                   earlier->ends_size == s->ends_size &&
                   memcmp(of->store + earlier->at1 - 1 + earlier->size, s->ends,
                          (size_t)s->ends_size) == 0;
    return 0;
}

/* The second half: remember the sighting copy_filter_judge() judged (the room is made, so it
 * cannot fail). A chain of copies is judged against the latest one. The same bytes seen again
 * in this generation keep their place in the store, their endpoints written over the last
 * ones: the store grows with the distinct sightings (which MAX_REMEMBERED bounds), not with
 * repeats of one message while the clock stands still. */
static void copy_filter_remember(CopyFilterObject *self, const Sighting *s, const Judged *judged)
{
    Generation *now = &self->current;
    CopySlot *slot = judged->slot;
    if (slot->at1 != 0 && s->ends_size <= slot->ends_room) {
        memcpy(now->store + slot->at1 - 1 + s->size, s->ends, (size_t)s->ends_size);
        slot->ts = s->ts;
        slot->ends_size = s->ends_size;
        return;
    }
    char *seen = now->store + now->stored;
    memcpy(seen, s->data, (size_t)s->size);
    memcpy(seen + s->size, s->ends, (size_t)s->ends_size);
    if (slot->at1 == 0) now->used[now->count++] = slot - now->slots;
    *slot = (CopySlot){judged->hash, s->ts, now->stored + 1, s->size, s->ends_size,
                       s->ends_size};
    now->stored += s->size + s->ends_size;
}

/* DuplicateFilter.copies for one sighting, which is remembered: 1 when it is a copy, 0 when
 * not, -1 when memory ran out. Needs no GIL. */
static int copy_filter_see(CopyFilterObject *self, const Sighting *s)
{
    Judged judged;
    if (copy_filter_judge(self, s, &judged) < 0) return -1;
    copy_filter_remember(self, s, &judged);
    return judged.copy;
}

static PyObject *copy_filter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    long long window_ns;
    Py_ssize_t max_remembered;
    if (no_keywords("CopyFilter", kwargs) < 0 ||
        !PyArg_ParseTuple(args, "Ln:CopyFilter", &window_ns, &max_remembered))
        return NULL;
    if (window_ns < 0 || max_remembered < 1) {
        PyErr_SetString(PyExc_ValueError, "the window and the memory cap must be positive");
        return NULL;
    }
    CopyFilterObject *self = (CopyFilterObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->current = NO_GENERATION;
    self->previous = NO_GENERATION;
    self->turn_at = -1;
    self->window_ns = window_ns;
    self->max_remembered = max_remembered;
    self->busy = 0;
    return (PyObject *)self;
}

static void copy_filter_dealloc(CopyFilterObject *self)
{
    generation_free(&self->current);
    generation_free(&self->previous);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Raise when a walk is judging datagrams with this filter in another thread. */
static int copy_filter_busy(CopyFilterObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "CopyFilter used by two threads at once");
        return 1;
    }
    return 0;
}

/* UTF-8 of a str field (lone surrogates passed through, into a bytes object ``keep`` holds).
 * NULL with an exception when it is no str. */
static const char *text_of(PyObject *field, Py_ssize_t *n, PyObject *keep)
{
    if (!PyUnicode_Check(field)) {
        PyErr_SetString(PyExc_TypeError, "copies() takes Payloads (endpoints as str and int)");
        return NULL;
    }
    const char *p = PyUnicode_AsUTF8AndSize(field, n);
    if (p != NULL) return p;
    PyErr_Clear();
    PyObject *raw = PyUnicode_AsEncodedString(field, "utf-8", "surrogatepass");
    if (raw == NULL || PyList_Append(keep, raw) < 0) {
        Py_XDECREF(raw);
        return NULL;
    }
    Py_DECREF(raw);
    *n = PyBytes_GET_SIZE(raw);
    return PyBytes_AS_STRING(raw);
}

/* Payload fields read: ts_ns, the endpoints (src, sport, dst, dport, transport), data. */
enum { COPY_TS = 0, COPY_SRC = 3, COPY_SPORT, COPY_DST, COPY_DPORT, COPY_TRANSPORT, COPY_DATA };

/* The copies() view of a Payload: 1 and ``s`` (its endpoints key in ``*ends``, which the caller
 * frees), or 0 with an exception. */
static int payload_sighting(PyObject *payload, Sighting *s, char **ends, PyObject *keep)
{
    *ends = NULL;
    if (!PyTuple_Check(payload) || PyTuple_GET_SIZE(payload) <= COPY_DATA ||
        !PyBytes_Check(PyTuple_GET_ITEM(payload, COPY_DATA))) {
        PyErr_SetString(PyExc_TypeError, "copies() takes Payloads (data as bytes)");
        return 0;
    }
    PyObject *data = PyTuple_GET_ITEM(payload, COPY_DATA);
    Py_ssize_t src_n, dst_n, transport_n;
    const char *src = text_of(PyTuple_GET_ITEM(payload, COPY_SRC), &src_n, keep);
    const char *dst = src == NULL ? NULL : text_of(PyTuple_GET_ITEM(payload, COPY_DST), &dst_n, keep);
    const char *transport =
        dst == NULL ? NULL : text_of(PyTuple_GET_ITEM(payload, COPY_TRANSPORT), &transport_n, keep);
    if (transport == NULL) return 0;
    long long ts = PyLong_AsLongLong(PyTuple_GET_ITEM(payload, COPY_TS));
    long long sport = ts == -1 && PyErr_Occurred() ? -1 : PyLong_AsLongLong(PyTuple_GET_ITEM(payload, COPY_SPORT));
    long long dport = PyErr_Occurred() ? -1 : PyLong_AsLongLong(PyTuple_GET_ITEM(payload, COPY_DPORT));
    if (PyErr_Occurred()) return 0;
    Py_ssize_t size = ends_key(NULL, src, src_n, sport, dst, dst_n, dport, transport, transport_n);
    *ends = PyMem_RawMalloc((size_t)size);
    if (*ends == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    ends_key(*ends, src, src_n, sport, dst, dst_n, dport, transport, transport_n);
    *s = (Sighting){PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), ts, *ends, size};
    return 1;
}

PyDoc_STRVAR(copy_filter_copies_doc,
"copies(batch) -> list[int]\n\n"
"DuplicateFilter.copies: positions in ``batch`` (Payloads in capture order, after what came\n"
"before) of the payloads that repeat one seen within the window.");

static PyObject *copy_filter_copies(CopyFilterObject *self, PyObject *batch)
{
    if (!PyList_Check(batch)) {
        PyErr_SetString(PyExc_TypeError, "copies() takes a list of Payloads");
        return NULL;
    }
    if (copy_filter_busy(self)) return NULL;
    PyObject *found = PyList_New(0), *keep = PyList_New(0);
    if (found == NULL || keep == NULL) goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        Sighting s;
        char *ends;
        if (!payload_sighting(PyList_GET_ITEM(batch, i), &s, &ends, keep)) goto error;
        int copy = copy_filter_see(self, &s);
        PyMem_RawFree(ends);
        if (copy < 0) {
            PyErr_NoMemory();
            goto error;
        }
        if (copy) {
            PyObject *at = PyLong_FromSsize_t(i);
            if (at == NULL || PyList_Append(found, at) < 0) {
                Py_XDECREF(at);
                goto error;
            }
            Py_DECREF(at);
        }
        if (PyList_GET_SIZE(keep) > 0 && PyList_SetSlice(keep, 0, PyList_GET_SIZE(keep), NULL) < 0)
            goto error;
    }
    Py_DECREF(keep);
    return found;
error:
    Py_XDECREF(found);
    Py_XDECREF(keep);
    return NULL;
}

static PyObject *copy_filter_remembered(CopyFilterObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->current.count + self->previous.count);
}

static PyObject *copy_filter_stored(CopyFilterObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->current.stored + self->previous.stored);
}

static PyObject *copy_filter_window(CopyFilterObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->window_ns);
}

static PyMethodDef copy_filter_methods[] = {
    {"copies", (PyCFunction)copy_filter_copies, METH_O, copy_filter_copies_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef copy_filter_getset[] = {
    {"remembered", (getter)copy_filter_remembered, NULL,
     "Payloads held in both generations.", NULL},
    {"stored", (getter)copy_filter_stored, NULL,
     "Bytes of payloads and endpoints held in both generations' stores.", NULL},
    {"window_ns", (getter)copy_filter_window, NULL, "The window, in ns.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CopyFilterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipstats.capture._pcapscan.CopyFilter",
    .tp_basicsize = sizeof(CopyFilterObject),
    .tp_dealloc = (destructor)copy_filter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("CopyFilter(window_ns, max_remembered)\n--\n\n"
                        "sipstats.capture.duplicates.DuplicateFilter in C."),
    .tp_methods = copy_filter_methods,
    .tp_getset = copy_filter_getset,
    .tp_new = copy_filter_new,
};

/* ---- The intake: plain UDP datagrams parsed and added as rows without a Payload ----------
 *
 * Given an intake, the walk does not make a Payload for a datagram it keeps: it hands the
 * datagram's bytes to the C parser and column builder of sipstats._sipscan (_columns.h), after
 * the capture-duplicate filter has judged it, so the common path makes no Python object per
 * message and, with the GIL released, runs alongside other threads. A datagram the parser
 * declines, or one the snaplen cut, stops the walk: Python reads that record its usual way. */

/* The builder's C functions, imported by the first walk given an intake. */
static const ColumnsApi *columns_api = NULL;

/* Bytes of an endpoints key of a datagram (ends_key): three lengths, two ports, two IPv4
 * texts of at most 15 bytes and "udp". */
#define DATAGRAM_ENDS 96

typedef struct {
    PyObject *columns;
    CopyFilterObject *copies; /* NULL: capture duplicates are not looked for */
    int keep;                 /* a copy stays a row, marked */
    void *scanned;
    Value fields[PAYLOAD_FIELDS];
    PyObject *texts;     /* list: the file name's UTF-8 when its str has none (text_of) */
    Py_ssize_t rows, duplicates;
    int failed; /* put()'s failure, or -2 (no memory) */
} Intake;

/* Dotted-decimal text of an IPv4 address (what socket.inet_ntop gives); its length. */
static Py_ssize_t ipv4_text(const unsigned char *a, char *out)
{
    Py_ssize_t n = 0;
    for (int k = 0; k < 4; k++) {
        unsigned v = a[k];
        if (k > 0) out[n++] = '.';
        if (v >= 100) out[n++] = (char)('0' + v / 100);
        if (v >= 10) out[n++] = (char)('0' + v / 10 % 10);
        out[n++] = (char)('0' + v % 10);
    }
    return n;
}

/* Open an intake from Python's (columns, copies or None, keep_duplicates) for a walk of
 * ``file``: the builder and filter are marked in use. 0, or -1 with an exception. */
static int intake_open(Intake *in, PyObject *args, PyObject *file)
{
    memset(in, 0, sizeof *in);
    PyObject *copies;
    if (columns_api == NULL) {
        const ColumnsApi *api = PyCapsule_Import(COLUMNS_API_CAPSULE, 0);
        if (api == NULL) return -1;
        if (api->version != COLUMNS_API_VERSION) {
            PyErr_SetString(PyExc_ImportError, "sipstats._sipscan was built for another walk");
            return -1;
        }
        columns_api = api;
    }
    if (!PyArg_ParseTuple(args, "O!Op", columns_api->columns_type, &in->columns, &copies,
                          &in->keep))
        return -1;
    if (copies != Py_None && !PyObject_TypeCheck(copies, &CopyFilterType)) {
        PyErr_SetString(PyExc_TypeError, "the intake's filter must be a CopyFilter or None");
        return -1;
    }
    Py_ssize_t file_n;
    const char *file_p;
    if ((in->texts = PyList_New(0)) == NULL ||
        (file_p = text_of(file, &file_n, in->texts)) == NULL)
        goto busy;
    in->scanned = PyMem_RawMalloc(columns_api->scanned_size);
    if (in->scanned == NULL) {
        PyErr_NoMemory();
        goto busy;
    }
    if (copies != Py_None) {
        in->copies = (CopyFilterObject *)copies;
        if (copy_filter_busy(in->copies)) goto busy;
    }
    if (columns_api->hold(in->columns, 1) < 0) goto busy;
    if (in->copies != NULL) in->copies->busy = 1;
    /* Payload's fields (capture/records.py) that are the same for every datagram */
    for (int k = 0; k < PAYLOAD_FIELDS; k++) in->fields[k] = (Value){NULL, 0, 0};
    in->fields[1] = (Value){file_p, file_n, -1};
    in->fields[7] = (Value){"udp", 3, -1};
    in->fields[11] = (Value){"", 0, -1}; /* encap */
    in->fields[10].number = 1;           /* segments */
    in->fields[13].number = 1;           /* fragments */
    return 0;
busy:
    PyMem_RawFree(in->scanned);
    Py_CLEAR(in->texts);
    return -1;
}

/* The datagram d[p:end] of the IPv4 header at d[ip:], kept by classify(): 1 when it is a row
 * now (or a copy left out), 0 when Python must read its record, -1 on failure. The filter
 * remembers the datagram only once its row is in (or it is a copy left out): a row the builder
 * could not add is not a sighting. No GIL needed. */
static int intake_take(Intake *in, const unsigned char *d, Py_ssize_t ip, Py_ssize_t p,
                       Py_ssize_t end, unsigned sport, unsigned dport, long long ts,
                       long long frame)
{
    const char *data = (const char *)d + p;
    if (!columns_api->parse(data, end - p, in->scanned)) return 0;
    char src[16], dst[16], ends[DATAGRAM_ENDS];
    Py_ssize_t src_n = ipv4_text(d + ip + 12, src), dst_n = ipv4_text(d + ip + 16, dst);
    Sighting s = {data, end - p, ts, ends,
                  ends_key(ends, src, src_n, sport, dst, dst_n, dport, "udp", 3)};
    Judged judged = {NULL, 0, 0};
    if (in->copies != NULL) {
        if (copy_filter_judge(in->copies, &s, &judged) < 0) {
            in->failed = -2;
            return -1;
        }
        if (judged.copy && !in->keep) {
            copy_filter_remember(in->copies, &s, &judged);
            in->duplicates += 1;
            return 1;
        }
    }
    Value *f = in->fields;
    f[0].number = ts;
    f[2].number = frame;
    f[3] = (Value){src, src_n, -1};
    f[4].number = sport;
    f[5] = (Value){dst, dst_n, -1};
    f[6].number = dport;
    int failed = columns_api->put(in->columns, in->scanned, f, PAYLOAD_FIELDS, judged.copy);
    if (failed < 0) {
        in->failed = failed;
        return -1;
    }
    if (in->copies != NULL) copy_filter_remember(in->copies, &s, &judged);
    in->duplicates += judged.copy;
    in->rows++;
    return 1;
}

/* Close an intake (GIL held): the builder and filter are free again; the rows added stay,
 * each with its mark (also when a row failed: the rows before it stay, whole). 0, or -1 with
 * an exception. */
static int intake_close(Intake *in)
{
    columns_api->hold(in->columns, 0);
    if (in->copies != NULL) in->copies->busy = 0;
    PyMem_RawFree(in->scanned);
    Py_CLEAR(in->texts);
    if (in->failed < -1) columns_api->raise_failure(in->failed);
    return in->failed < 0 ? -1 : 0;
}

/* Decoder.packet for one frame: 1 when done here (skipped, or kept: a Payload appended to the
 * sink, or with an intake a row added or a copy left out), 0 to hand it back to Python (a new
 * address pair; with an intake, a cut by the snaplen or a decline of the parser), -1 on
 * failure (a Python error, or the intake's, which intake_close() raises). With an intake it
 * needs no GIL. */
static int take(const Rules *rules, Sink *sink, Intake *in, int linktype, const unsigned char *d,
                Py_ssize_t start, Py_ssize_t end, long long ts, long long frame, int trunc)
{
    Py_ssize_t ip = 0, p = 0, udp_end = 0;
    unsigned sport = 0, dport = 0;
    int verdict = classify(rules, linktype, d, start, end, &ip, &p, &udp_end, &sport, &dport);
    if (verdict != KEEP) return verdict == SKIP;
    if (in != NULL) return trunc ? 0 : intake_take(in, d, ip, p, udp_end, sport, dport, ts, frame);
    int known = 1;
    PyObject *item = make_payload(sink->payload_type, sink->file, sink->udp, sink->pairs, d, ip,
                                  p, udp_end, sport, dport, ts, frame, trunc, &known);
    if (item == NULL) return known ? -1 : 0; /* not known: Python names the new address pair */
    int appended = PyList_Append(sink->out, item);
    Py_DECREF(item);
    return appended < 0 ? -1 : 1;
}

/* What both walks return: (off, frame, tmin, tmax, last, rows, duplicates), the last two the
 * intake's (0 without one), which is closed. ``done`` is the last take's answer: below 0, the
 * walk failed (an exception is set, or intake_close() raises the intake's failure). */
static PyObject *walk_state(Intake *in, int done, Py_ssize_t off, long long frame,
                            const Clock *clock, long long last)
{
    Py_ssize_t rows = 0, duplicates = 0;
    if (in != NULL) {
        rows = in->rows;
        duplicates = in->duplicates;
        if (intake_close(in) < 0) return NULL;
    }
    if (done < 0) return NULL;
    return Py_BuildValue("nLLLLnn", off, frame, clock->tmin, clock->tmax, last, rows,
                         duplicates);
}

/* How a classic pcap file's records are read: byte order, record header size, the largest
 * captured length, and ns per unit of the second time field. */
typedef struct {
    int big, rsize;
    unsigned long limit;
    long long mul;
} Format;

/* A record's header as the walks read it. */
typedef struct {
    uint32_t sec, caplen, origlen;
    Py_ssize_t start, next; /* its captured bytes, and the next record */
    long long ts;
} Record;

/* The record at d[off:] into *r: 1, or 0 when a walk stops there and Python reads it (its
 * header cut off, a captured length over the limit or past the data, a time out of order). */
static inline int record_at(const Format *f, const unsigned char *d, Py_ssize_t n,
                            Py_ssize_t off, const Clock *clock, Record *r)
{
    if (off + f->rsize > n) return 0;
    const unsigned char *h = d + off;
    r->sec = u32(h, f->big);
    r->caplen = u32(h + 8, f->big);
    r->origlen = u32(h + 12, f->big);
    r->start = off + f->rsize;
    r->next = r->start + (Py_ssize_t)r->caplen;
    if (r->caplen > f->limit || r->next > n) return 0;
    r->ts = (long long)r->sec * 1000000000LL + (long long)u32(h + 4, f->big) * f->mul;
    return !steps_back(clock, r->ts);
}

/* ---- The walker: what every walk of one read() shares, set up once -------------------------
 *
 * Python hands a record back whenever the walk cannot read it (a new address pair, TCP, a
 * fragment...) and calls the walk again after it: the rules (an 8 KiB port bitmap) and the
 * Payload parts are made once per read(), not once per call. */

/* A pcapng interface as walk_pcapng() reads its packets. */
typedef struct {
    int walkable; /* 0: Python reads its packets (its spec is None) */
    int linktype;
    long long per_unit, offset_ns;
} Interface;

typedef struct {
    PyObject_HEAD
    Rules rules;
    PyObject *payload_type, *file, *udp, *pairs;
    /* The interfaces of the pcapng section being read, added one by one as Python reads their
     * description blocks (add_interface) and forgotten at a new section (clear_interfaces):
     * each spec is read once, however many interface changes the file makes. */
    Interface *interfaces;
    Py_ssize_t count, allocated;
} WalkerObject;

PyDoc_STRVAR(add_interface_doc,
"add_interface(spec)\n\n"
"Declare the next interface of the section: ``spec`` is (linktype, ns_per_unit, offset_ns),\n"
"or None when Python must read its packets. The caller keeps to pcapng.MAX_INTERFACES per\n"
"section: nothing here caps the count.");

static PyObject *walker_add_interface(WalkerObject *self, PyObject *spec)
{
    Interface f = {spec != Py_None, 0, 0, 0};
    if (f.walkable && !PyArg_ParseTuple(spec, "iLL", &f.linktype, &f.per_unit, &f.offset_ns))
        return NULL;
    if (self->count == self->allocated) {
        Py_ssize_t allocated = self->allocated ? 2 * self->allocated : 4;
        Interface *grown = PyMem_Realloc(self->interfaces, (size_t)allocated * sizeof *grown);
        if (grown == NULL) return PyErr_NoMemory();
        self->interfaces = grown;
        self->allocated = allocated;
    }
    self->interfaces[self->count++] = f;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(clear_interfaces_doc,
"clear_interfaces()\n\n"
"Forget the interfaces declared so far: a new section starts with none.");

static PyObject *walker_clear_interfaces(WalkerObject *self, PyObject *Py_UNUSED(ignored))
{
    self->count = 0;
    Py_RETURN_NONE;
}

/* make_payload fills PAYLOAD_FIELDS tuple slots of an instance of the payload type: any other
 * type (a class that is not a tuple) would be written past its allocation, so it is refused. */
static PyObject *walker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *ports, *payload_type, *file, *udp, *pairs;
    int filtered;
    if (no_keywords("Walker", kwargs) < 0 ||
        !PyArg_ParseTuple(args, "(O!p)(O!UUO!):Walker", &PyFrozenSet_Type, &ports, &filtered,
                          &PyType_Type, &payload_type, &file, &udp, &PyDict_Type, &pairs))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)payload_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the payload type must be a tuple subclass (Payload)");
        return NULL;
    }
    WalkerObject *self = (WalkerObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->rules.filtered = filtered;
    if (set_ports(&self->rules, ports) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->payload_type = Py_NewRef(payload_type);
    self->file = Py_NewRef(file);
    self->udp = Py_NewRef(udp);
    self->pairs = Py_NewRef(pairs);
    return (PyObject *)self;
}

static void walker_dealloc(WalkerObject *self)
{
    Py_XDECREF(self->payload_type);
    Py_XDECREF(self->file);
    Py_XDECREF(self->udp);
    Py_XDECREF(self->pairs);
    PyMem_Free(self->interfaces);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Where one call's kept datagrams go. */
static Sink sink_of(const WalkerObject *w, PyObject *out)
{
    return (Sink){w->payload_type, w->file, w->udp, w->pairs, out};
}

PyDoc_STRVAR(walk_doc,
"walk(header, buf, off, until, frame, tmin, tmax, prev_sec, out[, release, intake])\n\n"
"Walk classic-pcap records from offset ``off`` while they start before ``until`` and need no\n"
"Python; append a Payload to ``out`` for each SIP datagram. ``header`` is (big_endian,\n"
"record_size, caplen_limit, ns_per_fraction, out_of_order_ns, max_out, linktype).\n"
"With ``intake`` (columns, copy_filter or None, keep_duplicates), a SIP datagram is judged\n"
"by the filter and added to the columns instead (``out`` stays as it is), with its duplicate\n"
"mark; the parser's declines are Python's; with ``release`` (the\n"
"default) that walk runs without the GIL, for other threads. Returns (off, frame, tmin,\n"
"tmax, prev_sec, rows, duplicates): the record at ``off`` is Python's; rows and duplicates\n"
"are the intake's (0 without one).");

static PyObject *walker_walk(WalkerObject *self, PyObject *args)
{
    PyObject *buf, *out, *header, *intake_args = Py_None;
    Py_ssize_t off, until, max_out;
    long long frame, prev_sec, mul;
    int big, rsize, linktype, release = 1;
    unsigned long limit;
    Clock clock;
    if (!PyArg_ParseTuple(args, "O!OnnLLLLO!|pO", &PyTuple_Type, &header, &buf, &off, &until,
                          &frame, &clock.tmin, &clock.tmax, &prev_sec, &PyList_Type, &out,
                          &release, &intake_args) ||
        !PyArg_ParseTuple(header, "iikLLni", &big, &rsize, &limit, &mul, &clock.out_of_order_ns,
                          &max_out, &linktype))
        return NULL;
    if (rsize < 16 || !walkable(linktype)) {
        PyErr_SetString(PyExc_ValueError, "unsupported record size or link type");
        return NULL;
    }
    Sink sink = sink_of(self, out);
    const Rules *rules = &self->rules;
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) < 0) return NULL;
    Intake in;
    int into = intake_args != Py_None;
    if (into && intake_open(&in, intake_args, sink.file) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *d = view.buf;
    const Format format = {big, rsize, limit, mul};
    /* with an intake nothing touches a Python object (the view holds the buffer) */
    PyThreadState *saved = into && release ? PyEval_SaveThread() : NULL;
    Record r;
    int done = 1;
    while (off >= 0 && off < until && (into || PyList_GET_SIZE(out) < max_out) &&
           record_at(&format, d, view.len, off, &clock, &r)) {
        done = take(rules, &sink, into ? &in : NULL, linktype, d, r.start, r.next, r.ts, frame + 1,
                    r.caplen < r.origlen);
        if (done <= 0) break;
        frame += 1;
        see(&clock, r.ts);
        prev_sec = r.sec;
        off = r.next;
    }
    if (saved != NULL) PyEval_RestoreThread(saved);
    PyBuffer_Release(&view);
    return walk_state(into ? &in : NULL, done, off, frame, &clock, prev_sec);
}

PyDoc_STRVAR(walk_pcapng_doc,
"walk_pcapng(header, buf, off, until, frame, tmin, tmax, last_ts, out[, intake])\n\n"
"Walk pcapng Enhanced Packet Blocks from offset ``off`` (as ``walk`` does records) until any\n"
"other block, or a packet on an interface not declared by add_interface(). ``header`` is\n"
"(big_endian, max_block, out_of_order_ns, max_out); an ``intake`` as ``walk`` takes it (the\n"
"GIL held). Returns (off, frame, tmin, tmax, last_ts, rows, duplicates).");

static PyObject *walker_walk_pcapng(WalkerObject *self, PyObject *args)
{
    PyObject *buf, *out, *header, *intake_args = Py_None;
    Py_ssize_t off, until, max_out;
    long long frame, last_ts;
    int big;
    unsigned long max_block;
    Clock clock;
    if (!PyArg_ParseTuple(args, "O!OnnLLLLO!|O", &PyTuple_Type, &header, &buf, &off, &until,
                          &frame, &clock.tmin, &clock.tmax, &last_ts, &PyList_Type, &out,
                          &intake_args) ||
        !PyArg_ParseTuple(header, "ikLn", &big, &max_block, &clock.out_of_order_ns, &max_out))
        return NULL;
    const Interface *ifaces = self->interfaces;
    Sink sink = sink_of(self, out);
    const Rules *rules = &self->rules;
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) < 0) return NULL;
    Intake in;
    int into = intake_args != Py_None;
    if (into && intake_open(&in, intake_args, sink.file) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *d = view.buf;
    Py_ssize_t n = view.len, count = self->count;
    int done = 1;
    while (off >= 0 && off < until && PyList_GET_SIZE(out) < max_out && off + 32 <= n) {
        const unsigned char *h = d + off;
        uint32_t type = u32(h, big), length = u32(h + 4, big);
        if (type != 6 || length < 32 || length % 4 || length > max_block) break;
        Py_ssize_t next = off + (Py_ssize_t)length, start = off + 28;
        uint32_t iface = u32(h + 8, big), caplen = u32(h + 20, big), origlen = u32(h + 24, big);
        if (next > n || iface >= (uint32_t)count || start + (Py_ssize_t)caplen > next - 4) break;
        const Interface *at = &ifaces[iface];
        if (!at->walkable) break;
        int linktype = at->linktype;
        long long per_unit = at->per_unit, offset_ns = at->offset_ns;
        unsigned long long raw = (unsigned long long)u32(h + 12, big) << 32 | u32(h + 16, big);
        long long ts;
        /* A time that does not fit (or is NaT) is Python's to flag as out of range. */
        if (!walkable(linktype) || per_unit <= 0 || raw > (unsigned long long)LLONG_MAX / per_unit ||
            __builtin_add_overflow((long long)raw * per_unit, offset_ns, &ts) || ts == NO_TIME)
            break;
        if (steps_back(&clock, ts)) break;
        done = take(rules, &sink, into ? &in : NULL, linktype, d, start, start + caplen, ts,
                    frame + 1, caplen < origlen);
        if (done <= 0) break;
        frame += 1;
        see(&clock, ts);
        last_ts = ts;
        off = next;
    }
    PyBuffer_Release(&view);
    return walk_state(into ? &in : NULL, done, off, frame, &clock, last_ts);
}

PyDoc_STRVAR(cut_points_doc,
"cut_points(header, buf, targets, lookback_ns) -> [(offset, frame, tmin, tmax, prev_sec,\n"
"                                                 warm_offset, warm_frame), ...]\n\n"
"Walk classic-pcap record headers from byte 24 and, for each byte offset in the ascending\n"
"list ``targets``, give the first record starting at or after it with the reader's state\n"
"before that record: records read so far, the time range seen and the last second field;\n"
"and where the records stamped within ``lookback_ns`` before it start (offset and number of\n"
"records before), so that a part can first be shown what came just before it. A target\n"
"whose look-back reaches beyond the last LOOKBACK_RECORDS records is skipped. ``header`` is\n"
"(big_endian, record_size, caplen_limit, ns_per_fraction). The walk stops at the first\n"
"damaged record (the reader then deals with it), so the list may be short, and at a signal\n"
"whose handler raises (Ctrl-C), looked for every few thousand records.");

/* Records remembered for the look-back: far more than a few milliseconds of traffic hold. */
#define LOOKBACK_RECORDS 65536

/* Records walked between two looks for a signal (Ctrl-C): the walk crosses a whole file, seconds
 * where its pages are read from disk, with the GIL held. A look costs a few nanoseconds; 4096
 * records are 1-2 MB of a typical capture, under a millisecond read from the page cache. */
#define SIGNAL_STRIDE 4096

typedef struct {
    Py_ssize_t offset;
    long long frame, ts;
} Seen;

static PyObject *cut_points(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *buf, *targets;
    int big, rsize;
    unsigned long limit;
    long long mul, lookback_ns;
    if (!PyArg_ParseTuple(args, "(iikL)OO!L", &big, &rsize, &limit, &mul, &buf, &PyList_Type,
                          &targets, &lookback_ns))
        return NULL;
    if (rsize < 16) {
        PyErr_SetString(PyExc_ValueError, "unsupported record size");
        return NULL;
    }
    /* a copy: the signal check runs Python handlers, which may change the caller's list */
    PyObject *fixed = PyList_AsTuple(targets);
    if (fixed == NULL)
        return NULL;
    Seen *ring = PyMem_Malloc(LOOKBACK_RECORDS * sizeof *ring);
    PyObject *found = PyList_New(0);
    Py_buffer view;
    if (ring == NULL || found == NULL || PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE) < 0) {
        PyMem_Free(ring);
        Py_XDECREF(found);
        Py_DECREF(fixed);
        return ring == NULL ? PyErr_NoMemory() : NULL;
    }
    const unsigned char *d = view.buf;
    Py_ssize_t n = view.len, off = 24, k = 0, count = PyTuple_GET_SIZE(fixed);
    long long frame = 0, prev_sec = -1;
    Clock clock = {NO_TIME, NO_TIME, 0};
    while (k < count && off + rsize <= n) {
        if (frame % SIGNAL_STRIDE == 0 && PyErr_CheckSignals() < 0) break; /* its handler raised */
        Py_ssize_t target = PyLong_AsSsize_t(PyTuple_GET_ITEM(fixed, k));
        if (target == -1 && PyErr_Occurred()) break;
        const unsigned char *h = d + off;
        uint32_t sec = u32(h, big), frac = u32(h + 4, big), caplen = u32(h + 8, big);
        Py_ssize_t next = off + rsize + (Py_ssize_t)caplen;
        if (caplen > limit || next > n) break;
        if (off >= target) {
            /* back through the remembered records while they are stamped within the window */
            Py_ssize_t warm = off;
            long long warm_frame = frame, back = 0, remembered = frame < LOOKBACK_RECORDS ? frame : LOOKBACK_RECORDS;
            while (back < remembered) {
                const Seen *seen = &ring[(frame - 1 - back) % LOOKBACK_RECORDS];
                if (seen->ts < clock.tmax && (unsigned long long)clock.tmax - (unsigned long long)seen->ts >
                                                 (unsigned long long)lookback_ns)
                    break;
                warm = seen->offset;
                warm_frame = seen->frame - 1;
                back++;
            }
            k++;
            if (back == LOOKBACK_RECORDS) continue; /* too much within the window: no cut here */
            PyObject *point = Py_BuildValue("nLLLLnL", off, frame, clock.tmin, clock.tmax,
                                            prev_sec, warm, warm_frame);
            if (point == NULL || PyList_Append(found, point) < 0) {
                Py_XDECREF(point);
                break;
            }
            Py_DECREF(point);
            continue;
        }
        long long ts = (long long)sec * 1000000000LL + (long long)frac * mul;
        see(&clock, ts);
        ring[frame % LOOKBACK_RECORDS] = (Seen){off, frame + 1, ts};
        prev_sec = sec;
        frame += 1;
        off = next;
    }
    PyBuffer_Release(&view);
    PyMem_Free(ring);
    Py_DECREF(fixed);
    if (PyErr_Occurred()) {
        Py_DECREF(found);
        return NULL;
    }
    return found;
}

static PyMethodDef walker_methods[] = {
    {"walk", (PyCFunction)walker_walk, METH_VARARGS, walk_doc},
    {"walk_pcapng", (PyCFunction)walker_walk_pcapng, METH_VARARGS, walk_pcapng_doc},
    {"add_interface", (PyCFunction)walker_add_interface, METH_O, add_interface_doc},
    {"clear_interfaces", (PyCFunction)walker_clear_interfaces, METH_NOARGS, clear_interfaces_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipstats.capture._pcapscan.Walker",
    .tp_basicsize = sizeof(WalkerObject),
    .tp_dealloc = (destructor)walker_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("Walker(rules, payload)\n--\n\n"
                        "The record walks of one read(): ``rules`` is (sip_ports, filtered),\n"
                        "``payload`` (Payload, file, 'udp', address_pairs). For pcapng it\n"
                        "holds the current section's interfaces, which the reader keeps in\n"
                        "step with its own list: add_interface() after each interface\n"
                        "description block, clear_interfaces() at each section header."),
    .tp_methods = walker_methods,
    .tp_new = walker_new,
};

static PyMethodDef methods[] = {
    {"cut_points", cut_points, METH_VARARGS, cut_points_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "sipstats.capture._pcapscan",
    .m_doc = "Classic-pcap records of plain UDP, walked in C (see sipstats.capture.pcap), and "
             "the capture-duplicate filter (see sipstats.capture.duplicates).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__pcapscan(void)
{
    init_tables();
    if (PyType_Ready(&CopyFilterType) < 0 || PyType_Ready(&WalkerType) < 0) return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created != NULL &&
        (PyModule_AddIntConstant(created, "PAYLOAD_FIELDS", PAYLOAD_FIELDS) < 0 ||
         PyModule_AddIntConstant(created, "INTERFACE_VERSION", INTERFACE_VERSION) < 0 ||
         PyModule_AddObjectRef(created, "CopyFilter", (PyObject *)&CopyFilterType) < 0 ||
         PyModule_AddObjectRef(created, "Walker", (PyObject *)&WalkerType) < 0)) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
