"""Pause Python's cyclic garbage collector around work that builds many small acyclic objects.

Reading a million CSV rows into lists and rating them into result tuples allocates
far more objects than the collector's thresholds; it then walks the growing heap
again and again for nothing (measured: most of the time of the rating loops).
Nothing such work builds refers back to itself, so reference counting frees it;
the collector is restored afterwards, whatever happens.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_held = [0, False]   # pauses in force (any thread), and whether the collector was on when the first began


@contextmanager
def collector_paused() -> Iterator[None]:
    """Counted across threads: the collector is back on (if it was on) only when the last pause in force ends, so a
    thread ending its pause does not turn it on under another's (a stream's writer thread, engine.rating.desk)."""
    with _lock:
        if _held[0] == 0:
            _held[1] = gc.isenabled()
            gc.disable()
        _held[0] += 1
    try:
        yield
    finally:
        with _lock:
            _held[0] -= 1
            if _held[0] == 0 and _held[1]:
                gc.enable()


__all__ = ["collector_paused"]
