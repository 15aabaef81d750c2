/*
 * engine.rating._chunkrows: the per-row and per-subscriber loops of rating a chunk with counters, in C.
 *
 * RatingDesk (engine/rating/desk.py) rates a chunk of CDR rows in columns (one list per fact): which plan set, tariff
 * plan and subscriber each row has (resolve), its counter key and tariff plan version (counter_keys), the monthly
 * bundle counters its subscriber's cycle needs (ensure_monthly), the wallets the evaluator consumes (wallets), and,
 * once rated, its ledger row and its charge added to the balances (ledger_rows); Usage.changes asks counter_changes
 * what the wallets changed.  Each function does what the Python loop beside it does (desk.py, usage.py keep it as the
 * oracle a differential test holds this module to), calling back into Python for what is not per row (a plan set's
 * head, a tariff plan's window, a cycle's name, a bundle list's JSON) and leaving the rows it does not decide (their
 * indexes in ``slow``) to the Python code.
 *
 * resolve(rows, cols, subs, head_of, heads, tariff_plan, fixed, at_of)
 *     -> (ats, versions, compileds, plan_ids, subscribers, slow)
 * counter_keys(rows, cols, ats, compileds, plan_ids, subscribers, window_of, cycles, cycle_of, anchor_of)
 *     -> (keys, tariffs)
 * ensure_monthly(keys, tariffs, compileds, counters, monthly_of, ensure) -> None
 * wallets(keys, have, counters) -> [dict | None]
 * ledger_rows(rows, cols, results, keys, ats, versions, plan_ids, uses_of, texts, bundles_text, balances, rated)
 *     -> [ledger row]
 * counter_changes(wallets, counters, new, counter_row) -> [(key, bundle, row, remaining read | None)]
 * ids_by_tenant(rows, cols) -> {tenant: [cdr_id, ...]}
 * taken_add(tenant, rows, replaced, keys, units, charges, bundle_units) -> None
 *     (engine.rating.usage.Taken.add: the stored rows a chunk replaces added up per subscriber cycle)
 *
 * cols: (tenant, a_number, start_time, cdr_id, service) column indexes (engine.cdr.COLUMNS).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

#include "_untrack.h"   /* untrack_atoms: rows of atoms kept from the cyclic collector */

typedef struct { Py_ssize_t tenant, a, start, id, service; } Cols;

static PyObject *S_TENANT_ID, *S_TARIFF_PLAN, *S_ANCHOR_DAY, *S_TIMESTAMP, *S_VERSION, *S_CURRENCY, *S_PLAN_ID,
    *S_REMAINING, *S_ALLOWANCE, *S_UNIT, *S_EMPTY, *S_NONE_JSON, *ZERO, *ONE;

static int
cols_of(PyObject *t, Cols *c)
{
    return PyArg_ParseTuple(t, "nnnnn", &c->tenant, &c->a, &c->start, &c->id, &c->service);
}

static PyObject *
cell(PyObject *row, Py_ssize_t i)
{
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) <= i) {
        PyErr_SetString(PyExc_TypeError, "a row is a tuple of the normalised layout");
        return NULL;
    }
    return PyTuple_GET_ITEM(row, i);   /* borrowed */
}

/* days since 1970-01-01 of a proleptic Gregorian date */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SSZ" as an aware UTC datetime; NULL without an error: not that form (or not a valid date) */
static PyObject *
fast_at(PyObject *text)
{
    if (!PyUnicode_Check(text) || PyUnicode_GET_LENGTH(text) != 20 || PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND)
        return NULL;
    const Py_UCS1 *s = PyUnicode_1BYTE_DATA(text);
    static const int DIGITS[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    for (size_t k = 0; k < sizeof DIGITS / sizeof DIGITS[0]; k++)
        if (s[DIGITS[k]] < '0' || s[DIGITS[k]] > '9')
            return NULL;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return NULL;
#define TWO(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    int year = TWO(0) * 100 + TWO(2), month = TWO(5), day = TWO(8), hour = TWO(11), minute = TWO(14), second = TWO(17);
#undef TWO
    static const int MDAYS[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > MDAYS[month - 1] || hour > 23 || minute > 59 || second > 59)
        return NULL;
    if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return NULL;
    return PyDateTimeAPI->DateTime_FromDateAndTime(year, month, day, hour, minute, second, 0, PyDateTime_TimeZone_UTC,
                                                   PyDateTimeAPI->DateTimeType);
}

/* the epoch seconds of an aware datetime, as int(at.timestamp()) gives them; -1 with an error set on failure */
static int
epoch_of(PyObject *at, long long *out)
{
    if (PyDateTime_CheckExact(at) && ((PyDateTime_DateTime *)at)->hastzinfo
        && ((PyDateTime_DateTime *)at)->tzinfo == PyDateTime_TimeZone_UTC) {
        long long e = days_from_civil(PyDateTime_GET_YEAR(at), PyDateTime_GET_MONTH(at), PyDateTime_GET_DAY(at)) * 86400
                      + PyDateTime_DATE_GET_HOUR(at) * 3600 + PyDateTime_DATE_GET_MINUTE(at) * 60 + PyDateTime_DATE_GET_SECOND(at);
        if (e >= 0 || PyDateTime_DATE_GET_MICROSECOND(at) == 0) {   /* int() truncates toward zero */
            *out = e;
            return 0;
        }
    }
    PyObject *ts = PyObject_CallMethodNoArgs(at, S_TIMESTAMP);
    if (ts == NULL)
        return -1;
    PyObject *n = PyNumber_Long(ts);
    Py_DECREF(ts);
    if (n == NULL)
        return -1;
    *out = PyLong_AsLongLong(n);
    Py_DECREF(n);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int
append_steal(PyObject *list, PyObject *item)
{
    if (item == NULL)
        return -1;
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

static PyObject *
resolve(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols_t, *subs, *head_of, *heads, *tariff_plan, *fixed, *at_of;
    Cols c;
    if (!PyArg_ParseTuple(args, "O!OO!OO!UOO", &PyList_Type, &rows, &cols_t, &PyDict_Type, &subs, &head_of, &PyDict_Type, &heads,
                          &tariff_plan, &fixed, &at_of) || !cols_of(cols_t, &c))
        return NULL;
    PyObject *fixed_ps = NULL, *fixed_comp = NULL;
    if (fixed != Py_None) {
        if (!PyTuple_Check(fixed) || PyTuple_GET_SIZE(fixed) != 2) {
            PyErr_SetString(PyExc_TypeError, "fixed: (version, compiled) or None");
            return NULL;
        }
        fixed_ps = PyTuple_GET_ITEM(fixed, 0);
        fixed_comp = PyTuple_GET_ITEM(fixed, 1);
    }
    int have_plan = PyUnicode_GET_LENGTH(tariff_plan) > 0;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *ats = PyList_New(n), *versions = PyList_New(n), *compileds = PyList_New(n), *plan_ids = PyList_New(n),
             *subscribers = PyList_New(n), *slow = PyList_New(0);
    if (!ats || !versions || !compileds || !plan_ids || !subscribers || !slow)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        PyObject *tenant = cell(row, c.tenant), *text = tenant ? cell(row, c.start) : NULL, *a = text ? cell(row, c.a) : NULL;
        if (a == NULL)
            goto fail;
        PyObject *at = fast_at(text);
        if (at == NULL) {
            if (PyErr_Occurred())
                goto fail;
            at = PyObject_CallOneArg(at_of, text);
            if (at == NULL)
                goto fail;
        }
        PyList_SET_ITEM(ats, i, at);
        PyObject *ps = Py_None, *comp = Py_None;
        int is_slow = 0;
        if (fixed_ps != NULL) {
            ps = fixed_ps;
            comp = fixed_comp;
        }
        else if (at != Py_None) {
            PyObject *head = PyDict_GetItemWithError(heads, tenant);
            if (head == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                head = PyObject_CallOneArg(head_of, tenant);
                if (head == NULL)
                    goto fail;
                int r = PyDict_SetItem(heads, tenant, head);
                Py_DECREF(head);   /* the dict holds it */
                if (r < 0)
                    goto fail;
            }
            if (!PyTuple_Check(head)) {
                PyErr_SetString(PyExc_TypeError, "a head is a tuple");
                goto fail;
            }
            int later = 0;
            if (PyTuple_GET_SIZE(head) >= 3) {
                later = PyObject_RichCompareBool(at, PyTuple_GET_ITEM(head, 0), Py_GE);
                if (later < 0)
                    goto fail;
            }
            if (later) {
                ps = PyTuple_GET_ITEM(head, 1);
                comp = PyTuple_GET_ITEM(head, 2);
            }
            else
                is_slow = 1;
        }
        PyObject *known = Py_None;
        int truthy = PyObject_IsTrue(a);
        if (truthy < 0)
            goto fail;
        if (truthy) {
            PyObject *sub = PyDict_GetItemWithError(subs, a);
            if (sub == NULL && PyErr_Occurred())
                goto fail;
            if (sub != NULL && sub != Py_None) {
                PyObject *owner = PyObject_GetAttr(sub, S_TENANT_ID);
                if (owner == NULL)
                    goto fail;
                int same = PyObject_RichCompareBool(owner, tenant, Py_EQ);
                Py_DECREF(owner);
                if (same < 0)
                    goto fail;
                if (same)
                    known = sub;
            }
        }
        PyObject *plan_id;
        if (have_plan) {
            plan_id = tariff_plan;
            Py_INCREF(plan_id);
        }
        else if (known != Py_None) {
            plan_id = PyObject_GetAttr(known, S_TARIFF_PLAN);
            if (plan_id == NULL)
                goto fail;
        }
        else {
            plan_id = S_EMPTY;
            Py_INCREF(plan_id);
        }
        PyList_SET_ITEM(plan_ids, i, plan_id);
        truthy = PyObject_IsTrue(plan_id);
        if (truthy < 0)
            goto fail;
        if (!truthy && comp != Py_None)
            is_slow = 1;   /* the wholesale plan of the tenant: found by the Python code */
        if (is_slow) {
            ps = comp = Py_None;
            if (append_steal(slow, PyLong_FromSsize_t(i)) < 0)
                goto fail;
        }
        Py_INCREF(ps);
        PyList_SET_ITEM(versions, i, ps);
        Py_INCREF(comp);
        PyList_SET_ITEM(compileds, i, comp);
        Py_INCREF(known);
        PyList_SET_ITEM(subscribers, i, known);
    }
    return Py_BuildValue("(NNNNNN)", ats, versions, compileds, plan_ids, subscribers, slow);
fail:
    /* a list's unset items are NULL, which its deallocation skips */
    Py_XDECREF(ats);
    Py_XDECREF(versions);
    Py_XDECREF(compileds);
    Py_XDECREF(plan_ids);
    Py_XDECREF(subscribers);
    Py_XDECREF(slow);
    return NULL;
}

static PyObject *
counter_keys(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols_t, *ats, *compileds, *plan_ids, *subscribers, *window_of, *cycles, *cycle_of, *anchor_of;
    Cols c;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!OO!OO", &PyList_Type, &rows, &cols_t, &PyList_Type, &ats, &PyList_Type, &compileds,
                          &PyList_Type, &plan_ids, &PyList_Type, &subscribers, &window_of, &PyDict_Type, &cycles, &cycle_of,
                          &anchor_of) || !cols_of(cols_t, &c))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (PyList_GET_SIZE(ats) != n || PyList_GET_SIZE(compileds) != n || PyList_GET_SIZE(plan_ids) != n
        || PyList_GET_SIZE(subscribers) != n) {
        PyErr_SetString(PyExc_ValueError, "one entry per row in every column");
        return NULL;
    }
    PyObject *keys = PyList_New(n), *tariffs = PyList_New(n), *windows = PyDict_New();
    if (!keys || !tariffs || !windows)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), *at = PyList_GET_ITEM(ats, i), *comp = PyList_GET_ITEM(compileds, i);
        PyObject *plan_id = PyList_GET_ITEM(plan_ids, i), *sub = PyList_GET_ITEM(subscribers, i);
        PyObject *key = Py_None, *tariff = Py_None;
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(keys, i, key);
        PyList_SET_ITEM(tariffs, i, tariff);
        if (sub == Py_None || comp == Py_None || at == Py_None)
            continue;
        long long epoch;
        if (epoch_of(at, &epoch) < 0)
            goto fail;
        PyObject *wkey = Py_BuildValue("(NO)", PyLong_FromVoidPtr(comp), plan_id);
        if (wkey == NULL)
            goto fail;
        PyObject *w = PyDict_GetItemWithError(windows, wkey);
        int fresh = w == NULL;
        if (w == NULL && PyErr_Occurred()) {
            Py_DECREF(wkey);
            goto fail;
        }
        if (w != NULL) {
            long long lo = PyLong_AsLongLong(PyTuple_GET_ITEM(w, 0)), hi = PyLong_AsLongLong(PyTuple_GET_ITEM(w, 1));
            if (PyErr_Occurred()) {
                Py_DECREF(wkey);
                goto fail;
            }
            fresh = !(lo <= epoch && epoch < hi);
        }
        if (fresh) {
            w = PyObject_CallFunction(window_of, "OOL", comp, plan_id, epoch);
            if (w == NULL || !PyTuple_Check(w) || PyTuple_GET_SIZE(w) != 4) {
                if (w != NULL)
                    PyErr_SetString(PyExc_TypeError, "a window is (from, until, version, day)");
                Py_XDECREF(w);
                Py_DECREF(wkey);
                goto fail;
            }
            int r = PyDict_SetItem(windows, wkey, w);
            Py_DECREF(w);
            if (r < 0) {
                Py_DECREF(wkey);
                goto fail;
            }
        }
        Py_DECREF(wkey);
        tariff = PyTuple_GET_ITEM(w, 2);
        if (tariff == Py_None)
            continue;
        Py_INCREF(tariff);
        PyList_SetItem(tariffs, i, tariff);
        PyObject *day = PyTuple_GET_ITEM(w, 3);
        PyObject *anchor = anchor_of == Py_None ? PyObject_GetAttr(sub, S_ANCHOR_DAY) : PyObject_CallOneArg(anchor_of, sub);
        if (anchor == NULL) {
            if (anchor_of != Py_None || !PyErr_ExceptionMatches(PyExc_AttributeError))
                goto fail;
            PyErr_Clear();
            anchor = ONE;
            Py_INCREF(anchor);
        }
        PyObject *ckey = PyTuple_Pack(2, day, anchor);
        if (ckey == NULL) {
            Py_DECREF(anchor);
            goto fail;
        }
        PyObject *cycle = PyDict_GetItemWithError(cycles, ckey);
        if (cycle != NULL)
            Py_INCREF(cycle);
        else if (!PyErr_Occurred()) {
            cycle = PyObject_CallFunctionObjArgs(cycle_of, day, anchor, NULL);
            if (cycle != NULL && PyDict_SetItem(cycles, ckey, cycle) < 0)
                Py_CLEAR(cycle);
        }
        Py_DECREF(ckey);
        Py_DECREF(anchor);
        if (cycle == NULL)
            goto fail;
        PyObject *tenant = cell(row, c.tenant), *a = tenant ? cell(row, c.a) : NULL;
        if (a == NULL) {
            Py_DECREF(cycle);
            goto fail;
        }
        key = PyTuple_Pack(3, tenant, a, cycle);
        Py_DECREF(cycle);
        if (key == NULL)
            goto fail;
        untrack_atoms(key);
        PyList_SetItem(keys, i, key);
    }
    Py_DECREF(windows);
    return Py_BuildValue("(NN)", keys, tariffs);
fail:
    Py_XDECREF(keys);
    Py_XDECREF(tariffs);
    Py_XDECREF(windows);
    return NULL;
}

static PyObject *
ensure_monthly(PyObject *self, PyObject *args)
{
    PyObject *keys, *tariffs, *compileds, *counters, *monthly_of, *ensure;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OO", &PyList_Type, &keys, &PyList_Type, &tariffs, &PyList_Type, &compileds,
                          &PyDict_Type, &counters, &monthly_of, &ensure))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(tariffs) != n || PyList_GET_SIZE(compileds) != n) {
        PyErr_SetString(PyExc_ValueError, "one entry per row in every column");
        return NULL;
    }
    /* per key, (tariff, compiled) its counters were last made sure of; per (tariff, compiled), its monthly bundles */
    PyObject *seen = PyDict_New(), *monthly = PyDict_New();
    if (!seen || !monthly)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i), *tariff = PyList_GET_ITEM(tariffs, i), *comp = PyList_GET_ITEM(compileds, i);
        if (key == Py_None || tariff == Py_None || comp == Py_None)
            continue;
        PyObject *was = PyDict_GetItemWithError(seen, key);
        if (was == NULL && PyErr_Occurred())
            goto fail;
        if (was != NULL && PyTuple_GET_ITEM(was, 0) == tariff && PyTuple_GET_ITEM(was, 1) == comp)
            continue;
        PyObject *pair = PyTuple_Pack(2, tariff, comp);
        if (pair == NULL)
            goto fail;
        int r = PyDict_SetItem(seen, key, pair);
        Py_DECREF(pair);
        if (r < 0)
            goto fail;
        PyObject *mkey = Py_BuildValue("(NN)", PyLong_FromVoidPtr(tariff), PyLong_FromVoidPtr(comp));
        if (mkey == NULL)
            goto fail;
        PyObject *cached = PyDict_GetItemWithError(monthly, mkey);
        if (cached == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(mkey);
                goto fail;
            }
            PyObject *got = PyObject_CallFunctionObjArgs(monthly_of, tariff, comp, NULL);
            if (got == NULL) {
                Py_DECREF(mkey);
                goto fail;
            }
            cached = PySequence_Tuple(got);
            Py_DECREF(got);
            if (cached == NULL || PyDict_SetItem(monthly, mkey, cached) < 0) {
                Py_XDECREF(cached);
                Py_DECREF(mkey);
                goto fail;
            }
            Py_DECREF(cached);   /* the dict holds it */
        }
        Py_DECREF(mkey);
        PyObject *have = PyDict_GetItemWithError(counters, key);
        if (have == NULL && PyErr_Occurred())
            goto fail;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(cached); k++) {
            PyObject *one = PyTuple_GET_ITEM(cached, k);
            if (!PyTuple_Check(one) || PyTuple_GET_SIZE(one) != 3) {
                PyErr_SetString(PyExc_TypeError, "a monthly bundle is (id, allowance, unit)");
                goto fail;
            }
            PyObject *bid = PyTuple_GET_ITEM(one, 0);
            int in = 0;
            if (have != NULL) {
                in = PySequence_Contains(have, bid);
                if (in < 0)
                    goto fail;
            }
            if (!in) {
                PyObject *done = PyObject_CallFunctionObjArgs(ensure, key, bid, PyTuple_GET_ITEM(one, 1), PyTuple_GET_ITEM(one, 2), NULL);
                if (done == NULL)
                    goto fail;
                Py_DECREF(done);
                have = PyDict_GetItemWithError(counters, key);
                if (have == NULL && PyErr_Occurred())
                    goto fail;
            }
        }
    }
    Py_DECREF(seen);
    Py_DECREF(monthly);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(seen);
    Py_XDECREF(monthly);
    return NULL;
}

static PyObject *
wallets(PyObject *self, PyObject *args)
{
    PyObject *keys, *have, *counters;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &keys, &PyDict_Type, &have, &PyDict_Type, &counters))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (key == Py_None) {
            Py_INCREF(Py_None);
            PyList_SET_ITEM(out, i, Py_None);
            continue;
        }
        PyObject *w = PyDict_GetItemWithError(have, key);
        if (w == NULL) {
            if (PyErr_Occurred())
                goto fail;
            w = PyDict_New();
            if (w == NULL)
                goto fail;
            PyObject *rows = PyDict_GetItemWithError(counters, key);
            if (rows == NULL && PyErr_Occurred()) {
                Py_DECREF(w);
                goto fail;
            }
            if (rows != NULL) {
                if (!PyDict_Check(rows)) {
                    Py_DECREF(w);
                    PyErr_SetString(PyExc_TypeError, "a key's counters are a dict");
                    goto fail;
                }
                Py_ssize_t pos = 0;
                PyObject *bid, *row;
                while (PyDict_Next(rows, &pos, &bid, &row)) {
                    PyObject *remaining = PyObject_GetAttr(row, S_REMAINING);
                    int r = remaining == NULL ? -1 : PyDict_SetItem(w, bid, remaining);
                    Py_XDECREF(remaining);
                    if (r < 0) {
                        Py_DECREF(w);
                        goto fail;
                    }
                }
            }
            int r = PyDict_SetItem(have, key, w);
            if (r < 0) {
                Py_DECREF(w);
                goto fail;
            }
        }
        else
            Py_INCREF(w);
        PyList_SET_ITEM(out, i, w);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
ledger_rows(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols_t, *results, *keys, *ats, *versions, *plan_ids, *uses_of, *texts, *bundles_text, *balances, *rated;
    Cols c;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!O!O!O!OO!U", &PyList_Type, &rows, &cols_t, &PyList_Type, &results, &PyList_Type, &keys,
                          &PyList_Type, &ats, &PyList_Type, &versions, &PyList_Type, &plan_ids, &PyDict_Type, &uses_of,
                          &PyDict_Type, &texts, &bundles_text, &PyDict_Type, &balances, &rated) || !cols_of(cols_t, &c))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (PyList_GET_SIZE(results) != n || PyList_GET_SIZE(keys) != n || PyList_GET_SIZE(ats) != n || PyList_GET_SIZE(versions) != n
        || PyList_GET_SIZE(plan_ids) != n) {
        PyErr_SetString(PyExc_ValueError, "one entry per row in every column");
        return NULL;
    }
    PyObject *entries = PyList_New(n);
    if (entries == NULL)
        return NULL;
    PyObject *last_ps = NULL, *last_psv = NULL;            /* a plan set version's number, asked once per run of rows */
    PyObject *last_v = NULL, *v_currency = NULL, *v_plan = NULL, *v_version = NULL;   /* the same of a tariff version */
    int have_uses = PyDict_GET_SIZE(uses_of) > 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *row = PyList_GET_ITEM(rows, j), *r = PyList_GET_ITEM(results, j), *key = PyList_GET_ITEM(keys, j);
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) < 8) {
            PyErr_SetString(PyExc_TypeError, "a result is an evaluator Row");
            goto fail;
        }
        PyObject *status = PyTuple_GET_ITEM(r, 0), *charge = PyTuple_GET_ITEM(r, 1), *v = PyTuple_GET_ITEM(r, 4);
        PyObject *ps = PyList_GET_ITEM(versions, j);
        if (ps != last_ps) {
            Py_XDECREF(last_psv);
            last_psv = ps == Py_None ? (Py_INCREF(ZERO), ZERO) : PyObject_GetAttr(ps, S_VERSION);
            last_ps = last_psv == NULL ? NULL : ps;
            if (last_psv == NULL)
                goto fail;
        }
        int is_rated = PyUnicode_Check(status) && PyUnicode_Compare(status, rated) == 0;
        if (!is_rated && PyErr_Occurred())
            goto fail;
        PyObject *currency, *shown, *shown_version, *reason;
        if (is_rated && v != Py_None) {
            if (v != last_v) {
                Py_CLEAR(v_currency);
                Py_CLEAR(v_plan);
                Py_CLEAR(v_version);
                last_v = NULL;
                v_currency = PyObject_GetAttr(v, S_CURRENCY);
                v_plan = v_currency ? PyObject_GetAttr(v, S_PLAN_ID) : NULL;
                v_version = v_plan ? PyObject_GetAttr(v, S_VERSION) : NULL;
                if (v_version == NULL)
                    goto fail;
                last_v = v;
            }
            currency = v_currency;
            shown = v_plan;
            shown_version = v_version;
            Py_INCREF(S_EMPTY);
            reason = S_EMPTY;
        }
        else {
            currency = S_EMPTY;
            shown = PyList_GET_ITEM(plan_ids, j);
            shown_version = ZERO;
            PyObject *what = PyTuple_GET_ITEM(r, 2);
            if (PyUnicode_Check(what) && PyUnicode_GET_LENGTH(what) <= 500) {
                Py_INCREF(what);
                reason = what;
            }
            else
                reason = PySequence_GetSlice(what, 0, 500);
            if (reason == NULL)
                goto fail;
        }
        if (key != Py_None) {
            int charged = PyObject_IsTrue(charge);
            if (charged < 0) {
                Py_DECREF(reason);
                goto fail;
            }
            if (charged) {   /* Usage.add_charge */
                PyObject *by = PyDict_GetItemWithError(balances, key);
                if (by == NULL) {
                    if (PyErr_Occurred() || (by = PyDict_New()) == NULL) {
                        Py_DECREF(reason);
                        goto fail;
                    }
                    int rr = PyDict_SetItem(balances, key, by);
                    Py_DECREF(by);
                    if (rr < 0) {
                        Py_DECREF(reason);
                        goto fail;
                    }
                }
                PyObject *now = PyDict_GetItemWithError(by, currency);
                PyObject *sum = now == NULL ? (PyErr_Occurred() ? NULL : PyNumber_Add(ZERO, charge)) : PyNumber_Add(now, charge);
                int rr = sum == NULL ? -1 : PyDict_SetItem(by, currency, sum);
                Py_XDECREF(sum);
                if (rr < 0) {
                    Py_DECREF(reason);
                    goto fail;
                }
            }
        }
        /* the bundle units it took, as the ledger keeps them */
        PyObject *uses = NULL;
        if (have_uses) {
            PyObject *jn = PyLong_FromSsize_t(j);
            if (jn == NULL) {
                Py_DECREF(reason);
                goto fail;
            }
            uses = PyDict_GetItemWithError(uses_of, jn);
            Py_DECREF(jn);
            if (uses == NULL && PyErr_Occurred()) {
                Py_DECREF(reason);
                goto fail;
            }
        }
        if (uses == NULL)
            uses = PyTuple_GET_ITEM(r, 3);
        PyObject *text = NULL;
        int some = PyObject_IsTrue(uses);
        if (some < 0) {
            Py_DECREF(reason);
            goto fail;
        }
        if (!some) {
            text = S_NONE_JSON;
            Py_INCREF(text);
        }
        else {
            if (PyTuple_CheckExact(uses)) {
                text = PyDict_GetItemWithError(texts, uses);
                if (text == NULL && PyErr_Occurred()) {
                    Py_DECREF(reason);
                    goto fail;
                }
                if (text != NULL) {
                    some = PyObject_IsTrue(text);
                    if (some < 0) {
                        Py_DECREF(reason);
                        goto fail;
                    }
                    text = some ? (Py_INCREF(text), text) : NULL;
                }
            }
            if (text == NULL && (text = PyObject_CallOneArg(bundles_text, uses)) == NULL) {
                Py_DECREF(reason);
                goto fail;
            }
        }
        PyObject *tenant = cell(row, c.tenant), *id = tenant ? cell(row, c.id) : NULL, *a = id ? cell(row, c.a) : NULL;
        PyObject *service = a ? cell(row, c.service) : NULL;
        if (service == NULL) {
            Py_DECREF(reason);
            Py_DECREF(text);
            goto fail;
        }
        PyObject *service_text = PyUnicode_CheckExact(service) ? (Py_INCREF(service), service) : PyObject_Str(service);
        PyObject *cycle = key != Py_None ? PyTuple_GetItem(key, 2) : S_EMPTY;
        if (service_text == NULL || cycle == NULL) {
            Py_XDECREF(service_text);
            Py_DECREF(reason);
            Py_DECREF(text);
            goto fail;
        }
        PyObject *entry = PyTuple_New(17);
        if (entry == NULL) {
            Py_DECREF(service_text);
            Py_DECREF(reason);
            Py_DECREF(text);
            goto fail;
        }
        PyObject *items[17] = {tenant, id, a, cycle, currency, charge, text, PyList_GET_ITEM(ats, j), service_text,
                               PyTuple_GET_ITEM(r, 5), PyTuple_GET_ITEM(r, 6), PyTuple_GET_ITEM(r, 7), last_psv, shown,
                               shown_version, status, reason};
        for (int k = 0; k < 17; k++) {
            if (k != 6 && k != 8 && k != 16)   /* text, service_text and reason are new references already */
                Py_INCREF(items[k]);
            PyTuple_SET_ITEM(entry, k, items[k]);
        }
        untrack_atoms(entry);
        PyList_SET_ITEM(entries, j, entry);
    }
    Py_XDECREF(last_psv);
    Py_XDECREF(v_currency);
    Py_XDECREF(v_plan);
    Py_XDECREF(v_version);
    return entries;
fail:
    Py_XDECREF(last_psv);
    Py_XDECREF(v_currency);
    Py_XDECREF(v_plan);
    Py_XDECREF(v_version);
    Py_DECREF(entries);
    return NULL;
}

static PyObject *
counter_changes(PyObject *self, PyObject *args)
{
    PyObject *wallets_d, *counters, *new, *counter_row;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &wallets_d, &PyDict_Type, &counters, &new, &counter_row))
        return NULL;
    int any_new = PyObject_IsTrue(new);
    if (any_new < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *w;
    while (PyDict_Next(wallets_d, &pos, &key, &w)) {
        if (!PyDict_Check(w)) {
            PyErr_SetString(PyExc_TypeError, "a wallet is a dict");
            goto fail;
        }
        if (PyDict_GET_SIZE(w) == 0)
            continue;
        PyObject *rows = PyDict_GetItemWithError(counters, key);
        if (rows == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, key);
            goto fail;
        }
        Py_ssize_t bpos = 0;
        PyObject *bid, *remaining;
        while (PyDict_Next(w, &bpos, &bid, &remaining)) {
            PyObject *row = PyObject_GetItem(rows, bid);
            if (row == NULL)
                goto fail;
            PyObject *was = PyObject_GetAttr(row, S_REMAINING);
            if (was == NULL) {
                Py_DECREF(row);
                goto fail;
            }
            int is_new = 0;
            if (any_new) {
                PyObject *kb = PyTuple_Pack(2, key, bid);
                is_new = kb == NULL ? -1 : PySequence_Contains(new, kb);
                Py_XDECREF(kb);
            }
            int changed = is_new ? 1 : (is_new == 0 ? PyObject_RichCompareBool(was, remaining, Py_NE) : -1);
            if (changed < 0) {
                Py_DECREF(row);
                Py_DECREF(was);
                goto fail;
            }
            if (changed) {
                PyObject *allowance = PyObject_GetAttr(row, S_ALLOWANCE), *unit = allowance ? PyObject_GetAttr(row, S_UNIT) : NULL;
                PyObject *fresh = unit ? PyObject_CallFunctionObjArgs(counter_row, allowance, remaining, unit, NULL) : NULL;
                Py_XDECREF(allowance);
                Py_XDECREF(unit);
                PyObject *item = fresh ? PyTuple_Pack(4, key, bid, fresh, is_new ? Py_None : was) : NULL;
                Py_XDECREF(fresh);
                if (append_steal(out, item) < 0) {
                    Py_DECREF(row);
                    Py_DECREF(was);
                    goto fail;
                }
            }
            Py_DECREF(row);
            Py_DECREF(was);
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
ids_by_tenant(PyObject *self, PyObject *args)
{
    PyObject *rows, *cols_t;
    Cols c;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &rows, &cols_t) || !cols_of(cols_t, &c))
        return NULL;
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        PyObject *tenant = cell(row, c.tenant), *id = tenant ? cell(row, c.id) : NULL;
        if (id == NULL)
            goto fail;
        PyObject *ids = PyDict_GetItemWithError(out, tenant);
        if (ids == NULL) {
            if (PyErr_Occurred() || (ids = PyList_New(0)) == NULL)
                goto fail;
            int r = PyDict_SetItem(out, tenant, ids);
            Py_DECREF(ids);
            if (r < 0)
                goto fail;
        }
        if (PyList_Append(ids, id) < 0)
            goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* Add to one per-key dict of counts: by[name] += amount (both created when missing). */
static int
add_into(PyObject *per_key, PyObject *key, PyObject *name, PyObject *amount)
{
    PyObject *by = PyDict_GetItemWithError(per_key, key);
    if (by == NULL) {
        if (PyErr_Occurred() || (by = PyDict_New()) == NULL)
            return -1;
        int r = PyDict_SetItem(per_key, key, by);
        Py_DECREF(by);
        if (r < 0)
            return -1;
    }
    PyObject *was = PyDict_GetItemWithError(by, name);
    if (was == NULL && PyErr_Occurred())
        return -1;
    PyObject *sum = was == NULL ? Py_NewRef(amount) : PyNumber_Add(was, amount);
    if (sum == NULL)
        return -1;
    int r = PyDict_SetItem(by, name, sum);
    Py_DECREF(sum);
    return r;
}

/* Taken.add in C: each stored row (cdr_id, msisdn, cycle, currency, charge, bundles_json) of ``tenant`` a chunk replaces:
   (tenant, cdr_id) into ``replaced``; a row with a cycle its key (tenant, msisdn, cycle) into ``keys``, its bundle units
   (``bundle_units(text)``, unless "[]") into ``units[key]`` and its charge (when not 0) into ``charges[key][currency]``. */
static PyObject *
taken_add(PyObject *self, PyObject *args)
{
    PyObject *tenant, *rows, *replaced, *keys, *units, *charges, *bundle_units;
    if (!PyArg_ParseTuple(args, "UO!O!O!O!O!O", &tenant, &PyList_Type, &rows, &PySet_Type, &replaced, &PySet_Type, &keys,
                          &PyDict_Type, &units, &PyDict_Type, &charges, &bundle_units))
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 6) {
            PyErr_SetString(PyExc_TypeError, "taken_add takes rows of six columns");
            return NULL;
        }
        PyObject *id = PyTuple_GET_ITEM(row, 0), *msisdn = PyTuple_GET_ITEM(row, 1), *cycle = PyTuple_GET_ITEM(row, 2),
                 *currency = PyTuple_GET_ITEM(row, 3), *charge = PyTuple_GET_ITEM(row, 4), *text = PyTuple_GET_ITEM(row, 5);
        PyObject *pair = PyTuple_Pack(2, tenant, id);
        if (pair == NULL)
            return NULL;
        int r = PySet_Add(replaced, pair);
        Py_DECREF(pair);
        if (r < 0)
            return NULL;
        int has = PyObject_IsTrue(cycle);
        if (has < 0)
            return NULL;
        if (!has)
            continue;
        PyObject *key = PyTuple_Pack(3, tenant, msisdn, cycle);
        if (key == NULL || PySet_Add(keys, key) < 0)
            goto fail_key;
        has = PyObject_IsTrue(text);
        if (has < 0)
            goto fail_key;
        if (has && !(PyUnicode_Check(text) && PyUnicode_CompareWithASCIIString(text, "[]") == 0)) {
            PyObject *parsed = PyObject_CallOneArg(bundle_units, text);
            if (parsed == NULL)
                goto fail_key;
            PyObject *fast = PySequence_Fast(parsed, "bundle_units gives a list");
            Py_DECREF(parsed);
            if (fast == NULL)
                goto fail_key;
            for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(fast); j++) {
                PyObject *pair_bu = PySequence_Fast_GET_ITEM(fast, j);
                if (!PyTuple_Check(pair_bu) || PyTuple_GET_SIZE(pair_bu) != 2) {
                    PyErr_SetString(PyExc_TypeError, "bundle_units gives (bundle, units) pairs");
                    Py_DECREF(fast);
                    goto fail_key;
                }
                if (add_into(units, key, PyTuple_GET_ITEM(pair_bu, 0), PyTuple_GET_ITEM(pair_bu, 1)) < 0) {
                    Py_DECREF(fast);
                    goto fail_key;
                }
            }
            Py_DECREF(fast);
        }
        has = PyObject_IsTrue(charge);
        if (has < 0)
            goto fail_key;
        if (has) {
            PyObject *micros = PyLong_CheckExact(charge) ? Py_NewRef(charge) : PyNumber_Long(charge);
            if (micros == NULL)
                goto fail_key;
            r = add_into(charges, key, currency, micros);
            Py_DECREF(micros);
            if (r < 0)
                goto fail_key;
        }
        Py_DECREF(key);
        continue;
    fail_key:
        Py_XDECREF(key);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"resolve", resolve, METH_VARARGS, "Each row's start time, plan set version, compiled plans, tariff plan and subscriber; "
                                       "the rows left to the Python code"},
    {"counter_keys", counter_keys, METH_VARARGS, "Each row's counter key and tariff plan version"},
    {"ensure_monthly", ensure_monthly, METH_VARARGS, "The monthly counters of each key's tariff plan made sure of"},
    {"wallets", wallets, METH_VARARGS, "The wallet of each key (None for None), made from the counters when new"},
    {"ledger_rows", ledger_rows, METH_VARARGS, "The ledger row of each rated row; the charges added to the balances"},
    {"counter_changes", counter_changes, METH_VARARGS, "What the wallets changed of the counters read"},
    {"ids_by_tenant", ids_by_tenant, METH_VARARGS, "The CDR ids of the rows by tenant"},
    {"taken_add", taken_add, METH_VARARGS, "Taken.add: the stored rows a chunk replaces added up per subscriber cycle"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_chunkrows", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__chunkrows(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(S_TENANT_ID, "tenant_id");
    INTERN(S_TARIFF_PLAN, "tariff_plan");
    INTERN(S_ANCHOR_DAY, "anchor_day");
    INTERN(S_TIMESTAMP, "timestamp");
    INTERN(S_VERSION, "version");
    INTERN(S_CURRENCY, "currency");
    INTERN(S_PLAN_ID, "plan_id");
    INTERN(S_REMAINING, "remaining");
    INTERN(S_ALLOWANCE, "allowance");
    INTERN(S_UNIT, "unit");
    INTERN(S_EMPTY, "");
    INTERN(S_NONE_JSON, "[]");
#undef INTERN
    if ((ZERO = PyLong_FromLong(0)) == NULL || (ONE = PyLong_FromLong(1)) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
