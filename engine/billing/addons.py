"""Add-on bundles bought for a subscriber mid-cycle (BillingService ``BuyAddOn``, ``rulebill accounts buy-add-on``).

An add-on is a ``recurrence: one_off`` bundle that the subscriber's tariff plan version lists in ``add_ons``.  A
purchase, in one transaction:

- records the purchase (``billing_addon_purchases``) with the subscriber's next add-on **counter cycle**
  ``+NNNNNN``: rating grants the bundle's allowance from the purchase instant to the end of its ``validity_days``-th
  day in the tariff plan's time zone (engine.rating.addons), after the plan's own bundles;
- raises the bundle's fee, never prorated, as a one-off charge of the subscriber's account with the bundle's tax
  category (code: the bundle id), so it goes on the account's next bill like a CSR's charge;
- raises the charges of the ``bundle_bought`` charge rules (engine.billing.chargerules) and writes the audit entry.

It is idempotent: the purchase id is derived from the tenant, the subscriber and the caller's ``request_id``, so a
retried request returns the first purchase and never buys twice (the same request id with another bundle is refused).

A purchase is **listed** (``ListAddOns``) with its state and the units rating has used of it, and **cancelled**
(``CancelAddOn``): its grant ends at the cancel instant (rating reads the purchase's end as the earlier of its
validity end and the cancel instant, store/addons.py ``SqlAddOnReader``), and the refund the bundle's ``refund``
policy gives (:func:`refund_of`) is raised as a negative one-off charge of the account that paid the fee, with the
fee's tax category, so it reconciles on the account's next bill.

A monthly add-on is stopped without a cancel by the subscriber's deactivation and by a change to a tariff plan whose
version does not offer it (:class:`StopAddOns`, in the transaction of the event); its cycles are the account's as
rating reads them at each CDR (:func:`anchor_now`, engine.rating.addons.in_row_cycles).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol
from zoneinfo import ZoneInfo

from engine import audit
from engine.billing.chargerules import rule_charge
from engine.billing.csr_limit import within_csr_limit
from engine.billing.cycles import local_day, local_midnight
from engine.billing.model import AccountStatus, OneOffCharge
from engine.billing.ports import BillingUnitOfWorkFactory
from engine.billing.profile import BillingProfile
from engine.clock import Clock
from engine.currencies import minor_units
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.money import RoundingMode, round_micros
from engine.paging import Page
from engine.plans.model import Refund
from engine.rating.addons import ActiveAddOn, counter_cycle, monthly_counter_cycle
from engine.rating.period import cycle_bounds
from engine.rating.usage import cycle_of

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_PURCHASES = 999_999   # per subscriber: the counter cycle's six digits


@dataclass(frozen=True)
class AddOnPurchase:
    purchase_id: str
    tenant_id: str
    subscriber_id: str
    msisdn: str
    account_id: str
    bundle_id: str
    request_id: str
    cycle: str                # rating's counter cycle of this purchase, "+000001"
    bill_cycle: str           # the account's bill cycle it was bought in (its use is on the bills from that cycle's), "2026-03"
    tariff_plan: str
    purchase_time: datetime
    valid_from: datetime
    valid_until: datetime     # exclusive
    allowance: int
    unit: str
    fee_micros: int
    currency: str
    tax_category: str
    charge_id: str            # the one-off charge of its fee ("" for a free add-on)
    created_by: str
    refund: str = Refund.NONE.value       # the bundle's refund policy when it was bought
    cancel_time: datetime | None = None   # set by CancelAddOn: the grant ends then
    cancel_request_id: str = ""
    refund_micros: int = 0                # what the cancel gave back (>= 0; charged as a negative one-off charge)
    refund_charge_id: str = ""            # that charge ("" when nothing was refunded)
    cancelled_by: str = ""
    last_bill_cycle: str = ""             # the account's bill cycle of its last valid instant (its use is on each cycle's bill)
    recurrence: str = "one_off"           # billing_0007: a monthly add-on recurs every bill cycle until cancelled
    anchor_day: int = 1                   # monthly: the account's anchor day when bought (its cycles' first day)
    cycle_zone: str = ""                  # monthly: the time zone its cycles' days are counted in (the plan's, as rating's)

    @property
    def monthly(self) -> bool:
        return self.recurrence == "monthly"

    @property
    def ends(self) -> datetime:
        """When its grant ends (exclusive): the validity end, or the cancel instant when cancelled before it.  A monthly
        add-on's ``valid_until`` is :data:`OPEN` until it is cancelled, then the instant the cancel stops it at."""
        if self.monthly:
            return self.valid_until
        return min(self.valid_until, self.cancel_time) if self.cancel_time is not None else self.valid_until

    def state(self, now: datetime) -> str:
        """active, expired or cancelled (a purchase cancelled is cancelled, whatever its validity)."""
        if self.cancel_time is not None:
            return "cancelled"
        return "active" if now < self.valid_until else "expired"


OPEN = datetime(9999, 12, 31, tzinfo=timezone.utc)   # a monthly add-on's end while nobody has cancelled it
OPEN_CYCLE = "9999-12"                               # and the last bill cycle it shows on


def _cycle_instants(p: AddOnPurchase, at: datetime, anchor_day: int | None = None) -> tuple[str, datetime, datetime]:
    """The bill cycle of a monthly add-on at ``at``: its name and its first and next cycle's first instants (local
    midnights in the purchase's cycle zone) under ``anchor_day``, the anchor of the subscriber's account now (as rating
    reads it: :func:`anchor_now`); the anchor it was bought with when not given."""
    tz = ZoneInfo(p.cycle_zone or "UTC")
    start, end = cycle_bounds(anchor_day or p.anchor_day, local_day(at, tz))
    return start.strftime("%Y-%m"), local_midnight(start, tz), local_midnight(end, tz)


def counter_at(p: AddOnPurchase, at: datetime, anchor_day: int | None = None) -> str:
    """The counter cycle that holds the purchase's units at ``at``: a one-off's own, a monthly add-on's of that bill
    cycle (under ``anchor_day``, see :func:`_cycle_instants`)."""
    return monthly_counter_cycle(int(p.cycle[1:]), _cycle_instants(p, at, anchor_day)[0]) if p.monthly else p.cycle


def grants_of(p: AddOnPurchase, start: datetime, end: datetime, cycles: bool = True) -> list[ActiveAddOn]:
    """What rating grants of a purchase at some time in ``[start, end]``: a one-off's allowance over its validity; a
    monthly add-on's whole allowance afresh in each bill cycle (never prorated, as a plan bundle's: the fee is), each
    in its own counter, from the purchase instant to the instant it stops at.  ``cycles=False`` (rating's reader): a
    monthly add-on as one grant over its span, cut into the bill cycles of the rows that use it
    (engine.rating.addons.in_row_cycles: the account's anchor as rating reads it with each chunk)."""
    until = p.ends
    if until <= start or p.valid_from > end:
        return []
    if not p.monthly:
        return [ActiveAddOn(p.tenant_id, p.msisdn, p.cycle, p.bundle_id, p.allowance, p.unit, p.valid_from, until)]
    if not cycles:
        return [ActiveAddOn(p.tenant_id, p.msisdn, "", p.bundle_id, p.allowance, p.unit, p.valid_from, until, int(p.cycle[1:]))]
    out: list[ActiveAddOn] = []
    at = max(p.valid_from, start)
    while at < until and at <= end and len(out) < 1200:
        name, first, nxt = _cycle_instants(p, at)
        out.append(ActiveAddOn(p.tenant_id, p.msisdn, monthly_counter_cycle(int(p.cycle[1:]), name), p.bundle_id, p.allowance, p.unit,
                               max(p.valid_from, first), min(until, nxt), int(p.cycle[1:]), name))
        at = nxt
    return out


@dataclass(frozen=True)
class AddOnView:
    """A purchase as ListAddOns shows it: its state now and the units rating has used of it."""

    purchase: AddOnPurchase
    state: str
    used: int


class AddOnStore(Protocol):
    """The purchases, on the billing unit of work (``uow.add_ons``)."""

    def get(self, purchase_id: str) -> AddOnPurchase | None: ...
    def count_for(self, tenant_id: str, msisdn: str) -> int: ...
    def add(self, purchase: AddOnPurchase) -> None: ...   # raises AlreadyExists when its id or counter cycle is taken
    # the fees of the purchases ``created_by`` made for these subscribers, paid by the account, in its bill cycle ``bill_cycle``
    def fees_bought(self, tenant_id: str, account_id: str, subscriber_ids: Iterable[str], created_by: str, bill_cycle: str) -> int: ...
    # the refunds of the purchases ``cancelled_by`` cancelled for these subscribers, paid by the account, in [since, until)
    def refunds_given(self, tenant_id: str, account_id: str, subscriber_ids: Iterable[str], cancelled_by: str, since: datetime,
                      until: datetime) -> int: ...
    # a subscriber's purchases by (purchase time, id) after the key ``after`` ([iso time, id]), at most ``limit``
    def list_for(self, tenant_id: str, subscriber_id: str, after: list[str] | None, limit: int) -> list[AddOnPurchase]: ...
    # the units left in rating's counter of each purchase (its allowance when rating never touched it)
    def remaining(self, purchases: list[AddOnPurchase]) -> dict[str, int]: ...
    # record the cancel (its cancel_* and refund_* fields, a monthly add-on's new end); False when cancelled meanwhile
    def cancel(self, purchase: AddOnPurchase) -> bool: ...
    # the subscriber's monthly purchases of this bundle ("": of any) that still grant after ``now`` (a second one is refused)
    def live_monthly(self, tenant_id: str, subscriber_id: str, bundle_id: str, now: datetime) -> list[AddOnPurchase]: ...


def refund_of(policy: str, fee_micros: int, currency: str, allowance: int, remaining: int, validity_days: int, days_used: int) -> int:
    """What cancelling an add-on gives back of its fee, rounded half-up to the currency's minor units, never above the fee.

    ``unused``: the fee times the share of the allowance left at the cancel instant; ``prorated``: the fee times the
    share of its validity days after the cancel day (the cancel day counts as used, as the purchase day did);
    ``none``: nothing."""
    if fee_micros <= 0:
        return 0
    if policy == Refund.UNUSED.value and allowance > 0:
        share, whole = max(0, min(remaining, allowance)), allowance
    elif policy == Refund.PRORATED.value and validity_days > 0:
        share, whole = max(0, min(validity_days - days_used, validity_days)), validity_days
    else:
        return 0
    return min(fee_micros, round_micros(fee_micros * share, whole, RoundingMode.HALF_UP, minor_units(currency)))


def monthly_stop(p: AddOnPurchase, now: datetime, anchor_day: int | None = None) -> datetime:
    """When cancelling a monthly add-on at ``now`` stops it, by the bundle's ``refund`` policy: ``prorated`` at once
    (grant and fee end then: the fee of the cycle counts the days up to the cancel day), ``none`` (the default) at the
    end of the bill cycle it is in (its fee for that cycle is due in full, and its units stay until then), the cycle
    under ``anchor_day``, the account's anchor now (see :func:`_cycle_instants`)."""
    if p.refund == Refund.PRORATED.value:
        return now
    return _cycle_instants(p, now, anchor_day)[2]


def bill_cycles_of(purchase: AddOnPurchase, upto: str = OPEN_CYCLE) -> list[str]:
    """The bill cycles (named by the month they start in) whose bills show the purchase's use: from the one it was
    bought in to the one of its last valid instant (a monthly add-on not cancelled: to ``upto``)."""
    year, month = map(int, purchase.bill_cycle.split("-"))
    last = min(purchase.last_bill_cycle or purchase.bill_cycle, upto)
    out: list[str] = []
    while (name := f"{year:04d}-{month:02d}") <= last and len(out) < 1200:   # a one-off's validity: at most 3660 days
        out.append(name)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def add_on_use_name(bundle_id: str, valid_until: datetime, monthly: bool = False) -> str:
    """How a bill names an add-on's use (on the bill of every cycle it is valid in, as its counter is then)."""
    if monthly and valid_until >= OPEN:
        return f"{bundle_id} (add-on, monthly)"
    kind = "monthly until" if monthly else "until"
    return f"{bundle_id} (add-on, {kind} {valid_until.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M')} UTC)"


def refund_charge_id_of(purchase_id: str) -> str:
    return "rf_" + purchase_id[3:]


def purchase_id_of(tenant_id: str, subscriber_id: str, request_id: str) -> str:
    return "ao_" + hashlib.sha256(f"{tenant_id}\x00{subscriber_id}\x00{request_id}".encode()).hexdigest()[:32]


class AddOnDesk:
    """Buying add-ons: the catalogue (plan set in force) says what a subscriber's plan may buy."""

    def __init__(self, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile],
                 catalogues: Callable[[str, datetime], Any]) -> None:
        self._uow = uow
        self._clock = clock
        self.profiles = profiles
        self._catalogues = catalogues

    def buy(self, principal: Principal, subscriber_id: str, bundle_id: str, request_id: str) -> tuple[AddOnPurchase, bool]:
        """Buy ``bundle_id`` for the subscriber; (the purchase, whether this call bought it: False for a retry)."""
        principal.require(Permission.BILLING_WRITE)
        errors = ErrorList()
        if not subscriber_id:
            errors.add("subscriber_id", "required")
        if not bundle_id:
            errors.add("bundle_id", "required: an add-on bundle id such as BN_ADDON_DATA_5GB (one_off) or BN_ADDON_INTL_60MIN (monthly)")
        if not REQUEST_ID.match(request_id):
            errors.add("request_id", "required: 1-128 letters, digits, '.', '_', ':' or '-', the same for a retried purchase")
        errors.raise_if_any("cannot buy add-on")
        now = self._clock.now()
        with self._uow() as uow:
            sub = uow.subscriber(subscriber_id)
            if sub is None or not principal.can_see_tenant(sub.tenant_id):
                raise NotFound("subscriber", subscriber_id)
            store: AddOnStore = uow.add_ons  # type: ignore[attr-defined]
            pid = purchase_id_of(sub.tenant_id, subscriber_id, request_id)
            done = store.get(pid)
            if done is not None:
                if done.bundle_id != bundle_id:
                    raise AlreadyExists("add-on purchase", request_id, f"request {request_id} bought {done.bundle_id} already")
                return done, False
            account = _billed_to(uow, sub.tenant_id, subscriber_id)
            plan = next((p for since, p in reversed(sub.plans) if since <= now), sub.plans[0][1] if sub.plans else "")   # the plan now
            if sub.deactivate_time is not None and sub.deactivate_time <= now:
                errors.add("subscriber_id", f"subscriber {subscriber_id} is deactivated")
            catalogue = self._catalogues(sub.tenant_id, now)
            tz = ZoneInfo(account.time_zone) if account is not None else ZoneInfo("UTC")
            version = catalogue.plan_version(plan, local_day(now, tz)) if catalogue is not None and plan else None
            bundle = catalogue.bundle(bundle_id) if catalogue is not None else None
            if bundle is None:
                errors.add("bundle_id", f"unknown bundle {bundle_id!r} in the plan set of tenant {sub.tenant_id}")
            elif bundle.recurrence.value not in ("one_off", "monthly"):
                errors.add("bundle_id", f"{bundle_id} is a {bundle.recurrence.value} bundle: add-ons are one_off or monthly bundles")
            elif version is None or bundle_id not in version.add_ons:
                offered = ", ".join(version.add_ons) if version is not None and version.add_ons else "none"
                errors.add("bundle_id", f"{bundle_id} is not an add-on of tariff plan {plan or '(none)'} (its add-ons: {offered})")
            elif account is not None and bundle.fee_micros and bundle.currency != account.currency:
                errors.add("bundle_id", f"{bundle_id} is priced in {bundle.currency}, account {account.account_id} bills in {account.currency}")
            errors.raise_if_any("cannot buy add-on")
            assert bundle is not None and catalogue is not None and version is not None
            monthly = bundle.recurrence.value == "monthly"
            if monthly:
                live = store.live_monthly(sub.tenant_id, subscriber_id, bundle_id, now)
                if live and live[0].cancel_time is not None:
                    raise FailedPrecondition("ADD_ON_STOPPING", f"{subscriber_id}'s {bundle_id} (purchase {live[0].purchase_id}) was "
                                                                f"cancelled and runs until {live[0].valid_until.isoformat()}: it can be "
                                                                f"bought again from then",
                                             live[0].purchase_id)
                if live:
                    raise AlreadyExists("add-on purchase", live[0].purchase_id,
                                        f"{subscriber_id} has {bundle_id} already (purchase {live[0].purchase_id}, monthly until cancelled "
                                        f"or {live[0].valid_until.isoformat()}): cancel it first, or retry with its request id "
                                        f"{live[0].request_id}")
            if account is None:
                raise FailedPrecondition("SUBSCRIBER_NOT_BILLED", f"subscriber {subscriber_id} is on no billing account: assign it to "
                                                                  f"one before buying add-ons", subscriber_id)
            if account.status is AccountStatus.CLOSED:
                raise FailedPrecondition("ACCOUNT_CLOSED", f"account {account.account_id} is closed", account.account_id)
            profile = self.profiles.get(sub.tenant_id)
            day = local_day(now, tz)
            bill_cycle = cycle_of(day, account.anchor_day)
            # a CSR's limit holds for the fees of the add-ons it bought on the account in its bill cycle, together, summed
            # under the account's row lock (held to the commit): two purchases at once count each other
            within_csr_limit(principal, profile, bundle.fee_micros, account.currency, "an add-on",
                             lambda: _bought_in_cycle(uow, store, account, principal.subject, bill_cycle),
                             "you bought on the account in this bill cycle")
            count = store.count_for(sub.tenant_id, sub.msisdn)
            if count >= MAX_PURCHASES:
                raise FailedPrecondition("ADD_ON_LIMIT", f"subscriber {subscriber_id} has bought {count} add-ons, the most one number "
                                                         f"may", subscriber_id)
            plan_tz = _plan_zone(catalogue, version, tz)
            first_day = local_day(now, plan_tz)
            # a monthly add-on runs until cancelled, its fee charged by the bill run per cycle (engine.billing.fees)
            until = OPEN if monthly else local_midnight(first_day + timedelta(days=bundle.validity_days), plan_tz)
            charge_id = "oc_" + pid[3:] if bundle.fee_micros and not monthly else ""
            purchase = AddOnPurchase(pid, sub.tenant_id, subscriber_id, sub.msisdn, account.account_id, bundle_id, request_id,
                                     counter_cycle(count + 1), bill_cycle, plan, now, now, until,
                                     bundle.allowance, bundle.unit.value, bundle.fee_micros, bundle.currency or account.currency,
                                     bundle.tax_category, charge_id, principal.subject, bundle.refund.value,
                                     last_bill_cycle=OPEN_CYCLE if monthly else cycle_of(local_day(until - timedelta(microseconds=1), tz),
                                                                                         account.anchor_day),
                                     recurrence=bundle.recurrence.value, anchor_day=account.anchor_day, cycle_zone=plan_tz.key)
            store.add(purchase)
            if charge_id:
                last = local_day(until - timedelta(microseconds=1), plan_tz)
                uow.add_charge(OneOffCharge(charge_id, sub.tenant_id, account.account_id, bundle_id,
                                            f"{bundle.name} ({first_day.isoformat()} - {last.isoformat()})"[:200], bundle.fee_micros,
                                            account.currency, bundle.tax_category, day, subscriber_id, f"add_on:{principal.subject}"[:200]))
            if profile is not None:
                for kind in profile.rules_for("bundle_bought", plan=plan, bundle=bundle_id):
                    uow.add_charge(rule_charge("bundle_bought", kind, sub.tenant_id, account.account_id, account.currency, day, pid,
                                               subscriber_id))
            uow.audit.append(audit.entry(principal, now, "subscriber.buy_add_on", "subscriber", subscriber_id, {},
                                         {"purchase_id": pid, "bundle_id": bundle_id, "request_id": request_id, "cycle": purchase.cycle,
                                          "valid_until": until, "fee_micros": bundle.fee_micros, "recurrence": bundle.recurrence.value},
                                         sub.tenant_id))
            uow.commit()
        return purchase, True

    def list(self, principal: Principal, subscriber_id: str, page: Page) -> list[AddOnView]:
        """A subscriber's purchases, oldest first, with their state now and the units used (rating's counters)."""
        principal.require(Permission.BILLING_READ)
        if not subscriber_id:
            raise InvalidArgument.field("subscriber_id", "required")
        after = page.after   # its shape, [str, str], page_request checked; the first must be an instant
        if after is not None and _instant(after[0]) is None:
            raise InvalidArgument.field("page_token", "not a token of this list")
        now = self._clock.now()
        with self._uow(read_only=True) as uow:
            sub = uow.subscriber(subscriber_id)
            if sub is None or not principal.can_see_tenant(sub.tenant_id):
                raise NotFound("subscriber", subscriber_id)
            store: AddOnStore = uow.add_ons  # type: ignore[attr-defined]
            items = store.list_for(sub.tenant_id, subscriber_id, after, page.size)
            anchor = anchor_now(uow, sub.tenant_id, subscriber_id)
            # a monthly add-on's units used are those of the current bill cycle's counter (its last one once it stopped)
            left = store.remaining([replace(p, cycle=counter_at(p, min(now, p.ends - timedelta(microseconds=1)), anchor)) if p.monthly
                                    else p for p in items])
        return [AddOnView(p, p.state(now), p.allowance - left.get(p.purchase_id, p.allowance)) for p in items]

    def cancel(self, principal: Principal, purchase_id: str, request_id: str) -> tuple[AddOnPurchase, bool]:
        """Cancel a purchase now: its units stop covering CDRs that start from now on, and the bundle's ``refund``
        policy's refund is charged back to the account (a negative one-off charge); (the purchase, whether this call
        cancelled it: False for a retry with the same request id)."""
        principal.require(Permission.BILLING_WRITE)
        errors = ErrorList()
        if not purchase_id:
            errors.add("purchase_id", "required: the purchase's id (ListAddOns, BuyAddOn)")
        if not REQUEST_ID.match(request_id):
            errors.add("request_id", "required: 1-128 letters, digits, '.', '_', ':' or '-', the same for a retried cancel")
        errors.raise_if_any("cannot cancel add-on")
        now = self._clock.now()
        with self._uow() as uow:
            store: AddOnStore = uow.add_ons  # type: ignore[attr-defined]
            p = store.get(purchase_id)
            if p is None or not principal.can_see_tenant(p.tenant_id):
                raise NotFound("add-on purchase", purchase_id)
            if p.cancel_time is not None:
                if p.cancel_request_id == request_id:
                    return p, False
                raise FailedPrecondition("ADD_ON_CANCELLED", f"add-on purchase {purchase_id} was cancelled already "
                                                             f"({p.cancel_time.isoformat()}, request {p.cancel_request_id})", purchase_id)
            if p.valid_until <= now:
                raise FailedPrecondition("ADD_ON_EXPIRED", f"add-on purchase {purchase_id} expired at {p.valid_until.isoformat()}: "
                                                           f"nothing left to cancel", purchase_id)
            account = uow.get_account(p.tenant_id, p.account_id)
            if account is None or account.status is AccountStatus.CLOSED:
                raise FailedPrecondition("ACCOUNT_CLOSED", f"account {p.account_id}, which paid the add-on, is closed", p.account_id)
            catalogue = self._catalogues(p.tenant_id, now)
            tz = ZoneInfo(account.time_zone)
            bundle = catalogue.bundle(p.bundle_id) if catalogue is not None else None
            version = catalogue.plan_version(p.tariff_plan, local_day(now, tz)) if catalogue is not None else None
            plan_tz = _plan_zone(catalogue, version, tz) if version is not None else tz
            first_day = local_day(p.valid_from, plan_tz)
            validity = (local_day(p.valid_until - timedelta(microseconds=1), plan_tz) - first_day).days + 1
            used_days = (local_day(now, plan_tz) - first_day).days + 1
            day = local_day(now, tz)
            if p.monthly:
                # no refund charge: the bill run's fee of the cycle follows the days it served (engine.billing.fees)
                anchor = anchor_now(uow, p.tenant_id, p.subscriber_id)
                stop, refund = monthly_stop(p, now, anchor), 0
                remaining = store.remaining([replace(p, cycle=counter_at(p, now, anchor))]).get(p.purchase_id, p.allowance)
            else:
                stop = now
                remaining = store.remaining([p]).get(p.purchase_id, p.allowance)
                refund = refund_of(p.refund, p.fee_micros, p.currency, p.allowance, remaining, validity, used_days)
            # a CSR's limit holds for the refunds it gave on the account in its bill cycle, together, summed under the
            # account's row lock (held to the commit): two cancels at once count each other
            within_csr_limit(principal, self.profiles.get(p.tenant_id), refund, p.currency, "a refund",
                             (lambda: _refunded_in_cycle(uow, store, account, principal.subject, day)) if refund else None,
                             "you refunded on the account in this bill cycle")
            done = replace(p, cancel_time=now, cancel_request_id=request_id, refund_micros=refund,
                           refund_charge_id=refund_charge_id_of(p.purchase_id) if refund else "", cancelled_by=principal.subject,
                           valid_until=stop if p.monthly else p.valid_until,
                           last_bill_cycle=max(p.bill_cycle, cycle_of(local_day(stop - timedelta(microseconds=1), tz), account.anchor_day)))
            if not store.cancel(done):
                raise FailedPrecondition("ADD_ON_CANCELLED", f"add-on purchase {purchase_id} was cancelled meanwhile", purchase_id)
            if refund:
                name = bundle.name if bundle is not None else p.bundle_id
                uow.add_charge(OneOffCharge(done.refund_charge_id, p.tenant_id, p.account_id, p.bundle_id,
                                            f"Refund: {name} (cancelled {day.isoformat()}, refund {p.refund})"[:200], -refund,
                                            p.currency, p.tax_category, day, p.subscriber_id, f"add_on_refund:{principal.subject}"[:200]))
            uow.audit.append(audit.entry(principal, now, "subscriber.cancel_add_on", "subscriber", p.subscriber_id,
                                         {"purchase_id": p.purchase_id, "valid_until": p.valid_until},
                                         {"purchase_id": p.purchase_id, "bundle_id": p.bundle_id, "request_id": request_id,
                                          "cancel_time": now, "refund": p.refund, "refund_micros": refund, "units_left": remaining,
                                          "ends": done.ends},
                                         p.tenant_id))
            uow.commit()
        return done, True


PLAN_CHANGE = "plan_change"     # the cancel request id (and canceller) of a monthly add-on a plan change stopped
DEACTIVATION = "deactivation"   # ... and of one a deactivation stopped


class StopAddOns:
    """A subscriber event handler (engine.subscribers ``on_event``) that stops the subscriber's monthly add-ons in the
    transaction of the event (``billing_of`` gives the billing store on it), then passes every event on to ``then``
    (the charge rules):

    - ``subscriber_deactivated``: every monthly add-on stops at the deactivation instant;
    - ``plan_changed``: each monthly add-on the new tariff plan's version in force that day (``catalogues``: the plan
      set in force) does not list in ``add_ons`` stops at the change instant; one the new plan offers too runs on.

    A stopped add-on's grant ends then and its fee with the last day it served (engine.billing.fees counts its days:
    the bill after trues up a fee charged in advance); ``ListAddOns`` shows it cancelled, cancel request id
    ``deactivation`` or ``plan_change``.  One-off add-ons run out their validity: they were paid in full."""

    def __init__(self, billing_of: Callable[[Any], Any], then: Callable[[Any, str, Any, Any, datetime], None] | None = None,
                 catalogues: Callable[[str, datetime], Any] | None = None) -> None:
        self.billing_of = billing_of
        self.then = then
        self.catalogues = catalogues

    def __call__(self, uow: Any, event: str, before: Any, after: Any, now: datetime) -> None:
        if event == "subscriber_deactivated":
            stop_add_ons(self.billing_of(uow), after.tenant_id, after.subscriber_id, now, DEACTIVATION)
        elif event == "plan_changed" and self.catalogues is not None:
            billing = self.billing_of(uow)
            offered = offered_add_ons(self.catalogues(after.tenant_id, now), after.tariff_plan, now,
                                      _account_zone(billing, after.tenant_id, after.subscriber_id))
            stop_add_ons(billing, after.tenant_id, after.subscriber_id, now, PLAN_CHANGE, offered)
        if self.then is not None:
            self.then(uow, event, before, after, now)


def offered_add_ons(catalogue: Any, plan: str, now: datetime, tz: ZoneInfo) -> frozenset[str]:
    """The add-ons the tariff plan's version in force on ``now``'s local day lists (none without a catalogue or version)."""
    version = catalogue.plan_version(plan, local_day(now, tz)) if catalogue is not None and plan else None
    return frozenset(version.add_ons) if version is not None else frozenset()


def stop_add_ons(billing: Any, tenant_id: str, subscriber_id: str, now: datetime, why: str,
                 offered: frozenset[str] | None = None) -> list[AddOnPurchase]:
    """Stop the subscriber's monthly add-ons running at ``now`` (all, or those not in ``offered``) at ``now``, on the
    billing unit of work ``billing``; the purchases stopped.  An add-on cancelled already (stopping at the end of its
    cycle) is left to stop then."""
    store: AddOnStore = billing.add_ons
    done: list[AddOnPurchase] = []
    for p in store.live_monthly(tenant_id, subscriber_id, "", now):
        if offered is not None and (p.valid_from > now or p.bundle_id in offered):
            continue
        account = billing.get_account(p.tenant_id, p.account_id)
        tz = ZoneInfo(account.time_zone) if account is not None else ZoneInfo(p.cycle_zone or "UTC")
        anchor = account.anchor_day if account is not None else p.anchor_day
        stop = max(now, p.valid_from)
        stopped = replace(p, cancel_time=now, cancel_request_id=why, cancelled_by=why, valid_until=stop,
                          last_bill_cycle=max(p.bill_cycle, cycle_of(local_day(stop - timedelta(microseconds=1), tz), anchor)))
        if store.cancel(stopped):
            done.append(stopped)
    return done


def anchor_now(uow: Any, tenant_id: str, subscriber_id: str) -> int | None:
    """The anchor day of the account the subscriber is billed to now, by which rating keys its counters (store/plans.py
    ``_ANCHOR_DAY``, a monthly add-on's cycles: engine.rating.addons.in_row_cycles); None on no account."""
    account = _billed_to(uow, tenant_id, subscriber_id)
    return account.anchor_day if account is not None else None


def _account_zone(uow: Any, tenant_id: str, subscriber_id: str) -> ZoneInfo:
    account = _billed_to(uow, tenant_id, subscriber_id)
    return ZoneInfo(account.time_zone) if account is not None else ZoneInfo("UTC")


def _bought_in_cycle(uow: Any, store: AddOnStore, account: Any, subject: str, bill_cycle: str) -> int:
    """The fees of the add-ons ``subject`` bought on ``account`` in its bill cycle ``bill_cycle`` (cancelled or not: the
    refund is held to the limit on its own), read under the account's row lock."""
    uow.get_account(account.tenant_id, account.account_id, lock=True)
    subscribers = [a.subscriber_id for a in uow.assignments(account.tenant_id, [account.account_id]).get(account.account_id, [])]
    return store.fees_bought(account.tenant_id, account.account_id, subscribers, subject, bill_cycle)


def _refunded_in_cycle(uow: Any, store: AddOnStore, account: Any, subject: str, day: Any) -> int:
    """The refunds ``subject`` gave on ``account`` by cancelling add-ons in the bill cycle of the local ``day``, read
    under the account's row lock."""
    uow.get_account(account.tenant_id, account.account_id, lock=True)
    subscribers = [a.subscriber_id for a in uow.assignments(account.tenant_id, [account.account_id]).get(account.account_id, [])]
    start, end = cycle_bounds(account.anchor_day, day)
    tz = ZoneInfo(account.time_zone)
    return store.refunds_given(account.tenant_id, account.account_id, subscribers, subject, local_midnight(start, tz),
                               local_midnight(end, tz))


def _billed_to(uow: Any, tenant_id: str, subscriber_id: str) -> Any:
    """The account the subscriber is billed to now (None on no account)."""
    assignment = uow.open_assignment(tenant_id, subscriber_id)
    return uow.get_account(tenant_id, assignment.account_id) if assignment is not None else None


def _instant(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _plan_zone(catalogue: Any, version: Any, fallback: ZoneInfo) -> ZoneInfo:
    """The tariff plan version's time zone (its time bands'), where an add-on's validity days are counted."""
    band_set = catalogue.plan_set.time_bands.get(version.time_bands)
    return ZoneInfo(band_set.timezone) if band_set is not None else fallback


__all__ = ["OPEN", "OPEN_CYCLE", "AddOnDesk", "AddOnPurchase", "AddOnStore", "AddOnView", "add_on_use_name", "bill_cycles_of",
           "DEACTIVATION", "PLAN_CHANGE", "StopAddOns", "anchor_now", "counter_at", "grants_of", "monthly_stop",
           "offered_add_ons", "stop_add_ons", "purchase_id_of", "refund_charge_id_of",
           "refund_of"]
