"""The FIFO gate the recharge paths queue on (store/db.py): first come, first served; a timeout leaves the queue."""

from __future__ import annotations

import threading

import pytest

from store.db import FifoGate


def test_waiters_are_admitted_in_arrival_order() -> None:
    gate = FifoGate(1)
    gate.acquire()
    order: list[int] = []
    queued = []
    threads = []
    for i in range(6):
        ready = threading.Event()

        def wait(i: int = i, ready: threading.Event = ready) -> None:
            ready.set()
            with gate:
                order.append(i)

        t = threading.Thread(target=wait)
        t.start()
        ready.wait()
        while len(gate._waiters) < i + 1:  # the thread is queued before the next one starts
            threading.Event().wait(0.001)
        queued.append(i)
        threads.append(t)
    gate.release()
    for t in threads:
        t.join(timeout=10)
    assert order == queued == list(range(6))


def test_slots_and_timeouts() -> None:
    gate = FifoGate(2)
    assert gate.acquire(timeout=0) and gate.acquire(timeout=0)
    assert gate.acquire(timeout=0.01) is False and not gate._waiters  # gave up and left the queue
    gate.release()
    assert gate.acquire(timeout=0)
    with pytest.raises(ValueError):
        FifoGate(0)
