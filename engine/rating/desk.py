"""Rating as a service: pick the plan set version and tariff plan of each CDR, rate it with the one evaluator,
and (optionally) consume bundle counters, add to usage balances, fire credit alerts and keep the usage ledger.

The plan set is the CDR tenant's version active at the CDR's start time, or
its operator's when the tenant has none.  The tariff plan is the one asked
for, else the subscriber's (by a_number), else the wholesale plan whose
customer is the CDR's tenant, from the operator's plan set in force (never one the tenant uploaded).

With counters a chunk of CDRs is one transaction (engine.rating.usage): the
ledger rows of its CDRs, the counters and balances of its subscribers' cycles
and the credit alerts already fired are read once; what the chunk's CDRs took
before is given back; the CDRs are rated in order against the counters in
memory; ledger rows, counters and balances are written back in bulk with
compare-and-set, and a chunk that lost a race to another replica is rated
again.  A stream's chunks (RatingStream, RateCdrs) overlap: one is written and
committed on its own unit of work while the next is read and rated against the
counters it writes (on SQLite, one writer at a time, the next is read on a
read-only snapshot); a stream reads each subscriber cycle's counters and balances
once and goes on from what its chunks wrote (a stale value fails the
compare-and-set and the chunk is rated again).  Counters follow each subscriber's bill cycle in the time zone of its
tariff plan, from the anchor day of the billing account the subscriber is assigned to (read with the
subscriber, store/plans.py; 1 when it is on no account; ``anchor_of`` may say otherwise).  Add-ons a subscriber
bought (engine.rating.addons) have counters of their own, read and written with the chunk's; each CDR's wallet
holds those valid at its start time.

A chunk's per-row and per-subscriber loops (each row's plan set, tariff plan and subscriber, its counter key, the
monthly counters of its cycle, its wallet, its ledger row and charge) run in C (engine/rating/_chunkrows.c) when it is
built; the Python loops beside each call are the oracle tests/unit/rating/test_chunk_rows_c.py holds it to
(``RatingDesk.use_c`` False), and the way a build without a C compiler rates.  A chunk whose rows may fire credit
alerts writes its ledger rows in Python (the alerts are fired row by row in its transaction).
"""

from __future__ import annotations

import json
import re
import weakref
from itertools import chain, compress, repeat
from operator import itemgetter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence, cast

from engine.cdr import COLUMNS, MediatedCdr, returned_by_rap
from engine.clock import Clock
from engine.errors import ErrorList, FailedPrecondition
from engine.identity import Permission, Principal
from engine.paging import Page
from engine.periods import month_problem
from engine.plans.catalogue import PlanDesk, PlanSetVersion, PlanUnitOfWorkFactory
from engine.ports import UnitOfWorkFactory
from engine.rating.addons import ActiveAddOn, AddOnWallets, in_row_cycles, keys_in_uses
from engine.rating.alerts import CreditAlertRecord, fire_credit_alerts
from engine.rating.bandclock import NEVER
from engine.rating.compiled import CompiledPlans, CompiledVersion
from engine.gcpause import collector_paused
from engine.rating.groups import grouped
from engine.rating.evaluator import RATED, REJECTED, UNRATED, Evaluator, Row, row_of
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.named_plan import hide_plans_of_others
from engine.rating.result import RatedCdr, RatingStatus, UnratedReason
from engine.rating.usage import CounterKey, CounterRow, Held, Taken, Usage, bundle_units, cycle_of
from engine.subscriber_numbers import msisdn_problem, normalise_msisdn

MAX_RETRIES = 8
_TENANT, _A, _START, _ID = COLUMNS.index("tenant"), COLUMNS.index("a_number"), COLUMNS.index("start_time"), COLUMNS.index("cdr_id")
_TENANT_ID = itemgetter(_TENANT, _ID)   # a row's (tenant, CDR id)
_ATTRS = COLUMNS.index("attributes")
_SERVICE = COLUMNS.index("service")
_COLS = (_TENANT, _A, _START, _ID, _SERVICE)   # the columns engine.rating._chunkrows reads

try:   # the per-row loops of a chunk in C (engine/rating/_chunkrows.c); the Python loops below are its oracle
    from engine.rating import _chunkrows
except ImportError:  # pragma: no cover - a build without a C compiler
    _chunkrows = None   # type: ignore[assignment]


@dataclass(frozen=True)
class RatingOutcome:
    rated: RatedCdr
    plan_set_version: int


class _Chunk:
    """The rows of a chunk and what rating them needs, one list per fact (index i is row i)."""

    __slots__ = ("rows", "ats", "versions", "compileds", "plan_ids", "subscribers", "keys", "tariffs", "starts", "facts")

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows = rows
        # where each message but the first starts, when several are rated as one chunk (RateCdrs' groups): a CDR stored
        # before gives back what it held where its own message starts, as when each message is a chunk of its own
        self.starts: list[int] = []
        self.ats: list[datetime | None] = []               # the start time, parsed once
        self.versions: list[PlanSetVersion | None] = []
        self.compileds: list[CompiledPlans | None] = []
        self.plan_ids: list[str] = []
        self.subscribers: list[Any] = []
        self.keys: list[CounterKey | None] = []             # the subscriber's cycle, when its counters are used
        self.tariffs: list[CompiledVersion | None] = []
        self.facts: tuple[bool, bool] | None = None          # _subscriber_facts, once its subscribers are known


class RatedRows:
    """What :meth:`RatingDesk.rate_rows` gives: the evaluator's row of each CDR (engine.rating.evaluator.Row), the
    plan set version and the tariff plan that rated it; the full RatedCdr of one only when asked for."""

    __slots__ = ("results", "versions", "plan_ids", "_desk", "_compileds")

    def __init__(self, desk: "RatingDesk", chunk: _Chunk, results: list[Row]) -> None:
        self.results = results
        self.versions = [ps.version if ps is not None else 0 for ps in chunk.versions]
        self.plan_ids = chunk.plan_ids
        self._desk = desk
        self._compileds = chunk.compileds

    def part(self, start: int, end: int) -> "RatedRows":
        """Rows ``start`` to ``end`` (not included) alone: one message's share of a chunk that several were rated in
        (RateCdrs' group of messages, servers.rating_service)."""
        if start == 0 and end == len(self.results):
            return self
        out = RatedRows.__new__(RatedRows)
        out.results, out.versions, out.plan_ids = self.results[start:end], self.versions[start:end], self.plan_ids[start:end]
        out._desk, out._compileds = self._desk, self._compileds[start:end]
        return out

    @staticmethod
    def joined(parts: "list[RatedRows]") -> "RatedRows":
        """The rows of several parts one after the other: one message's chunk rated as consecutive pieces
        (a CDR that comes twice in it, see _without_repeats)."""
        if len(parts) == 1:
            return parts[0]
        out = RatedRows.__new__(RatedRows)
        out.results, out.versions, out.plan_ids, out._compileds = [], [], [], []
        out._desk = parts[0]._desk
        for p in parts:
            out.results += p.results
            out.versions += p.versions
            out.plan_ids += p.plan_ids
            out._compileds += p._compileds
        return out

    def plan_shown(self, i: int) -> str:
        """The tariff plan an unrated or rejected row names (as its RatedCdr does): the one tried when it was unrated."""
        return self.plan_ids[i] if self.results[i][0] == UNRATED and self._compileds[i] is not None else ""

    def detail(self, i: int, cdr: MediatedCdr) -> RatedCdr:
        """The full RatedCdr of row ``i`` (``cdr``: that row's CDR); the explanation is written when read."""
        r, compiled = self.results[i], self._compileds[i]
        if compiled is None:
            return RatedCdr(cdr.cdr_id, RatingStatus(r[0]), reason=r[2])
        return self._desk.evaluator(compiled).rated_of(r, cdr, self.plan_ids[i])


@dataclass
class ChunkOutcomes:
    """What the rows of a re-rating chunk came to: how many, rated and rejected, and the rated ones' charges by
    currency (micros)."""

    cdrs: int
    rated: int
    rejected: int
    charged: dict[str, int]


class RatingDesk:
    """Use cases of RatingService (and the rating behind mediation, what-if and re-rating)."""

    def __init__(self, plans: PlanDesk, plan_uow: PlanUnitOfWorkFactory, uow: UnitOfWorkFactory, clock: Clock,
                 credit_alerts: Any = None, limits: CdrLimits = DEFAULT_LIMITS,
                 anchor_of: Callable[[Any], int] | None = None) -> None:
        self._plans = plans
        self._plan_uow = plan_uow
        self._uow = uow
        self._clock = clock
        # engine.eventrules.CreditAlerts: evaluated when rating with counters for subscribers with a credit limit
        self.credit_alerts = credit_alerts
        self.limits = limits
        # the day of month a subscriber's bill cycle starts (its billing account's anchor); 1 when unknown
        self.anchor_of = anchor_of or _anchor_day
        self._parents: dict[str, str] = {}
        self._compiled: dict[str, CompiledPlans] = {}
        self._evaluators: weakref.WeakKeyDictionary[CompiledPlans, Evaluator] = weakref.WeakKeyDictionary()
        self.races = 0   # chunks rated again because another writer changed their counters first
        self._cycles: dict[tuple[Any, int], str] = {}   # (local day, anchor day) -> cycle
        # the per-row loops of a chunk in C (engine.rating._chunkrows) when built; False: the Python loops (the oracle)
        self.use_c = _chunkrows is not None

    # -- the evaluator ------------------------------------------------------------------------------------
    def evaluator(self, compiled: CompiledPlans) -> Evaluator:
        """The one evaluator of a compiled plan set (its caches live as long as the plan set does)."""
        ev = self._evaluators.get(compiled)
        if ev is None:
            ev = self._evaluators[compiled] = Evaluator(compiled, self.limits)
        return ev

    def plan_set_at(self, tenant: str, at: datetime) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        """The plan set version in force for ``tenant`` at ``at`` (its operator's when it has none); internal."""
        return self._in_force(tenant, at, {})

    def cycle_at(self, subscriber: Any, compiled: CompiledPlans | None, at: datetime) -> str:
        """The subscriber's bill cycle at ``at``, in its tariff plan's time zone (UTC without a plan in force)."""
        epoch = int(at.timestamp())
        plan = compiled.plan(subscriber.tariff_plan) if compiled is not None else None
        v = plan.version_at(epoch) if plan is not None else None
        day = v.clock.local_day(epoch) if v is not None else at.astimezone(timezone.utc).date()
        return cycle_of(day, self.anchor_of(subscriber))

    def usage_of(self, tenant: str, msisdn: str, cycle: str) -> dict[str, int]:
        """Charged usage of a subscriber's cycle by currency; internal."""
        with self._plan_uow(read_only=True) as uow:
            return uow.usage.balances_of([(tenant, msisdn, cycle)]).get((tenant, msisdn, cycle), {})

    # -- rating ---------------------------------------------------------------------------------------------
    def rate(self, principal: Principal, cdr: MediatedCdr, tariff_plan: str = "", use_counters: bool = False) -> RatingOutcome:
        return self.rate_many(principal, [cdr], tariff_plan, use_counters)[0]

    def rate_many(self, principal: Principal, cdrs: list[MediatedCdr], tariff_plan: str = "",
                  use_counters: bool = False) -> list[RatingOutcome]:
        """Rate a chunk of CDRs, each with its full RatedCdr (what rate_rows gives, written out per CDR)."""
        cdrs = [c if c.tenant else c.with_changes(tenant=principal.tenant_id) for c in cdrs]
        rated = self.rate_rows(principal, [row_of(c) for c in cdrs], tariff_plan, use_counters)
        return [RatingOutcome(rated.detail(i, cdr), rated.versions[i]) for i, cdr in enumerate(cdrs)]

    def rate_rows(self, principal: Principal, rows: Sequence[tuple[Any, ...]], tariff_plan: str = "",
                  use_counters: bool = False) -> "RatedRows":
        """Rate a chunk of CDR rows of the normalised layout (RatingService): plan sets, subscribers and counters
        are read once per chunk; one evaluator row per CDR, the full RatedCdr only when asked for (RatedRows.detail).
        A row without a tenant is the caller's."""
        rows = _own_rows(principal, rows, use_counters)
        pieces = _without_repeats(rows) if use_counters else None
        if pieces is not None:   # a CDR twice in the chunk: rated again after the rows before it, as if sent again
            return RatedRows.joined([self._rate_own(piece, tariff_plan, use_counters) for piece in pieces])
        return self._rate_own(rows, tariff_plan, use_counters)

    def _rate_own(self, rows: list[tuple[Any, ...]], tariff_plan: str, use_counters: bool) -> "RatedRows":
        """rate_rows of rows checked for the caller, no CDR twice among them when counters are used."""
        with collector_paused():   # a chunk builds many small acyclic objects (see engine.gcpause)
            chunk = self._resolve(rows, tariff_plan, need_subscribers=not tariff_plan or use_counters)
            results = self._with_counters(chunk) if use_counters else self._rate_items(chunk, None)
        return RatedRows(self, chunk, results)

    def stream(self, principal: Principal, held: Held | None = None) -> "RatingStream":
        """The chunks of one stream (RateCdrs; a re-rating run, engine.rating.rerate, with its ``held``), each rated
        as :meth:`rate_rows` rates it, a chunk's database write overlapping the rating of the next where the store
        allows (RatingStream)."""
        principal.require(Permission.RATING)
        return RatingStream(self, principal, held)

    def rate_stored(self, principal: Principal, rows: Sequence[tuple[Any, ...]], version: PlanSetVersion | None = None,
                    compiled: CompiledPlans | None = None) -> list[tuple[str, int]]:
        """Rate stored CDR rows with counters (mediation with rating, re-rating): ``(status, charge)`` per row.

        ``version``/``compiled``: rate with this plan set version instead of the one in force at each CDR."""
        principal.require(Permission.RATING_STORE)
        allowed = [row if principal.can_see_tenant(row[_TENANT] or principal.tenant_id) else None for row in rows]
        mine = [(i, row if row[_TENANT] else _with_tenant(row, principal.tenant_id)) for i, row in enumerate(allowed) if row is not None]
        out: list[tuple[str, int]] = [(RatingStatus.UNRATED.value, 0)] * len(rows)
        if not mine:
            return out
        with collector_paused():
            chunk = self._resolve([r for _, r in mine], "", True, version, compiled)
            results = self._with_counters(chunk)
        for (i, _), r in zip(mine, results):
            out[i] = (r[0], r[1])
        return out

    def subscribers_of_rows(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        """The live subscribers of the rows' A numbers, as _resolve reads them (a re-rating run reads them with each
        chunk, a chunk ahead of its rating)."""
        return self._subscribers({r[_A] for r in rows if r[_A]})

    def _resolve(self, rows: Sequence[tuple[Any, ...]], tariff_plan: str, need_subscribers: bool,
                 version: PlanSetVersion | None = None, compiled: CompiledPlans | None = None,
                 subs: dict[str, Any] | None = None) -> "_Chunk":
        """Who, which plan set and which tariff plan, for each row of a chunk (in columns, one list per fact); ``subs``:
        the rows' subscribers as subscribers_of_rows gave them (else read here)."""
        if subs is None:
            subs = self.subscribers_of_rows(rows) if need_subscribers else {}
        timelines: dict[Any, Any] = {}
        chunk = _Chunk(rows)
        wholesale: dict[tuple[int, str], str] = {}
        # per tenant: (since, plan set version, compiled) of the head activated last, which rates every CDR from then on
        # (what almost every CDR of a chunk is rated by): asked of _in_force once per tenant, not per row
        latest: dict[str, Any] = {}
        if self.use_c and _chunkrows is not None and type(rows) is list and type(subs) is dict:
            fixed = (version, compiled) if version is not None else None
            got = _chunkrows.resolve(rows, _COLS, subs, lambda t: self._latest_in_force(t, timelines), latest, tariff_plan,
                                     fixed, _at_of)
            chunk.ats, chunk.versions, chunk.compileds, chunk.plan_ids, chunk.subscribers, slow = got
            for i in slow:   # a CDR before its tenant's last activation, a wholesale customer's: as the loop below
                ps, comp, plan_id = self._resolve_one(rows[i], chunk.ats[i], chunk.subscribers[i], tariff_plan, version, compiled,
                                                      latest, timelines, wholesale)
                chunk.versions[i], chunk.compileds[i], chunk.plan_ids[i] = ps, comp, plan_id
            hide_plans_of_others(chunk, tariff_plan)
            return chunk
        ats, versions, compileds, plan_ids, subscribers = chunk.ats, chunk.versions, chunk.compileds, chunk.plan_ids, chunk.subscribers
        for row in rows:
            tenant = row[_TENANT]
            at = _at_of(row[_START])
            a_number = row[_A]
            sub = subs.get(a_number) if a_number else None
            known = sub if sub is not None and sub.tenant_id == tenant else None
            ps, comp, plan_id = self._resolve_one(row, at, known, tariff_plan, version, compiled, latest, timelines, wholesale)
            ats.append(at)
            versions.append(ps)
            compileds.append(comp)
            plan_ids.append(plan_id)
            subscribers.append(known)
        hide_plans_of_others(chunk, tariff_plan)
        return chunk

    def _resolve_one(self, row: tuple[Any, ...], at: datetime | None, known: Any, tariff_plan: str, version: PlanSetVersion | None,
                     compiled: CompiledPlans | None, latest: dict[str, Any], timelines: dict[Any, Any],
                     wholesale: dict[tuple[int, str], str]) -> tuple[PlanSetVersion | None, CompiledPlans | None, str]:
        """The plan set version, compiled plans and tariff plan of one row (``known``: its subscriber, or None)."""
        tenant = row[_TENANT]
        ps: PlanSetVersion | None
        comp: CompiledPlans | None
        if version is not None:
            ps, comp = version, compiled
        elif at is None:
            ps = comp = None
        else:
            known_head = latest.get(tenant)
            if known_head is None:
                known_head = latest[tenant] = self._latest_in_force(tenant, timelines)
            if known_head and at >= known_head[0]:
                ps, comp = known_head[1], known_head[2]
            else:
                ps, comp = self._in_force(tenant, at, timelines)
        plan_id = tariff_plan or (known.tariff_plan if known is not None else "")
        if not plan_id and comp is not None:
            # the wholesale plan is what the operator charges the tenant: taken from the operator's plan set (in force
            # at the CDR, or the one asked for when it is the operator's), never from one the tenant uploaded itself
            operator = self._parent(tenant) or tenant
            if version is None or version.tenant_id != operator:
                ps, comp = self._in_force(operator, at, timelines)
            if comp is not None:
                found = wholesale.get((id(comp), tenant))
                if found is None:
                    found = wholesale[(id(comp), tenant)] = next(
                        (p.id for p in comp.plans.values() if p.segment == "wholesale" and p.customer == tenant), "")
                plan_id = found
        return ps, comp, plan_id

    def _latest_in_force(self, tenant: str, timelines: dict[Any, Any]) -> tuple[Any, ...]:
        """``(since, version, compiled)``: what :meth:`_in_force` gives the tenant for any time at or after ``since`` (the
        tenant's own head activated last); ``()`` when that takes more than one answer (no activation, a store without
        timelines): then _in_force is asked per row."""
        heads = self._heads(tenant, timelines)
        if heads is False:
            return ()
        last = timelines.get((tenant, "latest"))
        if last is None:
            last = timelines[(tenant, "latest")] = _latest(heads)
        if last[0] is None or last[1] is None:
            return ()
        return last[0], last[1], self._compiled_for(last[1])

    def _keys(self, chunk: "_Chunk") -> None:
        """The counter key (tenant, msisdn, cycle) and tariff plan version of each row whose subscriber is known."""
        cycles = self._cycles
        if len(cycles) > 100_000:
            cycles.clear()
        keys, tariffs = chunk.keys, chunk.tariffs
        keys.clear()
        tariffs.clear()
        anchor_of = self.anchor_of
        default_anchor = anchor_of is _anchor_day   # read inline, not called per row
        if self.use_c and _chunkrows is not None and type(chunk.rows) is list:
            chunk.keys, chunk.tariffs = _chunkrows.counter_keys(chunk.rows, _COLS, chunk.ats, chunk.compileds, chunk.plan_ids,
                                                                chunk.subscribers, _window, cycles, cycle_of,
                                                                None if default_anchor else anchor_of)
            return
        # per (plan set, tariff plan): [lo, hi) of start epochs with one tariff plan version and one local day
        windows: dict[tuple[int, str], tuple[int, int, CompiledVersion | None, Any]] = {}
        for row, at, comp, plan_id, sub in zip(chunk.rows, chunk.ats, chunk.compileds, chunk.plan_ids, chunk.subscribers):
            key = tariff = None
            if sub is not None and comp is not None and at is not None:
                epoch = int(at.timestamp())
                w = windows.get((id(comp), plan_id))
                if w is None or not w[0] <= epoch < w[1]:
                    w = windows[(id(comp), plan_id)] = _window(comp, plan_id, epoch)
                tariff = w[2]
                if tariff is not None:
                    day = w[3]
                    anchor = getattr(sub, "anchor_day", 1) if default_anchor else anchor_of(sub)
                    cycle = cycles.get((day, anchor))
                    if cycle is None:
                        cycle = cycles[(day, anchor)] = cycle_of(day, anchor)
                    key = (row[_TENANT], row[_A], cycle)
            keys.append(key)
            tariffs.append(tariff)

    def _with_counters(self, chunk: "_Chunk", held: Held | None = None) -> list[Row]:
        """Rate a chunk with counters in one transaction, again when another replica won a race.

        ``held``: what the other CDRs of a re-rating run still hold (given back while this chunk rates, so the
        run's CDRs share the units as if rated from scratch in order; see engine.rating.rerate)."""
        self._keys(chunk)
        for _attempt in range(MAX_RETRIES):
            with self._plan_uow() as uow:
                results = self._chunk(uow, chunk, held)
                if results is None:
                    self.races += 1
                    continue  # another writer changed these counters since we read them: read again, rate again
                uow.commit()
                return results
        raise FailedPrecondition("RATING_CONTENTION", f"the counters of this chunk kept changing under {MAX_RETRIES} attempts; "
                                                      f"send it again", "")

    def _chunk(self, uow: Any, chunk: "_Chunk", held: Held | None = None, after: "_Written | None" = None,
               defer: bool = False, snapshot: "_SnapshotRead | None" = None, known: "_Known | None" = None,
               stored: bool = True, ahead: Any = None) -> Any:
        """The chunk read, rated and written on ``uow`` (not committed): its rows, or None after a lost race.

        ``after``: what a chunk still being written on another unit of work sets its counters and balances to (this
        chunk reads those values instead, and its compare-and-set expects them); ``defer``: the write is not made but
        given back with the rows, ``(rows, (ledger rows, counters, balances), the Taken of the rows replaced)`` (see
        RatingStream); ``snapshot`` (with ``defer``, on a read-only ``uow``): the stored rows of the chunk's CDRs are read,
        not taken out, and the snapshot let go once read (see _SnapshotRead); ``known``: the counters and balances the
        stream knows, not read again (see _Known); ``stored`` False (with ``defer``): the CDRs are taken to have no
        stored rows, none is looked up (the write finds one as a lost race: RatingStream); ``ahead``: the chunk's
        stored rows as read with its CDRs (a re-rating run on PostgreSQL: store.plans.StoredCdrReader.chunks_held), not
        looked up here (UsageRepo.held_ahead)."""
        repo = uow.usage
        rows, keys = chunk.rows, chunk.keys
        # what the chunk's CDRs took when rated before (a CDR sent again, a re-rating run), added up per cycle; their
        # rows are read with their addresses (take_holdings), and the write rewrites those whose new value differs
        previous = Taken()
        starts = chunk.starts
        read: list[tuple[str, list[tuple[Any, ...]]]] = []   # the stored rows by tenant, when the chunk has several messages
        use_c = self.use_c and _chunkrows is not None and type(rows) is list
        by_tenant: dict[str, list[str]]
        if use_c:
            by_tenant = _chunkrows.ids_by_tenant(rows, _COLS)
        else:
            by_tenant = {}
            for row in rows:
                by_tenant.setdefault(row[_TENANT], []).append(row[_ID])
        for tenant in sorted(by_tenant) if stored else ():
            if snapshot is not None:
                held_rows = repo.holdings_of(tenant, by_tenant[tenant])
                if held_rows:
                    snapshot.replaced[tenant] = held_rows
            elif ahead is not None:
                held_rows = repo.held_ahead(tenant, ahead)
            else:
                held_rows = repo.take_holdings(tenant, by_tenant[tenant])
            if held_rows is None:
                return None   # another writer holds these rows: rated again
            if starts and held_rows:   # split by message below
                read.append((tenant, list(held_rows)))
            else:
                _take(previous, tenant, held_rows, use_c)
        # in a chunk of several messages, what a later message's CDRs took goes back where that message starts (``later``)
        first, later = _taken_by_message(rows, starts, read, use_c) if read else (previous, {})
        if read:
            for part in (first, *later.values()):
                previous.update(part)
        wanted = {k for k in keys if k is not None}
        wanted |= previous.keys
        others = held.besides(previous, wanted) if held is not None else {}
        add_ons = _add_ons_of(uow, chunk)
        wanted |= {a.key for a in add_ons}
        for prev_key, units in previous.units.items():   # units a CDR took of an add-on go back to that purchase's counter
            wanted |= keys_in_uses(prev_key, units)
        for held_key, (bundles, _) in others.items():
            wanted |= keys_in_uses(held_key, bundles)
        usage = Usage(repo if after is None and known is None else _AfterWrite(repo, after, known), wanted)
        if snapshot is not None:
            snapshot.done()   # read: the snapshot let go before the chunk is rated (a reader holds back the writer's checkpoints)
        usage.use_c = use_c
        in_memory = usage.counters
        if use_c and type(keys) is list and type(chunk.tariffs) is list:
            _chunkrows.ensure_monthly(keys, chunk.tariffs, chunk.compileds, in_memory, _monthly_bundles, usage.ensure)
        monthly: dict[tuple[int, int], list[tuple[str, int, str]]] = {}
        # per key, the (tariff, plan set) its counters were last made sure of: a subscriber's next CDR under the same
        # version finds its counters there (an identity check, no tuple of ids hashed per row)
        seen: dict[CounterKey, tuple[Any, Any]] = {}
        for key, tariff, comp in zip(keys, chunk.tariffs, chunk.compileds) if not use_c else ():
            if key is not None and tariff is not None and comp is not None:
                was = seen.get(key)
                if was is not None and was[0] is tariff and was[1] is comp:
                    continue
                seen[key] = (tariff, comp)
                cached = monthly.get((id(tariff), id(comp)))
                if cached is None:
                    cached = monthly[(id(tariff), id(comp))] = _monthly_bundles(tariff, comp)
                have = in_memory.get(key)
                for bid, allowance, unit in cached:
                    if have is None or bid not in have:
                        usage.ensure(key, bid, allowance, unit)
                        have = in_memory.get(key)
        addons = AddOnWallets(usage, add_ons, keys, chunk.ats) if add_ons else None
        # what the chunk's CDRs took when rated before goes back first (rating them again replaces, never adds)
        usage.give_back_all((k, units, {}) for k, units in first.units.items())
        usage.give_back_all((k, {}, charges) for k, charges in first.charges.items())
        usage.give_back_all((k, bundles, charges) for k, (bundles, charges) in others.items())
        results = self._rate_items(chunk, usage, addons, later)
        taken: dict[int, Any] = {}
        if addons is not None:
            addons.finish()
            taken = addons.taken
        now = self._clock.now()
        entries: list[tuple[Any, ...]] = []
        add = entries.append
        alerts = self.credit_alerts
        charged, add_charge, charges = usage.charged, usage.add_charge, usage.balances
        texts = _TEXTS
        each: Any = zip(rows, results, keys, chunk.ats, chunk.versions, chunk.plan_ids, chunk.subscribers)
        if use_c and (alerts is None or not _subscriber_facts(chunk)[0]):
            # no credit alert can fire: each row's ledger row and charge in C, as the loop below writes them
            uses_of = {j: addons.uses_of(j, results[j][3]) for j in taken} if taken else {}   # type: ignore[union-attr]
            for t in later.values():   # no alert reads a balance on the way: the charges add up in any order
                usage.give_back_all((k, {}, charges) for k, charges in t.charges.items())
            entries = _chunkrows.ledger_rows(rows, _COLS, results, keys, chunk.ats, chunk.versions, chunk.plan_ids, uses_of, texts,
                                             _bundles_text, charges, RATED)
            each = ()
        for j, (row, r, key, at, ps, plan_id, sub) in enumerate(each):
            if later and j in later:   # a later message's stored CDRs: their charges go back where it starts
                usage.give_back_all((k, {}, charges) for k, charges in later[j].charges.items())
            status, charge, v = r[0], r[1], r[4]
            if status == RATED and v is not None:
                currency, psv, shown, shown_version, reason = v.currency, ps.version if ps is not None else 0, v.plan_id, v.version, ""
            else:
                currency, psv, shown, shown_version, reason = "", ps.version if ps is not None else 0, plan_id, 0, r[2][:500]
            if key is not None and charge:
                if alerts is not None and sub.credit_limit_micros is not None and currency == sub.credit_currency:
                    before = charged(key, currency)
                    add_charge(key, currency, charge)
                    fire_credit_alerts(uow, alerts, sub, plan_id, key[2], currency, before, before + charge, now)
                else:   # Usage.add_charge, inline (once a CDR)
                    by = charges.get(key)
                    if by is None:
                        by = charges[key] = {}
                    by[currency] = by.get(currency, 0) + charge
            # a ledger row in store column order (engine.rating.usage.LEDGER_FIELDS)
            uses = r[3] if j not in taken else addons.uses_of(j, r[3])   # type: ignore[union-attr]
            text = "[]" if not uses else (texts.get(uses) if type(uses) is tuple else None) or _bundles_text(uses)
            service = row[_SERVICE]
            add((row[_TENANT], row[_ID], row[_A], key[2] if key is not None else "", currency, charge, text, at,
                 service if type(service) is str else str(service), r[5], r[6], r[7], psv, shown, shown_version, status, reason))
        # the run's other CDRs keep what they hold until rated
        usage.give_back_all(((k, bundles, charges) for k, (bundles, charges) in others.items()), -1)
        counters, balances = usage.changes()
        if defer:
            return results, (entries, counters, balances), previous
        if not repo.write_chunk(entries, set(), counters, balances):   # the replaced rows were read above: rewritten where changed
            return None
        if held is not None:
            held.rated(previous)
        return results

    def _alerted(self, chunk: "_Chunk") -> bool:
        """Whether rating the chunk may fire credit alerts (their log and barring flags are read and written in the
        chunk's transaction: such a chunk is not rated while another of its stream is being written)."""
        return self.credit_alerts is not None and _subscriber_facts(chunk)[0]

    def _rate_items(self, chunk: "_Chunk", usage: Usage | None, addons: AddOnWallets | None = None,
                    later: "dict[int, Taken] | None" = None) -> list[Row]:
        """Each row rated in order (against the chunk's counters when ``usage``, with the add-ons valid at each row
        when ``addons``), through the evaluator's batch loop; ``later``: the bundle units given back before the row
        at each of its offsets (what a later message's stored CDRs took, see _chunk)."""
        rows, versions, compileds, plan_ids = chunk.rows, chunk.versions, chunk.compileds, chunk.plan_ids
        keys = chunk.keys
        out: list[Row] = []
        n, count = 0, len(rows)
        backs = sorted(later) if later else []   # the offsets where units go back, in order
        upto = count if not backs else backs[0]
        while n < count:
            if n == upto:
                if addons is not None:
                    addons.finish()   # its add-on entries booked and taken out, as at the end of a chunk
                usage.give_back_all((k, units, {}) for k, units in later[n].units.items())   # type: ignore[index, union-attr]
                backs.pop(0)
                upto = count if not backs else backs[0]
            ps, comp = versions[n], compileds[n]
            if comp is None or ps is None:
                out.append(_no_plan_set(rows[n], chunk.ats[n]))
                n += 1
                continue
            if _is_rap_return(rows[n]):
                out.append(_RAP_RETURN)
                n += 1
                continue
            # a run of rows under one plan set version goes through the batch loop, in order
            end = n + 1
            while end < upto and versions[end] is ps and compileds[end] is comp and not (rows[end][_ATTRS] and _is_rap_return(rows[end])):
                end += 1
            ev = self.evaluator(comp)
            wallets: Any = None
            if addons is not None:
                wallets = addons.rows_from(n)
            elif usage is not None:
                wallets = usage.wallets(keys[n:end])
            out.extend(ev.rate_rows(rows[n:end], plan_ids[n:end], wallets))
            n = end
        return out

    # -- plan sets in force --------------------------------------------------------------------------------
    def _subscribers(self, msisdns: set[str]) -> dict[str, Any]:
        """The live subscribers of these MSISDNs, as rating needs them (engine.rating.usage.RatedSubscriber)."""
        if not msisdns:
            return {}
        with self._plan_uow(read_only=True) as uow:
            return uow.usage.subscribers_of(msisdns)

    def _in_force(self, tenant: str, at: datetime | None, timelines: dict[Any, Any]) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        """plan_set_at with the tenant's (and its operator's) activation timeline read once per chunk."""
        if at is None:
            return None, None
        heads = self._heads(tenant, timelines)
        if heads is False:  # a store without timelines: ask per CDR
            version, compiled = self._plans.compiled_at(tenant, at)
            if version is None and self._parent(tenant):
                version, compiled = self._plans.compiled_at(self._parent(tenant), at)
            return version, compiled
        latest = timelines.get((tenant, "latest"))
        if latest is None:   # the head activated last: what almost every CDR of a chunk is rated by
            latest = timelines[(tenant, "latest")] = _latest(heads)
        head = latest[1] if latest[0] is not None and at >= latest[0] else _pick(heads, at)
        if head is None:
            parent = self._parent(tenant)
            if parent:
                return self._in_force(parent, at, timelines)
            return None, None
        return head, self._compiled_for(head)

    def _heads(self, tenant: str, timelines: dict[Any, Any]) -> Any:
        """The tenant's activation timeline, read once per chunk (False: a store without timelines)."""
        heads: Any = timelines.get(tenant)
        if heads is None:
            with self._plan_uow(read_only=True) as uow:
                of = getattr(uow.plan_versions, "activation_heads", None)
                heads = timelines[tenant] = of(tenant) if of is not None else False
        return heads

    def _parent(self, tenant: str) -> str:
        parent = self._parents.get(tenant)
        if parent is None:
            with self._uow(read_only=True) as uow:
                t = uow.tenants.get(tenant)
            parent = getattr(t, "parent_tenant_id", "") if t is not None else ""
            if t is not None:
                self._parents[tenant] = parent  # a tenant's operator never changes
        return parent

    def _compiled_for(self, head: PlanSetVersion) -> CompiledPlans | None:
        compiled = self._compiled.get(head.digest)
        if compiled is None:
            with self._plan_uow(read_only=True) as uow:
                full = uow.plan_versions.get(head.tenant_id, head.version)
            if full is None:  # pragma: no cover - deleted meanwhile
                return None
            compiled = self._plans.cache.get(full)
            if len(self._compiled) >= 4:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[head.digest] = compiled
        return compiled

    # -- reads ----------------------------------------------------------------------------------------------
    def counters(self, principal: Principal, tenant_id: str, msisdn: str,
                 cycle: str) -> tuple[dict[str, tuple[int, int, str]], dict[str, int], str]:
        """A subscriber's bundle counters and usage balances of a bill cycle (the one running now when none is named),
        and that cycle."""
        principal.require(Permission.RATING)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        msisdn = normalise_msisdn(msisdn)   # as AuthorizeCall and GetSubscriber take it: +33 6 12...
        # a bill cycle, or an add-on purchase's counter cycle (+000001: engine.rating.addons)
        _check_reads(msisdn, True, ("cycle", "" if _ADD_ON_CYCLE.match(cycle) else cycle), "cannot read bundle counters")
        if not cycle:
            now = self._clock.now()
            sub = self._subscribers({msisdn}).get(msisdn)
            _, compiled = self.plan_set_at(tenant, now)
            cycle = self.cycle_at(sub, compiled, now) if sub is not None and sub.tenant_id == tenant else now.strftime("%Y-%m")
        key = (tenant, msisdn, cycle)
        with self._plan_uow(read_only=True) as uow:
            counters = uow.usage.counters_of([key]).get(key, {})
            balances = uow.usage.balances_of([key]).get(key, {})
        return {b: (r.allowance, r.remaining, r.unit) for b, r in counters.items()}, balances, cycle

    def credit_alert_log(self, principal: Principal, tenant_id: str, msisdn: str, period: str, page: Page) -> list[CreditAlertRecord]:
        """The credit alert log, tenant-scoped: a tenant sees its own; the operator sees all (or the tenant asked for)."""
        principal.require(Permission.RATING)
        _check_reads(msisdn, False, ("period", period), "cannot list credit alerts")
        tenants: set[str] | None
        if tenant_id:
            principal.require_tenant(tenant_id)
            tenants = {tenant_id}
        elif principal.is_operator:
            tenants = None
        else:
            tenants = {principal.tenant_id}
        with self._plan_uow(read_only=True) as uow:
            return uow.alerts.list(tenants, msisdn, period, page.after, page.size)  # type: ignore[attr-defined]


_ADD_ON_CYCLE = re.compile(r"^\+[0-9a-z]{6}$")


def _check_reads(msisdn: str, required: bool, month: tuple[str, str], what: str) -> None:
    """A read naming a subscriber number and a month: INVALID_ARGUMENT naming each malformed one (empty ones are
    "any" where allowed: the month always, the number when not ``required``)."""
    errors = ErrorList()
    if (msisdn or required) and (problem := msisdn_problem(msisdn)):
        errors.add("msisdn", problem)
    if month[1] and (problem := month_problem(month[1])):
        errors.add(month[0], problem)
    errors.raise_if_any(what)


def _window(comp: CompiledPlans, plan_id: str, epoch: int) -> tuple[int, int, CompiledVersion | None, Any]:
    """``(epoch, until, version, local day)``: the tariff plan's version in force at ``epoch`` and its local day there,
    the same for every start time up to ``until`` (the next version, a local midnight or a change of UTC offset)."""
    plan = comp.plan(plan_id)
    if plan is None:
        return epoch, NEVER, None, None
    v = plan.version_at(epoch)
    following = plan.next_start(epoch)
    until = following if following is not None else NEVER
    if v is None:
        return epoch, until, None, None
    day, day_until = v.clock.local_day_until(epoch)
    return epoch, min(until, day_until), v, day


class RatingStream:
    """The chunks of one RateCdrs stream, rated in order, each as RatingDesk.rate_rows rates it.

    With counters, a chunk's write and commit run on a thread of their own while the next chunk is read and rated:
    the database's side of one chunk overlaps the rating of the next.  That next chunk reads the counters and balances
    the chunk in flight sets (in memory, _AfterWrite), so its compare-and-set expects them, and goes to the writer only
    once that one committed; if it lost a race instead, both are rated again one after the other, as rate_rows rates
    them.  Every chunk is still one transaction, committed before its reply: ``rate_rows`` gives a function that waits
    for it.

    Where writers run concurrently (PostgreSQL: the plan unit of work factory's ``concurrent_writers``) the next chunk
    is read on a unit of work of its own (taking out its CDRs' stored rows, once the stream has met one) and is then
    handed to the writer.
    Where one writer at a time holds the store from its BEGIN to its commit (SQLite: ``snapshot_reads``, a read-only
    unit reads a snapshot and never waits for that writer) the next chunk is read on a read-only unit, and its write,
    on the writer's own unit, first reads again the stored rows it read and finds them unchanged (else a lost race), as
    the compare-and-set finds the counters and balances (_write_read).  A chunk that may fire credit alerts is rated
    after the one in flight landed, as rate_rows rates it.  The stream keeps the counters and balances its chunks read
    and wrote (_Known), and does not look the stored rows of new CDRs up ahead (see _start)."""

    def __init__(self, desk: RatingDesk, principal: Principal, held: Held | None = None) -> None:
        self._desk, self._principal, self._held = desk, principal, held
        factory = desk._plan_uow
        concurrent = bool(getattr(factory, "concurrent_writers", False))
        # the next chunk read on a read-only unit (a snapshot), its write compared with what it read: one writer at a time
        self._snapshot = not concurrent and bool(getattr(factory, "snapshot_reads", False))
        self._overlap = concurrent or self._snapshot
        self._flight: _InFlight | None = None
        self._writer: ThreadPoolExecutor | None = None
        self.overlapped = 0   # chunks read and rated while the one before was being written
        self._stored_seen = False   # a chunk lost a race: the next ones look their CDRs' stored rows up (_start)
        self._known = _Known()      # the counters and balances its chunks read and set

    def own(self, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows with the caller's tenant where they name none, once the caller is checked for rating each tenant
        they name (PERMISSION_DENIED otherwise): what ``rate_rows`` checks, asked of each message before several are
        rated as one chunk, so that a message's refusal is its own."""
        return _own_rows(self._principal, rows)

    def grouped(self, items: Iterable[Any], read: Callable[[Any], Any], weigh: Callable[[Any], int],
                bound: int, size: Callable[[Any], int] | None = None, size_limit: int = 0,
                group_bytes: int = 0) -> Iterator[tuple[Any, RatedRows]]:
        """``(message, its rated rows)`` of each of ``items`` (messages of a RateCdrs stream) in order, the messages
        already received rated and stored together up to ``bound`` CDRs and ``group_bytes`` bytes (engine.rating.groups:
        ``read`` gives an item's message or raises its refusal, ``weigh`` its CDRs, ``size`` its bytes, read ahead up
        to ``size_limit``); the stream is closed when it ends."""
        # the groups give back the rows this stream's rate_rows gave them: this desk's RatedRows
        return cast(Iterator[tuple[Any, RatedRows]], grouped(self, items, read, weigh, bound, size, size_limit, group_bytes))

    def rate_rows(self, rows: Sequence[tuple[Any, ...]], tariff_plan: str = "", use_counters: bool = False,
                  starts: Sequence[int] = ()) -> Callable[[], RatedRows]:
        """Rate a chunk (as RatingDesk.rate_rows); the function given waits until it is stored, then gives its rows.
        ``starts``: where each message of the chunk starts, when it holds several (RateCdrs' groups): a CDR stored
        before gives back what it held where its message starts, as if each message were a chunk of its own."""
        rows = _own_rows(self._principal, rows, use_counters)
        pieces = _without_repeats(rows) if use_counters else None
        if pieces is not None:   # a CDR twice in the chunk: rated again after the rows before it, as if sent again
            waits, at = [], 0
            for piece in pieces:
                waits.append(self._rate_own(piece, tariff_plan, use_counters, [s - at for s in starts if at < s < at + len(piece)]))
                at += len(piece)
            return lambda: RatedRows.joined([wait() for wait in waits])
        return self._rate_own(rows, tariff_plan, use_counters, [s for s in starts if s > 0])

    def _rate_own(self, rows: list[tuple[Any, ...]], tariff_plan: str, use_counters: bool,
                  starts: list[int]) -> Callable[[], RatedRows]:
        """rate_rows of rows checked for the caller, no CDR twice among them; ``starts``: where each message but the
        first starts."""
        desk = self._desk
        with collector_paused():
            chunk = desk._resolve(rows, tariff_plan, need_subscribers=not tariff_plan or use_counters)
            chunk.starts = starts
            if not use_counters:
                return _ready(RatedRows(desk, chunk, desk._rate_items(chunk, None)))
            if not self._overlap or desk._alerted(chunk):
                self._land()
                return _ready(RatedRows(desk, chunk, desk._with_counters(chunk, self._held)))
            flight = self._start(chunk)
        return lambda: flight.rated(desk)

    def rerate_rows(self, rows: Sequence[tuple[Any, ...]], version: PlanSetVersion | None,
                    compiled: CompiledPlans | None, ahead: Any = None,
                    subs: dict[str, Any] | None = None) -> Callable[[], ChunkOutcomes]:
        """A chunk of a re-rating run (stored rows in start order, rated with counters and the stream's Held, under
        ``version``/``compiled`` when given); the function given waits until it is stored, then gives what its rows
        came to.  ``ahead``: their stored ledger rows read with them (see _chunk), used on the first attempt only (a
        chunk rated again after a lost race looks them up afresh); ``subs``: their subscribers as
        RatingDesk.subscribers_of_rows read them (else read here)."""
        desk = self._desk
        for tenant in sorted(set(map(_tenant_of, rows))):
            self._principal.require_tenant(tenant)
        if not rows:
            return lambda: ChunkOutcomes(0, 0, 0, {})
        with collector_paused():
            chunk = desk._resolve(rows, "", True, version, compiled, subs)
            if not self._overlap or desk._alerted(chunk):
                self._land()
                done = _outcomes(desk._with_counters(chunk, self._held))
                return lambda: done
            flight = self._start(chunk, ahead)

        def outcomes() -> ChunkOutcomes:
            return _outcomes(flight.rated(desk, self._held).results)
        return outcomes

    def _start(self, chunk: _Chunk, ahead: Any = None) -> "_InFlight":
        """The chunk read and rated on a unit of work of its own after the one in flight, and handed to the writer."""
        desk = self._desk
        desk._keys(chunk)
        held = self._held
        before, self._flight = self._flight, None
        if before is not None and before.future is not None and not before.future.done():   # still being written
            self.overlapped += 1
        # a stream of new CDRs does not look their stored rows up ahead: the write finds one as a lost race (on
        # PostgreSQL the ledger's primary key, on SQLite UsageRepo.write_chunk's look-up), and from then on the stream's
        # chunks look them up; a re-rating run's CDRs all have rows
        stored = held is not None or self._stored_seen
        snapshot = None
        if self._snapshot:
            uow = desk._plan_uow(read_only=True)
            snapshot = _SnapshotRead(uow)
        else:
            uow = desk._plan_uow()
        uow.__enter__()
        try:
            try:
                got = desk._chunk(uow, chunk, held, before.written if before is not None else None, defer=True, snapshot=snapshot,
                                  known=self._known, stored=stored, ahead=ahead if snapshot is None else None)
            finally:
                if snapshot is not None:
                    snapshot.done()
            lost = before is not None and not before.landed()
            if lost or (before is not None and before.lost):
                self._stored_seen = True   # perhaps a CDR rated before: the next chunks read their stored rows
                self._known.forget()       # perhaps another writer: the next chunks read their counters and balances
            elif before is not None and before.written is not None:
                self._known.landed(before.written)
        except BaseException:
            if snapshot is None:
                uow.__exit__(None, None, None)
            raise
        if got is None or lost:
            if snapshot is None:
                uow.__exit__(None, None, None)   # its locks released before the chunk before is rated again
            if lost:
                before.settle(desk, held)   # type: ignore[union-attr]
            else:
                desk.races += 1
                self._known.forget()
            return _InFlight(chunk, desk._with_counters(chunk, held), None, None)
        results, (entries, counters, balances), taken = got
        if held is not None:
            held.rated(taken)   # as if written: the next chunk rates with what this one's CDRs hold no more
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="rating-writer")
        future = (self._writer.submit(_write_read, desk._plan_uow, snapshot.replaced, entries, counters, balances)
                  if snapshot is not None else self._writer.submit(_write, uow, entries, counters, balances))
        flight = self._flight = _InFlight(chunk, results, future, _Written(counters, balances), taken if held is not None else None)
        return flight

    def _land(self) -> None:
        """The chunk in flight stored (rated again if it lost a race), before a chunk is rated on its own: the
        counters and balances that one sets are not known to the stream (_Known)."""
        self._known.forget()
        if self._flight is not None:
            with collector_paused():
                self._flight.settle(self._desk, self._held)
            self._flight = None

    def close(self) -> None:
        """Wait for the chunk in flight (committed or rolled back: a stream ended early leaves no write running)."""
        try:
            if self._flight is not None and self._flight.future is not None:
                self._flight.future.exception()
        finally:
            self._flight = None
            if self._writer is not None:
                self._writer.shutdown(wait=True)


class _SnapshotRead:
    """A chunk read on a read-only unit of work (RatingStream where one writer at a time holds the store: SQLite).

    ``replaced``: the stored rows of its CDRs found, by tenant (the write takes them out and finds them unchanged,
    _write_read).  A stream of new CDRs does not look them up ahead (RatingStream._start): in WAL mode a reader's page
    cache is dropped whenever the writer committed, and a look-up per CDR in the ledger's key index would read its
    pages from the file again, where the writer finds them cached (UsageRepo.write_chunk looks each CDR up).  ``done``:
    the reads are made, the unit let go (once)."""

    __slots__ = ("uow", "replaced")

    def __init__(self, uow: Any) -> None:
        self.uow: Any = uow
        self.replaced: dict[str, list[tuple[Any, ...]]] = {}

    def done(self) -> None:
        uow, self.uow = self.uow, None
        if uow is not None:
            uow.__exit__(None, None, None)


class _InFlight:
    """A rated chunk whose write and commit run on the stream's writer (``future``: True once committed)."""

    __slots__ = ("chunk", "results", "future", "written", "taken", "ok", "lost")

    def __init__(self, chunk: _Chunk, results: list[Row], future: Future[bool] | None, written: "_Written | None",
                 taken: Taken | None = None) -> None:
        self.chunk, self.results, self.future, self.written = chunk, results, future, written
        self.taken = taken   # a re-rating chunk's old rows, taken out of the run's Held when it was handed to the writer
        self.ok = future is None
        self.lost = False   # its write lost a race (it was rated again)

    def landed(self) -> bool:
        """Whether it is stored (waits for the writer); False: another writer changed its counters first."""
        if self.future is not None:
            self.ok = self.future.result()
            self.future = None
        return self.ok

    def settle(self, desk: RatingDesk, held: Held | None = None) -> None:
        """Stored: rated again, as rate_rows rates it, if it lost a race."""
        if not self.landed():
            desk.races += 1
            self.lost = True
            if held is not None and self.taken is not None:
                held.rated(self.taken, -1)   # its old rows are back: the run's CDRs hold them again
            self.results = desk._with_counters(self.chunk, held)
            self.ok = True

    def rated(self, desk: RatingDesk, held: Held | None = None) -> RatedRows:
        if not self.ok:
            with collector_paused():
                self.settle(desk, held)
        return RatedRows(desk, self.chunk, self.results)


class _Written:
    """What a chunk in flight sets counters (key -> bundle -> row) and balances (key -> currency -> micros) to."""

    __slots__ = ("counters", "balances")

    def __init__(self, counters: list[tuple[CounterKey, str, CounterRow, int | None]],
                 balances: list[tuple[CounterKey, str, int, int | None]]) -> None:
        self.counters: dict[CounterKey, dict[str, CounterRow]] = {}
        for key, bundle, row, _ in counters:
            self.counters.setdefault(key, {})[bundle] = row
        self.balances: dict[CounterKey, dict[str, int]] = {}
        for key, currency, value, _ in balances:
            self.balances.setdefault(key, {})[currency] = value


class _Known:
    """The counters and balances of the subscriber cycles a stream's chunks read or set, as they stand once its last
    stored chunk committed (key -> bundle -> row; key -> currency -> micros; an empty dict: no row was there): a chunk
    of the stream reads from the store only the cycles it does not know yet.  Another writer may change one meanwhile
    (another replica, a credit alert's chunk): the compare-and-set of the chunk that used the value finds it, the chunk
    is rated again as rate_rows rates it, and the stream forgets all it knew."""

    LIMIT = 100_000   # cycles kept; past that the stream starts knowing afresh

    __slots__ = ("counters", "balances")

    def __init__(self) -> None:
        self.counters: dict[CounterKey, dict[str, CounterRow]] = {}
        self.balances: dict[CounterKey, dict[str, int]] = {}

    def landed(self, written: "_Written") -> None:
        """A chunk of the stream committed these values (only of cycles it read: all of them)."""
        if len(self.counters) > self.LIMIT or len(self.balances) > self.LIMIT:
            self.forget()
            return
        pairs: tuple[tuple[dict[CounterKey, Any], dict[CounterKey, Any]], ...] = (
            (self.counters, written.counters), (self.balances, written.balances))
        for table, changed in pairs:
            for key, by in changed.items():
                have = table.get(key)
                if have is not None:
                    have.update(by)   # a counter row is never changed, only replaced (Usage.changes): shared, not copied

    def forget(self) -> None:
        self.counters.clear()
        self.balances.clear()


class _AfterWrite:
    """A usage repository's counters and balances as a stream's next chunk reads them: those the stream knows
    (``known``) and the others read, with what the chunk in flight sets (``written``) laid over (its rows not visible to
    this unit of work until it commits).  Each chunk gets dicts of its own (Usage changes them in place)."""

    def __init__(self, repo: Any, written: "_Written | None", known: _Known | None) -> None:
        self._repo, self._written, self._known = repo, written, known

    def counters_of(self, keys: Sequence[CounterKey]) -> dict[CounterKey, dict[str, CounterRow]]:
        # a counter row is never changed, only replaced (Usage.changes): the written rows are laid over as they are
        return self._laid_over(keys, self._read(keys, self._repo.counters_of, self._known.counters if self._known is not None else None),
                               self._written.counters if self._written is not None else None)

    def balances_of(self, keys: Sequence[CounterKey]) -> dict[CounterKey, dict[str, int]]:
        return self._laid_over(keys, self._read(keys, self._repo.balances_of, self._known.balances if self._known is not None else None),
                               self._written.balances if self._written is not None else None)

    @staticmethod
    def _laid_over(keys: Sequence[CounterKey], out: dict[CounterKey, Any], written: dict[CounterKey, dict[str, Any]] | None) -> dict[CounterKey, Any]:
        """What the chunk in flight sets, laid over what was read or known."""
        if written is not None:
            for key in keys:
                new = written.get(key)
                if new is not None:
                    by = out.get(key)
                    if by is None:
                        out[key] = dict(new)
                    else:
                        by.update(new)
        return out

    @staticmethod
    def _read(keys: Sequence[CounterKey], read: Callable[[Sequence[CounterKey]], dict[CounterKey, Any]],
              known: dict[CounterKey, dict[str, Any]] | None) -> dict[CounterKey, Any]:
        if known is None:
            return read(keys)
        missing = [k for k in keys if k not in known]
        out = read(missing) if missing else {}
        for k in missing:   # known from now on, as read (a copy: the chunk changes its own)
            by = out.get(k)
            known[k] = dict(by) if by is not None else {}
        for k in keys:
            if k not in out:
                by = known[k]
                if by:
                    out[k] = dict(by)
        return out


def _write(uow: Any, entries: list[tuple[Any, ...]], counters: Any, balances: Any) -> bool:
    """A chunk's write and commit on its unit of work (the stream's writer thread); False: a lost race, rolled back."""
    try:
        with collector_paused():
            if not uow.usage.write_chunk(entries, set(), counters, balances):
                return False
            uow.commit()
            return True
    finally:
        uow.__exit__(None, None, None)


def _write_read(plan_uow: Any, replaced: dict[str, list[tuple[Any, ...]]], entries: list[tuple[Any, ...]], counters: Any,
                balances: Any) -> bool:
    """A chunk read on a read-only unit (RatingStream on SQLite), written and committed on a unit of work of its own
    (the stream's writer thread): the stored rows of its CDRs that it read (``replaced``, by tenant) are read again here
    (take_holdings: the write rewrites those that changed) and must be the same rows, as the compare-and-set finds its counters and balances; a CDR it found no row of must still
    have none (UsageRepo.write_chunk looks them up).  False: a lost race, rolled back."""
    uow = plan_uow()
    uow.__enter__()
    try:
        with collector_paused():
            for tenant in sorted(replaced):
                read = replaced[tenant]
                taken = uow.usage.take_holdings(tenant, [r[0] for r in read])
                if taken is None or sorted(map(tuple, taken)) != sorted(map(tuple, read)):
                    uow.__exit__(None, None, None)
                    return False
    except BaseException:
        uow.__exit__(None, None, None)
        raise
    return _write(uow, entries, counters, balances)


def _outcomes(results: list[Row]) -> ChunkOutcomes:
    """The chunk's rows counted and their charges added up, a pass of C loops over the rows (map, count, compress)
    where the rated rows share one currency; row by row otherwise."""
    statuses = list(map(_status_of, results))
    rated = statuses.count(RATED)
    charged: dict[str, int] = {}
    if rated:
        versions = list(map(_version_of, results))
        currencies = {"" if v is None else v.currency for v in dict(zip(map(id, versions), versions)).values()}
        if len(currencies) == 1:   # the rated rows' currency (a rated row without a tariff version counts as "")
            charged[currencies.pop()] = sum(compress(map(_charge_of, results), map(RATED.__eq__, statuses)))
        else:
            for r in results:
                if r[0] == RATED:
                    currency = r[4].currency if r[4] is not None else ""
                    charged[currency] = charged.get(currency, 0) + r[1]
    return ChunkOutcomes(len(results), rated, statuses.count(REJECTED), charged)


_status_of, _charge_of, _version_of = itemgetter(0), itemgetter(1), itemgetter(4)
_tenant_of = itemgetter(_TENANT)


def _ready(rated: RatedRows) -> Callable[[], RatedRows]:
    return lambda: rated


def _own_rows(principal: Principal, rows: Sequence[tuple[Any, ...]], store: bool = False) -> list[tuple[Any, ...]]:
    """The rows with the caller's tenant where they name none, after the caller is checked for rating each tenant
    (``store``: for storing them, with counters)."""
    principal.require(Permission.RATING_STORE if store else Permission.RATING)
    own = principal.tenant_id
    rows = [row if row[_TENANT] else _with_tenant(row, own) for row in rows]
    for tenant in sorted({row[_TENANT] for row in rows}):
        principal.require_tenant(tenant)
    return rows


def _without_repeats(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]] | None:
    """None when no CDR comes twice in ``rows`` (tenant and id); else the rows cut into consecutive pieces in which
    none does, each piece starting at a CDR met before.  A chunk stores one ledger row per CDR, so a CDR sent twice
    in one message is rated and stored again after the rows before it, exactly as if it came in the next message
    (the later rating replaces the earlier one, and the reply gives both in place)."""
    if len({row[_ID] for row in rows}) == len(rows):   # no id twice (the common case, checked once cheaply)
        return None
    pieces: list[list[tuple[Any, ...]]] = [[]]
    seen: set[tuple[Any, Any]] = set()
    for row in rows:
        key = (row[_TENANT], row[_ID])
        if key in seen:
            pieces.append([])
            seen = set()
        seen.add(key)
        pieces[-1].append(row)
    return pieces if len(pieces) > 1 else None   # one id in several tenants' CDRs: no CDR twice


def _take(taken: Taken, tenant: str, held: Any, use_c: bool) -> None:
    """Taken.add of a tenant's stored rows (UsageRepository.holdings_of), its loop in C when it is built."""
    if use_c and type(held) is list:
        _chunkrows.taken_add(tenant, held, taken.replaced, taken.keys, taken.units, taken.charges, bundle_units)
    else:
        taken.add(tenant, held)


def _taken_by_message(rows: Sequence[tuple[Any, ...]], starts: list[int],
                      read: list[tuple[str, list[tuple[Any, ...]]]], use_c: bool) -> "tuple[Taken, dict[int, Taken]]":
    """What the stored rows ``read`` (by tenant) of a chunk's CDRs took, as a Taken for its first message and one for
    each later message holding such a CDR, by where that message starts (``starts``: each message's but the first's)."""
    bounds = [0, *starts, len(rows)]
    # each CDR's message, by where it starts (a dict built in C: a chunk of 20,000 rows)
    message_of = dict(zip(map(_TENANT_ID, rows), chain.from_iterable(repeat(b, e - b) for b, e in zip(bounds, bounds[1:]))))
    parts: dict[int, dict[str, list[tuple[Any, ...]]]] = {}
    for tenant, held in read:
        for h in held:
            parts.setdefault(message_of.get((tenant, h[0]), 0), {}).setdefault(tenant, []).append(h)
    out: dict[int, Taken] = {}
    for start, by_tenant in parts.items():
        taken = out[start] = Taken()
        for tenant, held in by_tenant.items():
            _take(taken, tenant, held, use_c)
    return out.pop(0, Taken()), out


def _add_ons_of(uow: Any, chunk: "_Chunk") -> list[ActiveAddOn]:
    """The add-on grants of the chunk's subscribers valid at some time of its CDRs, a monthly add-on's per bill cycle
    of its rows (none without a reader).  The subscriber read of the chunk says when each number's last purchase ends
    (RatedSubscriber.add_ons_until): the purchases are asked for only for the numbers with a CDR before that, so a
    chunk of numbers without a running add-on asks nothing."""
    reader = getattr(uow, "add_ons", None)
    if reader is None or not _subscriber_facts(chunk)[1]:
        return []
    numbers: set[tuple[str, str]] = set()
    times: list[datetime] = []
    for k, at, sub in zip(chunk.keys, chunk.ats, chunk.subscribers):
        if k is not None and at is not None:
            until = getattr(sub, "add_ons_until", None)
            if until is None or at < until:
                numbers.add((k[0], k[1]))
                times.append(at)
    if not numbers:
        return []
    return in_row_cycles(reader.active_add_ons(numbers, min(times), max(times)), chunk.keys, chunk.ats)


def _subscriber_facts(chunk: "_Chunk") -> tuple[bool, bool]:
    """``(a subscriber of the chunk has a credit limit, a subscriber of the chunk may hold an add-on purchase running
    at one of its CDRs' times)`` in one pass over its rows' subscribers, kept with the chunk (a chunk rated again has the
    same subscribers).  The second is False only when every subscriber's last purchase ends (``add_ons_until``; a number
    that never bought one: NO_ADD_ONS) at or before the chunk's earliest start time: then _add_ons_of finds no number to
    ask for (a row has a counter key only with a subscriber), without a pass of its own over the rows."""
    facts = chunk.facts
    if facts is None:
        subs = chunk.subscribers
        # two set comprehensions over the rows (about 0.1 us a row), where the two passes of ``any`` and _add_ons_of's
        # loop cost about 0.5
        limits = {s.credit_limit_micros for s in subs if s is not None}
        try:
            untils = {s.add_ons_until for s in subs if s is not None}
        except AttributeError:   # a subscriber of another kind (one without add-ons)
            untils = {getattr(s, "add_ons_until", None) for s in subs if s is not None}
        earliest = min(filter(None, chunk.ats), default=None)
        running = bool(untils) and (None in untils or earliest is None or max(untils) > earliest)
        facts = chunk.facts = (bool(limits - {None}), running)
    return facts


def _at_of(text: Any) -> datetime | None:
    """A row's start time as an aware UTC datetime ("...Z" reads as UTC), None when it is not a time."""
    try:
        parsed = datetime.fromisoformat(text if type(text) is str else str(text))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is timezone.utc else parsed.astimezone(timezone.utc)


def _monthly_bundles(tariff: CompiledVersion, comp: CompiledPlans) -> list[tuple[str, int, str]]:
    """(bundle, allowance, unit) of each monthly bundle of a tariff plan version: the counters its cycles need."""
    return [(bid, b.allowance, b.unit) for bid in tariff.bundles
            if (b := comp.bundles.get(bid)) is not None and b.recurrence == "monthly"]


def _anchor_day(subscriber: Any) -> int:
    return getattr(subscriber, "anchor_day", 1)


def _with_tenant(row: tuple[Any, ...], tenant: str) -> tuple[Any, ...]:
    return row[:_TENANT] + (tenant,) + row[_TENANT + 1:]


def _no_plan_set(row: tuple[Any, ...], at: datetime | None) -> Row:
    reason = f"{UnratedReason.NO_PLAN.value}: tenant {row[_TENANT]} has no active plan set at {at.isoformat() if at else row[_START]}"
    return (RatingStatus.UNRATED.value, 0, reason, None, None, "", "", 0, "", None)


def _is_rap_return(row: tuple[Any, ...]) -> bool:
    return returned_by_rap(row[_ATTRS])   # kept on record by mediation, never charged (engine.cdr)


_RAP_RETURN: Row = (RatingStatus.UNRATED.value, 0,
                    f"{UnratedReason.RAP_RETURN.value}: a call event returned by a RAP file is on record, not charged",
                    None, None, "", "", 0, "", None)


def _bundles_text(uses: Any) -> str:
    """The bundle units a CDR took as the ledger keeps them: JSON ``[["bundle", units], ...]``."""
    if not uses:
        return "[]"
    if type(uses) is tuple:
        text = _TEXTS.get(uses)
        if text is None:
            if len(_TEXTS) >= 10_000:
                _TEXTS.clear()
            text = _TEXTS[uses] = _bundles_json(uses)
        return text
    return _bundles_json(uses)


def _bundles_json(uses: Any) -> str:
    names = _JSON_NAMES
    parts = []
    for bid, units in uses:
        name = names.get(bid)
        if name is None:
            name = names[bid] = json.dumps(bid)
        parts.append(f"[{name}, {units}]")
    return "[" + ", ".join(parts) + "]"


_JSON_NAMES: dict[str, str] = {}   # bundle id -> its JSON string (few ids, many CDRs)
_TEXTS: dict[tuple[Any, ...], str] = {}   # what a CDR took -> its JSON (the same units recur: whole minutes, one SMS)


def _pick(heads: list[PlanSetVersion], at: datetime) -> PlanSetVersion | None:
    """The latest activation at or before ``at`` (ties: the higher version), as PlanVersionRepository.active."""
    best = None
    for h in heads:
        if h.activate_time is not None and h.activate_time <= at and (
                best is None or (h.activate_time, h.version) > (best.activate_time, best.version)):
            best = h
    return best


def _latest(heads: list[PlanSetVersion]) -> tuple[datetime | None, PlanSetVersion | None]:
    """(the last activation time, the version _pick gives at or after it); (None, None) without activations."""
    times = [h.activate_time for h in heads if h.activate_time is not None]
    if not times:
        return None, None
    last = max(times)
    return last, _pick(heads, last)


__all__ = ["ChunkOutcomes", "RatedRows", "RatingDesk", "RatingOutcome", "RatingStream"]
