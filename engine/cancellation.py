"""When the work of one request must stop: the caller went away, its deadline passed, or a limit of ours ran out.

A server call runs inside a :class:`CallScope` (the interceptor opens one per RPC and cancels it when the
RPC ends early).  Long loops of the engine (loading YAML, validating a plan set, what-if, mediation blocks,
rating chunks, exports) call :func:`checkpoint` every so often; it raises :class:`~engine.errors.Cancelled` or
:class:`~engine.errors.DeadlineExceeded` once the scope is over, and the use case's unit of work rolls back.

The scope is ambient (a context variable) rather than an argument because it crosses every layer of every
use case the way a deadline does; outside a server call the scope never ends, so offline commands and
tests run unchanged.  Work handed to another thread must carry the context (``contextvars.copy_context``).
"""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from engine.errors import Cancelled, DeadlineExceeded, DomainError

Now = Callable[[], float]


class CallScope:
    """One request's lifetime: cancelled by :meth:`cancel`, over once ``deadline`` (a ``now()`` reading) passes.

    ``now`` is injectable so tests decide when time is up without waiting; ``checks`` counts the checkpoints
    passed (a work counter tests may assert on)."""

    def __init__(self, deadline: float | None = None, now: Now = time.monotonic, parent: "CallScope | None" = None,
                 expired: Callable[[], DomainError] | None = None) -> None:
        self.deadline = deadline
        self._now = now
        self._parent = parent
        self._expired = expired or (lambda: DeadlineExceeded("the call's deadline passed before the work was done"))
        self._cancelled = threading.Event()
        self.checks = 0

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set() or (self._parent is not None and self._parent.cancelled)

    def check(self) -> None:
        self.checks += 1
        if self._parent is not None:
            self._parent.check()
        if self._cancelled.is_set():
            raise Cancelled("the call was cancelled (the client went away or the server is shutting down)")
        if self.deadline is not None and self._now() >= self.deadline:
            raise self._expired()

    def remaining(self) -> float | None:
        """Seconds left before the nearest deadline of this scope and its parents; None when there is none."""
        own = None if self.deadline is None else self.deadline - self._now()
        parent = self._parent.remaining() if self._parent is not None else None
        if own is None or parent is None:
            return own if parent is None else parent
        return min(own, parent)


# outside a call (offline commands, tests, start-up) nothing ever cancels the work
_UNBOUNDED = CallScope()
_current: contextvars.ContextVar[CallScope] = contextvars.ContextVar("call_scope", default=_UNBOUNDED)


def current() -> CallScope:
    return _current.get()


def checkpoint() -> None:
    """Raise when the current call is over; cheap enough to call once per record of a bulk loop."""
    _current.get().check()


@contextmanager
def scope(call: CallScope) -> Iterator[CallScope]:
    """Run the block inside ``call``."""
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


@contextmanager
def time_limit(seconds: float, expired: Callable[[], DomainError], now: Now = time.monotonic) -> Iterator[CallScope]:
    """A limit of ours inside the current call: the block ends at the call's own end or after ``seconds``,
    whichever comes first; ``expired()`` is the error raised when our limit is the one that ran out."""
    with scope(CallScope(now() + seconds, now, parent=current(), expired=expired)) as limited:
        yield limited
