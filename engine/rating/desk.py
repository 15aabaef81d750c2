"""Rating as a service: pick the plan set version and tariff plan of each CDR, rate it with the one evaluator,
and (optionally) consume bundle counters, add to usage balances, fire credit alerts and keep the usage ledger.

The plan set is the CDR tenant's version active at the CDR's start time, or
its operator's when the tenant has none.  The tariff plan is the one asked
for, else the subscriber's (by a_number), else the wholesale plan whose
customer is the CDR's tenant.

With counters a chunk of CDRs is one transaction (engine.rating.usage): the
ledger rows of its CDRs, the counters and balances of its subscribers' cycles
and the credit alerts already fired are read once; what the chunk's CDRs took
before is given back; the CDRs are rated in order against the counters in
memory; ledger rows, counters and balances are written back in bulk with
compare-and-set, and a chunk that lost a race to another replica is rated
again.  Counters follow each subscriber's bill cycle in the time zone of its
tariff plan (``anchor_of`` gives the cycle's anchor day; 1 by default).
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from engine.cdr import COLUMNS, MediatedCdr, returned_by_rap
from engine.clock import Clock
from engine.errors import FailedPrecondition
from engine.identity import Permission, Principal
from engine.paging import Page
from engine.plans.catalogue import PlanDesk, PlanSetVersion, PlanUnitOfWorkFactory
from engine.ports import UnitOfWorkFactory
from engine.rating.alerts import CreditAlertRecord, fire_credit_alerts
from engine.rating.compiled import CompiledPlans, CompiledVersion
from engine.gcpause import collector_paused
from engine.rating.evaluator import RATED, Evaluator, Row, row_of
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.result import RatedCdr, RatingStatus, UnratedReason
from engine.rating.usage import CounterKey, Held, LedgerEntry, Usage, cycle_of

MAX_RETRIES = 8
_TENANT, _A, _START, _ID = COLUMNS.index("tenant"), COLUMNS.index("a_number"), COLUMNS.index("start_time"), COLUMNS.index("cdr_id")
_ATTRS = COLUMNS.index("attributes")
_SERVICE = COLUMNS.index("service")


@dataclass(frozen=True)
class RatingOutcome:
    rated: RatedCdr
    plan_set_version: int


@dataclass(slots=True)
class _Item:
    """One CDR of a chunk, resolved: who, which plan set and plan, which counters."""

    row: tuple[Any, ...]
    cdr: MediatedCdr | None
    tenant: str
    at: datetime | None                 # the start time, parsed once
    plan_id: str
    version: PlanSetVersion | None
    compiled: CompiledPlans | None
    subscriber: Any
    key: CounterKey | None = None       # the subscriber's cycle, when its counters are used
    tariff: CompiledVersion | None = None


# A compact outcome of rating with counters (mediation, re-rating): (status, charge micros, currency)
Compact = tuple[str, int, str]


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
        self.anchor_of = anchor_of or (lambda _subscriber: 1)
        self._parents: dict[str, str] = {}
        self._compiled: dict[str, CompiledPlans] = {}
        self._evaluators: weakref.WeakKeyDictionary[CompiledPlans, Evaluator] = weakref.WeakKeyDictionary()
        self.races = 0   # chunks rated again because another writer changed their counters first
        self._cycles: dict[tuple[Any, int], str] = {}   # (local day, anchor day) -> cycle

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
        """Rate a chunk of CDRs (RatingService): plan sets and subscribers are read once per chunk."""
        principal.require(Permission.RATING)
        cdrs = [c if c.tenant else c.with_changes(tenant=principal.tenant_id) for c in cdrs]
        for tenant in sorted({c.tenant for c in cdrs}):
            principal.require_tenant(tenant)
        with collector_paused():   # a chunk builds many small acyclic objects (see engine.gcpause)
            rows = [row_of(c) for c in cdrs]
            items = self._resolve(rows, cdrs, tariff_plan, need_subscribers=not tariff_plan or use_counters)
            if use_counters:
                return self._with_counters(items, details=True)  # type: ignore[return-value]
            return [RatingOutcome(self._detail(item, r), item.version.version if item.version is not None else 0)
                    for item, r in zip(items, self._rate_items(items, None))]

    def rate_stored(self, principal: Principal, rows: Sequence[tuple[Any, ...]], version: PlanSetVersion | None = None,
                    compiled: CompiledPlans | None = None) -> list[tuple[str, int]]:
        """Rate stored CDR rows with counters (mediation with rating, re-rating): ``(status, charge)`` per row.

        ``version``/``compiled``: rate with this plan set version instead of the one in force at each CDR."""
        principal.require(Permission.RATING)
        allowed = [row if principal.can_see_tenant(row[_TENANT] or principal.tenant_id) else None for row in rows]
        mine = [(i, row if row[_TENANT] else _with_tenant(row, principal.tenant_id)) for i, row in enumerate(allowed) if row is not None]
        with collector_paused():
            items = self._resolve([r for _, r in mine], None, "", True, version, compiled)
            outcomes = self._with_counters(items, details=False) if items else []
        out: list[tuple[str, int]] = [(RatingStatus.UNRATED.value, 0)] * len(rows)
        for (i, _), o in zip(mine, outcomes):
            out[i] = o[:2]  # type: ignore[index]
        return out

    def rerate_chunk(self, principal: Principal, rows: Sequence[tuple[Any, ...]], held: Held, version: PlanSetVersion | None,
                     compiled: CompiledPlans | None) -> list[Compact]:
        """One chunk of a re-rating run (engine.rating.rerate): stored rows, in start order, with counters;
        ``(status, charge, currency)`` per row."""
        principal.require(Permission.RATING)
        for tenant in sorted({r[_TENANT] for r in rows}):
            principal.require_tenant(tenant)
        with collector_paused():
            items = self._resolve(rows, None, "", True, version, compiled)
            return self._with_counters(items, details=False, held=held) if items else []  # type: ignore[return-value]

    def _resolve(self, rows: Sequence[tuple[Any, ...]], cdrs: Sequence[MediatedCdr] | None, tariff_plan: str,
                 need_subscribers: bool, version: PlanSetVersion | None = None,
                 compiled: CompiledPlans | None = None) -> list[_Item]:
        subs = self._subscribers({r[_A] for r in rows if r[_A]}) if need_subscribers else {}
        timelines: dict[str, Any] = {}
        items = []
        for i, row in enumerate(rows):
            tenant = row[_TENANT]
            at = _when(row[_START])
            if version is None:
                ps, comp = self._in_force(tenant, at, timelines)
            else:
                ps, comp = version, compiled
            sub = subs.get(row[_A]) if row[_A] else None
            known = sub if sub is not None and sub.tenant_id == tenant else None
            plan_id = tariff_plan or (known.tariff_plan if known is not None else "")
            if not plan_id and comp is not None:
                plan_id = next((p.id for p in comp.plans.values() if p.segment == "wholesale" and p.customer == tenant), "")
            items.append(_Item(row, cdrs[i] if cdrs is not None else None, tenant, at, plan_id, ps, comp, known))
        return items

    def _with_counters(self, items: list[_Item], details: bool, held: Held | None = None) -> list[RatingOutcome] | list[Compact]:
        """Rate a chunk with counters in one transaction, again when another replica won a race.

        ``held``: what the other CDRs of a re-rating run still hold (given back while this chunk rates, so the
        run's CDRs share the units as if rated from scratch in order; see engine.rating.rerate)."""
        cycles = self._cycles
        if len(cycles) > 100_000:
            cycles.clear()
        for item in items:
            item.key, item.tariff = None, None
            if item.subscriber is not None and item.compiled is not None and item.at is not None:
                plan = item.compiled.plan(item.plan_id)
                epoch = int(item.at.timestamp())
                v = plan.version_at(epoch) if plan is not None else None
                if v is not None:
                    item.tariff = v
                    day = v.clock.local_day(epoch)
                    anchor = self.anchor_of(item.subscriber)
                    cycle = cycles.get((day, anchor))
                    if cycle is None:
                        cycle = cycles[(day, anchor)] = cycle_of(day, anchor)
                    item.key = (item.tenant, item.row[_A], cycle)
        for _attempt in range(MAX_RETRIES):
            with self._plan_uow() as uow:
                outcomes = self._chunk(uow, items, details, held)
                if outcomes is None:
                    self.races += 1
                    continue  # another writer changed these counters since we read them: read again, rate again
                uow.commit()
                return outcomes
        raise FailedPrecondition("RATING_CONTENTION", f"the counters of this chunk kept changing under {MAX_RETRIES} attempts; "
                                                      f"send it again", "")

    def _chunk(self, uow: Any, items: list[_Item], details: bool, held: Held | None = None) -> list[Any] | None:
        repo = uow.usage
        previous: dict[tuple[str, str], LedgerEntry] = {}
        for tenant in sorted({i.tenant for i in items}):
            for cdr_id, e in repo.ledger_of(tenant, [i.row[_ID] for i in items if i.tenant == tenant]).items():
                previous[(tenant, cdr_id)] = e
        keys = {i.key for i in items if i.key is not None}
        keys |= {(e.tenant_id, e.msisdn, e.cycle) for e in previous.values() if e.counted}
        others = held.besides(previous.values(), keys) if held is not None else {}
        usage = Usage(repo, keys)
        for item in items:
            if item.key is not None and item.tariff is not None:
                for bid in item.tariff.bundles:
                    b = item.compiled.bundles.get(bid) if item.compiled is not None else None
                    if b is not None and b.recurrence == "monthly":
                        usage.ensure(item.key, bid, b.allowance, b.unit)
        # what the chunk's CDRs took when rated before goes back first: rating them again replaces, never adds
        for e in previous.values():
            if e.counted:
                usage.give_back((e.tenant_id, e.msisdn, e.cycle), e.bundles, e.currency, e.charge_micros)
        for held_key, (bundles, charges) in others.items():
            usage.give_back(held_key, bundles.items(), "", 0)
            for currency, micros in charges.items():
                usage.give_back(held_key, (), currency, micros)
        results = self._rate_items(items, usage)
        now = self._clock.now()
        entries: list[tuple[Any, ...]] = []
        outcomes: list[Any] = []
        alerts = self.credit_alerts
        for item, r in zip(items, results):
            key = item.key
            status, charge, what, uses, v = r[0], r[1], r[2], r[3], r[4]
            rated_ok = status == RATED
            currency = v.currency if v is not None and rated_ok else ""
            if key is not None and charge:
                before = usage.charged(key, currency)
                usage.add_charge(key, currency, charge)
                sub = item.subscriber
                if alerts is not None and sub.credit_limit_micros is not None and currency == sub.credit_currency:
                    fire_credit_alerts(uow, alerts, sub, item.plan_id, key[2], currency, before, before + charge, now)
            ps_version = item.version.version if item.version is not None else 0
            # a ledger row in store column order (engine.rating.usage.LEDGER_FIELDS)
            entries.append((
                item.tenant, item.row[_ID], item.row[_A], key[2] if key is not None else "", currency, charge,
                _bundles_text(uses), item.at, str(item.row[_SERVICE]), r[5], r[6], r[7], ps_version,
                v.plan_id if v is not None and rated_ok else item.plan_id, v.version if v is not None and rated_ok else 0,
                status, "" if rated_ok else what[:500]))
            if details:
                outcomes.append(RatingOutcome(self._detail(item, r), ps_version))
            else:
                outcomes.append((status, charge, currency))
        for held_key, (bundles, charges) in others.items():  # the run's other CDRs keep what they hold until rated
            usage.give_back(held_key, ((b, -u) for b, u in bundles.items()), "", 0)
            for currency, micros in charges.items():
                usage.give_back(held_key, (), currency, -micros)
        counters, balances = usage.changes()
        if not repo.write_chunk(entries, set(previous), counters, balances):
            return None
        if held is not None:
            held.rated(previous.values())
        return outcomes

    def _rate_items(self, items: list[_Item], usage: Usage | None) -> list[Row]:
        """Each item rated in order (against the chunk's counters when ``usage``), through the evaluator's batch loop."""
        out: list[Row] = []
        n = 0
        while n < len(items):
            item = items[n]
            if item.compiled is None or item.version is None:
                out.append(_no_plan_set(item))
                n += 1
                continue
            if _is_rap_return(item.row):
                out.append(_rap_return(item))
                n += 1
                continue
            # a run of CDRs under one plan set version goes through the batch loop, in order
            end = n + 1
            while (end < len(items) and items[end].version is item.version and items[end].compiled is item.compiled
                   and not _is_rap_return(items[end].row)):
                end += 1
            run = items[n:end]
            ev = self.evaluator(item.compiled)
            wallets = [usage.wallet(it.key) if it.key is not None else None for it in run] if usage is not None else None
            out.extend(ev.rate_rows([it.row for it in run], [it.plan_id for it in run], wallets))
            n = end
        return out

    def _detail(self, item: _Item, r: Row) -> RatedCdr:
        """The full RatedCdr of a rated row (RatingService answers with it)."""
        assert item.cdr is not None
        if item.compiled is None:
            return RatedCdr(item.row[_ID], RatingStatus(r[0]), reason=r[2])
        return self.evaluator(item.compiled).rated_of(r, item.cdr, item.plan_id)

    # -- plan sets in force --------------------------------------------------------------------------------
    def _subscribers(self, msisdns: set[str]) -> dict[str, Any]:
        """The live subscribers of these MSISDNs, as rating needs them (engine.rating.usage.RatedSubscriber)."""
        if not msisdns:
            return {}
        with self._plan_uow(read_only=True) as uow:
            return uow.usage.subscribers_of(msisdns)

    def _in_force(self, tenant: str, at: datetime | None, timelines: dict[str, Any]) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        """plan_set_at with the tenant's (and its operator's) activation timeline read once per chunk."""
        if at is None:
            return None, None
        heads: Any = timelines.get(tenant)
        if heads is None:
            with self._plan_uow(read_only=True) as uow:
                of = getattr(uow.plan_versions, "activation_heads", None)
                heads = timelines[tenant] = of(tenant) if of is not None else False
        if heads is False:  # a store without timelines: ask per CDR
            version, compiled = self._plans.compiled_at(tenant, at)
            if version is None and self._parent(tenant):
                version, compiled = self._plans.compiled_at(self._parent(tenant), at)
            return version, compiled
        head = _pick(heads, at)
        if head is None:
            parent = self._parent(tenant)
            if parent:
                return self._in_force(parent, at, timelines)
            return None, None
        return head, self._compiled_for(head)

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
    def counters(self, principal: Principal, tenant_id: str, msisdn: str, cycle: str) -> tuple[dict[str, tuple[int, int, str]], dict[str, int]]:
        principal.require(Permission.RATING)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        if not cycle:
            now = self._clock.now()
            sub = self._subscribers({msisdn}).get(msisdn)
            _, compiled = self.plan_set_at(tenant, now)
            cycle = self.cycle_at(sub, compiled, now) if sub is not None and sub.tenant_id == tenant else now.strftime("%Y-%m")
        key = (tenant, msisdn, cycle)
        with self._plan_uow(read_only=True) as uow:
            counters = uow.usage.counters_of([key]).get(key, {})
            balances = uow.usage.balances_of([key]).get(key, {})
        return {b: (r.allowance, r.remaining, r.unit) for b, r in counters.items()}, balances

    def credit_alert_log(self, principal: Principal, tenant_id: str, msisdn: str, period: str, page: Page) -> list[CreditAlertRecord]:
        """The credit alert log, tenant-scoped: a tenant sees its own; the operator sees all (or the tenant asked for)."""
        principal.require(Permission.RATING)
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


def _with_tenant(row: tuple[Any, ...], tenant: str) -> tuple[Any, ...]:
    return row[:_TENANT] + (tenant,) + row[_TENANT + 1:]


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _no_plan_set(item: _Item) -> Row:
    at = item.at
    reason = f"{UnratedReason.NO_PLAN.value}: tenant {item.tenant} has no active plan set at {at.isoformat() if at else item.row[_START]}"
    return (RatingStatus.UNRATED.value, 0, reason, None, None, "", "", 0, "", None)


def _is_rap_return(row: tuple[Any, ...]) -> bool:
    return returned_by_rap(row[_ATTRS])   # kept on record by mediation, never charged (engine.cdr)


def _rap_return(item: _Item) -> Row:
    reason = f"{UnratedReason.RAP_RETURN.value}: a call event returned by a RAP file is on record, not charged"
    return (RatingStatus.UNRATED.value, 0, reason, None, None, "", "", 0, "", None)


def _bundles_text(uses: Any) -> str:
    return "[]" if not uses else json.dumps([list(u) for u in uses])


def _pick(heads: list[PlanSetVersion], at: datetime) -> PlanSetVersion | None:
    """The latest activation at or before ``at`` (ties: the higher version), as PlanVersionRepository.active."""
    best = None
    for h in heads:
        if h.activate_time is not None and h.activate_time <= at and (
                best is None or (h.activate_time, h.version) > (best.activate_time, best.version)):
            best = h
    return best


__all__ = ["RatingDesk", "RatingOutcome"]
