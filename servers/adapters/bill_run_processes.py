"""A bill run's worker processes: the adapter of the engine's ``BatchWorkers`` port (``engine.billing.ports``), started
once, then kept for the life of the process that runs bills.

The composition root gives them to PostgreSQL bill runs (``servers.root._billing``): each worker builds its own
runner on its own database engine with ``servers.root.bill_run_worker``.  Starting a worker costs about 1.2 s of
CPU: the imports, the runner, the plan set compiled.  A pool started for each run paid that in every run, before its
first batch could start.  The pool here starts on first use, or ahead of any run (``BillRunner.warm_workers``: the
server does it as it starts, ``servers.app.start_scheduler``), and stays: each worker builds its runner and compiles
the plan sets in force as it starts, and its cache of compiled plan sets serves the runs after (a plan set
activated later is compiled by each worker at its first batch that bills with it).

Workers are started with ``spawn``: a fresh interpreter, forked and exec'd at once.  Forking the server itself
would copy a process whose gRPC threads may hold locks.  A worker that dies (killed, out of memory) breaks its
pool: the batches in flight fail with ``BrokenProcessPool`` (a ``concurrent.futures.BrokenExecutor``, as the port
says), and the next batch or ``warm`` drops the broken pool and starts a new one.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, Callable

from engine.billing.ports import BillRun
from engine.errors import rebuilt_error

log = logging.getLogger("rulebill.billing")

# builds a worker process's own runner (an engine.billing.runs.BillRunner on its own database engine: the root's
# bill_run_worker); picklable: sent to each worker process
WorkerFactory = Callable[[], Any]
WORKER_GC_YOUNG = 20_000      # a worker process's threshold for the cyclic collector's youngest generation (_start_worker)


class BillRunProcesses:
    """``size`` worker processes, each with the runner ``factory`` builds, kept until ``close`` (a ``BatchWorkers``)."""

    def __init__(self, factory: WorkerFactory, size: int) -> None:
        self.factory = factory
        self.size = max(1, size)
        self._context = multiprocessing.get_context("spawn")
        # released once by each worker when it has built its runner; made with the first pool (a semaphore of a spawn
        # context starts multiprocessing's resource tracker process: not for a root that never runs bills in processes)
        self._ready: Any = None
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether its processes were started (by ``warm`` or a batch) and not closed since."""
        return self._pool is not None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                if self._ready is None:
                    self._ready = self._context.Semaphore(0)
                self._pool = ProcessPoolExecutor(self.size, mp_context=self._context, initializer=_start_worker,
                                                 initargs=(self.factory, os.getpid(), self._ready))
            return self._pool

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """``fn(*args)`` in a worker.  A pool whose worker died refuses new work: it is dropped and a new one takes it."""
        pool = self._executor()
        try:
            return pool.submit(fn, *args)
        except BrokenProcessPool:
            self._broken(pool)
        return self._executor().submit(fn, *args)

    def submit(self, run: BillRun, jobs: list[Any], request: Any, now: datetime, stage: str = "") -> Future[Any]:
        """``BillRunner._batch(run, jobs, request, now, stage)`` in a worker: its tally, or its error as itself."""
        return self._submit(worker_batch, run, jobs, request, now, stage)

    def warm(self, wait: bool = False, timeout: float = 300.0) -> bool:
        """Start every worker now (each builds its runner and compiles the plan sets in force); ``wait``: until all of
        them have (False when ``timeout`` ran out first).  A pool already warm starts nothing."""
        # with spawn, a pool starts a process for each task sent while none of its workers is idle, up to its size
        for _ in range(self.size):
            self._submit(_started)
        if not wait:
            return True
        deadline = time.monotonic() + timeout
        for _ in range(self.size):
            if not self._ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        for _ in range(self.size):     # the count stays for the next to wait on (the workers are ready still)
            self._ready.release()
        return True

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        """A worker of ``pool`` died: the pool is dropped (once, whichever batch noticed first)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
                while self._ready.acquire(block=False):   # the new pool's workers will say they are ready themselves
                    pass
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# -- in the worker process --------------------------------------------------------------------
_worker_runner: Any = None      # the worker's BillRunner


def _start_worker(factory: WorkerFactory, parent_pid: int, ready: Any = None) -> None:
    global _worker_runner
    _worker_runner = factory()
    prepare = getattr(_worker_runner, "compile_plan_sets", None)
    if prepare is not None:
        prepare()
    # what the worker imported and built lives as long as the worker: out of the cyclic collector's way, so its
    # collections go over a batch's objects only (a bill run's Python spent ~10 % of its CPU time in them, most of
    # it walking the modules, the ORM's tables and the plan set again and again); and the youngest generation
    # collected every WORKER_GC_YOUNG allocations rather than 700: a batch's objects are freed by their reference
    # counts, and each collection walked the ones still alive (2,000 invoices in one process: 0.27 s of collections,
    # 0.09 s frozen, 0.03 s frozen and collected less often)
    gc.freeze()
    gc.set_threshold(WORKER_GC_YOUNG, *gc.get_threshold()[1:])
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="bill-run-orphan-watch", daemon=True).start()
    if ready is not None:
        ready.release()


def _started() -> None:
    """The task that makes a pool start a worker (BillRunProcesses.warm)."""


def _exit_with_parent(parent_pid: int) -> None:
    # a worker whose bill run process was killed has nobody to report to: it stops (its open transaction, if
    # any, rolls back with its connection; the resumed run redoes that batch)
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def worker_batch(run: Any, jobs: list[Any], request: Any, now: datetime, stage: str = "") -> Any:
    """BillRunner._batch(run, jobs, request, now, stage) in this worker process: its tally, or its error as itself."""
    assert _worker_runner is not None
    try:
        return _worker_runner._batch(run, jobs, request, now, stage)  # noqa: SLF001 - the worker's half of BillRunner._in_processes
    except Exception as exc:
        crossing = _Crossing(exc)
        try:
            pickle.loads(pickle.dumps(crossing))
        except Exception:  # noqa: BLE001 - an error whose state cannot cross to the parent goes as its text
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise crossing from None


class _Crossing(Exception):
    """A worker's error on its way to the bill run's process, arriving there as itself: an engine error pickles as
    itself anyway; another (a driver's) may take arguments that plain exception pickling does not give back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error

    def __reduce__(self) -> tuple[object, ...]:
        return (rebuilt_error, (type(self.error), self.error.args, self.error.__dict__))
