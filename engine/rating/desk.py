"""Rating as a service: pick the plan set version and tariff plan for a CDR, rate it, and
(optionally) consume the subscriber's bundle counters and add to the usage balance.

The plan set is the CDR tenant's version active at the CDR's start time, or
its operator's when the tenant has none.  The tariff plan is the one asked
for, else the subscriber's (by a_number), else the wholesale plan whose
customer is the CDR's tenant.  Bundle counters live per subscriber and
calendar-month cycle; they start at the bundle's allowance (proration is the
bill run's business) and are consumed with conditional updates, so two
replicas never spend the same units twice.  Every CDR rated with counters is
written to a usage ledger under its stable ``cdr_id``: rating it again first
gives back what the previous rating took (bundle units and charge), so a
re-rate replaces, never adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.cdr import MediatedCdr
from engine.clock import Clock
from engine.identity import Permission, Principal
from engine.paging import Page
from engine.plans.catalogue import LedgerEntry, PlanDesk, PlanSetVersion, PlanUnitOfWorkFactory
from engine.ports import UnitOfWorkFactory
from engine.rating.alerts import CreditAlertRecord, fire_credit_alerts
from engine.rating.compiled import CompiledPlans
from engine.rating.rater import Rater
from engine.rating.result import BundleState, RatedCdr, RatingStatus, UnratedReason

MAX_RETRIES = 3


@dataclass(frozen=True)
class RatingOutcome:
    rated: RatedCdr
    plan_set_version: int


def cycle_of(cdr: MediatedCdr) -> str:
    return cdr.start_time.strftime("%Y-%m")


class RatingDesk:
    """Use cases of RatingService."""

    def __init__(self, plans: PlanDesk, plan_uow: PlanUnitOfWorkFactory, uow: UnitOfWorkFactory, clock: Clock,
                 credit_alerts: Any = None) -> None:
        self._plans = plans
        self._plan_uow = plan_uow
        self._uow = uow
        self._clock = clock
        # engine.eventrules.CreditAlerts: evaluated when rating with counters for subscribers with a credit limit
        self.credit_alerts = credit_alerts
        self._parents: dict[str, str] = {}
        self._compiled: dict[str, CompiledPlans] = {}

    def plan_set_at(self, tenant: str, at: datetime) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        """The plan set version in force for ``tenant`` at ``at`` (its operator's when it has none); internal.

        The returned version may be a head without IR and sources (only number, digest and times)."""
        return self._in_force(tenant, at, {})

    def usage_of(self, tenant: str, msisdn: str, cycle: str) -> dict[str, int]:
        """Charged usage of a subscriber's cycle by currency; internal."""
        with self._plan_uow() as uow:
            return uow.counters.usage(tenant, msisdn, cycle)

    def rate(self, principal: Principal, cdr: MediatedCdr, tariff_plan: str = "", use_counters: bool = False) -> RatingOutcome:
        return self.rate_many(principal, [cdr], tariff_plan, use_counters)[0]

    def rate_many(self, principal: Principal, cdrs: list[MediatedCdr], tariff_plan: str = "",
                  use_counters: bool = False) -> list[RatingOutcome]:
        """Rate a chunk: the store is asked once per chunk for each tenant's plan set timeline and for the
        subscribers of all a-numbers (not once per CDR); counters are still consumed CDR by CDR."""
        principal.require(Permission.RATING)
        cdrs = [c if c.tenant else c.with_changes(tenant=principal.tenant_id) for c in cdrs]
        for tenant in sorted({c.tenant for c in cdrs}):
            principal.require_tenant(tenant)
        subs: dict[str, Any] = {}
        if not tariff_plan or use_counters:
            subs = self._subscribers({c.a_number for c in cdrs if c.a_number})
        timelines: dict[str, Any] = {}
        raters: dict[int, Rater] = {}
        out = []
        for cdr in cdrs:
            tenant = cdr.tenant
            version, compiled = self._in_force(tenant, cdr.start_time, timelines)
            if version is None or compiled is None:
                out.append(RatingOutcome(RatedCdr(cdr.cdr_id, RatingStatus.UNRATED,
                                                  reason=f"{UnratedReason.NO_PLAN.value}: tenant {tenant} has no active plan set at "
                                                         f"{cdr.start_time.isoformat()}"), 0))
                continue
            sub = subs.get(cdr.a_number) if cdr.a_number else None
            subscriber_known = sub is not None and sub.tenant_id == tenant
            plan_id = tariff_plan or (sub.tariff_plan if subscriber_known and sub is not None else "")
            if not plan_id:
                plan_id = next((p.id for p in compiled.plans.values() if p.segment == "wholesale" and p.customer == tenant), "")
            rater = raters.get(id(compiled))
            if rater is None:
                rater = raters[id(compiled)] = Rater(compiled)
            if use_counters and subscriber_known:
                out.append(RatingOutcome(self._rate_with_counters(rater, compiled, cdr, tenant, plan_id, sub, version.version),
                                         version.version))
            else:
                out.append(RatingOutcome(rater.rate(cdr, plan_id), version.version))
        return out

    def _subscribers(self, msisdns: set[str]) -> dict[str, Any]:
        if not msisdns:
            return {}
        with self._uow() as uow:
            many = getattr(uow.subscribers, "get_live_by_msisdns", None)
            if many is not None:
                return many(sorted(msisdns))
            found = {m: uow.subscribers.get_live_by_msisdn(m) for m in msisdns}
        return {m: s for m, s in found.items() if s is not None}

    def _in_force(self, tenant: str, at: datetime, timelines: dict[str, Any]) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        """plan_set_at with the tenant's (and its operator's) activation timeline read once per chunk."""
        heads: Any = timelines.get(tenant)
        if heads is None:
            with self._plan_uow() as uow:
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
            with self._uow() as uow:
                t = uow.tenants.get(tenant)
            parent = getattr(t, "parent_tenant_id", "") if t is not None else ""
            if t is not None:
                self._parents[tenant] = parent  # a tenant's operator never changes
        return parent

    def _compiled_for(self, head: PlanSetVersion) -> CompiledPlans | None:
        compiled = self._compiled.get(head.digest)
        if compiled is None:
            with self._plan_uow() as uow:
                full = uow.plan_versions.get(head.tenant_id, head.version)
            if full is None:  # pragma: no cover - deleted meanwhile
                return None
            compiled = self._plans.cache.get(full)
            if len(self._compiled) >= 4:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[head.digest] = compiled
        return compiled

    def _rate_with_counters(self, rater: Rater, compiled: CompiledPlans, cdr: MediatedCdr, tenant: str, plan_id: str,
                            sub: Any = None, plan_set_version: int = 0) -> RatedCdr:
        cycle = cycle_of(cdr)
        plan = compiled.plan(plan_id)
        tariff_version = plan.version_at(int(cdr.start_time.timestamp())) if plan is not None else None
        for _attempt in range(MAX_RETRIES):
            with self._plan_uow() as uow:
                previous = uow.counters.ledger_get(tenant, cdr.cdr_id)
                if previous is not None:
                    for bid, units in previous.bundles:
                        uow.counters.give_back(tenant, previous.msisdn, previous.cycle, bid, units)
                    if previous.charge_micros:
                        uow.counters.add_usage(tenant, previous.msisdn, previous.cycle, previous.currency, -previous.charge_micros)
                if tariff_version is not None:
                    for bid in tariff_version.bundles:
                        b = compiled.bundles.get(bid)
                        if b is not None and b.recurrence == "monthly":
                            uow.counters.ensure(tenant, cdr.a_number, cycle, bid, b.allowance, b.unit)
                counters = uow.counters.get(tenant, cdr.a_number, cycle)
                state = BundleState({bid: remaining for bid, (_a, remaining, _u) in counters.items()})
                rated = rater.rate(cdr, plan_id, state)
                ok = all(uow.counters.consume(tenant, cdr.a_number, cycle, use.bundle_id, use.units) for use in rated.bundle_usage)
                if not ok:
                    continue  # someone spent the same units meanwhile: roll back and rate again
                charged = rated.charge_micros if rated.status is RatingStatus.RATED else 0
                watch = (self.credit_alerts is not None and sub is not None and sub.credit_limit_micros is not None
                         and charged and rated.currency == sub.credit_currency)
                used_before = uow.counters.usage(tenant, cdr.a_number, cycle).get(rated.currency, 0) if watch else 0
                if charged:
                    uow.counters.add_usage(tenant, cdr.a_number, cycle, rated.currency, charged)
                if watch:
                    # credit alerts see the usage step this CDR made (after any previous rating of it was given back)
                    fire_credit_alerts(uow, self.credit_alerts, sub, plan_id, cycle, rated.currency, used_before,
                                       used_before + charged, self._clock.now())
                uow.counters.ledger_put(LedgerEntry(tenant, cdr.cdr_id, cdr.a_number, cycle, rated.currency, charged,
                                                    tuple((u.bundle_id, u.units) for u in rated.bundle_usage), cdr.start_time,
                                                    rated.service, rated.destination, rated.plan_id or plan_id, plan_set_version,
                                                    rated.units))
                uow.commit()
                return rated
        return rater.rate(cdr, plan_id)  # pragma: no cover - only under heavy contention

    def counters(self, principal: Principal, tenant_id: str, msisdn: str, cycle: str) -> tuple[dict[str, tuple[int, int, str]], dict[str, int]]:
        principal.require(Permission.RATING)
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        cycle = cycle or self._clock.now().strftime("%Y-%m")
        with self._plan_uow() as uow:
            return uow.counters.get(tenant, msisdn, cycle), uow.counters.usage(tenant, msisdn, cycle)


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
        with self._plan_uow() as uow:
            return uow.alerts.list(tenants, msisdn, period, page.after, page.size)  # type: ignore[attr-defined]


def _pick(heads: list[PlanSetVersion], at: datetime) -> PlanSetVersion | None:
    """The latest activation at or before ``at`` (ties: the higher version), as PlanVersionRepository.active."""
    best = None
    for h in heads:
        if h.activate_time is not None and h.activate_time <= at and (
                best is None or (h.activate_time, h.version) > (best.activate_time, best.version)):
            best = h
    return best


__all__ = ["RatingDesk", "RatingOutcome", "cycle_of"]
