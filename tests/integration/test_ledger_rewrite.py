"""A chunk's ledger write replaces only the rows that changed (store/plans.py, UsageRepo.take_holdings and write_chunk):
a row whose new value is the one stored is not written at all, a changed row is rewritten in place (PostgreSQL: an
update by ctid, heap-only on a ledger page with room, migration plans_0007), and the ledger comes out as a delete of
the old rows and an insert of the new ones leaves it.  On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.rating.usage import LEDGER_FIELDS
from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.plans import SqlPlanUnitOfWorkFactory
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
COLUMNS = ", ".join(LEDGER_FIELDS)


def entry(tenant: str, i: int, **changes: Any) -> tuple[Any, ...]:
    """A ledger row (LEDGER_FIELDS order) of CDR ``c<i>``."""
    return ledger_entry(**{"tenant_id": tenant, "cdr_id": f"c{i:03d}", "msisdn": f"49170000{i % 3:05d}", "start_time": T0 + timedelta(minutes=i),
                            "charge_micros": 1_000 + i, **changes})


# what re-rating may change of a row (every column the ledger keeps beside the CDR's own), and more
CHANGES: dict[str, Any] = {
    "charge": dict(charge_micros=7), "bundles": dict(bundles_json="[]"), "version": dict(plan_set_version=2),
    "unrated": dict(status="unrated", reason="no_tariff: none", charge_micros=0, currency=""), "zone": dict(zone=None),
    "plan": dict(tariff_plan="TP_B", plan_version=1), "cycle": dict(cycle="2026-10"), "units": dict(units=61),
    "group": dict(destination_group="DST_WORLD"),
    # not what re-rating changes (the CDR's own), but a row sent again may: an indexed column changed, not heap-only
    "number": dict(msisdn="4917099999999"), "start": dict(start_time=T0 - timedelta(days=1)),
}


@pytest.fixture(scope="module")
def store(db_url: str) -> Any:
    engine = make_engine(db_url)
    yield engine, SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    engine.dispose()


def ledger(engine: Any, tenant: str) -> dict[str, tuple[Any, ...]]:
    """The tenant's rows by CDR id: (physical address, the row's columns after tenant_id)."""
    address = "ctid::text" if engine.dialect.name == "postgresql" else "rowid"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {address}, {COLUMNS} FROM usage_ledger WHERE tenant_id = '{tenant}'").fetchall()
    return {r[2]: (r[0], tuple(r[2:])) for r in rows}


def clear(engine: Any) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM usage_ledger")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["same", "new", *CHANGES]), min_size=1, max_size=25), st.integers(0, 5))
def test_a_chunk_rewrites_only_the_rows_that_changed_and_leaves_what_delete_and_insert_leave(
        store: Any, kinds: list[str], others: int) -> None:
    """Tenant ``a`` by take and write (rows compared), tenant ``b`` the same chunk by delete and insert (``replaced``):
    the two ledgers are equal; ``a``'s unchanged rows are where they were (not written), its changed rows are not."""
    engine, uow = store
    clear(engine)
    stored = [i for i, k in enumerate(kinds) if k != "new"] + list(range(100, 100 + others))   # others: not in the chunk
    with uow() as u:
        assert u.usage.write_chunk([entry(t, i) for t in "ab" for i in stored], set(), [], [])
        u.commit()
    before = ledger(engine, "a")
    chunk = {t: [entry(t, i, **CHANGES.get(k, {})) for i, k in enumerate(kinds)] for t in "ab"}
    with uow() as u:
        held = u.usage.take_holdings("a", [e[1] for e in chunk["a"]])
        assert sorted(h[0] for h in held or []) == sorted(f"c{i:03d}" for i, k in enumerate(kinds) if k != "new")
        assert u.usage.write_chunk(chunk["a"], set(), [], [])
        u.commit()
    with uow() as u:
        assert u.usage.write_chunk(chunk["b"], {("b", f"c{i:03d}") for i, k in enumerate(kinds) if k != "new"}, [], [])
        u.commit()
    after, reference = ledger(engine, "a"), ledger(engine, "b")
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in reference.items()}
    assert len(after) == len(kinds) + others
    for i, kind in enumerate(kinds):
        cdr = f"c{i:03d}"
        if kind == "same":
            assert after[cdr][0] == before[cdr][0], f"{cdr} unchanged but written"
        elif kind != "new":
            assert after[cdr][0] != before[cdr][0], f"{cdr} changed but not written"
    for i in range(100, 100 + others):
        assert after[f"c{i:03d}"] == before[f"c{i:03d}"]


def postgres_with(store: Any, rows: int, why: str) -> tuple[Any, Any]:
    """The store's engine and unit of work factory, its ledger holding tenant ``a``'s first ``rows`` CDRs (PostgreSQL
    only: ``why`` skips the test on SQLite)."""
    engine, uow = store
    if engine.dialect.name != "postgresql":
        pytest.skip(why)
    clear(engine)
    with uow() as u:
        assert u.usage.write_chunk([entry("a", i) for i in range(rows)], set(), [], [])
        u.commit()
    return engine, uow


def test_a_changed_row_is_rewritten_in_place_without_new_index_entries(store: Any) -> None:
    """PostgreSQL: of a chunk's rows replacing stored ones, those that differ are updated heap-only on pages filled to
    plans_0007's fillfactor (the transaction's own count of HOT updates), those equal to the stored one not at all, and
    rows of CDRs that had none are inserted beside them."""
    engine, uow = postgres_with(store, 200, "PostgreSQL's heap-only updates")
    with uow() as u:
        cur = u.usage._cursor()[1]

        def counts() -> list[int]:   # this session's counts not yet reported (earlier transactions' included)
            cur.execute("SELECT pg_stat_get_xact_tuples_updated('usage_ledger'::regclass), "
                        "pg_stat_get_xact_tuples_hot_updated('usage_ledger'::regclass), "
                        "pg_stat_get_xact_tuples_inserted('usage_ledger'::regclass), "
                        "pg_stat_get_xact_tuples_deleted('usage_ledger'::regclass)")
            return list(cur.fetchone())

        u.usage.take_holdings("a", [f"c{i:03d}" for i in range(210)])
        before = counts()
        assert u.usage.write_chunk([entry("a", i, plan_set_version=2 if i % 4 else 1) for i in range(210)], set(), [], [])
        assert [n - b for n, b in zip(counts(), before)] == [150, 150, 10, 0]   # updated, of them HOT, inserted, deleted
        u.commit()
    assert sorted(v[1][11] for v in ledger(engine, "a").values()) == [1] * 53 + [2] * 157   # plan_set_version


def test_two_rewrites_in_one_transaction_each_find_their_own_rows(store: Any) -> None:
    """PostgreSQL: the rewrite's temporary table is emptied when the transaction ends, not by the statement that reads
    it; a second chunk written in the same transaction must not find the first one's rows there (its unchanged rows are
    still at their address: counted as rows of the second chunk, a lost race), and both rewrites land."""
    engine, uow = postgres_with(store, 10, "the rewrite's temporary table")
    with uow() as u:
        for part in (range(0, 5), range(5, 10)):
            u.usage.take_holdings("a", [f"c{i:03d}" for i in part])
            # the first three of each part unchanged, the others changed
            assert u.usage.write_chunk([entry("a", i, **({} if i % 5 < 3 else dict(charge_micros=7))) for i in part], set(), [], [])
        u.commit()
    assert [v[1][4] for _, v in sorted(ledger(engine, "a").items())] == [1_000, 1_001, 1_002, 7, 7, 1_005, 1_006, 1_007, 7, 7]
    with uow() as u:   # the next transaction on the pool's connection finds the table empty again
        u.usage.take_holdings("a", ["c003"])
        assert u.usage.write_chunk([entry("a", 3, charge_micros=1)], set(), [], [])
        u.commit()
    assert ledger(engine, "a")["c003"][1][4] == 1


def test_a_row_another_writer_changed_after_the_read_is_a_lost_race(store: Any) -> None:
    """PostgreSQL (SQLite has one writer at a time): the read takes no lock, so a row replaced by another unit of work
    between a chunk's read and its write is not where it was read; the write answers False (the chunk is rated again)
    and the other writer's row stays."""
    engine, uow = postgres_with(store, 3, "two writers at once")
    ids = ["c000", "c001", "c002"]
    with uow() as slow:
        slow.usage.take_holdings("a", ids)
        with uow() as fast:
            fast.usage.take_holdings("a", ids)
            assert fast.usage.write_chunk([entry("a", 1, charge_micros=5)], set(), [], [])
            fast.commit()
        assert not slow.usage.write_chunk([entry("a", i, charge_micros=9) for i in range(3)], set(), [], [])
    assert [v[1][4] for _, v in sorted(ledger(engine, "a").items())] == [1_000, 5, 1_002]   # charge_micros


def test_plans_0007_down_and_up_with_rows(db_url: str) -> None:
    """plans_0007 sets the PostgreSQL ledger's fillfactor and resets it on the way down, the rows staying; SQLite's
    ledger is the same table before and after."""
    engine = make_engine(db_url)
    uow = SqlPlanUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    pg = engine.dialect.name == "postgresql"

    def options() -> Any:
        with engine.connect() as conn:
            if pg:
                return conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'usage_ledger'").scalar()
            return conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'usage_ledger'").scalar()

    try:
        clear(engine)
        with uow() as u:
            assert u.usage.write_chunk([entry("a", i) for i in range(50)], set(), [], [])
            u.commit()
        head = options()
        assert head == ["fillfactor=50"] if pg else "CREATE TABLE" in head
        rows = ledger(engine, "a")
        command.downgrade(alembic_config(db_url), "plans_0006")
        engine.dispose()
        assert options() is None if pg else options() == head
        assert {k: v[1] for k, v in ledger(engine, "a").items()} == {k: v[1] for k, v in rows.items()}
        upgrade(db_url)
        engine.dispose()
        assert options() == head
        with uow() as u:   # the chunk's write after the way back up
            u.usage.take_holdings("a", ["c001", "c077"])
            assert u.usage.write_chunk([entry("a", 1, charge_micros=3), entry("a", 77)], set(), [], [])
            u.commit()
        after = ledger(engine, "a")
        assert len(after) == 51 and after["c001"][1][4] == 3
    finally:
        engine.dispose()
