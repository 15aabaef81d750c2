"""The SQLite ledger's chunk write (store/plans.py, UsageRepo.write_chunk): its multi-row statements keep no statement
journal (``OR FAIL``), a write that fails part-way leaves nothing once its unit of work is rolled back, and CDR ids
whose narrow look-up keys (store.db.ledger_key) collide are still each their own row, found by their own id."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import store.plans
from engine.rating.usage import CounterRow
from store.db import make_engine
from store.plans import SqlPlanUnitOfWorkFactory
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def entry(i: int, tenant: str = "mno", **changes: Any) -> tuple[Any, ...]:
    """A ledger row (LEDGER_FIELDS order) of CDR ``k<i>``, one of 500 numbers, a start time a second apart."""
    return ledger_entry(**{"tenant_id": tenant, "cdr_id": f"k{i:07d}", "msisdn": f"49170{i * 7919 % 500:06d}", "start_time": T0 + timedelta(seconds=i),
                            "charge_micros": 1_000 + i, **changes})


@pytest.fixture
def ledger_db(db_url: str) -> Any:
    engine = make_engine(db_url)
    if engine.dialect.name != "sqlite":
        engine.dispose()
        pytest.skip("the SQLite ledger's packed INSERT and look-up key (PostgreSQL: COPY and its primary key)")
    with engine.begin() as conn:
        for name in ("usage_ledger", "bundle_counters"):
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield engine, SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    engine.dispose()


def written() -> int:
    """Bytes this process has written (WAL, database file, temporary files): /proc/self/io."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def test_a_chunk_on_a_stored_ledger_writes_its_pages_once_not_again_to_a_statement_journal(ledger_db: Any) -> None:
    """5,000 rows in one transaction on top of 20,000: each page of the ledger's indexes the chunk changes goes to the WAL
    (about 0.5 KiB a row here).  With SQLite's default ABORT, each multi-row statement also copied the original of every
    page it changed to a statement journal, a temporary file (1.5 KiB a row in all, measured)."""
    engine, uow = ledger_db
    with uow() as u:
        assert u.usage.write_chunk([entry(i) for i in range(20_000, 40_000)], set(), [], [])
        u.commit()
    engine.dispose()
    raw = sqlite3.connect(str(engine.url.database))
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # the measured write's WAL starts empty (no checkpoint within it)
    raw.close()
    chunk = [entry(i) for i in range(5_000)]
    with uow() as u:
        before = written()
        assert u.usage.write_chunk(chunk, set(), [], [])
        u.commit()
        per_row = (written() - before) / len(chunk)
    assert per_row < 1024, f"{per_row:.0f} bytes written a row"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM usage_ledger").scalar() == 25_000


def test_a_chunk_whose_write_fails_part_way_leaves_no_row_and_no_counter_change(ledger_db: Any) -> None:
    """A row the ledger refuses (no number: NOT NULL) in the second packed INSERT of a chunk: the rows of the statement
    before it in the chunk are in the transaction (OR FAIL keeps them, ABORT would undo that statement only), the write
    says False and the unit of work, not committed, rolls all of it back with the counter it set."""
    engine, uow = ledger_db
    key = ("mno", "4917000000001", "2026-11")
    with uow() as u:
        assert u.usage.write_chunk([entry(i) for i in range(10)], set(), [(key, "BN_V", CounterRow(600, 600, "s"), None)], [])
        u.commit()
    chunk = [entry(i) for i in range(10, 3_010)]
    chunk[2_500] = entry(2_510, msisdn=None)
    with uow() as u:
        assert u.usage.write_chunk(chunk, set(), [(key, "BN_V", CounterRow(600, 540, "s"), 600)], []) is False
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM usage_ledger").scalar() == 10
        assert conn.exec_driver_sql("SELECT remaining FROM bundle_counters").fetchall() == [(600,)]
    with uow() as u:   # the same chunk without the refused row: all of it, and the counter
        chunk[2_500] = entry(2_510)
        assert u.usage.write_chunk(chunk, set(), [(key, "BN_V", CounterRow(600, 540, "s"), 600)], [])
        u.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM usage_ledger").scalar() == 3_010
        assert conn.exec_driver_sql("SELECT remaining FROM bundle_counters").fetchall() == [(540,)]


def test_cdr_ids_whose_keys_collide_are_each_stored_found_by_their_own_id_and_a_resent_one_is_a_duplicate(
        ledger_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CDR id given the same narrow key (store.db.ledger_key, 64 bits of BLAKE2b: two ids may share one): the ids
    themselves tell the rows apart in every look-up by id."""
    engine, uow = ledger_db
    monkeypatch.setattr(store.plans, "ledger_key", lambda cdr_id: 42)
    # the keys through that function: the C writer computes the real ones (tests/unit/store/test_sqlite_ledger_params.py)
    monkeypatch.setattr(store.plans, "_copytext", None)
    with uow() as u:
        assert u.usage.write_chunk([entry(1), entry(2, tenant="mvno")], set(), [], [])
        u.commit()
    with uow() as u:   # a third id with the same key is new, not a duplicate of the two
        assert u.usage.write_chunk([entry(3)], set(), [], [])
        u.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT tenant_id, cdr_id, cdr_key FROM usage_ledger ORDER BY cdr_id").fetchall() == [
            ("mno", "k0000001", 42), ("mvno", "k0000002", 42), ("mno", "k0000003", 42)]
    with uow(read_only=True) as u:
        assert sorted(u.usage.ledger_of("mno", ["k0000001", "k0000002", "k0000009"])) == ["k0000001"]
        assert [r[0] for r in u.usage.holdings_of("mno", ["k0000003"])] == ["k0000003"]
        assert u.usage.holdings_of("mvno", ["k0000001", "k0000003"]) == []
    with uow() as u:   # k0000001 sent again without its stored row taken: found, the write refused (a lost race)
        assert u.usage.write_chunk([entry(1, charge_micros=5)], set(), [], []) is False
    with uow() as u:   # taken first, it replaces its own row and no other
        assert [r[0] for r in u.usage.take_holdings("mno", ["k0000001"]) or []] == ["k0000001"]
        assert u.usage.write_chunk([entry(1, charge_micros=5)], set(), [], [])
        u.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT cdr_id, charge_micros FROM usage_ledger ORDER BY cdr_id").fetchall() == [
            ("k0000001", 5), ("k0000002", 1_002), ("k0000003", 1_003)]

