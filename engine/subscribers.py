"""Subscribers and their life: provisioned -> active <-> suspended -> deactivated (the records are in engine.model)."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from engine import audit
from engine.clock import Clock
from engine.currencies import MINOR_UNITS
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.model import NewSubscriber, PaymentType, Subscriber, SubscriberFilter, SubscriberStatus
from engine.money import beyond_bound, bound_message, format_amount, has_finer_decimals
from engine.subscriber_numbers import imsi_problem, msisdn_prefix_problem, msisdn_problem, normalise_msisdn
from engine.paging import Page
from engine.ports import PlanCatalogue, UnitOfWork, UnitOfWorkFactory
from engine.tenancy import require_active_tenant

FLAG = re.compile(r"^bar_[a-z][a-z0-9_]{0,38}$")
PLAN_ID = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_REASON = 500

# the records stay importable from here, where they were defined before engine.model
__all__ = ["NewSubscriber", "PaymentType", "Subscriber", "SubscriberDesk", "SubscriberFilter", "SubscriberStatus", "TRANSITIONS"]


# event -> (allowed from-states, to-state)
TRANSITIONS: dict[str, tuple[frozenset[SubscriberStatus], SubscriberStatus]] = {
    "activate": (frozenset({SubscriberStatus.PROVISIONED}), SubscriberStatus.ACTIVE),
    "suspend": (frozenset({SubscriberStatus.ACTIVE}), SubscriberStatus.SUSPENDED),
    "reactivate": (frozenset({SubscriberStatus.SUSPENDED}), SubscriberStatus.ACTIVE),
    "deactivate": (
        frozenset({SubscriberStatus.PROVISIONED, SubscriberStatus.ACTIVE, SubscriberStatus.SUSPENDED}),
        SubscriberStatus.DEACTIVATED,
    ),
}


def _check_reason(reason: str, errors: ErrorList) -> None:
    """A staff reason (suspension, deactivation, barring, SIM swap) is kept in the audit log: bounded."""
    if len(reason) > MAX_REASON:
        errors.add("reason", f"must be at most {MAX_REASON} characters")


class SubscriberDesk:
    """Use cases of SubscriberService."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, plans: PlanCatalogue | None = None,
                 barring_flags: frozenset[str] | None = None, on_event: Callable[[Any, str, Subscriber, Subscriber, datetime], None] | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._plans = plans
        # called in the transaction of a plan change ("plan_changed"), a SIM swap ("sim_swapped") or deactivation
        # ("subscriber_deactivated"), before it commits: billing's charge rules raise their charges there
        # (engine.billing.chargerules.SubscriberEventCharges)
        self.on_event = on_event
        # the flags the barring rules know (from the rule book); None: any bar_* name
        self.barring_flags = barring_flags

    def as_of(self, clock: Clock) -> "SubscriberDesk":
        """This desk (its plan catalogue, barring flags and event charges) on another clock: the sample operator's
        subscribers are provisioned and activated at their sample dates (servers/billing_samples.py)."""
        return SubscriberDesk(self._uow, clock, self._plans, self.barring_flags, self.on_event)

    def _check_plan(self, plan: str, tenant_id: str, field: str, errors: ErrorList) -> None:
        if not PLAN_ID.match(plan or ""):
            errors.add(field, "must be a tariff plan id such as TP_POSTPAID_SMART (capitals, digits, '_')")
        elif self._plans is not None and not self._plans.has_tariff_plan(plan, tenant_id):
            errors.add(field, f"no tariff plan {plan} is available to tenant {tenant_id}")

    def provision(self, principal: Principal, new: NewSubscriber) -> Subscriber:
        principal.require(Permission.SUBSCRIBER_WRITE)
        tenant_id = new.tenant_id or principal.tenant_id
        principal.require_tenant(tenant_id)
        msisdn = normalise_msisdn(new.msisdn)
        errors = ErrorList()
        if problem := msisdn_problem(msisdn):
            errors.add("msisdn", problem)
        if problem := imsi_problem(new.imsi):
            errors.add("imsi", problem)
        if not ACCOUNT.match(new.billing_account or ""):
            errors.add("billing_account", "must be 1-64 characters: letters, digits, '.', '_' or '-'")
        if new.payment_type is None:
            errors.add("payment_type", "must be POSTPAID or PREPAID")
        self._check_plan(new.tariff_plan, tenant_id, "tariff_plan", errors)
        errors.raise_if_any("cannot provision subscriber")
        assert new.payment_type is not None
        now = self._clock.now()
        sub = Subscriber(
            subscriber_id="sub_" + secrets.token_hex(10),
            tenant_id=tenant_id,
            msisdn=msisdn,
            imsi=new.imsi,
            billing_account=new.billing_account,
            payment_type=new.payment_type,
            status=SubscriberStatus.PROVISIONED,
            tariff_plan=new.tariff_plan,
            create_time=now,
            update_time=now,
        )
        with self._uow() as uow:
            require_active_tenant(uow.tenants.get(tenant_id), tenant_id)
            # uniqueness is across the whole operator, whichever MVNO holds the number;
            # the store's partial unique indexes make this race-free
            if uow.subscribers.get_live_by_msisdn(msisdn) is not None:
                raise AlreadyExists("subscriber", msisdn, f"MSISDN {msisdn} is already in use")
            if uow.subscribers.get_live_by_imsi(new.imsi) is not None:
                raise AlreadyExists("subscriber", new.imsi, f"IMSI {new.imsi} is already in use")
            uow.subscribers.add(sub)
            uow.audit.append(audit.entry(principal, now, "subscriber.provision", "subscriber", sub.subscriber_id, {}, sub.as_audit(), tenant_id))
            uow.commit()
        return sub

    def _load(self, uow: UnitOfWork, principal: Principal, subscriber_id: str = "", msisdn: str = "",
              for_update: bool = False) -> Subscriber:
        """``for_update``: read to be written back whole, locked until the unit ends (see SubscriberRepository.get)."""
        if subscriber_id:
            sub = uow.subscribers.get(subscriber_id, for_update=for_update)
            name = subscriber_id
        else:
            name = normalise_msisdn(msisdn)
            sub = uow.subscribers.get_live_by_msisdn(name)
        # another tenant's subscriber is reported exactly like a missing one
        if sub is None or not principal.can_see_tenant(sub.tenant_id):
            raise NotFound("subscriber", name)
        return sub

    def get(self, principal: Principal, subscriber_id: str = "", msisdn: str = "") -> Subscriber:
        principal.require(Permission.SUBSCRIBER_READ)
        if not subscriber_id and not msisdn:
            errors = ErrorList()
            errors.add("subscriber_id", "give subscriber_id or msisdn")
            errors.raise_if_any()
        with self._uow(read_only=True) as uow:
            return self._load(uow, principal, subscriber_id, msisdn)

    def list(self, principal: Principal, flt: SubscriberFilter, page: Page) -> list[Subscriber]:
        principal.require(Permission.SUBSCRIBER_READ)
        if problem := msisdn_prefix_problem(flt.msisdn_prefix):
            raise InvalidArgument.field("msisdn_prefix", problem)
        if flt.tenant_ids:
            for tenant_id in flt.tenant_ids:
                principal.require_tenant(tenant_id)
        elif not principal.is_operator:
            flt = replace(flt, tenant_ids={principal.tenant_id})
        with self._uow(read_only=True) as uow:
            return uow.subscribers.list(flt, page.after, page.size)

    def transition(self, principal: Principal, subscriber_id: str, event: str, reason: str = "") -> Subscriber:
        principal.require(Permission.SUBSCRIBER_WRITE)
        allowed_from, to_state = TRANSITIONS[event]
        errors = ErrorList()
        _check_reason(reason, errors)
        errors.raise_if_any(f"cannot {event} subscriber")
        now = self._clock.now()
        with self._uow() as uow:
            sub = self._load(uow, principal, subscriber_id, for_update=True)
            if sub.status not in allowed_from:
                allowed = ", ".join(sorted(s.value for s in allowed_from))
                raise FailedPrecondition(
                    "SUBSCRIBER_STATE",
                    f"cannot {event} subscriber {subscriber_id}: it is {sub.status.value}, {event} needs {allowed}",
                    subscriber_id,
                )
            if event in ("activate", "reactivate"):
                require_active_tenant(uow.tenants.get(sub.tenant_id), sub.tenant_id)
            changes: dict[str, object] = {"status": to_state, "update_time": now}
            if event == "activate":
                changes["activate_time"] = now
            if event == "deactivate":
                changes["deactivate_time"] = now
            updated = replace(sub, **changes)  # type: ignore[arg-type]
            uow.subscribers.update(updated)
            after = updated.as_audit() | ({"reason": reason} if reason else {})
            uow.audit.append(audit.entry(principal, now, f"subscriber.{event}", "subscriber", subscriber_id, sub.as_audit(), after, sub.tenant_id))
            if event == "deactivate" and self.on_event is not None:
                self.on_event(uow, "subscriber_deactivated", sub, updated, now)
            uow.commit()
        return updated

    def change_plan(self, principal: Principal, subscriber_id: str, tariff_plan: str) -> Subscriber:
        principal.require(Permission.SUBSCRIBER_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            sub = self._load(uow, principal, subscriber_id, for_update=True)
            errors = ErrorList()
            self._check_plan(tariff_plan, sub.tenant_id, "tariff_plan", errors)
            errors.raise_if_any("cannot change plan")
            if sub.status is SubscriberStatus.DEACTIVATED:
                raise FailedPrecondition("SUBSCRIBER_STATE", f"subscriber {subscriber_id} is deactivated", subscriber_id)
            self._check_limit_currency(sub, tariff_plan)
            updated = replace(sub, tariff_plan=tariff_plan, update_time=now)
            uow.subscribers.update(updated)
            uow.audit.append(audit.entry(principal, now, "subscriber.change_plan", "subscriber", subscriber_id, sub.as_audit(), updated.as_audit(), sub.tenant_id))
            if self.on_event is not None and updated.tariff_plan != sub.tariff_plan:
                self.on_event(uow, "plan_changed", sub, updated, now)
            uow.commit()
        return updated

    def swap_sim(self, principal: Principal, subscriber_id: str, imsi: str, reason: str = "") -> Subscriber:
        """Move a subscriber to a new SIM card (lost, stolen or damaged SIM; eSIM transfer): the same number, plan,
        account and history under a new IMSI.  The old IMSI is free at once (a live subscriber holds an IMSI; the
        store's partial unique index refuses a second holder, also against a concurrent swap or provisioning).
        Billing's ``sim_swapped`` charge rules raise their charges in the same transaction."""
        principal.require(Permission.SUBSCRIBER_WRITE)
        errors = ErrorList()
        if problem := imsi_problem(imsi):
            errors.add("imsi", problem)
        _check_reason(reason, errors)
        errors.raise_if_any("cannot swap SIM")
        now = self._clock.now()
        with self._uow() as uow:
            sub = self._load(uow, principal, subscriber_id, for_update=True)
            if sub.status is SubscriberStatus.DEACTIVATED:
                raise FailedPrecondition("SUBSCRIBER_STATE", f"subscriber {subscriber_id} is deactivated", subscriber_id)
            if imsi == sub.imsi:
                raise FailedPrecondition("SAME_SIM", f"subscriber {subscriber_id} already uses IMSI {imsi}", subscriber_id)
            if uow.subscribers.get_live_by_imsi(imsi) is not None:
                raise AlreadyExists("subscriber", imsi, f"IMSI {imsi} is already in use")
            updated = replace(sub, imsi=imsi, update_time=now)
            uow.subscribers.update(updated)
            after = updated.as_audit() | ({"reason": reason} if reason else {})
            uow.audit.append(audit.entry(principal, now, "subscriber.swap_sim", "subscriber", subscriber_id, sub.as_audit(), after, sub.tenant_id))
            if self.on_event is not None:
                self.on_event(uow, "sim_swapped", sub, updated, now)
            uow.commit()
        return updated

    def set_barring(self, principal: Principal, subscriber_id: str, flag: str, barred: bool, reason: str = "") -> Subscriber:
        """Set or clear one staff barring flag; setting a flag the rules do not know is refused (it would bar nothing)."""
        principal.require(Permission.SUBSCRIBER_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            sub = self._load(uow, principal, subscriber_id, for_update=True)
            errors = ErrorList()
            if not FLAG.match(flag or ""):
                errors.add("flag", "must be a barring flag name such as bar_international (bar_ then lower case, digits, '_')")
            elif barred and self.barring_flags is not None and flag not in self.barring_flags:
                errors.add("flag", f"unknown barring flag {flag}: the barring rules know {', '.join(sorted(self.barring_flags))}")
            _check_reason(reason, errors)
            errors.raise_if_any("cannot change barring")
            if sub.status is SubscriberStatus.DEACTIVATED:
                raise FailedPrecondition("SUBSCRIBER_STATE", f"subscriber {subscriber_id} is deactivated", subscriber_id)
            flags = set(sub.barring_flags)
            flags.add(flag) if barred else flags.discard(flag)
            updated = replace(sub, barring_flags=tuple(sorted(flags)), update_time=now)
            uow.subscribers.update(updated)
            after = updated.as_audit() | ({"reason": reason} if reason else {})
            action = "subscriber.bar" if barred else "subscriber.unbar"
            uow.audit.append(audit.entry(principal, now, action, "subscriber", subscriber_id, sub.as_audit(), after, sub.tenant_id))
            uow.commit()
        return updated

    def _check_limit_currency(self, sub: Subscriber, tariff_plan: str) -> None:
        """A plan change may not leave a credit limit in another currency than the new plan charges in: the limit is
        compared with the charges in their own currency (never converted), so it would silently stop protecting the
        subscriber.  Rulebill holds no exchange rates to convert it, and dropping a spending cap the customer or the
        operator set is not a side effect a plan change should have: the operator clears the limit, changes the plan,
        and sets a limit in the new currency (each step audited)."""
        if sub.credit_limit_micros is None or not sub.credit_currency or self._plans is None:
            return
        currency = self._plans.plan_currency(tariff_plan, sub.tenant_id)
        if currency and currency != sub.credit_currency:
            raise FailedPrecondition(
                "CREDIT_LIMIT_CURRENCY",
                f"subscriber {sub.subscriber_id} has a credit limit of {format_amount(sub.credit_limit_micros, sub.credit_currency)} "
                f"{sub.credit_currency}, and tariff plan {tariff_plan} charges in {currency}: clear the limit "
                f"(SetSubscriberCreditLimit with clear), change the plan, then set a limit in {currency}", sub.subscriber_id)

    def _charged_in(self, uow: UnitOfWork, sub: Subscriber) -> str:
        """The currency the subscriber's charges are in: its tariff plan's, else (no plan set active yet) its tenant's."""
        currency = self._plans.plan_currency(sub.tariff_plan, sub.tenant_id) if self._plans is not None else ""
        if currency:
            return currency
        tenant = uow.tenants.get(sub.tenant_id)
        return tenant.currency if tenant is not None else ""

    def set_credit_limit(self, principal: Principal, subscriber_id: str, amount_micros: int | None, currency: str) -> Subscriber:
        """Set (``amount_micros`` >= 0 in ``currency``) or clear (``None``) the credit limit per bill cycle."""
        principal.require(Permission.SUBSCRIBER_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            sub = self._load(uow, principal, subscriber_id, for_update=True)
            errors = ErrorList()
            if amount_micros is not None:
                if amount_micros < 0:
                    errors.add("credit_limit.amount_micros", "must not be negative")
                elif beyond_bound(amount_micros):
                    errors.add("credit_limit.amount_micros", bound_message(amount_micros))
                if currency not in MINOR_UNITS:
                    errors.add("credit_limit.currency", "must be an ISO 4217 currency code such as EUR")
                else:
                    if has_finer_decimals(amount_micros, currency):
                        errors.add("credit_limit.amount_micros", f"must be whole minor units of {currency} "
                                                                 f"({MINOR_UNITS[currency]} decimals), not {format_amount(amount_micros, currency)}")
                    # the limit is compared with the charges in their own currency (never converted): another one never fires
                    charged = self._charged_in(uow, sub)
                    if charged and currency != charged:
                        errors.add("credit_limit.currency", f"{currency} is not {charged}, the currency tariff plan {sub.tariff_plan} "
                                                            f"charges subscriber {subscriber_id} in")
            errors.raise_if_any("cannot set credit limit")
            if sub.status is SubscriberStatus.DEACTIVATED:
                raise FailedPrecondition("SUBSCRIBER_STATE", f"subscriber {subscriber_id} is deactivated", subscriber_id)
            updated = replace(sub, credit_limit_micros=amount_micros, credit_currency=currency if amount_micros is not None else "",
                              update_time=now)
            uow.subscribers.update(updated)
            uow.audit.append(audit.entry(principal, now, "subscriber.credit_limit", "subscriber", subscriber_id, sub.as_audit(),
                                         updated.as_audit(), sub.tenant_id))
            uow.commit()
        return updated
