"""Bill-period computations the bill run needs: period discounts, bundle proration, cycle dates.

All pure functions on integers and dates.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Sequence

from engine.currencies import MINOR_UNITS
from engine.money import MICROS, RoundingMode, round_micros
from engine.rating.compiled import CompiledBundle
from engine.rating.discounts import ChargeLine, DiscountModel
from engine.rating.result import DiscountLine


def apply_period_discounts(lines: Sequence[ChargeLine], discounts: Iterable[DiscountModel]) -> list[DiscountLine]:
    """Discount lines for one customer's bill period, in the order the plan lists its discounts.

    Each discount looks at the *gross* applicable charges (discounts do not
    compound); a commitment compares gross applicable spend with its minimum
    and charges the shortfall.  Money off never exceeds the period's gross
    charges: the last lines are trimmed so the net is never negative.
    """
    gross = sum(line.amount_micros for line in lines)
    out: list[DiscountLine] = []
    room = gross
    for d in discounts:
        if d.level != "period":
            continue
        applicable = [line for line in lines if d.applies(line)]
        amount = d.on_period(applicable)
        if amount < 0:
            amount = max(amount, -room)
            room += amount
        elif amount > 0:
            room += amount
        if amount:
            out.append(DiscountLine(d.id, amount, d.name, ",".join(sorted(d.services))))
    return out


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(day: date, months: int, anchor_day: int | None = None) -> date:
    """``day`` plus ``months`` calendar months, clamped to the month's end, never rolling over.

    31 Jan + 1 month = 28/29 Feb; 31 Mar + 1 = 30 Apr (not 1 May).  Pass
    ``anchor_day`` to keep a cycle anchored on the 31st: 28 Feb + 1 with
    anchor 31 -> 31 Mar.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(anchor_day or day.day, days_in_month(year, month)))


def cycle_bounds(anchor_day: int, on: date) -> tuple[date, date]:
    """The bill cycle containing ``on`` for cycles starting on ``anchor_day`` of each month: ``[start, end)``."""
    if not 1 <= anchor_day <= 31:
        raise ValueError("anchor_day is 1..31")
    start = date(on.year, on.month, min(anchor_day, days_in_month(on.year, on.month)))
    if start > on:
        start = add_months(start, -1, anchor_day)
    return start, add_months(start, 1, anchor_day)


@dataclass(frozen=True)
class ProratedBundle:
    bundle_id: str
    fee_micros: int
    allowance: int
    valid_from: date
    valid_until: date          # exclusive
    days: int                  # days granted
    days_in_cycle: int


def prorate_bundle(bundle: CompiledBundle, activation: date, cycle_start: date, cycle_end: date | None = None) -> ProratedBundle:
    """Fee and allowance for a bundle activated on ``activation`` inside the cycle ``[cycle_start, cycle_end)``.

    ``daily``: scaled by days left (activation day included) over days in the
    cycle; the fee rounds half-up to the currency's minor unit, the allowance
    rounds down (never grant more than was paid for).  ``full``: whole fee and
    allowance.  ``none``: nothing until the next cycle.  One-off bundles are
    never prorated: they run ``validity_days`` from activation.
    """
    if bundle.recurrence == "one_off":
        until = activation + timedelta(days=bundle.validity_days)
        return ProratedBundle(bundle.id, bundle.fee, bundle.allowance, activation, until, bundle.validity_days, bundle.validity_days)
    end = cycle_end or add_months(cycle_start, 1)
    if not cycle_start <= activation < end:
        raise ValueError(f"activation {activation} is outside the cycle {cycle_start}..{end}")
    total = (end - cycle_start).days
    left = (end - activation).days
    if bundle.proration == "full" or activation == cycle_start:
        return ProratedBundle(bundle.id, bundle.fee, bundle.allowance, activation, end, left, total)
    if bundle.proration == "none":
        return ProratedBundle(bundle.id, 0, 0, activation, end, 0, total)
    decimals = MINOR_UNITS.get(bundle.currency, 2)
    fee = round_micros(bundle.fee * left, total, RoundingMode.HALF_UP, decimals)
    allowance = bundle.allowance * left // total
    return ProratedBundle(bundle.id, fee, allowance, activation, end, left, total)


def prorate_fee(fee_micros: int, currency: str, start: date, end: date, cycle_start: date, cycle_end: date) -> int:
    """A recurring fee for the part ``[start, end)`` of the cycle, by days, rounded half-up to minor units."""
    total = (cycle_end - cycle_start).days
    used = (min(end, cycle_end) - max(start, cycle_start)).days
    if used <= 0:
        return 0
    return round_micros(fee_micros * used, total, RoundingMode.HALF_UP, MINOR_UNITS.get(currency, 2))


__all__ = [
    "MICROS", "ProratedBundle", "add_months", "apply_period_discounts", "cycle_bounds", "days_in_month", "prorate_bundle",
    "prorate_fee",
]
