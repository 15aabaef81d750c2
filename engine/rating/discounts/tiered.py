"""Spend tiers: graduated (each slice of spend at its tier's percentage) or volume (all spend at the tier reached)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from engine.money import MICROS
from engine.rating.discounts.base import ChargeLine, DiscountModel, Predicate


class TieredDiscount(DiscountModel):
    kind = "tiered"

    def __init__(self, discount_id: str, ir: dict[str, Any], predicate: Predicate | None) -> None:
        super().__init__(discount_id, ir, predicate)
        tiers = ir["tiers"]
        self.tier_mode: str = tiers["mode"]
        self.levels = [(up_to, Fraction(pct, 100 * MICROS)) for up_to, pct in tiers["levels"]]

    def discount_on(self, spend: int) -> Fraction:
        if spend <= 0:
            return Fraction(0)
        if self.tier_mode == "volume":
            for up_to, pct in self.levels:
                if up_to is None or spend <= up_to:
                    return pct * spend
        total, lower = Fraction(0), 0
        for up_to, pct in self.levels:
            upper = spend if up_to is None else min(spend, up_to)
            if upper > lower:
                total += pct * (upper - lower)
            if up_to is None or spend <= up_to:
                break
            lower = up_to
        return total

    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        return -self.round(self.discount_on(sum(line.amount_micros for line in lines)))
