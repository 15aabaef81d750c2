"""Re-rating: the stored CDRs of a period rated again under a plan set version, replacing their ledger rows.

The CDRs are those the tenant's plan set prices: its own and, for the operator,
its MVNOs' that have no plan set of their own.  They are read from the CDR
store in start-time order, in chunks, and each chunk goes through the same
path as RatingService with counters (engine.rating.desk): one evaluator, one
transaction per chunk, ledger rows replaced and counters and balances kept
equal to the ledger with compare-and-set writes.

Before the first chunk the run gives back everything its CDRs held (bundle
units, charges): the period's CDRs share their subscribers' units as if rated
from scratch in start order, and CDRs outside the period keep theirs.  What
they held is computed from the ledger when the run starts, so running the same
request twice, or again after a crash in the middle, gives the result of one
clean run.  A chunk that loses a race to a live rating of the same subscriber
rates again; a run that keeps losing stops with ``RATING_CONTENTION`` and can
be started again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Protocol

from engine.errors import ErrorList
from engine.gcpause import collector_paused
from engine.periods import check_period
from engine.identity import Permission, Principal
from engine.plans.catalogue import PlanDesk, PlanUnitOfWorkFactory
from engine.ports import UnitOfWorkFactory
from engine.rating.desk import ChunkOutcomes, RatingDesk
from engine.rating.usage import Held, add_sums
from engine.readahead import ReadAhead

CHUNK = 20_000
# chunks rated with the cyclic collector paused from one to the next (engine.gcpause).  Each chunk pauses it while it is
# rated and written; ended between chunks, the next allocation had it walk every object made since (the chunk in
# flight, the next chunk read: some 10^5 objects, tens of ms each time, and again when they were promoted: 0.5 CPU-s of
# collections for 200k CDRs, measured with gc.callbacks).  Nothing a chunk builds refers back to itself (reference
# counting frees it); the collector runs between every GC_EVERY chunks, for any cycle other work made meanwhile.
GC_EVERY = 10
# what the run's CDRs hold is summed in this many slices of the period at once, each on a connection of its own: the
# sum is one join of the period's stored CDRs with their ledger rows (an index probe per CDR) that the database runs on
# one core, while nothing else of the run can start (the read-ahead waits after its first chunk); two slices keep both
# cores of a two-core server busy (docs/BENCHMARKS.md)
HELD_PARTS = 2


class StoredCdrRows(Protocol):
    """The CDR store as re-rating reads it (store/plans.py implements it over mediated_cdrs)."""

    def count(self, tenant_ids: set[str], start: datetime, end: datetime) -> int: ...
    def chunks(self, tenant_ids: set[str], start: datetime, end: datetime, size: int) -> Iterator[list[tuple[Any, ...]]]: ...
    def chunks_held(self, tenant_ids: set[str], start: datetime, end: datetime,
                    size: int) -> Iterator[tuple[list[tuple[Any, ...]], Any]]: ...


@dataclass
class RerateSummary:
    cdrs: int = 0
    rated: int = 0
    unrated: int = 0
    rejected: int = 0
    charged_before: dict[str, int] = field(default_factory=dict)   # currency -> micros
    charged_after: dict[str, int] = field(default_factory=dict)
    plan_set_version: int = 0


class RerateDesk:
    """Use case of RerateService and ``rulebill rerate``."""

    def __init__(self, rating: RatingDesk, plans: PlanDesk, plan_uow: PlanUnitOfWorkFactory, uow: UnitOfWorkFactory,
                 stored: StoredCdrRows, chunk: int = CHUNK, held_parts: int = HELD_PARTS) -> None:
        self._rating = rating
        self._plans = plans
        self._plan_uow = plan_uow
        self._uow = uow
        self._stored = stored
        self._chunk = chunk
        self._held_parts = max(1, held_parts)

    def rerate(self, principal: Principal, tenant_id: str, start: datetime, end: datetime, version: int = 0,
               progress: Callable[[int, int], None] | None = None) -> RerateSummary:
        """Run to the end; ``progress(done, total)`` after each chunk."""
        for step in self.steps(principal, tenant_id, start, end, version):
            if isinstance(step, RerateSummary):
                return step
            if progress is not None:
                progress(*step)
        raise AssertionError("a run ends with its summary")  # pragma: no cover

    def steps(self, principal: Principal, tenant_id: str, start: datetime, end: datetime,
              version: int = 0) -> Iterator[tuple[int, int] | RerateSummary]:
        """The run as it goes: ``(done, total)`` after each committed chunk, then the summary.  Stopping early
        leaves the committed chunks re-rated; starting again finishes the run as one clean run would."""
        principal.require(Permission.RATING_STORE)   # it rewrites the usage ledger
        principal.require(Permission.PLAN_READ)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        errors = ErrorList()
        check_period(start, end, errors, "re-rate")
        errors.raise_if_any("cannot re-rate")
        ps = compiled = None
        if version:
            ps = self._plans.get(principal, tenant, version)       # NOT_FOUND when the tenant has no such version
            compiled = self._plans.cache.get(ps)
        scope = self._scope(tenant)
        summary = RerateSummary(plan_set_version=version)
        total = self._stored.count(scope, start, end)
        # the stored CDRs read on a thread, a chunk ahead of the rating (they depend on nothing it changes): the first
        # one while what the run's CDRs hold is summed.  On PostgreSQL with each chunk the ledger rows of its CDRs (what
        # they hold, where they lie), so the rating thread does not wait for that look-up: a row changed between that
        # read and the chunk's write is a lost race there, and the chunk is rated again with its rows looked up afresh
        # (and the subscribers of its CDRs)
        reads = ReadAhead(self._reads(scope, start, end), "rerate-reads")
        try:
            # the cyclic collector paused while the sums are read (see GC_EVERY): some 10^5 rows and their sums a period
            # of 300k CDRs, with the read-ahead's first chunk beside them; the collector's walks of them were a tenth
            # of this process's CPU for the run (400 collections, one of the whole heap, 0.64 CPU-s of 6.5, gc.callbacks)
            with collector_paused():
                held = self.held(scope, start, end)
            for charges in held.charges.values():
                for currency, micros in charges.items():
                    summary.charged_before[currency] = summary.charged_before.get(currency, 0) + micros
            yield 0, total
            # on PostgreSQL a chunk is rated while the one before is written (engine.rating.desk.RatingStream)
            stream = self._rating.stream(principal, held)
            waiting: Callable[[], ChunkOutcomes] | None = None
            # the cyclic collector paused for GC_EVERY chunks at a time, not chunk by chunk (see GC_EVERY); given back
            # when the run ends or its caller stops it (closes this generator)
            pause = ExitStack()
            try:
                for n, (rows, ahead, subs) in enumerate(reads):
                    if n % GC_EVERY == 0:
                        pause.close()
                        pause.enter_context(collector_paused())
                    stored = stream.rerate_rows(rows, ps, compiled, ahead, subs)
                    if waiting is not None:
                        yield _count(summary, waiting()), total
                    waiting = stored
                if waiting is not None:
                    yield _count(summary, waiting()), total
            finally:
                pause.close()
                stream.close()
        finally:
            reads.stop()
        yield summary

    def held(self, scope: set[str], start: datetime, end: datetime) -> Held:
        """What the ledger rows of the stored CDRs of ``scope`` in [start, end) hold: the sums of HELD_PARTS slices of the
        period (each CDR in one: ``[start + i * span / parts, start + (i + 1) * span / parts)``), read at once, each
        in a read transaction of its own.  Every CDR is counted once, but the slices are not one snapshot: a CDR stored
        in the period while they are read is in them or not by its slice's moment, as it is in the run's reads ahead
        by theirs: the run as a whole was never one moment of the ledger, and re-rating a period while CDRs are still
        being rated into it is not made safe here."""
        parts = self._held_parts
        bounds = [start + (end - start) * i / parts for i in range(parts)] + [end]

        def part(i: int) -> Held:
            with self._plan_uow(read_only=True) as uow:
                return uow.usage.held_by_stored(scope, bounds[i], bounds[i + 1])

        if parts == 1:
            return part(0)
        with ThreadPoolExecutor(parts - 1, thread_name_prefix="rerate-held") as pool:
            later = [pool.submit(part, i) for i in range(1, parts)]
            slices = [part(0)] + [f.result() for f in later]
        return _summed(slices)

    def _reads(self, scope: set[str], start: datetime, end: datetime) -> Iterator[tuple[list[tuple[Any, ...]], Any, dict[str, Any]]]:
        """The run's chunks as read ahead: the stored CDRs, their ledger rows (StoredCdrRows.chunks_held) and their
        subscribers (RatingDesk.subscribers_of_rows)."""
        chunks = self._stored.chunks_held(scope, start, end, self._chunk)
        try:
            for rows, ahead in chunks:
                yield rows, ahead, self._rating.subscribers_of_rows(rows)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()   # its connection handed back on the reading thread when the run stops early

    def _scope(self, tenant: str) -> set[str]:
        """The tenant, and for an operator its MVNOs that have no plan set version of their own."""
        scope = {tenant}
        with self._uow(read_only=True) as uow:
            children = [t.tenant_id for t in uow.tenants.list(None, None, None, 10_000) if t.parent_tenant_id == tenant]
        with self._plan_uow(read_only=True) as uow:
            scope.update(c for c in children if not uow.plan_versions.activation_heads(c))  # type: ignore[attr-defined]
        return scope


def _summed(slices: list[Held]) -> Held:
    """The Held of disjoint sets of CDRs added up: per subscriber cycle, units per bundle and micros per currency."""
    bundles: dict[Any, dict[str, int]] = {}
    charges: dict[Any, dict[str, int]] = {}
    for one in slices:
        add_sums(bundles, one.bundles)
        add_sums(charges, one.charges)
    return Held(bundles, charges)


def _count(summary: RerateSummary, outcomes: ChunkOutcomes) -> int:
    """A committed chunk's outcomes added to the summary; the CDRs done so far."""
    after = summary.charged_after
    for currency, micros in outcomes.charged.items():
        after[currency] = after.get(currency, 0) + micros
    summary.cdrs += outcomes.cdrs
    summary.rated += outcomes.rated
    summary.rejected += outcomes.rejected
    summary.unrated += outcomes.cdrs - outcomes.rated - outcomes.rejected
    return summary.cdrs


__all__ = ["RerateDesk", "RerateSummary", "StoredCdrRows"]
