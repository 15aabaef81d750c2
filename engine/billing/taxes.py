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
from typing import Callable, Generic, Hashable, Iterable, Mapping, TypeVar

from engine.billing.model import Adjustment, BillLine, TaxRate, TaxSubtotal
from engine.money import RoundingMode, round_micros
from engine.plans.model import TaxExemption, TaxTable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class TaxProblem:
    field: str
    description: str


class RateMemo(Generic[K, V]):
    """Text made from a tax rate and a few strings, kept by the rate's identity (a dict keyed by the rate would call
    TaxRate.__hash__, Python code, once per bill line).  The rate is kept with its entry, so its id is not reused
    while the entry stands; bounded (cleared when full)."""

    def __init__(self, make: Callable[..., V], size: int = 4096) -> None:
        self._make = make
        self._size = size
        self._found: dict[tuple[int, K], tuple[TaxRate, V]] = {}

    def __call__(self, tax: TaxRate, key: K) -> V:
        hit = self._found.get((id(tax), key))
        if hit is not None and hit[0] is tax:
            return hit[1]
        value = self._make(tax, key)
        if len(self._found) >= self._size:
            self._found.clear()
        self._found[(id(tax), key)] = (tax, value)
        return value


class TaxBook:
    """The tax tables of one plan set, by country."""

    def __init__(self, tables: Mapping[str, TaxTable]) -> None:
        self.by_country = {t.country: t for t in tables.values()}
        # the rates asked for, by country, category and exemption (its identity: one of this plan set's): every bill
        # of a run gets the same TaxRate objects, so the texts made from them (RateMemo) are found again
        self._rates: dict[tuple[str, str, int], tuple[TaxExemption | None, TaxRate | TaxProblem]] = {}

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
        key = (country, category, id(exemption))
        hit = self._rates.get(key)
        if hit is not None and hit[0] is exemption:
            return hit[1]
        found = self._rate(country, category, exemption)
        self._rates[key] = (exemption, found)
        return found

    def _rate(self, country: str, category: str, exemption: TaxExemption | None) -> TaxRate | TaxProblem:
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
    # taxable x percent as one exact quotient of integers (a Fraction product normalises by a gcd first: same result)
    return round_micros(taxable_micros * percent.numerator, percent.denominator, RoundingMode.HALF_UP, minor_units)


def tax_breakdown(lines: Iterable[BillLine], adjustments: Iterable[Adjustment], minor_units: int) -> tuple[TaxSubtotal, ...]:
    """One subtotal per VAT category and rate: taxable total, then its tax, rounded once."""
    # a bill's lines share a few rate objects (compute_bill asks once per category): summed by object first (an int
    # key), then equal rates merged (TaxRate hashes its fields in Python: once per line was ~8 % of compute_bill)
    rate_of: dict[int, TaxRate] = {}
    sums: dict[int, int] = {}
    for line in lines:
        t = line.tax
        k = id(t)
        if k in sums:
            sums[k] += line.amount_micros
        else:
            rate_of[k], sums[k] = t, line.amount_micros
    for adj in adjustments:
        t = adj.tax
        k = id(t)
        if k not in sums:
            rate_of[k], sums[k] = t, 0
        sums[k] += adj.amount_micros if adj.charge else -adj.amount_micros
    taxable: dict[TaxRate, int] = defaultdict(int)   # equal rates are one category (TaxRate hashes its fields)
    for k, micros in sums.items():
        taxable[rate_of[k]] += micros
    order = sorted(taxable, key=lambda r: (-r.percent, r.code, r.exemption_code))
    return tuple(TaxSubtotal(r, taxable[r], tax_amount(taxable[r], r.percent, minor_units)) for r in order)
