"""Migration plans_0004 (the usage ledger without its index by tenant and start time) on a ledger with rows, and the
ledger's keyed reads and replace after it (store/plans.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import column, delete, inspect, insert, table

from engine.rating.usage import LEDGER_FIELDS
from store.db import ledger_key, make_engine
from store.migrate import alembic_config, missing_migrations, upgrade
from store.plans import SqlPlanUnitOfWorkFactory, usage_ledger
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
# the ledger's columns before plans_0006 (its look-up key column): rows written at an earlier revision
ledger_before_0006 = table("usage_ledger", *(column(name, usage_ledger.c[name].type) for name in LEDGER_FIELDS))


def row(tenant: str, cdr: str, charge: int, minute: int = 0) -> dict[str, Any]:
    return dict(zip(LEDGER_FIELDS, ledger_entry(tenant_id=tenant, cdr_id=cdr, charge_micros=charge,
                                                start_time=T0 + timedelta(minutes=minute))))


def indexes(engine: Any) -> set[str]:
    """The ledger's index names, from the catalogue (SQLAlchemy does not reflect SQLite's index on an expression)."""
    sql = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_ledger' AND sql IS NOT NULL"
           if engine.dialect.name == "sqlite" else "SELECT indexname FROM pg_indexes WHERE tablename = 'usage_ledger'")
    with engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql(sql)} - {"usage_ledger_pkey"}


def test_the_ledger_keeps_its_rows_through_plans_0004_and_back(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "plans_0003")
    engine = make_engine(db_url)
    try:
        assert "ix_usage_ledger_tenant_start" in indexes(engine)
        with engine.begin() as conn:
            conn.execute(insert(ledger_before_0006), [*(row("mno", f"c{i:03d}", 1_000 + i, i) for i in range(40)),
                                                      row("mvno-alpha", "c001", 7)])
        upgrade(db_url)
        engine.dispose()
        assert "ix_usage_ledger_tenant_start" not in indexes(engine)
        assert "ix_usage_ledger_msisdn_start" in indexes(engine)
        uow = SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
        with uow(read_only=True) as u:
            held = sorted(u.usage.holdings_of("mno", ["c001", "c039", "nope"]))
            assert held == [("c001", "4917000000001", "2026-11", "EUR", 1_001, '[["BN_V", 60]]'),
                            ("c039", "4917000000001", "2026-11", "EUR", 1_039, '[["BN_V", 60]]')]
            assert u.usage.ledger_of("mvno-alpha", ["c001", "c002"])["c001"].charge_micros == 7
            assert [e.cdr_id for e in u.usage.rated_usage("mno", T0 + timedelta(minutes=10), T0 + timedelta(minutes=13))] == [
                "c010", "c011", "c012"]
        with uow() as u:   # a replace deletes the tenant's old rows by key, never the other tenant's row of the same id
            new = ledger_entry(cdr_id="c001", charge_micros=5, start_time=T0)
            assert u.usage.write_chunk([new], {("mno", "c001"), ("mno", "c002")}, [], [])
            u.commit()
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["c001", "c002", "c003"]).items()} == {
                "c001": 5, "c003": 1_003}
            assert u.usage.ledger_of("mvno-alpha", ["c001"])["c001"].charge_micros == 7
        command.downgrade(alembic_config(db_url), "plans_0003")
        engine.dispose()
        assert "ix_usage_ledger_tenant_start" in indexes(engine)
        upgrade(db_url)
    finally:
        engine.dispose()


def keyed_by_cdr(engine: Any) -> bool:
    """Whether the ledger has its primary key on the tenant and CDR id (PostgreSQL always, as (cdr_id, tenant_id) since
    plans_0009; SQLite before plans_0005)."""
    return sorted(inspect(engine).get_pk_constraint("usage_ledger")["constrained_columns"]) == ["cdr_id", "tenant_id"]


def test_the_ledger_keeps_its_rows_through_plans_0005_and_back(db_url: str) -> None:
    """plans_0005 rebuilds the SQLite ledger in insertion order, found by CDR id through a narrow key; PostgreSQL keeps
    its primary key.  Rows of two tenants (one CDR id in both) survive both ways, and reads, replaces and the refusal
    of a second row of one CDR behave the same before and after."""
    sqlite = db_url.startswith("sqlite")
    command.downgrade(alembic_config(db_url), "plans_0004")
    engine = make_engine(db_url)
    uow = SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    try:
        assert keyed_by_cdr(engine)
        with engine.begin() as conn:
            conn.execute(delete(ledger_before_0006))   # the module's database: what the test before left
            conn.execute(insert(ledger_before_0006), [*(row("mno", f"c{i:03d}", 1_000 + i, i) for i in range(40)),
                                                      row("mvno-alpha", "c001", 7), row("mvno-alpha", "zz", 8)])
        upgrade(db_url)
        engine.dispose()
        assert keyed_by_cdr(engine) is not sqlite
        assert ("ix_usage_ledger_cdr_key" in indexes(engine)) is sqlite
        assert "ix_usage_ledger_msisdn_start" in indexes(engine)
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["c001", "c039", "zz", "nope"]).items()} == {
                "c001": 1_001, "c039": 1_039}
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mvno-alpha", ["c001", "c039", "zz"]).items()} == {
                "c001": 7, "zz": 8}
            assert [e.cdr_id for e in u.usage.rated_usage("mno", T0 + timedelta(minutes=10), T0 + timedelta(minutes=12))] == [
                "c010", "c011"]
        new = ledger_entry(cdr_id="c001", charge_micros=5, start_time=T0)
        with uow() as u:   # a CDR with a row already, not replaced: refused (a lost race), nothing written
            assert not u.usage.write_chunk([new], set(), [], [])
        with uow() as u:   # one CDR twice in a chunk: refused as well
            assert not u.usage.write_chunk([new, new], {("mno", "c001")}, [], [])
        with uow() as u:   # a replace deletes the tenant's old row by id, never the other tenant's row of the same id
            assert u.usage.write_chunk([new], {("mno", "c001")}, [], [])
            u.commit()
        with uow(read_only=True) as u:
            assert u.usage.ledger_of("mno", ["c001"])["c001"].charge_micros == 5
            assert u.usage.ledger_of("mvno-alpha", ["c001"])["c001"].charge_micros == 7
        command.downgrade(alembic_config(db_url), "plans_0004")
        engine.dispose()
        assert keyed_by_cdr(engine) and "ix_usage_ledger_cdr_key" not in indexes(engine)
        with engine.connect() as conn:   # the code reads the ledger of the head revision: plain SQL here
            assert {tuple(r) for r in conn.exec_driver_sql(
                "SELECT tenant_id, cdr_id, charge_micros FROM usage_ledger WHERE cdr_id IN ('c001', 'c002', 'zz')")} == {
                ("mno", "c001", 5), ("mno", "c002", 1_002), ("mvno-alpha", "c001", 7), ("mvno-alpha", "zz", 8)}
            assert conn.exec_driver_sql("SELECT count(*) FROM usage_ledger").scalar() == 42
        upgrade(db_url)
    finally:
        engine.dispose()


def test_a_sqlite_ledger_restored_without_its_key_index_is_reported_and_mended(db_url: str) -> None:
    """A `.dump` restored by a shell that lacks rulebill_cdr_key has every table and the revision table but not the
    ledger's key index: the database counts as not migrated (so `rulebill serve` refuses it) until `upgrade`
    (`rulebill db upgrade`) builds the index again; look-ups by CDR id then work as before."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's ledger is found by its primary key")
    upgrade(db_url)
    engine = make_engine(db_url)
    uow = SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    try:
        with engine.begin() as conn:
            conn.execute(delete(usage_ledger))
            conn.execute(insert(usage_ledger), [row("mno", "r1", 11), row("mno", "r2", 12)])
            conn.exec_driver_sql("DROP INDEX ix_usage_ledger_cdr_key")
        assert missing_migrations(db_url) == {"plans_0005 (ix_usage_ledger_cdr_key)"}
        upgrade(db_url)
        assert missing_migrations(db_url) == set()
        engine.dispose()
        assert "ix_usage_ledger_cdr_key" in indexes(engine)
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["r1", "r2", "r3"]).items()} == {"r1": 11, "r2": 12}
    finally:
        engine.dispose()


def key_index_sql(engine: Any) -> str:
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_usage_ledger_cdr_key'").scalar())


def key_collations(engine: Any) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT column_name, collation_name FROM information_schema.columns WHERE table_name = "
                                         "'usage_ledger' AND column_name IN ('tenant_id', 'cdr_id', 'msisdn')").fetchall())


def test_the_ledger_keeps_its_rows_through_plans_0006_and_back(db_url: str) -> None:
    """plans_0006 makes the SQLite ledger's look-up key a column (filled for the rows there are) indexed in place of the
    function; PostgreSQL gains the column, NULL.  Rows of two tenants (one CDR id in both) are found by id after it,
    rows written after it by the chunk's write and by SQLAlchemy alike, and again after the way back."""
    sqlite = db_url.startswith("sqlite")
    command.downgrade(alembic_config(db_url), "plans_0005")
    engine = make_engine(db_url)
    uow = SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    try:
        with engine.begin() as conn:
            conn.execute(delete(ledger_before_0006))
            conn.execute(insert(ledger_before_0006), [*(row("mno", f"c{i:03d}", 1_000 + i, i) for i in range(40)),
                                                      row("mvno-alpha", "c001", 7)])
        if sqlite:
            assert "rulebill_cdr_key(cdr_id)" in key_index_sql(engine)
        upgrade(db_url)
        engine.dispose()
        with engine.connect() as conn:
            keys: dict[str, int | None] = dict(
                conn.exec_driver_sql("SELECT tenant_id || '/' || cdr_id, cdr_key FROM usage_ledger").fetchall())
        assert keys["mno/c007"] == (ledger_key("c007") if sqlite else None)
        assert keys["mvno-alpha/c001"] == (ledger_key("c001") if sqlite else None)
        if sqlite:
            assert key_index_sql(engine).endswith("(cdr_key)")
        else:   # the keys compare bytewise
            assert key_collations(engine) == {"tenant_id": "C", "cdr_id": "C", "msisdn": "C"}
        new = ledger_entry(cdr_id="n1", charge_micros=5, start_time=T0)
        with uow() as u:
            assert u.usage.write_chunk([new], set(), [], [])
            u.commit()
        with engine.begin() as conn:   # through SQLAlchemy: the column's default writes the key
            conn.execute(insert(usage_ledger), [row("mvno-alpha", "n2", 9)])
        with uow(read_only=True) as u:
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mno", ["c001", "c039", "n1", "n2"]).items()} == {
                "c001": 1_001, "c039": 1_039, "n1": 5}
            assert {k: e.charge_micros for k, e in u.usage.ledger_of("mvno-alpha", ["c001", "n1", "n2"]).items()} == {
                "c001": 7, "n2": 9}
        with uow() as u:   # taken and written again in one transaction: found by the key written with it
            assert sorted(r[0] for r in u.usage.take_holdings("mno", ["c001", "n1"]) or []) == ["c001", "n1"]
            assert u.usage.write_chunk([new], set(), [], [])
            if sqlite:   # written again in the same transaction: refused (on PostgreSQL the key's refusal aborts it)
                assert not u.usage.write_chunk([new], set(), [], [])
            u.commit()
        with uow() as u:   # a second row of a CDR that has one: refused
            assert not u.usage.write_chunk([new], set(), [], [])
        with uow() as u:   # ... also beside CDRs whose rows the same transaction took out (those need no second look)
            assert sorted(r[0] for r in u.usage.take_holdings("mno", ["n1"]) or []) == ["n1"]
            assert not u.usage.write_chunk([new, ledger_entry(cdr_id="c002", charge_micros=5, start_time=T0)],
                                           set(), [], [])
        command.downgrade(alembic_config(db_url), "plans_0005")
        engine.dispose()
        with engine.connect() as conn:
            assert "cdr_key" not in {c["name"] for c in inspect(conn).get_columns("usage_ledger")}
            # 41 rows, n1 and n2 (c001 taken above and not written again stays: the chunk's write replaces what it writes)
            assert conn.exec_driver_sql("SELECT count(*) FROM usage_ledger").scalar() == 43
        if not sqlite:
            assert key_collations(engine) == {"tenant_id": None, "cdr_id": None, "msisdn": None}
        if sqlite:
            assert "rulebill_cdr_key(cdr_id)" in key_index_sql(engine)
            with engine.connect() as conn:   # the function's index finds the rows written while the column was there
                found = conn.exec_driver_sql("SELECT cdr_id FROM usage_ledger INDEXED BY ix_usage_ledger_cdr_key "
                                             "WHERE rulebill_cdr_key(cdr_id) IN (?, ?)", (ledger_key("n1"), ledger_key("n2"))).fetchall()
            assert sorted(r[0] for r in found) == ["n1", "n2"]
        upgrade(db_url)
    finally:
        engine.dispose()
