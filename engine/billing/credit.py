"""Credit notes: reverse all of an issued invoice, or part of some of its lines, with a reason.

A full credit note repeats the invoice's lines, allowances, charges and VAT
breakdown (it is only allowed while nothing of the invoice was credited yet).
A partial one credits amounts of chosen lines; its VAT is computed again per
category on the credited amounts.  Either way the credit (tax included) can
never exceed what is left of the invoice's total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from engine.billing.model import Adjustment, Bill, BillLine, TaxSubtotal, Totals
from engine.billing.taxes import tax_breakdown
from engine.currencies import minor_units
from engine.errors import ErrorList, FailedPrecondition
from engine.money import format_amount, positive_amount_problem


@dataclass(frozen=True)
class CreditParts:
    lines: tuple[BillLine, ...]
    adjustments: tuple[Adjustment, ...]
    taxes: tuple[TaxSubtotal, ...]
    totals: Totals


def credit_parts(invoice: Bill, invoice_number: str, credited_total: int, credited_lines: Mapping[str, int],
                 request: Sequence[tuple[str, int]] | None) -> CreditParts:
    """What a credit note of ``invoice`` carries: everything left (``request`` None) or ``(line_id, amount_micros)`` pairs."""
    t = invoice.totals
    if request is None:
        if not credited_total:
            lines = tuple(replace(ln, line_id=str(i + 1), ref_line_id=ln.line_id) for i, ln in enumerate(invoice.lines))
            return CreditParts(lines, invoice.adjustments, invoice.taxes, replace(t, prepaid=0, payable=t.tax_inclusive))
        return _rest(invoice, invoice_number, credited_total, credited_lines)
    by_id = {ln.line_id: ln for ln in invoice.lines}
    errors = ErrorList()
    out: list[BillLine] = []
    if not request:
        errors.add("lines", "name at least one line to credit, or credit the whole invoice")
    seen: set[str] = set()
    for i, (line_id, amount) in enumerate(request):
        field = f"lines[{i}]"
        line = by_id.get(line_id)
        if line is None:
            errors.add(f"{field}.line_id", f"invoice {invoice_number} has no line {line_id!r}")
            continue
        if line_id in seen:
            errors.add(f"{field}.line_id", f"line {line_id} is named twice")
            continue
        seen.add(line_id)
        left = line.amount_micros - credited_lines.get(line_id, 0)
        if line.amount_micros <= 0:
            errors.add(f"{field}.line_id", f"line {line_id} is not a charge ({format_amount(line.amount_micros)}): nothing to credit")
            continue
        if problem := positive_amount_problem(amount, invoice.currency):
            errors.add(f"{field}.amount", f"must be {problem}" if problem.startswith("a ") else problem)
            continue
        if amount > left:
            errors.add(f"{field}.amount", f"line {line_id} has {format_amount(left)} {invoice.currency} left to credit, not {format_amount(amount)}")
            continue
        out.append(replace(line, line_id=str(len(out) + 1), ref_line_id=line_id, amount_micros=amount, exact_micros=amount))
    errors.raise_if_any(f"cannot credit invoice {invoice_number}")
    taxes = tax_breakdown(out, (), minor_units(invoice.currency))
    net = sum(ln.amount_micros for ln in out)
    tax = sum(s.tax_micros for s in taxes)
    left_total = t.tax_inclusive - credited_total
    if net + tax > left_total:
        raise FailedPrecondition("CREDIT_ABOVE_INVOICE",
                                 f"the credit note ({format_amount(net + tax)} {invoice.currency} with tax) is above what is left of invoice "
                                 f"{invoice_number} ({format_amount(left_total)})", invoice_number)
    return CreditParts(tuple(out), (), taxes, Totals(net, 0, 0, net, tax, net + tax, 0, net + tax))


def _rest(invoice: Bill, invoice_number: str, credited_total: int, credited_lines: Mapping[str, int]) -> CreditParts:
    """Everything not credited yet: what is left of each line, the allowances and charges, VAT per category on that.

    Earlier partial credit notes had their VAT rounded on their own amounts, so the VAT of the rest may differ by a
    minor unit per earlier note from what is left of the invoice's VAT; the difference goes to the largest category,
    so that invoice and credit notes always add up to the invoice's total exactly."""
    lines: list[BillLine] = []
    for ln in invoice.lines:
        left = ln.amount_micros - credited_lines.get(ln.line_id, 0)
        if left:
            lines.append(replace(ln, line_id=str(len(lines) + 1), ref_line_id=ln.line_id, amount_micros=left, exact_micros=left))
    minor = minor_units(invoice.currency)
    taxes = list(tax_breakdown(lines, invoice.adjustments, minor))
    net = sum(ln.amount_micros for ln in lines) - sum(a.amount_micros for a in invoice.adjustments if not a.charge) \
        + sum(a.amount_micros for a in invoice.adjustments if a.charge)
    left_total = invoice.totals.tax_inclusive - credited_total
    if left_total <= 0:
        raise FailedPrecondition("ALREADY_CREDITED", f"invoice {invoice_number} is credited in full already", invoice_number)
    gap = left_total - net - sum(x.tax_micros for x in taxes)
    if gap and taxes:
        if abs(gap) > 10 ** (6 - minor) * max(len(credited_lines), 1):
            raise FailedPrecondition("CREDIT_ABOVE_INVOICE", f"what is left of invoice {invoice_number} does not add up: credit it line "
                                                             "by line", invoice_number)
        k = max(range(len(taxes)), key=lambda i: abs(taxes[i].taxable_micros))
        taxes[k] = replace(taxes[k], tax_micros=taxes[k].tax_micros + gap)
    tax = sum(x.tax_micros for x in taxes)
    allowances = sum(a.amount_micros for a in invoice.adjustments if not a.charge)
    charges = sum(a.amount_micros for a in invoice.adjustments if a.charge)
    line_total = sum(ln.amount_micros for ln in lines)
    return CreditParts(tuple(lines), invoice.adjustments, tuple(taxes),
                       Totals(line_total, allowances, charges, net, tax, net + tax, 0, net + tax))
