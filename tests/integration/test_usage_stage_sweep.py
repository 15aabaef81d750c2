"""A bill run's staged usage (PostgreSQL's unlogged ``billing_stage_<run>`` tables, store/usage_stage.py) that no run
reads any more is dropped: the stage of a finished or failed run, of no run at all, and of a run still marked running
(killed, never resumed) once older than ``billing_stage_max_age_hours``; a running run's younger stage stays.  The
stages are made by the store's own ``stage_usage``; their age is judged by the server's clock, injected here (no
sleeps): as the server starts (``start_scheduler``), on a scheduler round and by ``rulebill db drop-stale-stages``.
On SQLite nothing is staged, and nothing is dropped."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from engine.billing.ports import BillRun, RunMode, RunState
from engine.clock import FixedClock
from engine.settings import Settings
from servers.app import start_scheduler
from store import usage_stage
from store.billing import SqlBillingUnitOfWorkFactory
from tests.integration.conftest import Stack, running_stack

pytestmark = pytest.mark.integration
UTC = timezone.utc
PERIOD = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC))


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Iterator[Stack]:
    home = Path(tmp_path_factory.mktemp("home"))
    with running_stack(Settings(home=home, database_url=db_url, billing_stage_max_age_hours=24), clock) as s:
        yield s


def _stages(stack: Stack) -> set[str]:
    with stack.root.db.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE starts_with(tablename, 'billing_stage_')"))}


def _staged_run(stack: Stack, monkeypatch: pytest.MonkeyPatch, run_id: str, state: RunState | None) -> str:
    """A run in ``state`` (None: no run) with its usage staged by the store, as a large run's start stages it."""
    # the ledger of this test is tiny; the stage is made whatever its layout (the heuristic is not under test here)
    monkeypatch.setattr(usage_stage, "scattered", lambda *a: True)
    uow_factory = SqlBillingUnitOfWorkFactory(stack.root.uow)
    with uow_factory() as uow:
        if state is not None:
            uow.add_run(BillRun(run_id, "mno", RunMode.MANUAL, None, (), False, False, state, "test", stack.root.clock.now()))
        name = uow.stage_usage("mno", run_id, *PERIOD, 1)
        uow.commit()
    return name


def test_abandoned_stages_are_dropped_and_a_running_run_s_young_stage_is_kept(stack: Stack, clock: FixedClock,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if stack.backend != "postgres":
        assert stack.root.drop_abandoned_stages() == []   # SQLite stages nothing
        return
    clock._at = datetime.now(UTC)   # noqa: SLF001 - the stamp is the database's clock; the server's starts from it
    done = _staged_run(stack, monkeypatch, "run_00000000000000d1", RunState.DONE)
    failed = _staged_run(stack, monkeypatch, "run_00000000000000f1", RunState.FAILED)
    orphan = _staged_run(stack, monkeypatch, "run_00000000000000a1", None)
    running = _staged_run(stack, monkeypatch, "run_0000000000000011", RunState.RUNNING)
    assert {done, failed, orphan, running} <= _stages(stack)
    with stack.root.db.connect() as conn:   # an unrelated table with the prefix but no run id shape is not the sweep's
        conn.execute(text("CREATE TABLE IF NOT EXISTS \"billing_stage_not-a-run\" (x int)"))
        conn.commit()

    # an hour later: the finished, failed and run-less stages go; the running run's stays (a batch may read it)
    clock.advance(hours=1)
    assert sorted(stack.root.drop_abandoned_stages()) == sorted([done, failed, orphan])
    assert running in _stages(stack) and "billing_stage_not-a-run" in _stages(stack)
    assert stack.root.drop_abandoned_stages() == []

    # staged 23 hours ago: still kept; 25 hours: the run was killed and never resumed -- dropped (a resume stages again)
    clock.advance(hours=22)
    assert stack.root.drop_abandoned_stages() == []
    clock.advance(hours=2)
    assert stack.root.drop_abandoned_stages() == [running]
    assert _stages(stack) == {"billing_stage_not-a-run"}

    # a resumed run's stage is fresh (stamped by the database's clock, which the server's is set back to here): kept
    clock._at = datetime.now(UTC)   # noqa: SLF001
    again = _staged_run(stack, monkeypatch, "run_0000000000000022", RunState.RUNNING)
    assert stack.root.drop_abandoned_stages() == [] and again in _stages(stack)
    usage_stage.drop_stage(stack.root.db, again)
    with stack.root.db.connect() as conn:
        conn.execute(text("DROP TABLE \"billing_stage_not-a-run\""))
        conn.commit()


def test_the_server_s_start_and_the_admin_command_drop_them(stack: Stack, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    if stack.backend != "postgres":
        pytest.skip("PostgreSQL only: SQLite stages nothing")
    clock._at = datetime.now(UTC)   # noqa: SLF001
    killed = _staged_run(stack, monkeypatch, "run_00000000000000b1", RunState.RUNNING)
    start_scheduler(stack.root)   # billing_scheduler_seconds 0: no scheduler thread, the start's sweep only
    assert killed in _stages(stack)
    clock.advance(hours=30)
    start_scheduler(stack.root)
    assert killed not in _stages(stack)

    # the command runs on the wall clock: a running run's stage just made is kept at the default age (24 h), dropped at 0
    from servers.admin import main

    left = _staged_run(stack, monkeypatch, "run_00000000000000c1", RunState.RUNNING)
    monkeypatch.setenv("RULEBILL_DATABASE_URL", str(stack.root.db.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("RULEBILL_HOME", str(stack.root.settings.home))
    assert main(["db", "drop-stale-stages"]) == 0
    assert left in _stages(stack) and "0 abandoned" in capsys.readouterr().out
    assert main(["db", "drop-stale-stages", "--older-than-hours", "0"]) == 0
    assert left not in _stages(stack) and f"dropped {left}" in capsys.readouterr().out
