/* The C column builder (sipstats._sipscan.Columns) as the C record walk
 * (sipstats.capture._pcapscan) calls it: a plain UDP datagram parsed and added as a row straight
 * from the capture's bytes, with no Python object made for it.
 *
 * _sipscan.c fills a ColumnsApi and exports it as the capsule COLUMNS_API_CAPSULE; the walk
 * imports it once. Nothing here needs the GIL: a walk calls it with the GIL released.
 * Both extensions also take their INTERFACE_VERSION from here. */
#ifndef SIPSTATS_COLUMNS_H
#define SIPSTATS_COLUMNS_H

#include <Python.h>

/* The version of every Python-facing call of both extensions (functions, their arguments and
 * results, the records they fill), which each reports as INTERFACE_VERSION; Python refuses a
 * build of another one (sipstats/native.py, INTERFACE_VERSION there: bump both together with
 * any such change). */
#define INTERFACE_VERSION 3

#define COLUMNS_API_CAPSULE "sipstats._sipscan.COLUMNS_API"
/* Bumped whenever ColumnsApi changes: a walk refuses a builder of another version. */
#define COLUMNS_API_VERSION 2

/* A Payload field's value (capture/records.py): a number, or text as UTF-8 (p NULL: None). */
typedef struct {
    const char *p;
    Py_ssize_t n;
    long long number;
} Value;

typedef struct {
    int version;
    /* Bytes of the parse result that parse() fills and put() reads. */
    size_t scanned_size;
    /* The message in ``data`` parsed (not delimited: a datagram) into ``scanned``: 1, or 0 when
     * the C parser declines it (Python then parses it, from a Payload). */
    int (*parse)(const char *data, Py_ssize_t size, void *scanned);
    /* Add the row of a parsed message: ``fields`` holds ``count`` Payload fields by index
     * (data unused), ``duplicate`` its mark (1: a capture duplicate kept as a row). All of the
     * row or none of it: 0, or a negative failure for raise_failure(). */
    int (*put)(PyObject *columns, const void *scanned, const Value *fields, Py_ssize_t count,
               int duplicate);
    /* Mark the builder in use without the GIL (1) or free again (0); with 1, -1 and an
     * exception when another thread holds it. The GIL must be held. */
    int (*hold)(PyObject *columns, int on);
    /* The exception of a failure put() returned. NULL. */
    PyObject *(*raise_failure)(int failed);
    /* The builder's type, to check the object the walk is given. */
    PyTypeObject *columns_type;
} ColumnsApi;

/* A constructor of either extension called with keyword arguments: TypeError (it takes none),
 * -1; else 0. */
static inline int no_keywords(const char *name, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
        return -1;
    }
    return 0;
}

#endif
