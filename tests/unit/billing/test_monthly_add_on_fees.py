"""A monthly add-on's fee over bill cycles (engine.billing.fees with SubscriberService.add_ons), for purchase and stop
days anywhere around the cycle edges: each cycle is charged exactly the fee times its served days over its days,
rounded half-up to the currency's minor units (0, 2 or 3 decimals), never more than the whole fee, whether it is
charged in advance and trued up on the next bill or in arrears; and nothing outside the days it is in force."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.catalogue import BillingCatalogue
from engine.billing.cycles import period_closing_on
from engine.billing.fees import recurring_fees
from engine.billing.model import ChargeType, SubscriberService
from engine.plans.loader import load_plan_set

CASE = Path(__file__).resolve().parents[2] / "golden" / "bills" / "monthly-add-on" / "plans"
ADD_ON = "BN_INTL_60MIN"
FEE = 5_000_000
CYCLES = [date(2026, m, 1) for m in range(1, 10)]   # 1 January .. 1 September: 8 cycles


ARREARS = """kind: bundle
id: BN_INTL_60MIN
name: International 60, in arrears
allowance: {service: voice, amount: 60min}
destinations: [DST_INTL]
recurrence: monthly
fee: "5.00"
currency: EUR
fee_timing: arrears
priority: 30
"""


def _catalogue(arrears: bool) -> BillingCatalogue:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plans"
        shutil.copytree(CASE, folder)
        if arrears:   # the same add-on charged after each cycle instead of before it
            (folder / "bn_intl.yaml").write_text(ARREARS, encoding="utf-8")
        plan_set, problems = load_plan_set([folder], root=folder)
    assert plan_set is not None, problems
    return BillingCatalogue.from_plan_set(plan_set, 1)


CATALOGUES = {False: _catalogue(False), True: _catalogue(True)}


def _expected(first: date, last: date | None, start: date, end: date, decimals: int) -> int:
    served = (min(last + timedelta(days=1) if last else end, end) - max(first, start)).days
    if served <= 0:
        return 0
    exact = Decimal(FEE) * served / (end - start).days / Decimal(10) ** (6 - decimals)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10 ** (6 - decimals)


def _bill_cycles(first: date, last: date | None, decimals: int, arrears: bool = False) -> dict[date, int]:
    """Run the regular bills of 1 February .. 1 September; what each cycle was charged for the add-on, in all."""
    svc = SubscriberService("sub", "33612000007", date(2026, 1, 1), None, date(2026, 1, 1), None, ((date(2026, 1, 1), "TP_BUNDLE"),),
                            add_ons=((ADD_ON, first, last),))
    per_cycle: dict[date, int] = {}
    advance: dict[tuple[str, str, str], int] = {}
    for cycle_date in CYCLES[1:]:
        period = period_closing_on(1, cycle_date)
        charges = [c for c in recurring_fees([svc], period, CATALOGUES[arrears], decimals, advance) if c.item_id == ADD_ON]
        advance = {}
        for c in charges:
            assert c.charge_type is ChargeType.BUNDLE_FEE and not (arrears and c.advance)
            owner = c.start.replace(day=1)
            per_cycle[owner] = per_cycle.get(owner, 0) + c.amount_micros
            if c.advance:
                advance[("sub", c.charge_type.value, c.item_id)] = advance.get(("sub", c.charge_type.value, c.item_id), 0) + c.amount_micros
    return per_cycle


@settings(max_examples=150, deadline=None)
@given(bought=st.integers(0, 200), length=st.one_of(st.none(), st.integers(0, 150)), decimals=st.sampled_from([0, 2, 3]),
       arrears=st.booleans())
def test_each_cycle_is_charged_its_served_days_share_and_never_more_than_the_fee(bought: int, length: int | None, decimals: int,
                                                                                  arrears: bool) -> None:
    first = date(2026, 1, 1) + timedelta(days=bought)
    last = first + timedelta(days=length) if length is not None else None
    per_cycle = _bill_cycles(first, last, decimals, arrears)
    for start, end in zip(CYCLES[:-2], CYCLES[1:-1]):   # the cycles whose bills (and true-ups) all ran
        want = _expected(first, last, start, end, decimals)
        assert per_cycle.get(start, 0) == want, (start, first, last)
        assert 0 <= want <= FEE
    assert all(v >= 0 for v in per_cycle.values())


def test_bought_mid_cycle_charges_its_days_then_whole_cycles_and_stops() -> None:
    """Bought 10 March, stopped with 15 April (its last day): 22/31 of March, 15/30 of April, nothing after."""
    per_cycle = _bill_cycles(date(2026, 3, 10), date(2026, 4, 15), 2)
    assert {d: v for d, v in per_cycle.items() if v} == {date(2026, 3, 1): 3_550_000, date(2026, 4, 1): 2_500_000}
