"""The PostgreSQL ledger's write path for new rows (store/plans.py, UsageRepo.write_chunk): a chunk's rows are copied in
subscriber order, and migration plans_0009 orders the primary key (cdr_id, tenant_id); rows of two tenants that
share a CDR id are kept apart and found by id before, after and on the way back.  SQLite's ledger is the same
before and after (it has no primary key since plans_0005)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command

from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.plans import SqlPlanUnitOfWorkFactory
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def entry(tenant: str, cdr: str, msisdn: str, minute: int, charge: int = 1_000) -> tuple[Any, ...]:
    return ledger_entry(tenant_id=tenant, cdr_id=cdr, msisdn=msisdn, charge_micros=charge, bundles_json="[]",
                        start_time=T0 + timedelta(minutes=minute))


@pytest.fixture()
def store(db_url: str) -> Any:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM usage_ledger")
    yield engine, SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    engine.dispose()


def key_columns(engine: Any) -> list[str] | None:
    """The PostgreSQL ledger's primary key columns in their order (None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql(
            "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = 'usage_ledger'::regclass AND i.indisprimary ORDER BY k.n")]


def test_a_chunks_new_rows_are_stored_in_subscriber_order_keeping_each_ones_arrival_order(store: Any) -> None:
    engine, uow = store
    # arrival order: start time, the subscribers interleaved (as a stream's CDRs come)
    numbers = ["4917000000009", "4917000000001", "4917000000005"]
    rows = [entry("mno", f"c{i:03d}", numbers[i % 3], i) for i in range(30)]
    with uow() as u:
        assert u.usage.write_chunk(rows, set(), [], [])
        u.commit()
    address = "ctid" if engine.dialect.name == "postgresql" else "rowid"
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(f"SELECT msisdn, cdr_id FROM usage_ledger ORDER BY {address}").fetchall()
    assert sorted(stored) == sorted((r[2], r[1]) for r in rows)
    if engine.dialect.name == "postgresql":   # the heap in the order the rows were copied: by number, then as they came
        assert [tuple(r) for r in stored] == sorted(((r[2], r[1]) for r in rows), key=lambda x: x[0])
    else:   # SQLite inserts in arrival order
        assert [r[1] for r in stored] == [r[1] for r in rows]


def test_plans_0009_orders_the_key_by_cdr_id_and_keeps_the_rows_down_and_up(store: Any, db_url: str) -> None:
    engine, uow = store
    pg = engine.dialect.name == "postgresql"
    assert key_columns(engine) == (["cdr_id", "tenant_id"] if pg else None)
    command.downgrade(alembic_config(db_url), "plans_0007")
    engine.dispose()
    try:
        assert key_columns(engine) == (["tenant_id", "cdr_id"] if pg else None)
        with uow() as u:   # one CDR id in two tenants
            assert u.usage.write_chunk([entry("mno", "c001", "4917000000001", 1, 11), entry("mno", "c002", "4917000000002", 2, 12),
                                        entry("mvno-alpha", "c001", "4917000000003", 3, 21)], set(), [], [])
            u.commit()
        upgrade(db_url)
        engine.dispose()
        assert key_columns(engine) == (["cdr_id", "tenant_id"] if pg else None)
        with uow() as u:
            assert u.usage.write_chunk([entry("mvno-alpha", "c002", "4917000000003", 4, 22)], set(), [], [])
            u.commit()
        with uow() as u:   # a second row of a CDR that has one in its tenant: refused by the key
            assert not u.usage.write_chunk([entry("mno", "c001", "4917000000001", 5, 99)], set(), [], [])
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["c001", "c002", "c003"]).items()} == {
                "c001": 11, "c002": 12}
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mvno-alpha", ["c001", "c002"]).items()} == {
                "c001": 21, "c002": 22}
            assert sorted(r[0] for r in u.usage.holdings_of("mvno-alpha", ["c001", "c002", "c009"])) == ["c001", "c002"]
        with uow() as u:   # taken and rewritten by its address, as re-rating writes
            assert sorted(r[0] for r in u.usage.take_holdings("mno", ["c002"]) or []) == ["c002"]
            assert u.usage.write_chunk([entry("mno", "c002", "4917000000002", 2, 13)], set(), [], [])
            u.commit()
        command.downgrade(alembic_config(db_url), "plans_0007")
        engine.dispose()
        assert key_columns(engine) == (["tenant_id", "cdr_id"] if pg else None)
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["c001", "c002"]).items()} == {"c001": 11, "c002": 13}
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mvno-alpha", ["c001", "c002"]).items()} == {
                "c001": 21, "c002": 22}
    finally:
        upgrade(db_url)
        engine.dispose()
