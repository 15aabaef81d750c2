"""VAT as data: the tax tables of ``plans/taxes/`` applied to a bill (EN 16931 rounding).

Tax is computed once per VAT category on the category's taxable total
(line amounts minus allowances plus charges of that category), rounded
half-up to the currency's minor units, and the categories are then summed
(EN 16931 BR-CO-14, BR-S-09 ...): rounding per line would leave totals a cent
off.  The place of supply of telecom services to a consumer is the buyer's
country, so the table is picked by the account's country; a named account
exemption (reverse charge, export ...) moves every line to its category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Mapping

from engine.billing.model import Adjustment, BillLine, TaxRate, TaxSubtotal
from engine.money import RoundingMode, round_fraction
from engine.plans.model import TaxExemption, TaxTable


@dataclass(frozen=True)
class TaxProblem:
    field: str
    description: str


class TaxBook:
    """The tax tables of one plan set, by country."""

    def __init__(self, tables: Mapping[str, TaxTable]) -> None:
        self.by_country = {t.country: t for t in tables.values()}

    def exemption(self, country: str, name: str) -> TaxExemption | TaxProblem:
        table = self.by_country.get(country)
        if table is None:
            return TaxProblem("address.country", f"no tax table for country {country or '(none)'} in the plan set (plans/taxes/)")
        found = table.exemptions.get(name)
        if found is None:
            known = ", ".join(sorted(table.exemptions)) or "none"
            return TaxProblem("tax_exemption", f"{table.id} has no exemption {name!r} (it has: {known})")
        return found

    def rate(self, country: str, category: str, exemption: TaxExemption | None = None) -> TaxRate | TaxProblem:
        table = self.by_country.get(country)
        if table is None:
            return TaxProblem("address.country", f"no tax table for country {country or '(none)'} in the plan set (plans/taxes/)")
        found = table.categories.get(category)
        if found is None:
            return TaxProblem("tax_category", f"{table.id} ({country}) has no tax category {category!r}")
        if exemption is not None:
            return TaxRate(exemption.code, Fraction(0), exemption.exemption_code, exemption.exemption_reason)
        return TaxRate(found.code, found.percent, found.exemption_code, found.exemption_reason)


def tax_amount(taxable_micros: int, percent: Fraction, minor_units: int) -> int:
    return round_fraction(Fraction(taxable_micros) * percent, RoundingMode.HALF_UP, minor_units)


def tax_breakdown(lines: Iterable[BillLine], adjustments: Iterable[Adjustment], minor_units: int) -> tuple[TaxSubtotal, ...]:
    """One subtotal per VAT category and rate: taxable total, then its tax, rounded once."""
    taxable: dict[TaxRate, int] = defaultdict(int)   # equal rates are one category (TaxRate hashes its fields)
    for line in lines:
        taxable[line.tax] += line.amount_micros
    for adj in adjustments:
        taxable[adj.tax] += adj.amount_micros if adj.charge else -adj.amount_micros
    order = sorted(taxable, key=lambda r: (-r.percent, r.code, r.exemption_code))
    return tuple(TaxSubtotal(r, taxable[r], tax_amount(taxable[r], r.percent, minor_units)) for r in order)
