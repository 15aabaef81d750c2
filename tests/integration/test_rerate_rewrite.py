"""Re-rating writes only the ledger rows whose result changed (engine.rating.rerate through store/plans.py's chunk
write): a run that comes to what the ledger holds writes no ledger row, and a run that changes every row leaves what
it left when it deleted and inserted them all (counters and balances equal to the ledger).  SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.conftest import MID_MONTH
from tests.integration.test_plans_rating import sample_files
from tests.integration.test_rating_stored import _subscriber, consistent, roots, state, store_cdrs  # noqa: F401 - fixtures
from tests.integration.test_rating_stream import OPERATOR, calls

pytestmark = [pytest.mark.integration]


def addresses(root: Any, msisdns: set[str]) -> dict[str, Any]:
    """Each ledger row's physical address (ctid, rowid) by CDR id: a row written again is elsewhere."""
    address = "ctid::text" if root.db.dialect.name == "postgresql" else "rowid"
    marks = ", ".join(f"'{m}'" for m in sorted(msisdns))
    with root.db.connect() as conn:
        return dict(conn.exec_driver_sql(f"SELECT cdr_id, {address} FROM usage_ledger WHERE msisdn IN ({marks})").fetchall())


def test_a_run_that_changes_nothing_writes_no_ledger_row(roots) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    msisdns = {_subscriber(root).msisdn for _ in range(3)}
    start = MID_MONTH + timedelta(days=9)
    cdrs = [c for chunk in calls(sorted(msisdns), start, 5, 40, seed=47, tag="rerate-rewrite") for c in chunk]
    store_cdrs(root, cdrs)
    for i in range(0, len(cdrs), 40):   # rated from scratch under the plan set in force
        root.rating.rate_many(OPERATOR, cdrs[i:i + 40], use_counters=True)
    from_scratch, where = state(root, msisdns), addresses(root, msisdns)
    assert len(where) == len(cdrs)
    run = copy.copy(root.rerate)
    run._chunk = 30
    end = start + timedelta(hours=1)
    same = run.rerate(OPERATOR, "mno", start, end)   # under the version in force: every row comes to what it holds
    assert (same.cdrs, same.charged_after) == (len(cdrs), same.charged_before)
    assert state(root, msisdns) == from_scratch and addresses(root, msisdns) == where

    dearer = root.plans.upload(OPERATOR, "mno", {f.path: f.content for f in sample_files(
        {"rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "1.25"')})}).version
    changed = run.rerate(OPERATOR, "mno", start, end, dearer)   # every row names the new version: every row rewritten
    once, moved = state(root, msisdns), addresses(root, msisdns)
    consistent(once)
    assert {r[7] for r in once["ledger"]} == {dearer}
    assert changed.charged_after != changed.charged_before
    assert all(moved[cdr] != where[cdr] for cdr in where)
    again = run.rerate(OPERATOR, "mno", start, end, dearer)   # twice is once, and the second run writes none of them
    assert state(root, msisdns) == once and addresses(root, msisdns) == moved
    assert (again.cdrs, again.rated, again.charged_after) == (changed.cdrs, changed.rated, changed.charged_after)
    run.rerate(OPERATOR, "mno", start, end)   # back under the version in force: as rated from scratch
    assert state(root, msisdns) == from_scratch


def test_the_collector_is_paused_across_chunks_and_on_again_after_the_run_ended_or_was_stopped(roots) -> None:  # type: ignore[no-untyped-def]
    """A run keeps the cyclic collector paused from one chunk to the next (engine.rating.rerate.GC_EVERY at a time), and
    gives it back when it ends, and when its caller stops it early (the client went away: RerateService)."""
    import gc

    from engine.rating import rerate

    root, _ = roots
    msisdns = {_subscriber(root).msisdn for _ in range(2)}
    start = MID_MONTH + timedelta(days=12)
    store_cdrs(root, [c for chunk in calls(sorted(msisdns), start, 3, 40, seed=48, tag="rerate-gc") for c in chunk])
    run = copy.copy(root.rerate)
    run._chunk = 10
    end = start + timedelta(hours=1)
    assert gc.isenabled()
    seen = []
    for step in run.steps(OPERATOR, "mno", start, end):
        seen.append(gc.isenabled())
    assert len(seen) == 2 + 12 and seen[0] and not any(seen[1:-1]) and gc.isenabled()   # (0, total), 12 chunks, summary
    # paused too while what the run's CDRs hold is summed (the run's first step), and on again for the run's caller
    summing: list[bool] = []
    run.held = lambda *a: (summing.append(gc.isenabled()), rerate.RerateDesk.held(run, *a))[1]  # type: ignore[method-assign]
    first = run.steps(OPERATOR, "mno", start, end)
    assert next(first)[1] > 0 and summing == [False] and gc.isenabled()   # type: ignore[index]
    first.close()
    every, rerate.GC_EVERY = rerate.GC_EVERY, 5
    try:
        steps = run.steps(OPERATOR, "mno", start, end)
        on = [gc.isenabled() for _, step in zip(range(9), steps)]
        assert not any(on[1:]) and not gc.isenabled()
        steps.close()   # stopped after 8 chunks
        assert gc.isenabled()
    finally:
        rerate.GC_EVERY = every


def rated_on_postgres(root: Any, day: int, seed: int, tag: str, beside: list[Any] | None = None) -> tuple[set[str], Any, list[Any]]:
    """(MSISDNs, start, CDRs): three new subscribers' calls from ``day`` days after mid-month, stored and rated from
    scratch in chunks of 40 (PostgreSQL only: a chunk's ledger rows are read with it there, else the test is skipped).
    ``beside``, when given, is filled with as many calls at the same seconds, rated with them and never stored."""
    if root.db.dialect.name != "postgresql":
        pytest.skip("the ledger rows are read with the chunk on PostgreSQL only")
    msisdns = {_subscriber(root).msisdn for _ in range(3)}
    start = MID_MONTH + timedelta(days=day)
    cdrs = [c for chunk in calls(sorted(msisdns), start, 5, 40, seed=seed, tag=tag) for c in chunk]
    if beside is not None:
        beside += [c for chunk in calls(sorted(msisdns), start, 5, 40, seed=seed + 1, tag=f"{tag}-beside") for c in chunk]
    store_cdrs(root, cdrs)
    for i in range(0, len(cdrs), 40):
        root.rating.rate_many(OPERATOR, cdrs[i:i + 40], use_counters=True)
        if beside:
            root.rating.rate_many(OPERATOR, beside[i:i + 40], use_counters=True)
    return msisdns, start, cdrs


class _MovedAfterRead:
    """The run's stored-CDR reader, with the ledger row of one CDR of the third chunk written again by another writer
    (the same values: the row moves to a new address, as any update moves it) right after that chunk and its ledger
    rows were read."""

    def __init__(self, reader: Any, root: Any) -> None:
        self.reader, self.root, self.moved = reader, root, ""

    def count(self, *args: Any) -> int:
        return int(self.reader.count(*args))

    def chunks_held(self, *args: Any) -> Any:
        for n, (rows, ahead) in enumerate(self.reader.chunks_held(*args)):
            if n == 2:
                self.moved = rows[0][0]
                with self.root.db.begin() as conn:
                    conn.exec_driver_sql("UPDATE usage_ledger SET charge_micros = charge_micros WHERE cdr_id = %(id)s",
                                         {"id": self.moved})
            yield rows, ahead


def test_a_ledger_row_written_after_its_chunk_was_read_ahead_loses_the_race_and_the_run_ends_as_one_clean_run(roots) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a run reads each chunk's ledger rows (what they hold, where they lie) with the chunk, a chunk ahead
    of the rating (StoredCdrReader.chunks_held).  A row another writer writes between that read and the chunk's write
    makes the write a lost race: the chunk is rated again with its rows looked up afresh (that chunk alone: the other
    chunks' rows are used as read ahead), and the run ends as one clean run ends."""
    root, other = roots
    msisdns, start, cdrs = rated_on_postgres(root, 14, 49, "rerate-ahead")
    from_scratch, where = state(root, msisdns), addresses(root, msisdns)
    dearer = root.plans.upload(OPERATOR, "mno", {f.path: f.content for f in sample_files(
        {"rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "1.25"')})}).version
    run = copy.copy(root.rerate)
    run._chunk = 30
    run._stored = moving = _MovedAfterRead(root.rerate._stored, other)
    races = root.rating.races
    end = start + timedelta(hours=1)
    summary = run.rerate(OPERATOR, "mno", start, end, dearer)   # every row rewritten
    assert moving.moved and summary.cdrs == len(cdrs)
    assert root.rating.races - races == 1   # that chunk alone was rated again
    after = state(root, msisdns)
    consistent(after)
    assert {r[7] for r in after["ledger"]} == {dearer} and len(after["ledger"]) == len(cdrs)
    run._stored = root.rerate._stored
    run.rerate(OPERATOR, "mno", start, end, dearer)   # a clean run from there changes nothing: it was one clean run's result
    assert state(root, msisdns) == after
    run.rerate(OPERATOR, "mno", start, end)   # back under the version in force: as rated from scratch
    assert state(root, msisdns) == from_scratch and len(addresses(root, msisdns)) == len(where)


def test_ledger_rows_read_ahead_by_subscriber_are_the_chunks_own_and_a_row_out_of_its_window_is_found_by_its_id(roots) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a chunk's ledger rows are read ahead by subscriber and time window (store.plans._held_ahead): the
    rows of its subscribers in that window that are not its CDRs' (CDRs rated and not stored, at the same seconds) are
    left alone, and a row of its CDRs that lies outside the window (its start time moved: a corrected CDR sent again)
    is found by its CDR id and replaced, not added: no chunk loses a race over it, and the run ends as one clean run.
    Fails when the rows found by window are not filtered to the chunk's CDRs (counters then give back what another CDR
    holds) or when the rows not found there are not looked up by id (the chunk's write meets the primary key)."""
    root, _ = roots
    unstored: list[Any] = []   # at the same seconds as the stored CDRs, others rated and never stored
    msisdns, start, cdrs = rated_on_postgres(root, 16, 50, "rerate-window", unstored)
    from_scratch = state(root, msisdns)
    beside = {c.cdr_id for c in unstored}
    moved = cdrs[70].cdr_id   # in the third chunk of 30
    with root.db.begin() as conn:
        conn.exec_driver_sql("UPDATE usage_ledger SET start_time = start_time - interval '1 day' WHERE cdr_id = %(id)s", {"id": moved})
    left = {k: v for k, v in addresses(root, msisdns).items() if k in beside}
    dearer = root.plans.upload(OPERATOR, "mno", {f.path: f.content for f in sample_files(
        {"rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "1.25"')})}).version
    run = copy.copy(root.rerate)
    run._chunk = 30
    races = root.rating.races
    end = start + timedelta(hours=1)
    summary = run.rerate(OPERATOR, "mno", start, end, dearer)
    assert summary.cdrs == len(cdrs) and root.rating.races == races   # no chunk rated again
    after = state(root, msisdns)
    consistent(after)
    assert {r[0]: r[7] for r in after["ledger"] if r[0] not in beside} == {c.cdr_id: dearer for c in cdrs}
    assert {k: v for k, v in addresses(root, msisdns).items() if k in beside} == left   # not written
    with root.db.connect() as conn:
        at = conn.exec_driver_sql("SELECT start_time FROM usage_ledger WHERE cdr_id = %(id)s", {"id": moved}).scalar_one()
    assert at == cdrs[70].start_time   # replaced by its CDR's row
    run.rerate(OPERATOR, "mno", start, end)   # back under the version in force: as rated from scratch
    assert state(root, msisdns) == from_scratch
