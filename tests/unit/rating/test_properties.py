"""Properties of rating over large input spaces (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.money import RoundingMode, divide_rounded
from engine.rating import BundleState, CompiledPlans, Evaluator
from engine.rating.models.tiered import tier_amount_num
from tests.unit.rating.helpers import cdr, ir_plan, ir_rate

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
SPLIT_WEEK = {d: [[0, 480, "NIGHT"], [480, 1200, "DAY"], [1200, 1440, "NIGHT"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

prices = st.integers(min_value=0, max_value=5_000_000)
pers = st.sampled_from([1, 60, 100, 1024])
increments = st.sampled_from([1, 6, 10, 30, 60])
durations = st.integers(min_value=0, max_value=4 * 3600)
offsets = st.integers(min_value=0, max_value=7 * 86400)
modes = st.sampled_from(["up", "down", "half_up", "half_even"])


def _when(offset: int) -> str:
    return (START + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


@settings(max_examples=150, deadline=None)
@given(price=prices, per=pers, first=increments, nxt=increments, connect=prices, duration=durations, offset=offsets, mode=modes)
def test_splitting_spans_never_changes_a_flat_rate_total(price: int, per: int, first: int, nxt: int, connect: int,
                                                          duration: int, offset: int, mode: str) -> None:
    rate = ir_rate([[0, price, per, first], [first, price, per, nxt]] if nxt != first else [[0, price, per, first]],
                   connect=connect, mode=mode)
    one_band = Evaluator(CompiledPlans.from_ir(ir_plan({"RT": rate}, [["voice", "originating", "home", "DST_ALL", "ANYTIME", "RT"]])))
    two_bands = Evaluator(CompiledPlans.from_ir(ir_plan(
        {"RT": rate}, [["voice", "originating", "home", "DST_ALL", b, "RT"] for b in ("DAY", "NIGHT")], days=SPLIT_WEEK)))
    call = cdr(start=_when(offset), duration_seconds=duration)
    a, b = one_band.rate(call, "TP"), two_bands.rate(call, "TP")
    assert a.charge_micros == b.charge_micros
    assert sum(s.billed_units for s in a.spans) == sum(s.billed_units for s in b.spans)
    assert isinstance(a.charge_micros, int) and isinstance(b.charge_micros, int)


@settings(max_examples=150, deadline=None)
@given(day_price=prices, night_price=prices, inc=increments, connect=prices, minimum=prices, offset=offsets,
       d1=durations, extra=st.integers(min_value=0, max_value=3600), mode=modes)
def test_charge_is_monotone_in_duration(day_price: int, night_price: int, inc: int, connect: int, minimum: int, offset: int,
                                        d1: int, extra: int, mode: str) -> None:
    rates = {"RT_DAY": ir_rate([[0, day_price, 60, inc]], connect=connect, minimum=minimum, mode=mode),
             "RT_NIGHT": ir_rate([[0, night_price, 60, inc]], connect=connect, minimum=minimum, mode=mode)}
    rater = Evaluator(CompiledPlans.from_ir(ir_plan(rates, [["voice", "originating", "home", "DST_ALL", "DAY", "RT_DAY"],
                                                         ["voice", "originating", "home", "DST_ALL", "NIGHT", "RT_NIGHT"]],
                                                 days=SPLIT_WEEK)))
    short = rater.rate(cdr(start=_when(offset), duration_seconds=d1), "TP")
    long = rater.rate(cdr(start=_when(offset), duration_seconds=d1 + extra), "TP")
    assert short.charge_micros <= long.charge_micros


@settings(max_examples=200, deadline=None)
@given(price=prices, per=pers, connect=prices, duration=durations, mode=modes, decimals=st.integers(0, 6))
def test_per_second_rate_matches_an_independent_decimal_computation(price: int, per: int, connect: int, duration: int,
                                                                     mode: str, decimals: int) -> None:
    rater = Evaluator(CompiledPlans.from_ir(ir_plan({"RT": ir_rate([[0, price, per, 1]], connect=connect, mode=mode, decimals=decimals)},
                                                [["voice", "originating", "home", "DST_ALL", "ANYTIME", "RT"]])))
    got = rater.rate(cdr(duration_seconds=duration), "TP").charge_micros
    exact = (Decimal(price) * duration / per + connect) / Decimal(1_000_000)
    rounding = {"up": ROUND_CEILING, "down": ROUND_DOWN, "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}[mode]
    expected = exact.quantize(Decimal(1).scaleb(-decimals), rounding=rounding) * 1_000_000
    assert Decimal(got) == expected


@settings(max_examples=300, deadline=None)
@given(n=st.integers(-10**12, 10**12), d=st.integers(1, 10**9), mode=st.sampled_from(list(RoundingMode)))
def test_divide_rounded_agrees_with_decimal(n: int, d: int, mode: RoundingMode) -> None:
    rounding = {RoundingMode.UP: "ROUND_UP", RoundingMode.DOWN: ROUND_DOWN, RoundingMode.HALF_UP: ROUND_HALF_UP,
                RoundingMode.HALF_EVEN: ROUND_HALF_EVEN}[mode]
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = 60
        expected = (Decimal(n) / Decimal(d)).quantize(Decimal(1), rounding=rounding)
    assert divide_rounded(n, d, mode) == int(expected)


@settings(max_examples=200, deadline=None)
@given(units=st.integers(0, 10**6), bounds=st.lists(st.integers(1, 10**5), min_size=0, max_size=4, unique=True),
       tier_prices=st.lists(st.integers(0, 10**6), min_size=5, max_size=5))
def test_graduated_equals_sum_of_slices_and_volume_uses_one_price(units: int, bounds: list[int], tier_prices: list[int]) -> None:
    bounds = sorted(bounds)
    levels = [[b, tier_prices[i], 0] for i, b in enumerate(bounds)] + [[None, tier_prices[len(bounds)], 0]]
    graduated = tier_amount_num(units, levels, "graduated", 1)
    lower, total = 0, 0
    for up_to, price, _ in levels:
        top = units if up_to is None else min(units, up_to)
        total += max(top - lower, 0) * price
        lower = up_to if up_to is not None else lower
    assert graduated == total
    volume = tier_amount_num(units, levels, "volume", 1)
    reached = next(p for b, p, _ in levels if b is None or units <= b)
    assert volume == units * reached


@settings(max_examples=150, deadline=None)
@given(duration=durations, remaining=st.integers(0, 5000), inc=increments, price=prices)
def test_bundles_cover_billed_units_and_counters_never_go_negative(duration: int, remaining: int, inc: int, price: int) -> None:
    bundles = {"BN": {"name": "b", "service": "voice", "unit": "second", "allowance": 5000, "destinations": [], "zones": [],
                      "recurrence": "monthly", "validity_days": 0, "fee": 0, "currency": "EUR", "proration": "daily",
                      "priority": 1, "condition": None}}
    rater = Evaluator(CompiledPlans.from_ir(ir_plan({"RT": ir_rate([[0, price, 60, inc]])},
                                                [["voice", "originating", "home", "DST_ALL", "ANYTIME", "RT"]], bundles=bundles)))
    state = BundleState({"BN": remaining})
    rated = rater.rate(cdr(duration_seconds=duration), "TP", state)
    billed = sum(s.billed_units for s in rated.spans)
    used = sum(u.units for u in rated.bundle_usage)
    assert used == min(billed, remaining)
    assert rated.bundle_state is not None and rated.bundle_state["BN"] == remaining - used >= 0
    assert state["BN"] == remaining  # the input state is never mutated
    if billed and used == billed:
        assert rated.charge_micros == 0
