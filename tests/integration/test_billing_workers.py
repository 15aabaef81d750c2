"""A bill run's batches in worker processes (PostgreSQL): each worker on its own connection; a worker killed in the
middle of the run has its batch sent again to a new pool, and the run ends as one clean run would -- one invoice per
account and period, gapless numbers, each CDR billed once, exact counters, valid documents.  (The bill run's own
process killed and resumed is tests/integration/test_billing_crash.py, in worker processes on PostgreSQL too.)"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import func, select

from engine.billing.ports import RunMode
from engine.billing.runs import RunRequest
from engine.identity import SYSTEM
from servers.app import start_scheduler
from servers.root import Root
from store.billing import billing_invoices, billing_frozen_usage
from tests.integration.billing_support import validate_all_documents
from tests.integration.test_billing_crash import ACCOUNTS, CDRS_PER_ACCOUNT, CYCLE, seeded_root

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker_root(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    if not db_url.startswith("postgresql"):
        pytest.skip("bill runs use worker processes on PostgreSQL only (SQLite has one writer at a time)")
    root = seeded_root(db_url, tmp_path_factory.mktemp("workers"))
    try:
        yield root
        assert validate_all_documents(root) == ACCOUNTS
    finally:
        root.close()
    assert _children() == [], "the worker processes end with the root"


def _children() -> list[int]:
    """The run's worker processes (children of this process)."""
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the pool's workers (not multiprocessing's resource tracker, a child too)
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"spawn_main" in (entry / "cmdline").read_bytes():
                out.append(int(entry.name))
    return out


def test_the_worker_processes_start_before_the_run_and_serve_the_runs_after(worker_root: Root) -> None:
    # as the server does at its start (servers.app.start_scheduler): the workers' start-up (imports, runner,
    # plan set compiled) is not paid in a run, and every run after finds them ready
    runs = worker_root.billing.runs
    runs.batch_size, runs.process_min_accounts = 6, 0
    assert runs.workers == 2
    assert start_scheduler(worker_root) is None, "no scheduler configured: the workers are started all the same"
    pool = runs.batch_workers
    assert pool is not None and pool.started, "the server's start started the bill runs' worker processes"
    assert runs.warm_workers(wait=True)
    started = sorted(_children())
    assert len(started) == 2, started
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    for _ in range(2):
        *_, run = runs.start(principal, RunRequest("mno", RunMode.MANUAL, CYCLE, dry_run=True))
        assert run.state.value == "done" and run.failed == 0 and run.total == ACCOUNTS, run
        assert sorted(_children()) == started, "the same worker processes, kept from run to run"


def test_a_worker_process_killed_mid_run_has_its_batch_redone(worker_root: Root) -> None:
    root = worker_root
    runs = root.billing.runs
    assert runs.batch_workers is not None, "the composition root gives PostgreSQL bill runs worker processes"
    runs.batch_size, runs.workers, runs.process_min_accounts = 6, 2, 0
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    previews = {f"ACC-{i:05d}": runs.preview(principal, "mno", f"ACC-{i:05d}", CYCLE)[0].totals.tax_inclusive for i in range(ACCOUNTS)}
    progress = []
    killed = 0
    for run in runs.start(principal, RunRequest("mno", RunMode.MANUAL, CYCLE)):
        progress.append(run.issued)
        if killed == 0 and 0 < run.issued < ACCOUNTS // 2:
            children = _children()
            assert children, "the batches run in worker processes"
            os.kill(children[0], signal.SIGKILL)
            killed = 1
    assert killed == 1
    assert run.state.value == "done" and run.issued == ACCOUNTS and run.failed == 0, run
    assert progress == sorted(progress), "progress only moves forward"
    with root.db.connect() as conn:
        rows = conn.execute(select(billing_invoices.c.account_id, billing_invoices.c.number, billing_invoices.c.tax_inclusive)).all()
        frozen = _frozen_ids(conn)
    assert len(rows) == len({r[0] for r in rows}) == ACCOUNTS, "one invoice per account and period"
    assert sorted(int(r[1].split("-")[1]) for r in rows) == list(range(1, ACCOUNTS + 1)), "gapless numbers"
    assert {r[0]: int(r[2]) for r in rows} == previews, "the totals of one clean run"
    assert len(frozen) == len(set(frozen)) == ACCOUNTS * CDRS_PER_ACCOUNT, "each CDR billed once"


def _frozen_ids(conn: object) -> list[str]:
    """Every frozen CDR id, once per time it is frozen."""
    return [c for (ids,) in conn.execute(select(billing_frozen_usage.c.cdr_ids)) for c in ids.split("\n")]  # type: ignore[attr-defined]


def test_a_small_run_goes_to_the_started_worker_processes(worker_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # a run below PROCESS_MIN_ACCOUNTS stays in threads only while no worker is started: started ones (the server starts
    # them as it starts) take every run of two batches or more
    runs = worker_root.billing.runs
    runs.batch_size, runs.workers = 6, 2
    monkeypatch.setattr(runs, "process_min_accounts", ACCOUNTS + 1)    # the run is smaller than the minimum
    assert runs.warm_workers(wait=True)

    def in_this_process(*_args: object) -> None:
        raise AssertionError("a batch ran in this process, not in a worker process")

    # each worker process has a runner of its own (built by the factory): only this process's batches would fail
    monkeypatch.setattr(runs, "_batch", in_this_process)
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    *_, run = runs.start(principal, RunRequest("mno", RunMode.MANUAL, CYCLE, dry_run=True))
    assert run.state.value == "done" and run.failed == 0 and run.total == ACCOUNTS, run
