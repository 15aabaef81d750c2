"""What crosses from a bill run's worker process to the run: the engine's own errors arrive as themselves."""

from __future__ import annotations

import pickle

from engine.billing.workers import _Crossing
from engine.errors import AlreadyExists, FailedPrecondition


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
    import os
    from concurrent.futures import ProcessPoolExecutor

    from engine.billing.workers import WORKER_GC_YOUNG, _start_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                             initargs=(_no_runner, os.getpid())) as pool:
        frozen, young = pool.submit(_frozen_in_worker).result(timeout=120)
    assert frozen > 1_000 and young == WORKER_GC_YOUNG > 700


class _Prepared:
    """A worker's runner stand-in that records whether it compiled its plan sets as the worker started."""

    compiled = False

    def compile_plan_sets(self) -> None:
        _Prepared.compiled = True


def _prepared_runner() -> object:
    return _Prepared()


def _who() -> tuple[int, bool]:
    import os

    return os.getpid(), _Prepared.compiled


def test_the_worker_processes_start_ready_ahead_of_a_run_and_stay_for_the_next() -> None:
    # a pool started per run paid each worker's start-up (imports, runner, plan set: ~1.2 s of CPU) in every run;
    # the kept pool starts them once, each compiling its plan sets as it starts, and later runs find the same processes
    from engine.billing.workers import WorkerPool

    pool = WorkerPool(_prepared_runner, 2)
    try:
        assert pool.warm(wait=True, timeout=120)
        started = _workers()
        assert len(started) == 2, started
        first = {pool.submit(_who)[1].result(timeout=60) for _ in range(8)}
        assert all(compiled for _pid, compiled in first), "each worker compiled its plan sets as it started"
        again = {pool.submit(_who)[1].result(timeout=60) for _ in range(8)}
        assert {pid for pid, _ in first | again} <= started and _workers() == started, "the same processes serve the next run"
        assert pool.warm(wait=True, timeout=1), "a warm pool is ready at once"
    finally:
        pool.close()


def _workers() -> set[int]:
    """This process's spawned worker processes (not multiprocessing's resource tracker)."""
    import os
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
