"""An iterator read ahead on a thread of its own: the next requests of a stream (RateCdrs) or the next chunk of
stored CDRs (re-rating) are read while the one before is rated and stored."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Iterable, Iterator

END, NOT_YET = object(), object()


class ReadAhead:
    """``items`` read on a thread; an error of the reading is raised where its item would have come.  ``stop`` lets
    the thread go (it ends at its next item).

    What waits is bounded by ``limit``: with no ``weight``, at most that many items (one by default); with ``weight``
    (an item's size, such as a message's CDRs), items are read on while the ones waiting weigh at most ``limit``
    together.  ``size`` and ``size_limit`` are a second bound of the same kind (a message's bytes: a few messages of
    few CDRs may each be large), and reading waits as soon as either would be passed.  One item is always let in,
    however heavy or large.  ``last_size``: the size of the item ``ready`` or ``next`` gave last (read on the thread
    that takes the items: engine.rating.groups bounds a group's bytes with it, not sizing the item again)."""

    def __init__(self, items: Iterable[Any], name: str = "read-ahead", limit: int = 1,
                 weight: Callable[[Any], int] | None = None, *, size: Callable[[Any], int] | None = None,
                 size_limit: int = 0) -> None:
        if (size is None) != (size_limit <= 0):
            raise ValueError("ReadAhead: size and a positive size_limit go together")
        self._waiting: deque[tuple[Any, int, int]] = deque()
        self._weighs = self._sizes = 0   # what the waiting items weigh together, and their sizes
        self._limit, self._weight = max(1, limit), weight
        self._size_limit, self._size = size_limit, size
        self._cond = threading.Condition()
        self._stopped = False
        self.last_size = 0
        self._thread = threading.Thread(target=self._pump, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _pump(self, items: Iterable[Any]) -> None:
        weight, size = self._weight, self._size
        try:
            for item in items:
                if not self._put(item, 1 if weight is None else weight(item), 0 if size is None else size(item)):
                    return
        except BaseException as e:   # raised by the reader of the queue, in its place
            self._put(_Failed(e), 0)
            return
        finally:
            # a reader stopped early lets go of what it holds now, on this thread (a generator's open cursor and
            # connection: engine.rating.rerate's stored CDRs), not whenever the generator is collected
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._put(END, 0)

    def _put(self, item: Any, weight: int, size: int = 0) -> bool:
        with self._cond:
            while not self._stopped and self._waiting and self._full(weight, size):
                self._cond.wait()
            if self._stopped:
                return False
            self._waiting.append((item, weight, size))
            self._weighs += weight
            self._sizes += size
            self._cond.notify_all()
            return True

    def _full(self, weight: int, size: int) -> bool:
        """Whether an item of ``weight`` and ``size`` must wait for room (called with the condition held)."""
        return self._weighs + weight > self._limit or (size > 0 and self._sizes + size > self._size_limit)

    def _take(self) -> Any:
        item, weight, size = self._waiting.popleft()
        self._weighs -= weight
        self._sizes -= size
        self.last_size = size
        self._cond.notify_all()
        return item

    def ready(self) -> Any:
        """The next item if it is there already (END after the last one), else NOT_YET."""
        with self._cond:
            if not self._waiting:
                return NOT_YET
            item = self._take()
        return _raised(item)

    def next(self) -> Any:
        """The next item, waiting for it (END after the last one)."""
        with self._cond:
            while not self._waiting:
                self._cond.wait()
            item = self._take()
        return _raised(item)

    def __iter__(self) -> Iterator[Any]:
        try:
            while (item := self.next()) is not END:
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _raised(item: Any) -> Any:
    if type(item) is _Failed:
        raise item.error
    return item


__all__ = ["END", "NOT_YET", "ReadAhead"]
