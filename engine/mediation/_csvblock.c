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

static PyMethodDef methods[] = {
    {"count_lines", count_lines, METH_O, "count_lines(data) -> number of b'\\n' in data"},
    {"split_block", split_block, METH_VARARGS,
     "split_block(data, delimiter, quotechar, ncols, used, max_line, utf8, ascii) -> (rows, columns) | None"},
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
