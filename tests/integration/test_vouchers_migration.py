"""vouchers_0004: request and reservation ids become per tenant.  Rows written before it are kept, a second tenant
may then use the same id, and downgrading restores the single-column keys (refused while two tenants share an
id), on each database."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from store.db import make_engine
from store.migrate import alembic_config, upgrade

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
LEDGER = ("INSERT INTO voucher_redemptions (request_id, msisdn, serial, batch_id, tenant_id, currency, credited_micros, "
          "balance_micros, valid_until, redeemed_at, transaction_id, voucher_state, kind) VALUES (:rid, :msisdn, 1, 'vb-old', "
          ":tenant, 'EUR', 10000000, 10000000, :t0, :t0, 'rtx_old', 'used', 'redeem')")
HELD = ("INSERT INTO voucher_reservations (reservation_id, msisdn, serial, batch_id, tenant_id, currency, face_value_micros, "
        "validity_extension_days, reserved_at, status) VALUES (:rid, :msisdn, 2, 'vb-old', :tenant, 'EUR', 5000000, 30, :t0, "
        "'reserved')")


def _keys(engine: Engine) -> tuple[list[str], list[str]]:
    look = inspect(engine)
    return (look.get_pk_constraint("voucher_redemptions")["constrained_columns"],
            look.get_pk_constraint("voucher_reservations")["constrained_columns"])


def _rows(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return (conn.execute(text("SELECT request_id, tenant_id, msisdn, credited_micros FROM voucher_redemptions "
                                  "ORDER BY request_id, tenant_id")).all(),
                conn.execute(text("SELECT reservation_id, tenant_id, msisdn, status FROM voucher_reservations "
                                  "ORDER BY reservation_id, tenant_id")).all())


def _insert(engine: Engine, sql: str, rid: str, tenant: str, msisdn: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), {"rid": rid, "tenant": tenant, "msisdn": msisdn, "t0": T0})


def _stored_functions(engine: Engine) -> set[str]:
    if engine.dialect.name != "postgresql":
        return set()
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname IN ('voucher_pin_replay', 'voucher_pin_attempt', "
            "'voucher_reservation_step')"))}


def test_ids_become_per_tenant_with_the_rows_kept_and_the_old_keys_come_back_on_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        new_functions = _stored_functions(engine)
        command.downgrade(alembic_config(db_url), "vouchers_0003")
        engine.dispose()
        assert _keys(engine) == (["request_id"], ["reservation_id"])
        old_functions = _stored_functions(engine)
        _insert(engine, LEDGER, "r-1", "mvno-alpha", "4917000000001")
        _insert(engine, HELD, "h-1", "mvno-alpha", "4917000000001")
        with pytest.raises(IntegrityError):  # the old key: one r-1 in the whole operator
            _insert(engine, LEDGER, "r-1", "mvno-beta", "4917000000002")
        before = _rows(engine)

        upgrade(db_url)
        engine.dispose()
        assert _keys(engine) == (["request_id", "tenant_id"], ["reservation_id", "tenant_id"])
        assert _rows(engine) == before
        assert _stored_functions(engine) == new_functions
        if engine.dialect.name == "postgresql":
            assert "voucher_pin_replay(text,text,text,text,bytea[])" in new_functions - old_functions
            assert "voucher_pin_replay(text,text,text,bytea[])" in old_functions - new_functions
        _insert(engine, LEDGER, "r-1", "mvno-beta", "4917000000002")
        _insert(engine, HELD, "h-1", "mvno-beta", "4917000000002")
        with pytest.raises(IntegrityError):  # still one per tenant
            _insert(engine, HELD, "h-1", "mvno-beta", "4917000000003")
        if engine.dialect.name == "sqlite":  # the ledger trigger was made again with the rebuilt table: it booked the credit
            with engine.connect() as conn:
                assert conn.execute(text("SELECT tenant_id, balance_micros FROM prepaid_balances WHERE msisdn = '4917000000002'")
                                    ).one() == ("mvno-beta", 10000000)

        with pytest.raises(RuntimeError, match="more than one tenant"):
            command.downgrade(alembic_config(db_url), "vouchers_0003")
        engine.dispose()
        assert _keys(engine) == (["request_id", "tenant_id"], ["reservation_id", "tenant_id"])
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM voucher_redemptions WHERE tenant_id = 'mvno-beta'"))
            conn.execute(text("DELETE FROM voucher_reservations WHERE tenant_id = 'mvno-beta'"))
        command.downgrade(alembic_config(db_url), "vouchers_0003")
        engine.dispose()
        assert _keys(engine) == (["request_id"], ["reservation_id"])
        assert _rows(engine) == before
        assert _stored_functions(engine) == old_functions
    finally:
        upgrade(db_url)
        engine.dispose()


def _others_state(engine: Engine) -> tuple[bool, int]:
    """(voucher_batches has others_state, how many of the redemption functions read it)."""
    has = "others_state" in {c["name"] for c in inspect(engine).get_columns("voucher_batches")}
    if engine.dialect.name != "postgresql":
        return has, 0
    with engine.connect() as conn:
        return has, int(conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname IN ('voucher_pin_attempt', "
                                          "'voucher_reservation_step') AND prosrc LIKE '%others_state%'")).scalar_one())


def test_vouchers_0005_adds_the_others_state_and_the_functions_read_it_and_downgrading_takes_both_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert _others_state(engine) == (True, 2 if engine.dialect.name == "postgresql" else 0)
        command.downgrade(alembic_config(db_url), "vouchers_0004")
        engine.dispose()
        assert _others_state(engine) == (False, 0)
        upgrade(db_url)
        engine.dispose()
        assert _others_state(engine) == (True, 2 if engine.dialect.name == "postgresql" else 0)
    finally:
        upgrade(db_url)
        engine.dispose()


def _counting_replays(engine: Engine) -> int:
    """PostgreSQL: whether voucher_pin_attempt counts a replay with another PIN (vouchers_0006); 0 elsewhere."""
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'voucher_pin_attempt' "
                                     "AND prosrc LIKE '%other_pin%'")).scalar_one())


def test_vouchers_0006_counts_replays_with_another_pin_and_downgrading_takes_it_back(db_url: str) -> None:
    engine = make_engine(db_url)
    pg = 1 if engine.dialect.name == "postgresql" else 0
    try:
        assert _counting_replays(engine) == pg
        command.downgrade(alembic_config(db_url), "vouchers_0005")
        engine.dispose()
        assert _counting_replays(engine) == 0
        upgrade(db_url)
        engine.dispose()
        assert _counting_replays(engine) == pg
    finally:
        upgrade(db_url)
        engine.dispose()
