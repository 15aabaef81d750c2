"""Authorise a call attempt: may this MSISDN make this call, SMS or data session now, and why (not)?

The barring rules (rules/barring, one table behind engine.eventrules.Barring)
decide through :meth:`engine.rating.evaluator.Evaluator.authorise`, the same
decision QA replay takes; this use case only finds what it needs: the
subscriber, the plan set in force, and the usage charged in the subscriber's
bill cycle (in its tariff plan's time zone) against the credit limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.clock import Clock
from engine.errors import InvalidArgument, NotFound
from engine.eventrules import Barring, BarringDecision, RuleBook
from engine.identity import Permission, Principal
from engine.subscriber_numbers import normalise_msisdn
from engine.ports import UnitOfWorkFactory
from engine.rating.alerts import flag_for_service
from engine.rating.compiled import no_plans
from engine.rating.desk import RatingDesk
from engine.rating.evaluator import Evaluator

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
        self._barring = barring
        self._uow = uow

    def authorise(self, principal: Principal, req: CallRequest) -> Authorisation:
        principal.require(Permission.RATING)
        msisdn = normalise_msisdn(req.msisdn)
        destination = normalise_msisdn(req.destination)
        if not msisdn:
            raise InvalidArgument.field("msisdn", "must be set")
        if req.service not in SERVICES:
            raise InvalidArgument.field("service", f"must be one of {', '.join(SERVICES)}")
        with self._uow(read_only=True) as uow:
            sub = uow.subscribers.get_live_by_msisdn(msisdn)
        # another tenant's subscriber is reported exactly like a missing one
        if sub is None or not principal.can_see_tenant(sub.tenant_id):
            raise NotFound("subscriber", msisdn)
        at = req.at or self._clock.now()
        _plan_set, compiled = self._desk.plan_set_at(sub.tenant_id, at)
        used = 0
        if sub.credit_limit_micros is not None:
            cycle = self._desk.cycle_at(sub, compiled, at)
            used = self._desk.usage_of(sub.tenant_id, msisdn, cycle).get(sub.credit_currency, 0)
        evaluator = self._desk.evaluator(compiled) if compiled is not None else Evaluator(_EMPTY)
        decision, group = evaluator.authorise(self._barring, sub, destination, req.service, req.roaming, req.visited_network,
                                              at, used)
        return Authorisation(decision, sub.tenant_id, sub.tariff_plan, group, used, sub.credit_limit_micros, sub.credit_currency,
                             tuple(sub.barring_flags))


_EMPTY = no_plans()

__all__ = ["Authorisation", "CallAuthoriser", "CallRequest"]
