"""Pause Python's cyclic garbage collector around work that builds many small acyclic objects.

Reading a million CSV rows into lists and rating them into result tuples allocates
far more objects than the collector's thresholds; it then walks the growing heap
again and again for nothing (measured: most of the time of the rating loops).
Nothing such work builds refers back to itself, so reference counting frees it;
the collector is restored afterwards, whatever happens.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


__all__ = ["collector_paused"]
