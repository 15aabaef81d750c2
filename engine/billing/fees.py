"""Recurring fees of tariff plans and bundles, in advance or in arrears, prorated by the day.

For each subscriber, every local day of the closed period on which it is in
service is charged to the plan (and the plan's bundles) of that day: the
activation and deactivation days are both charged, a plan change day goes
to the new plan.  A fee for ``n`` of the cycle's ``N`` days is
``fee * n / N`` rounded half-up to the currency's minor units, once per
plan (or bundle) and period.

- ``arrears``: the closed period's days are charged on this bill.
- ``advance``: this bill charges the coming cycle in full, and trues up the
  closed period: what its days should have cost minus what the previous bill
  charged in advance for it.  A mid-cycle activation therefore pays its
  first days here, a plan change gets the old plan's unused days back and
  pays the new plan's, and a final bill refunds the days after deactivation.

Bundles follow their ``proration``: ``daily`` as above, ``full`` charges the
whole fee for any part of a cycle, ``none`` charges nothing for a partial
cycle.

A cycle may be closed by more than one bill: an interim bill ("bill now") closes
the days up to yesterday and the regular bill the rest.  The later bill charges
what the cycle's days so far cost less what the earlier bills of the cycle
charged (so the parts add up to the fee exactly), ``full`` is charged by the
first bill of the cycle only, and ``none`` counts the whole cycle's service.

A monthly add-on a subscriber bought apart from its plan (engine.billing.addons) is charged as the plan's bundles
are, on the days it is in force: from its purchase day to the day its cancel, a plan change to a plan that does not
offer it or a deactivation stops it (engine.billing.addons.StopAddOns; its bundle's ``fee_timing`` and ``proration``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Mapping

from engine.billing.catalogue import BillingCatalogue
from engine.billing.model import BillPeriod, ChargeType, SubscriberService
from engine.money import RoundingMode, round_micros
from engine.plans.model import FeeTiming, Proration


@dataclass(frozen=True)
class FeeCharge:
    """One fee amount before taxes: the caller turns it into a bill line."""

    subscriber_id: str
    msisdn: str
    charge_type: ChargeType
    item_id: str               # tariff plan or bundle
    name: str
    tariff_plan: str
    tax_category: str
    amount_micros: int
    start: date
    end: date                  # exclusive
    days: int
    advance: bool              # a coming-cycle fee
    true_up: bool = False      # the closed period's correction of an advance charge


@dataclass
class _Use:
    name: str
    fee: int
    timing: FeeTiming
    tax_category: str
    proration: Proration
    tariff_plan: str
    days: int = 0
    first: date | None = None
    last: date | None = None


def _items(catalogue: BillingCatalogue, plan_id: str, day: date,
           add_ons: Iterable[str] = ()) -> list[tuple[ChargeType, str, str, int, FeeTiming, str, Proration]]:
    version = catalogue.plan_version(plan_id, day)
    if version is None:
        return []
    plan = catalogue.tariff_plan(plan_id)
    out = [(ChargeType.FEE, plan_id, plan.name if plan else plan_id, version.monthly_fee_micros, version.fee_timing, version.tax_category,
            Proration.DAILY)]
    for bid in (*version.bundles, *(b for b in add_ons if b not in version.bundles)):
        b = catalogue.bundle(bid)
        if b is not None and b.fee_micros and b.recurrence.value == "monthly":
            out.append((ChargeType.BUNDLE_FEE, bid, b.name, b.fee_micros, b.fee_timing, b.tax_category, b.proration))
    return out


def _prorated(use: _Use, cycle_days: int, decimals: int, before: int = 0, whole: bool = False) -> int:
    """What this bill's days of the item cost.  ``before``: the days of the same cycle an earlier bill (an interim
    one) already closed for it; ``whole``: served every day of the cycle (``none`` charges only then)."""
    if use.days <= 0:
        return 0
    if use.proration is Proration.FULL:
        return use.fee if not before else 0        # once per cycle: on the first bill of the cycle that serves it
    if use.proration is Proration.NONE and not (whole or use.days >= cycle_days):
        return 0
    if not before and use.days >= cycle_days:
        return use.fee
    # the days so far in the cycle less what the earlier bills of the cycle charged: the parts add up to the fee exactly
    upto = min(before + use.days, cycle_days)
    return (round_micros(use.fee * upto, cycle_days, RoundingMode.HALF_UP, decimals)
            - round_micros(use.fee * before, cycle_days, RoundingMode.HALF_UP, decimals))


def _served_days(svc: SubscriberService, catalogue: BillingCatalogue, start: date, end: date) -> dict[tuple[ChargeType, str], int]:
    """Days of ``[start, end)`` the subscriber was in service under each plan and bundle (split cycles only: an interim
    bill, or a final one after it)."""
    out: dict[tuple[ChargeType, str], int] = defaultdict(int)
    day = start
    while day < end:
        if svc.serves(day):
            for kind, item, *_rest in _items(catalogue, svc.plan_on(day), day, svc.add_ons_on(day)):
                out[(kind, item)] += 1
        day += timedelta(days=1)
    return out


# a subscriber's fees of a period depend on its service's days, plans and add-ons, the period, the plan set and what
# was billed for it in advance, never on its id or number: the subscribers of a run share a few such shapes, so each
# shape's fees are worked out once per plan set (BillingCatalogue.fee_shapes) and each subscriber's are made from them
_FEE_SHAPES = 4096


def recurring_fees(services: Iterable[SubscriberService], period: BillPeriod, catalogue: BillingCatalogue, decimals: int,
                   advance_billed: Mapping[tuple[str, str, str], int]) -> list[FeeCharge]:
    """Every fee charge of the period for these subscribers (see the module doc)."""
    out: list[FeeCharge] = []
    shapes = catalogue.fee_shapes
    for svc in services:
        sub = svc.subscriber_id
        billed = tuple(sorted((k, i, m) for (s, k, i), m in advance_billed.items() if s == sub)) if advance_billed else ()
        key = (period, decimals, svc.assigned_from, svc.assigned_until, svc.activated, svc.deactivated, svc.plans, svc.add_ons, billed)
        found = shapes.get(key)
        if found is None:
            found = tuple(_fields(f) for f in service_fees(svc, period, catalogue, decimals, advance_billed))
            if len(shapes) >= _FEE_SHAPES:
                shapes.clear()
            shapes[key] = found
        msisdn = svc.msisdn
        out.extend([FeeCharge(sub, msisdn, *rest) for rest in found])
    return out


def _fields(f: FeeCharge) -> tuple[object, ...]:
    """A fee charge's fields after its subscriber and number."""
    return (f.charge_type, f.item_id, f.name, f.tariff_plan, f.tax_category, f.amount_micros, f.start, f.end, f.days, f.advance,
            f.true_up)


def service_fees(svc: SubscriberService, period: BillPeriod, catalogue: BillingCatalogue, decimals: int,
                 advance_billed: Mapping[tuple[str, str, str], int]) -> list[FeeCharge]:
    """One subscriber's fee charges of the period, worked out (``recurring_fees`` keeps them by shape)."""
    out: list[FeeCharge] = []
    cycle_days = (period.cycle_end - period.cycle_start).days
    uses: dict[tuple[ChargeType, str], _Use] = {}
    for a, b in _segments(svc, period, catalogue):
        if not svc.serves(a):
            continue
        plan_id = svc.plan_on(a)
        for kind, item, name, fee, timing, category, proration in _items(catalogue, plan_id, a, svc.add_ons_on(a)):
            use = uses.get((kind, item))
            if use is None:
                use = uses[(kind, item)] = _Use(name, fee, timing, category, proration, plan_id)
            use.days += (b - a).days
            use.first = use.first or a
            use.last = b - timedelta(days=1)
    billed_keys = {(k, i) for (s, k, i) in advance_billed if s == svc.subscriber_id}
    split = period.start != period.cycle_start or period.end != period.cycle_end
    before = _served_days(svc, catalogue, period.cycle_start, period.start) if period.start > period.cycle_start else {}
    whole: dict[tuple[ChargeType, str], int] | None = None
    for (kind, item), use in uses.items():
        if split and use.proration is Proration.NONE and whole is None:
            whole = _served_days(svc, catalogue, period.cycle_start, period.cycle_end)
        actual = _prorated(use, cycle_days, decimals, before.get((kind, item), 0),
                           whole is not None and whole.get((kind, item), 0) >= cycle_days)
        assert use.first is not None and use.last is not None
        end = use.last + timedelta(days=1)
        if use.timing is FeeTiming.ARREARS:
            if actual:
                out.append(FeeCharge(svc.subscriber_id, svc.msisdn, kind, item, use.name, use.tariff_plan, use.tax_category,
                                     actual, use.first, end, use.days, False))
            continue
        billed = advance_billed.get((svc.subscriber_id, kind.value, item), 0)
        if actual != billed:
            out.append(FeeCharge(svc.subscriber_id, svc.msisdn, kind, item, use.name, use.tariff_plan, use.tax_category,
                                 actual - billed, use.first, end, use.days, False, true_up=bool(billed)))
        billed_keys.discard((kind.value, item))
    # charged in advance for this period but not in service under it at all (plan changed on day one, or deactivated)
    for kind_value, item in sorted(billed_keys):
        billed = advance_billed[(svc.subscriber_id, kind_value, item)]
        if billed:
            kind = ChargeType(kind_value)
            name = _name(catalogue, kind, item)
            out.append(FeeCharge(svc.subscriber_id, svc.msisdn, kind, item, name, item if kind is ChargeType.FEE else "",
                                 _category(catalogue, kind, item, period.start), -billed, period.start, period.end, 0, False,
                                 true_up=True))
    if period.final or not svc.serves(period.end):
        return out
    plan_id = svc.plan_on(period.end)
    for kind, item, name, fee, timing, category, proration in _items(catalogue, plan_id, period.end, svc.add_ons_on(period.end)):
        if timing is FeeTiming.ADVANCE and fee:
            out.append(FeeCharge(svc.subscriber_id, svc.msisdn, kind, item, name, plan_id, category, fee, period.end,
                                 period.next_end, (period.next_end - period.end).days, True))
    return out


def _segments(svc: SubscriberService, period: BillPeriod, catalogue: BillingCatalogue) -> list[tuple[date, date]]:
    """The period cut where anything a fee depends on may change: service start/end, assignment, plan, plan version."""
    cuts = {period.start, period.end}
    for day in (svc.activated, svc.assigned_from):
        if day is not None:
            cuts.add(day)
    for day in (svc.deactivated,):
        if day is not None:
            cuts.add(day + timedelta(days=1))
    if svc.assigned_until is not None:
        cuts.add(svc.assigned_until)
    for _bundle, first, last in svc.add_ons:
        cuts.add(first)
        if last is not None:
            cuts.add(last + timedelta(days=1))
    for start, plan_id in svc.plans:
        cuts.add(start)
        plan = catalogue.tariff_plan(plan_id)
        if plan is not None:
            cuts.update(v.effective_from for v in plan.versions)
    ordered = sorted(d for d in cuts if period.start <= d <= period.end)
    return list(zip(ordered, ordered[1:]))


def _name(catalogue: BillingCatalogue, kind: ChargeType, item: str) -> str:
    if kind is ChargeType.FEE:
        plan = catalogue.tariff_plan(item)
        return plan.name if plan else item
    bundle = catalogue.bundle(item)
    return bundle.name if bundle else item


def _category(catalogue: BillingCatalogue, kind: ChargeType, item: str, day: date) -> str:
    if kind is ChargeType.FEE:
        version = catalogue.plan_version(item, day)
        return version.tax_category if version else "standard"
    bundle = catalogue.bundle(item)
    return bundle.tax_category if bundle else "standard"


def advance_key(subscriber_id: str, charge_type: ChargeType, item_id: str) -> tuple[str, str, str]:
    return (subscriber_id, charge_type.value, item_id)


def sum_advance(lines: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for subscriber, kind, item, micros in lines:
        out[(subscriber, kind, item)] += micros
    return dict(out)
