/*
 * engine._replaylines: `rulebill replay`'s expected.jsonl line of each rated CDR, written and compared in C.
 *
 * A replay case's expected file holds, per CDR, canonical(full_form(...)) of engine/replay.py: the RatedCdr's
 * as_dict() as json.dumps(..., sort_keys=True, ensure_ascii=False) writes it.  For a row the evaluator's batch loops
 * rated (status "rated", its price kept as a tuple: the one memoised span (gross, billed units, span micros[,
 * discount lines]) or the spans of a call priced by parts (gross, ((start, end, band, rate, billed, bundle units,
 * micros), ...))), everything that line holds is in the row, the chunk's columns (cdr_id, service, b_number) and the
 * plan version: LineWriter writes it here, byte for byte, without building the dict.  Every other row (unrated,
 * rejected, barred, priced the per-CDR way, a CDR without an id of its own, a cell of another type) is left to
 * full_form (None where its line would be), as is anything this file does not write exactly the way json.dumps does
 * (a str json cannot encode as UTF-8, an int beyond 64 bits).
 *
 * LineWriter(rated, version_of)
 *     rated: the status of a rated row ("rated"); version_of(v) -> (currency, its minor-unit digits, plan id,
 *     version, the prefix index's groups dict, its lookup): asked once per plan version met.
 * .lines(out, ids, services, numbers) -> [str | None]
 *     each row's line (None: full_form's).
 * .compare(out, ids, services, numbers, start, data, pos, line, eof) -> (stop, pos, line, mismatches)
 *     rows start.. of the chunk against the expected file's lines read from data (bytes of the file from pos; line:
 *     lines read so far; eof: data holds the end of the file).  Lines are split at "\n" (a "\r" before it dropped);
 *     a line that str.strip() leaves empty is skipped.  A row whose line equals its expected line byte for byte is
 *     done here; every other is a mismatch (row, line number or 0, the expected line's bytes or None beyond the end of
 *     the file, this row's line or None: full_form's).  Stops at the first row whose expected line is not wholly in
 *     data (stop < len(out), eof false): the caller reads on and calls again from there.
 *
 * The prefix ("prefix" key: the longest prefix of the b_number in the version's index, PrefixIndex.lookup) is found
 * in a hash table of the index's prefixes built once per version (FNV-1a of the number's first bytes, every length
 * hashed in one pass); an index or a number that is not ASCII is looked up by the index itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_PREFIX 22   /* longer prefixes in an index: its own lookup (E.164 numbers have at most 15 digits) */

static PyObject *S_AMOUNT_MICROS, *S_DISCOUNT_ID;

/* == an output buffer ========================================================================================== */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int
grow(Buf *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int
put(Buf *b, const char *s, Py_ssize_t n)
{
    if (grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

#define PUTS(b, lit) put((b), "" lit, (Py_ssize_t)(sizeof("" lit) - 1))   /* (a string literal only) */

static int
put_ll(Buf *b, long long x)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    return put(b, tmp + sizeof tmp - n, n);
}

/* a JSON string of UTF-8 text, escaped as json's encode_basestring does (ensure_ascii=False: only '"', '\\' and
 * the control characters below 0x20, lowercase hex) */
static int
put_json_utf8(Buf *b, const char *s, Py_ssize_t n)
{
    static const char HEX[] = "0123456789abcdef";
    if (grow(b, n * 6 + 2) < 0)
        return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    b->len = o - b->p;
    return 0;
}

/* 1: written; 0: not a str or not UTF-8-encodable (the row goes to full_form); -1: error */
static int
put_json(Buf *b, PyObject *s)
{
    if (!PyUnicode_Check(s))
        return 0;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();   /* a lone surrogate: json.dumps writes it, UTF-8 cannot */
        return 0;
    }
    return put_json_utf8(b, u, n) < 0 ? -1 : 1;
}

/* an exact int (not a bool, which f-strings write as True) that fits in 64 bits: 1, else 0 (full_form); -1 error */
static int
int_of(PyObject *o, long long *out)
{
    if (!PyLong_CheckExact(o))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow || x == LLONG_MIN)
        return 0;
    *out = x;
    return 1;
}

/* engine.money.format_amount(micros, currency) with the currency's minor-unit digits, in quotes */
static int
put_amount(Buf *b, long long micros, int digits)
{
    unsigned long long u = micros < 0 ? 0ULL - (unsigned long long)micros : (unsigned long long)micros;
    unsigned long long whole = u / 1000000, frac = u % 1000000;
    char f[6];
    for (int i = 5; i >= 0; i--) {
        f[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int keep = 6;
    while (keep > 0 && f[keep - 1] == '0')
        keep--;
    if (keep < digits)
        keep = digits > 6 ? 6 : digits;
    if (PUTS(b, "\"") < 0 || (micros < 0 && PUTS(b, "-") < 0) || put_ll(b, (long long)whole) < 0)
        return -1;
    if (keep && (PUTS(b, ".") < 0 || put(b, f, keep) < 0))
        return -1;
    return PUTS(b, "\"");
}

/* == a plan version: what its lines share, its prefixes ========================================================= */

typedef struct {       /* 32 bytes: a probe reads one cache line */
    uint64_t hash;
    uint8_t used;      /* 1 + the prefix's length; 0: an empty slot */
    char key[MAX_PREFIX + 1];
} Slot;

typedef struct {
    PyObject *v;          /* the CompiledVersion (a strong reference: its address is the cache key) */
    PyObject *lookup;     /* its prefix index's lookup, for what the table does not take */
    int digits;           /* the currency's minor-unit digits */
    Buf currency;         /* the currency as JSON */
    Buf plan;             /* ', "plan": <plan id>, "prefix": ' */
    Buf version;          /* ', "version": <n>, "zone": ' */
    int table;            /* the prefixes are in slots (every one ASCII, at most MAX_PREFIX long) */
    Slot *slots;
    size_t mask;
    uint64_t *bits;       /* one bit per hash (a filter that fits in the CPU's cache, asked before the slots) */
    int bits_shift;
    Py_ssize_t lengths[MAX_PREFIX + 1];   /* distinct prefix lengths, longest first */
    int nlengths;
} Version;

static inline uint64_t
fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 1099511628211ULL;
}

#define FNV_START 14695981039346656037ULL

static inline size_t
slot_of(uint64_t h, size_t mask)
{
    return (size_t)(h ^ (h >> 29)) & mask;
}

static inline uint64_t
bit_of(uint64_t h, int shift)
{
    return (h * 0x9E3779B97F4A7C15ULL) >> shift;
}

static void
version_free(Version *v)
{
    Py_CLEAR(v->v);
    Py_CLEAR(v->lookup);
    PyMem_Free(v->currency.p);
    PyMem_Free(v->plan.p);
    PyMem_Free(v->version.p);
    PyMem_Free(v->slots);
    PyMem_Free(v->bits);
    memset(v, 0, sizeof *v);
}

/* the prefixes of a groups dict in a hash table; 0 and no table when one is not an ASCII str (or is too long) */
static int
build_table(Version *v, PyObject *groups)
{
    v->table = 0;
    if (!PyDict_Check(groups))
        return 0;
    Py_ssize_t count = PyDict_GET_SIZE(groups), i = 0;
    PyObject *key, *value;
    int seen[MAX_PREFIX + 1] = {0};
    while (PyDict_Next(groups, &i, &key, &value)) {
        if (!PyUnicode_Check(key) || !PyUnicode_IS_ASCII(key) || PyUnicode_GET_LENGTH(key) > MAX_PREFIX)
            return 0;
        seen[PyUnicode_GET_LENGTH(key)] = 1;
    }
    size_t cap = 16;
    while (cap < (size_t)count * 2 + 2)
        cap *= 2;
    int log_bits = 10;   /* about 16 bits per prefix: a probe for a prefix not there mostly ends in the filter */
    while (log_bits < 40 && ((uint64_t)1 << log_bits) < (uint64_t)count * 16)
        log_bits++;
    v->bits_shift = 64 - log_bits;
    v->slots = PyMem_Calloc(cap, sizeof(Slot));
    v->bits = PyMem_Calloc(((size_t)1 << log_bits) / 64, sizeof(uint64_t));
    if (v->slots == NULL || v->bits == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->mask = cap - 1;
    i = 0;
    while (PyDict_Next(groups, &i, &key, &value)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        const char *s = (const char *)PyUnicode_1BYTE_DATA(key);
        uint64_t h = FNV_START;
        for (Py_ssize_t k = 0; k < n; k++)
            h = fnv_step(h, (unsigned char)s[k]);
        uint64_t bit = bit_of(h, v->bits_shift);
        v->bits[bit >> 6] |= (uint64_t)1 << (bit & 63);
        size_t j = slot_of(h, v->mask);
        while (v->slots[j].used)   /* dict keys are distinct: no match to look for */
            j = (j + 1) & v->mask;
        v->slots[j].hash = h;
        v->slots[j].used = (uint8_t)(n + 1);
        memcpy(v->slots[j].key, s, (size_t)n);
    }
    v->nlengths = 0;
    for (int n = MAX_PREFIX; n >= 0; n--)
        if (seen[n])
            v->lengths[v->nlengths++] = n;
    v->table = 1;
    return 0;
}

/* the length of the longest prefix of s (ASCII, n bytes) in the table, -1: none */
static Py_ssize_t
longest_prefix(const Version *v, const char *s, Py_ssize_t n)
{
    uint64_t hs[MAX_PREFIX + 1];
    Py_ssize_t upto = n < MAX_PREFIX ? n : MAX_PREFIX;
    uint64_t h = FNV_START;
    hs[0] = h;
    for (Py_ssize_t k = 0; k < upto; k++)
        hs[k + 1] = h = fnv_step(h, (unsigned char)s[k]);
    for (int li = 0; li < v->nlengths; li++) {
        Py_ssize_t len = v->lengths[li];
        if (len > n)
            continue;
        uint64_t want = hs[len], bit = bit_of(want, v->bits_shift);
        if (!(v->bits[bit >> 6] & ((uint64_t)1 << (bit & 63))))
            continue;
        for (size_t j = slot_of(want, v->mask); v->slots[j].used; j = (j + 1) & v->mask) {
            const Slot *e = &v->slots[j];
            if (e->hash == want && e->used == len + 1 && memcmp(e->key, s, (size_t)len) == 0)
                return len;
        }
    }
    return -1;
}

/* the slot longest_prefix will read first for s, asked of the memory ahead of time */
static void
prefetch_prefix(const Version *v, const char *s, Py_ssize_t n)
{
    uint64_t hs[MAX_PREFIX + 1];
    Py_ssize_t upto = n < MAX_PREFIX ? n : MAX_PREFIX;
    uint64_t h = FNV_START;
    hs[0] = h;
    for (Py_ssize_t k = 0; k < upto; k++)
        hs[k + 1] = h = fnv_step(h, (unsigned char)s[k]);
    for (int li = 0; li < v->nlengths; li++) {
        Py_ssize_t len = v->lengths[li];
        if (len > n)
            continue;
        uint64_t bit = bit_of(hs[len], v->bits_shift);
        if (v->bits[bit >> 6] & ((uint64_t)1 << (bit & 63))) {
            __builtin_prefetch(&v->slots[slot_of(hs[len], v->mask)]);
            return;
        }
    }
}

/* == the writer ================================================================================================= */

typedef struct {
    PyObject_HEAD
    PyObject *rated;        /* the status of a rated row */
    PyObject *version_of;   /* v -> (currency, digits, plan id, version, groups, lookup) */
    Version *versions;
    Py_ssize_t nversions, capversions;
    Py_ssize_t last;        /* the version of the row before */
    Buf line;
} LineWriter;

static Version *
version_for(LineWriter *w, PyObject *v)
{
    if (w->last >= 0 && w->versions[w->last].v == v)
        return &w->versions[w->last];
    for (Py_ssize_t i = 0; i < w->nversions; i++)
        if (w->versions[i].v == v) {
            w->last = i;
            return &w->versions[i];
        }
    PyObject *facts = PyObject_CallOneArg(w->version_of, v);
    if (facts == NULL)
        return NULL;
    PyObject *currency, *plan_id, *groups, *lookup;
    int digits;
    long long number;
    if (!PyArg_ParseTuple(facts, "UiULOO", &currency, &digits, &plan_id, &number, &groups, &lookup)) {
        Py_DECREF(facts);
        return NULL;
    }
    if (w->nversions == w->capversions) {
        Py_ssize_t cap = w->capversions ? w->capversions * 2 : 4;
        Version *grown = PyMem_Realloc(w->versions, (size_t)cap * sizeof(Version));
        if (grown == NULL) {
            Py_DECREF(facts);
            PyErr_NoMemory();
            return NULL;
        }
        w->versions = grown;
        w->capversions = cap;
    }
    Version *e = &w->versions[w->nversions];
    memset(e, 0, sizeof *e);
    e->v = Py_NewRef(v);
    e->lookup = Py_NewRef(lookup);
    e->digits = digits;
    w->nversions++;   /* (freed with the writer, whole or not) */
    int ok = put_json(&e->currency, currency) == 1 && PUTS(&e->plan, ", \"plan\": ") == 0 && put_json(&e->plan, plan_id) == 1
             && PUTS(&e->plan, ", \"prefix\": ") == 0 && PUTS(&e->version, ", \"version\": ") == 0
             && put_ll(&e->version, number) == 0 && PUTS(&e->version, ", \"zone\": ") == 0 && build_table(e, groups) == 0;
    Py_DECREF(facts);
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "a plan version's currency or plan id is not UTF-8 text");
        version_free(e);
        w->nversions--;
        return NULL;
    }
    w->last = w->nversions - 1;
    return e;
}

/* the prefix of number in v's index, as JSON: 1 written, 0 full_form's, -1 error */
static int
put_prefix(Buf *b, Version *v, PyObject *number)
{
    if (!PyUnicode_Check(number))
        return 0;
    if (v->table && PyUnicode_IS_ASCII(number)) {
        const char *s = (const char *)PyUnicode_1BYTE_DATA(number);
        Py_ssize_t len = longest_prefix(v, s, PyUnicode_GET_LENGTH(number));
        return put_json_utf8(b, s, len < 0 ? 0 : len) < 0 ? -1 : 1;
    }
    PyObject *found = PyObject_CallOneArg(v->lookup, number);
    if (found == NULL)
        return -1;
    int r = PyTuple_Check(found) && PyTuple_GET_SIZE(found) == 2 ? put_json(b, PyTuple_GET_ITEM(found, 1)) : 0;
    Py_DECREF(found);
    return r;
}

/* the items of a tuple (NULL: not a tuple, the row goes to full_form; a list could change under a callback) */
static inline PyObject **
items_of(PyObject *o, Py_ssize_t *n)
{
    if (!PyTuple_Check(o))
        return NULL;
    *n = PyTuple_GET_SIZE(o);
    return &PyTuple_GET_ITEM(o, 0);
}

#define TRY(x) do { int r_ = (x); if (r_ <= 0) return r_; } while (0)     /* 1: on; 0, -1: return it */
#define OK(x) do { if ((x) < 0) return -1; } while (0)

/* row r's line into b (emptied first): 1 written, 0 the row's line is full_form's, -1 error */
static int
write_line(LineWriter *w, Buf *b, PyObject *r, PyObject *cdr_id, PyObject *service, PyObject *number)
{
    b->len = 0;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 10)
        return 0;
    PyObject *status = PyTuple_GET_ITEM(r, 0), *what = PyTuple_GET_ITEM(r, 2), *uses = PyTuple_GET_ITEM(r, 3),
             *v = PyTuple_GET_ITEM(r, 4), *group = PyTuple_GET_ITEM(r, 5), *zone = PyTuple_GET_ITEM(r, 6),
             *band = PyTuple_GET_ITEM(r, 8), *how = PyTuple_GET_ITEM(r, 9);
    if (status != w->rated) {
        if (!PyUnicode_Check(status) || PyUnicode_Compare(status, w->rated) != 0)
            return 0;
    }
    if (!PyTuple_CheckExact(how) || PyTuple_GET_SIZE(how) < 2 || v == Py_None || !PyUnicode_Check(cdr_id)
        || PyUnicode_GET_LENGTH(cdr_id) == 0)
        return 0;
    long long charge, units;
    TRY(int_of(PyTuple_GET_ITEM(r, 1), &charge));
    TRY(int_of(PyTuple_GET_ITEM(r, 7), &units));
    Version *ver = version_for(w, v);
    if (ver == NULL)
        return -1;
    int used = uses == Py_None ? 0 : PyObject_IsTrue(uses);
    OK(used);
    OK(PUTS(b, "{"));
    if (used) {
        Py_ssize_t n;
        PyObject **items = items_of(uses, &n);
        if (items == NULL)
            return 0;
        OK(PUTS(b, "\"bundles\": ["));
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t two;
            PyObject **use = items_of(items[i], &two);
            long long u;
            if (use == NULL || two != 2)
                return 0;
            OK(i ? PUTS(b, ", {\"bundle\": ") : PUTS(b, "{\"bundle\": "));
            TRY(put_json(b, use[0]));
            TRY(int_of(use[1], &u));
            OK(PUTS(b, ", \"units\": "));
            OK(put_ll(b, u));
            OK(PUTS(b, "}"));
        }
        OK(PUTS(b, "], "));
    }
    OK(PUTS(b, "\"cdr_id\": "));
    TRY(put_json(b, cdr_id));
    OK(PUTS(b, ", \"charge\": "));
    OK(put_amount(b, charge, ver->digits));
    OK(PUTS(b, ", \"charge_micros\": "));
    OK(put_ll(b, charge));
    OK(PUTS(b, ", \"currency\": "));
    OK(put(b, ver->currency.p, ver->currency.len));
    OK(PUTS(b, ", \"destination\": "));
    TRY(put_json(b, group));
    Py_ssize_t nhow = PyTuple_GET_SIZE(how);
    long long covered = 0, one_micros = 0;   /* (one memoised span) */
    if (nhow != 2) {
        long long billed, gross, micros;
        TRY(int_of(PyTuple_GET_ITEM(how, 1), &billed));
        TRY(int_of(PyTuple_GET_ITEM(how, 0), &gross));
        TRY(int_of(PyTuple_GET_ITEM(how, 2), &micros));
        covered = used ? billed : 0;
        one_micros = covered ? 0 : micros;
        PyObject *lines = nhow > 3 ? PyTuple_GET_ITEM(how, 3) : NULL;
        int any = lines == NULL ? 0 : PyObject_IsTrue(lines);
        OK(any);
        if (any) {
            Py_ssize_t n;
            PyObject **items = items_of(lines, &n);
            if (items == NULL)
                return 0;
            OK(PUTS(b, ", \"discounts\": ["));
            for (Py_ssize_t i = 0; i < n; i++) {
                long long off;
                PyObject *amount = PyObject_GetAttr(items[i], S_AMOUNT_MICROS);
                if (amount == NULL)
                    return -1;
                int got = int_of(amount, &off);
                Py_DECREF(amount);
                TRY(got);
                OK(i ? PUTS(b, ", {\"amount\": ") : PUTS(b, "{\"amount\": "));
                OK(put_amount(b, off, ver->digits));
                OK(PUTS(b, ", \"discount\": "));
                PyObject *id = PyObject_GetAttr(items[i], S_DISCOUNT_ID);
                if (id == NULL)
                    return -1;
                int put_id = put_json(b, id);
                Py_DECREF(id);
                TRY(put_id);
                OK(PUTS(b, "}"));
            }
            OK(PUTS(b, "], \"gross\": "));
            OK(put_amount(b, covered ? 0 : gross, ver->digits));
        }
    }
    OK(put(b, ver->plan.p, ver->plan.len));
    TRY(put_prefix(b, ver, number));
    OK(PUTS(b, ", \"service\": "));
    TRY(put_json(b, service));
    OK(PUTS(b, ", \"spans\": ["));
    if (nhow == 2) {   /* priced by parts in the C loop */
        Py_ssize_t n;
        PyObject **spans = items_of(PyTuple_GET_ITEM(how, 1), &n);
        if (spans == NULL)
            return 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t seven;
            PyObject **s = items_of(spans[i], &seven);
            long long start, end, billed, paid, micros;
            if (s == NULL || seven != 7)
                return 0;
            TRY(int_of(s[0], &start));
            TRY(int_of(s[1], &end));
            TRY(int_of(s[4], &billed));
            TRY(int_of(s[5], &paid));
            TRY(int_of(s[6], &micros));
            OK(i ? PUTS(b, ", {\"band\": ") : PUTS(b, "{\"band\": "));
            TRY(put_json(b, s[2]));
            OK(PUTS(b, ", \"billed_units\": "));
            OK(put_ll(b, billed));
            OK(PUTS(b, ", \"bundle_units\": "));
            OK(put_ll(b, paid));
            OK(PUTS(b, ", \"charge\": "));
            OK(put_amount(b, micros, ver->digits));
            OK(PUTS(b, ", \"end\": "));
            OK(put_ll(b, end));
            OK(PUTS(b, ", \"rate\": "));
            TRY(put_json(b, s[3]));
            OK(PUTS(b, ", \"start\": "));
            OK(put_ll(b, start));
            OK(PUTS(b, "}"));
        }
    }
    else {             /* one memoised span: the row's band and rate, from 0 to its units */
        long long billed;
        TRY(int_of(PyTuple_GET_ITEM(how, 1), &billed));
        OK(PUTS(b, "{\"band\": "));
        TRY(put_json(b, band));
        OK(PUTS(b, ", \"billed_units\": "));
        OK(put_ll(b, billed));
        OK(PUTS(b, ", \"bundle_units\": "));
        OK(put_ll(b, covered));
        OK(PUTS(b, ", \"charge\": "));
        OK(put_amount(b, one_micros, ver->digits));
        OK(PUTS(b, ", \"end\": "));
        OK(put_ll(b, units));
        OK(PUTS(b, ", \"rate\": "));
        TRY(put_json(b, what));
        OK(PUTS(b, ", \"start\": 0}"));
    }
    OK(PUTS(b, "], \"status\": \"rated\", \"units\": "));
    OK(put_ll(b, units));
    OK(put(b, ver->version.p, ver->version.len));
    TRY(put_json(b, zone));
    OK(PUTS(b, "}"));
    return 1;
}

#undef TRY
#undef OK

/* the chunk's row results and columns, all of one length */
static int
chunk_args(PyObject *out, PyObject *ids, PyObject *services, PyObject *numbers)
{
    if (!PyList_Check(out) || !PyList_Check(ids) || !PyList_Check(services) || !PyList_Check(numbers)) {
        PyErr_SetString(PyExc_TypeError, "out, ids, services and numbers are lists");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(out);
    if (PyList_GET_SIZE(ids) != n || PyList_GET_SIZE(services) != n || PyList_GET_SIZE(numbers) != n) {
        PyErr_SetString(PyExc_ValueError, "ids, services and numbers have one item per row of out");
        return -1;
    }
    return 0;
}

#define AHEAD 8

/* what row k + AHEAD, then row k + AHEAD / 2 will read, asked of the memory ahead of time (the rows, their prices
 * and the prefix table are read in no order the CPU foresees): the row and its cells, then its price and prefix slot */
static void
prefetch(LineWriter *w, PyObject *out, PyObject *ids, PyObject *numbers, Py_ssize_t k)
{
    Py_ssize_t n = PyList_GET_SIZE(out);
    if (n != PyList_GET_SIZE(ids) || n != PyList_GET_SIZE(numbers))
        return;
    if (k + AHEAD < n) {
        __builtin_prefetch(PyList_GET_ITEM(out, k + AHEAD));
        __builtin_prefetch(PyList_GET_ITEM(ids, k + AHEAD));
        __builtin_prefetch(PyList_GET_ITEM(numbers, k + AHEAD));
    }
    if (k + AHEAD / 2 < n) {
        PyObject *r = PyList_GET_ITEM(out, k + AHEAD / 2), *number = PyList_GET_ITEM(numbers, k + AHEAD / 2);
        if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 10)
            __builtin_prefetch(PyTuple_GET_ITEM(r, 9));
        if (w->last >= 0 && w->versions[w->last].table && PyUnicode_Check(number) && PyUnicode_IS_ASCII(number))
            prefetch_prefix(&w->versions[w->last], (const char *)PyUnicode_1BYTE_DATA(number), PyUnicode_GET_LENGTH(number));
    }
}

static int
row_line(LineWriter *w, PyObject *out, PyObject *ids, PyObject *services, PyObject *numbers, Py_ssize_t k)
{
    /* a callback (version_of, an index's lookup) may change the lists: read each item afresh */
    if (k >= PyList_GET_SIZE(out) || k >= PyList_GET_SIZE(ids) || k >= PyList_GET_SIZE(services) || k >= PyList_GET_SIZE(numbers)) {
        PyErr_SetString(PyExc_RuntimeError, "the chunk's lists changed while its lines were written");
        return -1;
    }
    prefetch(w, out, ids, numbers, k);
    PyObject *r = Py_NewRef(PyList_GET_ITEM(out, k)), *id = Py_NewRef(PyList_GET_ITEM(ids, k)),
             *service = Py_NewRef(PyList_GET_ITEM(services, k)), *number = Py_NewRef(PyList_GET_ITEM(numbers, k));
    int got = write_line(w, &w->line, r, id, service, number);
    Py_DECREF(r);
    Py_DECREF(id);
    Py_DECREF(service);
    Py_DECREF(number);
    return got;
}

static PyObject *
LineWriter_lines(LineWriter *w, PyObject *args)
{
    PyObject *out, *ids, *services, *numbers;
    if (!PyArg_ParseTuple(args, "OOOO", &out, &ids, &services, &numbers) || chunk_args(out, ids, services, numbers) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(out);
    PyObject *text = PyList_New(n);
    if (text == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        int got = row_line(w, out, ids, services, numbers, k);
        PyObject *item = got < 0 ? NULL : got == 0 ? Py_NewRef(Py_None) : PyUnicode_DecodeUTF8(w->line.p, w->line.len, NULL);
        if (item == NULL) {
            Py_DECREF(text);
            return NULL;
        }
        PyList_SET_ITEM(text, k, item);
    }
    return text;
}

/* characters str.strip() takes away, of ASCII */
static inline int
ascii_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* whether str.strip() leaves nothing of the line (not UTF-8: something is left, as the line is reported) */
static int
blank(const char *s, Py_ssize_t n)
{
    int wide = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            wide = 1;
        else if (!ascii_space(c))
            return 0;
    }
    if (!wide)
        return 1;
    PyObject *text = PyUnicode_DecodeUTF8(s, n, NULL);
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    int all = 1;
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(text) && all; i++)
        all = Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, i));
    Py_DECREF(text);
    return all;
}

enum { LINE, END, NEED };

/* the next line of data from *pos ([*start, *end), *pos moved past it): LINE, END (no more: eof), NEED (not whole) */
static int
next_line(const char *data, Py_ssize_t size, int eof, Py_ssize_t *pos, Py_ssize_t *start, Py_ssize_t *end)
{
    Py_ssize_t p = *pos;
    if (p >= size)
        return eof ? END : NEED;
    const char *nl = memchr(data + p, '\n', (size_t)(size - p));
    Py_ssize_t e;
    if (nl != NULL) {
        e = nl - data;
        *pos = e + 1;
    }
    else if (eof) {
        e = size;
        *pos = size;
    }
    else
        return NEED;
    *start = p;
    *end = e > p && data[e - 1] == '\r' ? e - 1 : e;
    return LINE;
}

static PyObject *
LineWriter_compare(LineWriter *w, PyObject *args)
{
    PyObject *out, *ids, *services, *numbers;
    Py_ssize_t start, pos, line;
    Py_buffer data;
    int eof;
    if (!PyArg_ParseTuple(args, "OOOOny*nnp", &out, &ids, &services, &numbers, &start, &data, &pos, &line, &eof))
        return NULL;
    PyObject *mismatches = NULL;
    if (chunk_args(out, ids, services, numbers) < 0)
        goto fail;
    if (start < 0 || pos < 0 || pos > data.len) {
        PyErr_SetString(PyExc_ValueError, "start or pos out of range");
        goto fail;
    }
    mismatches = PyList_New(0);
    if (mismatches == NULL)
        goto fail;
    const char *bytes = data.buf;
    Py_ssize_t k = start;
    for (; k < PyList_GET_SIZE(out); k++) {
        Py_ssize_t s = 0, e = 0, at = pos, number = line;
        int found;
        while ((found = next_line(bytes, data.len, eof, &at, &s, &e)) == LINE) {
            number++;
            if (!blank(bytes + s, e - s))
                break;
        }
        if (found == NEED)
            break;   /* (the blank lines before it are read again next time) */
        pos = at;
        line = number;
        int got = row_line(w, out, ids, services, numbers, k);
        if (got < 0)
            goto fail;
        if (got == 1 && found == LINE && e - s == w->line.len && memcmp(bytes + s, w->line.p, (size_t)(e - s)) == 0)
            continue;
        PyObject *expected = found == LINE ? PyBytes_FromStringAndSize(bytes + s, e - s) : Py_NewRef(Py_None);
        PyObject *actual = got == 1 ? PyUnicode_DecodeUTF8(w->line.p, w->line.len, NULL) : Py_NewRef(Py_None);
        PyObject *item = expected && actual ? Py_BuildValue("nnOO", k, found == LINE ? number : (Py_ssize_t)0, expected, actual) : NULL;
        Py_XDECREF(expected);
        Py_XDECREF(actual);
        if (item == NULL || PyList_Append(mismatches, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    PyBuffer_Release(&data);
    return Py_BuildValue("nnnN", k, pos, line, mismatches);
fail:
    Py_XDECREF(mismatches);
    PyBuffer_Release(&data);
    return NULL;
}

static int
LineWriter_init(LineWriter *w, PyObject *args, PyObject *kwds)
{
    PyObject *rated, *version_of;
    static char *names[] = {"rated", "version_of", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO:LineWriter", names, &rated, &version_of))
        return -1;
    if (!PyCallable_Check(version_of)) {
        PyErr_SetString(PyExc_TypeError, "version_of must be callable");
        return -1;
    }
    Py_XSETREF(w->rated, Py_NewRef(rated));
    Py_XSETREF(w->version_of, Py_NewRef(version_of));
    return 0;
}

static int
LineWriter_traverse(LineWriter *w, visitproc visit, void *arg)
{
    Py_VISIT(w->rated);
    Py_VISIT(w->version_of);
    for (Py_ssize_t i = 0; i < w->nversions; i++) {
        Py_VISIT(w->versions[i].v);
        Py_VISIT(w->versions[i].lookup);
    }
    return 0;
}

static int
LineWriter_clear(LineWriter *w)
{
    Py_CLEAR(w->rated);
    Py_CLEAR(w->version_of);
    for (Py_ssize_t i = 0; i < w->nversions; i++)
        version_free(&w->versions[i]);
    PyMem_Free(w->versions);
    w->versions = NULL;
    w->nversions = w->capversions = 0;
    w->last = -1;
    return 0;
}

static PyObject *
LineWriter_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    LineWriter *w = (LineWriter *)type->tp_alloc(type, 0);
    if (w != NULL)
        w->last = -1;
    return (PyObject *)w;
}

static void
LineWriter_dealloc(LineWriter *w)
{
    PyObject_GC_UnTrack(w);
    LineWriter_clear(w);
    PyMem_Free(w->line.p);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef LineWriter_methods[] = {
    {"lines", (PyCFunction)LineWriter_lines, METH_VARARGS, "lines(out, ids, services, numbers) -> [str | None]"},
    {"compare", (PyCFunction)LineWriter_compare, METH_VARARGS,
     "compare(out, ids, services, numbers, start, data, pos, line, eof) -> (stop, pos, line, mismatches)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LineWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "engine._replaylines.LineWriter",
    .tp_basicsize = sizeof(LineWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The expected.jsonl lines of rated rows, written and compared (see the module).",
    .tp_new = LineWriter_new,
    .tp_init = (initproc)LineWriter_init,
    .tp_dealloc = (destructor)LineWriter_dealloc,
    .tp_traverse = (traverseproc)LineWriter_traverse,
    .tp_clear = (inquiry)LineWriter_clear,
    .tp_methods = LineWriter_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_replaylines", "rulebill replay's expected lines written and compared in C.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__replaylines(void)
{
    S_AMOUNT_MICROS = PyUnicode_InternFromString("amount_micros");
    S_DISCOUNT_ID = PyUnicode_InternFromString("discount_id");
    if (S_AMOUNT_MICROS == NULL || S_DISCOUNT_ID == NULL || PyType_Ready(&LineWriterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "LineWriter", (PyObject *)&LineWriterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
