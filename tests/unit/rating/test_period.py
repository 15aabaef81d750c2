"""Bill-period functions: period discounts, month-end safe cycles, bundle proration."""

from __future__ import annotations

from datetime import date

import pytest

from engine.rating.compiled import CompiledBundle
from engine.rating.discounts import ChargeLine
from engine.rating.period import add_months, apply_period_discounts, cycle_bounds, prorate_bundle, prorate_fee
from tests.unit.rating.helpers import REPO, compile_folder


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    return compile_folder(REPO / "plans")


def lines(*amounts: tuple[str, int]) -> list[ChargeLine]:
    return [ChargeLine(amount, service=service) for service, amount in amounts]


def test_month_end_dates_never_roll_over() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 3, 31), 1) == date(2026, 4, 30)  # not 1 May
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert add_months(date(2026, 2, 28), 1, anchor_day=31) == date(2026, 3, 31)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_cycle_bounds_anchored_on_the_31st() -> None:
    assert cycle_bounds(31, date(2026, 2, 15)) == (date(2026, 1, 31), date(2026, 2, 28))
    assert cycle_bounds(31, date(2026, 2, 28)) == (date(2026, 2, 28), date(2026, 3, 31))
    assert cycle_bounds(31, date(2026, 3, 31)) == (date(2026, 3, 31), date(2026, 4, 30))
    assert cycle_bounds(1, date(2026, 3, 31)) == (date(2026, 3, 1), date(2026, 4, 1))


def test_daily_proration_of_fee_and_allowance(sample) -> None:  # type: ignore[no-untyped-def]
    addon: CompiledBundle = sample.bundles["BN_ADDON_INTL_60MIN"]  # 5.00, 3600 s, daily
    p = prorate_bundle(addon, date(2026, 4, 21), date(2026, 4, 1))  # 10 of 30 days left
    assert (p.fee_micros, p.allowance, p.days, p.days_in_cycle) == (1_670_000, 1200, 10, 30)
    full = prorate_bundle(addon, date(2026, 4, 1), date(2026, 4, 1))
    assert (full.fee_micros, full.allowance) == (5_000_000, 3600)
    feb = prorate_bundle(addon, date(2026, 2, 28), date(2026, 2, 1))  # last day of February
    assert (feb.fee_micros, feb.allowance, feb.valid_until) == (180_000, 128, date(2026, 3, 1))


def test_proration_none_and_full_and_one_off(sample) -> None:  # type: ignore[no-untyped-def]
    none = prorate_bundle(sample.bundles["BN_ALPHA_DATA_5GB"], date(2026, 4, 21), date(2026, 4, 1))
    assert (none.fee_micros, none.allowance) == (0, 0)
    full = prorate_bundle(sample.bundles["BN_M_SMS_500"], date(2026, 4, 21), date(2026, 4, 1))
    assert full.allowance == 500
    one_off = prorate_bundle(sample.bundles["BN_ADDON_WORLD_DATA_1GB"], date(2026, 3, 30), date(2026, 3, 1))
    assert (one_off.fee_micros, one_off.valid_until) == (15_000_000, date(2026, 4, 6))


def test_activation_outside_the_cycle_is_an_error(sample) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        prorate_bundle(sample.bundles["BN_ADDON_INTL_60MIN"], date(2026, 5, 1), date(2026, 4, 1))


def test_prorate_fee() -> None:
    assert prorate_fee(9_990_000, "EUR", date(2026, 4, 11), date(2026, 5, 1), date(2026, 4, 1), date(2026, 5, 1)) == 6_660_000
    assert prorate_fee(9_990_000, "EUR", date(2026, 6, 1), date(2026, 7, 1), date(2026, 4, 1), date(2026, 5, 1)) == 0


def test_business_spend_tiers_and_commitment(sample) -> None:  # type: ignore[no-untyped-def]
    discounts = sample.plans["TP_BUSINESS_PRO"].versions[0].discounts
    # 700.00 of usage: 0 % on 100, 5 % on 400 (20.00), 10 % on 200 (20.00) -> -40.00; commitment met
    out = apply_period_discounts(lines(("voice", 500_000_000), ("data", 200_000_000)), discounts)
    assert [(d.discount_id, d.amount_micros) for d in out] == [("DP_BUSINESS_SPEND_TIERS", -40_000_000)]
    # 30.00 of usage: no tier discount; 20.00 short of the 50.00 commitment
    out = apply_period_discounts(lines(("voice", 30_000_000)), discounts)
    assert [(d.discount_id, d.amount_micros) for d in out] == [("DP_BUSINESS_COMMITMENT", 20_000_000)]


def test_wholesale_volume_tier_applies_to_all_spend(sample) -> None:  # type: ignore[no-untyped-def]
    discounts = sample.plans["TP_WS_ALPHA"].versions[0].discounts
    out = apply_period_discounts(lines(("voice", 40_000_000_000), ("data", 20_000_000_000)), discounts)  # 60,000.00
    assert [(d.discount_id, d.amount_micros) for d in out] == [("DP_WS_ALPHA_VOLUME", -3_600_000_000)]


def test_percentage_restricted_to_a_service_and_fixed_never_exceeds_charges(sample) -> None:  # type: ignore[no-untyped-def]
    beta = sample.plans["TP_WS_BETA"].versions[0].discounts
    out = apply_period_discounts(lines(("data", 1_000_000_000), ("sms", 500_000_000)), beta)
    assert [(d.discount_id, d.amount_micros) for d in out] == [("DP_WS_BETA_DATA_4PCT", -40_000_000)]
    loyalty = [sample.discounts["DP_LOYALTY_2EUR"]]
    assert [d.amount_micros for d in apply_period_discounts(lines(("voice", 1_500_000)), loyalty)] == [-1_500_000]
    assert apply_period_discounts([], loyalty) == []
