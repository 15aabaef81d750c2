/* Shared by the C modules that build rows for the stored rating path (engine/rating/_chunkrows.c, servers/_wire.c).
 *
 * A tuple none of whose items the cyclic collector tracks (strs, ints, None, datetimes, untracked tuples) can never be
 * part of a cycle: taken out of the collector's reach at once, as its next young collection would find after walking
 * it and every item in it (_PyTuple_MaybeUntrack).  A chunk's rows stay alive across the stream's collections (the
 * group rated while the one before is stored): each walk of them cost the server about a tenth of its CPU.
 */
#ifndef RULEBILL_UNTRACK_H
#define RULEBILL_UNTRACK_H

#include <Python.h>

static inline void
untrack_atoms(PyObject *t)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        PyObject *item = PyTuple_GET_ITEM(t, i);
        if (item == NULL || PyObject_GC_IsTracked(item))
            return;
    }
    PyObject_GC_UnTrack(t);
}

#endif
