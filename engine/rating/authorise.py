"""Authorise a call attempt: may this MSISDN make this call, SMS or data session now, and why (not)?

The barring rules (rules/barring, one table behind engine.eventrules.Barring)
decide; this use case only gathers what they test: the subscriber's tenant,
tariff plan and staff flags, the dialled number's destination group in the
plan version in force (longest prefix), roaming, the usage charged in the
cycle against the credit limit, and the local time in the plan's time zone.
The destination group is the longest prefix over every group of the plan set in
force (a national-only plan still knows that 1415... is DST_NORTH_AMERICA).

A subscriber that is not active (provisioned or suspended) may only make
attempts a rule explicitly allows (emergency numbers): the rules know nothing
of subscriber states, so the refusal carries no rule id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.clock import Clock
from engine.errors import InvalidArgument, NotFound
from engine.eventrules import Barring, BarringDecision, CallAttempt, RuleBook
from engine.identity import Permission, Principal
from engine.subscriber_numbers import normalise_msisdn
from engine.ports import UnitOfWorkFactory
from engine.rating.alerts import flag_for_service
from engine.rating.compiled import CompiledPlans
from engine.rating.desk import RatingDesk
from engine.rating.prefix import PrefixIndex
from engine.subscribers import SubscriberStatus

SERVICES = ("voice", "sms", "mms", "data", "supplementary")


def settable_barring_flags(book: RuleBook) -> frozenset[str]:
    """The flags staff may set on a subscriber: those the barring rules test, plus those credit alerts'
    bar_service actions set (a flag no rule knows would bar nothing)."""
    tested = {f.split(".", 1)[1] for f in book.barring_table.ruleset().fields() if f.startswith("flags.")}
    by_alerts = {flag_for_service(a.service) for t in book.alert_table.thresholds for a in t.actions if a.kind == "bar_service"}
    return frozenset(tested | by_alerts)


@dataclass(frozen=True)
class CallRequest:
    msisdn: str
    destination: str = ""
    service: str = "voice"
    roaming: bool = False
    visited_network: str = ""
    at: datetime | None = None  # None: now


@dataclass(frozen=True)
class Authorisation:
    decision: BarringDecision
    tenant_id: str
    tariff_plan: str
    destination_group: str
    credit_used_micros: int
    credit_limit_micros: int | None
    currency: str
    barring_flags: tuple[str, ...]


class CallAuthoriser:
    def __init__(self, desk: RatingDesk, barring: Barring, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._desk = desk
        self._clock = clock
        self._indexes: dict[str, PrefixIndex] = {}
        self._barring = barring
        self._uow = uow

    def _groups(self, digest: str, compiled: CompiledPlans) -> PrefixIndex:
        # every destination group of the plan set, not only those the subscriber's plan prices: a barring
        # rule must see "DST_NORTH_AMERICA" even on a national-only plan
        index = self._indexes.get(digest)
        if index is None:
            destinations = compiled.to_ir()["destinations"]
            index = PrefixIndex((prefix, gid) for gid, d in destinations.items() for prefix in d["prefixes"])
            if len(self._indexes) >= 8:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[digest] = index
        return index

    def authorise(self, principal: Principal, req: CallRequest) -> Authorisation:
        principal.require(Permission.RATING)
        msisdn = normalise_msisdn(req.msisdn)
        destination = normalise_msisdn(req.destination)
        if not msisdn:
            raise InvalidArgument.field("msisdn", "must be set")
        if req.service not in SERVICES:
            raise InvalidArgument.field("service", f"must be one of {', '.join(SERVICES)}")
        with self._uow() as uow:
            sub = uow.subscribers.get_live_by_msisdn(msisdn)
        # another tenant's subscriber is reported exactly like a missing one
        if sub is None or not principal.can_see_tenant(sub.tenant_id):
            raise NotFound("subscriber", msisdn)
        at = req.at or self._clock.now()
        group, local = "", None
        plan_set, compiled = self._desk.plan_set_at(sub.tenant_id, at)
        if plan_set is not None and compiled is not None:
            if destination:
                group, _prefix = self._groups(plan_set.digest, compiled).lookup(destination)
            plan = compiled.plan(sub.tariff_plan)
            version = plan.version_at(int(at.timestamp())) if plan is not None else None
            if version is not None:
                local = at.astimezone(version.clock.tz)
        used = 0
        if sub.credit_limit_micros is not None:
            used = self._desk.usage_of(sub.tenant_id, msisdn, at.strftime("%Y-%m")).get(sub.credit_currency, 0)
        attempt = CallAttempt(
            msisdn=msisdn, tenant=sub.tenant_id, plan_id=sub.tariff_plan, service=req.service, destination=destination,
            destination_group=group, roaming=req.roaming or bool(req.visited_network), visited_network=req.visited_network,
            credit_used_micros=used, credit_limit_micros=sub.credit_limit_micros, flags=frozenset(sub.barring_flags),
            at=local or at,
        )
        decision = self._barring.authorise(attempt)
        if sub.status is not SubscriberStatus.ACTIVE and not (decision.allowed and decision.rule_id):
            decision = BarringDecision(False, "bar", None, f"subscriber is {sub.status.value}: only calls a rule always allows "
                                                           f"(such as emergency numbers) go through")
        return Authorisation(decision, sub.tenant_id, sub.tariff_plan, group, used, sub.credit_limit_micros, sub.credit_currency,
                             tuple(sub.barring_flags))


__all__ = ["Authorisation", "CallAuthoriser", "CallRequest"]
