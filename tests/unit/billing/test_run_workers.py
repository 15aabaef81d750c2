"""What crosses from a bill run's worker process to the run: the engine's own errors arrive as themselves."""

from __future__ import annotations

import pickle

from engine.billing.runs import _Crossing
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

    from engine.billing.runs import WORKER_GC_YOUNG, _start_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                             initargs=(_no_runner, os.getpid())) as pool:
        frozen, young = pool.submit(_frozen_in_worker).result(timeout=120)
    assert frozen > 1_000 and young == WORKER_GC_YOUNG > 700
