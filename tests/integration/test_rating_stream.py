"""A RateCdrs stream's chunks rated while the chunk before is being stored (engine.rating.desk.RatingStream), on SQLite
and PostgreSQL: the same ledger, counters and balances as rating each chunk alone, a CDR sent again in the next chunk,
two replicas streaming against one bundle, SIGKILL mid-stream then the stream again, and a client that waits for each
reply before it sends the next message."""

from __future__ import annotations

import copy
import json
import queue
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from engine.cdr import COLUMNS, MediatedCdr
from engine.rating.evaluator import row_of
from engine.identity import SYSTEM
from servers.root import Root
from tests.integration.conftest import MID_MONTH
from tests.integration.test_rating_stored import (  # noqa: F401 - fixtures
    _subscriber, _wipe_rating, active, consistent, killed_mid_stream, provision, replicas_spend_one_bundle, roots, server_clock, spent_once,
    state, store_cdrs, voice, voice_pb)

pytestmark = [pytest.mark.integration]
_ID = COLUMNS.index("cdr_id")
OPERATOR = replace(SYSTEM, tenant_id="mno", subject="it")


OVERLAPPED: list[int] = []   # per stream_chunks call: the chunks rated while the one before was being written


def stream_chunks(root: Root, chunks: list[list[MediatedCdr]]) -> list[Any]:
    """The chunks through one RatingStream as RateCdrs drives it: each chunk's result asked for after the next one was
    handed in (the results, in order)."""
    stream = root.rating.stream(OPERATOR)
    OVERLAPPED.append(0)
    stored: list[Callable[[], Any]] = []
    out = []
    try:
        for chunk in chunks:
            stored.append(stream.rate_rows([row_of(c) for c in chunk], "", True))
            if len(stored) > 1:
                out.append(stored[-2]())
        out.append(stored[-1]())
    finally:
        stream.close()
        OVERLAPPED[-1] = stream.overlapped
    return [[(r[0], r[1]) for r in rated.results] for rated in out]


def calls(msisdns: list[str], start: datetime, chunks: int, size: int, seed: int, tag: str = "s") -> list[list[MediatedCdr]]:
    """Chunks of national (bundle) and international (charged) calls of these subscribers, every chunk holding each."""
    rng = random.Random(seed)
    out = []
    for c in range(chunks):
        out.append([voice(c * 1000 + i, msisdns[(c + i) % len(msisdns)], "33698765432" if rng.random() < 0.7 else "442071234567",
                          rng.randint(30, 900), start + timedelta(seconds=c * 60 + i), source=tag) for i in range(size)])
    return out


class HeldWrites:
    """Each chunk's write (on the stream's writer thread) held until the next chunk of the stream has been read, or
    until the stream itself waits for that chunk's write (its outcome asked for, the stream closed): a chunk read while
    the one before is held always sees the counters as they were before that one commits.  Counted from the stream's
    start (``start``: a stream created); ``by_read`` says which writes a read of the next chunk let go."""

    TIMEOUT = 30   # seconds: a write never let go fails its chunk (a deadlock guard, not a timing assert)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.start()

    def start(self) -> None:
        with self.lock:
            self.writes = self.reads = 0
            self.flights: dict[Any, int] = {}        # a chunk's write future -> its number in the stream
            self.go: dict[int, threading.Event] = {}
            self.by_read: set[int] = set()
            self.by_demand: set[int] = set()

    def _event(self, n: int) -> threading.Event:
        return self.go.setdefault(n, threading.Event())

    def submitted(self, future: Any) -> None:
        with self.lock:
            self.flights[future] = len(self.flights)

    def read(self, before: int) -> None:
        """A chunk read: the writes handed in before its read began may go."""
        with self.lock:
            self.reads += 1
            for n in range(before):
                if not self._event(n).is_set():
                    self.by_read.add(n)
                    self._event(n).set()

    def demand(self, future: Any) -> None:
        """The stream waits for this write: it may go."""
        with self.lock:
            n = self.flights.get(future)
            if n is not None and not self._event(n).is_set():
                self.by_demand.add(n)
                self._event(n).set()

    def let_go(self) -> None:
        """The stream closed: every write it handed in may go."""
        with self.lock:
            for n in self.flights.values():
                if not self._event(n).is_set():
                    self.by_demand.add(n)
                    self._event(n).set()

    def write(self) -> None:
        with self.lock:
            n = self.writes
            self.writes += 1
            go = self._event(n)
        assert go.wait(self.TIMEOUT), f"write {n}: neither the next chunk was read nor its outcome asked for"


@pytest.fixture
def held_writes(monkeypatch: pytest.MonkeyPatch) -> HeldWrites:
    """Every stream's writes held (HeldWrites), counted from the stream's start."""
    from engine.rating import desk as module

    held = HeldWrites()
    write, read, stream, flight, landed, close = (module._write, module.RatingDesk._chunk, module.RatingDesk.stream,
                                                  module._InFlight.__init__, module._InFlight.landed, module.RatingStream.close)

    def held_write(*args: Any) -> bool:
        if threading.current_thread().name.startswith("rating-writer"):
            held.write()
        return write(*args)

    def read_then_release(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = len(held.flights)
        got = read(self, *args, **kwargs)
        held.read(before)
        return got

    def started(self: Any, *args: Any, **kwargs: Any) -> Any:
        held.start()
        return stream(self, *args, **kwargs)

    def submitted(self: Any, chunk: Any, results: Any, future: Any, *args: Any) -> None:
        flight(self, chunk, results, future, *args)
        if future is not None:
            held.submitted(future)

    def demanded(self: Any) -> bool:
        if self.future is not None:
            held.demand(self.future)
        return landed(self)

    def closed(self: Any) -> None:
        held.let_go()
        close(self)

    monkeypatch.setattr(module, "_write", held_write)
    monkeypatch.setattr(module.RatingDesk, "_chunk", read_then_release)
    monkeypatch.setattr(module.RatingDesk, "stream", started)
    monkeypatch.setattr(module._InFlight, "__init__", submitted)
    monkeypatch.setattr(module._InFlight, "landed", demanded)
    monkeypatch.setattr(module.RatingStream, "close", closed)
    return held


def test_a_stream_stores_what_rating_each_chunk_alone_stores(roots, held_writes) -> None:
    root, _ = roots
    msisdns = [_subscriber(root).msisdn for _ in range(3)]
    start = MID_MONTH + timedelta(minutes=5)
    chunks = calls(msisdns, start, 8, 50, seed=3)
    desk = root.rating
    for chunk in chunks:
        desk.rate_many(OPERATOR, chunk, use_counters=True)
    alone = state(root, set(msisdns))
    _wipe_rating(root, set(msisdns))
    races = desk.races
    streamed = stream_chunks(root, chunks)
    assert state(root, set(msisdns)) == alone
    consistent(alone)
    assert any(units for row in alone["ledger"] for _b, units in json.loads(row[5]))   # bundles were spent
    assert sum(len(c) for c in streamed) == 400
    # each chunk read the counters the one before it was still writing: none was rated twice
    assert desk.races == races
    # every chunk after the first is read and rated while the one before is written (SQLite: read on a snapshot): the
    # writes of chunks 0-6 were let go by the read of the next chunk, the last one's when its outcome was asked for
    assert (held_writes.writes, held_writes.by_read, held_writes.by_demand) == (8, set(range(7)), {7})
    assert OVERLAPPED[-1] == 7


def test_a_cdr_sent_again_in_the_next_chunk_replaces_its_row(roots) -> None:
    """The next chunk cannot see the row of a CDR the chunk in flight is inserting: its write loses, and it is rated
    again once that one committed (its row replaced, what it took given back first)."""
    root, _ = roots
    msisdns = [_subscriber(root).msisdn for _ in range(2)]
    start = MID_MONTH + timedelta(minutes=5)
    chunks = calls(msisdns, start, 6, 30, seed=5, tag="again")
    chunks[3] = chunks[2][:10] + chunks[3]   # the first 10 CDRs of chunk 2 once more in chunk 3
    chunks[5] = chunks[4][-3:] + chunks[5]   # the last 3 of chunk 4 in chunk 5
    desk = root.rating
    for chunk in chunks:
        desk.rate_many(OPERATOR, chunk, use_counters=True)
    alone = state(root, set(msisdns))
    _wipe_rating(root, set(msisdns))
    stream_chunks(root, chunks)
    got = state(root, set(msisdns))
    assert got == alone
    assert len(got["ledger"]) == 6 * 30
    consistent(got)


def test_a_stored_cdr_sent_in_two_chunks_in_a_row_gives_its_old_row_back_once(roots, monkeypatch: pytest.MonkeyPatch) -> None:
    """10 CDRs of chunk 1 sent again in chunk 2, 5 of chunk 4 in chunk 5, each rated before as another call (longer,
    abroad).  The next chunk reads the stored rows that the chunk in flight is replacing (on SQLite that write is held
    until then: the next chunk's snapshot has the old rows): its write finds other rows there and loses, and it is rated
    again once the one before committed, the old rows' charges given back once."""
    from engine.rating import desk as module

    root, _ = roots
    msisdns = [_subscriber(root).msisdn for _ in range(2)]
    start = MID_MONTH + timedelta(minutes=5)
    chunks = calls(msisdns, start, 6, 30, seed=13, tag="twice")
    chunks[2] = chunks[1][:10] + chunks[2]
    chunks[5] = chunks[4][-5:] + chunks[5]
    again = {c.cdr_id for c in chunks[1][:10] + chunks[4][-5:]}
    desk = root.rating
    before = [c.with_changes(b_number="442071234567", duration_seconds=1234) for c in chunks[1][:10] + chunks[4][-5:]]
    desk.rate_many(OPERATOR, before, use_counters=True)
    for chunk in chunks:
        desk.rate_many(OPERATOR, chunk, use_counters=True)
    alone = state(root, set(msisdns))
    _wipe_rating(root, set(msisdns))
    desk.rate_many(OPERATOR, before, use_counters=True)
    sqlite = root.db.dialect.name == "sqlite"
    if sqlite:
        reads: dict[str, int] = {}
        cond = threading.Condition()
        write_read, read = module._write_read, module.RatingDesk._chunk

        def counted(self: Any, uow: Any, chunk: Any, *args: Any, **kwargs: Any) -> Any:
            got = read(self, uow, chunk, *args, **kwargs)
            with cond:
                for row in chunk.rows:
                    if row[_ID] in again:
                        reads[row[_ID]] = reads.get(row[_ID], 0) + 1
                cond.notify_all()
            return got

        def after_the_next_read(plan_uow: Any, replaced: Any, entries: Any, *args: Any) -> bool:
            mine = [e[1] for e in entries if e[1] in again]
            with cond:
                assert cond.wait_for(lambda: all(reads.get(i, 0) >= 2 for i in mine), timeout=30)
            return write_read(plan_uow, replaced, entries, *args)

        monkeypatch.setattr(module, "_write_read", after_the_next_read)
        monkeypatch.setattr(module.RatingDesk, "_chunk", counted)
    races = desk.races
    stream_chunks(root, chunks)
    got = state(root, set(msisdns))
    assert got == alone
    consistent(got)
    if sqlite:
        assert desk.races - races == 2   # chunks 2 and 5, each rated again after the one before committed


def test_two_replicas_streaming_never_spend_one_bundle_twice(roots) -> None:
    replicas_spend_one_bundle(roots, stream_chunks)


def test_a_counter_another_replica_spent_between_two_chunks_is_read_again(roots) -> None:
    """A stream reads a subscriber's counters once and goes on from the values its own chunks set; another replica
    spends from the same bundle between two chunks: the next chunk's compare-and-set finds the change, the chunk is
    rated again from the counters as they are, and every unit of the bundle is spent once."""
    a, b = roots
    sub = _subscriber(a)   # TP_SMART_S: 7,200 s of national calls a cycle
    start = MID_MONTH + timedelta(minutes=5)
    chunks = [[voice(c * 100 + i, sub.msisdn, "33698765432", 100, start + timedelta(seconds=c * 60 + i), source="known")
               for i in range(20)] for c in range(4)]
    stream = a.rating.stream(OPERATOR)
    races = a.rating.races
    try:
        first = stream.rate_rows([row_of(c) for c in chunks[0]], "", True)
        second = stream.rate_rows([row_of(c) for c in chunks[1]], "", True)
        first()
        second()
        b.rating.rate_many(OPERATOR, [voice(900 + i, sub.msisdn, "33698765432", 100, start + timedelta(seconds=90 + i), source="known")
                                      for i in range(10)], use_counters=True)
        rest = [stream.rate_rows([row_of(c) for c in chunk], "", True) for chunk in chunks[2:]]
        for stored in rest:
            stored()
    finally:
        stream.close()
    assert a.rating.races - races >= 1   # the stream's known counter was stale once
    spent_once(a, sub.msisdn, 90)


def rerating_in_chunks_of_40(root: Root, days: int, seed: int) -> int:
    """300 stored CDRs of three new subscribers, ``days`` from now, rated from scratch in start order, then re-rated by
    a run in chunks of 40: the run leaves what rating from scratch left (checked); the chunks it rated again."""
    msisdns = [_subscriber(root).msisdn for _ in range(3)]
    start = MID_MONTH + timedelta(days=days)
    cdrs = [c for chunk in calls(msisdns, start, 6, 50, seed=seed, tag=f"rerate-{seed}") for c in chunk]
    store_cdrs(root, cdrs)
    for i in range(0, len(cdrs), 40):
        root.rating.rate_many(OPERATOR, cdrs[i:i + 40], use_counters=True)
    clean = state(root, set(msisdns))
    run = copy.copy(root.rerate)
    run._chunk = 40
    races = root.rating.races
    summary = run.rerate(OPERATOR, "mno", start, start + timedelta(hours=1))
    assert (summary.cdrs, summary.rated) == (300, 300)
    assert summary.charged_after == summary.charged_before
    assert state(root, set(msisdns)) == clean
    return root.rating.races - races


def test_a_rerating_run_written_while_rated_equals_rating_from_scratch(roots, held_writes) -> None:
    root, _ = roots
    assert rerating_in_chunks_of_40(root, 2, seed=21) == 0
    # every chunk written on the writer, each but the last let go by the read of the next chunk (rated meanwhile)
    assert (held_writes.writes, held_writes.by_read, held_writes.by_demand) == (8, set(range(7)), {7})


def test_a_rerating_chunk_that_loses_its_race_is_rated_again_from_what_the_run_holds(roots, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first chunk handed to the writer loses (as to a live rating of the same subscribers): the run's CDRs hold
    its old rows again, it is rated again after them, and the run ends as one rated from scratch."""
    from engine.rating import desk as module

    write, lost = module._write, []

    def first_loses(uow: Any, *args: Any) -> bool:
        if not lost:
            lost.append(True)
            uow.__exit__(None, None, None)   # rolled back, nothing written
            return False
        return write(uow, *args)

    monkeypatch.setattr(module, "_write", first_loses)
    root, _ = roots
    assert rerating_in_chunks_of_40(root, 3, seed=22) == 1


CHILD = r"""
import sys, json
from datetime import datetime
from pathlib import Path
from engine.rating.evaluator import row_of
from engine.settings import Settings
from servers.root import build_root
from tests.integration.test_rating_stream import OPERATOR, calls

url, home, msisdns, start = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), datetime.fromisoformat(sys.argv[4])
root = build_root(Settings(home=Path(home), database_url=url))
stream = root.rating.stream(OPERATOR)
before = None
for n, chunk in enumerate(calls(msisdns, start, 12, 60, seed=9, tag="crash-stream")):
    stored = stream.rate_rows([row_of(c) for c in chunk], "", True)
    if before is not None:
        before()
        print("commit", n - 1, flush=True)
    before = stored
before()
print("done", flush=True)
"""


def test_sigkill_mid_stream_then_the_stream_again_equals_one_clean_run(roots, db_url: str, tmp_path: Path) -> None:
    root, _ = roots
    msisdns = [_subscriber(root).msisdn for _ in range(4)]
    start = MID_MONTH + timedelta(minutes=5)
    chunks = calls(msisdns, start, 12, 60, seed=9, tag="crash-stream")
    stream_chunks(root, chunks)
    clean = state(root, set(msisdns))
    _wipe_rating(root, set(msisdns))
    assert killed_mid_stream(CHILD, db_url, tmp_path, msisdns, start, 9) >= 1   # a chunk committed, the next being written or rated
    stream_chunks(root, chunks)   # the sender's retry: the whole stream again
    assert state(root, set(msisdns)) == clean


def test_a_client_that_waits_for_each_reply_gets_it(stack, active) -> None:
    """RateCdrs answers a message without waiting for the next one when none is there (the next chunk is rated while
    the one before is stored only when it has arrived already)."""
    sub = provision(stack, "TP_SMART_M")
    start = MID_MONTH + timedelta(minutes=4)
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    sent: queue.Queue[Any] = queue.Queue()

    def requests() -> Iterator[rpb.RateCdrsRequest]:
        while (item := sent.get()) is not None:
            yield item

    replies = svc.RateCdrs(requests())
    pool = ThreadPoolExecutor(1)
    try:
        for n in range(3):
            sent.put(rpb.RateCdrsRequest(cdrs=[voice_pb(100 + n, sub.msisdn, "33698765432", 60, start + timedelta(seconds=n))],
                                         options=rpb.RateOptions(use_bundle_counters=True)))
            # only the message sent so far: a server waiting for the next one before it answers never answers (the
            # bound only turns that hang into a failure)
            reply = pool.submit(next, replies).result(timeout=60)
            assert [(r.status, r.units) for r in reply.rated] == [(rpb.RATING_STATUS_RATED, 60)]
        sent.put(None)
        assert list(replies) == []
    finally:
        replies.cancel()
        sent.put(None)
        pool.shutdown(wait=True)
    counters = svc.GetBundleCounters(rpb.GetBundleCountersRequest(msisdn=sub.msisdn))
    assert sum(c.allowance - c.remaining for c in counters.counters) == 180
