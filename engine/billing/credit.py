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
from engine.money import format_amount


@dataclass(frozen=True)
class CreditParts:
    lines: tuple[BillLine, ...]
    adjustments: tuple[Adjustment, ...]
    taxes: tuple[TaxSubtotal, ...]
    totals: Totals


def credit_parts(invoice: Bill, invoice_number: str, credited_total: int, credited_lines: Mapping[str, int],
                 request: Sequence[tuple[str, int]] | None) -> CreditParts:
    """What a credit note of ``invoice`` carries: everything (``request`` None) or ``(line_id, amount_micros)`` pairs."""
    t = invoice.totals
    if request is None:
        if credited_total:
            raise FailedPrecondition("ALREADY_CREDITED", f"invoice {invoice_number} is already partly credited: credit the remaining lines "
                                                         "one by one", invoice_number)
        lines = tuple(replace(ln, line_id=str(i + 1), ref_line_id=ln.line_id) for i, ln in enumerate(invoice.lines))
        totals = replace(t, prepaid=0, payable=t.tax_inclusive)
        return CreditParts(lines, invoice.adjustments, invoice.taxes, totals)
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
        quantum = 10 ** (6 - minor_units(invoice.currency))
        if amount <= 0 or amount % quantum:
            errors.add(f"{field}.amount", f"must be a positive amount in {invoice.currency}'s minor units")
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
