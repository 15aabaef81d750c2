"""SQLite recharge through one writer thread: group commit.

SQLite has one writer at a time.  When every redemption takes the write lock for its own transaction, 32 callers
queue for it one by one, and each holder also waits for the GIL between its statements while the others run:
that wait, not the work, made the slowest redemptions slow.  Here recharge requests (PIN entries and reservation
steps) queue to one thread that takes whatever is waiting (up to :data:`MAX_BATCH`), applies the requests one after
the other in ONE transaction and answers each caller after the commit.

* Each request is still decided on its own: :class:`~store.voucher_recharge.SqliteRecharge` reads its snapshot
  inside the batch's transaction (so it sees the requests applied before it: the same request id twice is a replay,
  the same PIN twice gives one credit, the lockout counter counts every wrong PIN), and writes its own ledger row,
  counter and audit entry: at most three statements per request, plus one BEGIN and one COMMIT per batch.
* A request that fails (an exception, not a refusal: refusals are answers) is answered with its error, the batch's
  transaction is rolled back and the other requests are applied again, without it, in a new one: one failure never
  fails the others.  Nobody is answered before the commit that holds their result; a failed BEGIN or COMMIT fails
  the requests of that batch (nothing of them was stored).
* Durability: the writer's connection runs ``PRAGMA synchronous=FULL``, so a redemption the caller was told about
  survives a power loss, not only a crash of the process (the other connections run WAL with ``synchronous=NORMAL``);
  the one fsync is per batch, which is what makes it affordable.
* Checkpoints (copying the WAL into the database file, with its fsync) run beside the writer, not in its commits: the
  writer's connection has no auto-checkpoint, and every :data:`CHECKPOINT_EVERY` requests it wakes its checkpointer
  thread, which runs a ``PASSIVE`` checkpoint on its own connection (it waits for no reader or writer).  The other
  connections keep SQLite's auto-checkpoint.
* The writer's transactions take the process's writer gate (:func:`store.db.make_engine`) like every other writer,
  and SQLite's busy timeout against other processes.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.vouchers.redemption import AttemptResult, PinAttempt, ReservationStep
from store.db import make_engine
from store.voucher_recharge import SqliteRecharge

log = logging.getLogger("rulebill.vouchers.writer")

MAX_BATCH = 256  # requests per transaction: bounds the time a batch holds the write lock
CHECKPOINT_EVERY = 256  # committed requests between two checkpoints (a few pages each: about SQLite's 1,000-page default)
WAIT_S = 60.0  # a caller whose request the writer has not taken by then gives up (it is then never applied)

Work = Callable[[Session], Any]


class WriterRequest:
    """One request in the writer's queue: ``work(session)``, answered once with its result or its error."""

    __slots__ = ("work", "answered", "done", "result", "error", "taken", "abandoned")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.answered = threading.Lock()
        self.answered.acquire()  # released once, when result or error is set
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.taken = False  # the writer has it: it will be answered
        self.abandoned = False  # the caller gave up before the writer took it: never applied

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.answered.release()


def writer_engine(url: str) -> Engine:
    """One connection to the database file, with the usual pragmas and writer gate, a durable commit, and no
    checkpoint on the way (the writer's checkpointer thread does it)."""
    engine = make_engine(url, pool_size=1, max_overflow=0)

    @event.listens_for(engine, "connect")
    def _durable_commit(dbapi_conn: Any, _record: Any) -> None:
        # after make_engine's pragmas: a commit reaches the disk before the callers hear of it; and the commit that
        # crosses SQLite's checkpoint threshold does not copy the WAL into the database while its callers wait
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    return engine


class RechargeWriter:
    """The group-commit writer of one SQLite database file (see the module doc); its thread starts on first use."""

    def __init__(self, url: str, max_batch: int = MAX_BATCH) -> None:
        self.engine = writer_engine(url)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[WriterRequest | None] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_due = threading.Event()
        self._stopping = False
        self._since_checkpoint = 0

    # --- callers ------------------------------------------------------------------------------------------------
    def attempt(self, a: PinAttempt) -> AttemptResult:
        result: AttemptResult = self.run(lambda session: SqliteRecharge(session).attempt(a))
        return result

    def step(self, s: ReservationStep) -> AttemptResult:
        result: AttemptResult = self.run(lambda session: SqliteRecharge(session).step(s))
        return result

    def run(self, work: Work) -> Any:
        """``work(session)`` inside the writer's next transaction; its result once that transaction committed."""
        request = WriterRequest(work)
        with self._guard:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name="recharge-writer", daemon=True)
                self._checkpointer = threading.Thread(target=self._checkpoints, name="recharge-checkpointer", daemon=True)
                self._thread.start()
                self._checkpointer.start()
        self._queue.put(request)
        if not request.answered.acquire(timeout=WAIT_S):
            with self._guard:
                if not request.taken:
                    request.abandoned = True
                    raise sqlite3.OperationalError("database is locked (the recharge writer did not reach this request)")
            request.answered.acquire()  # taken: the answer is on its way
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        """Answer what is queued, stop the thread and close the connection (a later request starts it again)."""
        with self._guard:
            thread, self._thread = self._thread, None
            checkpointer, self._checkpointer = self._checkpointer, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if checkpointer is not None:
            self._stopping = True
            self._checkpoint_due.set()
            checkpointer.join()
        self.engine.dispose()

    # --- the writer thread ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            with self._guard:
                batch = [r for r in batch if not r.abandoned]
                for r in batch:
                    r.taken = True
            try:
                self.apply(batch)
                self._since_checkpoint += len(batch)
                if self._since_checkpoint >= CHECKPOINT_EVERY:
                    self._since_checkpoint = 0
                    self._checkpoint_due.set()
            except BaseException as exc:  # the thread must outlive anything a batch does; its callers get the error
                log.exception("recharge writer: a batch failed")
                for r in batch:
                    if not r.done:
                        r.answer(error=exc)

    def _checkpoints(self) -> None:
        """A PASSIVE checkpoint each time the writer asks; one failing is logged and the next one tries again."""
        path = self.engine.url.database
        assert path
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._stopping:
                    return
                try:
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("recharge writer: a checkpoint failed")
        finally:
            con.close()

    def apply(self, batch: list[WriterRequest]) -> None:
        """One transaction for ``batch``; a request that raises is answered with its error and the others are
        applied again without it."""
        pending = list(batch)
        while pending:
            failed = self._transaction(pending)
            if failed is None:
                return
            pending.remove(failed)

    def _transaction(self, pending: list[WriterRequest]) -> WriterRequest | None:
        """Apply ``pending`` in one transaction and answer them all; or roll back and return the request that raised
        (answered with its error)."""
        session = Session(self.engine)
        try:
            try:
                session.connection()  # BEGIN IMMEDIATE under the writer gate
            except Exception as exc:
                for r in pending:
                    r.answer(error=exc)
                return None
            results = []
            for r in pending:
                try:
                    results.append(r.work(session))
                except Exception as exc:
                    session.rollback()
                    r.answer(error=exc)
                    return r
            try:
                session.commit()
            except Exception as exc:
                for r in pending:
                    r.answer(error=exc)
                return None
            for r, result in zip(pending, results):
                r.answer(result)
            return None
        finally:
            session.close()
