/* The inner loop of sipstats.messages._Codes.extend_values, in C.
 *
 * Every text column of the messages table is stored as int32 codes plus one dict of distinct
 * strings. Coding a batch is one dict lookup per value; in Python each costs a loop turn and
 * a few calls, and with eighteen text columns that was most of the table's building time.
 * _Codes.extend_values stays the reference: tests build tables both ways and compare them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

PyDoc_STRVAR(extend_doc,
"extend(codes, index, values) -> None\n\n"
"Append the code of each value to the array('i') ``codes``. ``index`` maps each string seen\n"
"so far to its code, in order of first appearance, with None and '' at -1 (so the next new\n"
"string gets len(index) - 2); a new string is added to it.");

static PyObject *extend(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *codes, *index, *values;
    if (!PyArg_ParseTuple(args, "OO!O", &codes, &PyDict_Type, &index, &values)) return NULL;
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *packed = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int32_t));
    if (packed == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    int32_t *out = (int32_t *)PyBytes_AS_STRING(packed);
    Py_ssize_t next = PyDict_GET_SIZE(index) - 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *code = PyDict_GetItemWithError(index, items[i]); /* borrowed */
        if (code != NULL) {
            out[i] = (int32_t)PyLong_AsLong(code);
            if (out[i] == -1 && PyErr_Occurred()) goto error;
            continue;
        }
        if (PyErr_Occurred() || next >= INT32_MAX) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_OverflowError, "too many strings");
            goto error;
        }
        PyObject *fresh = PyLong_FromSsize_t(next);
        if (fresh == NULL) goto error;
        int stored = PyDict_SetItem(index, items[i], fresh);
        Py_DECREF(fresh);
        if (stored < 0) goto error;
        out[i] = (int32_t)next++;
    }
    Py_DECREF(seq);
    PyObject *done = PyObject_CallMethod(codes, "frombytes", "O", packed);
    Py_DECREF(packed);
    if (done == NULL) return NULL;
    Py_DECREF(done);
    Py_RETURN_NONE;
error:
    Py_DECREF(seq);
    Py_DECREF(packed);
    return NULL;
}

static PyMethodDef methods[] = {
    {"extend", extend, METH_VARARGS, extend_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "sipstats._codes",
    .m_doc = "Categorical coding of the messages table's text columns (see sipstats.messages).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__codes(void) { return PyModule_Create(&module); }
