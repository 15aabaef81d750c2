"""Billing profiles (``plans/billing/<tenant>.yaml``): who issues a tenant's invoices and how.

One file per tenant that bills (the MNO, each MVNO billing its own retail
customers)::

    kind: billing_profile
    tenant: mno
    seller:                                   # EN 16931 seller (BG-4)
      name: Rulebill Telecom SA
      address: {lines: ["12 rue des Ondes"], city: Paris, postal_code: "75002", country: FR}
      vat_id: FR40123456789
      company_id: "123 456 789"
      email: billing@rulebill.example
    series: {invoice: "MNO-", credit_note: "MNO-CN-"}   # number prefixes; numbers are gapless per tenant and series
    payment: {terms_days: 14, means: credit_transfer, iban: FR7630006000011234567890189, bic: AGRIFRPP}
    currency: EUR                             # what its invoices are in (default EUR); accounts bill in it
    csr_limit: "50.00"                        # what a CSR may raise, summed per account (charges, add-ons) or invoice (credit notes)
    late_usage_days: 62                       # CDRs of earlier periods rated late still go on the next bill within this many days
    one_off_charges:
      OC_ACTIVATION: {name: Activation fee, amount: "10.00", tax_category: standard}

Problems are reported as ``file:line:col`` like plan files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.billing.countries import is_country
from engine.billing.model import Address
from engine.currencies import is_currency
from engine.money import AmountError, parse_amount
from engine.plans.kinds.common import TAX_CATEGORY
from engine.tenancy import TENANT_ID
from engine.yamlio import Fields, Mark, MarkedList, MarkedMap, Problem, load_file, yaml_files

CHARGE_CODE = re.compile(r"^OC_[A-Z0-9_]{1,60}$")
SERIES = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
VAT_ID = re.compile(r"^[A-Z]{2}[A-Z0-9+*.]{2,13}$")
PAYMENT_MEANS = {"credit_transfer": "58", "direct_debit": "59", "card": "48", "cash": "10"}


@dataclass(frozen=True)
class Seller:
    name: str
    address: Address
    vat_id: str
    company_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class ChargeType:
    code: str
    name: str
    amount_micros: int
    tax_category: str


# the events a charge rule may name (engine.billing.chargerules): what happened -> which charge it raises
CHARGE_EVENTS = {
    "invoice_overdue": "an issued invoice passes its due date unpaid (the scheduler's round): one charge per invoice",
    "subscriber_joined": "a subscriber is billed to an account of the tenant for the first time (not a move between accounts)",
    "bundle_bought": "an add-on bundle is bought for a subscriber (BuyAddOn): one charge per purchase",
    "plan_changed": "a subscriber billed to an account changes tariff plan (ChangeSubscriberPlan): one charge per change",
    "sim_swapped": "a subscriber billed to an account moves to a new SIM card (SwapSubscriberSim): one charge per swap",
    "subscriber_deactivated": "a subscriber billed to an account is deactivated (DeactivateSubscriber)",
}
# the events whose charge is about one subscriber (a rule's ``plans`` condition reads its tariff plan)
SUBSCRIBER_EVENTS = frozenset({"subscriber_joined", "bundle_bought", "plan_changed", "sim_swapped", "subscriber_deactivated"})


@dataclass(frozen=True)
class ChargeRule:
    """``when`` an event happens, raise the one-off charge ``charge`` (a code of the profile's catalogue); declared in
    rules/billing/ (engine.billing.chargerules)."""

    when: str
    charge: str
    rule_id: str = ""
    # conditions (all must hold; empty: any): the subscriber's tariff plan (after a plan change, the new one), the
    # bundle bought (bundle_bought), the least amount left to pay on the invoice (invoice_overdue)
    plans: tuple[str, ...] = ()
    bundles: tuple[str, ...] = ()
    min_due_micros: int = 0

    def holds(self, plan: str = "", bundle: str = "", due_micros: int | None = None) -> bool:
        return ((not self.plans or plan in self.plans) and (not self.bundles or bundle in self.bundles)
                and (due_micros is None or due_micros >= self.min_due_micros))


@dataclass(frozen=True)
class BillingProfile:
    tenant_id: str
    currency: str
    seller: Seller
    invoice_series: str
    credit_note_series: str
    terms_days: int = 14
    payment_means: str = "credit_transfer"
    iban: str = ""
    bic: str = ""
    csr_limit_micros: int = 0
    late_usage_days: int = 62
    charges: dict[str, ChargeType] = field(default_factory=dict)
    mark: Mark = Mark("?", 1, 1)
    charge_rules: tuple[ChargeRule, ...] = ()

    def rules_for(self, event: str, plan: str = "", bundle: str = "", due_micros: int | None = None) -> list[ChargeType]:
        """The charges ``event`` raises, of the rules whose conditions hold for it."""
        return [self.charges[r.charge] for r in self.charge_rules
                if r.when == event and r.charge in self.charges and r.holds(plan, bundle, due_micros)]

    @property
    def payment_means_code(self) -> str:
        """UNCL 4461 code of the payment means."""
        return PAYMENT_MEANS[self.payment_means]


def parse_address(node: object, what: str, problems: list[Problem], fallback: Mark) -> Address | None:
    f = Fields(node, what, problems, fallback=fallback)
    if not f.ok:
        return None
    lines = f.required("lines", list) or []
    city = f.required("city", str) or ""
    postal = f.optional("postal_code", (str, int), default="")
    country = f.required("country", str) or ""
    region = f.optional("region", str, default="")
    f.done()
    if country and not is_country(country):
        problems.append(Problem.at(f.node.mark_of("country"), "value.country", f"{what}.country: {country!r} is not an ISO 3166-1 alpha-2 code"))
    if not all(isinstance(x, str) and x.strip() for x in lines) or not 1 <= len(lines) <= 3:
        problems.append(Problem.at(f.node.mark_of("lines"), "value.address", f"{what}.lines: 1 to 3 lines of text"))
    return Address(tuple(str(x) for x in lines), city, str(postal), country, region)


def _parse(node: MarkedMap, problems: list[Problem]) -> BillingProfile | None:
    f = Fields(node, "billing_profile", problems)
    f.optional("kind", str)
    tenant = f.required("tenant", str) or ""
    if tenant and not TENANT_ID.match(tenant):
        problems.append(Problem.at(node.mark_of("tenant"), "value.tenant", f"billing_profile.tenant: {tenant!r} is not a tenant id"))
    currency = f.optional("currency", str, default="EUR")
    if not is_currency(currency):
        problems.append(Problem.at(node.mark_of("currency"), "value.currency", f"billing_profile.currency: {currency!r} is not ISO 4217"))
    seller_node = f.required("seller", dict)
    series = f.required("series", dict) or MarkedMap()
    payment = f.optional("payment", dict, default=MarkedMap()) or MarkedMap()
    csr_limit = f.optional("csr_limit", (str, int), default="0")
    late = f.optional("late_usage_days", int, default=62)
    charges_node = f.optional("one_off_charges", dict, default=MarkedMap()) or MarkedMap()
    if "charge_rules" in node:
        f.optional("charge_rules", list)
        problems.append(Problem.at(node.mark_of("charge_rules"), "profile.moved", "charge rules are declared in rules/billing/ "
                                                                                  "(kind: charge_rules, engine/billing/chargerules.py)"))
    f.done()
    seller = None
    if seller_node is not None:
        sf = Fields(seller_node, "seller", problems)
        name = sf.required("name", str) or ""
        address = parse_address(sf.required("address", dict), "seller.address", problems, sf.mark)
        vat_id = sf.required("vat_id", str) or ""
        company_id = sf.optional("company_id", (str, int), default="")
        email = sf.optional("email", str, default="")
        sf.done()
        if vat_id and not VAT_ID.match(vat_id):
            problems.append(Problem.at(sf.node.mark_of("vat_id"), "value.vat-id", f"seller.vat_id: {vat_id!r} is not a VAT id with its country prefix (FR40123456789)"))
        if address is not None and name:
            seller = Seller(name, address, vat_id, str(company_id), email)
    sr = Fields(series, "series", problems, fallback=node.mark)
    invoice_series = sr.required("invoice", str) or ""
    credit_series = sr.required("credit_note", str) or ""
    sr.done()
    for key, value in (("invoice", invoice_series), ("credit_note", credit_series)):
        if value and not SERIES.match(value):
            problems.append(Problem.at(series.mark_of(key), "value.series", f"series.{key}: {value!r} must be 1-16 capitals, digits or '-'"))
    if invoice_series and invoice_series == credit_series:
        problems.append(Problem.at(series.mark_of("credit_note"), "value.series", "series: invoices and credit notes need their own series"))
    pf = Fields(payment, "payment", problems, fallback=node.mark)
    terms = pf.optional("terms_days", int, default=14)
    means = pf.optional("means", str, default="credit_transfer")
    iban = pf.optional("iban", str, default="")
    bic = pf.optional("bic", str, default="")
    pf.done()
    if means not in PAYMENT_MEANS:
        problems.append(Problem.at(payment.mark_of("means"), "value.enum", f"payment.means: {means!r} is not one of: {', '.join(PAYMENT_MEANS)}"))
    if means == "credit_transfer" and not iban:
        problems.append(Problem.at(payment.mark if "iban" not in payment else payment.mark_of("iban"), "schema.missing",
                                  "payment.iban: a credit transfer needs the account to pay into (EN 16931 BR-61)"))
    if iban and not IBAN.match(iban):
        problems.append(Problem.at(payment.mark_of("iban"), "value.iban", f"payment.iban: {iban!r} is not an IBAN"))
    if not 0 <= terms <= 365:
        problems.append(Problem.at(payment.mark_of("terms_days"), "value.range", "payment.terms_days: 0..365"))
    if not 0 <= late <= 400:
        problems.append(Problem.at(node.mark_of("late_usage_days"), "value.range", "late_usage_days: 0..400"))
    try:
        limit = parse_amount(csr_limit)
    except AmountError as exc:
        problems.append(Problem.at(node.mark_of("csr_limit"), "value.amount", f"csr_limit: {exc}"))
        limit = 0
    charges: dict[str, ChargeType] = {}
    for code, item in charges_node.items():
        mark = charges_node.mark_of(code)
        cf = Fields(item, f"one_off_charges.{code}", problems, fallback=mark)
        cname = cf.required("name", str) or ""
        raw_amount = cf.required("amount", (str, int))
        category = cf.optional("tax_category", str, default="standard")
        cf.done()
        if not CHARGE_CODE.match(str(code)):
            problems.append(Problem.at(charges_node.key_mark(code), "id.format", f"one-off charge {code!r} must look like OC_NAME"))
            continue
        if not TAX_CATEGORY.match(category):
            problems.append(Problem.at(cf.node.mark_of("tax_category"), "id.format", f"{code}.tax_category: {category!r} is not a category name"))
        try:
            amount = parse_amount(raw_amount) if raw_amount is not None else 0
        except AmountError as exc:
            problems.append(Problem.at(cf.node.mark_of("amount"), "value.amount", f"{code}.amount: {exc}"))
            continue
        charges[str(code)] = ChargeType(str(code), cname, amount, category)
    if seller is None or not invoice_series or not credit_series:
        return None
    return BillingProfile(tenant, currency, seller, invoice_series, credit_series, terms, means, iban, bic, limit, late, charges, node.mark)


def load_profiles(folder: Path | str) -> tuple[dict[str, BillingProfile], list[Problem]]:
    """Every ``*.yaml`` of ``folder`` (README files ignored); one profile per tenant."""
    base = Path(folder)
    if not base.is_dir():
        return {}, []
    return load_profile_files(path for path in yaml_files([base])
                              if not path.name.lower().startswith("readme") and not path.name.startswith("_"))


def load_profile_files(paths: Iterable[Path]) -> tuple[dict[str, BillingProfile], list[Problem]]:
    """The billing profiles of these files (a bill case's one ``profile.yaml``, or a folder's files); one per tenant."""
    problems: list[Problem] = []
    out: dict[str, BillingProfile] = {}
    for path in paths:
        doc = load_file(path, problems, display=str(path))
        if doc is None:
            continue
        if isinstance(doc, MarkedMap) and doc.get("kind") == "billing_samples":
            continue  # the demo accounts `rulebill bootstrap` provisions (servers/billing_samples.py)
        if not isinstance(doc, MarkedMap) or doc.get("kind") != "billing_profile":
            mark = doc.mark if isinstance(doc, (MarkedMap, MarkedList)) else Mark(str(path), 1, 1)
            problems.append(Problem.at(mark, "plan.unknown-kind", "a billing profile file has kind: billing_profile"))
            continue
        profile = _parse(doc, problems)
        if profile is None:
            continue
        if profile.tenant_id in out:
            problems.append(Problem.at(doc.mark_of("tenant"), "id.duplicate", f"tenant {profile.tenant_id} already has a billing profile"))
            continue
        out[profile.tenant_id] = profile
    return out, sorted(problems)
