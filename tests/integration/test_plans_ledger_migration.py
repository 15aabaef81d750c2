"""Migration plans_0004 (the usage ledger without its index by tenant and start time) on a ledger with rows, and the
ledger's keyed reads and replace after it (store/plans.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, insert

from engine.rating.usage import LEDGER_FIELDS
from store.db import make_engine
from store.migrate import alembic_config, upgrade
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
    return {ix["name"] for ix in inspect(engine).get_indexes("usage_ledger")}


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
