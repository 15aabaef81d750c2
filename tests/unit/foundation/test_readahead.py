"""engine.readahead: one item read ahead on a thread, errors raised in their place, a reader that asks without waiting."""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from engine.readahead import END, NOT_YET, ReadAhead


def test_items_come_in_order_then_the_end() -> None:
    assert list(ReadAhead(iter(range(50)))) == list(range(50))
    ahead = ReadAhead(iter(["a"]))
    assert ahead.next() == "a"
    assert ahead.next() is END


def test_an_error_of_the_reading_is_raised_where_its_item_would_have_come() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken stream")

    got = []
    with pytest.raises(ValueError, match="broken stream"):
        for item in ReadAhead(items()):
            got.append(item)
    assert got == [1, 2]


def test_ready_does_not_wait_for_an_item_not_read_yet() -> None:
    go = threading.Event()

    def items() -> Iterator[str]:
        yield "first"
        go.wait()
        yield "second"

    ahead = ReadAhead(items())
    assert ahead.next() == "first"
    assert ahead.ready() is NOT_YET   # the reading waits for `go`: nothing there, and no waiting for it
    go.set()
    assert ahead.next() == "second"
    assert ahead.next() is END


def test_stop_lets_the_reading_thread_go() -> None:
    ahead = ReadAhead(iter(range(10)))
    assert ahead.next() == 0
    ahead.stop()
    ahead._thread.join(timeout=30)
    assert not ahead._thread.is_alive()


def test_with_a_weight_items_are_read_on_while_those_waiting_weigh_at_most_the_limit() -> None:
    read: list[int] = []
    cond = threading.Condition()

    def items() -> Iterator[list[int]]:
        for size in (4, 3, 2, 5, 1):
            with cond:
                read.append(size)
                cond.notify_all()
            yield [0] * size

    ahead = ReadAhead(items(), limit=9, weight=len)
    with cond:   # 4 + 3 + 2 wait; 5 more would weigh 14: its reading waits
        assert cond.wait_for(lambda: len(read) == 4, timeout=30)
    assert [len(ahead.ready()) for _ in range(3)] == [4, 3, 2]   # all there, none waited for
    assert len(ahead.next()) == 5 and len(ahead.next()) == 1
    assert ahead.next() is END
    one = ReadAhead(iter([[0] * 20, [0]]), limit=9, weight=len)   # one item is let in however heavy
    assert len(one.next()) == 20 and len(one.next()) == 1


class Watched(ReadAhead):
    """A seam: ``blocked`` is set when the reading thread waits for room (what it has pulled is in ``pulled``)."""

    def __init__(self, sizes: list[int], **kw: Any) -> None:
        self.pulled: list[int] = []
        self.blocked = threading.Event()

        def items() -> Iterator[bytes]:
            for size in sizes:
                self.pulled.append(size)
                yield b"x" * size

        super().__init__(items(), **kw)

    def _full(self, weight: int, size: int) -> bool:
        full = super()._full(weight, size)
        if full:
            self.blocked.set()
        return full


def test_with_a_size_bound_reading_stops_once_the_sizes_waiting_would_pass_it() -> None:
    # a count bound far away (100 items), a size bound of 10 bytes: 4 + 3 + 2 wait, the item of 5 is pulled and waits
    ahead = Watched([4, 3, 2, 5, 1, 9], limit=100, weight=lambda _: 1, size=len, size_limit=10)
    assert ahead.blocked.wait(30)
    assert ahead.pulled == [4, 3, 2, 5]   # read no further than the one that waits for room
    assert [len(ahead.ready()) for _ in range(3)] == [4, 3, 2]
    assert [len(ahead.next()) for _ in range(3)] == [5, 1, 9]   # one item is always let in, however large
    assert ahead.next() is END


def test_the_count_bound_still_applies_with_a_size_bound() -> None:
    # whichever bound is reached first stops the reading: here the count (2 items), the sizes far below their bound
    ahead = Watched([1, 1, 1, 1], limit=2, weight=lambda _: 1, size=len, size_limit=1000)
    assert ahead.blocked.wait(30)
    assert ahead.pulled == [1, 1, 1]
    assert [len(i) for i in ahead] == [1, 1, 1, 1]


def test_a_size_needs_its_bound() -> None:
    with pytest.raises(ValueError):
        ReadAhead(iter([b""]), size=len)
    with pytest.raises(ValueError):
        ReadAhead(iter([b""]), size_limit=10)
