/*
 * engine.rating._rowkernel: the rating batch loop's plain rows, in C.
 *
 * rate_block(rows, start, out, context) -> index
 * rate_columns(columns, count, start, out, context[, sums]) -> index   (rows held as columns)
 * memo_key(grid, units) -> the one-span memo key of units (for the tests)
 *
 * Rates rows[start:] into ``out`` (one tuple per row, the shape of
 * engine.rating.evaluator.Row) as long as each row is the plain case, and
 * returns the index of the first row that is not (len(rows) when all were).
 * Its answers come from the evaluator's own tables and caches, the same Python
 * objects the Python loop (Evaluator._rate_block) reads -- the per-minute
 * entries (built by calling back ``minute``), the routes (dicts whose
 * __missing__ builds them), the rates' one-span memos (whose __missing__ runs
 * the pricing code; asked by the usage rounded up to the end of its increment
 * on the rate's memo grid, as the Python loop asks), the subscriber's wallet
 * (``wallet_of``).  Two kinds of call are priced here by parts, with the
 * per-CDR pricing's arithmetic for stepped rates (see "Calls priced by parts"
 * below): a voice call crossing a band change (its spans cut by the
 * evaluator's band clock, called back as ``spans_of``), and a call that
 * bundles pay for in part.
 *
 * The plain case is narrower than the Python loop's, never wider:
 *   - the row is a list or tuple of ``ncols`` cells;
 *   - start_time is ASCII "YYYY-MM-DDTHH:MM:SSZ" whose minute has an entry,
 *     and the band has not changed within the minute before it (an event);
 *   - usage cells are ints or ASCII digits (at most 15), the service's unused
 *     usage cells "" / "0" (event_count also "1"), within the limits;
 *   - home (no visited network) and direction "originating";
 *   - the route exists; a CDR discount (each line asked of the discount's ``on_cdr``, as the Python loop asks) only on a
 *     call priced in one span from the memo (a call priced by parts, or what-if's sums: the Python loop);
 *   - a call priced by parts: stepped rates in every band it crosses, each band
 *     with a rate, no version change within it (version_change: split), no
 *     bundle with a condition.
 * Any other row, and any error raised by a callback (cleared), stops the loop
 * at that row with nothing consumed; the Python loop then rates it (or hands
 * it to the per-CDR way).  So this loop changes speed, never results: a build
 * without it rates the same, and tests hold the two to each other.
 *
 * context: (i_service, i_direction, i_start, i_b, i_duration, i_up, i_down,
 *           i_events, i_visited, ncols, minutes_of, single_plan | None,
 *           plan_list | None, minute, wallets | None, max_bytes, max_events,
 *           "rated", "", wallet mode (0 a function of (i, row), 1 a list by row,
 *           2 a dict by a_number, 3 (each row's group, each group's dict by a_number
 *           or None), 4 the start minute's dict by a_number, its entry's tenth item (None: no wallet;
 *           wallets then any object but None)), the a_number column, spans_of | None); a dict by a_number that
 *           is a subclass is subscripted on a miss (its __missing__ may open a wallet;
 *           a KeyError: none).  spans_of(plan, version, start epoch, seconds) ->
 *           ((end offset, band, routes of home traffic by service), ...) | None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { SVC_VOICE, SVC_DATA, SVC_EVENTS, SVC_OTHER };

static PyObject *HOME;          /* "home" */
static PyObject *ORIGINATING;   /* "originating" */

/* A count cell: a non-negative int, or 1..15 ASCII digits.  -1: not one (the Python loop decides). */
static long long
count_of(PyObject *cell)
{
    if (PyLong_CheckExact(cell)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(cell, &overflow);
        if (overflow || v < 0 || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
        return v;
    }
    if (!PyUnicode_Check(cell) || PyUnicode_KIND(cell) != PyUnicode_1BYTE_KIND)
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(cell);
    if (n < 1 || n > 15)
        return -1;
    const Py_UCS1 *d = PyUnicode_1BYTE_DATA(cell);
    long long v = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (d[k] < '0' || d[k] > '9')
            return -1;
        v = v * 10 + (d[k] - '0');
    }
    return v;
}

/* "" / "0" / 0 (and, with ``one``, "1" / 1): an unused usage cell. */
static int
unused_cell(PyObject *cell, int one)
{
    if (PyLong_CheckExact(cell)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(cell, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        return v == 0 || (one && v == 1);
    }
    if (!PyUnicode_Check(cell) || PyUnicode_KIND(cell) != PyUnicode_1BYTE_KIND)
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(cell);
    if (n == 0)
        return 1;
    if (n != 1)
        return 0;
    Py_UCS1 c = PyUnicode_1BYTE_DATA(cell)[0];
    return c == '0' || (one && c == '1');
}

/* The services the loop rates, by name (interned: the routes' dicts are probed with these, whose hash is known,
 * rather than with the row's cell, a fresh string hashed anew on every row). */
static const char *SERVICE_NAMES[] = {"voice", "data", "sms", "mms", "supplementary"};
static const int SERVICE_KINDS[] = {SVC_VOICE, SVC_DATA, SVC_EVENTS, SVC_EVENTS, SVC_EVENTS};
#define NSERVICES 5
static PyObject *SERVICES[NSERVICES];

/* The kind of a service cell, and its interned name in ``*name`` (borrowed; unset for SVC_OTHER). */
static int
service_kind(PyObject *s, PyObject **name)
{
    if (!PyUnicode_Check(s))
        return SVC_OTHER;
    for (int k = 0; k < NSERVICES; k++) {
        if (s == SERVICES[k] || PyUnicode_CompareWithASCIIString(s, SERVICE_NAMES[k]) == 0) {
            *name = SERVICES[k];
            return SERVICE_KINDS[k];
        }
    }
    return SVC_OTHER;
}

/* A dict subclass with __missing__ (the routes, the one-span memos): the plain dict probe first, the
 * subclass's own subscript (which fills a missing key) only on a miss.  Same answer, without the method call
 * that subscripting a Python-defined dict subclass costs on every hit.  New reference, NULL on error. */
static PyObject *
filled_get(PyObject *d, PyObject *key)
{
    if (PyDict_Check(d)) {
        PyObject *hit = PyDict_GetItemWithError(d, key);
        if (hit != NULL) {
            Py_INCREF(hit);
            return hit;
        }
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_GetItem(d, key);
}

/*
 * The destination groups of a prefix index, probed without building a string per prefix length.
 *
 * A prefix index's dict (engine.rating.prefix.PrefixIndex.groups, built once and never changed) is copied into
 * an open-addressing table keyed by (length, value of the digits): a probe of the number's first L characters
 * is then arithmetic on the digits already read.  A key that is not 1..17 ASCII digits cannot be held, and the
 * table is then marked unusable: the loop probes the dict as before.  A number's prefix with a character that
 * is not a digit can equal no key of a usable table.  The few tables are kept with a strong reference to their
 * dict (so its address cannot be reused by another dict) and checked against its size.
 */
#define PREFIX_TABLES 4
#define PREFIX_MAX 17

typedef struct {
    unsigned long long key;   /* value * 20 + length (0: empty) */
    PyObject *group;          /* borrowed from the dict */
} PrefixSlot;

typedef struct {
    PyObject *dict;           /* strong reference; NULL: unused cache entry */
    Py_ssize_t size;
    int usable;
    size_t mask;
    PrefixSlot *slots;
    /* One bit per hash of every key, 16 bits per key: most probes of a length the number has no prefix of stop
     * here.  With 50,000 prefixes the slots take 2 MB, beyond the core's cache, and a probe that missed cost a
     * memory read (most of the loop's own time); the filter (128 KB) stays in the cache. */
    unsigned long long *filter;
    size_t filter_mask;       /* in bits */
} PrefixTable;

static PrefixTable prefix_tables[PREFIX_TABLES];
static int prefix_next;

static inline size_t
prefix_hash(unsigned long long key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key;
}

static inline size_t
filter_bit(const PrefixTable *t, size_t hash)
{
    return (hash >> 32) & t->filter_mask;   /* other bits of the hash than the slot's */
}

static void
prefix_put(PrefixTable *t, unsigned long long key, PyObject *group)
{
    size_t h = prefix_hash(key), bit = filter_bit(t, h);
    t->filter[bit >> 6] |= 1ULL << (bit & 63);
    size_t i = h & t->mask;
    while (t->slots[i].key != 0 && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    t->slots[i].key = key;
    t->slots[i].group = group;
}

/* The table of ``groups``, built on first use; NULL with an exception only when out of memory. */
static PrefixTable *
prefix_table(PyObject *groups)
{
    for (int k = 0; k < PREFIX_TABLES; k++) {
        PrefixTable *t = &prefix_tables[k];
        if (t->dict == groups && t->size == PyDict_GET_SIZE(groups))
            return t;
    }
    PrefixTable *t = &prefix_tables[prefix_next];
    prefix_next = (prefix_next + 1) % PREFIX_TABLES;
    Py_CLEAR(t->dict);
    PyMem_Free(t->slots);
    PyMem_Free(t->filter);
    t->slots = NULL;
    t->filter = NULL;
    Py_ssize_t n = PyDict_GET_SIZE(groups);
    size_t cap = 16, bits = 64;
    while (cap < (size_t)n * 2 + 1)
        cap <<= 1;
    while (bits < (size_t)n * 16)
        bits <<= 1;
    t->slots = PyMem_Calloc(cap, sizeof(PrefixSlot));
    t->filter = PyMem_Calloc(bits / 64, sizeof(unsigned long long));
    if (t->slots == NULL || t->filter == NULL) {
        PyMem_Free(t->slots);
        PyMem_Free(t->filter);
        t->slots = NULL;
        t->filter = NULL;
        PyErr_NoMemory();
        return NULL;
    }
    t->mask = cap - 1;
    t->filter_mask = bits - 1;
    t->usable = 1;
    PyObject *k, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(groups, &pos, &k, &val)) {
        if (!PyUnicode_Check(k) || PyUnicode_KIND(k) != PyUnicode_1BYTE_KIND || PyUnicode_GET_LENGTH(k) < 1
            || PyUnicode_GET_LENGTH(k) > PREFIX_MAX) {
            t->usable = 0;
            break;
        }
        const Py_UCS1 *d = PyUnicode_1BYTE_DATA(k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        unsigned long long value = 0;
        for (Py_ssize_t j = 0; j < len; j++) {
            if (d[j] < '0' || d[j] > '9') {
                t->usable = 0;
                break;
            }
            value = value * 10 + (d[j] - '0');
        }
        if (!t->usable)
            break;
        prefix_put(t, value * 20 + (unsigned long long)len, val);
    }
    Py_INCREF(groups);
    t->dict = groups;
    t->size = n;
    return t;
}

/* The last answer of prefix_group while rate_columns_both walks (``on``): the second side of a row whose prefix index
 * shares the first side's tables asks the same of the same number, and is answered without a probe.  Kept by
 * identity of the table's dict (held by the table), the number (a cell of the columns being walked, alive until the
 * walk ends, when ``on`` is cleared), the lengths and ``none``. */
static struct {
    int on;
    PyObject *dict, *number, *lengths, *none, *group;
    Py_ssize_t size;
    const PrefixTable *table;   /* the table it probed (for prefix_ahead) */
} last_group;

static PyObject *prefix_probe(const PrefixTable *t, PyObject *number, PyObject *lengths, PyObject *none);

/* The group of the longest prefix of ``number`` (lengths longest first; a length beyond the number probes the whole
 * number), or ``none``; borrowed.  NULL: the table cannot answer (the caller probes the dict). */
static PyObject *
prefix_group(const PrefixTable *t, PyObject *number, PyObject *lengths, PyObject *none)
{
    if (!last_group.on)
        return prefix_probe(t, number, lengths, none);
    if (last_group.number == number && last_group.dict == t->dict && last_group.size == t->size
        && last_group.lengths == lengths && last_group.none == none)
        return last_group.group;
    PyObject *group = prefix_probe(t, number, lengths, none);
    last_group.dict = t->dict;
    last_group.size = t->size;
    last_group.number = number;
    last_group.lengths = lengths;
    last_group.none = none;
    last_group.group = group;
    last_group.table = t;
    return group;
}

/* A hint for the next row's probes (rate_columns_both): the filter bits and the first slots ``number``'s prefixes of
 * the lengths probed last would read, asked for ahead.  Nothing is read from them here, and no answer changes. */
static void
prefix_ahead(PyObject *number)
{
    const PrefixTable *t = last_group.table;
    PyObject *lengths = last_group.lengths;
    if (t == NULL || !t->usable || t->slots == NULL || lengths == NULL || !PyTuple_Check(lengths) || !PyUnicode_Check(number)
        || PyUnicode_KIND(number) != PyUnicode_1BYTE_KIND)
        return;
    const Py_UCS1 *d = PyUnicode_1BYTE_DATA(number);
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(number);
    unsigned long long values[PREFIX_MAX + 1];
    Py_ssize_t digits = 0;
    values[0] = 0;
    while (digits < nlen && digits < PREFIX_MAX && d[digits] >= '0' && d[digits] <= '9') {
        values[digits + 1] = values[digits] * 10 + (d[digits] - '0');
        digits++;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(lengths); k++) {
        PyObject *x = PyTuple_GET_ITEM(lengths, k);
        if (!PyLong_CheckExact(x))
            return;
        Py_ssize_t len = PyLong_AsSsize_t(x);
        if (len < 0) {
            PyErr_Clear();
            return;
        }
        Py_ssize_t m = len < nlen ? len : nlen;
        if (m == 0 || m > digits)
            continue;
        unsigned long long key = values[m] * 20 + (unsigned long long)m;
        size_t h = prefix_hash(key), bit = filter_bit(t, h);
        __builtin_prefetch(&t->filter[bit >> 6]);
        __builtin_prefetch(&t->slots[h & t->mask]);
    }
}

static PyObject *
prefix_probe(const PrefixTable *t, PyObject *number, PyObject *lengths, PyObject *none)
{
    if (!t->usable || PyUnicode_KIND(number) != PyUnicode_1BYTE_KIND)
        return NULL;
    const Py_UCS1 *d = PyUnicode_1BYTE_DATA(number);
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(number);
    /* value of the first j digits, for j up to the first character that is not a digit */
    unsigned long long values[PREFIX_MAX + 1];
    Py_ssize_t digits = 0;
    values[0] = 0;
    while (digits < nlen && digits < PREFIX_MAX && d[digits] >= '0' && d[digits] <= '9') {
        values[digits + 1] = values[digits] * 10 + (d[digits] - '0');
        digits++;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(lengths); k++) {
        Py_ssize_t len = PyLong_AsSsize_t(PyTuple_GET_ITEM(lengths, k));
        if (len < 0) {
            PyErr_Clear();
            return NULL;
        }
        Py_ssize_t m = len < nlen ? len : nlen;
        if (m > digits) {
            if (m > PREFIX_MAX && digits == PREFIX_MAX)
                return NULL;   /* a longer all-digit probe: no key is that long, but let the dict say so */
            continue;          /* a character that is not a digit: no key */
        }
        if (m == 0)
            continue;
        unsigned long long key = values[m] * 20 + (unsigned long long)m;
        size_t h = prefix_hash(key), bit = filter_bit(t, h);
        if (!(t->filter[bit >> 6] & (1ULL << (bit & 63))))
            continue;   /* no key of that hash: not a prefix */
        size_t i = h & t->mask;
        while (t->slots[i].key != 0) {
            if (t->slots[i].key == key)
                return t->slots[i].group;
            i = (i + 1) & t->mask;
        }
    }
    return none;
}

/* Where the last increment covering ``units`` ends on a memo grid (from, increment, from, increment, ...: the
 * increments laid from 0, each belonging to the step it starts in; empty: ``units`` itself), as
 * engine.rating.models.base.grid_end computes it.  -1: not a grid this loop reads (the Python loop decides). */
static long long
grid_end(PyObject *grid, long long units)
{
    Py_ssize_t n = PyTuple_GET_SIZE(grid);
    if (n == 0 || units <= 0)
        return units;
    if (n % 2 != 0 || n > 64)
        return -1;
    long long at[64];
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *x = PyTuple_GET_ITEM(grid, k);
        if (!PyLong_CheckExact(x))
            return -1;
        int overflow = 0;
        at[k] = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (overflow || at[k] < 0 || (at[k] == -1 && PyErr_Occurred()) || (k % 2 == 1 && at[k] == 0)
            || (k % 2 == 0 && k > 0 && at[k] < at[k - 2]) || (k == 0 && at[0] != 0))
            return -1;
        if (at[k] > (1LL << 50))
            return -1;   /* far beyond any usage the limits allow: no overflow below */
    }
    if (n == 2)
        return (units + at[1] - 1) / at[1] * at[1];
    long long t = 0;
    Py_ssize_t i = 0;
    while (t < units) {
        while (i + 2 < n && at[i + 2] <= t)
            i += 2;
        long long lim = i + 2 < n && at[i + 2] < units ? at[i + 2] : units;
        t += (lim - t + at[i + 1] - 1) / at[i + 1] * at[i + 1];
    }
    return t;
}

/*
 * The start minute's entry ("YYYY-MM-DDTHH:MM", the cell's first 16 characters) of a plan's minute cache.
 *
 * Probing the dict needs a string of the minute (made, hashed and compared anew on every row: the cells are
 * fresh strings); a small table per minute cache, keyed by the 16 bytes themselves, answers most rows without
 * it.  It keeps a strong reference to the dict (whose address cannot then be reused by another) and to each
 * entry it holds.  An entry is what the evaluator's own cache gave for that minute (the evaluator clears its
 * cache only when it grows too large, and then makes an equal entry again), so an answer from here is the
 * dict's answer.  A few tables (as many as the plans a what-if rates alternately) are kept, the oldest replaced.
 *
 * The two items that differ from minute to minute (the seconds the band lasts from the minute, the minute's epoch)
 * are kept in the slot as numbers; the slot holds, for the rest, the first entry seen with the same other items
 * the loop reads (routes, prefix lengths, version, groups, band, wallets): a file with a row in most minutes of a
 * month then reads a few hundred entries, which stay in the CPU caches, instead of one entry (and its two ints)
 * per minute, each a cache miss.
 */
#define MINUTE_TABLES 4
#define MINUTE_SLOTS 65536   /* a power of two: 45 days of minutes, each its own slot */
#define SHARED_SLOTS 1024    /* a power of two: the entries shared by minutes, at most half of them used */
#define NO_UNTIL LLONG_MIN   /* an entry this loop does not read (None: no version in force; not the tuple) */

typedef struct {
    unsigned long long a, b;  /* the 16 bytes */
    PyObject *entry;          /* strong reference; NULL: empty */
    long long until, epoch;   /* the minute's own entry's first and ninth items (epoch -1: none) */
} MinuteSlot;

typedef struct {
    PyObject *dict;           /* strong reference; NULL: unused */
    MinuteSlot *slots;
    PyObject **shared;        /* strong references; NULL: empty */
    int nshared;
} MinuteTable;

static MinuteTable minute_tables[MINUTE_TABLES];
static int minute_next;

static MinuteTable *
minute_table(PyObject *minutes)
{
    for (int k = 0; k < MINUTE_TABLES; k++)
        if (minute_tables[k].dict == minutes)
            return &minute_tables[k];
    MinuteTable *t = &minute_tables[minute_next];
    if (t->slots == NULL) {
        t->slots = PyMem_Calloc(MINUTE_SLOTS, sizeof(MinuteSlot));
        if (t->slots == NULL)
            return NULL;
    }
    if (t->shared == NULL) {
        t->shared = PyMem_Calloc(SHARED_SLOTS, sizeof(PyObject *));
        if (t->shared == NULL)
            return NULL;
    }
    minute_next = (minute_next + 1) % MINUTE_TABLES;
    for (size_t i = 0; i < MINUTE_SLOTS; i++)
        Py_CLEAR(t->slots[i].entry);
    for (size_t i = 0; i < SHARED_SLOTS; i++)
        Py_CLEAR(t->shared[i]);
    t->nshared = 0;
    Py_INCREF(minutes);
    Py_XSETREF(t->dict, minutes);
    return t;
}

/* The table of a minute cache the loop has made already, NULL when none (nothing made or replaced). */
static MinuteTable *
known_minute_table(PyObject *minutes)
{
    for (int k = 0; k < MINUTE_TABLES; k++)
        if (minute_tables[k].dict == minutes && minute_tables[k].slots != NULL)
            return &minute_tables[k];
    return NULL;
}

static int small_int(PyObject *x, long long lo, long long hi, long long *out);

/* The items of an entry the loop reads besides its first and ninth: 1 (routes), 4 (lengths), 5 (version),
 * 6 (groups), 7 (band), 9 (wallets; NULL when the entry has no tenth). */
static const int SHARED_ITEMS[] = {1, 4, 5, 6, 7, 9};
#define NSHARED_ITEMS 6

static inline PyObject *
shared_item(PyObject *entry, int k)
{
    return SHARED_ITEMS[k] < PyTuple_GET_SIZE(entry) ? PyTuple_GET_ITEM(entry, SHARED_ITEMS[k]) : NULL;
}

/* The entry of the table's shared ones with the same items as ``entry`` (by identity), ``entry`` itself made one
 * when there is none and room; borrowed.  ``entry``: a tuple of at least 9 items. */
static PyObject *
shared_entry(MinuteTable *t, PyObject *entry)
{
    unsigned long long h = 0;
    for (int k = 0; k < NSHARED_ITEMS; k++)
        h = (h ^ (unsigned long long)(uintptr_t)shared_item(entry, k)) * 0x9e3779b97f4a7c15ULL;
    size_t i = (size_t)(h >> 40) & (SHARED_SLOTS - 1);
    while (t->shared[i] != NULL) {
        PyObject *other = t->shared[i];
        int same = PyTuple_GET_SIZE(other) >= 9;
        for (int k = 0; same && k < NSHARED_ITEMS; k++)
            same = shared_item(other, k) == shared_item(entry, k);
        if (same)
            return other;
        i = (i + 1) & (SHARED_SLOTS - 1);
    }
    if (t->nshared >= SHARED_SLOTS / 2)
        return entry;   /* full: the minute keeps its own */
    t->shared[i] = Py_NewRef(entry);
    t->nshared++;
    return entry;
}

/* An entry's first item (the seconds the band lasts from the minute) and ninth (the minute's epoch, -1 when it is
 * not one this loop reads); *until NO_UNTIL when the entry is not one this loop reads. */
static void
entry_numbers(PyObject *entry, long long *until, long long *epoch)
{
    *until = NO_UNTIL;
    *epoch = -1;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 8 || !small_int(PyTuple_GET_ITEM(entry, 0), LLONG_MIN + 1, LLONG_MAX, until))
        return;
    if (PyTuple_GET_SIZE(entry) < 9 || !small_int(PyTuple_GET_ITEM(entry, 8), 0, 1LL << 40, epoch))
        *epoch = -1;
}

/* The slot of a minute "YYYY-MM-DDTHH:MM": by its count of minutes (months of 31 days), so that the minutes of
 * 45 days in a row never share a slot, whatever order the rows come in (a hash of the bytes made distinct minutes
 * of a month collide: 60 % of the benchmark's rows missed a table of 4,096 slots); by a hash of the bytes when they
 * are not digits where the digits go (the dict then decides). */
static inline size_t
minute_slot(const Py_UCS1 *t, unsigned long long a, unsigned long long b)
{
    static const int digits[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15};
    int d[12];
    for (int k = 0; k < 12; k++) {
        d[k] = t[digits[k]] - '0';
        if (d[k] < 0 || d[k] > 9)
            return prefix_hash(a ^ (b * 0x9e3779b97f4a7c15ULL)) & (MINUTE_SLOTS - 1);
    }
    size_t month = (size_t)(d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]) * 12 + (size_t)(d[4] * 10 + d[5]);
    size_t minute = ((month * 31 + (size_t)(d[6] * 10 + d[7])) * 24 + (size_t)(d[8] * 10 + d[9])) * 60 + (size_t)(d[10] * 10 + d[11]);
    return minute & (MINUTE_SLOTS - 1);
}

/* New reference, and the minute's own first and ninth items in *until and *epoch (see entry_numbers); NULL: no
 * entry, the Python loop decides (``*failed`` set: out of memory, an exception set). */
static PyObject *
minute_entry(PyObject *minutes, PyObject *plan, PyObject *text, PyObject *minute_fn, int *failed, long long *until,
             long long *epoch)
{
    const Py_UCS1 *t = PyUnicode_1BYTE_DATA(text);
    unsigned long long a, b;
    memcpy(&a, t, 8);
    memcpy(&b, t + 8, 8);
    MinuteTable *table = minute_table(minutes);
    MinuteSlot *slot = NULL;
    if (table != NULL) {
        slot = &table->slots[minute_slot(t, a, b)];
        if (slot->entry != NULL && slot->a == a && slot->b == b) {
            *until = slot->until;
            *epoch = slot->epoch;
            return Py_NewRef(slot->entry);
        }
    } else {
        PyErr_Clear();   /* no memory for the table: the dict alone answers */
    }
    PyObject *key = PyUnicode_Substring(text, 0, 16);
    if (key == NULL) {
        *failed = 1;
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(minutes, key);
    if (entry != NULL) {
        Py_INCREF(entry);
    } else if (!PyErr_Occurred()) {
        entry = PyObject_CallFunctionObjArgs(minute_fn, minutes, plan, key, NULL);
    }
    Py_DECREF(key);
    if (entry == NULL) {
        PyErr_Clear();
        return NULL;
    }
    entry_numbers(entry, until, epoch);
    if (slot != NULL) {
        PyObject *kept = *until != NO_UNTIL && PyTuple_GET_SIZE(entry) >= 9 ? shared_entry(table, entry) : entry;
        Py_XSETREF(slot->entry, Py_NewRef(kept));
        slot->a = a;
        slot->b = b;
        slot->until = *until;
        slot->epoch = *epoch;
    }
    return entry;
}

/* The context, read once per call. */
enum { WALLET_BY_CALL, WALLET_BY_ROW, WALLET_BY_NUMBER, WALLET_BY_GROUP, WALLET_BY_MINUTE };

/* Sums by service (rate_columns given ``sums``): the rated rows of a settled service counted and their charges
 * added up here instead of appended as results (what-if adds up only these). */
#define SUM_CHARGE_LIMIT (1LL << 40)   /* a charge beyond (in absolute value) is appended as a result instead */

typedef struct {
    int settled[NSERVICES];
    long long count[NSERVICES], charge[NSERVICES];
    PyObject *where;          /* the indices of the rows appended to out (a list) */
} Sums;

typedef struct {
    Py_ssize_t col[9];
    Py_ssize_t ncols, i_a;
    int wallet_mode;
    PyObject *minutes_of, *single, *plan_list, *minute_fn, *wallet_of, *rated, *no_group, *minutes_fixed, *spans_of;
    long long max_bytes, max_events;
    Sums *sums;               /* NULL: every rated row appended to out */
} Context;

enum { C_SVC, C_DIR, C_START, C_B, C_DUR, C_UP, C_DOWN, C_EV, C_VIS, C_A, C_READ };

/*
 * Calls priced by parts: a voice call crossing a band change, and a call a bundle pays for in part.
 *
 * The same arithmetic as the per-CDR pricing (engine.rating.evaluator: _parts, _cover, _settle, _span_money,
 * _call_money; engine.rating.models.stepped: parts, amount_num), for stepped rates only: a route's seventh item is
 * the rate as this loop reads it (Evaluator's _kernel_rate; None: a model this loop does not price, the row goes
 * to Python).  Sums are exact in 128-bit integers; anything that would not fit 63 bits, more steps, spans or parts
 * than the arrays hold, declines the row (0), which the Python loop then prices.  Tests hold the two equal (calls
 * crossing bands at band edges, midnight and DST changes, bundles running out mid-call, minimum, maximum, every
 * rounding mode and scope).
 */
#define MAX_STEPS 16
#define MAX_SPANS 16
#define MAX_PARTS 64
#define MAX_BUNDLES 16

typedef __int128 wide;

enum { SCOPE_CALL, SCOPE_SPAN, SCOPE_INCREMENT };
enum { MODE_UP, MODE_DOWN, MODE_HALF_UP, MODE_HALF_EVEN };

typedef struct {
    int nsteps;
    long long from[MAX_STEPS], price[MAX_STEPS], per[MAX_STEPS], inc[MAX_STEPS], each[MAX_STEPS];
    long long den, decimals, fee, minimum, maximum;   /* maximum -1: none */
    int scope, mode, full, waive;
} RateSpec;

typedef struct {
    int span, step;
    long long units, covered;
} CallPart;

static int
small_int(PyObject *x, long long lo, long long hi, long long *out)
{
    if (!PyLong_CheckExact(x))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    if (v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* The route's rate as (steps ((from, price, per, increment, each), ...), den, scope, mode, decimals, connect fee,
 * minimum, maximum or -1, charge full at the maximum, waive the fee of a zero-unit call); 0: not one this loop prices. */
static int
read_spec(PyObject *spec, RateSpec *r)
{
    const long long BIG = 1LL << 50;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 10)
        return 0;
    PyObject *steps = PyTuple_GET_ITEM(spec, 0);
    if (!PyTuple_Check(steps) || PyTuple_GET_SIZE(steps) < 1 || PyTuple_GET_SIZE(steps) > MAX_STEPS)
        return 0;
    r->nsteps = (int)PyTuple_GET_SIZE(steps);
    for (int k = 0; k < r->nsteps; k++) {
        PyObject *s = PyTuple_GET_ITEM(steps, k);
        if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 5 || !small_int(PyTuple_GET_ITEM(s, 0), 0, BIG, &r->from[k])
            || !small_int(PyTuple_GET_ITEM(s, 1), -BIG, BIG, &r->price[k]) || !small_int(PyTuple_GET_ITEM(s, 2), 1, BIG, &r->per[k])
            || !small_int(PyTuple_GET_ITEM(s, 3), 1, BIG, &r->inc[k]) || !small_int(PyTuple_GET_ITEM(s, 4), -BIG, BIG, &r->each[k]))
            return 0;
        if ((k == 0 && r->from[0] != 0) || (k > 0 && r->from[k] < r->from[k - 1]))
            return 0;
    }
    long long scope, mode, full, waive;
    if (!small_int(PyTuple_GET_ITEM(spec, 1), 1, BIG, &r->den) || !small_int(PyTuple_GET_ITEM(spec, 2), 0, 2, &scope)
        || !small_int(PyTuple_GET_ITEM(spec, 3), 0, 3, &mode) || !small_int(PyTuple_GET_ITEM(spec, 4), 0, 6, &r->decimals)
        || !small_int(PyTuple_GET_ITEM(spec, 5), -BIG, BIG, &r->fee) || !small_int(PyTuple_GET_ITEM(spec, 6), -BIG, BIG, &r->minimum)
        || !small_int(PyTuple_GET_ITEM(spec, 7), -1, BIG, &r->maximum) || !small_int(PyTuple_GET_ITEM(spec, 8), 0, 1, &full)
        || !small_int(PyTuple_GET_ITEM(spec, 9), 0, 1, &waive))
        return 0;
    r->scope = (int)scope;
    r->mode = (int)mode;
    r->full = (int)full;
    r->waive = (int)waive;
    return 1;
}

/* numerator / denominator rounded to an integer (engine.money.divide_rounded); denominator > 0 */
static wide
divide_rounded(wide num, wide den, int mode)
{
    int negative = num < 0;
    wide a = negative ? -num : num;
    wide q = a / den, r = a % den;
    if (r) {
        if (mode == MODE_UP)
            q += 1;
        else if (mode == MODE_HALF_UP && 2 * r >= den)
            q += 1;
        else if (mode == MODE_HALF_EVEN && (2 * r > den || (2 * r == den && q % 2 == 1)))
            q += 1;
    }
    return negative ? -q : q;
}

/* engine.money.round_micros */
static wide
round_micros(wide num, wide den, int mode, long long decimals)
{
    wide quantum = 1;
    for (long long k = decimals; k < 6; k++)
        quantum *= 10;
    return divide_rounded(num, den * quantum, mode) * quantum;
}

static long long
gcd_ll(long long a, long long b)
{
    while (b) {
        long long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const wide WIDE_LIMIT = (wide)1 << 100;   /* beyond: decline (no overflow of the 128-bit sums) */

/* The parts of span ``span`` (units [t, min(end, total))) at rate ``r``, as SteppedModel.parts lays them; the new t,
 * or -1 when the parts do not fit. */
static long long
lay_parts(const RateSpec *r, int span, long long t, long long end, long long total, CallPart *parts, int *nparts)
{
    long long limit = end < total ? end : total;
    while (t < limit) {
        int i = 0;
        while (i + 1 < r->nsteps && r->from[i + 1] <= t)
            i++;
        long long lim = i + 1 < r->nsteps && r->from[i + 1] < limit ? r->from[i + 1] : limit;
        long long n = (lim - t + r->inc[i] - 1) / r->inc[i];
        if (*nparts >= MAX_PARTS)
            return -1;
        parts[*nparts] = (CallPart){span, i, n * r->inc[i], 0};
        (*nparts)++;
        t += n * r->inc[i];
    }
    return t;
}

/* What price_by_parts found for each span (Evaluator._span_money): billed units, units paid by bundles, micros. */
typedef struct {
    long long billed, covered, micros;
} SpanMoney;

/*
 * Price a call of ``units`` over ``nspans`` spans (span k ends at ends[k], priced by specs[k]; the last runs to the
 * end of the call), with ``wallet`` (a dict, or NULL) paying by the plain bundles of the route; ``*charge`` and
 * ``*uses`` (new references: an int, a tuple of (bundle, units) or None) and each span's figures in ``each`` on 1;
 * 0: declined (nothing consumed); -1: an error (out of memory).
 */
static int
price_by_parts(int nspans, const long long *ends, PyObject *const *specs, long long units, PyObject *wallet, PyObject *plain,
               PyObject *conditional, PyObject **charge, PyObject **uses, SpanMoney *each)
{
    RateSpec rates[MAX_SPANS];
    CallPart parts[MAX_PARTS];
    int nparts = 0;
    if (nspans < 1 || nspans > MAX_SPANS)
        return 0;
    long long t = 0;
    for (int k = 0; k < nspans; k++) {
        if (!read_spec(specs[k], &rates[k]))
            return 0;
        t = lay_parts(&rates[k], k, t, k + 1 < nspans ? ends[k] : units, units, parts, &nparts);
        if (t < 0)
            return 0;
    }

    /* bundles: the applicable ones with units left, by (priority, id), each paying the parts in order */
    PyObject *bids[MAX_BUNDLES], *prios[MAX_BUNDLES];
    long long lefts[MAX_BUNDLES], took[MAX_BUNDLES];
    int nb = 0;
    if (wallet != NULL && wallet != Py_None && nparts > 0) {
        if (!PyDict_CheckExact(wallet) || !PyDict_Check(plain))
            return 0;
        PyObject *bid, *left;
        Py_ssize_t pos = 0;
        while (PyDict_Next(wallet, &pos, &bid, &left)) {
            long long l;
            if (!small_int(left, LLONG_MIN, LLONG_MAX, &l))
                return 0;
            if (l <= 0)
                continue;
            PyObject *prio = PyDict_GetItemWithError(plain, bid);
            if (prio == NULL) {
                if (PyErr_Occurred()) {
                    PyErr_Clear();
                    return 0;
                }
                int with_condition = PyAnySet_Check(conditional) && PySet_GET_SIZE(conditional) == 0
                                         ? 0 : PySequence_Contains(conditional, bid);
                if (with_condition != 0) {
                    PyErr_Clear();
                    return 0;
                }
                continue;
            }
            if (nb >= MAX_BUNDLES)
                return 0;
            /* insertion by priority (the route's (priority, id)) */
            int at = nb;
            while (at > 0) {
                int lower = PyObject_RichCompareBool(prio, prios[at - 1], Py_LT);
                if (lower < 0) {
                    PyErr_Clear();
                    return 0;
                }
                if (!lower)
                    break;
                bids[at] = bids[at - 1];
                prios[at] = prios[at - 1];
                lefts[at] = lefts[at - 1];
                at--;
            }
            bids[at] = bid;
            prios[at] = prio;
            lefts[at] = l;
            nb++;
        }
    }
    for (int b = 0; b < nb; b++) {
        took[b] = 0;
        for (int p = 0; p < nparts && lefts[b] > 0; p++) {
            long long take = parts[p].units - parts[p].covered;
            if (take > lefts[b])
                take = lefts[b];
            parts[p].covered += take;
            lefts[b] -= take;
            took[b] += take;
        }
    }

    /* money of each span, then of the call (Evaluator._settle) */
    wide nums[MAX_SPANS];
    long long dens[MAX_SPANS];
    int uncovered = 0, billed_any = 0;
    for (int k = 0; k < nspans; k++) {
        const RateSpec *r = &rates[k];
        wide num = 0;
        long long billed = 0, covered = 0;
        for (int p = 0; p < nparts; p++) {
            if (parts[p].span != k)
                continue;
            const CallPart *q = &parts[p];
            long long charged = q->units - q->covered;
            billed += q->units;
            covered += q->covered;
            if (!charged)
                continue;
            int s = q->step;
            if (r->scope == SCOPE_INCREMENT)
                num += (wide)r->each[s] * ((charged + r->inc[s] - 1) / r->inc[s]);
            else
                num += (wide)r->price[s] * charged * (r->den / r->per[s]);
            if (num > WIDE_LIMIT || num < -WIDE_LIMIT)
                return 0;
        }
        long long den = r->scope == SCOPE_INCREMENT ? 1 : r->den;
        if (r->scope == SCOPE_SPAN) {
            num = round_micros(num, den, r->mode, r->decimals);
            den = 1;
        }
        nums[k] = num;
        dens[k] = den;
        /* the span's micros as the RatedSpan shows them (_span_money: half-even where not whole) */
        wide micros = divide_rounded(num, den, MODE_HALF_EVEN);
        if (micros > ((wide)1 << 62) || micros < -((wide)1 << 62))
            return 0;
        each[k] = (SpanMoney){billed, covered, (long long)micros};
        if (billed != covered)
            uncovered = 1;
        if (billed)
            billed_any = 1;
    }
    long long gross;
    if (!uncovered && billed_any) {
        gross = 0;   /* wholly paid by bundles: no connect fee, no minimum charge */
    } else {
        long long den = dens[0];
        for (int k = 1; k < nspans; k++) {
            long long g = gcd_ll(den, dens[k]);
            if ((wide)(den / g) * dens[k] > ((wide)1 << 62))
                return 0;
            den = den / g * dens[k];
        }
        wide usage = 0;
        for (int k = 0; k < nspans; k++) {
            usage += nums[k] * (den / dens[k]);
            if (usage > WIDE_LIMIT || usage < -WIDE_LIMIT)
                return 0;
        }
        const RateSpec *lead = &rates[0];
        int waived = lead->waive && units == 0 && lead->fee > 0;
        usage += (wide)(waived ? 0 : lead->fee) * den;
        wide total = usage;
        if (total < (wide)lead->minimum * den)
            total = (wide)lead->minimum * den;
        if (lead->maximum >= 0 && total > (wide)lead->maximum * den && !lead->full)
            total = (wide)lead->maximum * den;
        wide rounded = round_micros(total, den, lead->mode, lead->decimals);
        if (rounded > ((wide)1 << 62) || rounded < -((wide)1 << 62))
            return 0;
        gross = (long long)rounded;
    }

    /* spend the wallet (nothing was changed before this point) */
    int nuses = 0;
    for (int b = 0; b < nb; b++)
        nuses += took[b] > 0;
    PyObject *use_tuple = nuses ? PyTuple_New(nuses) : Py_NewRef(Py_None);
    if (use_tuple == NULL)
        return -1;
    for (int b = 0, u = 0; b < nb; b++) {
        if (!took[b])
            continue;
        PyObject *rest = PyLong_FromLongLong(lefts[b]), *amount = PyLong_FromLongLong(took[b]);
        PyObject *bid = Py_NewRef(bids[b]);   /* the wallet may drop its key object when the value is replaced */
        int bad = rest == NULL || amount == NULL || PyDict_SetItem(wallet, bid, rest) < 0;
        PyObject *use = bad ? NULL : PyTuple_Pack(2, bid, amount);
        Py_XDECREF(rest);
        Py_XDECREF(amount);
        Py_DECREF(bid);
        if (use == NULL) {
            Py_DECREF(use_tuple);
            return -1;
        }
        PyObject_GC_UnTrack(use);
        PyTuple_SET_ITEM(use_tuple, u++, use);
    }
    if (nuses)
        PyObject_GC_UnTrack(use_tuple);
    *charge = PyLong_FromLongLong(gross);
    if (*charge == NULL) {
        Py_DECREF(use_tuple);
        return -1;
    }
    *uses = use_tuple;
    return 1;
}

/* Whether a rated row of this service (interned name) with a charge of 0 is only added up in the sums (no result
 * appended: see ``append`` in rate_row). */
static int
summed(const Context *c, PyObject *service_name)
{
    if (c->sums == NULL)
        return 0;
    for (int k = 0; k < NSERVICES; k++)
        if (SERVICES[k] == service_name)
            return c->sums->settled[k] && c->sums->count[k] < (1LL << 22);
    return 0;
}

/* The wallet of row ``i`` (a new reference in ``*wallet``, Py_None: no wallet); 1: found, 0: the Python loop
 * decides (nothing consumed), -1: an error. */
static int
find_wallet(const Context *c, PyObject *const *cells, PyObject *row, Py_ssize_t i, PyObject *entry, PyObject **wallet)
{
    PyObject *wallet_of = c->wallet_of, *by_number = wallet_of;
    *wallet = NULL;
    if (c->wallet_mode == WALLET_BY_MINUTE) {
        /* the start minute's wallets by a_number, its entry's tenth item (None: no wallet; anything else that is
         * not a dict: the Python loop decides) */
        by_number = PyTuple_GET_SIZE(entry) >= 10 ? PyTuple_GET_ITEM(entry, 9) : Py_None;
        if (by_number != Py_None && !PyDict_Check(by_number))
            return 0;
    } else if (c->wallet_mode == WALLET_BY_GROUP) {
        /* (each row's group, each group's wallets by a_number): a group below 0 has none */
        PyObject *groups = PyTuple_GET_ITEM(wallet_of, 0), *books = PyTuple_GET_ITEM(wallet_of, 1);
        if (i >= PyList_GET_SIZE(groups))
            return 0;
        Py_ssize_t g = PyLong_AsSsize_t(PyList_GET_ITEM(groups, i));
        if (g == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        by_number = g >= 0 && g < PyList_GET_SIZE(books) ? PyList_GET_ITEM(books, g) : Py_None;
        if (by_number != Py_None && !PyDict_Check(by_number))
            return 0;
    }
    if (by_number == Py_None) {
        *wallet = Py_NewRef(Py_None);
    } else if (c->wallet_mode == WALLET_BY_NUMBER || c->wallet_mode == WALLET_BY_GROUP || c->wallet_mode == WALLET_BY_MINUTE) {
        /* the wallets by a_number: a dict */
        PyObject *found = PyDict_GetItemWithError(by_number, cells[C_A]);
        if (found != NULL) {
            *wallet = Py_NewRef(found);
        } else if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        } else if (!PyDict_CheckExact(by_number)) {
            /* a book that opens a subscriber's wallet on first use (what-if: its bundles in full), by its own
             * __missing__; a KeyError (a dict subclass without one): no wallet, as for a plain dict */
            *wallet = PyObject_GetItem(by_number, cells[C_A]);
            if (*wallet == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                    PyErr_Clear();
                    return 0;
                }
                PyErr_Clear();
                *wallet = Py_NewRef(Py_None);
            }
        } else {
            *wallet = Py_NewRef(Py_None);
        }
    } else if (c->wallet_mode == WALLET_BY_ROW) {
        *wallet = PySequence_GetItem(wallet_of, i);
    } else if (row != NULL) {
        *wallet = PyObject_CallFunction(wallet_of, "nO", i, row);
    } else {
        return 0;   /* a wallet function needs the row: the Python loop builds it */
    }
    if (*wallet == NULL) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Rate one row, given the cells the loop reads (``cells``, in the order above; ``row``: the row itself, NULL when
 * the rows are held as columns); 1: appended to out, 0: not the plain case (nothing consumed), -1: a real error
 * (out of memory). */
static PyObject *DISCOUNT_LINE;   /* engine.rating.result.DiscountLine, imported on first use */

/* The route's CDR discounts taken off a charge, as Evaluator._rate_block takes them: ``*charge`` becomes the net and
 * ``*hit`` the memo entry with the discount lines added.  1: done; 0: declined (an error, cleared: the Python loop
 * asks again and meets it there); -1 never (nothing here is an error of the loop's own). */
static PyObject *DISCOUNTED = NULL;   /* (memo entry, discounts, service, charge) -> (net charge, entry with its lines) */

static int
discounted(PyObject *discounts, PyObject *service, PyObject **charge, PyObject **hit)
{
    if (DISCOUNT_LINE == NULL) {
        PyObject *result_module = PyImport_ImportModule("engine.rating.result");
        DISCOUNT_LINE = result_module == NULL ? NULL : PyObject_GetAttrString(result_module, "DiscountLine");
        Py_XDECREF(result_module);
        if (DISCOUNT_LINE == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    if (!PyTuple_Check(*hit))
        return 0;
    /* a discount's money off a CDR depends on its charge alone (DiscountModel.on_cdr): what the discounts make of one
     * memo entry, service and charge is kept, (net charge, the entry with its lines), bounded */
    if (DISCOUNTED == NULL && (DISCOUNTED = PyDict_New()) == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *key = PyTuple_Pack(4, *hit, discounts, service, *charge);
    if (key == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *known = PyDict_GetItemWithError(DISCOUNTED, key);   /* (borrowed) */
    if (known != NULL && PyTuple_CheckExact(known) && PyTuple_GET_SIZE(known) == 2) {
        Py_DECREF(key);
        Py_SETREF(*charge, Py_NewRef(PyTuple_GET_ITEM(known, 0)));
        Py_SETREF(*hit, Py_NewRef(PyTuple_GET_ITEM(known, 1)));
        return 1;
    }
    if (known == NULL && PyErr_Occurred()) {   /* an unhashable entry: worked out each time */
        PyErr_Clear();
        Py_CLEAR(key);
    }
    PyObject *each = PySequence_Tuple(discounts), *lines = PyList_New(0), *net = Py_NewRef(*charge);
    if (each == NULL || lines == NULL)
        goto declined;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(each); k++) {
        PyObject *d = PyTuple_GET_ITEM(each, k);
        PyObject *off = PyObject_CallMethod(d, "on_cdr", "O", net);
        if (off == NULL)
            goto declined;
        PyObject *floor = PyNumber_Negative(net);
        int below = floor == NULL ? -1 : PyObject_RichCompareBool(off, floor, Py_LT);
        if (below > 0)
            Py_SETREF(off, Py_NewRef(floor));
        Py_XDECREF(floor);
        int some = below < 0 ? -1 : PyObject_IsTrue(off);
        if (some < 0) {
            Py_DECREF(off);
            goto declined;
        }
        if (some) {
            PyObject *id = PyObject_GetAttrString(d, "id"), *name = id ? PyObject_GetAttrString(d, "name") : NULL;
            PyObject *line = name ? PyObject_CallFunctionObjArgs(DISCOUNT_LINE, id, off, name, service, NULL) : NULL;
            Py_XDECREF(id);
            Py_XDECREF(name);
            int bad = line == NULL || PyList_Append(lines, line) < 0;
            Py_XDECREF(line);
            PyObject *sum = bad ? NULL : PyNumber_Add(net, off);
            Py_DECREF(off);
            if (sum == NULL)
                goto declined;
            Py_SETREF(net, sum);
        }
        else
            Py_DECREF(off);
    }
    Py_ssize_t n = PyTuple_GET_SIZE(*hit);
    PyObject *more = PyTuple_New(n + 1), *all = PyList_AsTuple(lines);
    if (more == NULL || all == NULL) {
        Py_XDECREF(more);
        Py_XDECREF(all);
        goto declined;
    }
    for (Py_ssize_t k = 0; k < n; k++)
        PyTuple_SET_ITEM(more, k, Py_NewRef(PyTuple_GET_ITEM(*hit, k)));
    PyTuple_SET_ITEM(more, n, all);
    Py_SETREF(*hit, more);
    Py_SETREF(*charge, net);
    Py_DECREF(each);
    Py_DECREF(lines);
    if (key != NULL) {
        if (PyDict_GET_SIZE(DISCOUNTED) >= 10000)
            PyDict_Clear(DISCOUNTED);
        PyObject *value = PyTuple_Pack(2, *charge, *hit);
        if (value == NULL || PyDict_SetItem(DISCOUNTED, key, value) < 0)
            PyErr_Clear();   /* not kept: worked out again next time */
        Py_XDECREF(value);
        Py_DECREF(key);
    }
    return 1;
declined:
    PyErr_Clear();
    Py_XDECREF(key);
    Py_XDECREF(each);
    Py_XDECREF(lines);
    Py_XDECREF(net);
    return 0;
}

/*
 * What a call priced by parts shows, kept as the row's last item so that its RatedCdr (Evaluator.rated_of, the
 * RateCdrs reply) is written without pricing it again: ``(gross, ((start, end, band, rate id, billed units, bundle
 * units, micros), ...))``, the spans as Evaluator._settle lays them (span k from the end of the one before).  NULL: an
 * error (out of memory).
 */
static PyObject *
parts_detail(int nspans, const long long *ends, PyObject *const *bands, PyObject *const *rids, const SpanMoney *each,
             PyObject *gross)
{
    PyObject *spans = PyTuple_New(nspans);
    if (spans == NULL)
        return NULL;
    for (int k = 0; k < nspans; k++) {
        PyObject *span = Py_BuildValue("(LLOOLLL)", k ? ends[k - 1] : 0LL, ends[k], bands[k], rids[k], each[k].billed,
                                       each[k].covered, each[k].micros);
        if (span == NULL) {
            Py_DECREF(spans);
            return NULL;
        }
        PyObject_GC_UnTrack(span);   /* ints and strs only: never part of a cycle */
        PyTuple_SET_ITEM(spans, k, span);
    }
    PyObject_GC_UnTrack(spans);
    PyObject *out = PyTuple_Pack(2, gross, spans);
    Py_DECREF(spans);
    if (out != NULL)
        PyObject_GC_UnTrack(out);
    return out;
}

static int
rate_row(PyObject *const *cells, PyObject *row, Py_ssize_t i, PyObject *out, const Context *c)
{
    PyObject *minutes_of = c->minutes_of, *plan_list = c->plan_list, *minute_fn = c->minute_fn, *wallet_of = c->wallet_of;
    long long max_bytes = c->max_bytes, max_events = c->max_events;
    PyObject *rated = c->rated, *no_group = c->no_group;

    /* start time: YYYY-MM-DDTHH:MM:SSZ, the seconds checked here, the minute by its entry */
    PyObject *text = cells[C_START];
    if (!PyUnicode_Check(text) || PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || PyUnicode_GET_LENGTH(text) != 20)
        return 0;
    const Py_UCS1 *t = PyUnicode_1BYTE_DATA(text);
    if (t[19] != 'Z' || t[16] != ':' || t[17] < '0' || t[17] > '5' || t[18] < '0' || t[18] > '9')
        return 0;
    long long secs = (t[17] - '0') * 10 + (t[18] - '0');

    PyObject *plan = c->single;
    PyObject *minutes = c->minutes_fixed;
    if (plan_list != Py_None) {
        plan = PySequence_Fast_GET_ITEM(plan_list, i);
        minutes = PyDict_GetItemWithError(minutes_of, plan);
        if (minutes == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    if (!PyDict_Check(minutes))
        return 0;
    int failed = 0;
    long long until, minute_epoch;
    PyObject *entry = minute_entry(minutes, plan, text, minute_fn, &failed, &until, &minute_epoch);
    if (entry == NULL)
        return failed ? -1 : 0;
    int result = 0;
    PyObject *units_obj = NULL, *route = NULL, *hit = NULL, *wallet = NULL, *uses = NULL, *charge = NULL, *tuple = NULL;
    PyObject *spans = NULL, *rids = NULL, *joined = NULL;
    int crossing = 0;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 8 || until == NO_UNTIL)
        goto done;
    PyObject *home = PyTuple_GET_ITEM(entry, 1);
    PyObject *lengths = PyTuple_GET_ITEM(entry, 4);
    PyObject *v = PyTuple_GET_ITEM(entry, 5);
    PyObject *groups = PyTuple_GET_ITEM(entry, 6);
    PyObject *band = PyTuple_GET_ITEM(entry, 7);
    if (!PyDict_Check(home) || !PyTuple_Check(lengths) || !PyDict_Check(groups))
        goto done;

    /* usage */
    PyObject *service = cells[C_SVC];
    long long units;
    PyObject *service_name = NULL;
    switch (service_kind(service, &service_name)) {
    case SVC_VOICE:
        units = count_of(cells[C_DUR]);
        if (units < 0 || !unused_cell(cells[C_UP], 0) || !unused_cell(cells[C_DOWN], 0) || !unused_cell(cells[C_EV], 1))
            goto done;
        if (units > until - 59 && units > until - secs)
            crossing = 1;   /* crosses a band change (or is longer than the longest call): priced by parts below */
        break;
    case SVC_DATA: {
        long long up = count_of(cells[C_UP]), down = count_of(cells[C_DOWN]);
        if (up < 0 || down < 0 || !unused_cell(cells[C_DUR], 0) || !unused_cell(cells[C_EV], 1))
            goto done;
        units = up + down;
        if (units > max_bytes)
            goto done;
        break;
    }
    case SVC_EVENTS: {
        PyObject *ev = cells[C_EV];
        if (PyUnicode_Check(ev) && PyUnicode_GET_LENGTH(ev) == 0)
            units = 1;
        else
            units = count_of(ev);
        if (units < 0 || units > max_events || !unused_cell(cells[C_DUR], 0) || !unused_cell(cells[C_UP], 0)
            || !unused_cell(cells[C_DOWN], 0))
            goto done;
        break;
    }
    default:
        goto done;
    }
    if (!crossing && secs >= until)
        goto done;   /* the band changed within the minute, before the event: the Python loop finds the band */

    /* home, originating */
    PyObject *visited = cells[C_VIS], *direction = cells[C_DIR];
    if (!PyUnicode_Check(visited) || PyUnicode_GET_LENGTH(visited) != 0 || !PyUnicode_Check(direction)
        || PyUnicode_Compare(direction, ORIGINATING) != 0)
        goto done;

    /* destination group: longest prefix first */
    PyObject *number = cells[C_B];
    if (!PyUnicode_Check(number))
        goto done;
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(number);
    PrefixTable *table = prefix_table(groups);
    if (table == NULL) {
        result = -1;
        goto done;
    }
    PyObject *group = prefix_group(table, number, lengths, no_group);
    for (Py_ssize_t k = 0; group == NULL && k < PyTuple_GET_SIZE(lengths); k++) {
        Py_ssize_t len = PyLong_AsSsize_t(PyTuple_GET_ITEM(lengths, k));
        PyObject *prefix = PyUnicode_Substring(number, 0, len < nlen ? len : nlen);
        if (prefix == NULL) {
            result = -1;
            goto done;
        }
        PyObject *found = PyDict_GetItemWithError(groups, prefix);
        Py_DECREF(prefix);
        if (found != NULL) {
            group = found;
            break;
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();
            goto done;
        }
    }
    if (group == NULL)
        group = no_group;

    /* route and price (built and priced by the evaluator on first use) */
    PyObject *by_group = PyDict_GetItemWithError(home, service_name);
    if (by_group == NULL) {
        PyErr_Clear();
        goto done;
    }
    route = filled_get(by_group, group);
    if (route == NULL) {
        PyErr_Clear();
        goto done;
    }
    if (!PyTuple_Check(route) || PyTuple_GET_SIZE(route) < 7)
        goto done;   /* no rate (None): the Python loop */
    PyObject *discounts = PyTuple_GET_ITEM(route, 4);
    if (discounts != Py_None && c->sums != NULL)
        goto done;   /* what-if's sums take rows without CDR discounts */
    PyObject *rid = PyTuple_GET_ITEM(route, 0), *memo = PyTuple_GET_ITEM(route, 1);
    PyObject *plain = PyTuple_GET_ITEM(route, 2), *conditional = PyTuple_GET_ITEM(route, 3);
    PyObject *grid = PyTuple_GET_ITEM(route, 5);
    units_obj = PyLong_FromLongLong(units);
    if (units_obj == NULL) {
        result = -1;
        goto done;
    }
    if (crossing) {
        if (discounts != Py_None)
            goto done;   /* a CDR discount on a call priced by parts: the Python loop */
        /* the spans of the call, from the evaluator's band clock: ((end, band, routes of home traffic), ...) */
        if (c->spans_of == Py_None || minute_epoch < 0)
            goto done;
        PyObject *epoch_obj = PyLong_FromLongLong(minute_epoch + secs);
        if (epoch_obj == NULL) {
            result = -1;
            goto done;
        }
        spans = PyObject_CallFunctionObjArgs(c->spans_of, plan, v, epoch_obj, units_obj, NULL);
        Py_DECREF(epoch_obj);
        if (spans == NULL) {
            PyErr_Clear();
            goto done;
        }
        if (!PyTuple_Check(spans) || PyTuple_GET_SIZE(spans) < 1 || PyTuple_GET_SIZE(spans) > MAX_SPANS)
            goto done;   /* None: the evaluator declines (a version change, a call too long, a discount's condition) */
        int nspans = (int)PyTuple_GET_SIZE(spans);
        long long ends[MAX_SPANS];
        PyObject *specs[MAX_SPANS];
        rids = PyTuple_New(nspans);
        if (rids == NULL) {
            result = -1;
            goto done;
        }
        for (int k = 0; k < nspans; k++) {
            PyObject *span = PyTuple_GET_ITEM(spans, k);
            if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 3 || !small_int(PyTuple_GET_ITEM(span, 0), 0, units, &ends[k])
                || !PyDict_Check(PyTuple_GET_ITEM(span, 2)))
                goto done;
            PyObject *kind = PyDict_GetItemWithError(PyTuple_GET_ITEM(span, 2), service_name);
            if (kind == NULL) {
                PyErr_Clear();
                goto done;
            }
            PyObject *span_route = filled_get(kind, group);   /* the routes (and the rates) outlive this row */
            if (span_route == NULL) {
                PyErr_Clear();
                goto done;
            }
            int usable = PyTuple_Check(span_route) && PyTuple_GET_SIZE(span_route) >= 7;
            if (usable) {
                specs[k] = PyTuple_GET_ITEM(span_route, 6);
                PyTuple_SET_ITEM(rids, k, Py_NewRef(PyTuple_GET_ITEM(span_route, 0)));
            }
            Py_DECREF(span_route);
            if (!usable)
                goto done;   /* no rate in a later band (or one this loop does not read): the per-CDR way says why */
        }
        if (ends[nspans - 1] != units)
            goto done;
        if (plain != Py_None && wallet_of != Py_None) {
            int found = find_wallet(c, cells, row, i, entry, &wallet);
            if (found <= 0) {
                result = found;
                goto done;
            }
        }
        SpanMoney each[MAX_SPANS];
        int priced = price_by_parts(nspans, ends, specs, units, wallet, plain, conditional, &charge, &uses, each);
        if (priced <= 0) {
            result = priced;
            goto done;
        }
        PyObject *sep = PyUnicode_FromString("+");
        joined = sep == NULL ? NULL : PyUnicode_Join(sep, rids);
        Py_XDECREF(sep);
        if (joined == NULL) {
            result = -1;
            goto done;
        }
        rid = joined;
        band = PyTuple_GET_ITEM(PyTuple_GET_ITEM(spans, 0), 1);
        PyObject *bands[MAX_SPANS];
        for (int k = 0; k < nspans; k++)
            bands[k] = PyTuple_GET_ITEM(PyTuple_GET_ITEM(spans, k), 1);
        hit = parts_detail(nspans, ends, bands, ((PyTupleObject *)rids)->ob_item, each, charge);   /* its spans, kept */
        if (hit == NULL) {
            result = -1;
            goto done;
        }
        goto append;
    }
    long long ukey = PyTuple_Check(grid) ? grid_end(grid, units) : -1;
    if (ukey < 0) {
        PyErr_Clear();
        goto done;
    }
    /* usage rounded up to the end of its increment prices alike: one memo entry per increment */
    PyObject *memo_key = ukey == units ? Py_NewRef(units_obj) : PyLong_FromLongLong(ukey);
    if (memo_key == NULL) {
        result = -1;
        goto done;
    }
    hit = filled_get(memo, memo_key);
    Py_DECREF(memo_key);
    if (hit == NULL) {
        PyErr_Clear();
        goto done;
    }
    if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3)
        goto done;
    charge = PyTuple_GET_ITEM(hit, 0);
    Py_INCREF(charge);
    PyObject *billed_obj = PyTuple_GET_ITEM(hit, 1);
    long long billed = PyLong_AsLongLong(billed_obj);
    uses = Py_None;
    Py_INCREF(uses);

    if (plain != Py_None && wallet_of != Py_None && billed > 0) {
        int found = find_wallet(c, cells, row, i, entry, &wallet);
        if (found <= 0) {
            result = found;
            goto done;
        }
        if (wallet != Py_None) {
            if (!PyDict_CheckExact(wallet) || !PyDict_Check(plain))
                goto done;
            PyObject *bid, *left, *best_bid = NULL, *best_prio = NULL;
            long long best_left = 0;
            Py_ssize_t pos = 0;
            while (PyDict_Next(wallet, &pos, &bid, &left)) {
                if (!PyLong_CheckExact(left))
                    goto done;
                long long l = PyLong_AsLongLong(left);
                if (l <= 0)
                    continue;
                PyObject *prio = PyDict_GetItemWithError(plain, bid);
                if (prio != NULL) {
                    int lower = best_prio == NULL ? 1 : PyObject_RichCompareBool(prio, best_prio, Py_LT);
                    if (lower < 0) {
                        PyErr_Clear();
                        goto done;
                    }
                    if (lower) {
                        best_bid = bid;
                        best_prio = prio;
                        best_left = l;
                    }
                } else {
                    if (PyErr_Occurred()) {
                        PyErr_Clear();
                        goto done;
                    }
                    /* (most routes have no bundle with a condition: an empty set answers without a probe) */
                    int with_condition = PyAnySet_Check(conditional) && PySet_GET_SIZE(conditional) == 0
                                             ? 0 : PySequence_Contains(conditional, bid);
                    if (with_condition != 0) {
                        PyErr_Clear();
                        goto done;   /* a bundle with a condition to evaluate (or an error): the Python loop */
                    }
                }
            }
            if (best_bid != NULL && best_left < billed) {
                if (discounts != Py_None)
                    goto done;   /* a CDR discount on a call priced by parts: the Python loop (nothing taken yet) */
                /* the bundles pay part of the call: priced by parts, as one span */
                long long ends[1] = {units};
                PyObject *specs[1] = {PyTuple_GET_ITEM(route, 6)};
                Py_CLEAR(charge);
                Py_CLEAR(uses);
                SpanMoney each[1];
                int priced = price_by_parts(1, ends, specs, units, wallet, plain, conditional, &charge, &uses, each);
                if (priced <= 0) {
                    result = priced;
                    goto done;
                }
                PyObject *detail = parts_detail(1, ends, &band, &rid, each, charge);   /* its one span, kept */
                if (detail == NULL) {
                    result = -1;
                    goto done;
                }
                Py_SETREF(hit, detail);
            } else if (best_bid != NULL) {
                PyObject *rest = PyLong_FromLongLong(best_left - billed);
                if (rest == NULL) {
                    result = -1;
                    goto done;
                }
                Py_INCREF(best_bid);   /* the wallet may drop its key object when the value is replaced */
                int bad = PyDict_SetItem(wallet, best_bid, rest);
                Py_DECREF(rest);
                if (bad) {
                    Py_DECREF(best_bid);
                    result = -1;
                    goto done;
                }
                if (summed(c, service_name)) {
                    Py_DECREF(best_bid);   /* the row is only added up (a charge of 0): no result, so no uses */
                } else {
                    PyObject *use = PyTuple_Pack(2, best_bid, billed_obj);
                    Py_DECREF(best_bid);
                    if (use == NULL) {
                        result = -1;
                        goto done;
                    }
                    Py_DECREF(uses);
                    uses = PyTuple_Pack(1, use);
                    PyObject_GC_UnTrack(use);   /* (bundle id, units): atoms only, as the collector would find */
                    Py_DECREF(use);
                    if (uses == NULL) {
                        result = -1;
                        goto done;
                    }
                    PyObject_GC_UnTrack(uses);
                }
                Py_DECREF(charge);
                charge = PyLong_FromLong(0);
                if (charge == NULL) {
                    result = -1;
                    goto done;
                }
            }
        }
    }
    if (discounts != Py_None) {
        int nonzero = PyObject_IsTrue(charge);   /* a bundle paid for it: no discount, as the Python loop */
        if (nonzero < 0) {
            PyErr_Clear();
            goto done;
        }
        if (nonzero && discounted(discounts, service_name, &charge, &hit) == 0)
            goto done;   /* (nothing taken: a charge left means no bundle paid) */
    }
append:
    if (c->sums != NULL) {
        Sums *sums = c->sums;
        int k = 0;
        while (k < NSERVICES && SERVICES[k] != service_name)
            k++;
        long long ch = 0;
        int overflow = 0;
        if (k < NSERVICES && sums->settled[k] && PyLong_CheckExact(charge)) {
            ch = PyLong_AsLongLongAndOverflow(charge, &overflow);
            if (ch == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                overflow = 1;
            }
        }
        if (k < NSERVICES && sums->settled[k] && PyLong_CheckExact(charge) && !overflow && ch < SUM_CHARGE_LIMIT
            && ch > -SUM_CHARGE_LIMIT && sums->count[k] < (1LL << 22)) {
            /* at most 2^22 rows of 2^40 each: the sum fits 63 bits */
            sums->count[k]++;
            sums->charge[k] += ch;
            result = 1;
            goto done;
        }
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(sums->where, index) < 0) {
            Py_XDECREF(index);
            result = -1;
            goto done;
        }
        Py_DECREF(index);
    }
    tuple = PyTuple_Pack(10, rated, charge, rid, uses, v, group, HOME, units_obj, band, hit);
    if (tuple == NULL || PyList_Append(out, tuple) < 0) {
        result = -1;
        goto done;
    }
    /* Kept away from the cyclic collector: a result refers to strings, ints, tuples of them and the plan version,
     * none of which can refer back to it, so it can never be part of a cycle.  A million tracked results made
     * the first collection after rating walk them all (a large share of a replay's time). */
    PyObject_GC_UnTrack(tuple);
    result = 1;

done:
    Py_XDECREF(tuple);
    Py_XDECREF(charge);
    Py_XDECREF(uses);
    Py_XDECREF(wallet);
    Py_XDECREF(hit);
    Py_XDECREF(route);
    Py_XDECREF(units_obj);
    Py_XDECREF(spans);
    Py_XDECREF(rids);
    Py_XDECREF(joined);
    Py_DECREF(entry);
    return result;
}

/* The context tuple, read into ``c``; -1 with an exception when it is not one. */
static int
read_context(PyObject *ctx, Context *c)
{
    if (PyTuple_GET_SIZE(ctx) != 22) {
        PyErr_SetString(PyExc_ValueError, "rate_block: the context has 22 items");
        return -1;
    }
    for (int k = 0; k < 9; k++) {
        c->col[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(ctx, k));
        if (c->col[k] < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "rate_block: a column index is negative");
            return -1;
        }
    }
    c->ncols = PyLong_AsSsize_t(PyTuple_GET_ITEM(ctx, 9));
    c->minutes_of = PyTuple_GET_ITEM(ctx, 10);
    c->single = PyTuple_GET_ITEM(ctx, 11);
    c->plan_list = PyTuple_GET_ITEM(ctx, 12);
    c->minute_fn = PyTuple_GET_ITEM(ctx, 13);
    c->wallet_of = PyTuple_GET_ITEM(ctx, 14);
    c->max_bytes = PyLong_AsLongLong(PyTuple_GET_ITEM(ctx, 15));
    c->max_events = PyLong_AsLongLong(PyTuple_GET_ITEM(ctx, 16));
    c->rated = PyTuple_GET_ITEM(ctx, 17);
    c->no_group = PyTuple_GET_ITEM(ctx, 18);
    c->wallet_mode = (int)PyLong_AsLong(PyTuple_GET_ITEM(ctx, 19));
    c->i_a = PyLong_AsSsize_t(PyTuple_GET_ITEM(ctx, 20));
    c->spans_of = PyTuple_GET_ITEM(ctx, 21);
    c->sums = NULL;
    if (PyErr_Occurred())
        return -1;
    if (c->wallet_mode < WALLET_BY_CALL || c->wallet_mode > WALLET_BY_MINUTE) {
        PyErr_SetString(PyExc_ValueError, "rate_block: no such wallet mode");
        return -1;
    }
    if (c->i_a < 0 || c->i_a >= c->ncols || (c->wallet_of != Py_None && c->wallet_mode == WALLET_BY_NUMBER && !PyDict_Check(c->wallet_of))) {
        PyErr_SetString(PyExc_ValueError, "rate_block: wallets by number need a dict and the a_number column");
        return -1;
    }
    if (c->wallet_of != Py_None && c->wallet_mode == WALLET_BY_GROUP
        && !(PyTuple_Check(c->wallet_of) && PyTuple_GET_SIZE(c->wallet_of) == 2 && PyList_Check(PyTuple_GET_ITEM(c->wallet_of, 0))
             && PyList_Check(PyTuple_GET_ITEM(c->wallet_of, 1)))) {
        PyErr_SetString(PyExc_ValueError, "rate_block: wallets by group need (a list of groups, a list of wallets by number)");
        return -1;
    }
    for (int k = 0; k < 9; k++) {
        if (c->col[k] >= c->ncols) {
            PyErr_SetString(PyExc_ValueError, "rate_block: a column index is beyond the row");
            return -1;
        }
    }
    if (!PyDict_Check(c->minutes_of) || (c->plan_list != Py_None && !PyList_Check(c->plan_list) && !PyTuple_Check(c->plan_list))) {
        PyErr_SetString(PyExc_TypeError, "rate_block: minutes_of must be a dict and plans a list or tuple");
        return -1;
    }
    c->minutes_fixed = NULL;
    if (c->single != Py_None) {
        c->minutes_fixed = PyDict_GetItemWithError(c->minutes_of, c->single);
        if (c->minutes_fixed == NULL || !PyDict_Check(c->minutes_fixed)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "rate_block: no minute cache for the plan");
            return -1;
        }
    }
    return 0;
}

static PyObject *
rate_block(PyObject *self, PyObject *args)
{
    PyObject *rows, *out, *ctx;
    Py_ssize_t start;
    Context c;
    if (!PyArg_ParseTuple(args, "OnO!O!", &rows, &start, &PyList_Type, &out, &PyTuple_Type, &ctx) || read_context(ctx, &c) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(rows, "rate_block: rows must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (c.plan_list != Py_None && PySequence_Fast_GET_SIZE(c.plan_list) < n) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "rate_block: fewer plans than rows");
        return NULL;
    }
    Py_ssize_t i = start;
    for (; i < n; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(seq, i), **all;
        if (PyList_Check(row) && PyList_GET_SIZE(row) == c.ncols)
            all = ((PyListObject *)row)->ob_item;
        else if (PyTuple_Check(row) && PyTuple_GET_SIZE(row) == c.ncols)
            all = ((PyTupleObject *)row)->ob_item;
        else
            break;   /* not a row of the header's width: the Python loop */
        PyObject *cells[C_READ];
        for (int k = 0; k < 9; k++)
            cells[k] = all[c.col[k]];
        cells[C_A] = all[c.i_a];
        int r = rate_row(cells, row, i, out, &c);
        if (r < 0) {
            Py_DECREF(seq);
            return NULL;
        }
        if (r == 0)
            break;
    }
    Py_DECREF(seq);
    return PyLong_FromSsize_t(i);
}

/* rate_columns(columns, count, start, out, context[, sums]): as rate_block, for rows held as columns (a list of
 * ``ncols`` lists of at least ``count`` cells each: engine.csvrows.ColumnRows); the cells are read where they are, so
 * no row is built.  A wallet function (which takes the row) is not called here: such a row stops the loop.
 * sums: (settled, totals, where) -- a rated row of a service in the set ``settled`` is not appended but counted and
 * its charge added to totals[service] = (rows, charge) (added to what is there; the interned service name); every
 * row appended to out then has its index appended to ``where``.  A charge of 2^40 micro-units or more (in absolute
 * value) is appended as a result instead. */
/* The cells the loop reads, column by column (``read``, in the order of C_SVC..C_A); -1 with an exception when the
 * columns are not a list of ``ncols`` lists of at least ``count`` cells each. */
static int
read_columns(PyObject *columns, Py_ssize_t count, const Context *c, PyObject ***read)
{
    if (PyList_GET_SIZE(columns) != c->ncols) {
        PyErr_SetString(PyExc_ValueError, "rate_columns: not one column per header column");
        return -1;
    }
    for (int k = 0; k < C_READ; k++) {
        PyObject *column = PyList_GET_ITEM(columns, k < 9 ? c->col[k] : c->i_a);
        if (!PyList_Check(column) || PyList_GET_SIZE(column) < count) {
            PyErr_SetString(PyExc_ValueError, "rate_columns: a column is not a list of every row's cell");
            return -1;
        }
        read[k] = ((PyListObject *)column)->ob_item;
    }
    if (c->plan_list != Py_None && PySequence_Fast_GET_SIZE(c->plan_list) < count) {
        PyErr_SetString(PyExc_ValueError, "rate_columns: fewer plans than rows");
        return -1;
    }
    return 0;
}

/* A sums argument (settled services (a set), totals {service: (rows, charge)} added to, indices of the rows appended)
 * read into ``sums``; ``*totals`` NULL when it is None.  -1 with an exception when it is not one. */
static int
read_sums(PyObject *arg, Sums *sums, PyObject **totals)
{
    PyObject *settled;
    *totals = NULL;
    memset(sums, 0, sizeof *sums);
    if (arg == Py_None)
        return 0;
    if (!PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) != 3 || !PyAnySet_Check(settled = PyTuple_GET_ITEM(arg, 0))
        || !PyDict_Check(PyTuple_GET_ITEM(arg, 1)) || !PyList_Check(PyTuple_GET_ITEM(arg, 2))) {
        PyErr_SetString(PyExc_TypeError, "rate_columns: sums must be (a set of services, a dict, a list)");
        return -1;
    }
    sums->where = PyTuple_GET_ITEM(arg, 2);
    for (int k = 0; k < NSERVICES; k++) {
        int in = PySet_Contains(settled, SERVICES[k]);
        if (in < 0)
            return -1;
        sums->settled[k] = in;
    }
    *totals = PyTuple_GET_ITEM(arg, 1);
    return 0;
}

/* The rows and charges counted in ``sums`` added to ``totals`` {service: (rows, charge)}; -1 with an exception. */
static int
add_sums(const Sums *sums, PyObject *totals)
{
    for (int k = 0; k < NSERVICES; k++) {
        if (sums->count[k] == 0)
            continue;
        long long rows = sums->count[k], charge = sums->charge[k];
        PyObject *was = PyDict_GetItemWithError(totals, SERVICES[k]), *sum = NULL;
        if (was == NULL && !PyErr_Occurred()) {
            sum = Py_BuildValue("(LL)", rows, charge);
        } else if (was != NULL && PyTuple_Check(was) && PyTuple_GET_SIZE(was) == 2) {
            PyObject *add_rows = PyLong_FromLongLong(rows), *add_charge = PyLong_FromLongLong(charge);
            PyObject *r2 = add_rows ? PyNumber_Add(PyTuple_GET_ITEM(was, 0), add_rows) : NULL;
            PyObject *c2 = add_charge ? PyNumber_Add(PyTuple_GET_ITEM(was, 1), add_charge) : NULL;
            sum = r2 && c2 ? PyTuple_Pack(2, r2, c2) : NULL;
            Py_XDECREF(add_rows);
            Py_XDECREF(add_charge);
            Py_XDECREF(r2);
            Py_XDECREF(c2);
        } else if (was != NULL) {
            PyErr_SetString(PyExc_TypeError, "rate_columns: a total is not (rows, charge)");
        }
        int bad = sum == NULL || PyDict_SetItem(totals, SERVICES[k], sum) < 0;
        Py_XDECREF(sum);
        if (bad)
            return -1;
    }
    return 0;
}

static PyObject *
rate_columns(PyObject *self, PyObject *args)
{
    PyObject *columns, *out, *ctx, *sums_arg = Py_None;
    Py_ssize_t count, start;
    Context c;
    if (!PyArg_ParseTuple(args, "O!nnO!O!|O", &PyList_Type, &columns, &count, &start, &PyList_Type, &out, &PyTuple_Type, &ctx,
                          &sums_arg)
        || read_context(ctx, &c) < 0)
        return NULL;
    PyObject **read[C_READ];
    if (read_columns(columns, count, &c, read) < 0)
        return NULL;
    Sums sums;
    PyObject *totals = NULL;
    if (read_sums(sums_arg, &sums, &totals) < 0)
        return NULL;
    if (totals != NULL)
        c.sums = &sums;
    Py_ssize_t i = start;
    int failed = 0;
    for (; i < count; i++) {
        PyObject *cells[C_READ];
        for (int k = 0; k < C_READ; k++)
            cells[k] = read[k][i];
        int r = rate_row(cells, NULL, i, out, &c);
        if (r < 0) {
            failed = 1;
            break;
        }
        if (r == 0)
            break;
    }
    /* (an error, out of memory, ends the caller's whole comparison: nothing is added then) */
    if (c.sums != NULL && !failed && add_sums(&sums, totals) < 0)
        failed = 1;
    if (failed)
        return NULL;
    return PyLong_FromSsize_t(i);
}

/* rate_columns_both(columns, count, start, (out, out), (context, context), (sums, sums)) -> (index, first side's)
 *
 * What-if's one walk of the columns: each row rated by the first side's context, then by the second's, as two
 * rate_columns calls would rate them (each side's wallets consumed in row order), with the row's cells read once and,
 * when both sides' prefix indexes share their tables (whatif._share_indexes), the number's destination group found
 * once.  It stops at the first row a side does not take: ``index`` is that row (``count`` when every row was rated
 * by both), and ``first side's`` is 1 when the first side rated it all the same (the caller then rates it for the
 * second side only), else 0 (neither did).  sums: each side's, as rate_columns takes them (or None). */
static PyObject *
rate_columns_both(PyObject *self, PyObject *args)
{
    PyObject *columns, *outs, *ctxs, *sums_args;
    Py_ssize_t count, start;
    if (!PyArg_ParseTuple(args, "O!nnO!O!O!", &PyList_Type, &columns, &count, &start, &PyTuple_Type, &outs, &PyTuple_Type,
                          &ctxs, &PyTuple_Type, &sums_args))
        return NULL;
    if (PyTuple_GET_SIZE(outs) != 2 || PyTuple_GET_SIZE(ctxs) != 2 || PyTuple_GET_SIZE(sums_args) != 2
        || !PyList_Check(PyTuple_GET_ITEM(outs, 0)) || !PyList_Check(PyTuple_GET_ITEM(outs, 1))) {
        PyErr_SetString(PyExc_TypeError, "rate_columns_both: two lists, two contexts and two sums");
        return NULL;
    }
    Context c[2];
    Sums sums[2];
    PyObject *totals[2] = {NULL, NULL};
    PyObject **read[C_READ];
    for (int s = 0; s < 2; s++) {
        PyObject *ctx = PyTuple_GET_ITEM(ctxs, s);
        if (!PyTuple_Check(ctx)) {
            PyErr_SetString(PyExc_TypeError, "rate_columns_both: a context is a tuple");
            return NULL;
        }
        if (read_context(ctx, &c[s]) < 0 || read_sums(PyTuple_GET_ITEM(sums_args, s), &sums[s], &totals[s]) < 0)
            return NULL;
        if (totals[s] != NULL)
            c[s].sums = &sums[s];
        PyObject **mine[C_READ];
        if (read_columns(columns, count, &c[s], s == 0 ? read : mine) < 0)
            return NULL;
        for (int k = 0; s == 1 && k < C_READ; k++) {
            if (mine[k] != read[k]) {
                PyErr_SetString(PyExc_ValueError, "rate_columns_both: the two contexts read different columns");
                return NULL;
            }
        }
    }
    PyObject *out_a = PyTuple_GET_ITEM(outs, 0), *out_b = PyTuple_GET_ITEM(outs, 1);
    last_group.on = 1;
    last_group.number = NULL;
    last_group.table = NULL;
    Py_ssize_t i = start;
    int failed = 0, first = 0;
    MinuteTable *tables[2] = {NULL, NULL};
    for (; i < count; i++) {
        /* The loop waits mostly on memory (the cells, a minute's slot in each side's table, both a few MB away): the
         * cells of the row after next, and the next row's slots, are asked for ahead (a hint: no answer changes). */
        if (i + 2 < count)
            for (int k = 0; k < C_READ; k++)
                __builtin_prefetch(read[k][i + 2]);
        if (i + 1 < count) {
            PyObject *next = read[C_START][i + 1];
            if (PyUnicode_Check(next) && PyUnicode_KIND(next) == PyUnicode_1BYTE_KIND && PyUnicode_GET_LENGTH(next) == 20) {
                const Py_UCS1 *t = PyUnicode_1BYTE_DATA(next);
                unsigned long long a, b;
                memcpy(&a, t, 8);
                memcpy(&b, t + 8, 8);
                size_t slot = minute_slot(t, a, b);
                for (int s = 0; s < 2; s++) {
                    if (tables[s] == NULL || tables[s]->dict != c[s].minutes_fixed)
                        tables[s] = c[s].minutes_fixed != NULL ? known_minute_table(c[s].minutes_fixed) : NULL;
                    if (tables[s] != NULL)
                        __builtin_prefetch(&tables[s]->slots[slot]);
                }
            }
            prefix_ahead(read[C_B][i + 1]);
        }
        PyObject *cells[C_READ];
        for (int k = 0; k < C_READ; k++)
            cells[k] = read[k][i];
        int r = rate_row(cells, NULL, i, out_a, &c[0]);
        if (r == 1) {
            r = rate_row(cells, NULL, i, out_b, &c[1]);
            if (r == 0)
                first = 1;
        }
        if (r < 0) {
            failed = 1;
            break;
        }
        if (r == 0)
            break;
    }
    for (int s = 0; s < 2 && !failed; s++)
        if (totals[s] != NULL && add_sums(&sums[s], totals[s]) < 0)
            failed = 1;
    last_group.on = 0;   /* (the number it remembers may be freed with the columns) */
    last_group.number = NULL;
    last_group.table = NULL;
    if (failed)
        return NULL;
    return Py_BuildValue("(ni)", i, first);
}

/* memo_key(grid, units): grid_end, for the tests to hold it to the Python one; None when the loop would not read it. */
static PyObject *
memo_key(PyObject *self, PyObject *args)
{
    PyObject *grid;
    long long units;
    if (!PyArg_ParseTuple(args, "O!L", &PyTuple_Type, &grid, &units))
        return NULL;
    if (units < 0 || units > 999999999999999LL)
        Py_RETURN_NONE;   /* the loop reads at most 15 digits */
    long long key = grid_end(grid, units);
    if (key < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(key);
}

static PyMethodDef methods[] = {
    {"memo_key", memo_key, METH_VARARGS, "memo_key(grid, units) -> the one-span memo key of units on grid (None: not read)"},
    {"rate_block", rate_block, METH_VARARGS, "rate_block(rows, start, out, context) -> index of the first row not rated"},
    {"rate_columns", rate_columns, METH_VARARGS,
     "rate_columns(columns, count, start, out, context) -> index of the first row not rated"},
    {"rate_columns_both", rate_columns_both, METH_VARARGS,
     "rate_columns_both(columns, count, start, outs, contexts, sums) -> (index of the first row not rated by both, "
     "whether the first side rated it)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowkernel", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__rowkernel(void)
{
    HOME = PyUnicode_InternFromString("home");
    ORIGINATING = PyUnicode_InternFromString("originating");
    if (HOME == NULL || ORIGINATING == NULL)
        return NULL;
    for (int k = 0; k < NSERVICES; k++) {
        SERVICES[k] = PyUnicode_InternFromString(SERVICE_NAMES[k]);
        if (SERVICES[k] == NULL)
            return NULL;
    }
    return PyModule_Create(&module);
}
