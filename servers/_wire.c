/*
 * servers._wire: RatingService's wire side of a chunk in C, read from and written to protobuf's wire format directly.
 *
 * cdr_rows(data, bounds, services, directions, per_event[, ids_of]) -> [row or None, ...] or None
 *
 *     ``data``: a serialized RateCdrsRequest (or RateCdrRequest: its CDR is field 1 too).  Each CDR (field 1) gives the
 *     row of the normalised layout that servers.convert.cdr_rows_from_pb's Python loop gives it, when the CDR is well
 *     inside every bound: a known service and direction, a start time in [earliest, latest) with nanos 0..999999999,
 *     durations, volumes and events within ``bounds`` = (max seconds, max bytes, max events, earliest, latest), text no
 *     longer in bytes than its column holds characters, no charge and no attributes.  Any other CDR is None: the
 *     caller reads it through the Python path, which names its problems.  A CDR without a cdr_id has "" there (the
 *     caller fills in its identity), or, given ``ids_of(source, origin ids) -> [cdr id, ...]``, the identity that
 *     function gives it: called once per source among the request's CDRs without one, its ids put in the rows this call
 *     made (no row rebuilt, no Python loop over the rows).  None for the whole request when its bytes are not what
 *     this reader expects (a wire type it does not know): then the Python path reads every CDR.
 *
 * rated_reply(results, rows, versions, rated, rated_number) -> [bytes or int, ...]
 *
 *     The reply of a rated chunk as servers.rating_service.rated_rows_pb writes it without explanations, in
 *     protobuf's wire format: each row the evaluator rated in one span (status ``rated``, its ``how`` a tuple, with
 *     its bundle units and discount lines), and each call the C loop priced by parts with the spans it kept (``how``
 *     ``(gross, spans)``), is encoded as a RatedCdr entry (field 1 of RateCdrsResponse); runs of them come back as bytes
 *     and every other row as its index, for the caller to write through the Python path in its place.
 *
 * Both decline rather than guess: what they give is held equal to the Python path by tests/unit/servers/test_wire_rows.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_untrack.h"   /* untrack_atoms: rows of atoms kept from the cyclic collector */

/* ------------------------------------------------------------------------------------------------------------ reading */

static const unsigned char *
read_varint(const unsigned char *p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    int shift = 0;
    while (p < end && shift < 64) {
        unsigned char b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
        shift += 7;
    }
    return NULL;
}

/* past one field of wire type ``wt`` (not 2, read by the caller); NULL when malformed or a type this reader skips not */
static const unsigned char *
skip_field(const unsigned char *p, const unsigned char *end, int wt)
{
    uint64_t v;
    switch (wt) {
    case 0:
        return read_varint(p, end, &v);
    case 1:
        return end - p >= 8 ? p + 8 : NULL;
    case 2:
        p = read_varint(p, end, &v);
        return p != NULL && (uint64_t)(end - p) >= v ? p + v : NULL;
    case 5:
        return end - p >= 4 ? p + 4 : NULL;
    default:
        return NULL;
    }
}

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
} span_t;

typedef struct {
    long long max_seconds, max_bytes, max_events, earliest, latest;
    PyObject *services, *directions, *per_event;
    /* the last text met in a few columns that repeat from CDR to CDR (source, tenant, visited network, code) */
    PyObject *last[4];
} reader_t;

/* a str of these UTF-8 bytes; NULL with no exception set when they are not UTF-8 */
static PyObject *
text_of(span_t s, PyObject **last)
{
    if (s.n == 0)
        return PyUnicode_New(0, 0);
    if (last != NULL && *last != NULL && PyUnicode_GET_LENGTH(*last) == s.n && PyUnicode_KIND(*last) == PyUnicode_1BYTE_KIND
        && PyUnicode_IS_ASCII(*last) && memcmp(PyUnicode_1BYTE_DATA(*last), s.p, (size_t)s.n) == 0) {
        Py_INCREF(*last);
        return *last;
    }
    PyObject *out = PyUnicode_DecodeUTF8((const char *)s.p, s.n, NULL);
    if (out == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (last != NULL) {
        Py_XSETREF(*last, out);
        Py_INCREF(out);
    }
    return out;
}

/* days since 1970-01-01 -> civil date (proleptic Gregorian) */
static void
civil(long long days, int *y, int *m, int *d)
{
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = yoe + era * 400;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

/* "YYYY-MM-DDTHH:MM:SSZ" of an epoch second (from 1970 to 9999) */
static PyObject *
iso_of(long long seconds)
{
    int y, m, d;
    long long clock = seconds % 86400;
    civil(seconds / 86400, &y, &m, &d);
    PyObject *out = PyUnicode_New(20, 127);
    if (out == NULL)
        return NULL;
    char *s = (char *)PyUnicode_1BYTE_DATA(out);
    int h = (int)(clock / 3600), mi = (int)(clock / 60 % 60), se = (int)(clock % 60);
    s[0] = '0' + y / 1000; s[1] = '0' + y / 100 % 10; s[2] = '0' + y / 10 % 10; s[3] = '0' + y % 10; s[4] = '-';
    s[5] = '0' + m / 10; s[6] = '0' + m % 10; s[7] = '-'; s[8] = '0' + d / 10; s[9] = '0' + d % 10; s[10] = 'T';
    s[11] = '0' + h / 10; s[12] = '0' + h % 10; s[13] = ':'; s[14] = '0' + mi / 10; s[15] = '0' + mi % 10; s[16] = ':';
    s[17] = '0' + se / 10; s[18] = '0' + se % 10; s[19] = 'Z';
    return out;
}

/* the columns' byte limits, by field number (0: not a text column of the row) */
static const Py_ssize_t TEXT_LIMIT[18] = {0, 64, 64, 255, 0, 0, 0, 64, 255, 15, 0, 0, 0, 0, 16, 16, 0, 40};

enum { DECLINE_CDR = 1, DECLINE_ALL = 2 };

/* the row of one CDR's bytes in *row (Py_None when the Python path must read it); DECLINE_ALL, or -1 on an error */
static int
cdr_row(reader_t *r, const unsigned char *p, const unsigned char *end, PyObject **row)
{
    span_t text[18];
    memset(text, 0, sizeof text);
    uint64_t service = 0, direction = 0, duration = 0, up = 0, down = 0, events = 0, seconds = 0, nanos = 0, v;
    int has_start = 0, decline = 0;
    while (p < end) {
        uint64_t tag;
        p = read_varint(p, end, &tag);
        if (p == NULL)
            return DECLINE_ALL;
        uint64_t field = tag >> 3;
        int wt = (int)(tag & 7);
        if (wt == 2) {
            uint64_t n;
            p = read_varint(p, end, &n);
            if (p == NULL || (uint64_t)(end - p) < n)
                return DECLINE_ALL;
            if (field < 18 && TEXT_LIMIT[field]) {
                text[field].p = p;
                text[field].n = (Py_ssize_t)n;
            }
            else if (field == 6) {   /* google.protobuf.Timestamp: a second occurrence merges into the first */
                const unsigned char *q = p, *qend = p + n;
                has_start = 1;
                while (q < qend) {
                    uint64_t t;
                    q = read_varint(q, qend, &t);
                    if (q == NULL)
                        return DECLINE_ALL;
                    if ((t & 7) == 0 && ((t >> 3) == 1 || (t >> 3) == 2)) {
                        q = read_varint(q, qend, (t >> 3) == 1 ? &seconds : &nanos);
                        if (q == NULL)
                            return DECLINE_ALL;
                    }
                    else {
                        if ((t >> 3) == 1 || (t >> 3) == 2)
                            decline = 1;
                        q = skip_field(q, qend, (int)(t & 7));
                        if (q == NULL)
                            return DECLINE_ALL;
                    }
                }
            }
            else if (field >= 1 && field <= 18) {
                decline = 1;   /* a charge (16), attributes (18), or a number in a wire type this reader does not expect */
            }
            p += n;
        }
        else if (wt == 0 && ((field >= 4 && field <= 5) || (field >= 10 && field <= 13))) {
            p = read_varint(p, end, &v);
            if (p == NULL)
                return DECLINE_ALL;
            switch (field) {
            case 4: service = v; break;
            case 5: direction = v; break;
            case 10: duration = v; break;
            case 11: up = v; break;
            case 12: down = v; break;
            default: events = v; break;
            }
        }
        else {
            if (field >= 1 && field <= 18)
                decline = 1;
            p = skip_field(p, end, wt);
            if (p == NULL)
                return DECLINE_ALL;
        }
    }
    long long sec = (long long)seconds, dur = (long long)duration, vup = (long long)up, vdown = (long long)down;
    long long ev = (long long)events;
    int32_t nano = (int32_t)nanos, svc = (int32_t)service, dir = (int32_t)direction;
    if (decline || !has_start || sec < r->earliest || sec >= r->latest || nano < 0 || nano >= 1000000000
        || dur < 0 || dur > r->max_seconds || vup < 0 || vup > r->max_bytes || vdown < 0 || vdown > r->max_bytes
        || vup + vdown > r->max_bytes)
        goto none;
    for (int f = 1; f < 18; f++)
        if (TEXT_LIMIT[f] && text[f].n > TEXT_LIMIT[f])
            goto none;
    PyObject *number = PyLong_FromLong(svc);
    if (number == NULL)
        return -1;
    PyObject *service_value = PyDict_GetItemWithError(r->services, number);
    int per_event = service_value != NULL ? PySet_Contains(r->per_event, number) : 0;
    Py_DECREF(number);
    if (service_value == NULL || per_event < 0) {
        if (PyErr_Occurred())
            return -1;
        goto none;
    }
    number = PyLong_FromLong(dir);
    if (number == NULL)
        return -1;
    PyObject *direction_value = PyDict_GetItemWithError(r->directions, number);
    Py_DECREF(number);
    if (direction_value == NULL) {
        if (PyErr_Occurred())
            return -1;
        goto none;
    }
    if (ev == 0 && per_event)
        ev = 1;
    if (ev < 0 || ev > r->max_events)
        goto none;

    PyObject *out = PyTuple_New(19);
    if (out == NULL)
        return -1;
    /* column -> field number of its text (engine.cdr.COLUMNS) */
    static const struct { int column, field, cached; } TEXTS[] = {
        {0, 1, -1}, {1, 2, 0}, {2, 3, -1}, {6, 7, -1}, {7, 8, -1}, {8, 9, -1}, {13, 14, 2}, {14, 15, 3}, {17, 17, 1},
    };
    for (size_t k = 0; k < sizeof TEXTS / sizeof TEXTS[0]; k++) {
        PyObject *s = text_of(text[TEXTS[k].field], TEXTS[k].cached >= 0 ? &r->last[TEXTS[k].cached] : NULL);
        if (s == NULL) {
            Py_DECREF(out);
            if (PyErr_Occurred())
                return -1;
            goto none;
        }
        PyTuple_SET_ITEM(out, TEXTS[k].column, s);
    }
    Py_INCREF(service_value);
    PyTuple_SET_ITEM(out, 3, service_value);
    Py_INCREF(direction_value);
    PyTuple_SET_ITEM(out, 4, direction_value);
    PyObject *items[5] = {iso_of(sec), PyLong_FromLongLong(dur), PyLong_FromLongLong(vup), PyLong_FromLongLong(vdown),
                          PyLong_FromLongLong(ev)};
    static const int at[5] = {5, 9, 10, 11, 12};
    int failed = 0;
    for (int k = 0; k < 5; k++) {
        if (items[k] == NULL) {
            failed = 1;
            items[k] = Py_None;
            Py_INCREF(Py_None);
        }
        PyTuple_SET_ITEM(out, at[k], items[k]);
    }
    Py_INCREF(Py_None);
    PyTuple_SET_ITEM(out, 15, Py_None);
    PyTuple_SET_ITEM(out, 16, PyUnicode_New(0, 0));
    PyTuple_SET_ITEM(out, 18, PyUnicode_New(0, 0));
    if (failed || PyTuple_GET_ITEM(out, 16) == NULL || PyTuple_GET_ITEM(out, 18) == NULL) {
        Py_DECREF(out);
        return -1;
    }
    untrack_atoms(out);   /* strs, ints and None */
    *row = out;
    return 0;
none:
    Py_INCREF(Py_None);
    *row = Py_None;
    return DECLINE_CDR;
}

/* The rows of ``rows`` (made by cdr_rows, each held by the list alone) with an empty cdr_id given their identity:
 * ``ids_of(source, [origin id, ...])`` once per source (in the order each source first appears), its ids set in place
 * of the empty text.  -1 with an exception set when ids_of fails or gives other than one str per origin id. */
static int
fill_identities(PyObject *rows, PyObject *ids_of)
{
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *sources = NULL;   /* source -> [row index, ...], made once a second source shows */
    PyObject *source = NULL, *at = NULL;   /* the first source and its row indices */
    int result = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (row == Py_None || PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(row, 0)) != 0)
            continue;
        PyObject *src = PyTuple_GET_ITEM(row, 1), *list;
        if (source == NULL) {
            source = src;
            Py_INCREF(source);
            if ((at = PyList_New(0)) == NULL)
                goto done;
            list = at;
        } else if (src == source || PyUnicode_Compare(src, source) == 0) {
            list = at;
        } else {
            if (PyErr_Occurred())
                goto done;
            if (sources == NULL) {
                if ((sources = PyDict_New()) == NULL || PyDict_SetItem(sources, source, at) < 0)
                    goto done;
            }
            list = PyDict_GetItemWithError(sources, src);
            if (list == NULL) {
                if (PyErr_Occurred() || (list = PyList_New(0)) == NULL)
                    goto done;
                int set = PyDict_SetItem(sources, src, list);
                Py_DECREF(list);   /* the dict holds it */
                if (set < 0)
                    goto done;
            }
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL)
            goto done;
        int appended = PyList_Append(list, index);
        Py_DECREF(index);
        if (appended < 0)
            goto done;
    }
    if (source == NULL) {
        result = 0;
        goto done;
    }
    Py_ssize_t pos = 0;
    PyObject *src = source, *list = at;
    for (;;) {
        Py_ssize_t m = PyList_GET_SIZE(list);
        PyObject *origins = PyList_New(m);
        if (origins == NULL)
            goto done;
        for (Py_ssize_t k = 0; k < m; k++) {
            PyObject *origin = PyTuple_GET_ITEM(PyList_GET_ITEM(rows, PyLong_AsSsize_t(PyList_GET_ITEM(list, k))), 2);
            Py_INCREF(origin);
            PyList_SET_ITEM(origins, k, origin);
        }
        PyObject *ids = PyObject_CallFunctionObjArgs(ids_of, src, origins, NULL);
        Py_DECREF(origins);
        if (ids == NULL)
            goto done;
        if (!PyList_CheckExact(ids) || PyList_GET_SIZE(ids) != m) {
            Py_DECREF(ids);
            PyErr_SetString(PyExc_ValueError, "cdr_rows: ids_of must give a list of one id per origin id");
            goto done;
        }
        for (Py_ssize_t k = 0; k < m; k++) {
            PyObject *id = PyList_GET_ITEM(ids, k);
            if (!PyUnicode_CheckExact(id)) {
                Py_DECREF(ids);
                PyErr_SetString(PyExc_TypeError, "cdr_rows: ids_of must give str ids");
                goto done;
            }
            PyObject *row = PyList_GET_ITEM(rows, PyLong_AsSsize_t(PyList_GET_ITEM(list, k)));
            PyObject *old = PyTuple_GET_ITEM(row, 0);
            Py_INCREF(id);
            PyTuple_SET_ITEM(row, 0, id);   /* the row is this call's own: nobody has seen it yet */
            Py_DECREF(old);
        }
        Py_DECREF(ids);
        if (sources == NULL)
            break;
        do {   /* the next source after the first (the first's list is in the dict too) */
            if (!PyDict_Next(sources, &pos, &src, &list)) {
                result = 0;
                goto done;
            }
        } while (list == at);
    }
    result = 0;
done:
    Py_XDECREF(source);
    Py_XDECREF(at);
    Py_XDECREF(sources);
    return result;
}

static PyObject *
cdr_rows(PyObject *self, PyObject *args)
{
    Py_buffer data;
    reader_t r;
    PyObject *ids_of = NULL;
    memset(&r, 0, sizeof r);
    if (!PyArg_ParseTuple(args, "y*(LLLLL)O!O!O|O", &data, &r.max_seconds, &r.max_bytes, &r.max_events, &r.earliest, &r.latest,
                          &PyDict_Type, &r.services, &PyDict_Type, &r.directions, &r.per_event, &ids_of))
        return NULL;
    if (ids_of == Py_None)
        ids_of = NULL;
    if (!PyAnySet_Check(r.per_event)) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_TypeError, "per_event must be a set");
        return NULL;
    }
    const unsigned char *p = data.buf, *end = p + data.len;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        goto error;
    while (p < end) {
        uint64_t tag, n;
        p = read_varint(p, end, &tag);
        if (p == NULL)
            goto decline;
        if ((tag >> 3) != 1) {
            p = skip_field(p, end, (int)(tag & 7));
            if (p == NULL)
                goto decline;
            continue;
        }
        if ((tag & 7) != 2)
            goto decline;
        p = read_varint(p, end, &n);
        if (p == NULL || (uint64_t)(end - p) < n)
            goto decline;
        PyObject *row;
        int got = cdr_row(&r, p, p + n, &row);
        if (got < 0)
            goto error;
        if (got == DECLINE_ALL)
            goto decline;
        int appended = PyList_Append(out, row);
        Py_DECREF(row);
        if (appended < 0)
            goto error;
        p += n;
    }
    if (ids_of != NULL && fill_identities(out, ids_of) < 0)
        goto error;
    for (int k = 0; k < 4; k++)
        Py_XDECREF(r.last[k]);
    PyBuffer_Release(&data);
    return out;
decline:
    Py_DECREF(out);
    for (int k = 0; k < 4; k++)
        Py_XDECREF(r.last[k]);
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
error:
    Py_XDECREF(out);
    for (int k = 0; k < 4; k++)
        Py_XDECREF(r.last[k]);
    PyBuffer_Release(&data);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------ writing */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} out_t;

static int
reserve(out_t *o, size_t more)
{
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more)
        cap *= 2;
    unsigned char *buf = PyMem_Realloc(o->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = buf;
    o->cap = cap;
    return 0;
}

static size_t
varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* the caller reserved room */
static void
put_varint(out_t *o, uint64_t v)
{
    while (v >= 0x80) {
        o->buf[o->len++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o->buf[o->len++] = (unsigned char)v;
}

typedef struct {
    const char *p;
    Py_ssize_t n;
} utf8_t;

/* sizes of fields as protobuf writes them: nothing for proto3 defaults */
static size_t int_field(long long v) { return v ? 1 + varint_size((uint64_t)v) : 0; }
static size_t text_field(utf8_t s) { return s.n ? 1 + varint_size((uint64_t)s.n) + (size_t)s.n : 0; }
static size_t sub_field(size_t n) { return 1 + varint_size(n) + n; }   /* a message field that is set (even empty) */
static size_t money_size(long long amount, utf8_t currency) { return int_field(amount) + text_field(currency); }

static void
put_int(out_t *o, int field, long long v)
{
    if (v) {
        put_varint(o, (uint64_t)field << 3);
        put_varint(o, (uint64_t)v);
    }
}

static void
put_text(out_t *o, int field, utf8_t s)
{
    if (s.n) {
        put_varint(o, ((uint64_t)field << 3) | 2);
        put_varint(o, (uint64_t)s.n);
        memcpy(o->buf + o->len, s.p, (size_t)s.n);
        o->len += (size_t)s.n;
    }
}

static void
put_head(out_t *o, int field, size_t n)
{
    put_varint(o, ((uint64_t)field << 3) | 2);
    put_varint(o, n);
}

static void
put_money(out_t *o, int field, long long amount, utf8_t currency)
{
    put_head(o, field, money_size(amount, currency));
    put_int(o, 1, amount);
    put_text(o, 2, currency);
}

/* the UTF-8 of a str; 0 (no exception) when ``s`` is not a str */
static int
utf8(PyObject *s, utf8_t *out)
{
    if (!PyUnicode_CheckExact(s))
        return 0;
    out->p = PyUnicode_AsUTF8AndSize(s, &out->n);
    if (out->p == NULL) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* a Python int as int64; 0 (no exception) when it is not an int or does not fit */
static int
int64(PyObject *v, long long *out)
{
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (*out == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

#define MAX_USES 16
#define MAX_LINES 16

typedef struct {
    PyObject *v;          /* the tariff plan version last read (its fields below; the strs held till the call ends) */
    PyObject *plan_id_str, *currency_str;
    utf8_t plan_id, currency;
    long long version;
} version_t;

/* the discount lines of a row (``how[3]``: objects with discount_id and amount_micros), their strs held in ``held`` */
typedef struct {
    Py_ssize_t n;
    utf8_t id[MAX_LINES];
    long long amount[MAX_LINES];
    PyObject *held[MAX_LINES];
} lines_t;

static void
lines_release(lines_t *l)
{
    for (Py_ssize_t k = 0; k < l->n; k++)
        Py_XDECREF(l->held[k]);
    l->n = 0;
}

/* 1: read; 0: the Python path writes the row (no exception) */
static int
lines_of(PyObject *lines, lines_t *out)
{
    out->n = 0;
    if (!PyTuple_CheckExact(lines) && !PyList_CheckExact(lines))
        return 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(lines);
    if (n > MAX_LINES)
        return 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *line = PySequence_Fast_GET_ITEM(lines, k);
        PyObject *id = PyObject_GetAttrString(line, "discount_id");
        PyObject *amount = id != NULL ? PyObject_GetAttrString(line, "amount_micros") : NULL;
        out->held[out->n] = id;
        out->n++;
        int ok = amount != NULL && utf8(id, &out->id[k]) && int64(amount, &out->amount[k]);
        Py_XDECREF(amount);
        if (!ok) {
            PyErr_Clear();
            lines_release(out);
            return 0;
        }
    }
    return 1;
}

#define MAX_RATED_SPANS 16

/* one RatedSpan of a reply */
typedef struct {
    long long start, end, billed, covered, charge;
    utf8_t band, rate_id;
} rated_span_t;

static size_t
rated_span_size(const rated_span_t *s, utf8_t currency)
{
    return int_field(s->start) + int_field(s->end) + text_field(s->band) + text_field(s->rate_id) + int_field(s->billed)
           + int_field(s->covered) + sub_field(money_size(s->charge, currency));
}

/* the spans a call priced by parts kept (``how[1]``: ((start, end, band, rate id, billed, bundle units, micros), ...));
 * 0 (no exception) when they are not as the C loop writes them */
static int
parts_spans(PyObject *spans, rated_span_t *out, Py_ssize_t *n)
{
    if (!PyTuple_CheckExact(spans) || PyTuple_GET_SIZE(spans) < 1 || PyTuple_GET_SIZE(spans) > MAX_RATED_SPANS)
        return 0;
    *n = PyTuple_GET_SIZE(spans);
    for (Py_ssize_t k = 0; k < *n; k++) {
        PyObject *s = PyTuple_GET_ITEM(spans, k);
        rated_span_t *o = &out[k];
        if (!PyTuple_CheckExact(s) || PyTuple_GET_SIZE(s) != 7 || !int64(PyTuple_GET_ITEM(s, 0), &o->start)
            || !int64(PyTuple_GET_ITEM(s, 1), &o->end) || !utf8(PyTuple_GET_ITEM(s, 2), &o->band)
            || !utf8(PyTuple_GET_ITEM(s, 3), &o->rate_id) || !int64(PyTuple_GET_ITEM(s, 4), &o->billed)
            || !int64(PyTuple_GET_ITEM(s, 5), &o->covered) || !int64(PyTuple_GET_ITEM(s, 6), &o->charge))
            return 0;
    }
    return 1;
}

/* 1: row i encoded into o; 0: the Python path writes it; -1: an error */
static int
rated_entry(out_t *o, PyObject *r, PyObject *row, PyObject *set_version, PyObject *rated, long long rated_number, version_t *cache,
            lines_t *lines)
{
    if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 10 || !PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) < 1)
        return 0;
    PyObject *status = PyTuple_GET_ITEM(r, 0), *uses = PyTuple_GET_ITEM(r, 3), *v = PyTuple_GET_ITEM(r, 4);
    PyObject *how = PyTuple_GET_ITEM(r, 9);
    if (status != rated && (!PyUnicode_CheckExact(status) || PyUnicode_Compare(status, rated) != 0)) {
        if (PyErr_Occurred())
            PyErr_Clear();
        return 0;
    }
    /* how: (gross, billed, span micros[, discount lines]) of a one-span row, (gross, spans) of a call priced by parts */
    if (v == Py_None || !PyTuple_CheckExact(how) || PyTuple_GET_SIZE(how) < 2)
        return 0;
    int by_parts = PyTuple_GET_SIZE(how) == 2;
    if (v != cache->v) {
        PyObject *plan_id = PyObject_GetAttrString(v, "plan_id"), *currency = PyObject_GetAttrString(v, "currency");
        PyObject *version = PyObject_GetAttrString(v, "version");
        int ok = plan_id != NULL && currency != NULL && version != NULL && utf8(plan_id, &cache->plan_id)
                 && utf8(currency, &cache->currency) && int64(version, &cache->version);
        Py_XSETREF(cache->plan_id_str, plan_id);     /* held: cache->plan_id points into it */
        Py_XSETREF(cache->currency_str, currency);
        Py_XDECREF(version);
        if (!ok) {
            PyErr_Clear();
            cache->v = NULL;
            return 0;
        }
        cache->v = v;
    }
    utf8_t cdr_id, group, zone, band, rate_id, bundle[MAX_USES];
    long long charge, units, gross, set, used[MAX_USES];
    rated_span_t spans[MAX_RATED_SPANS];
    Py_ssize_t n_spans = 1;
    if (!utf8(PyTuple_GET_ITEM(row, 0), &cdr_id) || !int64(PyTuple_GET_ITEM(r, 1), &charge)
        || !utf8(PyTuple_GET_ITEM(r, 2), &rate_id) || !utf8(PyTuple_GET_ITEM(r, 5), &group)
        || !utf8(PyTuple_GET_ITEM(r, 6), &zone) || !int64(PyTuple_GET_ITEM(r, 7), &units)
        || !utf8(PyTuple_GET_ITEM(r, 8), &band) || !int64(PyTuple_GET_ITEM(how, 0), &gross)
        || !int64(set_version, &set))
        return 0;
    if (by_parts) {
        if (!parts_spans(PyTuple_GET_ITEM(how, 1), spans, &n_spans))
            return 0;
    } else if (!int64(PyTuple_GET_ITEM(how, 1), &spans[0].billed) || !int64(PyTuple_GET_ITEM(how, 2), &spans[0].charge)) {
        return 0;
    }
    Py_ssize_t n_uses = 0;
    if (uses != Py_None) {
        if (!PyTuple_CheckExact(uses) && !PyList_CheckExact(uses))
            return 0;
        n_uses = PySequence_Fast_GET_SIZE(uses);
        if (n_uses > MAX_USES)
            return 0;
        for (Py_ssize_t k = 0; k < n_uses; k++) {
            PyObject *use = PySequence_Fast_GET_ITEM(uses, k);
            if (!PyTuple_CheckExact(use) || PyTuple_GET_SIZE(use) != 2 || !utf8(PyTuple_GET_ITEM(use, 0), &bundle[k])
                || !int64(PyTuple_GET_ITEM(use, 1), &used[k]))
                return 0;
        }
    }
    if (!by_parts) {
        if (PyTuple_GET_SIZE(how) > 3 && PyTuple_GET_ITEM(how, 3) != Py_None && !lines_of(PyTuple_GET_ITEM(how, 3), lines))
            return 0;
        /* one span over the call: a bundle that paid pays all of it (a part paid is priced by parts) */
        spans[0].start = 0;
        spans[0].end = units;
        spans[0].band = band;
        spans[0].rate_id = rate_id;
        spans[0].covered = n_uses ? spans[0].billed : 0;
        if (spans[0].covered) {
            gross = 0;
            spans[0].charge = 0;
        }
    }
    utf8_t currency = cache->currency;
    size_t span_size[MAX_RATED_SPANS];
    size_t body = text_field(cdr_id) + int_field(rated_number) + sub_field(money_size(charge, currency))
                  + sub_field(money_size(gross, currency)) + text_field(cache->plan_id) + int_field(cache->version)
                  + int_field(set) + text_field(group) + text_field(zone) + int_field(units);
    for (Py_ssize_t k = 0; k < n_spans; k++) {
        span_size[k] = rated_span_size(&spans[k], currency);
        body += sub_field(span_size[k]);
    }
    size_t use_size[MAX_USES], line_size[MAX_LINES];
    for (Py_ssize_t k = 0; k < n_uses; k++) {
        use_size[k] = text_field(bundle[k]) + int_field(used[k]);
        body += sub_field(use_size[k]);
    }
    for (Py_ssize_t k = 0; k < lines->n; k++) {
        line_size[k] = text_field(lines->id[k]) + sub_field(money_size(lines->amount[k], currency));
        body += sub_field(line_size[k]);
    }
    if (reserve(o, sub_field(body)) < 0) {
        lines_release(lines);
        return -1;
    }
    put_head(o, 1, body);
    put_text(o, 1, cdr_id);
    put_int(o, 2, rated_number);
    put_money(o, 4, charge, currency);
    put_money(o, 5, gross, currency);
    put_text(o, 6, cache->plan_id);
    put_int(o, 7, cache->version);
    put_int(o, 8, set);
    put_text(o, 9, group);
    put_text(o, 10, zone);
    put_int(o, 11, units);
    for (Py_ssize_t k = 0; k < n_spans; k++) {
        const rated_span_t *sp = &spans[k];
        put_head(o, 12, span_size[k]);
        put_int(o, 1, sp->start);
        put_int(o, 2, sp->end);
        put_text(o, 3, sp->band);
        put_text(o, 4, sp->rate_id);
        put_int(o, 5, sp->billed);
        put_int(o, 6, sp->covered);
        put_money(o, 7, sp->charge, currency);
    }
    for (Py_ssize_t k = 0; k < n_uses; k++) {
        put_head(o, 13, use_size[k]);
        put_text(o, 1, bundle[k]);
        put_int(o, 2, used[k]);
    }
    for (Py_ssize_t k = 0; k < lines->n; k++) {
        put_head(o, 14, line_size[k]);
        put_text(o, 1, lines->id[k]);
        put_money(o, 2, lines->amount[k], currency);
    }
    lines_release(lines);
    return 1;
}

static int
flush(out_t *o, PyObject *parts)
{
    if (o->len == 0)
        return 0;
    PyObject *b = PyBytes_FromStringAndSize((const char *)o->buf, (Py_ssize_t)o->len);
    if (b == NULL)
        return -1;
    int appended = PyList_Append(parts, b);
    Py_DECREF(b);
    o->len = 0;
    return appended;
}

static PyObject *
rated_reply(PyObject *self, PyObject *args)
{
    PyObject *results, *rows, *versions, *rated;
    long long rated_number;
    if (!PyArg_ParseTuple(args, "O!O!O!UL", &PyList_Type, &results, &PyList_Type, &rows, &PyList_Type, &versions, &rated,
                          &rated_number))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(results);
    if (PyList_GET_SIZE(rows) != n || PyList_GET_SIZE(versions) != n) {
        PyErr_SetString(PyExc_ValueError, "results, rows and versions must have one entry per CDR");
        return NULL;
    }
    PyObject *parts = PyList_New(0);
    if (parts == NULL)
        return NULL;
    out_t o = {NULL, 0, 0};
    version_t cache;
    memset(&cache, 0, sizeof cache);
    lines_t lines;
    lines.n = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int got = rated_entry(&o, PyList_GET_ITEM(results, i), PyList_GET_ITEM(rows, i), PyList_GET_ITEM(versions, i), rated,
                              rated_number, &cache, &lines);
        if (got < 0)
            goto error;
        if (got == 0) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || flush(&o, parts) < 0 || PyList_Append(parts, index) < 0) {
                Py_XDECREF(index);
                goto error;
            }
            Py_DECREF(index);
        }
    }
    if (flush(&o, parts) < 0)
        goto error;
    PyMem_Free(o.buf);
    Py_XDECREF(cache.plan_id_str);
    Py_XDECREF(cache.currency_str);
    return parts;
error:
    PyMem_Free(o.buf);
    Py_XDECREF(cache.plan_id_str);
    Py_XDECREF(cache.currency_str);
    Py_DECREF(parts);
    return NULL;
}

static PyMethodDef methods[] = {
    {"cdr_rows", cdr_rows, METH_VARARGS,
     "cdr_rows(data, bounds, services, directions, per_event[, ids_of]) -> [row or None, ...], or None: the Python path reads it all"},
    {"rated_reply", rated_reply, METH_VARARGS,
     "rated_reply(results, rows, versions, rated, rated_number) -> [bytes or index, ...]: the reply's RatedCdr entries"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_wire", "RatingService's wire side of a chunk in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    return PyModule_Create(&module);
}
