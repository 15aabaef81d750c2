"""Usage blocks as the SQL store reads them (on PostgreSQL summed and written out by the database in the read query) are
the blocks the engine's reference builds from the same CDRs read one by one; their CDRs freeze once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from sqlalchemy import insert

from engine.billing.usage_blocks import blocks_from_usage
from engine.errors import AlreadyExists
from store.billing import SqlBillingUnitOfWorkFactory
from store.db import make_engine
from store.plans import usage_ledger
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.integration
UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
NUMBERS = ["33611000001", "33611000002", "33611000003"]


@pytest.fixture(scope="module")
def store(db_url: str) -> Iterator[SqlBillingUnitOfWorkFactory]:
    engine = make_engine(db_url)
    rng = random.Random(5)
    rows = []
    for i in range(400):
        start = T0 + timedelta(seconds=rng.randint(-86400, 31 * 86400), microseconds=rng.choice([0, 0, 0, 1, 500_000, 999_999]))
        if i % 37 == 0 and rows:
            start = rows[-1]["start_time"]                 # same start: ordered by CDR id, byte-wise
        rows.append(dict(tenant_id="mno", cdr_id=f"{rng.choice('aAbB_-9')}{i:05d}", msisdn=rng.choice(NUMBERS), cycle="2026-03",
                         currency=rng.choice(["EUR", "EUR", "EUR", "USD"]), charge_micros=rng.randint(-3_000_000, 9_000_000),
                         bundles_json="[]", start_time=start, service=rng.choice(["voice", "sms", "data"]),
                         destination_group=rng.choice(["DST_EU", "DST_NATIONAL", ""]), tariff_plan=rng.choice(["TP_A", "TP_A", "TP_B", ""]),
                         plan_set_version=1, units=rng.randint(0, 10_000),
                         status=rng.choice([None, "rated", "rated", "rated", "unrated"])))
    rows.append(dict(rows[0], tenant_id="mvno-alpha", cdr_id="other-tenant"))
    with engine.begin() as conn:
        conn.execute(insert(usage_ledger), rows)
    try:
        yield SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    finally:
        engine.dispose()


def test_the_stores_blocks_are_the_reference_blocks_of_the_same_cdrs(store: SqlBillingUnitOfWorkFactory) -> None:
    since, until = T0 - timedelta(hours=5), T0 + timedelta(days=30)
    with store(read_only=True) as uow:
        blocks = uow.usage_blocks("mno", NUMBERS, since, until)
        reference = blocks_from_usage(uow.unbilled_usage("mno", NUMBERS, since, until))
    assert [b.msisdn for b in blocks] == NUMBERS
    assert [b.groups for b in blocks] == [b.groups for b in reference]
    assert [b.rows for b in blocks] == [b.rows for b in reference]
    assert sum(g.cdrs for b in blocks for g in b.groups) == sum(len(b.rows.splitlines()) for b in reference) > 250
    assert any(".999999+00:00," in b.rows for b in blocks) and any("-0." in b.rows or ",-" in b.rows for b in blocks)


def test_a_blocks_cdrs_freeze_once_and_leave_the_next_read(store: SqlBillingUnitOfWorkFactory) -> None:
    since, until = T0 - timedelta(days=2), T0 + timedelta(days=40)
    with store(read_only=True) as uow:
        (block,) = uow.usage_blocks("mno", NUMBERS[:1], since, until)
    with store() as uow:
        uow.freeze_blocks("mno", [("inv_test1", block.frozen)])
        uow.commit()
    count = sum(g.cdrs for g in block.groups)
    with store(read_only=True) as uow:
        assert uow.usage_blocks("mno", NUMBERS[:1], since, until) == []
        frozen = uow.frozen_usage("inv_test1")
        assert len(frozen) == count
        assert sum(m for _c, m in frozen) == sum(g.micros for g in block.groups)
    with pytest.raises(AlreadyExists):
        with store() as uow:
            uow.freeze_blocks("mno", [("inv_test2", block.frozen)])
            uow.commit()
    with store(read_only=True) as uow:
        assert uow.frozen_usage("inv_test2") == []
    assert count > 0


def test_the_reads_planner_settings_end_with_the_read(store: SqlBillingUnitOfWorkFactory) -> None:
    """On PostgreSQL the usage read plans with settings of its own (SET LOCAL); the rest of the caller's transaction plans
    as before it."""
    since, until = T0 - timedelta(hours=5), T0 + timedelta(days=30)
    with store(read_only=True) as uow:
        conn = uow._conn()  # noqa: SLF001
        if conn.dialect.name != "postgresql":
            pytest.skip("planner settings are PostgreSQL's")
        before = {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one() for name in ("enable_hashjoin", "jit", "work_mem")}
        assert uow.usage_blocks("mno", NUMBERS, since, until) and uow.unbilled_usage("mno", NUMBERS, since, until)
        after = {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one() for name in ("enable_hashjoin", "jit", "work_mem")}
    assert after == before and before["enable_hashjoin"] == "on"

