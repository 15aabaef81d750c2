"""Engines for SQLite (embedded default, WAL) and PostgreSQL (production)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we install)."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


class FifoGate:
    """At most ``slots`` holders; waiters are admitted strictly in arrival order.

    ``threading.Lock`` and SQLAlchemy's pool queue let a newcomer overtake threads that have waited for
    longer; under load that barging, not the work, makes the slowest requests slow.  Here a released slot
    goes straight to the oldest waiter.
    """

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._guard = threading.Lock()
        self._free = slots
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float = -1) -> bool:
        with self._guard:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return True  # handed over by release(): the slot is ours
        with self._guard:
            try:
                self._waiters.remove(turn)
                return False
            except ValueError:
                return True  # handed over between the timeout and here

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1

    def __enter__(self) -> "FifoGate":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


_GATE_HELD = "rulebill_writer_gate"
_GATE_TIMEOUT_S = 30.0
_gates: dict[str, FifoGate] = {}
_gates_guard = threading.Lock()


def _writer_gate(path: str) -> FifoGate:
    """One writer queue per SQLite file per process, shared by every engine on that file, first come first served."""
    with _gates_guard:
        return _gates.setdefault(str(Path(path).resolve()) if path != ":memory:" else path, FifoGate(1))


def private_database_file(path: Path) -> None:
    """The SQLite file holds subscribers, balances and hashed PINs: create it readable by its owner only (SQLite gives
    its -wal and -shm files the same mode) and refuse to open one that group or others may read."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SystemExit(f"{candidate}: the database file must be readable by its owner only (chmod 600 {candidate})")


LEDGER_KEY = "rulebill_cdr_key"
LEDGER_KEY_COLUMN = "cdr_key"                  # the SQLite ledger's column of ledger_key(cdr_id) (plans_0006)
LEDGER_KEY_INDEX = "ix_usage_ledger_cdr_key"   # the SQLite ledger's index on it (plans_0005: on LEDGER_KEY(cdr_id))


def ledger_key(cdr_id: str) -> int:
    """The usage ledger's narrow look-up key of a CDR id on SQLite: its first 64 bits of BLAKE2b as a signed integer.

    The SQLite ledger finds rows by CDR id through an index on this key, not on the id's text: an index entry of 8
    bytes instead of about 45 keeps the index a rated chunk writes into at random small enough to stay in the page
    cache.  Since migration plans_0006 the key is the column ``LEDGER_KEY_COLUMN``, written with each row (plans_0005
    indexed this function, which SQLite called back for every row inserted); every connection still registers it
    (make_engine) under ``LEDGER_KEY`` for those two migrations.  Two ids may share a key, so every look-up compares
    the id itself too."""
    return int.from_bytes(hashlib.blake2b(cdr_id.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def _sqlite_ledger_key(cdr_id: Any) -> int | None:
    return None if cdr_id is None else ledger_key(str(cdr_id))


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """``read_only`` (SQLite): transactions start with a deferred BEGIN and never take the write lock, so
    readers (token checks on every call, listings, exports) never queue behind writers in WAL mode."""
    url = normalise_url(url)
    # a statement's parameters (MSISDNs, lookup hashes, ciphertexts) never appear in an error's text or a log
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            private_database_file(Path(db_path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 64 MiB of page cache (SQLite's default is 2 MiB): a rated chunk's ledger rows land all over the primary key
            # and subscriber indexes; it grows only as pages are read
            cur.execute("PRAGMA cache_size=-65536")
            # a checkpoint after 10,000 WAL pages (~40 MiB), not SQLite's 1,000: a rated chunk dirties a page of the ledger's
            # indexes per row, so the default checkpointed after about every chunk and copied the same pages again and
            # again; measured on the ledger's insert-only floor, 300k rows: 16.8k -> 28.1k rows/s (docs/BENCHMARKS.md)
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()
            # the ledger's index by CDR id is on this function's value (deterministic: SQLite may use it in an index)
            dbapi_conn.create_function(LEDGER_KEY, 1, _sqlite_ledger_key, deterministic=True)

        if read_only:
            @event.listens_for(engine, "begin")
            def _sqlite_begin_deferred(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN")
        else:
            gate = _writer_gate(db_path or ":memory:")

            @event.listens_for(engine, "begin")
            def _sqlite_begin_immediate(conn: Any) -> None:
                # writers take the write lock at BEGIN so that read-then-write transactions serialise
                # instead of failing with "database is locked" on upgrade; within this process they first
                # queue on a lock, which wakes the next writer at once, where SQLite's busy handler would
                # sleep and poll (that polling made the tail latency of concurrent redemptions)
                if not conn.info.get(_GATE_HELD):
                    if not gate.acquire(timeout=_GATE_TIMEOUT_S):
                        raise sqlite3.OperationalError("database is locked (waited for other writers)")
                    conn.info[_GATE_HELD] = True
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                except BaseException:
                    if conn.info.pop(_GATE_HELD, False):
                        gate.release()
                    raise

            @event.listens_for(engine, "checkin")
            def _release_gate(_dbapi_conn: Any, record: Any) -> None:
                # held from the first BEGIN until the connection goes back to the pool: a unit of work
                # that commits and reads on does not queue behind itself
                if record.info.pop(_GATE_HELD, False):
                    gate.release()

        # let SQLAlchemy stop emitting its own BEGIN so ours is used
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)
