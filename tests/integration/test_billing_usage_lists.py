"""billing_0004: frozen CDRs stored before it get their per-invoice lists (the invoice index they were found by goes),
and are found, moved and deleted through the lists afterwards, on each database."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, insert, select

from store.billing import SqlBillingUnitOfWorkFactory, billing_usage, billing_usage_lists
from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.integration


def test_frozen_cdrs_of_earlier_runs_are_listed_per_invoice_by_the_migration(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "billing_0003")
    engine = make_engine(db_url)
    try:
        assert "billing_usage_lists" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(insert(billing_usage), [
                *({"tenant_id": "mno", "cdr_id": f"c{i:03d}", "invoice_id": "inv_a" if i % 3 else "inv_b", "charge_micros": i * 10}
                  for i in range(30)),
                {"tenant_id": "mvno-alpha", "cdr_id": "c001", "invoice_id": "inv_c", "charge_micros": 7},
            ])
        upgrade(db_url)
        engine.dispose()
        names = {ix["name"] for ix in inspect(engine).get_indexes("billing_usage")}
        assert "ix_billing_usage_invoice" not in names
        with engine.connect() as conn:
            lists = {(r.tenant_id, r.invoice_id): sorted(r.cdr_ids.split("\n")) for r in conn.execute(select(billing_usage_lists))}
        assert lists == {("mno", "inv_a"): [f"c{i:03d}" for i in range(30) if i % 3],
                         ("mno", "inv_b"): [f"c{i:03d}" for i in range(30) if not i % 3],
                         ("mvno-alpha", "inv_c"): ["c001"]}
        store = SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
        with store(read_only=True) as uow:
            assert sorted(uow.frozen_usage("inv_b")) == [(f"c{i:03d}", i * 10) for i in range(0, 30, 3)]
            assert uow.frozen_usage("inv_c") == [("c001", 7)]
        with store() as uow:                                   # a re-bill moves some CDRs to its new invoice
            uow.move_frozen_usage("inv_b", "inv_d", [("c000", 1), ("c003", 2)])
            uow.commit()
        with store(read_only=True) as uow:
            assert sorted(uow.frozen_usage("inv_d")) == [("c000", 1), ("c003", 2)]
            assert sorted(uow.frozen_usage("inv_b")) == [(f"c{i:03d}", i * 10) for i in range(6, 30, 3)]
            assert uow.frozen_usage("inv_c") == [("c001", 7)]          # the other tenant's c001 is not moved
    finally:
        engine.dispose()


def test_long_lists_are_toasted_with_lz4_on_postgresql(db_url: str) -> None:
    # a bill run's lists (200 CDR ids an invoice) are stored with LZ4 where the server has it: the default pglz went
    # through the whole list of random ids before giving up; the CDRs are found through the list as before
    if not db_url.startswith("postgresql"):
        pytest.skip("TOAST compression is PostgreSQL's")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").scalar():
                pytest.skip("this PostgreSQL is built without lz4")
        store = SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
        rows = [(f"cdr-{i:06d}-long-enough-to-be-toasted", "inv_lz4", i) for i in range(400)]
        with store() as uow:
            uow.freeze_usage("mno", rows)
            uow.commit()
        with engine.connect() as conn:
            how = conn.exec_driver_sql("SELECT pg_column_compression(cdr_ids) FROM billing_usage_lists WHERE invoice_id = 'inv_lz4'").scalar()
            assert how == "lz4"
            assert conn.exec_driver_sql("SHOW default_toast_compression").scalar() == "pglz"   # only that transaction's
        with store(read_only=True) as uow:
            assert uow.frozen_usage("inv_lz4") == [(c, m) for c, _i, m in rows]
    finally:
        engine.dispose()
