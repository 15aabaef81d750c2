"""An iterator read one item ahead on a thread of its own: the next request of a stream (RateCdrs) or the next chunk
of stored CDRs (re-rating) is read while the one before is rated and stored."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator

END, NOT_YET = object(), object()


class ReadAhead:
    """``items`` read on a thread, at most one item waiting; an error of the reading is raised where its item would
    have come.  ``stop`` lets the thread go (it ends at its next item)."""

    def __init__(self, items: Iterable[Any], name: str = "read-ahead") -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _pump(self, items: Iterable[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as e:   # raised by the reader of the queue, in its place
            self._put(_Failed(e))
            return
        finally:
            # a reader stopped early lets go of what it holds now, on this thread (a generator's open cursor and
            # connection: engine.rating.rerate's stored CDRs), not whenever the generator is collected
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._put(END)

    def _put(self, item: Any) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def ready(self) -> Any:
        """The next item if it is there already (END after the last one), else NOT_YET."""
        try:
            return _raised(self._queue.get_nowait())
        except queue.Empty:
            return NOT_YET

    def next(self) -> Any:
        """The next item, waiting for it (END after the last one)."""
        return _raised(self._queue.get())

    def __iter__(self) -> Iterator[Any]:
        try:
            while (item := self.next()) is not END:
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopped.set()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _raised(item: Any) -> Any:
    if type(item) is _Failed:
        raise item.error
    return item


__all__ = ["END", "NOT_YET", "ReadAhead"]
