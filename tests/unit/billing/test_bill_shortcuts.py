"""The bill run's shortcuts give what the plain computation gives: the VAT breakdown summed by rate object, the tax
of a category as one integer quotient, cent amounts formatted directly, texts kept by a rate's identity, the same
rate object for every bill of a plan set, usage line names kept with the catalogue.  (The documents and bills
themselves are pinned by the golden bill folders and test_ubl.py.)"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.compute import _usage_name, _new_usage_name
from engine.billing.model import Adjustment, BillLine, ChargeType, TaxRate, TaxSubtotal
from engine.billing.taxes import RateMemo, tax_amount, tax_breakdown
from engine.billing.ubl import _Amounts
from engine.money import RoundingMode, format_micros, round_fraction
from tests.unit.billing.factories import catalogue

# equal rates as distinct objects (the breakdown must merge them), and distinct rates
RATES = [TaxRate("S", Fraction(1, 5)), TaxRate("S", Fraction(1, 5)), TaxRate("S", Fraction(1, 10)),
         TaxRate("E", Fraction(0), "VATEX-EU-132", "Exempt"), TaxRate("E", Fraction(0), "VATEX-EU-132", "Exempt"),
         TaxRate("E", Fraction(0), "VATEX-EU-132", "Other reason"), TaxRate("Z", Fraction(0))]


def reference_breakdown(lines: list[BillLine], adjustments: list[Adjustment], minor: int) -> tuple[TaxSubtotal, ...]:
    """The breakdown as it was computed before: a dict keyed by the rate itself, the tax as a Fraction product."""
    taxable: dict[TaxRate, int] = defaultdict(int)
    for line in lines:
        taxable[line.tax] += line.amount_micros
    for adj in adjustments:
        taxable[adj.tax] += adj.amount_micros if adj.charge else -adj.amount_micros
    order = sorted(taxable, key=lambda r: (-r.percent, r.code, r.exemption_code))
    return tuple(TaxSubtotal(r, taxable[r], round_fraction(Fraction(taxable[r]) * r.percent, RoundingMode.HALF_UP, minor))
                 for r in order)


amounts = st.integers(-10**12, 10**12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(RATES) - 1), amounts), max_size=12),
       st.lists(st.tuples(st.integers(0, len(RATES) - 1), st.integers(0, 10**10), st.booleans()), max_size=4),
       st.sampled_from([0, 2, 3]))
def test_the_breakdown_summed_by_rate_object_is_the_breakdown_by_rate(lines: list[tuple[int, int]],
                                                                       adjustments: list[tuple[int, int, bool]], minor: int) -> None:
    bill_lines = [BillLine(str(i + 1), ChargeType.FEE, "x", micros, RATES[r], "standard") for i, (r, micros) in enumerate(lines)]
    adjs = [Adjustment(str(i + 1), charge, "r", "", micros, RATES[r], "standard") for i, (r, micros, charge) in enumerate(adjustments)]
    got = tax_breakdown(bill_lines, adjs, minor)
    assert got == reference_breakdown(bill_lines, adjs, minor)
    # equal rates given as two objects are one category
    assert len({t.tax for t in got}) == len(got)


@settings(max_examples=500, deadline=None)
@given(amounts, st.fractions(min_value=0, max_value=1, max_denominator=10**8), st.sampled_from([0, 2, 3]))
def test_the_tax_as_one_integer_quotient_is_the_fraction_product_rounded(taxable: int, percent: Fraction, minor: int) -> None:
    assert tax_amount(taxable, percent, minor) == round_fraction(Fraction(taxable) * percent, RoundingMode.HALF_UP, minor)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(amounts, amounts.map(lambda m: m - m % 10_000)), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_an_amount_in_cents_is_written_as_format_micros_writes_it(micros: int, currency: str) -> None:
    amt = _Amounts(currency)
    assert amt(micros) == format_micros(micros, amt.decimals)


def test_a_rate_memo_keeps_a_text_by_the_rate_s_identity_and_stays_bounded() -> None:
    made: list[tuple[TaxRate, str]] = []

    def make(tax: TaxRate, key: str) -> str:
        made.append((tax, key))
        return f"{tax.code}{tax.percent}{key}"

    memo: RateMemo[str, str] = RateMemo(make, size=3)
    a, b = RATES[0], RATES[1]     # equal, two objects
    assert memo(a, "k") == memo(a, "k") == "S1/5k"
    assert len(made) == 1
    assert memo(b, "k") == "S1/5k"   # an equal rate: made again (kept by identity), the same text
    assert len(made) == 2
    assert memo(a, "other") == "S1/5other"
    memo(RATES[2], "k")              # the fourth entry: the memo was full, it starts again
    assert memo(a, "k") == "S1/5k" and len(made) == 5


def test_a_plan_set_gives_every_bill_the_same_rate_objects(tmp_path: Path) -> None:
    cat = catalogue(tmp_path)
    country = next(iter(cat.taxes.by_country))
    first = cat.taxes.rate(country, "standard")
    assert isinstance(first, TaxRate)
    assert cat.taxes.rate(country, "standard") is first
    table = cat.taxes.by_country[country]
    for exemption in table.exemptions.values():
        exempt = cat.taxes.rate(country, "standard", exemption)
        assert isinstance(exempt, TaxRate) and exempt.code == exemption.code
        assert cat.taxes.rate(country, "standard", exemption) is exempt
    assert cat.taxes.rate(country, "no-such-category").__class__.__name__ == "TaxProblem"


@pytest.mark.parametrize("service,destination,language", [("voice", "DST_INTL", "fr"), ("sms", "", "en"), ("custom", "DST_INTL", "en")])
def test_a_usage_line_s_name_kept_with_the_catalogue_is_the_name(tmp_path: Path, service: str, destination: str, language: str) -> None:
    cat = catalogue(tmp_path)
    name = _usage_name(cat, service, destination, language)
    assert name == _new_usage_name(cat, service, destination, language)
    assert cat.usage_names[(service, destination, language)] == name
    assert _usage_name(cat, service, destination, language) is name
