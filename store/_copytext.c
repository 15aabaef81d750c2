/* store/_copytext.c: the rows of a bulk COPY (PostgreSQL's text format) written in C.

   copy_text(rows, first=None) -> bytes | None   (``first``: a list as long as ``rows``, each row's first column)

   A chunk of rated CDRs goes into the usage ledger by COPY (store/plans.py).  psycopg formats each row in C too, but
   through a dumper looked up per value and a Python call per row: about 3.5 us a ledger row, the largest single cost
   of the chunk's write on the server's side.  This writes the whole chunk in one call, the same bytes as psycopg's
   text COPY of the same rows (tests/unit/store/test_copytext.py holds the two to each other): text with backslash,
   tab, newline, carriage return, backspace, form feed and vertical tab escaped; integers in decimal; None as \N;
   True/False as t/f; a datetime in UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00".  Anything else (another type, an
   integer beyond 64 bits, a datetime in another zone or without one, text holding NUL, a row that is not a tuple)
   gives None for the whole chunk, and the caller lets psycopg write it row by row.  CPython API only. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_grow(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

/* 1: written; 0: not a value this writes (the caller falls back); -1: an error raised */
static int put_text(Buf *b, PyObject *v) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) {   /* a lone surrogate: psycopg's error to raise, not ours */
        PyErr_Clear();
        return 0;
    }
    if (buf_grow(b, 2 * n) < 0)   /* every byte escaped at worst */
        return -1;
    char *out = b->data + b->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i], e = 0;
        switch (c) {
        case '\\': e = '\\'; break;
        case '\t': e = 't'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\b': e = 'b'; break;
        case '\f': e = 'f'; break;
        case '\v': e = 'v'; break;
        case '\0': return 0;   /* PostgreSQL's text holds no NUL: psycopg's error, not ours */
        default: break;
        }
        if (e) {
            *out++ = '\\';
            *out++ = e;
        } else {
            *out++ = c;
        }
    }
    b->len = out - b->data;
    return 1;
}

/* the digits written by hand: snprintf took about half of a ledger row's time here (six integers and a time a row) */
static int put_int(Buf *b, PyObject *v) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        return 0;
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        *--p = '-';
    return buf_put(b, p, end - p) < 0 ? -1 : 1;
}

/* ``value`` as ``width`` decimal digits, zero-padded (0 <= value < 10^width) */
static char *digits(char *out, int value, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return out + width;
}

static int put_datetime(Buf *b, PyObject *v) {
    if (PyDateTime_DATE_GET_TZINFO(v) != PyDateTime_TimeZone_UTC)
        return 0;
    char tmp[48], *p = tmp;   /* YYYY-MM-DD HH:MM:SS[.ffffff]+00:00 */
    int us = PyDateTime_DATE_GET_MICROSECOND(v);
    p = digits(p, PyDateTime_GET_YEAR(v), 4);
    *p++ = '-';
    p = digits(p, PyDateTime_GET_MONTH(v), 2);
    *p++ = '-';
    p = digits(p, PyDateTime_GET_DAY(v), 2);
    *p++ = ' ';
    p = digits(p, PyDateTime_DATE_GET_HOUR(v), 2);
    *p++ = ':';
    p = digits(p, PyDateTime_DATE_GET_MINUTE(v), 2);
    *p++ = ':';
    p = digits(p, PyDateTime_DATE_GET_SECOND(v), 2);
    if (us) {
        *p++ = '.';
        p = digits(p, us, 6);
    }
    memcpy(p, "+00:00", 6);
    p += 6;
    return buf_put(b, tmp, p - tmp) < 0 ? -1 : 1;
}

static int put_value(Buf *b, PyObject *v) {
    if (v == Py_None)
        return buf_put(b, "\\N", 2) < 0 ? -1 : 1;
    if (PyUnicode_CheckExact(v))
        return put_text(b, v);
    if (PyBool_Check(v))
        return buf_put(b, v == Py_True ? "t" : "f", 1) < 0 ? -1 : 1;
    if (PyLong_CheckExact(v))
        return put_int(b, v);
    if (PyDateTime_CheckExact(v))
        return put_datetime(b, v);
    return 0;
}

/* The end of a writer: its buffer as bytes (or as str, ``text``) when ``state`` is 1, None when it declined (0), NULL
   with the error raised (-1); the buffer freed in every case. */
static PyObject *buf_finish(Buf *b, int state, int text) {
    PyObject *out = NULL;
    if (state > 0)
        out = text ? PyUnicode_DecodeUTF8(b->data ? b->data : "", b->len, NULL)
                   : PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
    else if (state == 0)
        out = Py_NewRef(Py_None);
    PyMem_Free(b->data);
    return out;
}

static PyObject *copy_text(PyObject *self, PyObject *args) {
    PyObject *rows, *first = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &rows, &first))
        return NULL;
    if (!PyList_CheckExact(rows) || (first != Py_None && (!PyList_CheckExact(first) || PyList_GET_SIZE(first) != PyList_GET_SIZE(rows)))) {
        PyErr_SetString(PyExc_TypeError, "copy_text takes a list of tuples (and a list of first values as long)");
        return NULL;
    }
    Buf b = {NULL, 0, 0};
    Py_ssize_t count = PyList_GET_SIZE(rows);
    for (Py_ssize_t r = 0; r < count; r++) {
        PyObject *row = PyList_GET_ITEM(rows, r);
        if (!PyTuple_CheckExact(row))
            goto decline;
        /* the row's value in ``first``, then the tuple's: column -1 is the one in ``first`` */
        Py_ssize_t width = PyTuple_GET_SIZE(row), from = first != Py_None ? -1 : 0;
        for (Py_ssize_t i = from; i < width; i++) {
            if (i > from && buf_put(&b, "\t", 1) < 0)
                goto fail;
            int done = put_value(&b, i < 0 ? PyList_GET_ITEM(first, r) : PyTuple_GET_ITEM(row, i));
            if (done < 0)
                goto fail;
            if (done == 0)
                goto decline;
        }
        if (buf_put(&b, "\n", 1) < 0)
            goto fail;
    }
    return buf_finish(&b, 1, 0);
decline:
    return buf_finish(&b, 0, 0);
fail:
    return buf_finish(&b, -1, 0);
}

/* text_array(values) -> str | None: a list of str as one PostgreSQL array literal of text ('{"a","b\\"c"}': each element
   double-quoted, backslash and double quote escaped by a backslash), or None when an element is not a str or holds NUL
   (the caller lets psycopg dump the list).  One parameter for ``= ANY(%s::text[])``: psycopg dumps a list parameter
   element by element in Python (about 0.7 us an element, three lists of hundreds of MSISDNs a chunk). */
static PyObject *text_array(PyObject *self, PyObject *values) {
    if (!PyList_CheckExact(values)) {
        PyErr_SetString(PyExc_TypeError, "text_array takes a list of str");
        return NULL;
    }
    Buf b = {NULL, 0, 0};
    Py_ssize_t count = PyList_GET_SIZE(values);
    if (buf_put(&b, "{", 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        if (!PyUnicode_CheckExact(v))
            goto decline;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) {
            PyErr_Clear();
            goto decline;
        }
        if (buf_grow(&b, 2 * n + 3) < 0)
            goto fail;
        char *out = b.data + b.len;
        if (i)
            *out++ = ',';
        *out++ = '"';
        for (Py_ssize_t j = 0; j < n; j++) {
            char c = s[j];
            if (c == '\0') {
                b.len = out - b.data;
                goto decline;
            }
            if (c == '\\' || c == '"')
                *out++ = '\\';
            *out++ = c;
        }
        *out++ = '"';
        b.len = out - b.data;
    }
    if (buf_put(&b, "}", 1) < 0)
        goto fail;
    return buf_finish(&b, 1, 1);
decline:
    return buf_finish(&b, 0, 1);
fail:
    return buf_finish(&b, -1, 1);
}

static PyMethodDef methods[] = {
    {"copy_text", copy_text, METH_VARARGS, "The rows (a list of tuples, each after its value in ``first`` when given) in "
                                           "PostgreSQL's text COPY format, or None."},
    {"text_array", text_array, METH_O, "A list of str as one PostgreSQL text array literal, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_copytext", NULL, -1, methods};

PyMODINIT_FUNC PyInit__copytext(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    return PyModule_Create(&module);
}
