"""Tiered pricing of one event's units: graduated (each tier at its price) or volume (all at the tier reached).

Example from the domain notes: 0-10,000 units at 1.40, then 1.32; 10,500
units cost 14,660 graduated and 13,860 volume.  A tiered rate prices the
event as a whole, so it is not split at band boundaries: the band in force at
the start of the event picks it.
"""

from __future__ import annotations

from typing import Any, Sequence

from engine.rating.models.base import ChargeModel, Part, RoundingRule, memo_grid_of


def tier_amount_num(units: int, levels: Sequence[Sequence[Any]], mode: str, per: int) -> int:
    """Exact micros times ``per`` for ``units`` over ``levels`` = [(up_to | None, price_micros per `per`, flat_micros), ...]."""
    if units <= 0:
        return 0
    if mode == "volume":
        for up_to, price, flat in levels:
            if up_to is None or units <= up_to:
                return int(price * units + flat * per)
        raise AssertionError("the last tier is unbounded")  # the validator guarantees it
    total = 0
    lower = 0
    for up_to, price, flat in levels:
        upper = units if up_to is None else min(units, up_to)
        if upper > lower:
            total += price * (upper - lower) + flat * per
        if up_to is None or units <= up_to:
            break
        lower = up_to
    return total


class TieredModel(ChargeModel):
    name = "tiered"
    splits_by_band = False

    def __init__(self, rate_id: str, ir: dict[str, Any], rounding: RoundingRule) -> None:
        super().__init__(rate_id, ir, rounding)
        tiers = ir["tiers"]
        self.mode: str = tiers["mode"]
        self.per: int = tiers["per"]
        self.den = self.per
        self.increment: int = tiers["increment"]
        self.memo_grid = memo_grid_of(((0, self.increment),))
        self.levels = tuple(tuple(level) for level in tiers["levels"])

    def parts(self, span: int, t: int, span_end: int, total: int, out: list[Part]) -> int:
        if total <= t:
            return t
        billed = -(-(total - t) // self.increment) * self.increment
        out.append(Part(span, t, billed, self.increment, 0, self.per))
        return t + billed

    def amount_num(self, parts: list[Part]) -> int:
        return tier_amount_num(sum(p.units - p.covered for p in parts), self.levels, self.mode, self.per)
