"""RateCdrs' read-ahead and its groups are bounded in bytes as well as in CDRs, on SQLite and PostgreSQL over a real
port: a stream of messages of few CDRs with large attributes is not read beyond twice ``max_message_bytes`` (1 MiB
here) while the server has not taken its first message, far below the CDR bound (twice ``rating_group_max_cdrs``,
40,000 CDRs), and the messages waiting are rated and stored in groups of at most ``max_message_bytes`` of messages;
without these one stream could make the server hold gigabytes.

A seam in the read-ahead (``Held``) hands the server its first message only when the test says so, counts the bytes
pulled from the request stream, and says when the reading thread waits for room (or has read the whole stream)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from engine.clock import FixedClock
from engine.rating import desk, groups
from engine.readahead import END, ReadAhead
from engine.settings import Settings
from tests.integration.conftest import MID_MONTH, running_stack
from tests.integration.test_rating_stored import active, provision, voice_pb  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration]
MAX_MESSAGE = 1024 * 1024
HELD: list["Held"] = []
CHUNKS: list[int] = []   # the CDRs of each chunk RateCdrs handed to its RatingStream
CREATED = threading.Event()


class Held(ReadAhead):
    """RateCdrs' read-ahead, its first item given only after ``go``; ``pulled`` the bytes read from the stream,
    ``stopped`` set once the reading waits for room or has reached the stream's end."""

    def __init__(self, items: Any, *args: Any, **kw: Any) -> None:
        self.pulled = 0
        self.go, self.stopped = threading.Event(), threading.Event()

        def counted() -> Iterator[Any]:
            for item in items:
                self.pulled += len(item.data)
                yield item

        super().__init__(counted(), *args, **kw)
        HELD.append(self)
        CREATED.set()

    def _full(self, weight: int, size: int) -> bool:
        full = super()._full(weight, size)
        if full:
            self.stopped.set()
        return full

    def _put(self, item: Any, *args: Any) -> bool:
        if item is END:
            self.stopped.set()
        return super()._put(item, *args)

    def _held(self) -> None:
        assert self.go.wait(120), "the test never let the server go on"

    def ready(self) -> Any:
        self._held()
        return super().ready()

    def next(self) -> Any:
        self._held()
        return super().next()


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("readahead")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(groups, "ReadAhead", Held)
        rate_rows = desk.RatingStream.rate_rows

        def counted(self: Any, rows: Any, *args: Any) -> Any:
            CHUNKS.append(len(rows))
            return rate_rows(self, rows, *args)

        mp.setattr(desk.RatingStream, "rate_rows", counted)
        with running_stack(Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0,
                                    max_message_bytes=MAX_MESSAGE), FixedClock(MID_MONTH)) as s:
            yield s


def test_a_stream_of_large_messages_is_read_ahead_no_further_than_the_byte_bound(stack, active) -> None:  # type: ignore[no-untyped-def]
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    msisdn = provision(stack).msisdn
    start = MID_MONTH + timedelta(minutes=5)
    # 32 attributes as large as a CDR may carry (keys of 64 characters, values of 256): ~10 KB a CDR
    attributes = {f"k{i:02d}".ljust(64, "x"): "v" * 256 for i in range(32)}
    messages = []
    for i in range(40):   # 20 CDRs a message, ~210 KB: ~8 MB in all, 800 CDRs, far below the CDR bound
        cdrs = [voice_pb(20 * i + j, msisdn, "33698765432", 60, start + timedelta(seconds=20 * i + j)) for j in range(20)]
        for cdr in cdrs:
            cdr.attributes.update(attributes)
        messages.append(rpb.RateCdrsRequest(cdrs=cdrs))
    size = messages[0].ByteSize()
    assert size < MAX_MESSAGE and 40 * size > 4 * MAX_MESSAGE
    HELD.clear()
    CHUNKS.clear()
    CREATED.clear()
    replies = svc.RateCdrs(iter(messages))   # sent by grpc's own thread; no reply can come before ``go``
    assert CREATED.wait(120)   # the server runs the call: its read-ahead exists
    [reading] = HELD
    assert reading.stopped.wait(120)
    # what waits weighs at most the bound, plus the one message read that waits for room
    assert reading.pulled <= 2 * MAX_MESSAGE + size
    assert reading.pulled < 40 * size
    reading.go.set()
    got = list(replies)
    assert len(got) == 40
    assert sum(len(r.rated) for r in got) == 800   # every CDR answered (rated, or its reason given)
    # groups of whole messages up to 1 MiB: four of ~210 KB (a fifth would pass it), never more, though about nine
    # were waiting when the first was rated (main without the byte bound: 620 CDRs in its first chunk, the group
    # taking each message the reading brought in while it was formed)
    per_group = MAX_MESSAGE // size
    assert per_group == 4
    assert CHUNKS[0] == 20 * per_group
    assert max(CHUNKS) <= 20 * per_group and sum(CHUNKS) == 800

