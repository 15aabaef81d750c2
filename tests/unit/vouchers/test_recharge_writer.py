"""The SQLite group-commit writer (store/voucher_writer.py) on a real database file: every caller answered with its
own result or error, batches committed durably, a request the writer never reached is never applied, and the
threads end with the engine.  Redemption through it is tested end to end in tests/integration/test_vouchers_recharge.py."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from store import voucher_writer
from store.db import _writer_gate
from store.voucher_writer import RechargeWriter, WriterRequest


def _writer(tmp_path: Path) -> tuple[RechargeWriter, Path]:
    path = tmp_path / "w.db"
    writer = RechargeWriter(f"sqlite:///{path}")
    writer.run(lambda s: s.connection().exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    return writer, path


def _insert(x: int) -> Any:
    return lambda s: s.connection().exec_driver_sql(f"INSERT INTO t (x) VALUES ({x})").rowcount


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as con:
        return [r[0] for r in con.execute("SELECT x FROM t ORDER BY x")]


def _writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("recharge-")]


def test_concurrent_callers_each_get_their_own_answer_and_the_threads_end_with_close(tmp_path: Path) -> None:
    writer, path = _writer(tmp_path)
    results: list[Any] = [None] * 40
    start = threading.Barrier(40)

    def call(i: int) -> None:
        start.wait()
        try:
            results[i] = writer.run(_insert(i if i != 7 else 3))  # 7 collides with 3: that one fails, alone
        except Exception as exc:  # noqa: BLE001 - the answer under test
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert len(failed) == 1 and failed[0] in (3, 7) and "UNIQUE" in str(results[failed[0]]), results
    assert [r for i, r in enumerate(results) if i not in failed] == [1] * 39
    assert _rows(path) == sorted(set(range(40)) - {7})
    assert _writer_threads() == ["recharge-writer", "recharge-checkpointer"]
    writer.close()
    assert _writer_threads() == []
    assert writer.run(_insert(100)) == 1  # a later request starts it again
    writer.close()


def test_the_writer_connection_commits_durably_without_checkpointing(tmp_path: Path) -> None:
    writer, _ = _writer(tmp_path)
    pragmas = writer.run(lambda s: [s.connection().exec_driver_sql(f"PRAGMA {p}").scalar()
                                    for p in ("journal_mode", "synchronous", "wal_autocheckpoint")])
    writer.close()
    assert pragmas == ["wal", 2, 0]  # synchronous 2 = FULL


def test_a_batch_is_one_transaction_and_a_failing_request_is_answered_alone(tmp_path: Path) -> None:
    writer, path = _writer(tmp_path)
    statements: list[str] = []
    event.listen(writer.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    event.listen(writer.engine, "commit", lambda *a: statements.append("COMMIT"))
    event.listen(writer.engine, "rollback", lambda *a: statements.append("ROLLBACK"))

    def boom(s: Session) -> None:
        s.connection().exec_driver_sql("INSERT INTO t (x) VALUES (50)")  # written, then the request fails
        raise ValueError("this request fails")

    requests = [WriterRequest(_insert(1)), WriterRequest(boom), WriterRequest(_insert(2)), WriterRequest(_insert(1))]
    writer.apply(requests)
    writer.close()
    assert [type(r.error).__name__ if r.error else r.result for r in requests] == [1, "ValueError", 1, "IntegrityError"]
    assert _rows(path) == [1, 2]  # nothing of the failed requests
    # 1, boom -> rolled back; 1, 2, 1 -> rolled back at the duplicate; 1, 2 -> committed
    assert statements.count("ROLLBACK") == 2 and statements.count("COMMIT") == 1


def test_a_request_the_writer_never_reached_is_never_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer, path = _writer(tmp_path)
    monkeypatch.setattr(voucher_writer, "WAIT_S", 0.2)
    taken = threading.Event()
    event.listen(writer.engine.pool, "checkout", lambda *a: taken.set())  # the writer starts a batch
    gate = _writer_gate(str(path))
    gate.acquire()  # another writer of this process holds the database: the writer waits at BEGIN
    first: list[Any] = []
    blocked = threading.Thread(target=lambda: first.append(writer.run(_insert(1))))
    blocked.start()
    try:
        taken.wait()  # the writer took the first request and waits for the gate: the second one stays queued
        with pytest.raises(sqlite3.OperationalError, match="did not reach"):
            writer.run(_insert(2))
    finally:
        gate.release()
    blocked.join()
    writer.close()
    assert first == [1] and _rows(path) == [1]
