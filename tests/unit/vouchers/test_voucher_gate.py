"""The FIFO gate the recharge paths queue on (store/db.py): first come, first served; a timeout leaves the queue."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from store.db import FifoGate


class _Queue(deque[threading.Lock]):
    """The gate's queue of waiters, telling the test each time a thread joins it (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.joined = threading.Semaphore(0)

    def append(self, turn: threading.Lock) -> None:
        super().append(turn)
        self.joined.release()


def test_waiters_are_admitted_in_arrival_order() -> None:
    gate = FifoGate(1)
    gate._waiters = waiters = _Queue()
    gate.acquire()
    order: list[int] = []
    threads = []
    for i in range(6):
        def wait(i: int = i) -> None:
            with gate:
                order.append(i)

        t = threading.Thread(target=wait)
        t.start()
        assert waiters.joined.acquire(timeout=10), f"thread {i} never queued at the gate"  # queued before the next starts
        threads.append(t)
    assert len(waiters) == 6 and order == []
    gate.release()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive()
    assert order == list(range(6))


def test_slots_and_timeouts() -> None:
    gate = FifoGate(2)
    assert gate.acquire(timeout=0) and gate.acquire(timeout=0)
    assert gate.acquire(timeout=0.01) is False and not gate._waiters  # gave up and left the queue
    gate.release()
    assert gate.acquire(timeout=0)
    with pytest.raises(ValueError):
        FifoGate(0)
