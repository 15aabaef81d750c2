/*
 * engine.billing._usagecsv: a number's rated CDRs, fetched as columns, written out as its usage block.
 *
 * block_text(tenant, msisdn, cdr, start, service, dest, plan, units, charge, currency)
 *     -> (rows, charges, ids, groups)
 *
 * Each column is a one-dimensional array in PostgreSQL's binary form (array_send): text as UTF-8, bigint and
 * timestamptz as 8-byte big-endian integers (microseconds since 2000-01-01 UTC).  The result is exactly
 * engine.billing.usagecsv.block_text_py's (the Python reference; see that module for what each part holds): the
 * usage.csv rows as engine.billing.usage_blocks.csv_row writes them, in start time then CDR id (byte) order, each
 * with its line tag; the charges of the CDRs to freeze one a line and their ids one a line (billing_frozen_usage); the sums per
 * (tariff plan, service, destination group, currency) in the order first met.  A malformed array raises
 * ValueError, text that is not UTF-8 UnicodeDecodeError, a sum past 64 bits OverflowError (the Python module then
 * sums in Python), a start time outside the years 1-9999 ValueError.
 *
 * fill_tags(rows, by_tag) -> str
 *
 * A block's rows with each line tag replaced by its invoice line's id: exactly
 * engine.billing.usage_blocks.fill_line_ids_py's text (its Python reference), in one pass over the rows' UTF-8 instead
 * of a replace, a split into ~2 strings per CDR and a join.  Either tag mark (\x02, \x03) ends a piece and text and
 * tags alternate, as that split has it; ``by_tag`` maps a tag's text (plan \x1f service \x1f destination) to the
 * line id.  A last tag left open raises ValueError("open"), a tag ``by_tag`` lacks KeyError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p;
    int32_t len;                 /* -1: NULL */
} Cell;

static int32_t
be32(const unsigned char *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3]);
}

static int64_t
be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

/* The cells of one array (NULL *out for an empty one); -1 with ValueError when it is not one. */
static Py_ssize_t
parse_array(const unsigned char *d, Py_ssize_t size, Cell **out)
{
    *out = NULL;
    if (size < 12)
        goto bad;
    int32_t ndim = be32(d);
    if (ndim == 0 && size == 12)
        return 0;
    if (ndim != 1 || size < 20)
        goto bad;
    int32_t n = be32(d + 12);
    if (n < 0)
        goto bad;
    Cell *cells = PyMem_Malloc(sizeof(Cell) * (size_t)(n ? n : 1));
    if (cells == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t pos = 20;
    for (int32_t i = 0; i < n; i++) {
        if (size - pos < 4)
            goto bad_free;
        int32_t len = be32(d + pos);
        pos += 4;
        if (len == -1) {
            cells[i].p = NULL;
            cells[i].len = -1;
            continue;
        }
        if (len < 0 || size - pos < len)
            goto bad_free;
        cells[i].p = d + pos;
        cells[i].len = len;
        pos += len;
    }
    if (pos != size)
        goto bad_free;
    *out = cells;
    return n;
bad_free:
    PyMem_Free(cells);
bad:
    PyErr_SetString(PyExc_ValueError, "not a one-dimensional array in PostgreSQL's binary form");
    return -1;
}

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int
grow(Buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int
put(Buf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap && grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int
putc_(Buf *b, char c)
{
    return put(b, &c, 1);
}

static inline int
put_cell(Buf *b, Cell c)
{
    return put(b, c.p, (size_t)c.len);
}

/* an unsigned decimal, then a signed one */
static int
put_u64(Buf *b, uint64_t v)
{
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + i, (size_t)(24 - i));
}

static uint64_t
magnitude(int64_t v)
{
    return v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
}

static int
put_i64(Buf *b, int64_t v)
{
    if (v < 0 && putc_(b, '-') < 0)
        return -1;
    return put_u64(b, magnitude(v));
}

/* a charge in micro-units with six decimals, as engine.billing.usage_blocks.charge_text */
static int
put_charge(Buf *b, int64_t micros)
{
    uint64_t m = magnitude(micros);
    char frac[6];
    uint64_t r = m % 1000000;
    for (int i = 5; i >= 0; i--) {
        frac[i] = (char)('0' + r % 10);
        r /= 10;
    }
    if (micros < 0 && putc_(b, '-') < 0)
        return -1;
    if (put_u64(b, m / 1000000) < 0 || putc_(b, '.') < 0)
        return -1;
    return put(b, frac, 6);
}

static void
two(char *out, int v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

/* a timestamptz (microseconds since 2000-01-01 UTC) as datetime.isoformat() of it in UTC */
static int
put_start(Buf *b, int64_t us)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    /* days since 1970-01-01, then the civil date (proleptic Gregorian) */
    int64_t z = days + 10957 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    if (m <= 2)
        y += 1;
    if (y < 1 || y > 9999) {
        PyErr_SetString(PyExc_ValueError, "a start time outside the years 1-9999");
        return -1;
    }
    char t[32];
    two(t, (int)(y / 100));
    two(t + 2, (int)(y % 100));
    t[4] = '-';
    two(t + 5, m);
    t[7] = '-';
    two(t + 8, d);
    t[10] = 'T';
    two(t + 11, (int)(sod / 3600));
    t[13] = ':';
    two(t + 14, (int)(sod / 60 % 60));
    t[16] = ':';
    two(t + 17, (int)(sod % 60));
    size_t n = 19;
    if (frac) {
        t[n++] = '.';
        for (int i = 5; i >= 0; i--) {
            t[n + (size_t)i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += 6;
    }
    memcpy(t + n, "+00:00", 6);
    return put(b, t, n + 6);
}

typedef struct {
    int64_t start;
    const unsigned char *cdr;
    int32_t cdr_len;
    int32_t has_start;
    Py_ssize_t idx;
} Key;

static int
key_cmp(const void *a_, const void *b_)
{
    const Key *a = a_, *b = b_;
    if (a->has_start != b->has_start)
        return a->has_start ? -1 : 1;                        /* NULL start times last */
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    int32_t la = a->cdr_len < 0 ? 0 : a->cdr_len, lb = b->cdr_len < 0 ? 0 : b->cdr_len;
    int32_t common = la < lb ? la : lb;
    int c = common ? memcmp(a->cdr, b->cdr, (size_t)common) : 0;
    if (c)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

typedef struct {
    Cell plan, service, dest, currency;
    int64_t micros, count, first, last;
    int has_time;
} GroupSum;

static int
same(Cell a, Cell b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

static PyObject *
cell_text(Cell c)
{
    if (c.len < 0)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8((const char *)c.p, c.len, "strict");
}

static PyObject *
time_or_none(int has, int64_t v)
{
    if (!has)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

enum { CDR, START, SERVICE, DEST, PLAN, UNITS, CHARGE, CURRENCY, NCOLS };

static PyObject *
block_text(PyObject *Py_UNUSED(self), PyObject *args)
{
    const char *tenant, *msisdn;
    Py_ssize_t tenant_len, msisdn_len;
    Py_buffer bufs[NCOLS];
    Cell *cols[NCOLS] = {0};
    Buf rows = {0}, charges = {0}, ids = {0};
    Key *order = NULL;
    GroupSum *groups = NULL;
    Py_ssize_t ngroups = 0, capgroups = 0, listed = 0;
    PyObject *result = NULL;
    memset(bufs, 0, sizeof bufs);
    if (!PyArg_ParseTuple(args, "s#s#y*y*y*y*y*y*y*y*", &tenant, &tenant_len, &msisdn, &msisdn_len, &bufs[0], &bufs[1],
                          &bufs[2], &bufs[3], &bufs[4], &bufs[5], &bufs[6], &bufs[7]))
        return NULL;
    Py_ssize_t n = -1;
    for (int c = 0; c < NCOLS; c++) {
        Py_ssize_t k = parse_array(bufs[c].buf, bufs[c].len, &cols[c]);
        if (k < 0)
            goto done;
        if (n >= 0 && k != n) {
            PyErr_SetString(PyExc_ValueError, "eight arrays of the same length are needed");
            goto done;
        }
        n = k;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int kinds[3] = {START, UNITS, CHARGE};
        for (int k = 0; k < 3; k++)
            if (cols[kinds[k]][i].len >= 0 && cols[kinds[k]][i].len != 8) {
                PyErr_SetString(PyExc_ValueError, "a bigint or timestamptz element is not 8 bytes");
                goto done;
            }
    }
    order = PyMem_Malloc(sizeof(Key) * (size_t)(n ? n : 1));
    if (order == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Cell s = cols[START][i], c = cols[CDR][i];
        order[i].has_start = s.len >= 0;
        order[i].start = s.len >= 0 ? be64(s.p) : 0;
        order[i].cdr = c.p;
        order[i].cdr_len = c.len;
        order[i].idx = i;
    }
    qsort(order, (size_t)n, sizeof(Key), key_cmp);
    if (n && grow(&rows, (size_t)n * 160) < 0)
        goto done;
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_ssize_t i = order[j].idx;
        Cell cdr = cols[CDR][i], start = cols[START][i], service = cols[SERVICE][i], dest = cols[DEST][i];
        Cell plan = cols[PLAN][i], units = cols[UNITS][i], charge = cols[CHARGE][i], currency = cols[CURRENCY][i];
        if (cdr.len >= 0 && charge.len >= 0) {
            if (listed++ && (putc_(&ids, '\n') < 0 || putc_(&charges, '\n') < 0))
                goto done;
            if (put_cell(&ids, cdr) < 0 || put_i64(&charges, be64(charge.p)) < 0)
                goto done;
        }
        if (cdr.len >= 0 && start.len >= 0 && service.len >= 0 && dest.len >= 0 && plan.len >= 0 && units.len >= 0 &&
            charge.len >= 0 && currency.len >= 0) {
            if (putc_(&rows, '\x02') < 0 || put_cell(&rows, plan) < 0 || putc_(&rows, '\x1f') < 0 ||
                put_cell(&rows, service) < 0 || putc_(&rows, '\x1f') < 0 || put_cell(&rows, dest) < 0 ||
                put(&rows, "\x03,", 2) < 0 || put_cell(&rows, cdr) < 0 || putc_(&rows, ',') < 0 ||
                put(&rows, msisdn, (size_t)msisdn_len) < 0 || putc_(&rows, ',') < 0 || put_start(&rows, be64(start.p)) < 0 ||
                putc_(&rows, ',') < 0 || put_cell(&rows, service) < 0 || putc_(&rows, ',') < 0 || put_cell(&rows, dest) < 0 ||
                putc_(&rows, ',') < 0 || put_cell(&rows, plan) < 0 || putc_(&rows, ',') < 0 ||
                put_i64(&rows, be64(units.p)) < 0 || putc_(&rows, ',') < 0 || put_charge(&rows, be64(charge.p)) < 0 ||
                putc_(&rows, ',') < 0 || put_cell(&rows, currency) < 0 || putc_(&rows, '\n') < 0)
                goto done;
        }
        GroupSum *g = NULL;
        for (Py_ssize_t k = 0; k < ngroups; k++)
            if (same(groups[k].plan, plan) && same(groups[k].service, service) && same(groups[k].dest, dest) &&
                same(groups[k].currency, currency)) {
                g = &groups[k];
                break;
            }
        if (g == NULL) {
            if (ngroups == capgroups) {
                Py_ssize_t cap = capgroups ? capgroups * 2 : 16;
                GroupSum *p = PyMem_Realloc(groups, sizeof(GroupSum) * (size_t)cap);
                if (p == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                groups = p;
                capgroups = cap;
            }
            g = &groups[ngroups++];
            memset(g, 0, sizeof *g);
            g->plan = plan;
            g->service = service;
            g->dest = dest;
            g->currency = currency;
        }
        if (charge.len >= 0 && __builtin_add_overflow(g->micros, be64(charge.p), &g->micros)) {
            PyErr_SetString(PyExc_OverflowError, "a group's charges past 64 bits");
            goto done;
        }
        g->count += 1;
        if (start.len >= 0) {
            int64_t s = be64(start.p);
            if (!g->has_time || s < g->first)
                g->first = s;
            if (!g->has_time || s > g->last)
                g->last = s;
            g->has_time = 1;
        }
    }
    PyObject *list = PyList_New(ngroups);
    if (list == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < ngroups; k++) {
        GroupSum *g = &groups[k];
        PyObject *t = PyTuple_New(8);         /* its items NULL until set: Py_DECREF of a part-filled tuple is safe */
        for (int i = 0; t != NULL && i < 8; i++) {
            PyObject *item = i == 0 ? cell_text(g->plan) : i == 1 ? cell_text(g->service) : i == 2 ? cell_text(g->dest)
                           : i == 3 ? cell_text(g->currency) : i == 4 ? PyLong_FromLongLong(g->micros)
                           : i == 5 ? PyLong_FromLongLong(g->count) : time_or_none(g->has_time, i == 6 ? g->first : g->last);
            if (item == NULL)
                Py_CLEAR(t);
            else
                PyTuple_SET_ITEM(t, i, item);
        }
        if (t == NULL) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, k, t);
    }
    PyObject *texts[3] = {NULL, NULL, NULL};
    const Buf *parts[3] = {&rows, &charges, &ids};
    for (int i = 0; i < 3; i++) {
        texts[i] = PyUnicode_DecodeUTF8(parts[i]->p ? parts[i]->p : "", (Py_ssize_t)parts[i]->len, "strict");
        if (texts[i] == NULL) {
            for (int j = 0; j < i; j++)
                Py_DECREF(texts[j]);
            Py_DECREF(list);
            goto done;
        }
    }
    result = PyTuple_Pack(4, texts[0], texts[1], texts[2], list);
    for (int i = 0; i < 3; i++)
        Py_DECREF(texts[i]);
    Py_DECREF(list);
done:
    for (int c = 0; c < NCOLS; c++) {
        PyMem_Free(cols[c]);
        if (bufs[c].obj != NULL)
            PyBuffer_Release(&bufs[c]);
    }
    PyMem_Free(order);
    PyMem_Free(groups);
    PyMem_Free(rows.p);
    PyMem_Free(charges.p);
    PyMem_Free(ids.p);
    return result;
}

/* a tag's text and its line id's UTF-8, kept while the call runs (the few distinct tags of a block) */
typedef struct {
    const char *tag;
    Py_ssize_t tag_len;
    const char *id;
    Py_ssize_t id_len;
} Seen;

static PyObject *
fill_tags(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *rows_obj, *by_tag;
    if (!PyArg_ParseTuple(args, "UO!", &rows_obj, &PyDict_Type, &by_tag))
        return NULL;
    Py_ssize_t size;
    const char *s = PyUnicode_AsUTF8AndSize(rows_obj, &size);
    if (s == NULL)
        return NULL;
    Buf out = {0};
    Seen *seen = NULL;
    Py_ssize_t nseen = 0, capseen = 0;
    PyObject *missing = NULL;          /* the first tag by_tag lacks: raised once the marks are known to pair up */
    PyObject *result = NULL;
    if (size && grow(&out, (size_t)size) < 0)
        goto done;
    const char *p = s, *end = s + size;
    int in_tag = 0;
    while (1) {
        /* the next mark of either kind: memchr for an opening one, then for a closing one before it */
        const char *q = memchr(p, '\x02', (size_t)(end - p));
        if (q == NULL)
            q = end;
        const char *close = memchr(p, '\x03', (size_t)(q - p));
        if (close != NULL)
            q = close;
        if (!in_tag) {
            if (missing == NULL && put(&out, p, (size_t)(q - p)) < 0)
                goto done;
            if (q == end)
                break;
        } else if (q == end) {
            PyErr_SetString(PyExc_ValueError, "open");    /* before a missing tag, as the Python reference checks */
            goto done;
        } else if (missing == NULL) {
            Py_ssize_t len = q - p;
            Seen *hit = NULL;
            for (Py_ssize_t k = 0; k < nseen; k++)
                if (seen[k].tag_len == len && memcmp(seen[k].tag, p, (size_t)len) == 0) {
                    hit = &seen[k];
                    break;
                }
            if (hit == NULL) {
                PyObject *key = PyUnicode_DecodeUTF8(p, len, "strict");
                if (key == NULL)
                    goto done;
                PyObject *id = PyDict_GetItemWithError(by_tag, key);      /* borrowed: the dict holds it */
                if (id == NULL) {
                    if (PyErr_Occurred()) {
                        Py_DECREF(key);
                        goto done;
                    }
                    missing = key;
                } else {
                    Py_DECREF(key);
                    if (!PyUnicode_Check(id)) {
                        PyErr_SetString(PyExc_TypeError, "a line id is not a str");
                        goto done;
                    }
                    Py_ssize_t id_len;
                    const char *id_s = PyUnicode_AsUTF8AndSize(id, &id_len);   /* kept with the str */
                    if (id_s == NULL)
                        goto done;
                    if (nseen == capseen) {
                        Py_ssize_t cap = capseen ? capseen * 2 : 16;
                        Seen *grown = PyMem_Realloc(seen, sizeof(Seen) * (size_t)cap);
                        if (grown == NULL) {
                            PyErr_NoMemory();
                            goto done;
                        }
                        seen = grown;
                        capseen = cap;
                    }
                    hit = &seen[nseen++];
                    hit->tag = p;                   /* points into rows, alive for the call */
                    hit->tag_len = len;
                    hit->id = id_s;
                    hit->id_len = id_len;
                }
            }
            if (hit != NULL && put(&out, hit->id, (size_t)hit->id_len) < 0)
                goto done;
        }
        in_tag = !in_tag;
        p = q + 1;
    }
    if (missing != NULL) {
        PyErr_SetObject(PyExc_KeyError, missing);
        goto done;
    }
    result = PyUnicode_DecodeUTF8(out.p ? out.p : "", (Py_ssize_t)out.len, "strict");
done:
    Py_XDECREF(missing);
    PyMem_Free(seen);
    PyMem_Free(out.p);
    return result;
}

static PyMethodDef methods[] = {
    {"block_text", block_text, METH_VARARGS,
     "block_text(tenant, msisdn, cdr, start, service, dest, plan, units, charge, currency) -> (rows, charges, ids, groups)"},
    {"fill_tags", fill_tags, METH_VARARGS, "fill_tags(rows, by_tag) -> rows with each line tag replaced by its line id"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_usagecsv", "A number's rated CDRs, fetched as columns, written out as its usage block.", -1, methods,
};

PyMODINIT_FUNC
PyInit__usagecsv(void)
{
    return PyModule_Create(&module);
}
