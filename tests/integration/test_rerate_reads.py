"""What a re-rating run reads, on SQLite and PostgreSQL (store/plans.py): the stored CDRs of its period, each once and in
exact start order whatever the chunk size and however many tenants (a query per chunk from the last row's key), no
transaction left open between chunks, the read given up early handing its connection back, and what the period's CDRs
hold in the ledger summed per subscriber cycle as the ledger's own rows add up."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from engine.rating.rerate import RerateDesk
from engine.readahead import ReadAhead
from store.plans import StoredCdrReader, usage_ledger
from tests.integration.conftest import MID_MONTH
from tests.integration.test_rating_stored import _subscriber, roots, store_cdrs, voice  # noqa: F401 - fixtures
from tests.integration.test_rating_stream import OPERATOR

pytestmark = [pytest.mark.integration]


def _period(days: int) -> datetime:
    return MID_MONTH + timedelta(days=days)


def test_the_stored_cdrs_of_a_period_come_once_each_in_start_order_in_chunks(roots) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    start = _period(40)
    # 5 CDRs at each start time, so chunks of 4 end in the middle of a tie (the next one goes on by CDR id)
    cdrs = [voice(i, "33612000001", "33698765432", 60, start + timedelta(seconds=i // 5)) for i in range(37)]
    outside = [voice(100, "33612000001", "33698765432", 60, start - timedelta(seconds=1)),
               voice(101, "33612000001", "33698765432", 60, start + timedelta(hours=1))]
    other = [voice(102, "33612000002", "33698765432", 60, start + timedelta(seconds=3), tenant="mvno-beta")]
    store_cdrs(root, cdrs + outside + other)
    reader = StoredCdrReader(root.db)
    chunks = list(reader.chunks({"mno"}, start, start + timedelta(hours=1), 4))
    assert [len(c) for c in chunks] == [4] * 9 + [1]
    got = [(row[5], row[0]) for chunk in chunks for row in chunk]   # (start_time text, cdr_id)
    want = sorted((c.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"), c.cdr_id) for c in cdrs)
    assert got == want
    assert reader.count({"mno"}, start, start + timedelta(hours=1)) == 37
    both = [row[0] for chunk in reader.chunks({"mno", "mvno-beta"}, start, start + timedelta(hours=1), 10) for row in chunk]
    assert len(both) == 38 and other[0].cdr_id in both


def test_cdrs_within_one_second_come_in_start_order_across_chunks_and_tenants(roots) -> None:  # type: ignore[no-untyped-def]
    """The order is the exact start time's, not the text's (to the second): within one second the later CDR has the
    smaller CDR id here, and with chunks of one row each chunk starts from the exact key of the last one."""
    root, _ = roots
    start = _period(43)
    first, second = voice(1, "33612000004", "33698765432", 60, start), voice(2, "33612000004", "33698765432", 60, start)
    early, late = sorted([first, second], key=lambda c: c.cdr_id, reverse=True)   # the larger id starts first
    other = voice(3, "33612000005", "33698765432", 60, start + timedelta(milliseconds=500), tenant="mvno-beta")
    cdrs = [early.with_changes(start_time=start + timedelta(milliseconds=100)), late.with_changes(start_time=start + timedelta(milliseconds=900)),
            other, voice(4, "33612000004", "33698765432", 60, start + timedelta(seconds=1))]
    store_cdrs(root, cdrs)
    reader = StoredCdrReader(root.db)
    for size in (1, 2, 10):
        got = [row[0] for chunk in reader.chunks({"mno", "mvno-beta"}, start, start + timedelta(hours=1), size) for row in chunk]
        assert got == [early.cdr_id, other.cdr_id, late.cdr_id, cdrs[3].cdr_id], size


def test_no_transaction_stays_open_between_chunks(roots) -> None:  # type: ignore[no-untyped-def]
    """A run rates a chunk while the next is read: no read holds a transaction open meanwhile (a server's
    idle_in_transaction_session_timeout would end it mid-run)."""
    root, _ = roots
    if root.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's view of its sessions")
    start = _period(44)
    store_cdrs(root, [voice(i, "33612000006", "33698765432", 60, start + timedelta(seconds=i)) for i in range(12)])
    chunks = StoredCdrReader(root.db).chunks({"mno"}, start, start + timedelta(hours=1), 5)
    assert len(next(chunks)) == 5   # the read stands between two chunks
    with root.db.connect() as conn:
        open_ = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                                  "state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")).scalar_one()
    assert open_ == 0
    assert [len(c) for c in chunks] == [5, 2]


def test_a_read_given_up_early_hands_its_connection_back(roots) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    start = _period(41)
    store_cdrs(root, [voice(i, "33612000003", "33698765432", 60, start + timedelta(seconds=i)) for i in range(30)])
    before = root.db.pool.checkedout()
    ahead = ReadAhead(StoredCdrReader(root.db).chunks({"mno"}, start, start + timedelta(hours=1), 5))
    assert len(ahead.next()) == 5
    ahead.stop()
    ahead._thread.join(timeout=30)
    assert not ahead._thread.is_alive()
    assert root.db.pool.checkedout() == before


def _held_from_the_ledger(root: Any, stored: set[str]) -> tuple[dict[Any, dict[str, int]], dict[Any, dict[str, int]]]:
    """The reference: the ledger rows of these CDRs added up in Python, row by row."""
    units: dict[Any, dict[str, int]] = {}
    charges: dict[Any, dict[str, int]] = {}
    with root.db.connect() as conn:
        for r in conn.execute(select(usage_ledger).where(usage_ledger.c.cdr_id.in_(sorted(stored)))):
            if not r.cycle:
                continue
            key = (r.tenant_id, r.msisdn, r.cycle)
            for b, u in json.loads(r.bundles_json):
                units.setdefault(key, {})[b] = units.get(key, {}).get(b, 0) + u
            if r.charge_micros:
                charges.setdefault(key, {})[r.currency] = charges.get(key, {}).get(r.currency, 0) + r.charge_micros
    return units, charges


def test_what_a_run_holds_is_what_its_stored_cdrs_ledger_rows_add_up_to(roots) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    start = _period(42)
    subs = [_subscriber(root) for _ in range(3)]
    cdrs = [voice(i, subs[i % 3].msisdn, "33698765432" if i % 4 else "442071234567", 700, start + timedelta(seconds=i))
            for i in range(60)]
    store_cdrs(root, cdrs)
    # a CDR of the same subscribers before the period, and one rated live (in the ledger, not stored): neither counts
    before = voice(500, subs[0].msisdn, "442071234567", 300, start - timedelta(minutes=1))
    live = voice(501, subs[1].msisdn, "442071234567", 300, start + timedelta(minutes=2))
    store_cdrs(root, [before])
    root.rerate.rerate(OPERATOR, "mno", start - timedelta(hours=1), start + timedelta(hours=1))
    root.rating.rate_many(OPERATOR, [live], use_counters=True)
    with root.plan_uow(read_only=True) as uow:
        held = uow.usage.held_by_stored({"mno"}, start, start + timedelta(hours=1))
    units, charges = _held_from_the_ledger(root, {c.cdr_id for c in cdrs})
    assert units and charges   # bundle units and charges both held: the sums are checked, not two empty maps
    assert {k: {b: u for b, u in by.items() if u} for k, by in held.bundles.items() if any(by.values())} == units
    assert {k: {c: m for c, m in by.items() if m} for k, by in held.charges.items() if any(by.values())} == charges


def _nonzero(by_key: dict[Any, dict[str, int]]) -> dict[Any, dict[str, int]]:
    return {k: {n: v for n, v in by.items() if v} for k, by in by_key.items() if any(by.values())}


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_what_a_run_holds_summed_slice_by_slice_counts_each_cdr_once_on_the_slices_bounds(roots, parts: int) -> None:  # type: ignore[no-untyped-def]
    """RerateDesk.held sums the period in ``held_parts`` slices read at once: a CDR on a slice's first instant, and
    one a microsecond before it, are each held once, as the one query over the whole period holds them."""
    root, _ = roots
    start = _period(60 + parts)   # a period of its own: the parameters share a database
    end = start + timedelta(hours=1)
    subs = [_subscriber(root) for _ in range(3)]
    bounds = [start + (end - start) * i / parts for i in range(1, parts)]
    at = [start, end - timedelta(microseconds=1)] + [b + timedelta(microseconds=d) for b in bounds for d in (-1, 0, 1)]
    cdrs = [voice(i, subs[i % 3].msisdn, "33698765432" if i % 4 else "442071234567", 700, t) for i, t in enumerate(at)]
    store_cdrs(root, cdrs)
    root.rerate.rerate(OPERATOR, "mno", start, end)
    with root.plan_uow(read_only=True) as uow:
        whole = uow.usage.held_by_stored({"mno"}, start, end)
    units, charges = _held_from_the_ledger(root, {c.cdr_id for c in cdrs})
    assert units and charges and _nonzero(whole.bundles) == units and _nonzero(whole.charges) == charges
    desk = RerateDesk(root.rating, root.plans, root.plan_uow, root.uow, root.rerate._stored, held_parts=parts)
    held = desk.held({"mno"}, start, end)
    assert (_nonzero(held.bundles), _nonzero(held.charges)) == (units, charges)


def test_a_slice_of_what_a_run_holds_is_summed_by_its_own_backend_alone(roots) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: a run sums its period in slices at once (RerateDesk.held), so each slice's query takes no parallel
    workers of its own (on analysed tables it took two, a quarter more of the server's CPU for the same sums); the
    setting is the query's transaction's alone, and the sums are the ledger's all the same."""
    root, _ = roots
    if root.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's parallel workers")
    start = _period(80)
    subs = [_subscriber(root) for _ in range(2)]
    cdrs = [voice(i, subs[i % 2].msisdn, "442071234567", 300, start + timedelta(seconds=i)) for i in range(6)]
    store_cdrs(root, cdrs)
    root.rerate.rerate(OPERATOR, "mno", start, start + timedelta(hours=1))
    with root.plan_uow(read_only=True) as uow:
        cur = uow.usage._cursor()[1]
        cur.execute("SELECT current_setting('max_parallel_workers_per_gather')")
        before = cur.fetchone()[0]
        held = uow.usage.held_by_stored({"mno"}, start, start + timedelta(hours=1))
        cur.execute("SELECT current_setting('max_parallel_workers_per_gather')")
        during = cur.fetchone()[0]
    with root.plan_uow(read_only=True) as uow:
        cur = uow.usage._cursor()[1]
        cur.execute("SELECT current_setting('max_parallel_workers_per_gather')")
        after = cur.fetchone()[0]
    assert (before, during, after) == (after, "0", before) and before != "0"
    units, charges = _held_from_the_ledger(root, {c.cdr_id for c in cdrs})
    assert charges and (_nonzero(held.bundles), _nonzero(held.charges)) == (units, charges)
