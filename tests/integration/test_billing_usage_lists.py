"""Frozen CDRs across the migrations that changed how they are kept, on each database: billing_0004 (per-invoice lists
beside one row per CDR) and billing_0008 (one row per invoice and number, ``billing_frozen_usage``): CDRs frozen
before either are found, moved and deleted afterwards, and billing_0008's downgrade gives the rows per CDR back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import BigInteger, String, Text, column, inspect, insert, select, table

from engine.errors import AlreadyExists
from store.billing import SqlBillingUnitOfWorkFactory, billing_frozen_usage
from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.plans import usage_ledger
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import until_lock_waits

pytestmark = pytest.mark.integration
UTC = timezone.utc
T0 = datetime(2026, 2, 1, tzinfo=UTC)

# the tables of the layout before billing_0008, as its migrations wrote them
per_cdr = table("billing_usage", column("tenant_id", String), column("cdr_id", String), column("invoice_id", String),
                column("charge_micros", BigInteger))
lists = table("billing_usage_lists", column("tenant_id", String), column("invoice_id", String), column("cdr_ids", Text))


def _ledger(conn: object, tenant: str, cdr_id: str, msisdn: str, start: datetime, micros: int) -> None:
    conn.execute(insert(usage_ledger).values(  # type: ignore[attr-defined]
        tenant_id=tenant, cdr_id=cdr_id, msisdn=msisdn, cycle="2026-02", currency="EUR", charge_micros=micros, bundles_json="[]",
        start_time=start, service="voice", destination_group="DST_EU", tariff_plan="TP_A", plan_set_version=1, units=60,
        status="rated"))


def _store(engine: object) -> SqlBillingUnitOfWorkFactory:
    return SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))  # type: ignore[arg-type]


def test_frozen_cdrs_of_earlier_layouts_are_kept_by_both_migrations(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "billing_0003")
    engine = make_engine(db_url)
    try:
        assert "billing_usage_lists" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(insert(per_cdr), [
                *({"tenant_id": "mno", "cdr_id": f"c{i:03d}", "invoice_id": "inv_a" if i % 3 else "inv_b", "charge_micros": i * 10}
                  for i in range(30)),
                {"tenant_id": "mvno-alpha", "cdr_id": "c001", "invoice_id": "inv_c", "charge_micros": 7},
            ])
            for i in range(29):    # c029: a CDR the ledger no longer has
                _ledger(conn, "mno", f"c{i:03d}", "33600000001" if i < 15 else "33600000002", T0 + timedelta(hours=i), i * 10)
            _ledger(conn, "mvno-alpha", "c001", "33600000009", T0, 7)
        upgrade(db_url)
        engine.dispose()
        assert not {"billing_usage", "billing_usage_lists"} & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            rows = {(r.tenant_id, r.invoice_id, r.msisdn): (sorted(r.cdr_ids.split("\n")), r.first_start, r.last_start)
                    for r in conn.execute(select(billing_frozen_usage))}
        assert {k: v[0] for k, v in rows.items()} == {
            ("mno", "inv_a", "33600000001"): [f"c{i:03d}" for i in range(15) if i % 3],
            ("mno", "inv_a", "33600000002"): [f"c{i:03d}" for i in range(15, 29) if i % 3],
            ("mno", "inv_a", ""): ["c029"],
            ("mno", "inv_b", "33600000001"): [f"c{i:03d}" for i in range(0, 15, 3)],
            ("mno", "inv_b", "33600000002"): [f"c{i:03d}" for i in range(15, 29, 3)],
            ("mvno-alpha", "inv_c", "33600000009"): ["c001"]}
        first, last = rows[("mno", "inv_b", "33600000002")][1:]
        assert (first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)) == (T0 + timedelta(hours=15), T0 + timedelta(hours=27))
        store = _store(engine)
        with store(read_only=True) as uow:
            assert sorted(uow.frozen_usage("inv_b")) == [(f"c{i:03d}", i * 10) for i in range(0, 30, 3)]
            assert uow.frozen_usage("inv_c") == [("c001", 7)]
            # what is frozen is not read as unbilled usage again
            assert {u.cdr_id for u in uow.unbilled_usage("mno", ["33600000001", "33600000002"], T0, T0 + timedelta(days=2))} == set()
        with store() as uow:                                   # a re-bill moves some CDRs to its new invoice
            uow.move_frozen_usage("inv_b", "inv_d", [("c000", 1), ("c003", 2), ("c018", 3)])
            uow.commit()
        with store(read_only=True) as uow:
            assert sorted(uow.frozen_usage("inv_d")) == [("c000", 1), ("c003", 2), ("c018", 3)]
            assert sorted(uow.frozen_usage("inv_b")) == sorted((f"c{i:03d}", i * 10) for i in range(6, 30, 3) if i != 18)
            assert uow.frozen_usage("inv_c") == [("c001", 7)]          # the other tenant's c001 is not moved
        # billing_0008 down: one row per CDR and a list per invoice again, then up: the same frozen CDRs
        command.downgrade(alembic_config(db_url), "billing_0007")
        engine.dispose()
        with engine.connect() as conn:
            assert sorted((r.tenant_id, r.cdr_id, r.invoice_id, r.charge_micros) for r in conn.execute(select(per_cdr))) == sorted(
                [("mno", f"c{i:03d}", "inv_a", i * 10) for i in range(30) if i % 3]
                + [("mno", f"c{i:03d}", "inv_b", i * 10) for i in range(6, 30, 3) if i != 18]
                + [("mno", "c000", "inv_d", 1), ("mno", "c003", "inv_d", 2), ("mno", "c018", "inv_d", 3), ("mvno-alpha", "c001", "inv_c", 7)])
            named = sorted(c for (ids,) in conn.execute(select(lists.c.cdr_ids).where(lists.c.invoice_id == "inv_d")) for c in ids.split("\n"))
            assert named == ["c000", "c003", "c018"]
        upgrade(db_url)
        engine.dispose()
        with store(read_only=True) as uow:
            assert sorted(uow.frozen_usage("inv_d")) == [("c000", 1), ("c003", 2), ("c018", 3)]
            assert len(uow.frozen_usage("inv_a")) == 20
    finally:
        engine.dispose()


def test_a_cdr_is_frozen_once_and_frozen_cdrs_are_not_read_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for i in range(6):
                _ledger(conn, "mno", f"once-{i}", "33600000100", T0 + timedelta(days=i), 100 + i)
            _ledger(conn, "mvno-alpha", "once-0", "33600000100", T0, 5)      # the same id and number in another tenant
        store = _store(engine)
        with store() as uow:
            uow.freeze_usage("mno", [("once-0", "inv_1", 100), ("once-1", "inv_1", 101)])   # number and start from the ledger
            uow.commit()
        for rows in ([("once-1", "inv_2", 101)], [("once-2", "inv_2", 102), ("once-2", "inv_3", 102)]):
            with store() as uow, pytest.raises(AlreadyExists):
                uow.freeze_usage("mno", rows)
        with store() as uow:
            uow.freeze_usage("mvno-alpha", [("once-0", "inv_9", 5)])         # another tenant's CDR of that id
            uow.commit()
        with store(read_only=True) as uow:
            unbilled = uow.unbilled_usage("mno", ["33600000100"], T0 - timedelta(days=1), T0 + timedelta(days=10))
            assert sorted(u.cdr_id for u in unbilled) == [f"once-{i}" for i in range(2, 6)]
            blocks = uow.usage_blocks("mno", ["33600000100"], T0 - timedelta(days=1), T0 + timedelta(days=10))
            assert [g.cdrs for b in blocks for g in b.groups] == [4]
        with store() as uow:                                  # a block freezes its CDRs, and a second time refuses them
            uow.freeze_blocks("mno", [("inv_2", blocks[0].frozen)])
            uow.commit()
        with store() as uow, pytest.raises(AlreadyExists):
            uow.freeze_blocks("mno", [("inv_3", blocks[0].frozen)])
        with store(read_only=True) as uow:
            assert uow.unbilled_usage("mno", ["33600000100"], T0 - timedelta(days=1), T0 + timedelta(days=10)) == []
            assert sorted(uow.frozen_usage("inv_2")) == [(f"once-{i}", 100 + i) for i in range(2, 6)]
    finally:
        engine.dispose()


def test_long_lists_are_toasted_with_lz4_on_postgresql(db_url: str) -> None:
    # a bill run's frozen rows (200 CDR ids an invoice) are stored with LZ4 where the server has it: the default pglz
    # went through the whole list of random ids before giving up; the CDRs are found through the row as before
    if not db_url.startswith("postgresql"):
        pytest.skip("TOAST compression is PostgreSQL's")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'").scalar():
                pytest.skip("this PostgreSQL is built without lz4")
        store = _store(engine)
        rows = [(f"cdr-{i:06d}-long-enough-to-be-toasted", "inv_lz4", i, "33600000200", T0) for i in range(400)]
        with store() as uow:
            uow.freeze_usage("mno", rows)
            uow.commit()
        with engine.connect() as conn:
            how = conn.exec_driver_sql("SELECT pg_column_compression(cdr_ids) FROM billing_frozen_usage WHERE invoice_id = 'inv_lz4'").scalar()
            assert how == "lz4"
            assert conn.exec_driver_sql("SHOW default_toast_compression").scalar() == "pglz"   # only that transaction's
        with store(read_only=True) as uow:
            assert uow.frozen_usage("inv_lz4") == [(c, m) for c, _i, m, _n, _s in rows]
    finally:
        engine.dispose()


def test_two_freezes_of_the_same_cdr_at_once_leave_it_on_one_bill_on_postgresql(db_url: str) -> None:
    # the second freeze waits for the first one's lock on the number, then finds the CDR frozen: without the lock both
    # would pass the check before either commits (SQLite has one writer: the second waits for the first's commit)
    if not db_url.startswith("postgresql"):
        pytest.skip("the per-number lock is PostgreSQL's")
    import threading

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _ledger(conn, "mno", "race-1", "33600000300", T0, 10)
        store = _store(engine)
        outcome: list[str] = []

        def second() -> None:
            with store() as uow:
                try:
                    uow.freeze_usage("mno", [("race-1", "inv_race_b", 10, "33600000300", T0)])
                    uow.commit()
                    outcome.append("frozen twice")
                except AlreadyExists:
                    outcome.append("refused")

        with store() as uow:
            uow.freeze_usage("mno", [("race-1", "inv_race_a", 10, "33600000300", T0)])
            thread = threading.Thread(target=second)
            thread.start()
            # until the second freeze waits for this transaction's lock on the number (or has ended: then it did not wait)
            waiting = until_lock_waits(engine, 1, lambda: int(not thread.is_alive()))
            assert waiting == 1 and not outcome, f"the second freeze waits for the lock on the number: {waiting} waiting, {outcome}"
            uow.commit()
        thread.join(10)
        assert outcome == ["refused"]
        with store(read_only=True) as uow:
            assert uow.frozen_usage("inv_race_a") == [("race-1", 10)] and uow.frozen_usage("inv_race_b") == []
    finally:
        engine.dispose()


def test_frozen_cdrs_are_found_whatever_the_zone_of_the_period(db_url: str) -> None:
    # a bill run reads from the account's local midnight: SQLite keeps a time's wall clock without its zone, so a
    # period starting in Paris half an hour before a frozen CDR must still find the row that froze it
    from zoneinfo import ZoneInfo

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            _ledger(conn, "mno", "zone-1", "33600000400", T0, 10)
        store = _store(engine)
        with store() as uow:
            uow.freeze_usage("mno", [("zone-1", "inv_zone", 10)])
            uow.commit()
        since = (T0 - timedelta(minutes=30)).astimezone(ZoneInfo("Europe/Paris"))
        with store(read_only=True) as uow:
            assert uow.unbilled_usage("mno", ["33600000400"], since, since + timedelta(days=1)) == []
            assert uow.usage_blocks("mno", ["33600000400"], since, since + timedelta(days=1)) == []
    finally:
        engine.dispose()
