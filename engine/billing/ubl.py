"""UBL 2.1 ``Invoice`` and ``CreditNote`` documents that meet EN 16931.

Written as text in the XSD's element order (faster than building a tree, and
byte-for-byte stable, so a re-rendered document is identical).  What the
document carries:

- the seller (billing profile) and buyer (account) with addresses and VAT ids;
- one ``InvoiceLine`` per bill line (fees, usage per service and destination
  group, one-off charges).  A negative line (a fee refunded after a plan
  change) has a negative quantity and a positive price (BR-27);
- period discounts as document-level allowances, commitment shortfalls as
  document-level charges, each with its VAT category (BR-32, BR-37);
- the VAT breakdown per category (tax on the category's total, BR-CO-17) and
  the totals (BR-CO-10 .. BR-CO-16), payments on account as ``PrepaidAmount``;
- the rated CDRs as an embedded ``text/csv`` attachment ("usage.csv"): one row
  per CDR with its exact charge and the invoice line it adds up into, so a
  reader sums a line's CDRs, rounds half-up to the currency's minor units and
  finds the line's amount.

Currencies with three minor digits (KWD, BHD, OMR, JOD, TND, IQD, LYD): EN 16931
allows at most two decimals on amounts (BR-DEC-*).  Rulebill keeps and bills
the exact amounts in the currency's minor units, so such a document carries
three decimals and declares the UBL 2.1 customization
:data:`CUSTOMIZATION_3_DECIMALS` instead of claiming EN 16931: it is valid
UBL 2.1, not an EN 16931 e-invoice.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Sequence
from xml.sax.saxutils import escape

from engine.billing.model import Account, Adjustment, BillLine, DocumentKind, RatedUsage, TaxRate, TaxSubtotal, Totals
from engine.billing.profile import BillingProfile
from engine.billing.taxes import RateMemo
from engine.billing.usage_blocks import csv_row
from engine.currencies import minor_units
from engine.money import MAX_DECIMALS, MICROS, RoundingMode, format_amount, format_micros, parse_amount, round_fraction

CUSTOMIZATION_EN16931 = "urn:cen.eu:en16931:2017"
CUSTOMIZATION_3_DECIMALS = "urn:rulebill:ubl21:exact-minor-units:1.0"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
ROOTS = {
    DocumentKind.INVOICE: ("Invoice", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "380", "InvoiceLine", "InvoicedQuantity"),
    DocumentKind.CREDIT_NOTE: ("CreditNote", "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2", "381", "CreditNoteLine",
                               "CreditedQuantity"),
}
USAGE_CSV_HEADER = "line_id,cdr_id,msisdn,start_time,service,destination,tariff_plan,units,charge,currency\n"


@dataclass(frozen=True)
class Document:
    """What one UBL document says (an invoice, or a credit note reversing all or part of one)."""

    kind: DocumentKind
    number: str
    issue_date: date
    due_date: date | None
    currency: str
    period_start: date
    period_end: date                  # exclusive
    account: Account
    seller: BillingProfile
    lines: Sequence[BillLine]
    adjustments: Sequence[Adjustment]
    taxes: Sequence[TaxSubtotal]
    totals: Totals
    usage: Sequence[RatedUsage] = ()
    usage_line_ids: Sequence[str] = ()
    references: Sequence[tuple[str, date]] = ()   # credit note: (invoice number, issue date)
    note: str = ""
    usage_rows: str = ""      # instead of usage: its usage.csv rows already written (engine.billing.usage_blocks)


def e(text: object) -> str:
    s = str(text)
    # most values (ids, codes, names) have nothing to escape: three scans are cheaper than three replaces
    return escape(s) if "&" in s or "<" in s or ">" in s else s


def usage_csv(usage: Sequence[RatedUsage], line_ids: Sequence[str]) -> bytes:
    """One row per rated CDR; ``charge`` is the exact rated amount with six decimals (micro-units)."""
    return "".join([USAGE_CSV_HEADER, *map(csv_row, usage, line_ids)]).encode("utf-8")


def usage_from_document(xml: bytes) -> tuple[tuple[RatedUsage, ...], tuple[str, ...]]:
    """The rated CDRs an issued document carries (its usage.csv attachment), with their invoice lines."""
    start = xml.find(b'filename="usage.csv">')
    if start < 0:
        return (), ()
    start += len(b'filename="usage.csv">')
    end = xml.index(b"</cbc:EmbeddedDocumentBinaryObject>", start)
    rows = base64.b64decode(xml[start:end]).decode("utf-8").splitlines()[1:]
    usage, line_ids = [], []
    for row in rows:
        line_id, cdr_id, msisdn, when, service, destination, plan, units, charge, currency = row.split(",")
        usage.append(RatedUsage(cdr_id, msisdn, datetime.fromisoformat(when.replace("Z", "+00:00")), service, destination,
                                parse_amount(charge), currency, plan, 0, int(units)))
        line_ids.append(line_id)
    return tuple(usage), tuple(line_ids)


class _Amounts:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.decimals = minor_units(currency)
        self.attr = f' currencyID="{currency}"'

    def __call__(self, micros: int) -> str:
        if self.decimals == 2 and micros >= 0 and micros % 10_000 == 0:
            # an amount rounded to cents (every amount a bill shows): format_micros's text without its general steps
            cents = micros // 10_000
            return f"{cents // 100}.{cents % 100:02d}"
        return format_micros(micros, self.decimals)


@lru_cache(maxsize=256)
def percent_text(percent: Fraction) -> str:
    """A VAT rate as EN 16931 writes it (20 % -> "20.00"); rates are exact to the micro-percent (parse_percent)."""
    return format_amount(round_fraction(percent * 100 * MICROS, RoundingMode.HALF_EVEN, MAX_DECIMALS))


@lru_cache(maxsize=512)
def _tax_category(tag: str, tax: TaxRate, reasons: bool = False) -> str:
    """``reasons``: the exemption reason goes only into the VAT breakdown (EN 16931 BR-E-10; UBL-CR-480/481 refuse it elsewhere)."""
    out = [f"<cac:{tag}><cbc:ID>{tax.code}</cbc:ID>"]
    if tax.code != "O":  # "not subject to VAT" carries no rate (BR-O-05, BR-O-12)
        out.append(f"<cbc:Percent>{percent_text(tax.percent)}</cbc:Percent>")
    if reasons and (tax.exemption_code or tax.exemption_reason):
        if tax.exemption_code:
            out.append(f"<cbc:TaxExemptionReasonCode>{e(tax.exemption_code)}</cbc:TaxExemptionReasonCode>")
        if tax.exemption_reason:
            out.append(f"<cbc:TaxExemptionReason>{e(tax.exemption_reason)}</cbc:TaxExemptionReason>")
    out.append(f"<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:{tag}>")
    return "".join(out)


def _address(lines: Sequence[str], city: str, postal: str, region: str, country: str) -> str:
    out = ["<cac:PostalAddress>"]
    if lines:
        out.append(f"<cbc:StreetName>{e(lines[0])}</cbc:StreetName>")
    if len(lines) > 1:
        out.append(f"<cbc:AdditionalStreetName>{e(lines[1])}</cbc:AdditionalStreetName>")
    out.append(f"<cbc:CityName>{e(city)}</cbc:CityName>")
    if postal:
        out.append(f"<cbc:PostalZone>{e(postal)}</cbc:PostalZone>")
    if region:
        out.append(f"<cbc:CountrySubentity>{e(region)}</cbc:CountrySubentity>")
    if len(lines) > 2:
        out.append(f"<cac:AddressLine><cbc:Line>{e(lines[2])}</cbc:Line></cac:AddressLine>")
    out.append(f"<cac:Country><cbc:IdentificationCode>{e(country)}</cbc:IdentificationCode></cac:Country></cac:PostalAddress>")
    return "".join(out)


def _party(name: str, address: str, vat_id: str, company_id: str, email: str, party_id: str = "") -> str:
    out = ["<cac:Party>"]
    if email:
        out.append(f'<cbc:EndpointID schemeID="EM">{e(email)}</cbc:EndpointID>')
    if party_id:
        out.append(f"<cac:PartyIdentification><cbc:ID>{e(party_id)}</cbc:ID></cac:PartyIdentification>")
    out.append(f"<cac:PartyName><cbc:Name>{e(name)}</cbc:Name></cac:PartyName>")
    out.append(address)
    if vat_id:
        out.append(f"<cac:PartyTaxScheme><cbc:CompanyID>{e(vat_id)}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>"
                   "</cac:PartyTaxScheme>")
    out.append(f"<cac:PartyLegalEntity><cbc:RegistrationName>{e(name)}</cbc:RegistrationName>")
    if company_id:
        out.append(f"<cbc:CompanyID>{e(company_id)}</cbc:CompanyID>")
    out.append("</cac:PartyLegalEntity>")
    if email:
        out.append(f"<cac:Contact><cbc:ElectronicMail>{e(email)}</cbc:ElectronicMail></cac:Contact>")
    out.append("</cac:Party>")
    return "".join(out)


_SELLERS: dict[int, tuple[BillingProfile, str]] = {}


def _seller_party(profile: BillingProfile) -> str:
    """The seller's party, the same on every document of a billing profile (kept by the profile's identity)."""
    hit = _SELLERS.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    seller = profile.seller
    sa = seller.address
    text = (f"<cac:AccountingSupplierParty>{_party(seller.name, _address(sa.lines, sa.city, sa.postal_code, sa.region, sa.country), seller.vat_id, seller.company_id, seller.email)}"
            "</cac:AccountingSupplierParty>")
    if len(_SELLERS) >= 64:
        _SELLERS.clear()
    _SELLERS[id(profile)] = (profile, text)
    return text


def render_ubl(doc: Document) -> bytes:
    """The UBL 2.1 XML of ``doc`` (UTF-8)."""
    head, attachment, tail = render_ubl_parts(doc)
    return b"".join((head.encode("utf-8"), attachment, tail.encode("utf-8")))


def render_ubl_parts(doc: Document) -> tuple[str, bytes, str]:
    """The UBL 2.1 XML of ``doc`` as the text before its usage attachment, the attachment's base64, and the text after
    (the attachment, most of a document's bytes, is never decoded to text nor searched: a bill run puts each invoice's
    number into the text around it)."""
    root, ns, type_code, line_tag, qty_tag = ROOTS[doc.kind]
    amt = _Amounts(doc.currency)
    cur = amt.attr
    customization = CUSTOMIZATION_3_DECIMALS if amt.decimals > 2 else CUSTOMIZATION_EN16931
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<{root} xmlns="{ns}" xmlns:cac="{NS_CAC}" xmlns:cbc="{NS_CBC}">',
        f"<cbc:UBLVersionID>2.1</cbc:UBLVersionID><cbc:CustomizationID>{customization}</cbc:CustomizationID>",
        f"<cbc:ID>{e(doc.number)}</cbc:ID><cbc:IssueDate>{doc.issue_date.isoformat()}</cbc:IssueDate>",
    ]
    if doc.kind is DocumentKind.INVOICE and doc.due_date is not None:
        out.append(f"<cbc:DueDate>{doc.due_date.isoformat()}</cbc:DueDate>")
    out.append(f"<cbc:{root}TypeCode>{type_code}</cbc:{root}TypeCode>")
    if doc.note:
        out.append(f"<cbc:Note>{e(doc.note)}</cbc:Note>")
    out.append(f"<cbc:DocumentCurrencyCode>{doc.currency}</cbc:DocumentCurrencyCode>")
    account = doc.account
    out.append(f"<cbc:BuyerReference>{e(account.buyer_reference or account.account_id)}</cbc:BuyerReference>")
    out.append(f"<cac:InvoicePeriod><cbc:StartDate>{doc.period_start.isoformat()}</cbc:StartDate>"
               f"<cbc:EndDate>{(doc.period_end - timedelta(days=1)).isoformat()}</cbc:EndDate></cac:InvoicePeriod>")
    for number, issued in doc.references:
        out.append(f"<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>{e(number)}</cbc:ID>"
                   f"<cbc:IssueDate>{issued.isoformat()}</cbc:IssueDate></cac:InvoiceDocumentReference></cac:BillingReference>")
    # the attachment's base64 (most of the document's bytes) is joined as bytes at the end, never decoded to text and
    # encoded back
    attachment, at = b"", 0
    if doc.usage or doc.usage_rows:
        csv = (USAGE_CSV_HEADER + doc.usage_rows).encode("utf-8") if doc.usage_rows else usage_csv(doc.usage, doc.usage_line_ids)
        attachment = base64.b64encode(csv)
        out.append(f"<cac:AdditionalDocumentReference><cbc:ID>{e(doc.number)}-usage</cbc:ID>"
                   "<cbc:DocumentDescription>Rated usage: one row per CDR with its exact charge and invoice line</cbc:DocumentDescription>"
                   '<cac:Attachment><cbc:EmbeddedDocumentBinaryObject mimeCode="text/csv" filename="usage.csv">')
        at = len(out)
        out.append("</cbc:EmbeddedDocumentBinaryObject></cac:Attachment></cac:AdditionalDocumentReference>")
    out.append(_seller_party(doc.seller))
    out.append("<cac:AccountingCustomerParty>")
    ba = account.address
    assert ba is not None
    out.append(_party(account.name, _address(ba.lines, ba.city, ba.postal_code, ba.region, ba.country), account.vat_id,
                      account.company_id, account.email, account.account_id))
    out.append("</cac:AccountingCustomerParty>")
    profile = doc.seller
    if doc.kind is DocumentKind.INVOICE or profile.iban:
        out.append(f"<cac:PaymentMeans><cbc:PaymentMeansCode>{profile.payment_means_code}</cbc:PaymentMeansCode>")
        out.append(f"<cbc:PaymentID>{e(doc.number)}</cbc:PaymentID>")
        if profile.iban:
            out.append(f"<cac:PayeeFinancialAccount><cbc:ID>{e(profile.iban)}</cbc:ID>")
            if profile.bic:
                out.append(f"<cac:FinancialInstitutionBranch><cbc:ID>{e(profile.bic)}</cbc:ID></cac:FinancialInstitutionBranch>")
            out.append("</cac:PayeeFinancialAccount>")
        out.append("</cac:PaymentMeans>")
    if doc.kind is DocumentKind.INVOICE:
        out.append(f"<cac:PaymentTerms><cbc:Note>{e(f'{account.payment_terms_days} days net')}</cbc:Note></cac:PaymentTerms>")
    for adj in doc.adjustments:
        reason = f"{adj.reason} ({adj.discount_plan})" if adj.discount_plan else adj.reason
        out.append(f"<cac:AllowanceCharge><cbc:ChargeIndicator>{'true' if adj.charge else 'false'}</cbc:ChargeIndicator>"
                   f"<cbc:AllowanceChargeReason>{e(reason)}</cbc:AllowanceChargeReason>"
                   f"<cbc:Amount{cur}>{amt(adj.amount_micros)}</cbc:Amount>{_tax_category('TaxCategory', adj.tax)}</cac:AllowanceCharge>")
    t = doc.totals
    out.append(f"<cac:TaxTotal><cbc:TaxAmount{cur}>{amt(t.tax)}</cbc:TaxAmount>")
    for sub in doc.taxes:
        out.append(f"<cac:TaxSubtotal><cbc:TaxableAmount{cur}>{amt(sub.taxable_micros)}</cbc:TaxableAmount>"
                   f"<cbc:TaxAmount{cur}>{amt(sub.tax_micros)}</cbc:TaxAmount>{_tax_category('TaxCategory', sub.tax, reasons=True)}</cac:TaxSubtotal>")
    out.append("</cac:TaxTotal>")
    out.append(f"<cac:LegalMonetaryTotal><cbc:LineExtensionAmount{cur}>{amt(t.line_extension)}</cbc:LineExtensionAmount>"
               f"<cbc:TaxExclusiveAmount{cur}>{amt(t.tax_exclusive)}</cbc:TaxExclusiveAmount>"
               f"<cbc:TaxInclusiveAmount{cur}>{amt(t.tax_inclusive)}</cbc:TaxInclusiveAmount>")
    if t.allowances:
        out.append(f"<cbc:AllowanceTotalAmount{cur}>{amt(t.allowances)}</cbc:AllowanceTotalAmount>")
    if t.charges:
        out.append(f"<cbc:ChargeTotalAmount{cur}>{amt(t.charges)}</cbc:ChargeTotalAmount>")
    if t.prepaid:
        out.append(f"<cbc:PrepaidAmount{cur}>{amt(t.prepaid)}</cbc:PrepaidAmount>")
    out.append(f"<cbc:PayableAmount{cur}>{amt(t.payable)}</cbc:PayableAmount></cac:LegalMonetaryTotal>")
    for line in doc.lines:
        out.append(_line(line, line_tag, qty_tag, amt))
    out.append(f"</{root}>")
    if not at:
        return "".join(out), b"", ""
    return "".join(out[:at]), attachment, "".join(out[at:])


def _line(line: BillLine, tag: str, qty_tag: str, amt: _Amounts) -> str:
    cur = amt.attr
    # the quantity is 1 (or -1 for a negative line): the CDR count or days are in the description,
    # so quantity x price = line amount holds exactly and the price is never negative (BR-27)
    micros = line.amount_micros
    kind = line.charge_type._value_   # the member's value as stored (Enum.value is a Python-level descriptor, read per line)
    detail = f"+{line.msisdn}" if line.msisdn else ""
    count = (f"{line.quantity} CDRs" if kind == "usage" else f"{line.quantity} days" if kind in ("fee", "bundle_fee") else "")
    if count:
        detail = f"{detail}, {count}" if detail else count
    return (f'<cac:{tag}><cbc:ID>{e(line.line_id)}</cbc:ID><cbc:{qty_tag} unitCode="C62">{"-1" if micros < 0 else "1"}</cbc:{qty_tag}>'
            f"<cbc:LineExtensionAmount{cur}>{amt(micros)}</cbc:LineExtensionAmount>{_line_period(line.period_start, line.period_end)}"
            f"<cac:Item>{f'<cbc:Description>{e(detail)}</cbc:Description>' if detail else ''}"
            f"{_line_item(line.tax, (line.description, line.item_id, kind))}"
            f"<cac:Price><cbc:PriceAmount{cur}>{amt(-micros if micros < 0 else micros)}</cbc:PriceAmount></cac:Price></cac:{tag}>")


@lru_cache(maxsize=256)
def _line_period(start: date | None, end: date | None) -> str:
    """A line's period (the same few on every bill of a run)."""
    if start is None or end is None:
        return ""
    return (f"<cac:InvoicePeriod><cbc:StartDate>{start.isoformat()}</cbc:StartDate>"
            f"<cbc:EndDate>{(end - _DAY).isoformat()}</cbc:EndDate></cac:InvoicePeriod>")


def _new_line_item(tax: TaxRate, key: tuple[str, str, str]) -> str:
    """The item of a line from its name on: the same for a plan's fee or a destination's usage on every bill of a run."""
    description, item_id, kind = key
    item = (f"<cac:SellersItemIdentification><cbc:ID>{e(item_id)}</cbc:ID></cac:SellersItemIdentification>" if item_id else "")
    return (f"<cbc:Name>{e(description)}</cbc:Name>{item}{_tax_category('ClassifiedTaxCategory', tax)}"
            f"<cac:AdditionalItemProperty><cbc:Name>charge_type</cbc:Name><cbc:Value>{kind}</cbc:Value></cac:AdditionalItemProperty>"
            "</cac:Item>")


_DAY = timedelta(days=1)
_line_item: RateMemo[tuple[str, str, str], str] = RateMemo(_new_line_item)
