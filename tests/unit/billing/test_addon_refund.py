"""The refund of a cancelled add-on (engine.billing.addons.refund_of): the bundle's policy, rounded half-up to the
currency's minor units, never above the fee nor below zero."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from engine.billing.addons import refund_of
from engine.currencies import minor_units


def test_each_policy_on_known_values() -> None:
    assert refund_of("none", 10_000_000, "EUR", 100, 50, 30, 3) == 0
    assert refund_of("unused", 10_000_000, "EUR", 3, 1, 30, 3) == 3_330_000          # 10.00 x 1/3 = 3.333...
    assert refund_of("unused", 10_000_000, "EUR", 3, 2, 30, 3) == 6_670_000          # 6.666... half-up to cents
    assert refund_of("prorated", 3_000_000, "EUR", 60, 0, 7, 3) == 1_710_000         # 3.00 x 4/7 = 1.714...
    assert refund_of("prorated", 1_000_000_000, "JPY", 1, 0, 7, 1) == 857_000_000   # 1000 JPY x 6/7, whole yen
    assert refund_of("prorated", 1_000_000, "KWD", 1, 0, 3, 1) == 667_000           # three minor digits
    # a cancel on the purchase day of a 1-day add-on, or after its last day, gives nothing back; all unused is the fee
    assert refund_of("prorated", 5_000_000, "EUR", 1, 1, 1, 1) == 0
    assert refund_of("prorated", 5_000_000, "EUR", 1, 1, 7, 9) == 0
    assert refund_of("unused", 5_000_000, "EUR", 10, 10, 7, 1) == 5_000_000
    assert refund_of("unused", 0, "EUR", 10, 10, 7, 1) == 0                          # a free add-on


@given(st.sampled_from(["none", "unused", "prorated"]), st.integers(0, 10**12), st.sampled_from(["EUR", "JPY", "KWD"]),
       st.integers(1, 10**12), st.integers(-10, 10**12 + 10), st.integers(1, 3660), st.integers(-5, 4000))
def test_the_refund_is_bounded_and_in_minor_units(policy: str, fee: int, currency: str, allowance: int, remaining: int,
                                                   validity: int, used_days: int) -> None:
    fee -= fee % 10 ** (6 - minor_units(currency))      # fees are billable amounts (the plan language checks it)
    refund = refund_of(policy, fee, currency, allowance, remaining, validity, used_days)
    assert 0 <= refund <= fee
    assert refund % 10 ** (6 - minor_units(currency)) == 0
    if policy == "none":
        assert refund == 0
    exact = (Fraction(fee * max(0, min(remaining, allowance)), allowance) if policy == "unused"
             else Fraction(fee * max(0, min(validity - used_days, validity)), validity) if policy == "prorated" else Fraction(0))
    assert abs(refund - exact) <= Fraction(10 ** (6 - minor_units(currency)), 2)
