"""The bill run's worker processes (``servers/adapters/bill_run_processes.py``, the engine's ``BatchWorkers``): real
processes, started ready ahead of a run and kept; a worker that dies gives way to new ones; what crosses from a
worker to the run (the engine's own errors arrive as themselves)."""

from __future__ import annotations

import os
import pickle
import signal
from concurrent.futures import BrokenExecutor
from datetime import datetime, timezone

import pytest

from engine.errors import AlreadyExists, FailedPrecondition
from servers.adapters.bill_run_processes import BillRunProcesses, _Crossing


def test_an_engine_error_raised_in_a_worker_arrives_as_itself() -> None:
    sent = FailedPrecondition("BILL_RUN_CONTENDED", "bill run run_1: a batch kept losing its claims", "run_1")
    got = pickle.loads(pickle.dumps(_Crossing(sent)))
    assert type(got) is FailedPrecondition
    assert (got.reason, got.message, got.subject) == (sent.reason, sent.message, sent.subject)
    claimed = pickle.loads(pickle.dumps(_Crossing(AlreadyExists("billed CDR", "c1"))))
    assert type(claimed) is AlreadyExists and str(claimed) == "billed CDR c1 already exists"


def _no_runner() -> object:
    return object()


def _frozen_in_worker() -> tuple[int, int]:
    import gc

    return gc.get_freeze_count(), gc.get_threshold()[0]


def test_a_worker_keeps_what_it_started_with_out_of_the_cyclic_collector_and_collects_less_often() -> None:
    # the modules, ORM tables and runner a worker process builds live as long as it: frozen, the collector's passes
    # during its batches no longer walk them (real processes, as BillRunner._in_processes starts them)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from servers.adapters.bill_run_processes import WORKER_GC_YOUNG, _start_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                             initargs=(_no_runner, os.getpid())) as pool:
        frozen, young = pool.submit(_frozen_in_worker).result(timeout=120)
    assert frozen > 1_000 and young == WORKER_GC_YOUNG > 700


class _Prepared:
    """A worker's runner stand-in that records whether it compiled its plan sets as the worker started; its batch
    says which process did it (and a batch of ``["die"]`` kills its worker, as the out-of-memory killer would)."""

    compiled = False

    def compile_plan_sets(self) -> None:
        _Prepared.compiled = True

    def _batch(self, run: object, jobs: list[str], request: object, now: datetime, stage: str = "") -> tuple[int, bool]:
        if jobs == ["die"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid(), _Prepared.compiled


def _prepared_runner() -> object:
    return _Prepared()


NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _who(pool: BillRunProcesses) -> tuple[int, bool]:
    return pool.submit(None, [], None, NOW).result(timeout=60)  # type: ignore[arg-type]


def test_the_worker_processes_start_ready_ahead_of_a_run_and_stay_for_the_next() -> None:
    # a pool started per run paid each worker's start-up (imports, runner, plan set: ~1.2 s of CPU) in every run;
    # the kept pool starts them once, each compiling its plan sets as it starts, and later runs find the same processes
    pool = BillRunProcesses(_prepared_runner, 2)
    try:
        assert not pool.started
        assert pool.warm(wait=True, timeout=120) and pool.started
        started = _workers()
        assert len(started) == 2, started
        first = {_who(pool) for _ in range(8)}
        assert all(compiled for _pid, compiled in first), "each worker compiled its plan sets as it started"
        again = {_who(pool) for _ in range(8)}
        assert {pid for pid, _ in first | again} <= started and _workers() == started, "the same processes serve the next run"
        assert pool.warm(wait=True, timeout=1), "a warm pool is ready at once"
    finally:
        pool.close()


def _workers() -> set[int]:
    """This process's spawned worker processes (not multiprocessing's resource tracker)."""
    from pathlib import Path

    me, out = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == me and b"spawn_main" in (entry / "cmdline").read_bytes():
                    out.add(int(entry.name))
            except OSError:
                continue
    return out


def test_a_worker_that_dies_fails_its_batch_as_a_broken_executor_and_new_workers_take_the_next() -> None:
    # what BillRunner._in_processes relies on (engine.billing.ports.BatchWorkers): the batch in flight fails with
    # concurrent.futures.BrokenExecutor, and the batches it sends again go to new worker processes
    pool = BillRunProcesses(_prepared_runner, 1)
    try:
        assert pool.warm(wait=True, timeout=120)
        (first,) = _workers()
        with pytest.raises(BrokenExecutor):
            pool.submit(None, ["die"], None, NOW).result(timeout=60)  # type: ignore[arg-type]
        pid, compiled = _who(pool)
        assert pid != first and compiled and _workers() == {pid}, "a new worker, started ready, serves the next batch"
        assert pool.warm(wait=True, timeout=120), "the new pool's worker said it is ready"
    finally:
        pool.close()
    assert _workers() == set() and not pool.started, "close stops the workers"
