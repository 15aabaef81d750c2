"""Whether a bill run stages its usage (store.usage_stage.scattered), at the shipped threshold
(SCATTERED_PAGES_PER_CDR, never changed here): a ledger in the order calls are made -- every account's k-th CDR
before any (k+1)-th, the accounts shuffled at each step, as ``bench/bench_billing.py --ledger-order arrival``
writes it -- has one heap page per CDR of a number and is staged; the same rows laid out number by number are
read as they are (no stage).  PostgreSQL only: elsewhere a run reads the ledger (``stage_usage`` returns "")."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from sqlalchemy import text

from engine.rating.usage import LEDGER_FIELDS
from store.billing import SqlBillingUnitOfWorkFactory
from store.db import make_engine
from store.usage_stage import PREFIX, SCATTERED_PAGES_PER_CDR
from store.uow import SqlUnitOfWorkFactory
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
UTC = timezone.utc
ACCOUNTS = 1000          # a step's rows of all accounts span ~30 heap pages: the sampled numbers' CDRs lie on pages apart
CDRS_PER_ACCOUNT = 5
START = datetime(2026, 2, 1, tzinfo=UTC)
SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)


def _rows(tenant: str, arrival: bool) -> list[tuple[Any, ...]]:
    """The tenant's ledger rows in the order they are written: ``arrival`` in start-time order across the accounts,
    else account by account (each number's CDRs together)."""
    rng = random.Random(11)
    order = list(range(ACCOUNTS))

    def row(i: int, k: int) -> tuple[Any, ...]:
        return ledger_entry(tenant_id=tenant, cdr_id=f"{tenant}-{i:05d}-{k}", msisdn=f"3369{i:07d}", cycle="2026-02",
                            bundles_json="[]", start_time=START + timedelta(hours=k * 24, seconds=i))

    if not arrival:
        return [row(i, k) for i in order for k in range(CDRS_PER_ACCOUNT)]
    out = []
    for k in range(CDRS_PER_ACCOUNT):
        rng.shuffle(order)
        out.extend(row(i, k) for i in order)
    return out


@pytest.fixture(scope="module")
def units(db_url: str) -> Iterator[SqlBillingUnitOfWorkFactory]:
    if not db_url.startswith("postgresql"):
        pytest.skip("usage is staged on PostgreSQL only (elsewhere a run reads the ledger)")
    engine = make_engine(db_url)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for tenant, arrival in (("arrival", True), ("bynumber", False)):   # each tenant's rows on pages of their own
                with cur.copy(f"COPY usage_ledger ({', '.join(LEDGER_FIELDS)}) FROM STDIN") as cp:
                    for r in _rows(tenant, arrival):
                        cp.write_row(r)
        raw.commit()
    finally:
        raw.close()
    try:
        yield SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(engine))
    finally:
        engine.dispose()


def _pages_of_a_number(units: SqlBillingUnitOfWorkFactory, tenant: str) -> float:
    """How many heap pages a number's CDRs lie on, on average over the tenant's numbers (for a failure's message)."""
    with units(read_only=True) as uow:
        return float(uow.s.execute(text(
            "SELECT avg(pages) FROM (SELECT count(DISTINCT (ctid::text::point)[0]) AS pages FROM usage_ledger "
            "WHERE tenant_id = :t GROUP BY msisdn) n"), {"t": tenant}).scalar_one())


def _staged(units: SqlBillingUnitOfWorkFactory, tenant: str) -> str:
    with units() as uow:
        name = uow.stage_usage(tenant, f"run_{tenant}", SINCE, UNTIL, 2)
        uow.commit()
    with units() as uow:
        uow.drop_usage_stage(name)
        uow.commit()
    return name


def test_a_ledger_in_the_order_calls_are_made_is_staged(units: SqlBillingUnitOfWorkFactory) -> None:
    assert _staged(units, "arrival") == PREFIX + "run_arrival", \
        f"a number's {CDRS_PER_ACCOUNT} CDRs on {_pages_of_a_number(units, 'arrival'):.1f} pages: the run reads a stage " \
        f"(at the shipped SCATTERED_PAGES_PER_CDR, {SCATTERED_PAGES_PER_CDR})"


def test_the_same_rows_laid_out_by_number_are_read_from_the_ledger(units: SqlBillingUnitOfWorkFactory) -> None:
    assert _staged(units, "bynumber") == "", \
        f"a number's {CDRS_PER_ACCOUNT} CDRs on {_pages_of_a_number(units, 'bynumber'):.1f} pages: no stage " \
        f"(SCATTERED_PAGES_PER_CDR {SCATTERED_PAGES_PER_CDR})"
