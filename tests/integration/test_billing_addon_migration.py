"""billing_0005: add-on purchases made before it keep working after it (no refund, not cancelled), and are listed
and cancelled; downgrading drops the new columns again, on each database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text

from store.billing import SqlBillingUnitOfWorkFactory
from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc)


def _insert_old(engine: Any, name: str, msisdn: str) -> None:
    """A 7-day purchase ``ao_<name>`` of ``sub_<name>`` written with the columns billing_0004 had."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO billing_addon_purchases (purchase_id, tenant_id, subscriber_id, msisdn, account_id, bundle_id, request_id, "
            "cycle, bill_cycle, tariff_plan, purchase_time, valid_from, valid_until, allowance, unit, fee_micros, currency, "
            "tax_category, charge_id, created_by) VALUES (:pid, 'mno', :sub, :msisdn, 'ACC-9', 'BN_X', 'r-1', "
            "'+000001', '2026-03', 'TP_X', :t0, :t0, :t1, 3600, 'second', 3000000, 'EUR', 'standard', :charge, 'alice')"),
            {"pid": f"ao_{name}", "sub": f"sub_{name}", "msisdn": msisdn, "charge": f"oc_{name}", "t0": T0, "t1": T0 + timedelta(days=7)})


def test_purchases_made_before_the_migration_are_listed_and_cancelled_after_it(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "billing_0004")
    engine = make_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("billing_addon_purchases")}
        assert "cancel_time" not in columns and "refund" not in columns
        _insert_old(engine, "old", "33612000009")
        upgrade(db_url)
        engine.dispose()
        store = SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
        with store(read_only=True) as uow:
            [old] = uow.add_ons.list_for("mno", "sub_old", None, 10)
        assert (old.refund, old.cancel_time, old.refund_micros, old.ends) == ("none", None, 0, T0 + timedelta(days=7))
        assert old.last_bill_cycle == ""      # unknown before it: its use stays on the bill of the cycle it was bought in
        with store() as uow:
            assert uow.add_ons.cancel(replace(old, cancel_time=T0 + timedelta(days=1), cancel_request_id="c-1", cancelled_by="bob"))
            uow.commit()
        with store(read_only=True) as uow:
            again = uow.add_ons.get("ao_old")
        assert again is not None and again.ends == T0 + timedelta(days=1) and again.cancel_request_id == "c-1"
        command.downgrade(alembic_config(db_url), "billing_0004")
        engine.dispose()
        assert "cancel_time" not in {c["name"] for c in inspect(engine).get_columns("billing_addon_purchases")}
    finally:
        upgrade(db_url)
        engine.dispose()


def test_billing_0007_keeps_purchases_made_before_it_one_off_and_drops_its_columns_on_downgrade(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "billing_0006")
    engine = make_engine(db_url)
    try:
        assert "recurrence" not in {c["name"] for c in inspect(engine).get_columns("billing_addon_purchases")}
        _insert_old(engine, "six", "33612000010")
        upgrade(db_url)
        engine.dispose()
        store = SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
        with store(read_only=True) as uow:
            [old] = uow.add_ons.list_for("mno", "sub_six", None, 10)
            assert uow.add_ons.live_monthly("mno", "sub_six", "BN_X", T0) == []
        assert (old.recurrence, old.monthly, old.ends) == ("one_off", False, T0 + timedelta(days=7))
        command.downgrade(alembic_config(db_url), "billing_0006")
        engine.dispose()
        assert "recurrence" not in {c["name"] for c in inspect(engine).get_columns("billing_addon_purchases")}
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM billing_addon_purchases WHERE purchase_id = 'ao_six'"))
        upgrade(db_url)
        engine.dispose()
