"""One account's bill for one period: a pure function of its inputs.

usage charges (rated CDRs, per subscriber, tariff plan, service and
destination group) + recurring fees (prorated, in advance or arrears) +
one-off charges - period discounts (+ commitment shortfalls) + taxes per VAT
category - payments on account = amount due.  Nothing here reads a clock or
a database: the bill run and QA replay hand in the same inputs and get the
same bill.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from engine.billing.catalogue import BillingCatalogue
from engine.billing.cycles import local_day, local_midnight
from engine.billing.discounts import DiscountRun, Scope
from engine.billing.fees import FeeCharge, recurring_fees
from engine.billing.labels import word
from engine.billing.model import (
    Account,
    Adjustment,
    Bill,
    BillLine,
    BillPeriod,
    BundleUse,
    ChargeType,
    OneOffCharge,
    RatedUsage,
    SubscriberService,
    TaxRate,
    Totals,
    UsageDetail,
)
from engine.billing.profile import BillingProfile
from engine.billing.taxes import TaxProblem, tax_breakdown
from engine.billing.usage_blocks import Fit, UsageBlock, block_fit, fill_line_ids, merge_rows
from engine.currencies import minor_units
from engine.errors import FailedPrecondition, FieldViolation
from engine.money import MAX_AMOUNT_MICROS, RoundingMode, beyond_bound, format_amount, round_micros
from engine.plans.model import TaxExemption


class _UsageSum:
    __slots__ = ("msisdn", "micros", "count")

    def __init__(self, msisdn: str) -> None:
        self.msisdn = msisdn
        self.micros = 0
        self.count = 0


class BillInputError(FailedPrecondition):
    """An account cannot be billed as it stands: every problem, each naming the account's field."""

    def __init__(self, account_id: str, problems: Sequence[FieldViolation]) -> None:
        text = "; ".join(f"{p.field}: {p.description}" for p in problems)
        super().__init__("BILL_INPUT", f"account {account_id} cannot be billed: {text}", account_id)
        self.account_id = account_id
        self.problems = list(problems)


@dataclass(frozen=True)
class BillInputs:
    """Everything one bill depends on, read by the bill run (or a golden folder) before computing."""

    account: Account
    period: BillPeriod
    services: tuple[SubscriberService, ...]
    usage: Sequence[RatedUsage]                                          # unbilled CDRs of the account's numbers
    one_offs: tuple[OneOffCharge, ...] = ()                              # unbilled, charged before the period's end
    advance_billed: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    credits: tuple[tuple[str, int], ...] = ()                            # payments on account available: (source, micros)
    bundles: tuple[BundleUse, ...] = ()
    # the usage as summed blocks instead of CDRs (a bill run, when block_fit says the bill comes out the same)
    usage_blocks: tuple[UsageBlock, ...] | None = None
    # their fit (block_fit), when the bill run found it already, deciding to read the blocks: not looked for twice
    usage_fit: Fit | None = None


def account_problems(account: Account, profile: BillingProfile, catalogue: BillingCatalogue) -> tuple[list[FieldViolation], TaxExemption | None]:
    """What an e-invoice for this account needs and the account lacks."""
    out: list[FieldViolation] = []
    if account.address is None or not account.address.is_complete():
        out.append(FieldViolation("address", "an invoice needs the buyer's postal address (street, city, country: EN 16931 BR-10, BR-11)"))
    if account.currency != profile.currency:
        out.append(FieldViolation("currency", f"the account is in {account.currency}, {profile.tenant_id} bills in {profile.currency}"))
    exemption: TaxExemption | None = None
    country = account.address.country if account.address else ""
    if account.tax_exemption:
        found = catalogue.taxes.exemption(country, account.tax_exemption)
        if isinstance(found, TaxProblem):
            out.append(FieldViolation(found.field, found.description))
        else:
            exemption = found
            if found.needs_buyer_vat_id and not account.vat_id:
                out.append(FieldViolation("vat_id", f"exemption {found.name} ({found.code}) needs the buyer's VAT id on the invoice"))
    elif country and country not in catalogue.taxes.by_country:
        out.append(FieldViolation("address.country", f"no tax table for country {country} in the plan set (plans/taxes/)"))
    return out, exemption


def _usage_name(catalogue: BillingCatalogue, service: str, destination: str, language: str) -> str:
    # the same few names on every bill of a run: kept with the plan set's catalogue
    key = (service, destination, language)
    found = catalogue.usage_names.get(key)
    if found is None:
        found = catalogue.usage_names[key] = _new_usage_name(catalogue, service, destination, language)
    return found


def _new_usage_name(catalogue: BillingCatalogue, service: str, destination: str, language: str) -> str:
    what = word(service, language) if service in ("voice", "sms", "mms", "data", "supplementary") else service
    where = catalogue.destination_name(destination) if destination else word("other", language)
    return f"{what} - {where}"


def compute_bill(inputs: BillInputs, catalogue: BillingCatalogue, profile: BillingProfile, issue_date: date) -> Bill:
    account, period = inputs.account, inputs.period
    problems, exemption = account_problems(account, profile, catalogue)
    if problems:
        raise BillInputError(account.account_id, problems)
    country = account.address.country if account.address else ""
    minor = minor_units(account.currency)
    language = account.language
    tz = ZoneInfo(account.time_zone)
    rates: dict[str, TaxRate | TaxProblem] = {}

    def tax_for(category: str) -> TaxRate | None:
        if category not in rates:
            rates[category] = catalogue.taxes.rate(country, category, exemption)
        found = rates[category]
        return found if isinstance(found, TaxRate) else None

    # which subscriber a CDR belongs to: the one assigned to the account at its start, compared as instants
    # (the local midnights of the assignment days), so the loop never converts a CDR's time
    windows: dict[str, list[tuple[datetime, datetime | None, SubscriberService]]] = defaultdict(list)
    for svc in inputs.services:
        windows[svc.msisdn].append((local_midnight(svc.assigned_from, tz),
                                    local_midnight(svc.assigned_until, tz) if svc.assigned_until else None, svc))
    end_at = local_midnight(period.end, tz)
    last_day = period.end - timedelta(days=1)

    # usage: one line per subscriber, tariff plan, service and destination group (the hot loop of a bill run: a few
    # dict lookups and comparisons per CDR)
    groups: dict[tuple[str, str, str, str], _UsageSum] = {}
    # (start, CDR id, CDR, line key): sorted as plain tuples (start time, then the unique id), no key function
    frozen: list[tuple[datetime, str, RatedUsage, tuple[str, str, str, str]]] = []
    keep = frozen.append
    currencies: set[str] = set()
    currency = account.currency
    owners: Mapping[str, SubscriberService] = {}
    if inputs.usage_blocks is not None:
        owners = _sum_blocks(inputs, tz, end_at, groups)
    for u in inputs.usage if inputs.usage_blocks is None else ():
        candidates = windows.get(u.msisdn)
        t = u.start_time
        if candidates is None or t >= end_at:
            continue
        found: SubscriberService | None = None
        for since, until, svc in candidates:
            if since <= t and (until is None or t < until):
                found = svc
                break
        if found is None:
            continue
        if u.currency != currency:
            currencies.add(u.currency)
            continue
        key = (found.subscriber_id, u.tariff_plan or found.plan_on(local_day(t, tz)), u.service, u.destination)
        g = groups.get(key)
        if g is None:
            groups[key] = g = _UsageSum(found.msisdn)
        g.micros += u.charge_micros
        g.count += 1
        keep((t, u.cdr_id, u, key))
    violations: list[FieldViolation] = []
    if currencies:
        violations.append(FieldViolation("currency", f"rated usage in {', '.join(sorted(currencies))} on an account billed in {account.currency}"))

    lines: list[BillLine] = []

    def add_line(charge_type: ChargeType, description: str, amount_micros: int, category: str, subscriber_id: str, msisdn: str,
                 item_id: str, tariff_plan: str, period_start: date, period_end: date, quantity: int = 1, service: str = "",
                 destination: str = "", exact_micros: int = 0, advance: bool = False) -> None:
        # positional: ~10 lines a bill, each a keyword dict built, unpacked and matched again by the dataclass cost more
        tax = rates.get(category)
        if tax is None:
            tax = rates[category] = catalogue.taxes.rate(country, category, exemption)
        if not isinstance(tax, TaxRate):
            violations.append(FieldViolation(tax.field, tax.description))
            return
        lines.append(BillLine(str(len(lines) + 1), charge_type, description, amount_micros, tax, category, subscriber_id, msisdn, item_id,
                              service, destination, tariff_plan, period_start, period_end, quantity, exact_micros, advance))

    fees = recurring_fees(inputs.services, period, catalogue, minor, inputs.advance_billed)
    fee_by_sub: dict[str, list[FeeCharge]] = defaultdict(list)
    for fee in fees:
        fee_by_sub[fee.subscriber_id].append(fee)
    usage_by_sub: dict[str, list[tuple[tuple[str, str, str, str], _UsageSum]]] = defaultdict(list)
    for key in sorted(groups):
        usage_by_sub[key[0]].append((key, groups[key]))
    subscribers = sorted({s.subscriber_id: s.msisdn for s in inputs.services}.items(), key=lambda kv: (kv[1], kv[0]))
    for subscriber_id, msisdn in subscribers:
        for fee in sorted(fee_by_sub.get(subscriber_id, ()), key=lambda f: (f.advance, f.start, f.charge_type.value, f.item_id)):
            label = word("monthly_fee", language) if fee.charge_type is ChargeType.FEE else word("bundle_fee", language)
            suffix = f" ({word('in_advance', language)})" if fee.advance else (f" ({word('true_up', language)})" if fee.true_up else "")
            add_line(fee.charge_type, f"{label} {fee.name}{suffix}", fee.amount_micros, fee.tax_category, subscriber_id, msisdn,
                     fee.item_id, fee.tariff_plan, fee.start, fee.end, fee.days, advance=fee.advance)
        for (sub, plan, service, destination), summed in usage_by_sub.get(subscriber_id, ()):
            exact, count = summed.micros, summed.count
            version = catalogue.plan_version(plan, last_day) or catalogue.plan_version(plan, period.start)
            category = version.tax_category if version is not None else "standard"
            add_line(ChargeType.USAGE, _usage_name(catalogue, service, destination, language),
                     round_micros(exact, 1, RoundingMode.HALF_UP, minor), category, subscriber_id, msisdn, destination or service, plan,
                     period.start, period.end, count, service, destination, exact)
    msisdn_of = {s.subscriber_id: s.msisdn for s in inputs.services}
    billed_one_offs: list[str] = []
    for charge in sorted(inputs.one_offs, key=lambda c: (c.charge_date, c.charge_id)):
        if charge.charge_date >= period.end:
            continue
        if charge.currency != account.currency:
            violations.append(FieldViolation("one_off_charges", f"{charge.charge_id} is in {charge.currency}, the account in {account.currency}"))
            continue
        svc_list = [s for s in inputs.services if s.subscriber_id == charge.subscriber_id]
        plan = svc_list[0].plan_on(charge.charge_date) if svc_list else ""
        add_line(ChargeType.ONE_OFF, charge.description, charge.amount_micros, charge.tax_category, charge.subscriber_id,
                 msisdn_of.get(charge.subscriber_id, ""), charge.code, plan, charge.charge_date, charge.charge_date + timedelta(days=1))
        billed_one_offs.append(charge.charge_id)

    # period discounts: each subscriber's plans, then the account's own
    run = DiscountRun(lines, catalogue, minor, tax_for)
    cycle_days = (period.cycle_end - period.cycle_start).days
    for subscriber_id, _msisdn in subscribers:
        plan_days = _plan_days(inputs.services, subscriber_id, period)
        plans = sorted({ln.tariff_plan for ln in lines if ln.subscriber_id == subscriber_id and ln.tariff_plan} | set(plan_days))
        for plan in plans:
            days = plan_days.get(plan, 0)
            version = catalogue.plan_version(plan, last_day) or catalogue.plan_version(plan, period.start)
            if version is None or not version.discounts:
                continue
            idx = [i for i, ln in enumerate(lines) if ln.subscriber_id == subscriber_id and ln.tariff_plan == plan]
            run.run(Scope(version.discounts, idx, Fraction(min(days, cycle_days), cycle_days), subscriber_id, plan, version.tax_category))
    if account.discount_plans:
        # a cycle closed by more than one bill (interim, final) shares the account's fixed amounts and minimums by its days
        whole = period.start == period.cycle_start and period.end == period.cycle_end
        run.run(Scope(account.discount_plans, list(range(len(lines))),
                      Fraction(1) if whole else Fraction(min((period.end - period.start).days, cycle_days), cycle_days)))
    for problem in run.problems:
        violations.append(FieldViolation("discount_plans", problem))
    adjustments: list[Adjustment] = []
    for applied in run.applied:
        for part in applied.parts:
            adjustments.append(Adjustment(str(len(adjustments) + 1), applied.charge, applied.name, applied.discount_plan, part.amount_micros,
                                          part.tax, part.tax_category, applied.subscriber_id))

    taxes = tax_breakdown(lines, adjustments, minor)
    codes = {t.tax.code for t in taxes}
    if "O" in codes and len(codes) > 1:
        violations.append(FieldViolation("tax_category", "charges not subject to VAT (O) cannot share an EN 16931 invoice with taxed ones "
                                                         "(BR-O-11): bill them separately"))
    if violations:
        raise BillInputError(account.account_id, _unique(violations))

    line_total = sum(ln.amount_micros for ln in lines)
    allowances = sum(a.amount_micros for a in adjustments if not a.charge)
    charges = sum(a.amount_micros for a in adjustments if a.charge)
    tax_exclusive = line_total - allowances + charges
    tax = sum(t.tax_micros for t in taxes)
    tax_inclusive = tax_exclusive + tax
    payments: list[tuple[str, int]] = []
    room = max(tax_inclusive, 0)
    for source, available in inputs.credits:
        if room <= 0:
            break
        used = min(available, room)
        if used > 0:
            payments.append((source, used))
            room -= used
    prepaid = sum(p for _, p in payments)
    totals = Totals(line_total, allowances, charges, tax_exclusive, tax, tax_inclusive, prepaid, tax_inclusive - prepaid)
    if any(map(beyond_bound, (line_total, allowances, charges, tax_exclusive, tax, tax_inclusive))) or \
            any(beyond_bound(ln.amount_micros) for ln in lines):
        # each charge is within the bound, but enough of them add up beyond what one bill holds (and int64 micros)
        raise BillInputError(account.account_id, [FieldViolation("totals", (
            f"the bill would come to {format_amount(tax_inclusive)} {account.currency} ({len(lines)} lines): beyond the largest "
            f"amount one bill holds, {format_amount(MAX_AMOUNT_MICROS)}; split the charges over accounts or credit some"))])
    frozen.sort()
    line_of = {(ln.subscriber_id, ln.tariff_plan, ln.service, ln.destination): ln.line_id
               for ln in lines if ln.charge_type is ChargeType.USAGE}
    return Bill(
        tenant_id=account.tenant_id, account=account, period=period, currency=account.currency, issue_date=issue_date,
        due_date=issue_date + timedelta(days=account.payment_terms_days), lines=tuple(lines), adjustments=tuple(adjustments),
        taxes=taxes, totals=totals, usage=tuple([f[2] for f in frozen]), one_off_ids=tuple(billed_one_offs), payments=tuple(payments),
        bundles=inputs.bundles, plan_set_version=catalogue.version, usage_line_ids=tuple([line_of[f[3]] for f in frozen]),
        usage_detail=_usage_detail(inputs.usage_blocks, owners, line_of) if inputs.usage_blocks else None,
    )


def _sum_blocks(inputs: BillInputs, tz: ZoneInfo, end_at: datetime,
                groups: dict[tuple[str, str, str, str], _UsageSum]) -> Mapping[str, SubscriberService]:
    """The usage lines' sums from the account's block: the same keys and sums as the loop over its CDRs; returns who
    owns each block (by number)."""
    assert inputs.usage_blocks is not None
    fit = inputs.usage_fit
    if fit is None:
        fit = block_fit(inputs.usage_blocks, inputs.services, tz, inputs.account.currency, end_at)
    if not fit.fits:
        raise ValueError(f"account {inputs.account.account_id}: its usage blocks do not fit the bill (compute it CDR by CDR)")
    for block in inputs.usage_blocks:
        owner = fit.owners[block.msisdn]
        for g in block.groups:
            summed = groups[(owner.subscriber_id, g.tariff_plan, g.service, g.destination)] = _UsageSum(owner.msisdn)
            summed.micros, summed.count = g.micros, g.cdrs
    return fit.owners


def _usage_detail(blocks: Sequence[UsageBlock], owners: Mapping[str, SubscriberService],
                  line_of: Mapping[tuple[str, str, str, str], str]) -> UsageDetail:
    """The blocks' rows with their owners' line ids, merged across numbers in the document's order."""
    parts = []
    for block in blocks:
        sub = owners[block.msisdn].subscriber_id
        parts.append(fill_line_ids(block.rows, {key[1:]: line_id for key, line_id in line_of.items() if key[0] == sub}))
    return UsageDetail(merge_rows(parts), sum(g.cdrs for b in blocks for g in b.groups), tuple(b.frozen for b in blocks))


def _plan_days(services: Sequence[SubscriberService], subscriber_id: str, period: BillPeriod) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for svc in services:
        if svc.subscriber_id != subscriber_id:
            continue
        cuts = sorted({period.start, period.end, *(d for d, _ in svc.plans if period.start < d < period.end),
                       *(d for d in (svc.activated, svc.assigned_from, svc.assigned_until) if d and period.start < d < period.end),
                       *([svc.deactivated + timedelta(days=1)] if svc.deactivated and period.start < svc.deactivated + timedelta(days=1) < period.end else [])})
        for a, b in zip(cuts, cuts[1:]):
            if svc.serves(a):
                out[svc.plan_on(a)] += (b - a).days
    return dict(out)


def _unique(violations: list[FieldViolation]) -> list[FieldViolation]:
    seen: set[tuple[str, str]] = set()
    out = []
    for v in violations:
        if (v.field, v.description) not in seen:
            seen.add((v.field, v.description))
            out.append(v)
    return out
