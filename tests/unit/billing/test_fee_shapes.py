"""A bill run's per-run shortcuts give what the plain code gives.

- engine.billing.fees.recurring_fees keeps each subscriber's fees by the shape of its service (days, plans, add-ons,
  the period, what was billed in advance): subscribers of any ids and numbers, sharing shapes or not, in any order and
  asked again, get exactly the charges ``service_fees`` works out for each alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.catalogue import BillingCatalogue
from engine.billing.cycles import final_period, period_closing_on
from engine.billing.fees import recurring_fees, service_fees
from engine.billing.model import SubscriberService

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
