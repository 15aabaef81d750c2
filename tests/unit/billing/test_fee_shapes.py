"""A bill run's per-run shortcuts give what the plain code gives.

- engine.billing.fees.recurring_fees keeps each subscriber's fees by the shape of its service (days, plans, add-ons,
  the period, what was billed in advance): subscribers of any ids and numbers, sharing shapes or not, in any order and
  asked again, get exactly the charges ``service_fees`` works out for each alone.
- engine.billing.model.direct_init: a value built through it is the dataclass's (defaults, keywords, equality, hash,
  ``replace``, frozen), and a class it cannot build plainly is refused at once.
"""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, dataclass, field, fields, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.catalogue import BillingCatalogue
from engine.billing.cycles import final_period, period_closing_on
from engine.billing.fees import FeeCharge, recurring_fees, service_fees
from engine.billing.model import Bill, BillLine, ChargeType, SubscriberService, TaxRate, Totals, direct_init

from tests.unit.billing.factories import GOLDEN, catalogue

PLANS = ("TP_BUNDLE", "TP_BUNDLE_PLUS", "TP_LITE")
ADD_ONS = ("BN_INTL_60MIN", "BN_NATIONAL_100MIN")
DAY0 = date(2026, 1, 1)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> BillingCatalogue:
    """One plan set for every example: its kept shapes are met again by later examples, as a run's later bills meet them."""
    return catalogue(tmp_path_factory.mktemp("fee-shapes"), base=GOLDEN / "monthly-add-on-plan-change")


def _day(n: int) -> date:
    return DAY0 + timedelta(days=n)


@st.composite
def services(draw: st.DrawFn) -> SubscriberService:
    """A subscriber's service over January .. April: assignment, activation, deactivation, plan changes, add-ons."""
    assigned = draw(st.integers(0, 80))
    until = draw(st.one_of(st.none(), st.integers(assigned + 1, 120)))
    activated = draw(st.one_of(st.none(), st.integers(0, 90)))
    deactivated = draw(st.one_of(st.none(), st.integers(0, 120)))
    changes = sorted(set(draw(st.lists(st.integers(0, 110), min_size=1, max_size=3))))
    plans = tuple((_day(d), draw(st.sampled_from(PLANS))) for d in changes)
    add_ons = tuple((b, _day(first), None if length is None else _day(first + length))
                    for b, first, length in draw(st.lists(st.tuples(st.sampled_from(ADD_ONS), st.integers(0, 110),
                                                                    st.one_of(st.none(), st.integers(0, 40))), max_size=2)))
    return SubscriberService("", "", _day(assigned), None if until is None else _day(until),
                             None if activated is None else _day(activated), None if deactivated is None else _day(deactivated),
                             plans, add_ons)


periods = st.one_of(
    st.sampled_from([period_closing_on(1, date(2026, m, 1)) for m in (2, 3, 4)]),
    st.builds(lambda start, days: final_period(1, _day(start), _day(start + days)), st.integers(31, 80), st.integers(0, 40)),
    st.builds(lambda start: replace(period_closing_on(1, date(2026, 3, 1)), start=_day(start)), st.integers(32, 58)),   # interim's rest
)


@settings(max_examples=150, deadline=None)
@given(shapes=st.lists(services(), min_size=1, max_size=3), picks=st.lists(st.integers(0, 2), min_size=1, max_size=8),
       period=periods, decimals=st.sampled_from([0, 2, 3]),
       billed=st.lists(st.tuples(st.integers(0, 7), st.sampled_from([("fee", p) for p in PLANS] + [("bundle_fee", b) for b in ADD_ONS]),
                                 st.integers(-3_000_000, 9_000_000)), max_size=4))
def test_fees_by_shape_are_each_subscribers_own(shared: BillingCatalogue, shapes: list[SubscriberService], picks: list[int],
                                                period: object, decimals: int, billed: list[tuple[int, tuple[str, str], int]]) -> None:
    cat = shared
    # subscribers of their own ids and numbers, several with one shape; what was billed in advance for some of them
    subs = [replace(shapes[p % len(shapes)], subscriber_id=f"sub-{i}", msisdn=f"3361200{i:04d}") for i, p in enumerate(picks)]
    advance = {(f"sub-{i % len(subs)}", kind, item): micros for i, (kind, item), micros in billed}
    expected = [f for s in subs for f in service_fees(s, period, cat, decimals, advance)]  # type: ignore[arg-type]
    assert recurring_fees(subs, period, cat, decimals, advance) == expected  # type: ignore[arg-type]
    # asked again, in another order, one by one: the kept shapes give each subscriber's own again
    for s in reversed(subs):
        assert recurring_fees([s], period, cat, decimals, advance) == service_fees(s, period, cat, decimals, advance)  # type: ignore[arg-type]
    assert all(f.subscriber_id == s.subscriber_id and f.msisdn == s.msisdn for s in subs
               for f in recurring_fees([s], period, cat, decimals, advance))  # type: ignore[arg-type]


def test_fee_shapes_are_shared_and_kept_apart(tmp_path: Path) -> None:
    """Two subscribers of one shape share an entry; one billed in advance, or with another add-on, has its own."""
    cat = catalogue(tmp_path, base=GOLDEN / "monthly-add-on-plan-change")
    period = period_closing_on(1, date(2026, 3, 1))
    base = SubscriberService("a", "336120000001", DAY0, None, DAY0, None, ((DAY0, "TP_BUNDLE"),))
    twin = replace(base, subscriber_id="b", msisdn="336120000002")
    other = replace(base, subscriber_id="c", msisdn="336120000003", add_ons=(("BN_INTL_60MIN", date(2026, 2, 10), None),))
    advance = {("b", "fee", "TP_BUNDLE"): 1_000_000}
    got = recurring_fees([base, twin, other], period, cat, 2, {})
    assert len(cat.fee_shapes) == 2 and got == [f for s in (base, twin, other) for f in service_fees(s, period, cat, 2, {})]
    assert recurring_fees([twin], period, cat, 2, advance) == service_fees(twin, period, cat, 2, advance)
    assert recurring_fees([base], period, cat, 2, advance) == service_fees(base, period, cat, 2, advance)
    assert len(cat.fee_shapes) == 3
    assert any(f.true_up for f in recurring_fees([twin], period, cat, 2, advance))


TAX = TaxRate("S", 20)  # type: ignore[arg-type]


def test_direct_init_builds_the_dataclasss_value() -> None:
    line = BillLine("1", ChargeType.FEE, "Monthly fee", 1_000, TAX, "standard", msisdn="3361", quantity=31)
    assert (line.subscriber_id, line.period_start, line.exact_micros, line.advance, line.ref_line_id) == ("", None, 0, False, "")
    assert [getattr(line, f.name) for f in fields(BillLine)][:6] == ["1", ChargeType.FEE, "Monthly fee", 1_000, TAX, "standard"]
    assert list(vars(line)) == [f.name for f in fields(BillLine)]
    same = BillLine(line_id="1", charge_type=ChargeType.FEE, description="Monthly fee", amount_micros=1_000, tax=TAX,
                    tax_category="standard", msisdn="3361", quantity=31)
    assert same == line and hash(same) == hash(line) and pickle.loads(pickle.dumps(line)) == line
    assert replace(line, line_id="2").line_id == "2" and replace(line, line_id="2") != line
    with pytest.raises(FrozenInstanceError):
        line.amount_micros = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        BillLine("1", ChargeType.FEE)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        BillLine("1", ChargeType.FEE, "x", 1, TAX, "standard", bogus=1)  # type: ignore[call-arg]
    assert Totals(1, 2, 3, 4, 5, 6, 7, 8).payable == 8
    assert fields(Bill) and FeeCharge("s", "m", ChargeType.FEE, "P", "n", "P", "standard", 1, DAY0, DAY0, 1, False).true_up is False


def test_direct_init_refuses_what_it_cannot_build_plainly() -> None:
    with pytest.raises(TypeError):
        @direct_init
        @dataclass(frozen=True)
        class WithFactory:
            items: list[int] = field(default_factory=list)

    with pytest.raises(TypeError):
        @direct_init
        @dataclass(frozen=True)
        class WithPostInit:
            x: int

            def __post_init__(self) -> None:
                pass
