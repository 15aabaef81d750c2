"""Billing accounts: create, update, list; which subscribers an account pays for; one-off charges.

Validation collects every bad field (a cycle anchor of 0 or 32, an unknown
time zone, a VAT id without its country prefix ...).  An account's subscribers
are assigned with dates in billing's own table: a subscriber moves from one
account to another on a day, and each account is billed for its days.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

from engine import audit
from engine.billing.chargerules import rule_charge
from engine.billing.countries import is_country
from engine.billing.csr_limit import within_csr_limit
from engine.billing.cycles import local_day, valid_anchor, valid_time_zone
from engine.billing.model import LANGUAGES, Account, AccountStatus, Address, Assignment, Delivery, OneOffCharge
from engine.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from engine.billing.profile import VAT_ID, BillingProfile
from engine.clock import Clock
from engine.currencies import MINOR_UNITS as _CURRENCIES
from engine.currencies import currency_mismatch
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.money import positive_amount_problem
from engine.paging import Page

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")
MAX_TEXT = 200


@dataclass(frozen=True)
class AccountSpec:
    """What a caller sends to create or update an account (None: unchanged on update)."""

    account_id: str = ""
    tenant_id: str = ""
    name: str | None = None
    address: Address | None = None
    currency: str | None = None
    anchor_day: int | None = None
    time_zone: str | None = None
    language: str | None = None
    delivery: Delivery | None = None
    email: str | None = None
    vat_id: str | None = None
    company_id: str | None = None
    payment_terms_days: int | None = None
    tax_exemption: str | None = None
    discount_plans: tuple[str, ...] | None = None
    buyer_reference: str | None = None


def check_account(a: Account, errors: ErrorList, discount_known: Callable[[str], bool] | None = None) -> None:
    """Every field of an account, each problem named by its field."""
    if not ACCOUNT_ID.match(a.account_id or ""):
        errors.add("account_id", "must be 1-64 characters: letters, digits, '.', '_' or '-'")
    if not a.name.strip() or len(a.name) > MAX_TEXT:
        errors.add("name", f"the payer's name: 1-{MAX_TEXT} characters")
    if a.currency not in _CURRENCIES:
        errors.add("currency", "must be an ISO 4217 currency code such as EUR")
    if not valid_anchor(a.anchor_day):
        errors.add("anchor_day", f"the bill cycle's day of the month is 1..31, not {a.anchor_day}")
    if not valid_time_zone(a.time_zone):
        errors.add("time_zone", f"{a.time_zone!r} is not an IANA time zone such as Europe/Paris")
    if a.language not in LANGUAGES:
        errors.add("language", f"one of {', '.join(LANGUAGES)}")
    if a.delivery is Delivery.EMAIL and not a.email:
        errors.add("email", "delivery by e-mail needs the e-mail address")
    if a.email and not EMAIL.match(a.email):
        errors.add("email", f"{a.email!r} is not an e-mail address")
    if a.vat_id and not VAT_ID.match(a.vat_id):
        errors.add("vat_id", "a VAT id starts with its country prefix, e.g. FR40123456789")
    if not 0 <= a.payment_terms_days <= 365:
        errors.add("payment_terms_days", "0..365")
    if a.address is not None:
        if not a.address.lines or not all(line.strip() for line in a.address.lines) or len(a.address.lines) > 3:
            errors.add("address.lines", "1 to 3 lines of text")
        if not a.address.city.strip():
            errors.add("address.city", "must not be empty")
        if not is_country(a.address.country):
            errors.add("address.country", f"{a.address.country!r} is not an ISO 3166-1 alpha-2 country code such as FR")
    for i, d in enumerate(a.discount_plans):
        if discount_known is not None and not discount_known(d):
            errors.add(f"discount_plans[{i}]", f"discount plan {d} is not in the tenant's plan set")
    for field, value in (("buyer_reference", a.buyer_reference), ("company_id", a.company_id), ("tax_exemption", a.tax_exemption)):
        if len(value) > MAX_TEXT:
            errors.add(field, f"at most {MAX_TEXT} characters")


class AccountDesk:
    """Use cases on accounts, assignments and one-off charges."""

    def __init__(self, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile],
                 discount_known: Callable[[str, str], bool] | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.profiles = profiles
        self._discount_known = discount_known

    def _tenant(self, principal: Principal, tenant_id: str) -> str:
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        return tenant

    def _load(self, uow, principal: Principal, tenant_id: str, account_id: str, lock: bool = False) -> Account:
        """``lock``: the account's row lock, held to the commit (what is read is what the write replaces)."""
        tenant = tenant_id or principal.tenant_id
        found = uow.get_account(tenant, account_id, lock=lock) if principal.can_see_tenant(tenant) else None
        if found is None:
            raise NotFound("account", account_id)
        return found

    def create(self, principal: Principal, spec: AccountSpec) -> Account:
        principal.require(Permission.BILLING_WRITE)
        tenant = self._tenant(principal, spec.tenant_id)
        now = self._clock.now()
        profile = self.profiles.get(tenant)
        account = Account(
            tenant_id=tenant, account_id=spec.account_id, name=(spec.name or "").strip(), address=spec.address,
            currency=spec.currency or (profile.currency if profile else ""), anchor_day=spec.anchor_day if spec.anchor_day is not None else 1,
            time_zone=spec.time_zone or "Europe/Paris", language=spec.language or "en", delivery=spec.delivery or Delivery.DOWNLOAD,
            email=spec.email or "", vat_id=(spec.vat_id or "").replace(" ", "").upper(), company_id=spec.company_id or "",
            payment_terms_days=spec.payment_terms_days if spec.payment_terms_days is not None else (profile.terms_days if profile else 14),
            tax_exemption=spec.tax_exemption or "", discount_plans=tuple(spec.discount_plans or ()),
            buyer_reference=spec.buyer_reference or "", status=AccountStatus.ACTIVE, create_time=now, update_time=now)
        errors = ErrorList()
        if profile is None:
            errors.add("tenant_id", f"tenant {tenant} has no billing profile (plans/billing/{tenant}.yaml)")
        self._check(account, errors)
        errors.raise_if_any("cannot create account")
        with self._uow() as uow:
            if uow.get_account(tenant, account.account_id) is not None:
                raise AlreadyExists("account", account.account_id)
            uow.add_account(account)   # AlreadyExists too when a request at the same time created it first
            uow.audit.append(audit.entry(principal, now, "account.create", "account", f"{tenant}/{account.account_id}", {},
                                         account.as_audit(), tenant))
            uow.commit()
        return account

    def _check(self, account: Account, errors: ErrorList) -> None:
        known = self._discount_known
        check_account(account, errors, (lambda d: known(account.tenant_id, d)) if known is not None else None)
        profile = self.profiles.get(account.tenant_id)
        # a tenant has one billing profile and bills in its currency: an account in another could never be billed
        # (compute_bill refuses it at every run)
        if profile is not None and account.currency in _CURRENCIES and account.currency != profile.currency:
            errors.add("currency", f"{account.tenant_id} bills in {profile.currency} (plans/billing/{account.tenant_id}.yaml): "
                                   f"an account in {account.currency} could not be billed")

    def update(self, principal: Principal, spec: AccountSpec) -> Account:
        principal.require(Permission.BILLING_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            # under the row lock: two updates of different fields at once both keep their change (the row is written whole)
            old = self._load(uow, principal, spec.tenant_id, spec.account_id, lock=True)
            refuse_unless_open(old)
            changes = {k: getattr(spec, k) for k in ("name", "address", "currency", "anchor_day", "time_zone", "language", "delivery",
                                                     "email", "vat_id", "company_id", "payment_terms_days", "tax_exemption",
                                                     "discount_plans", "buyer_reference") if getattr(spec, k) is not None}
            if "vat_id" in changes:
                changes["vat_id"] = changes["vat_id"].replace(" ", "").upper()
            updated = replace(old, **changes, update_time=now)
            errors = ErrorList()
            self._check(updated, errors)
            if updated.currency != old.currency and old.account_id in uow.last_claims(old.tenant_id, [old.account_id]):
                errors.add("currency", "an account that has been billed keeps its currency")
            errors.raise_if_any("cannot update account")
            uow.update_account(updated)
            uow.audit.append(audit.entry(principal, now, "account.update", "account", f"{old.tenant_id}/{old.account_id}", old.as_audit(),
                                         updated.as_audit(), old.tenant_id))
            uow.commit()
        return updated

    def get(self, principal: Principal, tenant_id: str, account_id: str) -> tuple[Account, list[Assignment]]:
        principal.require(Permission.BILLING_READ)
        with self._uow(read_only=True) as uow:
            account = self._load(uow, principal, tenant_id, account_id)
            return account, uow.assignments(account.tenant_id, [account.account_id]).get(account.account_id, [])

    def list(self, principal: Principal, tenant_id: str, page: Page) -> list[Account]:
        principal.require(Permission.BILLING_READ)
        if tenant_id:
            principal.require_tenant(tenant_id)
            tenants: set[str] | None = {tenant_id}
        else:
            tenants = None if principal.is_operator else {principal.tenant_id}
        with self._uow(read_only=True) as uow:
            return uow.list_accounts(tenants, page.after, page.size)

    def assign(self, principal: Principal, tenant_id: str, account_id: str, subscriber_id: str, valid_from: datetime | None) -> Assignment:
        """Bill ``subscriber_id`` to the account from ``valid_from`` (default now); it leaves its previous account then."""
        principal.require(Permission.BILLING_WRITE)
        now = self._clock.now()
        when = valid_from or now
        with self._uow() as uow:
            # the account's row lock, held to the commit: a final run that makes it closing meanwhile waits for this
            account = self._load(uow, principal, tenant_id, account_id, lock=True)
            refuse_unless_open(account)
            # the subscriber's row lock, held to the commit: two assignments of one subscriber at once (to two accounts)
            # queue here, and the second reads the first's as the open one (uq_billing_assignments_open backs this up)
            sub = uow.subscriber(subscriber_id, lock=True)
            if sub is None or sub.tenant_id != account.tenant_id:
                raise NotFound("subscriber", subscriber_id)
            if not sub.postpaid:
                raise FailedPrecondition("SUBSCRIBER_NOT_POSTPAID", f"subscriber {subscriber_id} is prepaid: only postpaid subscribers are billed",
                                         subscriber_id)
            current = uow.open_assignment(account.tenant_id, subscriber_id)
            if current is not None:
                if current.account_id == account.account_id:
                    raise AlreadyExists("assignment", subscriber_id, f"subscriber {subscriber_id} is already billed to {account_id}")
                # not under the leaving account's lock (two moves crossing between two accounts would deadlock): a final
                # run writing its draft at this very moment is the one window left
                leaving = uow.get_account(account.tenant_id, current.account_id)
                if leaving is not None and leaving.status is AccountStatus.CLOSING:
                    raise closing_refused(leaving)   # its final bill was computed with this subscriber's days
                if when <= current.valid_from:
                    raise InvalidArgument.field("valid_from", f"must be after {current.valid_from.isoformat()}, when the subscriber "
                                                             f"joined account {current.account_id}")
                claim = uow.last_claims(account.tenant_id, [current.account_id]).get(current.account_id)
                if claim is not None and local_day(when, ZoneInfo(account.time_zone)) < claim.period_end:
                    raise FailedPrecondition("PERIOD_ALREADY_BILLED", f"account {current.account_id} is billed until "
                                             f"{claim.period_end.isoformat()}: move the subscriber from that day on", current.account_id)
                uow.end_assignment(current, when)
            new = Assignment(account.tenant_id, account.account_id, subscriber_id, sub.msisdn, when)
            uow.add_assignment(new)
            profile = self.profiles.get(account.tenant_id)
            if current is None and profile is not None:
                day = local_day(when, ZoneInfo(account.time_zone))
                plan = sub.plans[-1][1] if sub.plans else ""
                for kind in profile.rules_for("subscriber_joined", plan=plan):
                    uow.add_charge(rule_charge("subscriber_joined", kind, account.tenant_id, account.account_id, account.currency, day,
                                               f"{subscriber_id}@{when.isoformat()}", subscriber_id))
            uow.audit.append(audit.entry(principal, now, "account.assign", "account", f"{account.tenant_id}/{account.account_id}", {},
                                         {"subscriber_id": subscriber_id, "msisdn": sub.msisdn, "valid_from": when}, account.tenant_id))
            uow.commit()
        return new

    def add_charge(self, principal: Principal, tenant_id: str, account_id: str, code: str, amount_micros: int | None,
                   description: str, subscriber_id: str = "", charge_date: date | None = None, currency: str = "") -> OneOffCharge:
        """A one-off charge of the profile's catalogue (``OC_...``); CSRs only up to the profile's ``csr_limit``."""
        principal.require(Permission.BILLING_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            # the account's row lock, held to the commit: a final run writing its final bill meanwhile waits, or is waited for
            account = self._load(uow, principal, tenant_id, account_id, lock=True)
            profile = self.profiles.get(account.tenant_id)
            errors = ErrorList()
            kind = profile.charges.get(code) if profile else None
            if kind is None:
                known = ", ".join(sorted(profile.charges)) if profile else "none"
                errors.add("code", f"unknown one-off charge {code!r} (this tenant's: {known})")
            amount = amount_micros if amount_micros is not None else (kind.amount_micros if kind else 0)
            if problem := positive_amount_problem(amount, account.currency):
                errors.add("amount", problem)
            if problem := currency_mismatch(currency, account.currency):
                errors.add("amount.currency", problem)
            if len(description) > MAX_TEXT:
                errors.add("description", f"at most {MAX_TEXT} characters")
            if subscriber_id:
                assigned = uow.assignments(account.tenant_id, [account.account_id]).get(account.account_id, [])
                if not any(a.subscriber_id == subscriber_id for a in assigned):
                    errors.add("subscriber_id", f"subscriber {subscriber_id} is not billed to account {account_id}")
            errors.raise_if_any("cannot add one-off charge")
            assert kind is not None and profile is not None
            # a CSR's limit holds for the charges it raised on the account that no bill has taken yet, together, summed
            # under the account's row lock (held to the commit): two charges at once count each other
            within_csr_limit(principal, profile, amount, account.currency, "a one-off charge",
                             lambda: _raised_unbilled(uow, account, principal.subject), "you raised on the account no issued bill has taken yet")
            refuse_unless_open(account)
            charge = OneOffCharge("oc_" + secrets.token_hex(8), account.tenant_id, account.account_id, code, description or kind.name,
                                  amount, account.currency, kind.tax_category, charge_date or local_day(now, ZoneInfo(account.time_zone)),
                                  subscriber_id, principal.subject)
            uow.add_charge(charge)
            uow.audit.append(audit.entry(principal, now, "account.charge", "one_off_charge", charge.charge_id, {},
                                         {"account_id": account_id, "code": code, "amount_micros": amount, "currency": account.currency},
                                         account.tenant_id))
            uow.commit()
        return charge


def closing_refused(account: Account) -> FailedPrecondition:
    """What a change that would alter a waiting final bill answers (the account named)."""
    return FailedPrecondition("ACCOUNT_CLOSING", f"account {account.account_id} is closing: its final bill waits as a draft; "
                                                 "issue the draft (the account closes) or discard it (the account is active "
                                                 "again) first", account.account_id)


def refuse_unless_open(account: Account) -> None:
    """A change to ``account`` (its fields, its subscribers, its charges) is accepted only while it is active."""
    if account.status is AccountStatus.CLOSED:
        raise FailedPrecondition("ACCOUNT_CLOSED", f"account {account.account_id} is closed", account.account_id)
    if account.status is AccountStatus.CLOSING:
        raise closing_refused(account)


def mark_closing(uow: BillingUnitOfWork, tenant_id: str, account_id: str, now: datetime) -> None:
    """A final run wrote its final draft (review): the account is closing until the draft is issued or discarded.
    Status and time only, under the account's row lock (held to the commit)."""
    account = uow.get_account(tenant_id, account_id, lock=True)
    if account is not None and account.status is AccountStatus.ACTIVE:
        uow.update_account(replace(account, status=AccountStatus.CLOSING, update_time=now))


def reopen(uow: BillingUnitOfWork, tenant_id: str, account_id: str, now: datetime) -> None:
    """The final draft was discarded: a closing account is active again (its final period to be billed again)."""
    account = uow.get_account(tenant_id, account_id, lock=True)
    if account is not None and account.status is AccountStatus.CLOSING:
        uow.update_account(replace(account, status=AccountStatus.ACTIVE, update_time=now))


def _raised_unbilled(uow: BillingUnitOfWork, account: Account, subject: str) -> int:
    """The one-off charges ``subject`` raised on ``account`` that no issued bill has taken yet (un-billed, or held by a
    draft that a discard would free), read under the account's row lock."""
    uow.get_account(account.tenant_id, account.account_id, lock=True)
    return sum(c.amount_micros for c in uow.pending_charges(account.tenant_id, [account.account_id], date.max, drafts=True)
               if c.raised_by == subject)
