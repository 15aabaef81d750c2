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

from engine.cdr import MediatedCdr
from engine.clock import Clock
from engine.identity import Permission, Principal
from engine.plans.catalogue import LedgerEntry, PlanDesk, PlanSetVersion, PlanUnitOfWorkFactory
from engine.ports import UnitOfWorkFactory
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

    def __init__(self, plans: PlanDesk, plan_uow: PlanUnitOfWorkFactory, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._plans = plans
        self._plan_uow = plan_uow
        self._uow = uow
        self._clock = clock

    def _plan_set(self, tenant: str, cdr: MediatedCdr) -> tuple[PlanSetVersion | None, CompiledPlans | None]:
        version, compiled = self._plans.compiled_at(tenant, cdr.start_time)
        if version is None:
            with self._uow() as uow:
                t = uow.tenants.get(tenant)
            parent = getattr(t, "parent_tenant_id", "") if t is not None else ""
            if parent:
                version, compiled = self._plans.compiled_at(parent, cdr.start_time)
        return version, compiled

    def rate(self, principal: Principal, cdr: MediatedCdr, tariff_plan: str = "", use_counters: bool = False) -> RatingOutcome:
        principal.require(Permission.RATING)
        tenant = cdr.tenant or principal.tenant_id
        principal.require_tenant(tenant)
        if not cdr.tenant:
            cdr = cdr.with_changes(tenant=tenant)
        version, compiled = self._plan_set(tenant, cdr)
        if version is None or compiled is None:
            return RatingOutcome(RatedCdr(cdr.cdr_id, RatingStatus.UNRATED,
                                          reason=f"{UnratedReason.NO_PLAN.value}: tenant {tenant} has no active plan set at "
                                                 f"{cdr.start_time.isoformat()}"), 0)
        subscriber_known = False
        plan_id = tariff_plan
        if not plan_id or use_counters:
            with self._uow() as uow:
                sub = uow.subscribers.get_live_by_msisdn(cdr.a_number) if cdr.a_number else None
            if sub is not None and sub.tenant_id == tenant:
                subscriber_known = True
                plan_id = plan_id or sub.tariff_plan
        if not plan_id:
            plan_id = next((p.id for p in compiled.plans.values() if p.segment == "wholesale" and p.customer == tenant), "")
        rater = Rater(compiled)
        if not (use_counters and subscriber_known):
            return RatingOutcome(rater.rate(cdr, plan_id), version.version)
        return RatingOutcome(self._rate_with_counters(rater, compiled, cdr, tenant, plan_id), version.version)

    def _rate_with_counters(self, rater: Rater, compiled: CompiledPlans, cdr: MediatedCdr, tenant: str, plan_id: str) -> RatedCdr:
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
                if charged:
                    uow.counters.add_usage(tenant, cdr.a_number, cycle, rated.currency, charged)
                uow.counters.ledger_put(LedgerEntry(tenant, cdr.cdr_id, cdr.a_number, cycle, rated.currency, charged,
                                                    tuple((u.bundle_id, u.units) for u in rated.bundle_usage)))
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


__all__ = ["RatingDesk", "RatingOutcome", "cycle_of"]
