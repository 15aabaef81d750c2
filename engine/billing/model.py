"""Billing accounts, what a bill is made of, invoices and credit notes: plain values, no I/O.

Money is integer micro-units.  A bill's lines, allowances, charges, taxes and
totals are rounded to the currency's minor units (EN 16931 works on rounded
line amounts); the per-CDR detail keeps the rated micros, so a reader can add
the CDRs of a usage line and round once to find the line's amount.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import Enum
from fractions import Fraction
from typing import Any, NamedTuple


class Delivery(str, Enum):
    EMAIL = "email"          # the bill goes to the account's e-mail address
    DOWNLOAD = "download"    # the customer downloads it (portal / API)


class AccountStatus(str, Enum):
    ACTIVE = "active"
    CLOSED = "closed"        # billed one last time (final bill), never again


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...]   # street, building ... (1-3 lines)
    city: str
    postal_code: str
    country: str             # ISO 3166-1 alpha-2
    region: str = ""

    def is_complete(self) -> bool:
        return bool(self.lines and self.lines[0].strip() and self.city.strip() and self.country)


LANGUAGES = ("en", "fr", "de")


@dataclass(frozen=True)
class Account:
    """Who pays: the payer's details and how and when they are billed."""

    tenant_id: str
    account_id: str
    name: str
    address: Address | None
    currency: str
    anchor_day: int                       # 1..31: the cycle starts on this day of each month (clamped to short months)
    time_zone: str                        # IANA; billing days and "already billed" are computed here
    language: str = "en"
    delivery: Delivery = Delivery.DOWNLOAD
    email: str = ""
    vat_id: str = ""
    company_id: str = ""                  # legal registration identifier
    payment_terms_days: int = 14
    tax_exemption: str = ""               # a named exemption of the country's tax table ("" = none)
    discount_plans: tuple[str, ...] = ()  # account-level period discounts (DP_...), after the plans' own
    buyer_reference: str = ""             # what the buyer wants quoted on the invoice (EN 16931 BT-10)
    status: AccountStatus = AccountStatus.ACTIVE
    create_time: datetime | None = None
    update_time: datetime | None = None
    close_time: datetime | None = None

    def as_audit(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Assignment:
    """A subscriber billed to an account from ``valid_from`` until ``valid_to`` (exclusive; None = still)."""

    tenant_id: str
    account_id: str
    subscriber_id: str
    msisdn: str
    valid_from: datetime
    valid_to: datetime | None = None


@dataclass(frozen=True)
class SubscriberService:
    """One subscriber's service on one account, in the account's local days (the bill's input).

    Days are inclusive: the activation day and the deactivation day are both
    charged; a plan change day goes to the new plan.
    """

    subscriber_id: str
    msisdn: str
    assigned_from: date                      # first local day billed to this account
    assigned_until: date | None              # first local day NOT billed to this account (None: open)
    activated: date | None                   # activation day (None: never activated: no fees)
    deactivated: date | None                 # deactivation day (last day of service)
    plans: tuple[tuple[date, str], ...]      # (from day, tariff plan), sorted
    # monthly add-ons: (bundle, first day, last day or None while it runs), charged as the plan's bundles are
    add_ons: tuple[tuple[str, date, date | None], ...] = ()

    def plan_on(self, day: date) -> str:
        current = ""
        for start, plan in self.plans:
            if start <= day:
                current = plan
            else:
                break
        return current or (self.plans[0][1] if self.plans else "")

    def add_ons_on(self, day: date) -> list[str]:
        """The monthly add-ons in force on this day (bought on or before it, stopping on or after it)."""
        return [b for b, first, last in self.add_ons if first <= day and (last is None or day <= last)]

    def serves(self, day: date) -> bool:
        """Whether this day of service is charged to the account."""
        if self.activated is None or day < self.activated:
            return False
        if self.deactivated is not None and day > self.deactivated:
            return False
        return self.assigned_from <= day and (self.assigned_until is None or day < self.assigned_until)

    def owns(self, day: date) -> bool:
        """Whether usage of this local day belongs to the account (assignment only)."""
        return self.assigned_from <= day and (self.assigned_until is None or day < self.assigned_until)


@dataclass(frozen=True)
class BillPeriod:
    """The service period a bill closes: ``[start, end)`` in local days, inside the regular cycle
    ``[cycle_start, cycle_end)`` (the proration base).  A final or interim bill ends early and charges nothing in
    advance (``final``); otherwise the next cycle is ``[end, next_end)`` for fees charged in advance."""

    start: date
    end: date
    cycle_start: date
    cycle_end: date
    next_end: date
    final: bool = False

    @property
    def key(self) -> str:
        return self.start.isoformat()


class RatedUsage(NamedTuple):
    """One rated CDR as the bill reads it (from the usage ledger).

    A named tuple, not a dataclass: a bill run builds one per CDR (200 per invoice), and a tuple is built from a
    database row in a third of the time a frozen dataclass takes."""

    cdr_id: str
    msisdn: str
    start_time: datetime
    service: str
    destination: str          # destination group id ("" when none matched)
    charge_micros: int
    currency: str
    tariff_plan: str = ""
    plan_set_version: int = 0
    units: int = 0            # seconds, events or bytes when the ledger keeps them


class ChargeType(str, Enum):
    USAGE = "usage"
    FEE = "fee"               # recurring fee of a tariff plan
    BUNDLE_FEE = "bundle_fee"
    ONE_OFF = "one_off"
    COMMITMENT = "commitment"  # minimum spend shortfall (a document-level charge)

    @property
    def discount_kind(self) -> str:
        """The name period discounts use in ``charges``."""
        return {"usage": "usage", "fee": "fees", "bundle_fee": "fees", "one_off": "one_off", "commitment": "fees"}[self.value]


@dataclass(frozen=True)
class OneOffCharge:
    """An activation, SIM or penalty charge raised by a CSR (or a rule) and billed once."""

    charge_id: str
    tenant_id: str
    account_id: str
    code: str                 # the charge type of the billing profile (OC_...)
    description: str
    amount_micros: int
    currency: str
    tax_category: str
    charge_date: date
    subscriber_id: str = ""
    raised_by: str = ""
    invoice_id: str = ""      # set when billed


@dataclass(frozen=True)
class TaxRate:
    """Where a line is taxed: category code, percent and (exempt codes) the reason."""

    code: str
    percent: Fraction
    exemption_code: str = ""
    exemption_reason: str = ""

    @property
    def key(self) -> tuple[str, Fraction, str, str]:
        return (self.code, self.percent, self.exemption_code, self.exemption_reason)

    def __hash__(self) -> int:
        # equal rates have equal (normalised) fractions: hashing their integers is the dataclass's hash without
        # Fraction.__hash__ (a modular inverse), which the VAT breakdown and the UBL tax categories paid per bill line
        return hash((self.code, self.percent.numerator, self.percent.denominator, self.exemption_code, self.exemption_reason))


@dataclass(frozen=True)
class BillLine:
    """An invoice line: its net amount is rounded to the currency's minor units (EN 16931 BT-131)."""

    line_id: str
    charge_type: ChargeType
    description: str
    amount_micros: int
    tax: TaxRate
    tax_category: str         # the plan's name for it (standard, press ...)
    subscriber_id: str = ""
    msisdn: str = ""
    item_id: str = ""         # tariff plan, bundle, charge type or destination group
    service: str = ""
    destination: str = ""
    tariff_plan: str = ""
    period_start: date | None = None
    period_end: date | None = None  # exclusive
    quantity: int = 1         # CDRs for usage lines, days for fees, 1 otherwise
    exact_micros: Fraction | int = 0  # usage: the unrounded sum of the CDR charges
    advance: bool = False     # a fee for the coming cycle, billed in advance
    ref_line_id: str = ""     # credit note: the invoice line it credits


@dataclass(frozen=True)
class Adjustment:
    """A document-level allowance (money off, ``charge=False``) or charge (commitment shortfall)."""

    adjustment_id: str
    charge: bool
    reason: str
    discount_plan: str
    amount_micros: int        # > 0, rounded to minor units
    tax: TaxRate
    tax_category: str
    subscriber_id: str = ""


@dataclass(frozen=True)
class TaxSubtotal:
    tax: TaxRate
    taxable_micros: int
    tax_micros: int


@dataclass(frozen=True)
class Totals:
    line_extension: int
    allowances: int
    charges: int
    tax_exclusive: int
    tax: int
    tax_inclusive: int
    prepaid: int
    payable: int


@dataclass(frozen=True)
class BundleUse:
    subscriber_id: str
    msisdn: str
    bundle_id: str
    name: str
    service: str
    allowance: int
    used: int
    unit: str
    cycle: str = ""           # the bill cycle of rating's counter: the month it started in ("2026-02")


@dataclass(frozen=True)
class UsageDetail:
    """A bill's per-CDR detail when it was computed from a usage block (engine.billing.usage_blocks): its usage.csv
    rows with their line ids, and the CDRs to freeze in the store's own form."""

    rows: str
    cdrs: int                # how many CDRs
    frozen: tuple[object, ...]   # UsageBlock.frozen of each block (one per number)


@dataclass(frozen=True)
class Bill:
    """A computed bill: what an invoice says, before it has a number."""

    tenant_id: str
    account: Account
    period: BillPeriod
    currency: str
    issue_date: date
    due_date: date
    lines: tuple[BillLine, ...]
    adjustments: tuple[Adjustment, ...]
    taxes: tuple[TaxSubtotal, ...]
    totals: Totals
    usage: tuple[RatedUsage, ...]          # the frozen CDRs, in start time order
    one_off_ids: tuple[str, ...]
    payments: tuple[tuple[str, int], ...]  # (source, micros) applied as prepaid
    bundles: tuple[BundleUse, ...] = ()
    plan_set_version: int = 0
    notes: tuple[str, ...] = ()
    usage_line_ids: tuple[str, ...] = ()   # the invoice line each frozen CDR adds up into (same order as usage)
    usage_detail: UsageDetail | None = None   # instead of usage: the CDRs as summed by the store (a bill run's fast path)

    @property
    def empty(self) -> bool:
        return not self.lines


class InvoiceState(str, Enum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERDUE = "overdue"
    WRITTEN_OFF = "written_off"
    CREDITED = "credited"      # fully reversed by credit notes


class DocumentKind(str, Enum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True)
class Invoice:
    """A stored invoice or credit note (the document is kept beside it)."""

    invoice_id: str
    tenant_id: str
    account_id: str
    kind: DocumentKind
    state: InvoiceState
    number: str                  # "" while draft
    series: str
    period_start: date
    period_end: date
    currency: str
    issue_date: date | None
    due_date: date | None
    totals: Totals
    paid_micros: int = 0
    credited_micros: int = 0
    run_id: str = ""
    reference_id: str = ""       # credit note: the invoice it credits; re-bill: the invoice it replaces
    reason: str = ""
    create_time: datetime | None = None
    issue_time: datetime | None = None
    lines: tuple[BillLine, ...] = field(default=(), compare=False)

    @property
    def open_micros(self) -> int:
        """What the customer still owes on it."""
        return self.totals.payable - self.paid_micros - self.credited_micros
