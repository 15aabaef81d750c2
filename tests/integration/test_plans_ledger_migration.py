"""Migration plans_0004 (the usage ledger without its index by tenant and start time) on a ledger with rows, and the
ledger's keyed reads and replace after it (store/plans.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, inspect, insert

from engine.rating.usage import LEDGER_FIELDS
from store.db import make_engine
from store.migrate import alembic_config, missing_migrations, upgrade
from store.plans import SqlPlanUnitOfWorkFactory, usage_ledger
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def row(tenant: str, cdr: str, charge: int, minute: int = 0) -> dict[str, Any]:
    return dict(tenant_id=tenant, cdr_id=cdr, msisdn="4917000000001", cycle="2026-11", currency="EUR", charge_micros=charge,
                bundles_json=json.dumps([["BN_V", 60]]), start_time=T0 + timedelta(minutes=minute), service="voice",
                destination_group="DST_EU", zone="Z1", units=60, plan_set_version=1, tariff_plan="TP_A", plan_version=2,
                status="rated", reason="")


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
            conn.execute(insert(usage_ledger), [*(row("mno", f"c{i:03d}", 1_000 + i, i) for i in range(40)),
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
            new = tuple({**row("mno", "c001", 5), "start_time": T0}[f] for f in LEDGER_FIELDS)
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
    """Whether the ledger has its primary key on (tenant_id, cdr_id) (PostgreSQL always; SQLite before plans_0005)."""
    return inspect(engine).get_pk_constraint("usage_ledger")["constrained_columns"] == ["tenant_id", "cdr_id"]


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
            conn.execute(delete(usage_ledger))   # the module's database: what the test before left
            conn.execute(insert(usage_ledger), [*(row("mno", f"c{i:03d}", 1_000 + i, i) for i in range(40)),
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
        new = tuple({**row("mno", "c001", 5), "start_time": T0}[f] for f in LEDGER_FIELDS)
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
