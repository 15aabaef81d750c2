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
#include <stdint.h>
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

/* a datetime's "YYYY-MM-DD HH:MM:SS", then ".ffffff" when ``fraction`` is 2, or 1 and it has microseconds */
static char *date_time(char *p, PyObject *v, int fraction) {
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
    if (fraction == 2 || (fraction == 1 && us)) {
        *p++ = '.';
        p = digits(p, us, 6);
    }
    return p;
}

static int put_datetime(Buf *b, PyObject *v) {
    if (PyDateTime_DATE_GET_TZINFO(v) != PyDateTime_TimeZone_UTC)
        return 0;
    char tmp[48], *p = tmp;   /* YYYY-MM-DD HH:MM:SS[.ffffff]+00:00 */
    p = date_time(p, v, 1);
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

/* ---- the SQLite ledger's rows (store/plans.py UsageRepo.write_chunk on SQLite) ----------------------------------

   ledger_keys(ids) -> [int, ...]
   sqlite_ledger_params(entries, time_of, key_of) -> [value, ...] | None (a row that is not a tuple of 17)

   store.db.ledger_key, the SQLite ledger's look-up key of a CDR id, is the first 8 bytes of the id's BLAKE2b-64 digest
   (RFC 7693; digest length 8, no key) read as a big-endian signed integer: computed here for a chunk's ids (the
   duplicate check's probes, the packed INSERT's key column) instead of a hashlib call in Python per id, twice per CDR.
   sqlite_ledger_params gives the packed INSERT's parameters of a chunk's ledger rows (tuples in LEDGER_FIELDS order)
   one after the other: each row's 17 values with its start time as SQLAlchemy's SQLite text (store.plans._sqlite_time:
   "YYYY-MM-DD HH:MM:SS.ffffff" in UTC), then its key.  A start time that is not a datetime in UTC (datetime.timezone.utc)
   from year 1000 on is given to ``time_of``, an id that is not a str to ``key_of`` (the Python functions);
   tests/unit/store/test_copytext.py holds both to them. */

static const uint64_t B2B_IV[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

static const unsigned char B2B_SIGMA[10][16] = {   /* round r takes row r mod 10 */
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

#define B2B_G(a, b, c, d, x, y)              \
    do {                                     \
        v[a] = v[a] + v[b] + (x);            \
        v[d] = rotr64(v[d] ^ v[a], 32);      \
        v[c] = v[c] + v[d];                  \
        v[b] = rotr64(v[b] ^ v[c], 24);      \
        v[a] = v[a] + v[b] + (y);            \
        v[d] = rotr64(v[d] ^ v[a], 16);      \
        v[c] = v[c] + v[d];                  \
        v[b] = rotr64(v[b] ^ v[c], 63);      \
    } while (0)

/* the compression function F of RFC 7693 on one 128-byte block; ``t``: bytes hashed so far (this block's included) */
static void b2b_compress(uint64_t h[8], const unsigned char *block, uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        uint64_t w = 0;
        for (int k = 7; k >= 0; k--)
            w = (w << 8) | block[8 * i + k];   /* little-endian words */
        m[i] = w;
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2B_IV[i];
    }
    v[12] ^= t;   /* the counter's high word stays 0: ids are far shorter than 2^64 bytes */
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const unsigned char *s = B2B_SIGMA[r % 10];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

/* store.db.ledger_key of these UTF-8 bytes: BLAKE2b with an 8-byte digest, read big-endian as a signed integer */
static long long ledger_key_of(const unsigned char *p, Py_ssize_t n) {
    uint64_t h[8];
    memcpy(h, B2B_IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ 8;   /* parameter block: digest length 8, no key, fanout and depth 1 */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        b2b_compress(h, p, t, 0);
        p += 128;
        n -= 128;
    }
    unsigned char last[128];
    memset(last, 0, sizeof last);
    memcpy(last, p, (size_t)n);
    t += (uint64_t)n;
    b2b_compress(h, last, t, 1);
    /* the digest is h[0]'s bytes little-endian first; read big-endian: those bytes reversed */
    uint64_t key = 0;
    for (int k = 0; k < 8; k++)
        key = (key << 8) | ((h[0] >> (8 * k)) & 0xff);
    return (long long)key;
}

/* the key of one id (a str) as a new int; through ``key_of`` when it is not a str */
static PyObject *key_object(PyObject *id, PyObject *key_of) {
    if (PyUnicode_CheckExact(id)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(id, &n);
        if (s != NULL)
            return PyLong_FromLongLong(ledger_key_of((const unsigned char *)s, n));
        PyErr_Clear();   /* a lone surrogate: the Python function raises what it raises */
    }
    if (key_of == NULL) {
        PyErr_SetString(PyExc_TypeError, "a CDR id must be a str");
        return NULL;
    }
    return PyObject_CallOneArg(key_of, id);
}

static PyObject *ledger_keys(PyObject *self, PyObject *args) {
    PyObject *ids, *key_of;
    if (!PyArg_ParseTuple(args, "OO", &ids, &key_of))
        return NULL;
    PyObject *seq = PySequence_Fast(ids, "ids must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = key_object(PySequence_Fast_GET_ITEM(seq, i), key_of);
        if (key == NULL) {
            Py_DECREF(seq);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, key);
    }
    Py_DECREF(seq);
    return out;
}

/* a ledger row's start time as SQLAlchemy's SQLite text (a new str), through ``time_of`` where this does not write it */
static PyObject *sqlite_time(PyObject *at, PyObject *time_of) {
    if (at == Py_None)
        return Py_NewRef(Py_None);
    if (PyDateTime_Check(at) && PyDateTime_DATE_GET_TZINFO(at) == PyDateTime_TimeZone_UTC && PyDateTime_GET_YEAR(at) >= 1000) {
        char tmp[32];   /* YYYY-MM-DD HH:MM:SS.ffffff */
        return PyUnicode_FromStringAndSize(tmp, date_time(tmp, at, 2) - tmp);
    }
    return PyObject_CallOneArg(time_of, at);
}

#define LEDGER_WIDTH 17   /* store.plans.LEDGER_COLUMNS; the start time is the eighth, the CDR id the second */

static PyObject *sqlite_ledger_params(PyObject *self, PyObject *args) {
    PyObject *entries, *time_of, *key_of;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &entries, &time_of, &key_of))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    PyObject *out = PyList_New(n * (LEDGER_WIDTH + 1));
    if (out == NULL)
        return NULL;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(entries, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != LEDGER_WIDTH) {
            Py_DECREF(out);   /* not a row this writes: the caller's Python loop */
            Py_RETURN_NONE;
        }
        for (Py_ssize_t k = 0; k < LEDGER_WIDTH; k++) {
            PyObject *v = PyTuple_GET_ITEM(e, k);
            PyObject *value = k == 7 ? sqlite_time(v, time_of) : Py_NewRef(v);
            if (value == NULL)
                goto fail;
            PyList_SET_ITEM(out, at++, value);
        }
        PyObject *key = key_object(PyTuple_GET_ITEM(e, 1), key_of);
        if (key == NULL)
            goto fail;
        PyList_SET_ITEM(out, at++, key);
    }
    return out;
fail:
    /* the slots not set yet are NULL, which a list's deallocation skips */
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"copy_text", copy_text, METH_VARARGS, "The rows (a list of tuples, each after its value in ``first`` when given) in "
                                           "PostgreSQL's text COPY format, or None."},
    {"text_array", text_array, METH_O, "A list of str as one PostgreSQL text array literal, or None."},
    {"ledger_keys", ledger_keys, METH_VARARGS, "ledger_keys(ids, key_of): store.db.ledger_key of each CDR id (key_of: for "
                                               "an id that is not a str)."},
    {"sqlite_ledger_params", sqlite_ledger_params, METH_VARARGS,
     "sqlite_ledger_params(entries, time_of, key_of): the packed INSERT's parameters of the SQLite ledger's rows, each row's "
     "columns with its start time as SQLite text, then its key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_copytext", NULL, -1, methods};

PyMODINIT_FUNC PyInit__copytext(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    return PyModule_Create(&module);
}
