"""Server-streaming RPCs that report progress while a long use case runs (GenerateBatch ...).

The use case runs on a worker thread and calls ``progress(done, total)``; each call
becomes a progress message on the stream, and the result becomes the last message.
When the RPC ends early (the client cancelled, the deadline passed), the next
progress call raises :class:`StreamCancelled` inside the use case, which rolls its
transaction back: nothing half-done stays behind.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from typing import Any, Callable, Iterator, TypeVar

import grpc

T = TypeVar("T")
M = TypeVar("M")
Progress = Callable[[int, int], None]


class StreamCancelled(Exception):
    """The client went away during a progress stream: abandon (and so roll back) the work."""


def progress_stream(context: grpc.ServicerContext, work: Callable[[Progress], T], progress_message: Callable[[int, int], M],
                    result_message: Callable[[T], M], name: str = "progress-stream") -> Iterator[M]:
    """Run ``work(progress)`` on a thread named ``name``; yield a message per progress call, then the result's.
    An exception of the work is raised here, on the RPC's thread (the interceptor maps it)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    cancelled = threading.Event()

    def progress(done: int, total: int) -> None:
        if cancelled.is_set():
            raise StreamCancelled()
        events.put(("progress", (done, total)))

    def run() -> None:
        try:
            events.put(("result", work(progress)))
        except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread, which raises it
            events.put(("error", exc))

    context.add_callback(cancelled.set)  # the RPC ended (client cancelled or deadline): stop working
    # the worker carries the call's context: its scope (checkpoints stop with the call) and its caller
    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = events.get()
            if kind == "progress":
                yield progress_message(*value)
            elif kind == "result":
                yield result_message(value)
                return
            else:
                raise value
    finally:
        cancelled.set()
        worker.join()
