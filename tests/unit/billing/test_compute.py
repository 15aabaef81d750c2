"""The bill as a pure function: fees, discounts as declared, VAT per category, payments on account, bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.compute import BillInputError, BillInputs, compute_bill
from engine.billing.cycles import period_closing_on
from engine.billing.discounts import split_exactly
from engine.billing.model import Address, BillLine, ChargeType, OneOffCharge, TaxRate
from engine.billing.taxes import tax_breakdown
from tests.unit.billing.factories import account, catalogue, profile, service, usage

MARCH = period_closing_on(1, date(2026, 4, 1))
DP_NET = """kind: discount_plan
id: DP_FIVE_NET
name: 5 off after the others
type: fixed
amount: "5.00"
compounding: net
currency: EUR
"""
DP_20_NET = """kind: discount_plan
id: DP_TWENTY_NET
name: 20 % of what is left
type: percentage
percent: "20"
compounding: net
currency: EUR
"""
DP_20_GROSS = DP_20_NET.replace("DP_TWENTY_NET", "DP_TWENTY_GROSS").replace("compounding: net\n", "")
TP_STACK = """kind: tariff_plan
id: TP_STACK
tenant: mno
segment: retail_postpaid
currency: EUR
versions:
  - version: 1
    effective_from: 2026-01-01
    time_bands: TB_ANY
    monthly_fee: "0"
    discounts: [{first}, {second}]
    rates:
      - {{service: voice, destination: DST_INTL, rate: RT_INTL}}
"""


def bill(tmp: Path, **kw: object):  # type: ignore[no-untyped-def]
    cat = kw.pop("cat", None) or catalogue(tmp)
    inputs = BillInputs(kw.pop("account", account()), kw.pop("period", MARCH), kw.pop("services", (service(),)),  # type: ignore[arg-type]
                        kw.pop("usage", ()), **kw)  # type: ignore[arg-type]
    return compute_bill(inputs, cat, profile(), date(2026, 4, 1))


@pytest.mark.parametrize("first,second,expected", [
    ("DP_TWENTY_GROSS", "DP_TWENTY_NET", 3_600_000),    # 20 % of 10 = 2, then 20 % of the 8 left = 1.60
    ("DP_TWENTY_GROSS", "DP_TWENTY_GROSS", 4_000_000),  # both on gross: 2 + 2
    ("DP_TWENTY_NET", "DP_FIVE_NET", 7_000_000),       # 2, then 5 fixed
])
def test_compounding_is_declared_per_discount_plan(tmp_path: Path, first: str, second: str, expected: int) -> None:
    cat = catalogue(tmp_path, {"dp_net.yaml": DP_NET, "dp_20n.yaml": DP_20_NET, "dp_20g.yaml": DP_20_GROSS,
                               "tp_stack.yaml": TP_STACK.format(first=first, second=second)})
    b = bill(tmp_path, cat=cat, services=(service(plan="TP_STACK"),), usage=usage(10, plan="TP_STACK"))
    assert b.totals.line_extension == 10_000_000
    assert b.totals.allowances == expected
    assert [a.discount_plan for a in b.adjustments] == [first, second]


def test_money_off_never_exceeds_what_is_left(tmp_path: Path) -> None:
    cat = catalogue(tmp_path, {"dp_net.yaml": DP_NET, "dp_20n.yaml": DP_20_NET,
                               "tp_stack.yaml": TP_STACK.format(first="DP_FIVE_NET", second="DP_TWENTY_NET")})
    b = bill(tmp_path, cat=cat, services=(service(plan="TP_STACK"),), usage=usage(3, plan="TP_STACK"))   # 3.00 of usage
    assert b.totals.allowances == 3_000_000 and b.totals.tax_exclusive == 0 and b.totals.tax == 0


def test_commitment_measured_before_or_after_discounts(tmp_path: Path) -> None:
    after = bill(tmp_path, usage=usage(15))   # golden plan: 10 % off usage, minimum 20 after discounts
    shortfall = [a for a in after.adjustments if a.charge][0]
    assert shortfall.amount_micros == 6_500_000
    before_text = (tmp_path / "plans" / "dp_commit.yaml").read_text().replace("commitment_basis: after_discounts", "commitment_basis: before_discounts")
    cat = catalogue(tmp_path / "b", {"dp_commit.yaml": before_text})
    before = bill(tmp_path, cat=cat, usage=usage(15))
    assert [a.amount_micros for a in before.adjustments if a.charge] == [5_000_000]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5_000_000, 50_000_000), st.sampled_from(["20", "5.5", "2.1"])), min_size=1, max_size=25))
def test_vat_is_computed_per_category_on_its_total(lines: list[tuple[int, str]]) -> None:
    rates = {"20": TaxRate("S", Fraction(1, 5)), "5.5": TaxRate("S", Fraction(55, 1000)), "2.1": TaxRate("S", Fraction(21, 1000))}
    bill_lines = [BillLine(str(i), ChargeType.USAGE, "x", (m // 10_000) * 10_000, rates[r], r) for i, (m, r) in enumerate(lines)]
    subtotals = tax_breakdown(bill_lines, (), 2)
    for sub in subtotals:
        base = sum(ln.amount_micros for ln in bill_lines if ln.tax == sub.tax)
        assert sub.taxable_micros == base
        exact = Fraction(base) * sub.tax.percent
        assert abs(Fraction(sub.tax_micros) - exact) <= 5_000   # half a cent at most: rounded once, per category
        assert sub.tax_micros % 10_000 == 0
    assert len(subtotals) == len({r for _, r in lines})


def test_equal_rates_made_apart_are_one_vat_category() -> None:
    """Rates are grouped by value (TaxRate hashes its fields, the percent by its integers), not by object."""
    lines = [BillLine("1", ChargeType.USAGE, "x", 1_000_000, TaxRate("S", Fraction(1, 5)), "standard"),
             BillLine("2", ChargeType.FEE, "y", 2_000_000, TaxRate("S", Fraction(20, 100)), "standard"),
             BillLine("3", ChargeType.FEE, "z", 4_000_000, TaxRate("E", Fraction(0), "VATEX-EU-132", "exempt"), "exempt"),
             BillLine("4", ChargeType.FEE, "w", 8_000_000, TaxRate("E", Fraction(0), "VATEX-EU-143", "exempt"), "exempt")]
    assert hash(lines[0].tax) == hash(lines[1].tax) and lines[0].tax == lines[1].tax
    subtotals = tax_breakdown(lines, (), 2)
    assert [(s.tax.code, s.tax.exemption_code, s.taxable_micros, s.tax_micros) for s in subtotals] == [
        ("S", "", 3_000_000, 600_000), ("E", "VATEX-EU-132", 4_000_000, 0), ("E", "VATEX-EU-143", 8_000_000, 0)]


def test_three_lines_rounded_per_category_not_per_line(tmp_path: Path) -> None:
    b = bill(tmp_path, services=(service(plan="TP_COMMIT"),), usage=usage(3, charge=130_000, destination="DST_NATIONAL")
             + usage(1, charge=130_000, destination="DST_INTL", msisdn="33612000001", day=6) + usage(1, charge=130_000, destination="", day=7))
    usage_lines = [ln for ln in b.lines if ln.charge_type is ChargeType.USAGE]
    assert [ln.amount_micros for ln in usage_lines] == [130_000, 130_000, 390_000]
    # per line: 0.026 + 0.078 + 0.026 -> 0.03 + 0.08 + 0.03 = 0.14; per category on the total (fees included) it is exact
    s = b.taxes[0]
    assert s.tax_micros == (s.taxable_micros * 2 // 10 + 5_000) // 10_000 * 10_000


def test_payments_on_account_are_prepaid_and_never_more_than_the_bill(tmp_path: Path) -> None:
    b = bill(tmp_path, usage=usage(5), credits=(("balance", 3_000_000), ("voucher:r1", 500_000_000)))
    t = b.totals
    assert t.prepaid == t.tax_inclusive and t.payable == 0
    assert b.payments == (("balance", 3_000_000), ("voucher:r1", t.tax_inclusive - 3_000_000))


def test_reverse_charge_moves_every_line_to_AE_and_needs_the_buyer_vat_id(tmp_path: Path) -> None:
    acc = account(tax_exemption="reverse_charge", vat_id="DE123456789")
    b = bill(tmp_path, account=acc, usage=usage(2))
    assert {ln.tax.code for ln in b.lines} == {"AE"} and b.totals.tax == 0
    assert b.taxes[0].tax.exemption_code == "VATEX-EU-AE"
    with pytest.raises(BillInputError) as err:
        bill(tmp_path, account=replace(acc, vat_id=""), usage=usage(2))
    assert [p.field for p in err.value.problems] == ["vat_id"] and "ACC-1" in err.value.message


@pytest.mark.parametrize("change,field", [
    ({"address": None}, "address"),
    ({"address": Address(("1 Main St",), "Springfield", "12345", "US")}, "address.country"),
    ({"currency": "USD"}, "currency"),
    ({"tax_exemption": "diplomatic"}, "tax_exemption"),
    ({"discount_plans": ("DP_GHOST",)}, "discount_plans"),
])
def test_bad_accounts_are_refused_naming_the_field(tmp_path: Path, change: dict, field: str) -> None:
    with pytest.raises(BillInputError) as err:
        bill(tmp_path, account=account(**change), usage=usage(1))
    assert field in [p.field for p in err.value.problems]
    assert err.value.reason == "BILL_INPUT" and err.value.subject == "ACC-1"


def test_a_tax_category_missing_from_the_country_table_is_named(tmp_path: Path) -> None:
    charge = OneOffCharge("oc1", "mno", "ACC-1", "OC_X", "Thing", 1_000_000, "EUR", "luxury", date(2026, 3, 3))
    with pytest.raises(BillInputError) as err:
        bill(tmp_path, one_offs=(charge,))
    assert ("tax_category", "TAX_FR (FR) has no tax category 'luxury'") in [(p.field, p.description) for p in err.value.problems]


def test_usage_in_another_currency_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BillInputError) as err:
        bill(tmp_path, usage=usage(1, currency="USD"))
    assert "USD" in err.value.message


def test_late_and_foreign_cdrs(tmp_path: Path) -> None:
    early = usage(1, day=5)
    from datetime import datetime, timezone

    after_period = usage(1)[0]._replace(cdr_id="next", start_time=datetime(2026, 3, 31, 22, 30, tzinfo=timezone.utc))  # 1 April in Paris
    stranger = usage(1)[0]._replace(cdr_id="other", msisdn="33699999999")
    b = bill(tmp_path, usage=early + [after_period, stranger])
    assert [u.cdr_id for u in b.usage] == [early[0].cdr_id]


def test_split_exactly_adds_up() -> None:
    assert split_exactly(1_000_000, [Fraction(1), Fraction(1), Fraction(1)], 2) == [340_000, 330_000, 330_000]
    assert sum(split_exactly(70_000, [Fraction(3), Fraction(7), Fraction(11)], 2)) == 70_000


def test_an_empty_period_makes_no_bill(tmp_path: Path) -> None:
    b = bill(tmp_path, services=(service(activated=date(2026, 6, 1)),))
    assert b.empty and b.totals.payable == 0
