"""The progress-stream helper: progress messages in order, then the result; errors and cancellation."""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from servers.progress import Progress, StreamCancelled, progress_stream


class _Context:
    """The one ServicerContext method the helper uses: a callback for when the RPC ends."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        for callback in self.callbacks:
            callback()


def _stream(context: _Context, work: Callable[[Progress], Any]) -> Any:
    return progress_stream(context, work, lambda done, total: ("progress", done, total), lambda r: ("result", r))  # type: ignore[arg-type]


def test_progress_then_the_result() -> None:
    def work(progress: Progress) -> str:
        for done in (1, 2, 3):
            progress(done, 3)
        return "batch"

    assert list(_stream(_Context(), work)) == [("progress", 1, 3), ("progress", 2, 3), ("progress", 3, 3), ("result", "batch")]


def test_an_error_of_the_work_is_raised_on_the_stream() -> None:
    def work(progress: Progress) -> str:
        progress(1, 2)
        raise ValueError("profile unknown")

    stream = _stream(_Context(), work)
    assert next(stream) == ("progress", 1, 2)
    with pytest.raises(ValueError, match="profile unknown"):
        next(stream)


def test_an_ended_rpc_stops_the_work_at_its_next_progress_step() -> None:
    context = _Context()
    reached, stopped = threading.Event(), []

    def work(progress: Progress) -> str:
        progress(1, 2)
        reached.wait(5)
        try:
            progress(2, 2)
        except StreamCancelled:
            stopped.append(True)   # a use case lets it propagate: its transaction rolls back
            raise
        return "never"

    stream = _stream(context, work)
    assert next(stream) == ("progress", 1, 2)
    context.end()          # the client went away
    reached.set()
    stream.close()         # gRPC closes the response iterator; the helper waits for the worker
    assert stopped == [True]
