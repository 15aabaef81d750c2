"""A large bill run's usage staged once (store.usage_stage, PostgreSQL): the same bills as from the ledger; a CDR rated
after the stage was made goes to the next bill; a stage emptied under the run (what a database crash does to an
unlogged table) stops its batches instead of billing accounts without their usage, and the resumed run bills as one
clean run; the stage is dropped when the run ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import insert, select, text

from engine.billing.ports import RunMode
from engine.billing.runs import RunRequest
from engine.errors import FailedPrecondition
from engine.identity import SYSTEM
from servers.root import Root
from store.billing import billing_frozen_usage, billing_invoices
from store.plans import usage_ledger
from store import usage_stage
from store.usage_stage import PREFIX
from tests.integration.test_billing_crash import ACCOUNTS, CDRS_PER_ACCOUNT, CYCLE, seeded_root

pytestmark = pytest.mark.integration
UTC = timezone.utc
PRINCIPAL = replace(SYSTEM, tenant_id="mno", subject="test")


@pytest.fixture(scope="module")
def stage_root(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    if not db_url.startswith("postgresql"):
        pytest.skip("usage is staged on PostgreSQL only (elsewhere a run reads the ledger)")
    root = seeded_root(db_url, tmp_path_factory.mktemp("stage"))
    # the seed writes the ledger account by account (a number's CDRs together): staged all the same here
    saved, usage_stage.SCATTERED_PAGES_PER_CDR = usage_stage.SCATTERED_PAGES_PER_CDR, -1.0
    root.billing.runs.stage_min_accounts = 1          # every run stages (the product's minimum is for large runs)
    root.billing.runs.batch_size = 25
    try:
        yield root
    finally:
        usage_stage.SCATTERED_PAGES_PER_CDR = saved
        root.close()


def _stages(root: Root) -> list[str]:
    with root.db.connect() as conn:
        return list(conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE :p"), {"p": PREFIX + "%"}).scalars())


def _wrap_stage(root: Root, monkeypatch: pytest.MonkeyPatch, after: Any) -> list[str]:
    """Run ``after(stage name)`` right after the run stages its usage, before its first batch."""
    runs = root.billing.runs
    original = runs._stage  # noqa: SLF001
    made: list[str] = []

    def staged(*args: Any) -> str:
        name = original(*args)
        made.append(name)
        after(name)
        return name

    monkeypatch.setattr(runs, "_stage", staged)
    return made


def test_a_stage_lost_under_the_run_stops_it_and_the_resumed_run_bills_as_one_clean_run(stage_root: Root,
                                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = stage_root
    previews = {f"ACC-{i:05d}": root.billing.runs.preview(PRINCIPAL, "mno", f"ACC-{i:05d}", CYCLE)[0].totals.tax_inclusive
                for i in range(ACCOUNTS)}

    def crash(name: str) -> None:   # what PostgreSQL does to an unlogged table when it restarts after a crash
        with root.db.begin() as conn:
            conn.execute(text(f"TRUNCATE {name}"))

    made = _wrap_stage(root, monkeypatch, crash)
    runs: list[Any] = []
    with pytest.raises(FailedPrecondition, match="USAGE_STAGE_LOST|staged usage"):
        for run in root.billing.runs.start(PRINCIPAL, RunRequest("mno", RunMode.MANUAL, CYCLE)):
            runs.append(run)
    assert made and made[0].startswith(PREFIX)
    with root.db.connect() as conn:
        assert conn.execute(select(billing_invoices.c.invoice_id)).first() is None, "nothing issued from an empty stage"
    assert _stages(root) == [], "the stage is dropped when its run stops"
    monkeypatch.undo()
    root.billing.runs.stage_min_accounts = 1
    *_, done = root.billing.runs.start(PRINCIPAL, RunRequest("mno", None, resume_run_id=runs[0].run_id))
    assert done.state.value == "done" and done.issued == ACCOUNTS and done.failed == 0, done
    with root.db.connect() as conn:
        rows = conn.execute(select(billing_invoices.c.account_id, billing_invoices.c.tax_inclusive)).all()
        frozen = [c for (ids,) in conn.execute(select(billing_frozen_usage.c.cdr_ids)) for c in ids.split("\n")]
    assert {a: int(t) for a, t in rows} == previews, "the bills of the ledger's usage, as previews compute them"
    assert len(frozen) == len(set(frozen)) == ACCOUNTS * CDRS_PER_ACCOUNT, "each CDR billed once"
    assert _stages(root) == []


def test_a_cdr_rated_after_the_stage_goes_to_the_next_bill(stage_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    root = stage_root
    root.clock._at = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)  # type: ignore[attr-defined]  # noqa: SLF001
    late_id = "late" + "0" * 28

    def rated_now(_name: str) -> None:   # a March call of ACC-00000, rated once the run has staged its usage
        with root.db.begin() as conn:
            conn.execute(insert(usage_ledger), [dict(
                tenant_id="mno", cdr_id=late_id, msisdn="33620000000", cycle="2026-03", currency="EUR", charge_micros=777_000,
                bundles_json="[]", start_time=datetime(2026, 3, 10, 12, 0, tzinfo=UTC), service="voice",
                destination_group="DST_NATIONAL_MOBILE", tariff_plan="TP_SMART_S", plan_set_version=1, units=60)])

    _wrap_stage(root, monkeypatch, rated_now)
    *_, run = root.billing.runs.start(PRINCIPAL, RunRequest("mno", RunMode.MANUAL, date(2026, 4, 1)))
    assert run.state.value == "done" and run.issued == ACCOUNTS, run
    with root.db.connect() as conn:
        frozen = {c for (ids,) in conn.execute(select(billing_frozen_usage.c.cdr_ids)) for c in ids.split("\n")}
    assert late_id not in frozen, "a CDR rated after the run staged its usage is not on this run's bills"
    # ... and is on the account's next bill (read back late_usage_days, from the ledger)
    bill, _xml = root.billing.runs.preview(PRINCIPAL, "mno", "ACC-00000", date(2026, 5, 1))
    assert [u.cdr_id for u in bill.usage] == [late_id]
    assert _stages(root) == []


@pytest.mark.parametrize("shares", [1, 2, 3, 8])
def test_the_stage_holds_what_the_ledger_gives_a_batch(stage_root: Root, shares: int) -> None:
    # the same blocks from the stage as from the ledger, number by number (the read's text is the same on both),
    # whatever the number of shares that fill it (each copies its range of the ledger's pages: every row once)
    root = stage_root
    numbers = [f"336{20000000 + i:08d}" for i in range(ACCOUNTS)]
    since, until = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    units = root.billing.runs._uow  # noqa: SLF001
    with root.db.begin() as conn:   # unbilled again: the stage leaves out what is frozen, as the ledger's read does
        conn.execute(text("DELETE FROM billing_frozen_usage WHERE first_start < '2026-03-01'"))
    with units() as uow:
        name = uow.stage_usage("mno", "run_stagetest", since, until, shares)
        uow.commit()
    try:
        with units(read_only=True) as uow:
            staged = uow.usage_blocks("mno", numbers, since, until, name)
            assert staged == uow.usage_blocks("mno", numbers, since, until)
            assert sum(g.cdrs for b in staged for g in b.groups) == ACCOUNTS * CDRS_PER_ACCOUNT
    finally:
        with units() as uow:   # its own unit: a read of the stage holds it until its transaction ends
            uow.drop_usage_stage(name)
    assert _stages(root) == []


def test_the_stage_is_the_ledger_at_one_moment(stage_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # the shares that fill the stage read in one snapshot, taken before the first starts: a CDR rated while they start
    # (here: committed right before each share's statement, of every number) is in none of them, whichever share its
    # rows fall to (it goes to the next bill, as test_a_cdr_rated_after_the_stage_goes_to_the_next_bill shows)
    root = stage_root
    since, until = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    original, rated = usage_stage._execute, []  # noqa: SLF001

    def rated_meanwhile(engine: Any, statements: list[Any], *args: Any, **kwargs: Any) -> None:
        if any("ORDER BY hashtext" in (s[0] if isinstance(s, tuple) else s) for s in statements):   # a share's fill
            ids = [f"mid{len(rated):04d}{i:05d}" + "0" * 20 for i in range(ACCOUNTS)]
            rated.extend(ids)
            with root.db.begin() as conn:
                conn.execute(insert(usage_ledger), [dict(
                    tenant_id="mno", cdr_id=cdr_id, msisdn=f"336{20000000 + i:08d}", cycle="2026-02", currency="EUR",
                    charge_micros=1_000, bundles_json="[]", start_time=datetime(2026, 2, 10, 12, 0, tzinfo=UTC), service="voice",
                    destination_group="DST_NATIONAL_MOBILE", tariff_plan="TP_SMART_S", plan_set_version=1, units=60)
                    for i, cdr_id in enumerate(ids)])
        original(engine, statements, *args, **kwargs)

    monkeypatch.setattr(usage_stage, "_execute", rated_meanwhile)
    units = root.billing.runs._uow  # noqa: SLF001
    try:
        with units() as uow:
            name = uow.stage_usage("mno", "run_snapshot", since, until, 2)
            uow.commit()
        try:
            with root.db.connect() as conn:
                found = conn.execute(text(f"SELECT count(*) FROM {name} WHERE cdr_id = ANY(:ids)"), {"ids": rated}).scalar_one()
            assert len(rated) == 2 * ACCOUNTS and found == 0, "no CDR rated after the stage's snapshot is in it"
        finally:
            with units() as uow:
                uow.drop_usage_stage(name)
    finally:
        with root.db.begin() as conn:
            conn.execute(usage_ledger.delete().where(usage_ledger.c.cdr_id.in_(rated)))


def test_a_ledger_laid_out_by_number_is_read_as_it_is(stage_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # the seed's ledger lies account by account (a number's CDRs on one page or two): the copy would cost more than
    # it saves, so nothing is staged (in the order calls are rated each CDR is on a page of its own: staged)
    monkeypatch.setattr(usage_stage, "SCATTERED_PAGES_PER_CDR", 0.25)
    since, until = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    with stage_root.billing.runs._uow() as uow:  # noqa: SLF001
        assert uow.stage_usage("mno", "run_laidout", since, until, 2) == ""
    assert _stages(stage_root) == []
