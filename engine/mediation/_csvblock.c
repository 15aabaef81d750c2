/*
 * engine.mediation._csvblock: the mediation fast path's block splitter.
 *
 * split_block(data, delimiter, quotechar, ncols, used, max_line, utf8, ascii)
 *     -> (rows, [column, ...]) or None
 *
 * Splits a block of whole CSV lines into the columns the layout uses (``used``,
 * 0-based indexes), as lists of str.  It accepts only the plain case, where its
 * answer is the one Python's csv.reader (strict=True, doublequote=True, no
 * escapechar, skipinitialspace=False) gives line by line:
 *
 *   - every line is one record of exactly ``ncols`` fields, ending in "\n" or
 *     "\r\n" (the last line may have no line break);
 *   - a quoted field closes on its line and is followed by the delimiter or the
 *     line end; "" inside it is one quote; a quote inside an unquoted field is
 *     an ordinary character;
 *   - no blank line, no NUL byte, no other "\r", no line over ``max_line`` bytes;
 *   - the used fields decode as UTF-8 (``utf8`` true) or are ASCII; ``ascii``
 *     says the caller found the whole block ASCII (each str is then a copy of
 *     the bytes, so it must be true only then).
 *
 * The caller keeps ``max_line`` within csv's field size limit and checks that the
 * whole block decodes (unused columns too): see csvblock.py.
 *
 * Anything else returns None and the caller reads the block with csv.reader,
 * which finds and reports the problem record by record.  The differential tests
 * hold this function to csv.reader over random blocks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_COLUMNS 1024

static PyObject *
split_block(PyObject *self, PyObject *args)
{
    Py_buffer view;
    int delim, quote, utf8, ascii;
    Py_ssize_t ncols, max_line;
    PyObject *used;

    if (!PyArg_ParseTuple(args, "y*iinO!npp", &view, &delim, &quote, &ncols, &PyTuple_Type, &used, &max_line, &utf8, &ascii))
        return NULL;

    const unsigned char *buf = (const unsigned char *)view.buf;
    const Py_ssize_t len = view.len;
    const Py_ssize_t nused = PyTuple_GET_SIZE(used);
    PyObject *result = NULL, *columns = NULL;
    char *scratch = NULL;   /* unescaped text of a quoted field holding "" */
    Py_ssize_t scratch_size = 0;
    Py_ssize_t slot[MAX_COLUMNS];       /* column index -> position in ``columns``, or -1 */
    const unsigned char *prev_text[MAX_COLUMNS];   /* per used column: the previous row's value */
    Py_ssize_t prev_size[MAX_COLUMNS];
    PyObject *prev_obj[MAX_COLUMNS];
    Py_ssize_t lines = 0, row = 0, pos = 0;

    if (ncols <= 0 || ncols > MAX_COLUMNS || delim < 0 || delim > 255 || quote < -1 || quote > 255) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "split_block: bad dialect or column count");
        return NULL;
    }
    for (Py_ssize_t c = 0; c < ncols; c++)
        slot[c] = -1;
    for (Py_ssize_t u = 0; u < nused; u++) {
        Py_ssize_t c = PyLong_AsSsize_t(PyTuple_GET_ITEM(used, u));
        if (c < 0 || c >= ncols || slot[c] != -1) {   /* so also nused <= ncols <= MAX_COLUMNS */
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "split_block: used columns must be distinct and in range");
            PyBuffer_Release(&view);
            return NULL;
        }
        slot[c] = u;
    }
    for (Py_ssize_t u = 0; u < nused; u++) {
        prev_obj[u] = NULL;
        prev_size[u] = -1;
        prev_text[u] = NULL;
    }

    /* NUL bytes: csv.reader refuses them; carriage returns: allowed only as part of "\r\n" */
    if (len && memchr(buf, 0, (size_t)len) != NULL)
        goto plain_no_early;
    const int has_cr = len && memchr(buf, '\r', (size_t)len) != NULL;

    /* lines in the block: the rows there will be if the block is plain */
    for (const unsigned char *p = buf, *end = buf + len; p < end;) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        lines++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }

    columns = PyList_New(nused);
    if (columns == NULL)
        goto done;
    for (Py_ssize_t u = 0; u < nused; u++) {
        PyObject *col = PyList_New(lines);
        if (col == NULL)
            goto fail;
        PyList_SET_ITEM(columns, u, col);
    }

    /* line by line, field by field, with memchr; text is copied only for the used columns */
    while (pos < len) {
        const unsigned char *nl = memchr(buf + pos, '\n', (size_t)(len - pos));
        const Py_ssize_t line_end = nl ? nl - buf : len;      /* the '\n' (or the end of the data) */
        Py_ssize_t stop = line_end;                          /* the end of the line's text */
        if (line_end + (nl != NULL) - pos > max_line)
            goto plain_no;
        if (has_cr) {
            if (stop > pos && buf[stop - 1] == '\r')
                stop--;
            if (memchr(buf + pos, '\r', (size_t)(stop - pos)) != NULL)
                goto plain_no;                     /* a bare CR */
        }
        if (stop == pos)
            goto plain_no;                         /* a blank line */
        Py_ssize_t col = 0;
        for (;;) {                                 /* one field per turn, starting at pos */
            const unsigned char *text;
            Py_ssize_t size;
            int escaped = 0;
            if (col >= ncols)
                goto plain_no;
            if (quote >= 0 && pos < stop && buf[pos] == quote) {
                const unsigned char *p = buf + pos + 1;
                for (;;) {
                    const unsigned char *q = memchr(p, quote, (size_t)(buf + stop - p));
                    if (q == NULL)
                        goto plain_no;             /* not closed on this line: csv.reader's business */
                    if (q + 1 < buf + stop && q[1] == quote) {
                        escaped = 1;
                        p = q + 2;
                        continue;
                    }
                    text = buf + pos + 1;
                    size = q - text;
                    pos = q + 1 - buf;
                    break;
                }
                if (pos < stop && buf[pos] != delim)
                    goto plain_no;                 /* text after the closing quote */
            }
            else {
                const unsigned char *d = memchr(buf + pos, delim, (size_t)(stop - pos));
                Py_ssize_t end = d ? d - buf : stop;
                text = buf + pos;
                size = end - pos;
                pos = end;
            }
            Py_ssize_t u = slot[col];
            if (u >= 0) {
                PyObject *value;
                if (escaped) {                     /* "" -> " */
                    if (scratch_size < size) {
                        char *grown = PyMem_Realloc(scratch, (size_t)size);
                        if (grown == NULL) {
                            PyErr_NoMemory();
                            goto fail;
                        }
                        scratch = grown;
                        scratch_size = size;
                    }
                    Py_ssize_t n = 0;
                    for (Py_ssize_t i = 0; i < size; i++) {
                        scratch[n++] = (char)text[i];
                        if (text[i] == quote)
                            i++;
                    }
                    text = (const unsigned char *)scratch;
                    size = n;
                }
                if (!escaped && size == prev_size[u] && prev_obj[u] != NULL
                        && memcmp(text, prev_text[u], (size_t)size) == 0) {
                    value = Py_NewRef(prev_obj[u]);  /* the same text as the row before: the same str */
                }
                else if (ascii) {                  /* the str is a copy of the bytes */
                    value = PyUnicode_New(size, 127);
                    if (value == NULL)
                        goto fail;
                    memcpy(PyUnicode_1BYTE_DATA(value), text, (size_t)size);
                }
                else {
                    for (Py_ssize_t i = 0; i < size && !utf8; i++)
                        if (text[i] & 0x80)
                            goto plain_no;         /* another encoding: csv.reader decodes it */
                    value = PyUnicode_DecodeUTF8((const char *)text, size, NULL);
                    if (value == NULL) {
                        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                            goto fail;
                        PyErr_Clear();
                        goto plain_no;
                    }
                }
                if (!escaped) {
                    prev_text[u] = text;
                    prev_size[u] = size;
                }
                else
                    prev_size[u] = -1;
                prev_obj[u] = value;               /* borrowed: the column list holds it */
                if (row >= lines) {                /* cannot happen: one row per counted line */
                    Py_DECREF(value);
                    goto plain_no;
                }
                PyList_SET_ITEM(PyList_GET_ITEM(columns, u), row, value);
            }
            col++;
            if (pos >= stop)
                break;
            pos++;                                 /* the delimiter */
        }
        if (col != ncols)
            goto plain_no;
        row++;
        pos = line_end + 1;
    }
    if (row != lines)
        goto plain_no;
    result = Py_BuildValue("(nO)", row, columns);
    Py_DECREF(columns);
    goto done;

plain_no:
    /* slots not filled yet are NULL, which list deallocation skips */
    Py_DECREF(columns);
plain_no_early:
    result = Py_NewRef(Py_None);
    goto done;

fail:
    Py_XDECREF(columns);
    result = NULL;

done:
    PyMem_Free(scratch);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
count_lines(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = (const unsigned char *)view.buf, *end = p + view.len;
    Py_ssize_t n = 0;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        n++;
        p = nl + 1;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

/*
 * timestamp_column(texts, hours) -> list | None
 *
 * The fast timestamp conversion over a whole column (conversions/timestamp.py,
 * ``column``): every value "YYYY-MM-DD?HH:MM:SS" whose local hour "YYYY-MM-DD?HH"
 * is a key of ``hours`` becomes hours[that hour] + "MM:SS" + "Z".  None as soon as
 * a value is anything else (not ASCII, another length, minutes or seconds out of
 * 00..59, an hour not yet known): the Python column function then decides, so
 * this function changes speed, never results.  Consecutive values mostly share
 * their hour: the last hour's key and prefix are kept, one dict lookup per change.
 */
static PyObject *
timestamp_column(PyObject *self, PyObject *args)
{
    PyObject *texts, *hours;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &texts, &PyDict_Type, &hours))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    char last[13];
    int have_last = 0;
    PyObject *prefix = NULL;   /* borrowed from hours, kept alive by it during this call (no Python code runs) */
    const char *pdata = NULL;
    Py_ssize_t plen = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(texts, i);
        if (!PyUnicode_CheckExact(t) || !PyUnicode_IS_COMPACT_ASCII(t) || PyUnicode_GET_LENGTH(t) != 19)
            goto decline;
        const char *c = (const char *)PyUnicode_DATA(t);
        if (c[13] != ':' || c[16] != ':' || c[14] < '0' || c[14] > '5' || c[15] < '0' || c[15] > '9'
            || c[17] < '0' || c[17] > '5' || c[18] < '0' || c[18] > '9')
            goto decline;
        if (!have_last || memcmp(last, c, 13) != 0) {
            PyObject *key = PyUnicode_FromStringAndSize(c, 13);
            if (key == NULL)
                goto error;
            prefix = PyDict_GetItemWithError(hours, key);
            Py_DECREF(key);
            if (prefix == NULL) {
                if (PyErr_Occurred())
                    goto error;
                goto decline;
            }
            if (!PyUnicode_CheckExact(prefix) || !PyUnicode_IS_COMPACT_ASCII(prefix))
                goto decline;
            pdata = (const char *)PyUnicode_DATA(prefix);
            plen = PyUnicode_GET_LENGTH(prefix);
            memcpy(last, c, 13);
            have_last = 1;
        }
        PyObject *v = PyUnicode_New(plen + 6, 127);
        if (v == NULL)
            goto error;
        char *d = (char *)PyUnicode_DATA(v);
        memcpy(d, pdata, (size_t)plen);
        memcpy(d + plen, c + 14, 5);
        d[plen + 5] = 'Z';
        PyList_SET_ITEM(out, i, v);
    }
    return out;
decline:
    Py_DECREF(out);
    Py_RETURN_NONE;
error:
    Py_DECREF(out);
    return NULL;
}

/*
 * number_column(values, shortest, international, national, country_code) -> list | None
 *
 * The numbering plan's whole-column rewrite (numbering_plan.py, ``_column_function``)
 * for values that are all ASCII digits of at least ``shortest`` characters: the first
 * international prefix (``international`` is longest first) that starts a value is cut
 * off; otherwise a national prefix is replaced by the country code; otherwise the
 * value stays.  Every result must be 7..15 digits not starting with 0.  None as soon
 * as one value is anything else: the Python function then decides.
 */
static PyObject *
number_column(PyObject *self, PyObject *args)
{
    PyObject *values, *intl;
    Py_ssize_t shortest;
    const char *national, *cc;
    Py_ssize_t national_len, cc_len;
    if (!PyArg_ParseTuple(args, "O!nO!s#s#", &PyList_Type, &values, &shortest, &PyTuple_Type, &intl,
                          &national, &national_len, &cc, &cc_len))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), nintl = PyTuple_GET_SIZE(intl);
    if (n == 0 || nintl > 16)
        Py_RETURN_NONE;
    const char *ip[16];
    Py_ssize_t il[16];
    for (Py_ssize_t k = 0; k < nintl; k++) {
        PyObject *p = PyTuple_GET_ITEM(intl, k);
        if (!PyUnicode_CheckExact(p) || !PyUnicode_IS_COMPACT_ASCII(p) || PyUnicode_GET_LENGTH(p) == 0)
            Py_RETURN_NONE;
        ip[k] = (const char *)PyUnicode_DATA(p);
        il[k] = PyUnicode_GET_LENGTH(p);
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    char buf[64];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(values, i);
        if (!PyUnicode_CheckExact(t) || !PyUnicode_IS_COMPACT_ASCII(t))
            goto decline;
        Py_ssize_t len = PyUnicode_GET_LENGTH(t);
        const char *c = (const char *)PyUnicode_DATA(t);
        if (len < shortest || len > 40)
            goto decline;
        for (Py_ssize_t j = 0; j < len; j++)
            if (c[j] < '0' || c[j] > '9')
                goto decline;
        Py_ssize_t olen = -1;
        for (Py_ssize_t k = 0; k < nintl; k++) {
            if (il[k] <= len && memcmp(c, ip[k], (size_t)il[k]) == 0) {
                olen = len - il[k];
                memcpy(buf, c + il[k], (size_t)olen);
                break;
            }
        }
        if (olen < 0) {
            if (national_len > 0 && national_len <= len && memcmp(c, national, (size_t)national_len) == 0) {
                if (cc_len > 20)
                    goto decline;
                memcpy(buf, cc, (size_t)cc_len);
                memcpy(buf + cc_len, c + national_len, (size_t)(len - national_len));
                olen = cc_len + len - national_len;
            } else {
                memcpy(buf, c, (size_t)len);
                olen = len;
            }
        }
        if (olen < 7 || olen > 15 || buf[0] == '0')
            goto decline;
        for (Py_ssize_t j = 0; j < olen; j++)   /* a country code of digits only, as the values */
            if (buf[j] < '0' || buf[j] > '9')
                goto decline;
        PyObject *v = PyUnicode_FromStringAndSize(buf, olen);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
decline:
    Py_DECREF(out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"count_lines", count_lines, METH_O, "count_lines(data) -> number of b'\\n' in data"},
    {"split_block", split_block, METH_VARARGS,
     "split_block(data, delimiter, quotechar, ncols, used, max_line, utf8, ascii) -> (rows, columns) | None"},
    {"timestamp_column", timestamp_column, METH_VARARGS, "timestamp_column(texts, hours) -> list | None"},
    {"number_column", number_column, METH_VARARGS,
     "number_column(values, shortest, international, national, country_code) -> list | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csvblock", "The mediation fast path's CSV block splitter.", -1, methods,
};

PyMODINIT_FUNC
PyInit__csvblock(void)
{
    return PyModule_Create(&module);
}
